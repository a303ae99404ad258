package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/pki"
)

// TestImpostorFlags: the provider-authentication cases of 'crossroads
// hostile' are configured by the --impostor-* flags, and off without
// --impostor-listen.
func TestImpostorFlags(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.InitCA(filepath.Join(dir, "ca"), []byte("a long test passphrase"), "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, participant string) (string, string) {
		certPEM, keyPEM, _, err := ca.Issue(pki.IssueRequest{Participant: participant, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		os.WriteFile(c, certPEM, 0o600)
		os.WriteFile(k, keyPEM, 0o600)
		return c, k
	}
	rc, rk := write("right", "population-register")
	oc, ok := write("other", "employment-register")

	parse := func(args ...string) (impostorOpts, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o := impostorFlags(fs)
		return o, fs.Parse(args)
	}
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if imp, err := o.impostor(); err != nil || imp != nil {
		t.Fatalf("without --impostor-listen: %v, %v", imp, err)
	}
	o, _ = parse("--impostor-listen", "127.0.0.1:9443", "--impostor-service", "s", "--impostor-path", "p/1",
		"--impostor-cert", rc, "--impostor-key", rk, "--impostor-other-cert", oc, "--impostor-other-key", ok)
	imp, err := o.impostor()
	if err != nil {
		t.Fatal(err)
	}
	if imp.Listen != "127.0.0.1:9443" || imp.Service != "s" || imp.Path != "p/1" || imp.Right.Leaf == nil || imp.Other == nil || imp.Expired != nil {
		t.Fatalf("impostor %+v", imp)
	}
	if id, _ := pki.ParticipantID(imp.Other.Leaf); id != "employment-register" {
		t.Fatalf("other certificate of %q", id)
	}
	o, _ = parse("--impostor-listen", "127.0.0.1:9443", "--impostor-cert", filepath.Join(dir, "missing.crt"), "--impostor-key", rk)
	if _, err := o.impostor(); err == nil {
		t.Fatal("a missing certificate file was accepted")
	}
}
