// Package siem pushes the audit trail to a SIEM as a human-readable stream
// of JSON lines, one record per line, in store order.
//
// Two sinks are supported, chosen by the URL scheme:
//
//   - https://host/path: each batch is POSTed as application/x-ndjson; a
//     2xx answer acknowledges it.
//   - syslog+tls://host:port: each record is an RFC 5424 message (facility
//     log audit, severity informational, the JSON line as MSG) sent over
//     TLS with octet-counting framing (RFC 5425). Syslog has no
//     acknowledgement, so each batch goes over its own connection, which
//     the exporter ends with a TLS close_notify: the batch counts as
//     acknowledged once the receiver, having read everything, closes its
//     side.
//
// Transport security: TLS 1.3 only (AllowTLS12 for a sink that cannot),
// and an HTTPS sink's redirects are never followed (a 3xx is a failed
// delivery, retried; the cursor does not move).
//
// Back-pressure and durability: the audit store is the buffer. The
// exporter reads the next batch only after the sink acknowledged the
// previous one, retrying a failed batch with exponential backoff, and
// persists its cursor (the last acknowledged store sequence number) in a
// file written atomically after each acknowledgement. Nothing is lost
// across restarts or sink outages; a batch that was delivered but whose
// acknowledgement did not reach the cursor (a crash or a failure in
// between) is sent again, so the only duplicates are the records of the
// last unacknowledged batch.
package siem

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/atomicfile"
	"github.com/crossroads-hub/crossroads/audit"
)

// Source yields the records to export (*audit.Trail).
type Source interface {
	RecordsAfter(ctx context.Context, afterSeq int64, limit int) ([]audit.Record, error)
}

// Config configures an Exporter.
type Config struct {
	// URL is the sink: https://… or syslog+tls://host:port.
	URL string
	// Source yields the records.
	Source Source
	// CursorFile persists the last acknowledged sequence number.
	CursorFile string
	// Cursor, instead of CursorFile, keeps the cursor in the audit store
	// under CursorName (default "siem"), shared by every node of a
	// deployment. On PostgreSQL, sequence numbers follow commit order, so
	// resuming after the cursor skips no record.
	Cursor     audit.CursorStore
	CursorName string
	// TLS configures the client side of the connection (default: system
	// roots). Whatever it says, the exporter speaks TLS 1.3 only, unless
	// AllowTLS12.
	TLS *tls.Config
	// AllowTLS12 lets the exporter speak TLS 1.2 with a sink that cannot do
	// 1.3 (some syslog receivers and SIEM collectors still cannot). It is an
	// explicit choice of the operator; the default is TLS 1.3 only.
	AllowTLS12 bool
	// BatchSize bounds the records sent at once (default 500).
	BatchSize int
	// Poll is how often to look for new records when all are exported
	// (default 1 s).
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// batch (default 500 ms and 1 min).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one delivery (default 30 s).
	Timeout time.Duration
	// Hostname is the RFC 5424 HOSTNAME (default os.Hostname()).
	Hostname string
	// Logger receives operational messages (never personal data).
	Logger *slog.Logger
}

// Exporter exports the audit trail to a SIEM.
type Exporter struct {
	cfg    Config
	sink   sink
	log    *slog.Logger
	cursor int64
}

type sink interface {
	send(ctx context.Context, recs []audit.Record, lines [][]byte) error
}

// New checks cfg and reads the cursor.
func New(cfg Config) (*Exporter, error) {
	if cfg.Source == nil || (cfg.CursorFile == "" && cfg.Cursor == nil) {
		return nil, errors.New("siem: source and cursor (file or store) are required")
	}
	if cfg.CursorName == "" {
		cfg.CursorName = "siem"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Minute, cfg.MinBackoff)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	tc := &tls.Config{}
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	}
	floor := uint16(tls.VersionTLS13)
	if cfg.AllowTLS12 {
		floor = tls.VersionTLS12
	}
	tc.MinVersion = max(tc.MinVersion, floor)
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("siem: URL %q: want https://host/path or syslog+tls://host:port", cfg.URL)
	}
	e := &Exporter{cfg: cfg, log: cfg.Logger.With("component", "siem")}
	switch u.Scheme {
	case "https":
		e.sink = &httpSink{url: u.String(), client: &http.Client{
			Timeout:   cfg.Timeout,
			Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true},
			// A redirect is an answer, not an acknowledgement: following it
			// could post the decrypted records elsewhere, even in cleartext.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	case "syslog+tls":
		if u.Port() == "" {
			return nil, fmt.Errorf("siem: URL %q: syslog over TLS needs a port (6514 by RFC 5425)", cfg.URL)
		}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		e.sink = &syslogSink{addr: u.Host, tls: tc, hostname: sanitize(cfg.Hostname, 255), timeout: cfg.Timeout}
	default:
		return nil, fmt.Errorf("siem: URL scheme %q: want https or syslog+tls", u.Scheme)
	}
	if e.cursor, err = e.readCursor(context.Background()); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Exporter) readCursor(ctx context.Context) (int64, error) {
	if e.cfg.Cursor != nil {
		n, err := e.cfg.Cursor.Cursor(ctx, e.cfg.CursorName)
		if err != nil {
			return 0, fmt.Errorf("siem: cursor: %w", err)
		}
		return n, nil
	}
	return readCursor(e.cfg.CursorFile)
}

func (e *Exporter) saveCursor(ctx context.Context, pos int64) error {
	if e.cfg.Cursor != nil {
		return e.cfg.Cursor.SetCursor(ctx, e.cfg.CursorName, pos)
	}
	return atomicfile.Write(e.cfg.CursorFile, []byte(strconv.FormatInt(pos, 10)+"\n"), 0o600)
}

// Cursor returns the last acknowledged sequence number.
func (e *Exporter) Cursor() int64 { return e.cursor }

// Run exports until ctx is done; it returns only then (with nil) or when
// the cursor cannot be saved.
func (e *Exporter) Run(ctx context.Context) error {
	if e.cfg.Cursor != nil {
		// Another node may have exported since New (shared cursor).
		c, err := e.readCursor(ctx)
		if err != nil {
			return err
		}
		e.cursor = c
	}
	e.log.Info("siem export started", "cursor", e.cursor)
	backoff := e.cfg.MinBackoff
	failures := 0
	for {
		recs, err := e.cfg.Source.RecordsAfter(ctx, e.cursor, e.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Error("siem read records", "err", err)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, e.cfg.MaxBackoff)
			continue
		}
		if len(recs) == 0 {
			if !sleep(ctx, e.cfg.Poll) {
				return nil
			}
			continue
		}
		lines := make([][]byte, len(recs))
		for i := range recs {
			if lines[i], err = json.Marshal(&recs[i]); err != nil {
				return fmt.Errorf("siem: encode record: %w", err)
			}
		}
		sctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		err = e.sink.send(sctx, recs, lines)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			e.log.Warn("siem delivery failed; retrying", "records", len(recs), "failures", failures, "retry_in", backoff.String(), "err", err)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, e.cfg.MaxBackoff)
			continue
		}
		if failures > 0 {
			e.log.Info("siem delivery resumed", "failures", failures)
		}
		failures, backoff = 0, e.cfg.MinBackoff
		last := recs[len(recs)-1].Seq
		if err := e.saveCursor(ctx, last); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("siem: save cursor: %w", err)
		}
		e.cursor = last
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// httpSink POSTs each batch as JSON lines.
type httpSink struct {
	url    string
	client *http.Client
}

func (s *httpSink) send(ctx context.Context, _ []audit.Record, lines [][]byte) error {
	var body bytes.Buffer
	for _, l := range lines {
		body.Write(l)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, &body)
	if err != nil {
		return fmt.Errorf("siem: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("siem: post: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return fmt.Errorf("siem: post: %s: redirects are not followed; configure the sink's final URL", resp.Status)
		}
		return fmt.Errorf("siem: post: %s", resp.Status)
	}
	return nil
}

// syslogSink sends each batch as RFC 5424 messages over one TLS
// connection with octet-counting framing (RFC 5425).
type syslogSink struct {
	addr     string
	tls      *tls.Config
	hostname string
	timeout  time.Duration
}

// priority is facility 13 (log audit) × 8 + severity 6 (informational).
const priority = 13*8 + 6

func (s *syslogSink) send(ctx context.Context, recs []audit.Record, lines [][]byte) error {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: s.timeout}, Config: s.tls}
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("siem: syslog dial: %w", err)
	}
	conn := c.(*tls.Conn)
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	w := bufio.NewWriterSize(conn, 64<<10)
	var msg []byte
	for i := range recs {
		msg = s.format(msg[:0], &recs[i], lines[i])
		w.WriteString(strconv.Itoa(len(msg)))
		w.WriteByte(' ')
		w.Write(msg)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("siem: syslog write: %w", err)
	}
	// End the stream and wait for the receiver to close its side: then it
	// has read every message.
	if err := conn.CloseWrite(); err != nil {
		return fmt.Errorf("siem: syslog close: %w", err)
	}
	// A reset means the receiver closed with messages unread.
	if _, err := io.Copy(io.Discard, io.LimitReader(conn, 1<<20)); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("siem: syslog: receiver did not confirm the end of the batch: %w", err)
	}
	return nil
}

// format builds an RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME
// PROCID MSGID STRUCTURED-DATA MSG.
func (s *syslogSink) format(b []byte, r *audit.Record, line []byte) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, priority, 10)
	b = append(b, ">1 "...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = append(b, s.hostname...)
	b = append(b, " crossroads - audit - "...)
	return append(b, line...)
}

// sanitize keeps printable US-ASCII (RFC 5424 header fields), at most n
// characters; "-" when empty.
func sanitize(s string, n int) string {
	out := strings.Map(func(r rune) rune {
		if r < 33 || r > 126 {
			return -1
		}
		return r
	}, s)
	if len(out) > n {
		out = out[:n]
	}
	if out == "" {
		return "-"
	}
	return out
}

// readCursor reads the cursor file; 0 when absent.
func readCursor(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("siem: cursor: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("siem: cursor file %s is corrupt", file)
	}
	return n, nil
}
