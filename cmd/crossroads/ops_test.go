package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
)

// TestAuditCommandsNeedATrail: audit check, key and rewrap read the trail
// inside the data directory (DATA/audit) and refuse a directory without
// one instead of creating an empty trail that "passes".
func TestAuditCommandsNeedATrail(t *testing.T) {
	wd := t.TempDir()
	if err := os.Mkdir(filepath.Join(wd, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"check", "key", "rewrap"} {
		r := fails(t, wd, nil, "audit", sub, "--dir", "empty")
		if !strings.Contains(r.stderr, "not initialised") {
			t.Fatalf("audit %s on an empty directory: %s", sub, r.stderr)
		}
		if ents, _ := os.ReadDir(filepath.Join(wd, "empty")); len(ents) != 0 {
			t.Fatalf("audit %s created %s", sub, ents[0].Name())
		}
	}
	ok(t, wd, nil, "init", "--dir", "data")
	if out := ok(t, wd, nil, "audit", "check", "--dir", "data"); !strings.Contains(out, "records 0") {
		t.Fatalf("audit check: %s", out)
	}
	if out := ok(t, wd, nil, "audit", "rewrap", "--dir", "data"); !strings.Contains(out, "rewrapped") {
		t.Fatalf("audit rewrap: %s", out)
	}
	// The default --dir is ./data, as for serve.
	ok(t, wd, nil, "audit", "key")
}

// TestLogOrigin: the log origin comes from --log-origin or the hub's
// hostname (no longer crossroads.example/audit for every hub); a hub whose
// log has another origin refuses an explicit, different --log-origin.
func TestLogOrigin(t *testing.T) {
	if got := deriveLogOrigin("", []string{"10.0.0.1", "hub.example.org"}); got != "hub.example.org/audit" {
		t.Fatalf("derived %q", got)
	}
	if got := deriveLogOrigin("", nil); got != "localhost/audit" {
		t.Fatalf("derived %q", got)
	}
	if got := deriveLogOrigin("x.example/log", []string{"hub.example.org"}); got != "x.example/log" {
		t.Fatalf("explicit %q", got)
	}
	wd := t.TempDir()
	ok(t, wd, nil, "ca", "init", "--dir", "data")
	// serve creates the log with the origin derived from --hostname; a bad
	// --listen makes it stop right after opening everything.
	cli(t, wd, nil, "serve", "--dir", "data", "--hostname", "hub.example.org", "--listen", "256.0.0.1:1")
	r := cli(t, wd, nil, "audit", "key", "--dir", "data")
	if !strings.HasPrefix(r.stdout, "hub.example.org/audit+") || !strings.Contains(r.stderr, "log origin: hub.example.org/audit") {
		t.Fatalf("audit key: %+v", r)
	}
	if r := fails(t, wd, nil, "serve", "--dir", "data", "--log-origin", "other.example/audit", "--listen", "256.0.0.1:1"); !strings.Contains(r.stderr, "origin") {
		t.Fatalf("serve with another --log-origin: %s", r.stderr)
	}
}

func TestVersion(t *testing.T) {
	var b bytes.Buffer
	printVersion(&b, &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-01T00:00:00Z"}}})
	if got := b.String(); got != "crossroads v1.2.3 (revision abc123, modified, 2026-12-01T00:00:00Z, go1.26)\n" {
		t.Fatalf("version: %q", got)
	}
	b.Reset()
	printVersion(&b, nil)
	if got := b.String(); got != "crossroads (devel) (revision unknown)\n" {
		t.Fatalf("version without build info: %q", got)
	}
	if out := ok(t, t.TempDir(), nil, "version"); !strings.HasPrefix(out, "crossroads ") || !strings.Contains(out, "revision") {
		t.Fatalf("crossroads version: %q", out)
	}
}

// TestCARenew: 'ca renew' issues a successor with the same participant,
// names and usage and a new key; the old certificate stays valid.
func TestCARenew(t *testing.T) {
	wd := t.TempDir()
	ok(t, wd, nil, "init", "--dir", "data")
	ok(t, wd, nil, "ca", "issue", "--dir", "data", "--participant", "rr", "--server", "--hostname", "rr.example", "--hostname", "10.1.2.3", "--out", "old")
	old := readCert(t, filepath.Join(wd, "old", "rr.crt"))
	ok(t, wd, nil, "ca", "renew", "--dir", "data", "--serial", strings.ToUpper(pki.SerialHex(old)), "--out", "new", "--days", "30")
	renewed := readCert(t, filepath.Join(wd, "new", "rr.crt"))
	if id, _ := pki.ParticipantID(renewed); id != "rr" || pki.SerialHex(renewed) == pki.SerialHex(old) ||
		strings.Join(renewed.DNSNames, ",") != "rr.example" || len(renewed.IPAddresses) != 1 || len(renewed.ExtKeyUsage) != 2 {
		t.Fatalf("renewed certificate: id %q, names %v %v, usage %v", id, renewed.DNSNames, renewed.IPAddresses, renewed.ExtKeyUsage)
	}
	if d := time.Until(renewed.NotAfter); d > 31*24*time.Hour || d < 29*24*time.Hour {
		t.Fatalf("renewed for %v", d)
	}
	oldKey, _ := os.ReadFile(filepath.Join(wd, "old", "rr.key"))
	newKey, _ := os.ReadFile(filepath.Join(wd, "new", "rr.key"))
	if bytes.Equal(oldKey, newKey) || len(newKey) == 0 {
		t.Fatal("renewal kept the old key")
	}
	// By participant: its latest certificate; the key file is not overwritten.
	fails(t, wd, nil, "ca", "renew", "--dir", "data", "--participant", "rr", "--out", "new")
	ok(t, wd, nil, "ca", "renew", "--dir", "data", "--participant", "rr", "--out", "newer")
	fails(t, wd, nil, "ca", "renew", "--dir", "data", "--participant", "nobody", "--out", "x")
	fails(t, wd, nil, "ca", "renew", "--dir", "data", "--serial", "00", "--participant", "rr")
	list := ok(t, wd, nil, "get", "certificates", "--participant", "rr", "--dir", "data")
	rows := 0
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "rr" {
			rows++
		}
	}
	if rows != 3 {
		t.Fatalf("rr has not three certificates:\n%s", list)
	}
}

// TestHubRenewsItsCertificateBeforeExpiry: a running hub renews its own
// certificate once it is within RenewBefore of its expiry, and presents
// the new one (here the window is the whole validity but a second, so the
// first renewal comes a second after start).
func TestHubRenewsItsCertificateBeforeExpiry(t *testing.T) {
	wd := t.TempDir()
	ok(t, wd, nil, "init", "--dir", "data")
	h, base := runningHub(t, wd, backend{name: "sqlite"}, hub.Config{RenewBefore: pki.DefaultCertValidity - time.Second, RenewCheck: 50 * time.Millisecond})
	first := h.CurrentCertificate()
	ops := client(t, wd, "ops")
	within(t, 5*time.Second, "hub certificate renewed", func() bool {
		return pki.SerialHex(h.CurrentCertificate()) != pki.SerialHex(first)
	})
	code, _, err := get(ops, base+"/healthz")
	if err != nil || code != 200 {
		t.Fatalf("after renewal: %d %v", code, err)
	}
	// The renewed certificate is on disk: a restart keeps it.
	if got := certSerial(t, filepath.Join(wd, "data", "hub", "hub.crt")); got == pki.SerialHex(first) {
		t.Fatal("the renewed certificate was not written")
	}
}
