package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadMembersFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "de"), 0o700)
	os.WriteFile(filepath.Join(dir, "de", "auth.crt"), []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"), 0o644)
	f := filepath.Join(dir, "members.yaml")
	os.WriteFile(f, []byte("federation:\n  members:\n    - country: DE\n      certificates:\n        - {type: AUTHENTICATION, file: de/auth.crt, signature: c2ln}\n"), 0o644)
	mf, err := readMembersFile(f)
	if err != nil {
		t.Fatal(err)
	}
	c := mf.Federation.Members[0].Certificates[0]
	if !strings.Contains(c.PEM, "BEGIN CERTIFICATE") || c.File != "" || c.Signature != "c2ln" {
		t.Errorf("certificate %+v", c)
	}
	os.WriteFile(f, []byte("federation:\n  members:\n    - country: DE\n      certs: []\n"), 0o644)
	if _, err := readMembersFile(f); err == nil {
		t.Error("unknown field accepted")
	}
	os.WriteFile(f, []byte("federation:\n  members:\n    - country: DE\n      certificates:\n        - {type: SIGNING, file: missing.crt}\n"), 0o644)
	if _, err := readMembersFile(f); err == nil {
		t.Error("missing file accepted")
	}
}
