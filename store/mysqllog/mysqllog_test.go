package mysqllog_test

import (
	"context"
	"testing"

	"github.com/crossroads-hub/crossroads/store/mysqllog"
	"github.com/crossroads-hub/crossroads/store/mysqllog/mysqltest"
)

func TestOpenRefusesBadDSN(t *testing.T) {
	for _, dsn := range []string{"root@tcp(127.0.0.1:3306)/", "not a dsn(", "root@tcp(127.0.0.1:1)/x?timeout=200ms"} {
		if l, err := mysqllog.Open(context.Background(), dsn); err == nil {
			l.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

// TestOpenCreatesAndReopens: Open creates the database and Tessera's
// schema, and opens it again (idempotent), with an empty log.
func TestOpenCreatesAndReopens(t *testing.T) {
	dsn := mysqltest.New(t)
	ctx := context.Background()
	for range 2 {
		l, err := mysqllog.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Barrier(ctx); err != nil {
			t.Fatalf("Barrier: %v", err)
		}
		l.Close()
	}
}
