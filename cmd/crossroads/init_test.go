package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// backend is where a test hub keeps its registers and audit records.
type backend struct {
	name string
	env  []string // CROSSROADS_DATABASE_URL for PostgreSQL
	url  string
}

// backends are the embedded default and a fresh PostgreSQL database.
func backends(t *testing.T) []func(t *testing.T) backend {
	return []func(t *testing.T) backend{
		func(t *testing.T) backend { return backend{name: "sqlite"} },
		func(t *testing.T) backend {
			db := pgtest.New(t)
			return backend{name: "postgres", env: []string{"CROSSROADS_DATABASE_URL=" + db.DSN}, url: db.DSN}
		},
	}
}

func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for i, mk := range backends(t) {
		t.Run([]string{"sqlite", "postgres"}[i], func(t *testing.T) { fn(t, mk(t)) })
	}
}

func networkFile(t *testing.T) string {
	p, err := filepath.Abs(filepath.Join("..", "..", "apply", "testdata", "network.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// opensslSerial writes a serial as 'openssl x509 -text' does: upper case,
// colon-separated octets, with a leading zero octet.
func opensslSerial(s string) string {
	if len(s)%2 == 1 {
		s = "0" + s
	}
	var parts []string
	for i := 0; i < len(s); i += 2 {
		parts = append(parts, strings.ToUpper(s[i:i+2]))
	}
	return "00:" + strings.Join(parts, ":")
}

// TestInitOnBothBackends: 'crossroads init' bootstraps a hub on either
// backend, then every command (ca, apply, audit, get) finds the same
// stores; a second init creates nothing and overwrites nothing.
func TestInitOnBothBackends(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		wd := t.TempDir()
		out := ok(t, wd, b.env, "init", "--dir", "data", "--hostname", "hub.test", "--operator", "crossroads-ops")
		for _, want := range []string{"network CA: created", "operator: crossroads-ops registered", "operator certificate: certs/crossroads-ops.crt", "origin hub.test/audit"} {
			if !strings.Contains(out, want) {
				t.Fatalf("init said:\n%s\nwant %q", out, want)
			}
		}
		_, sqliteFile := os.Stat(filepath.Join(wd, "data", "registers.db"))
		if (b.url == "") != (sqliteFile == nil) {
			t.Fatalf("%s: registers.db exists = %v", b.name, sqliteFile == nil)
		}
		key1, _ := os.ReadFile(filepath.Join(wd, "certs", "crossroads-ops.key"))
		ca1, _ := os.ReadFile(filepath.Join(wd, "data", "ca", "ca.crt"))
		note1, _ := os.ReadFile(filepath.Join(wd, "data", "audit", "audit-note.key"))
		out = ok(t, wd, b.env, "init", "--dir", "data", "--hostname", "other.test", "--operator", "crossroads-ops")
		if !strings.Contains(out, "already") || strings.Contains(out, "created") {
			t.Fatalf("second init:\n%s", out)
		}
		key2, _ := os.ReadFile(filepath.Join(wd, "certs", "crossroads-ops.key"))
		ca2, _ := os.ReadFile(filepath.Join(wd, "data", "ca", "ca.crt"))
		note2, _ := os.ReadFile(filepath.Join(wd, "data", "audit", "audit-note.key"))
		if string(key1) != string(key2) || string(ca1) != string(ca2) || string(note1) != string(note2) || len(key1) == 0 {
			t.Fatal("a second init overwrote a key or the CA")
		}
		fails(t, wd, b.env, "init", "--dir", "data", "--log-origin", "another/audit")
		fails(t, wd, append(b.env, "CROSSROADS_CA_PASSPHRASE=the wrong passphrase!"), "init", "--dir", "data")

		r := cli(t, wd, b.env, "audit", "key", "--dir", "data")
		if r.code != 0 || !strings.Contains(r.stderr, "log origin: hub.test/audit") || !strings.HasPrefix(r.stdout, "hub.test/audit+") {
			t.Fatalf("audit key: %+v", r)
		}
		ok(t, wd, b.env, "apply", "--dir", "data", "-f", networkFile(t), "--dry-run")
		ok(t, wd, b.env, "apply", "--dir", "data", "-f", networkFile(t))
		if out := ok(t, wd, b.env, "apply", "--dir", "data", "-f", networkFile(t)); !strings.Contains(out, "no changes") {
			t.Fatalf("second apply: %s", out)
		}
		out = ok(t, wd, b.env, "ca", "issue", "--dir", "data", "--participant", "ocmw-gent", "--out", "certs")
		serial := certSerial(t, filepath.Join(wd, "certs", "ocmw-gent.crt"))
		if !strings.Contains(out, serial) {
			t.Fatalf("issue: %s", out)
		}
		fails(t, wd, b.env, "ca", "issue", "--dir", "data", "--participant", "ocmw-gent", "--out", "certs") // the key exists
		fails(t, wd, b.env, "ca", "issue", "--dir", "data", "--participant", "Not Valid", "--out", "certs")
		fails(t, wd, b.env, "ca", "revoke", "--dir", "data", "--serial", "00")
		fails(t, wd, b.env, "ca", "revoke", "--dir", "data", "--serial", "not-hex")
		ok(t, wd, b.env, "ca", "revoke", "--dir", "data", "--serial", opensslSerial(serial), "--reason", "test")
		list := ok(t, wd, b.env, "ca", "list", "--dir", "data")
		if !strings.Contains(list, serial) || !strings.Contains(list, "crossroads-ops") {
			t.Fatalf("ca list:\n%s", list)
		}
		if line := lineWith(list, serial); strings.HasSuffix(strings.TrimSpace(line), "-") {
			t.Fatalf("revoked certificate listed as not revoked: %q", line)
		}
		ok(t, wd, b.env, "audit", "check", "--dir", "data")
	})
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func certSerial(t *testing.T, file string) string {
	t.Helper()
	return pki.SerialHex(readCert(t, file))
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runningHub starts a hub in this process on the data directory wd/data.
func runningHub(t *testing.T, wd string, b backend, cfg hub.Config) (*hub.Hub, string) {
	t.Helper()
	cfg.DataDir, cfg.DatabaseURL, cfg.Passphrase = filepath.Join(wd, "data"), b.url, []byte(testPassphrase)
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		h.Close(context.Background())
	})
	return h, "https://" + ln.Addr().String()
}

func client(t *testing.T, wd, participant string) *http.Client {
	t.Helper()
	cfg, err := pki.LoadClientTLS(filepath.Join(wd, "certs", participant+".crt"), filepath.Join(wd, "certs", participant+".key"), filepath.Join(wd, "certs", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestRevokeReachesRunningHub: 'ca revoke' on the stores the hub runs on
// (PostgreSQL included: it used to write to registers.db only) is refused
// by the running hub within a second; revoking the hub's own certificate
// makes it reissue and present a new one (issue 16 item 5).
func TestRevokeReachesRunningHub(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		wd := t.TempDir()
		ok(t, wd, b.env, "init", "--dir", "data", "--operator", "crossroads-ops")
		ok(t, wd, b.env, "apply", "--dir", "data", "-f", networkFile(t))
		ok(t, wd, b.env, "ca", "issue", "--dir", "data", "--participant", "ocmw-gent", "--out", "certs")
		h, base := runningHub(t, wd, b, hub.Config{})
		c := client(t, wd, "ocmw-gent")
		if code, body, err := get(c, base+"/v1/integrations"); err != nil || code != 200 {
			t.Fatalf("before revocation: %d %s %v", code, body, err)
		}
		ok(t, wd, b.env, "ca", "revoke", "--dir", "data", "--serial", opensslSerial(certSerial(t, filepath.Join(wd, "certs", "ocmw-gent.crt"))))
		took := within(t, time.Second, "revoked certificate refused", func() bool {
			code, _, err := get(c, base+"/v1/integrations")
			return err != nil || code == 401 || code == 403
		})
		t.Logf("%s: revoked certificate refused after %v", b.name, took)

		old := h.CurrentCertificate()
		ops := client(t, wd, "crossroads-ops")
		ok(t, wd, b.env, "ca", "revoke", "--dir", "data", "--serial", pki.SerialHex(old))
		var presented *x509.Certificate
		within(t, 2*time.Second, "hub presents a new certificate", func() bool {
			conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{RootCAs: ops.Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "localhost"})
			if err != nil {
				return false
			}
			defer conn.Close()
			presented = conn.ConnectionState().PeerCertificates[0]
			return pki.SerialHex(presented) != pki.SerialHex(old)
		})
		if id, _ := pki.ParticipantID(presented); id != hub.HubID || pki.SerialHex(h.CurrentCertificate()) != pki.SerialHex(presented) {
			t.Fatalf("new certificate names %q", id)
		}
		// The operator reaches it (verifying the new certificate) and the
		// expiry metric shows it.
		code, metrics, err := get(ops, base+"/metrics")
		if err != nil || code != 200 {
			t.Fatalf("metrics: %d %v", code, err)
		}
		want := fmt.Sprintf(`crossroads_certificate_expiry_seconds{participant="hub",serial=%q}`, pki.SerialHex(presented))
		if !strings.Contains(metrics, want) || !strings.Contains(metrics, `crossroads_certificate_expiry_seconds{participant="crossroads-ops"`) {
			t.Fatalf("metrics lack %s or the operator's certificate", want)
		}
	})
}
