package hub_test

import (
	"context"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/hub"
)

// TestSharedLogNeedsPostgres: a shared log database without the audit
// records on PostgreSQL is refused (the integrator lease lives there).
func TestSharedLogNeedsPostgres(t *testing.T) {
	dir := t.TempDir()
	pass := []byte("shared-log-test-passphrase")
	if _, err := hub.Init(dir, pass, "Test CA", nil); err != nil {
		t.Fatal(err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Passphrase: pass, LogDatabase: "root@tcp(127.0.0.1:3306)/crossroads_never"})
	if err == nil {
		h.Close(context.Background())
		t.Fatal("a shared log database was accepted without PostgreSQL")
	}
	if !strings.Contains(err.Error(), "PostgreSQL") {
		t.Errorf("error %q does not say what is missing", err)
	}
}
