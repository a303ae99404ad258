package sqlite

import (
	"testing"
	"time"
)

// A checkpoint's fsync must not meet the commits' every second: the
// checkpointer runs every checkpointEvery, or sooner once the WAL is large.
func TestCheckpointDue(t *testing.T) {
	for _, c := range []struct {
		since time.Duration
		wal   int64
		due   bool
	}{
		{time.Second, 40 << 20, false},
		{5 * time.Second, 200 << 20, false},
		{checkpointEvery, 0, true},
		{time.Second, checkpointAt, true},
	} {
		if got := checkpointDue(c.since, c.wal); got != c.due {
			t.Errorf("checkpointDue(%s, %d MB) = %v, want %v", c.since, c.wal>>20, got, c.due)
		}
	}
	if walLimit <= checkpointAt {
		t.Errorf("the WAL limit (%d) must exceed the checkpoint size (%d), or every reset truncates", walLimit, checkpointAt)
	}
}
