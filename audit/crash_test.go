package audit_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads/audit"
)

// checkExactlyOnce reopens the trail on dir, waits for n leaves and checks
// that every record is in the log exactly once.
func checkExactlyOnce(t *testing.T, dir string, n int64) {
	t.Helper()
	e := open(t, dir)
	waitSize(t, e.trail, n)
	rep, err := e.trail.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || int64(rep.Records) != n || int64(rep.Integrated) != n || rep.LogSize != n {
		t.Fatalf("after recovery: %+v", rep)
	}
	e.close()
}

// Crash after records are durable, before they reach the log.
func TestCrashBeforeIntegration(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, audit.SetNoIntegrate)
	commitParallel(t, e.trail, 0, 50)
	e.close()

	e = open(t, dir)
	commitN(t, e.trail, 50, 10)
	e.close()
	checkExactlyOnce(t, dir, 60)
}

// Crash after records are in the log, before their indexes are recorded:
// on restart they are matched back, not added again.
func TestCrashBeforeIndexRecorded(t *testing.T) {
	dir := t.TempDir()
	var once sync.Once
	integrated := make(chan struct{})
	e := open(t, dir, func(c *audit.Config) {
		audit.SetBeforeMark(c, func() error {
			once.Do(func() { close(integrated) })
			return errors.New("crash")
		})
	})
	commitParallel(t, e.trail, 0, 300)
	<-integrated
	e.close()

	e = open(t, dir)
	commitN(t, e.trail, 300, 10)
	e.close()
	checkExactlyOnce(t, dir, 310)
}
