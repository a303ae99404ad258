package crash_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/crash"
	"github.com/crossroads-hub/crossroads/internal/testbin"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// TestCrashSmoke is the CI run of the crash harness: three SIGKILLs of a
// hub child process under load (one of them, on average, while it starts),
// then the full verification. The full run is 'crossroads crash'.
func TestCrashSmoke(t *testing.T) {
	bin := testbin.Build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := crash.Run(ctx, crash.Options{
		Binary:     bin,
		Dir:        filepath.Join(t.TempDir(), "run"),
		Kills:      3,
		MinUp:      200 * time.Millisecond,
		MaxUp:      time.Second,
		EarlyKills: 0.34,
		Settle:     500 * time.Millisecond,
		Clients:    4,
		People:     300,
		Progress:   t.Output(),
	})
	if rep != nil {
		t.Log("\n" + rep.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the crash harness found %d problems", len(rep.Problems))
	}
	if rep.Kills != 3 || rep.Records == 0 || rep.Receipts == 0 || rep.IntegrationAcked == 0 || rep.AuthAcked == 0 || rep.Batches.Items == 0 || rep.MutationsAcked == 0 {
		t.Fatalf("the run did too little: %+v", rep)
	}
}

// TestCrashDetectsTampering checks the checker: after one kill, the record
// of an exchange (not an event: kind "") that a client holds a receipt for
// is deleted, and one authorisation loses a service (half-applied); the
// verification must report both.
func TestCrashDetectsTampering(t *testing.T) {
	bin := testbin.Build(t)
	defer crash.SetBeforeVerify(func(dataDir string) error {
		if err := execSQL(filepath.Join(dataDir, "audit", sqlite.AuditFile),
			`DELETE FROM audit_records WHERE seq = (SELECT min(seq) FROM audit_records WHERE outcome = 'allowed' AND kind = '')`); err != nil {
			return err
		}
		return execSQL(filepath.Join(dataDir, "registers.db"),
			`DELETE FROM authorisation_services WHERE authorisation = 'crash-0' AND position = (SELECT max(position) FROM authorisation_services WHERE authorisation = 'crash-0')`)
	})()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := crash.Run(ctx, crash.Options{
		Binary: bin, Dir: filepath.Join(t.TempDir(), "run"), Kills: 1,
		MinUp: 300 * time.Millisecond, MaxUp: 600 * time.Millisecond, Settle: 300 * time.Millisecond,
		Clients: 2, People: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Problems, "\n")
	for _, want := range []string{"has no record", "audit check", "half-applied"} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem mentions %q; problems:\n%s", want, all)
		}
	}
}

func execSQL(file, stmt string) error {
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
