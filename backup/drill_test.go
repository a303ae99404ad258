package backup_test

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/crossroads-hub/crossroads/cluster"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/internal/testbin"
	"github.com/crossroads-hub/crossroads/store/mysqllog/mysqltest"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

func crossroads(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("crossroads %v: %v\n%s", args, err, out)
	}
	t.Logf("crossroads %s: %s", args[0], out)
}

// TestDrill is the restore drill: traffic runs, a checkpoint is saved, a
// backup is taken online, traffic goes on, the hub stops and its data
// directory (and databases) are destroyed; the backup is restored and the
// hub started on it. Then the log verifies, is consistent with the
// checkpoint saved before the backup, every record equals a leaf, and every
// exchange answered with a receipt before the backup began is present.
func TestDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("restore drill: not in -short")
	}
	if _, err := cluster.HAProxyPath(); err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin := testbin.Build(t)
	t.Run("Embedded", func(t *testing.T) { drill(t, bin, "", "") })
	t.Run("PostgreSQL", func(t *testing.T) {
		for _, tool := range []string{"pg_dump", "pg_restore", "mariadb-dump"} {
			if _, err := exec.LookPath(tool); err != nil {
				if pgtest.Required() {
					t.Fatalf("%s is not installed", tool)
				}
				t.Skipf("%s is not installed (Debian: postgresql-client, mariadb-client)", tool)
			}
		}
		drill(t, bin, pgtest.New(t).DSN, mysqltest.New(t))
	})
}

func drill(t *testing.T, bin, pg, logDB string) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := cluster.Start(ctx, cluster.Options{Binary: bin, Dir: dir, DatabaseURL: pg, LogDatabase: logDB, Nodes: 1, People: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	node := c.Nodes[0].Dir
	load := c.StartLoad(ctx, 4)
	time.Sleep(1500 * time.Millisecond)
	cp0 := checkpoint(t, c)
	before := load.Answers() // answered before the backup began
	out := filepath.Join(t.TempDir(), "backup")
	args := []string{"backup", "--dir", node, "--key-dir", c.KeyDir(), "--out", out}
	if pg != "" {
		args = append(args, "--database-url", pg, "--log-database", logDB)
	}
	crossroads(t, bin, args...)
	noProviderKeys(t, out)
	time.Sleep(time.Second)
	answers := load.Stop()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 || len(answers) <= len(before) {
		t.Fatalf("%d answers before the backup, %d in all: no traffic around the backup", len(before), len(answers))
	}

	// Destroy.
	if err := os.RemoveAll(node); err != nil {
		t.Fatal(err)
	}
	if pg != "" {
		destroy(t, pg, logDB)
	}

	// Without the live key provider, a restore is refused before writing.
	args = []string{"restore", "--from", out, "--dir", node}
	if pg != "" {
		args = append(args, "--database-url", pg, "--log-database", logDB)
	}
	if b, err := exec.Command(bin, args...).CombinedOutput(); err == nil || !strings.Contains(string(b), "no key provider") {
		t.Fatalf("a restore without the key provider: %v\n%s", err, b)
	}
	if _, err := os.Stat(node); !os.IsNotExist(err) {
		t.Fatal("a refused restore wrote the data directory")
	}

	// Restore with the live provider (which holds every KEK: no erasure
	// ran), start the hub on it, stop it, verify.
	args = append(args, "--key-dir", c.KeyDir())
	crossroads(t, bin, args...)
	if err := c.StartNode(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.StopNode(0); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Verify(ctx, before, cp0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restored: %d records, %d integrated, log size %d; %d receipted answers before the backup (of %d in all)",
		rep.Records, rep.Integrated, rep.LogSize, rep.Receipted, len(answers))
	for _, p := range rep.Problems {
		t.Error(p)
	}
	if rep.Receipted == 0 {
		t.Error("no receipted answer before the backup")
	}

	// A second restore into the now populated target is refused.
	cmd := exec.Command(bin, args...)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "not empty") {
		t.Errorf("restore into a non-empty data directory: %v\n%s", err, b)
	}
}

// providerFile matches the FileProvider's files (keys/file.go).
var providerFile = regexp.MustCompile(`^(root-[0-9a-f]{16}\.key\.enc|f[0-9a-f]{24}\.key)$`)

// noProviderKeys fails if the backup in dir holds a key provider's file (a
// root key or a provider key): erasure must survive backups.
func noProviderKeys(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if n := d.Name(); providerFile.MatchString(n) {
			t.Errorf("the backup holds a key file: %s", p)
		}
		return nil
	})
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil || !strings.Contains(string(b), `"provider": "file"`) {
		t.Errorf("the manifest names no key provider: %v\n%s", err, b)
	}
}

func checkpoint(t *testing.T, c *cluster.Cluster) []byte {
	t.Helper()
	cl := c.Client(demo.OCMW, false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := cl.Get("https://" + c.LB + "/v1/log/checkpoint")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// destroy drops every table of the PostgreSQL database and the log database.
func destroy(t *testing.T, pg, logDB string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(logDB)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.DBName
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE " + name); err != nil {
		t.Fatal(err)
	}
}
