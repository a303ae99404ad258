package directory

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/policy"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/sqlite"
	"github.com/jackc/pgx/v5"
)

// TestStartNational measures a node's start — directory.Open on a store of
// CROSSROADS_DIRECTORY_START integrations (e.g. 10000000), loading every
// register and integration until the directory decides — on SQLite (a file
// kept in CROSSROADS_DIRECTORY_START_DIR, filled once) and, with
// CROSSROADS_DIRECTORY_START_PG naming a database to fill (once), on
// PostgreSQL. Skipped without CROSSROADS_DIRECTORY_START. It reports; it
// asserts no timing.
func TestStartNational(t *testing.T) {
	nStr := os.Getenv("CROSSROADS_DIRECTORY_START")
	if nStr == "" {
		t.Skip("CROSSROADS_DIRECTORY_START not set")
	}
	n, err := strconv.Atoi(nStr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := os.Getenv("CROSSROADS_DIRECTORY_START_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if os.Getenv("CROSSROADS_DIRECTORY_START_SKIP_SQLITE") == "" {
		file := filepath.Join(dir, fmt.Sprintf("registers-%d.db", n))
		_, statErr := os.Stat(file)
		s := openStoreAt(t, file)
		if statErr != nil {
			fillSQLite(t, s, file, n)
		}
		measureStart(t, "sqlite", s, n)
	}
	if dsn := os.Getenv("CROSSROADS_DIRECTORY_START_PG"); dsn != "" {
		pg, err := postgres.OpenRegisters(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer pg.Close()
		fillPostgres(t, pg, dsn, n)
		measureStart(t, "postgres", pg, n)
	}
}

func openStoreAt(t *testing.T, file string) crossroads.RegisterStore {
	t.Helper()
	s, err := sqliteOpen(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func measureStart(t *testing.T, name string, s crossroads.RegisterStore, n int) {
	ctx := context.Background()
	if os.Getenv("CROSSROADS_DIRECTORY_START_SNAPSHOT_ONLY") != "" {
		// The directory the store holds, built from the same synthetic
		// integrations the store was filled with (not read back: that is
		// the full start, measured without this variable).
		d := newDirectory(s)
		if err := d.reloadRegisters(ctx); err != nil {
			t.Fatal(err)
		}
		last, err := s.LastIntegrationChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d.changes = last
		for i := 0; i < n; i++ {
			d.put(scaleIntegration(i, n))
		}
		d.fit()
		measureSnapshotStart(t, name, s, n, d)
		return
	}
	if os.Getenv("CROSSROADS_DIRECTORY_START_SCAN") != "" {
		// The store's part alone: every integration read, none kept.
		start, cpu0, rows := time.Now(), cpuTime(), 0
		if err := s.EachIntegration(ctx, func(crossroads.Integration) error { rows++; return nil }); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: scan of %d integrations: %.2f s wall, %.2f s CPU", name, rows, time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds())
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	start := time.Now()
	d, err := Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	cpu := cpuTime() - cpu0
	in := scaleIntegration(n/3, n)
	g, _ := strconv.Atoi(in.Participant[len("inst-"):])
	q := policy.Request{Requester: in.Participant, Service: fmt.Sprintf("svc-%d", g%100), Purpose: "p2", Subject: in.Person}
	if dec := policy.Decide(d, q, t0.Add(time.Hour)); !dec.Allowed {
		t.Fatalf("%s: not ready: %s", name, dec.Reason)
	}
	mem := float64(heapInUse()-before.HeapAlloc) / float64(n)
	var load [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0], &load[1], &load[2])
	}
	t.Logf("%s: %d integrations: start %.2f s wall, %.2f s CPU, %.1f B per integration, load average %.1f", name, n, took.Seconds(), cpu.Seconds(), mem, load[0])
	d0 := d

	d = nil
	measureSnapshotStart(t, name, s, n, d0)
}

func measureSnapshotStart(t *testing.T, name string, s crossroads.RegisterStore, n int, d *Directory) {
	ctx := context.Background()
	var load [3]float64
	in := scaleIntegration(n/3, n)
	g, _ := strconv.Atoi(in.Participant[len("inst-"):])
	q := policy.Request{Requester: in.Participant, Service: fmt.Sprintf("svc-%d", g%100), Purpose: "p2", Subject: in.Person}
	// A start from a snapshot: one change through the directory (so that
	// the feed has a position to anchor to), a snapshot, a start from it.
	extra := scaleIntegration(n/3, n)
	extra.From = extra.From.AddDate(0, 0, -1)
	if err := d.Store().PutIntegration(ctx, extra); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RefreshIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), SnapshotFile)
	wstart := time.Now()
	if err := d.WriteSnapshot(ctx, file); err != nil {
		t.Fatal(err)
	}
	wrote := time.Since(wstart)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	d = nil
	runtime.GC()
	cpu0 := cpuTime()
	start := time.Now()
	d2, used, err := OpenSnapshot(ctx, s, file)
	if err != nil || !used {
		t.Fatalf("%s: snapshot start: used %v, %v", name, used, err)
	}
	took, cpu := time.Since(start), cpuTime()-cpu0
	if dec := policy.Decide(d2, q, t0.Add(time.Hour)); !dec.Allowed {
		t.Fatalf("%s: not ready after the snapshot start: %s", name, dec.Reason)
	}
	if got := d2.Integrations(extra.Person, extra.Participant); len(got) != 2 {
		t.Fatalf("%s: after the snapshot start: %v", name, got)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &load[0])
	}
	t.Logf("%s: %d integrations: snapshot of %.0f MB written in %.2f s; start from it %.2f s wall, %.2f s CPU, load average %.1f",
		name, n, float64(fi.Size())/1e6, wrote.Seconds(), took.Seconds(), cpu.Seconds(), load[0])
	if err := d2.Store().DeleteIntegration(ctx, extra); err != nil { // leave the store as filled
		t.Fatal(err)
	}
	runtime.KeepAlive(d2)
}

func fillSQLite(t *testing.T, s crossroads.RegisterStore, file string, n int) {
	ctx := context.Background()
	if err := s.Apply(ctx, nationalNetwork()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	// The change feed's trigger would record 10 M changes a node start
	// never reads: dropped for the fill, restored after.
	var trigger string
	if err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'integrations_inserted'`).Scan(&trigger); err != nil {
		t.Fatal(err)
	}
	persons := max(1, n/2)
	stmts := []string{
		`DROP TRIGGER integrations_inserted`,
		fmt.Sprintf(`INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_to, kind)
		WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
		SELECT printf('%%011d', ((i %% %d) * 2654435761) %% 99999999999), 'inst-' || (((i %% %d) * 7 + i / %d) %% 1000), 's', 'c',
			strftime('%%Y-%%m-%%dT%%H:%%M:%%S.000000000Z', '2026-01-01', '-' || (i %% 3000) || ' days'),
			CASE WHEN i %% 8 = 7 THEN '2027-01-01T00:00:00.000000000Z' END, 'person'
		FROM s ORDER BY 1, 2`, n-1, persons, persons, persons),
		trigger,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	t.Logf("sqlite: filled %d integrations in %s", n, time.Since(start).Round(time.Second))
}

func fillPostgres(t *testing.T, s crossroads.RegisterStore, dsn string, n int) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var have int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM integrations`).Scan(&have); err != nil {
		t.Fatal(err)
	}
	if have == n {
		return
	}
	if os.Getenv("CROSSROADS_DIRECTORY_START_SNAPSHOT_ONLY") != "" {
		// A start from a snapshot reads the registers and the feed, not
		// the integrations: the registers suffice.
		if err := s.Apply(ctx, nationalNetwork()); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := s.Apply(ctx, nationalNetwork()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	persons := max(1, n/2)
	for _, q := range []string{
		`ALTER TABLE integrations DISABLE TRIGGER USER`,
		`TRUNCATE integrations`,
		fmt.Sprintf(`INSERT INTO integrations(person, participant, sector, capacity, valid_from, valid_from_ns, valid_to, valid_to_ns, kind)
		SELECT lpad(((i %% %d) * 2654435761 %% 99999999999)::text, 11, '0'), 'inst-' || (((i %% %d) * 7 + i / %d) %% 1000), 's', 'c',
			timestamptz '2026-01-01 00:00:00+00' - (i %% 3000) * interval '1 day', 0,
			CASE WHEN i %% 8 = 7 THEN timestamptz '2027-01-01 00:00:00+00' END, CASE WHEN i %% 8 = 7 THEN 0 END, 'person'
		FROM generate_series(0::bigint, %d) i`, persons, persons, persons, n-1),
		`ALTER TABLE integrations ENABLE TRIGGER USER`,
		`VACUUM ANALYZE integrations`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	t.Logf("postgres: filled %d integrations in %s", n, time.Since(start).Round(time.Second))
}

func sqliteOpen(file string) (*sqlite.Registers, error) {
	return sqlite.OpenRegisters(context.Background(), file)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
