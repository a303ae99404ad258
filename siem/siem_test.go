package siem_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/siem"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openTrail(t *testing.T) *audit.Trail {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.OpenAudit(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tr, err := audit.Open(ctx, audit.Config{Dir: dir, Store: st, MaxMergeDelay: 400 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return tr
}

func commit(t *testing.T, tr *audit.Trail, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := tr.Commit(context.Background(), &crossroads.AuditRecord{
			ExchangeID: fmt.Sprintf("ex-%04d", i), Requester: "inst-a", Provider: "src-b", Service: "svc-income",
			Purpose: "benefit-check", Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// received collects the sequence numbers a sink got, in order.
type received struct {
	mu   sync.Mutex
	seqs []int64
	recs map[int64]audit.Record
}

func (r *received) add(t *testing.T, line []byte) {
	var rec audit.Record
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Errorf("line %q: %v", line, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recs == nil {
		r.recs = map[int64]audit.Record{}
	}
	r.seqs = append(r.seqs, rec.Seq)
	r.recs[rec.Seq] = rec
}

// complete reports whether every sequence number 1..n arrived.
func (r *received) complete(n int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := int64(1); s <= n; s++ {
		if _, ok := r.recs[s]; !ok {
			return false
		}
	}
	return true
}

// duplicates returns the sequence numbers that arrived more than once.
func (r *received) duplicates() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int64]bool{}
	var d []int64
	for _, s := range r.seqs {
		if seen[s] {
			d = append(d, s)
		}
		seen[s] = true
	}
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // stops a hung test only
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run starts an exporter and returns a function stopping it.
func run(t *testing.T, cfg siem.Config) (*siem.Exporter, func()) {
	t.Helper()
	cfg.BatchSize, cfg.Poll, cfg.MinBackoff, cfg.MaxBackoff, cfg.Timeout = 10, 10*time.Millisecond, 10*time.Millisecond, 50*time.Millisecond, 5*time.Second
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	e, err := siem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	return e, stop
}

func cursorOf(t *testing.T, file string) int64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func TestHTTPSExport(t *testing.T) {
	tr := openTrail(t)
	var got received
	var down atomic.Bool
	var refused atomic.Int32
	var ackLost atomic.Int32 // batches to take but answer 500 to
	var lostBatch []int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			refused.Add(1)
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("%s %s", r.Method, r.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(r.Body)
		var batch []int64
		for sc.Scan() {
			got.add(t, sc.Bytes())
			var rec audit.Record
			json.Unmarshal(sc.Bytes(), &rec)
			batch = append(batch, rec.Seq)
		}
		if ackLost.Add(-1) >= 0 {
			lostBatch = batch
			http.Error(w, "lost", http.StatusInternalServerError)
			return
		}
	}))
	defer srv.Close()
	cursor := filepath.Join(t.TempDir(), "siem.cursor")
	cfg := siem.Config{URL: srv.URL + "/ingest", Source: tr, CursorFile: cursor,
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig}

	// The sink is down: the exporter retries, losing nothing.
	commit(t, tr, 0, 25)
	down.Store(true)
	_, stop := run(t, cfg)
	waitFor(t, "retries", func() bool { return refused.Load() >= 3 })
	if cursorOf(t, cursor) != 0 {
		t.Fatal("cursor moved while the sink was down")
	}
	down.Store(false)
	waitFor(t, "all 25 records", func() bool { return got.complete(25) })
	waitFor(t, "the cursor at 25", func() bool { return cursorOf(t, cursor) == 25 })
	stop()

	// Restart: the exporter resumes from its cursor.
	commit(t, tr, 25, 12)
	_, stop = run(t, cfg)
	// Delivery is at least once: a stop between a batch's acknowledgement
	// and its cursor write sends the batch again, so wait for the cursor.
	waitFor(t, "all 37 records", func() bool { return got.complete(37) && cursorOf(t, cursor) == 37 })
	stop()
	if d := got.duplicates(); len(d) != 0 {
		t.Fatalf("duplicates %v without a lost acknowledgement", d)
	}

	// A batch delivered whose acknowledgement is lost is sent again: its
	// records are the only duplicates.
	ackLost.Store(1)
	commit(t, tr, 37, 5)
	_, stop = run(t, cfg)
	waitFor(t, "all 42 records", func() bool { return got.complete(42) && cursorOf(t, cursor) == 42 })
	stop()
	d := got.duplicates()
	if len(d) == 0 || fmt.Sprint(d) != fmt.Sprint(lostBatch) {
		t.Fatalf("duplicates %v, want exactly the unacknowledged batch %v", d, lostBatch)
	}
	rec := got.recs[40]
	if rec.ExchangeID != "ex-0039" || rec.Requester != "inst-a" || rec.Service != "svc-income" || rec.Outcome != "allowed" {
		t.Fatalf("record %+v", rec)
	}
}

// syslogReceiver is an RFC 5425 receiver: TLS, octet-counted RFC 5424
// messages, read until the sender ends the stream.
type syslogReceiver struct {
	t    *testing.T
	cert tls.Certificate
	addr string
	got  *received

	mu sync.Mutex
	ln net.Listener
}

func (s *syslogReceiver) start() {
	s.t.Helper()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{s.cert}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
}

func (s *syslogReceiver) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln.Close()
}

func (s *syslogReceiver) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		l, err := r.ReadString(' ')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.t.Errorf("syslog frame: %v", err)
			}
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(l, " "))
		if err != nil {
			s.t.Errorf("syslog frame length %q", l)
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			s.t.Errorf("syslog frame: %v", err)
			return
		}
		// <110>1 TIMESTAMP HOSTNAME crossroads - audit - {json}
		f := strings.SplitN(string(msg), " ", 8)
		if len(f) != 8 || f[0] != "<110>1" || f[3] != "crossroads" || f[4] != "-" || f[5] != "audit" || f[6] != "-" {
			s.t.Errorf("syslog message %q", msg)
			return
		}
		if _, err := time.Parse(time.RFC3339Nano, f[1]); err != nil {
			s.t.Errorf("timestamp %q", f[1])
		}
		s.got.add(s.t, []byte(f[7]))
	}
}

func TestSyslogTLSExport(t *testing.T) {
	tr := openTrail(t)
	certSrv := httptest.NewTLSServer(http.NotFoundHandler()) // for its test certificate
	certSrv.Close()
	rcv := &syslogReceiver{t: t, cert: certSrv.TLS.Certificates[0], got: &received{}}
	rcv.start()
	cursor := filepath.Join(t.TempDir(), "siem.cursor")
	var failures atomic.Int32
	cfg := siem.Config{URL: "syslog+tls://" + rcv.addr, Source: tr, CursorFile: cursor, Hostname: "hub-1",
		TLS: certSrv.Client().Transport.(*http.Transport).TLSClientConfig, Logger: slog.New(counter{"siem delivery failed; retrying", &failures})}

	commit(t, tr, 0, 15)
	_, stop := run(t, cfg)
	waitFor(t, "15 records", func() bool { return rcv.got.complete(15) })
	waitFor(t, "the cursor at 15", func() bool { return cursorOf(t, cursor) == 15 })

	// The receiver goes away: nothing is lost while it is down.
	rcv.stop()
	commit(t, tr, 15, 10)
	waitFor(t, "failed deliveries", func() bool { return failures.Load() >= 3 })
	if c := cursorOf(t, cursor); c != 15 {
		t.Fatalf("cursor %d moved while the receiver was down", c)
	}
	rcv.start() // same address
	waitFor(t, "25 records", func() bool { return rcv.got.complete(25) })
	waitFor(t, "the cursor at 25", func() bool { return cursorOf(t, cursor) == 25 })
	stop()

	// Restart resumes from the cursor.
	commit(t, tr, 25, 7)
	_, stop = run(t, cfg)
	waitFor(t, "32 records", func() bool { return rcv.got.complete(32) })
	stop()
	if d := rcv.got.duplicates(); len(d) != 0 {
		t.Fatalf("duplicates %v", d)
	}
	if r := rcv.got.recs[20]; r.ExchangeID != "ex-0019" || r.Requester != "inst-a" {
		t.Fatalf("record %+v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	tr := openTrail(t)
	for _, u := range []string{"http://siem.example/", "syslog+tls://siem.example", "ftp://x/", "::"} {
		if _, err := siem.New(siem.Config{URL: u, Source: tr, CursorFile: filepath.Join(t.TempDir(), "c")}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	bad := filepath.Join(t.TempDir(), "c")
	os.WriteFile(bad, []byte("garbage"), 0o600)
	if _, err := siem.New(siem.Config{URL: "https://siem.example/", Source: tr, CursorFile: bad}); err == nil {
		t.Error("corrupt cursor accepted")
	}
}

// counter is a slog handler counting the messages equal to msg.
type counter struct {
	msg string
	n   *atomic.Int32
}

func (c counter) Enabled(context.Context, slog.Level) bool { return true }
func (c counter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == c.msg {
		c.n.Add(1)
	}
	return nil
}
func (c counter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c counter) WithGroup(string) slog.Handler      { return c }

// TestStoreCursor: with the cursor in the audit store, an exporter made
// before another one exported (a second node, waiting for the SIEM lease)
// resumes where that one stopped: nothing is sent twice.
func TestStoreCursor(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.OpenAudit(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tr, err := audit.Open(ctx, audit.Config{Dir: dir, Store: st, MaxMergeDelay: 400 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(ctx)
	var got received
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			got.add(t, sc.Bytes())
		}
	}))
	defer srv.Close()
	cfg := siem.Config{URL: srv.URL + "/ingest", Source: tr, Cursor: st,
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	second, err := siem.New(cfg) // made now: its cursor is 0
	if err != nil {
		t.Fatal(err)
	}
	commit(t, tr, 0, 10)
	_, stop := run(t, cfg)
	waitFor(t, "10 records", func() bool { return got.complete(10) })
	waitFor(t, "the stored cursor at 10", func() bool { n, _ := st.Cursor(ctx, "siem"); return n == 10 })
	stop()
	commit(t, tr, 10, 5)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- second.Run(rctx) }()
	waitFor(t, "15 records", func() bool { return got.complete(15) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := got.duplicates(); len(d) != 0 {
		t.Fatalf("records sent twice: %v", d)
	}
}
