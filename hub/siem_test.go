package hub_test

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/hub"
)

// TestSIEMAllowTLS12: the hub's SIEMAllowTLS12 lets the export reach a
// receiver that speaks at most TLS 1.2 (the exporter refuses it by
// default: siem/TestTLS13Only).
func TestSIEMAllowTLS12(t *testing.T) {
	var lines atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		for _, c := range b {
			if c == '\n' {
				lines.Add(1)
			}
		}
	}))
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	roots := filepath.Join(t.TempDir(), "siem-ca.pem")
	if err := os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := demotest.Start(t, demo.Options{Configure: func(c *hub.Config) {
		c.SIEMURL, c.SIEMRootCAs, c.SIEMAllowTLS12 = srv.URL+"/ingest", roots, true
	}})
	records(t, r, "limit=1") // a search: one record at least
	deadline := time.Now().Add(20 * time.Second)
	for lines.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no record reached the TLS 1.2 receiver")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
