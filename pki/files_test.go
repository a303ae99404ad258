package pki

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := InitCA(dir, []byte("a passphrase for files"), "Files CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _, err := ca.Issue(IssueRequest{Participant: "inst"})
	if err != nil {
		t.Fatal(err)
	}
	c, k := filepath.Join(dir, "inst.crt"), filepath.Join(dir, "inst.key")
	os.WriteFile(c, certPEM, 0o600)
	os.WriteFile(k, keyPEM, 0o600)
	cfg, err := LoadClientTLS(c, k, filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Certificates) != 1 || cfg.RootCAs == nil || cfg.MinVersion != ClientTLSConfig(nil, cfg.Certificates[0]).MinVersion {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := LoadClientTLS(c, k, c+".missing"); err == nil {
		t.Fatal("missing CA file accepted")
	}
	if _, err := LoadPool(k); err == nil {
		t.Fatal("a key file accepted as CA certificates")
	}
	if _, err := LoadClientTLS(k, c, filepath.Join(dir, "ca.crt")); err == nil {
		t.Fatal("swapped certificate and key accepted")
	}
}
