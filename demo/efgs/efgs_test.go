package efgs_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/efgs"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// The demo's scenario passes end to end through the hub's real mTLS
// listener, and the member files are written.
func TestScenario(t *testing.T) { scenario(t, "") }

// The same on PostgreSQL (registers, audit records and the gateway's
// tables in one fresh database).
func TestScenarioOnPostgres(t *testing.T) { scenario(t, pgtest.New(t).DSN) }

func scenario(t *testing.T, dsn string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	g, errc, err := efgs.Start(ctx, demo.Options{Dir: dir, DataDir: t.TempDir(), People: 5, DatabaseURL: dsn}, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		<-errc
		g.Close()
	}()
	steps := g.Scenario(ctx)
	var out bytes.Buffer
	if !efgs.Print(&out, steps) {
		t.Fatalf("scenario:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
	for _, f := range []string{"trust-anchor.crt", "network.yaml", "members.json", "de/authentication.crt", "de/authentication.key", "fr/signing.crt", "nl/callback.crt", "nl/callback.key"} {
		if _, err := os.Stat(filepath.Join(dir, "efgs", f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
}

// The load test runs (small here; 27 members × 5,000 keys with
// 'crossroads efgs load').
func TestLoad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, errc, err := efgs.StartWith(ctx, demo.Options{Dir: t.TempDir(), DataDir: t.TempDir(), People: 5}, ln, efgs.EU27[:4])
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		<-errc
		g.Close()
	}()
	rep, err := g.Load(ctx, efgs.LoadOptions{BatchesPerMember: 2, KeysPerBatch: 200, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Batches != 8 || rep.BatchesDownloaded != 32 || rep.KeysOut != 4*6*200 {
		t.Errorf("report %+v", rep)
	}
	t.Log(rep)
}
