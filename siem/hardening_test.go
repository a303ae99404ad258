package siem_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/crossroads-hub/crossroads/siem"
)

// TestRedirectNotFollowed: a sink answering with a redirect to plain HTTP
// is not followed (no record reaches the other end) and the cursor does
// not advance.
func TestRedirectNotFollowed(t *testing.T) {
	tr := openTrail(t)
	var leaked atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 || r.Method == http.MethodPost || r.Method == http.MethodGet {
			leaked.Add(1)
		}
	}))
	defer plain.Close()
	var redirected atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		code := []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusMovedPermanently}[redirected.Load()%4]
		http.Redirect(w, r, plain.URL+"/ingest", code)
	}))
	defer srv.Close()
	cursor := filepath.Join(t.TempDir(), "siem.cursor")
	var failures atomic.Int32
	commit(t, tr, 0, 5)
	_, stop := run(t, siem.Config{URL: srv.URL + "/ingest", Source: tr, CursorFile: cursor,
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig, Logger: slog.New(counter{"siem delivery failed; retrying", &failures})})
	waitFor(t, "redirects answered", func() bool { return redirected.Load() >= 4 && failures.Load() >= 4 })
	stop()
	if n := leaked.Load(); n != 0 {
		t.Fatalf("%d requests followed the redirect to plain HTTP", n)
	}
	if c := cursorOf(t, cursor); c != 0 {
		t.Fatalf("cursor advanced to %d on a redirect", c)
	}
}

// TestTLS13Only: a sink that speaks at most TLS 1.2 is refused unless the
// operator allows TLS 1.2 explicitly.
func TestTLS13Only(t *testing.T) {
	tr := openTrail(t)
	var got atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	clientTLS := srv.Client().Transport.(*http.Transport).TLSClientConfig
	commit(t, tr, 0, 3)

	cursor := filepath.Join(t.TempDir(), "siem.cursor")
	var failures atomic.Int32
	_, stop := run(t, siem.Config{URL: srv.URL + "/ingest", Source: tr, CursorFile: cursor, TLS: clientTLS,
		Logger: slog.New(counter{"siem delivery failed; retrying", &failures})})
	waitFor(t, "refused handshakes", func() bool { return failures.Load() >= 3 })
	stop()
	if got.Load() != 0 || cursorOf(t, cursor) != 0 {
		t.Fatalf("delivered over TLS 1.2 by default: %d requests, cursor %d", got.Load(), cursorOf(t, cursor))
	}

	// A client configuration asking for less does not lower the floor either.
	low := clientTLS.Clone()
	low.MinVersion = tls.VersionTLS10
	failures.Store(0)
	_, stop = run(t, siem.Config{URL: srv.URL + "/ingest", Source: tr, CursorFile: cursor, TLS: low,
		Logger: slog.New(counter{"siem delivery failed; retrying", &failures})})
	waitFor(t, "refused handshakes", func() bool { return failures.Load() >= 3 })
	stop()
	if got.Load() != 0 {
		t.Fatal("the client configuration lowered the TLS floor")
	}

	_, stop = run(t, siem.Config{URL: srv.URL + "/ingest", Source: tr, CursorFile: cursor, TLS: clientTLS, AllowTLS12: true})
	waitFor(t, "delivery over TLS 1.2 when allowed", func() bool { return cursorOf(t, cursor) == 3 })
	stop()
}
