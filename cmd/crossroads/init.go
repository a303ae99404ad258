package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/storage"
)

func init() {
	register("init", "bootstrap a hub: network CA, stores, first operator and its certificate, log keys", runInit)
}

func runInit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	pf := addPassFlags(fs)
	caName := fs.String("name", "Crossroads Network CA", "CA common name")
	operator := fs.String("operator", "ops", "participant id of the first operator")
	operatorName := fs.String("operator-name", "Hub operations", "its name")
	out := fs.String("out", "certs", "directory for ca.crt and the operator's <id>.crt and <id>.key")
	var hosts listFlag
	fs.Var(&hosts, "hostname", "DNS name of the hub (repeatable); the first names the log origin")
	origin := fs.String("log-origin", "", "origin (name) of the audit log, fixed when the log is created (default: <first --hostname>/audit)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: crossroads init [--dir DATA] [--database-url URL] [--operator ID] [--out DIR] [--hostname NAME]

Bootstraps a hub on the embedded stores or on PostgreSQL: creates the network CA (key
encrypted with $CROSSROADS_CA_PASSPHRASE), the stores and their schemas, the first operator
participant and its certificate (written to --out with the CA certificate), and the audit
log's keys. Idempotent: run again, it creates only what is missing and overwrites nothing.`)
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	pass, err := pf.get()
	if err != nil {
		return err
	}
	newLogger("warn")
	dir := *sf.dir
	var ca *pki.CA
	if storage.HasCA(dir) {
		if ca, err = pki.LoadCA(storage.CADir(dir), pass); err != nil {
			return err
		}
		fmt.Printf("network CA: already in %s (serial %s)\n", storage.CADir(dir), pki.SerialHex(ca.Certificate()))
	} else {
		if ca, err = hub.Init(dir, pass, *caName, nil); err != nil {
			return err
		}
		fmt.Printf("network CA: created in %s (serial %s, valid until %s)\n", storage.CADir(dir), pki.SerialHex(ca.Certificate()), ca.Certificate().NotAfter.Format(time.DateOnly))
	}
	st, err := sf.open(ctx, true, true)
	if err != nil {
		return err
	}
	defer st.Close()
	backend := "embedded SQLite in " + dir
	if st.Postgres {
		backend = "PostgreSQL"
	}
	fmt.Printf("stores: %s\n", backend)

	if err := initOperator(ctx, st, *operator, *operatorName); err != nil {
		return err
	}
	if err := initOperatorCert(ctx, st, ca, *operator, *out); err != nil {
		return err
	}
	want := deriveLogOrigin(*origin, hosts)
	t, err := audit.Open(ctx, audit.Config{Dir: st.AuditDir(), Store: st.Audit, Origin: want})
	if err != nil {
		return err
	}
	got, vkey := t.Origin(), t.VerifierKey()
	if err := t.Close(ctx); err != nil {
		return err
	}
	if isSet(fs, "log-origin") && got != want {
		return fmt.Errorf("the audit log's origin is %q (fixed when it was created), not %q", got, want)
	}
	fmt.Printf("audit log: origin %s, verifier key %s\n", got, vkey)
	fmt.Printf("next: crossroads apply --dir %s -f network.yaml; crossroads serve --dir %s\n", dir, dir)
	return nil
}

func initOperator(ctx context.Context, st *storage.Stores, id, name string) error {
	regs, err := st.Registers.Registers(ctx)
	if err != nil {
		return err
	}
	for _, p := range regs.Participants {
		if p.ID != id {
			continue
		}
		if p.Kind != crossroads.KindOperator {
			return fmt.Errorf("participant %q exists and is a %s, not an operator", id, p.Kind)
		}
		fmt.Printf("operator: %s already registered\n", id)
		return nil
	}
	scheme, err := personid.Lookup("insz")
	if err != nil {
		return err
	}
	desired := &crossroads.Network{Participants: []crossroads.Participant{{ID: id, Name: name, Kind: crossroads.KindOperator, Status: crossroads.StatusActive}}}
	if _, err := apply.Apply(ctx, st.Registers, desired, scheme, false); err != nil {
		return err
	}
	fmt.Printf("operator: %s registered\n", id)
	return nil
}

// initOperatorCert issues the operator's certificate unless it has a valid
// one; it writes ca.crt too. It never overwrites a key.
func initOperatorCert(ctx context.Context, st *storage.Stores, ca *pki.CA, id, out string) error {
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	caFile := filepath.Join(out, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		return err
	}
	certs, err := st.Registers.Certificates(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, c := range certs {
		if c.Participant == id && c.RevokedAt.IsZero() && now.Before(c.NotAfter) {
			fmt.Printf("operator certificate: %s already has %s (valid until %s)\n", id, c.Serial, c.NotAfter.Format(time.DateOnly))
			return nil
		}
	}
	if err := noKeyFile(out, id); err != nil {
		return fmt.Errorf("%s has no valid certificate, but: %w", id, err)
	}
	rec, err := issueTo(ctx, st.Registers, ca, pki.IssueRequest{Participant: id}, nil, out)
	if err != nil {
		return err
	}
	keyFile, certFile := filepath.Join(out, id+".key"), filepath.Join(out, id+".crt")
	fmt.Printf("operator certificate: %s (serial %s), key %s, CA %s\n", certFile, rec.Serial, keyFile, caFile)
	return nil
}

// deriveLogOrigin is --log-origin, or hub.DefaultLogOrigin of the
// hostnames.
func deriveLogOrigin(explicit string, hostnames []string) string {
	if explicit != "" {
		return explicit
	}
	return hub.DefaultLogOrigin(hostnames)
}
