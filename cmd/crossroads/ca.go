package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

func init() {
	register("ca", "manage the network CA: init, issue, revoke, list", runCA)
}

const caUsage = `usage: crossroads ca <init|issue|revoke|list> [flags]

  init     create the network CA in the data directory (key encrypted with the passphrase)
  issue    issue a participant certificate (new key, or --csr for a key that stays with the institution)
  revoke   revoke a certificate; a running hub refuses it within a second, without restart
  list     list issued certificates

The CA passphrase comes from $CROSSROADS_CA_PASSPHRASE or --passphrase-file.`

func runCA(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, caUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("ca "+sub, flag.ContinueOnError)
	dir := fs.String("dir", "data", "data directory (env CROSSROADS_DIR)")
	passEnv := fs.String("passphrase-env", "CROSSROADS_CA_PASSPHRASE", "environment variable holding the CA key passphrase")
	passFile := fs.String("passphrase-file", "", "file holding the CA key passphrase")
	switch sub {
	case "init":
		name := fs.String("name", "Crossroads Network CA", "CA common name")
		if err := parseConfig(fs, args); err != nil {
			return err
		}
		pass, err := pki.Passphrase(*passEnv, *passFile)
		if err != nil {
			return err
		}
		ca, err := hub.Init(*dir, pass, *name, nil)
		if err != nil {
			return err
		}
		fmt.Printf("network CA created in %s (serial %s, valid until %s)\n", filepath.Join(*dir, "ca"), pki.SerialHex(ca.Certificate()), ca.Certificate().NotAfter.Format(time.DateOnly))
		return nil
	case "issue":
		participant := fs.String("participant", "", "participant id the certificate names (required)")
		out := fs.String("out", ".", "directory to write <participant>.crt (and .key)")
		csr := fs.String("csr", "", "PEM certificate signing request; the key never leaves the institution")
		server := fs.Bool("server", false, "also valid as a TLS server certificate (authentic sources)")
		days := fs.Int("days", 365, "validity in days")
		var names listFlag
		fs.Var(&names, "hostname", "DNS name or IP for a server certificate (repeatable)")
		if err := parseConfig(fs, args); err != nil {
			return err
		}
		if *participant == "" {
			return errors.New("--participant is required")
		}
		if *participant == pki.HubParticipant {
			return errors.New("the participant id \"hub\" is reserved: the hub issues its own certificate")
		}
		ca, regs, err := openCA(ctx, *dir, *passEnv, *passFile)
		if err != nil {
			return err
		}
		defer regs.Close()
		validity := time.Duration(*days) * 24 * time.Hour
		var certPEM, keyPEM []byte
		if *csr != "" {
			b, err := os.ReadFile(*csr)
			if err != nil {
				return fmt.Errorf("read CSR: %w", err)
			}
			c, rec, err := ca.SignCSR(b, *participant, validity)
			if err != nil {
				return err
			}
			if err := regs.RecordCertificate(ctx, rec); err != nil {
				return err
			}
			certPEM = c
		} else {
			req := pki.IssueRequest{Participant: *participant, Validity: validity, Server: *server}
			for _, n := range names {
				if ip := net.ParseIP(n); ip != nil {
					req.IPAddresses = append(req.IPAddresses, ip)
				} else {
					req.DNSNames = append(req.DNSNames, n)
				}
			}
			c, k, rec, err := ca.Issue(req)
			if err != nil {
				return err
			}
			if err := regs.RecordCertificate(ctx, rec); err != nil {
				return err
			}
			certPEM, keyPEM = c, k
		}
		if err := os.MkdirAll(*out, 0o700); err != nil {
			return err
		}
		if keyPEM != nil {
			if err := os.WriteFile(filepath.Join(*out, *participant+".key"), keyPEM, 0o600); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(*out, *participant+".crt"), certPEM, 0o644); err != nil {
			return err
		}
		fmt.Printf("issued %s\n", filepath.Join(*out, *participant+".crt"))
		return nil
	case "revoke":
		serial := fs.String("serial", "", "serial (hex) of the certificate to revoke (required)")
		reason := fs.String("reason", "", "reason, kept with the revocation")
		if err := parseConfig(fs, args); err != nil {
			return err
		}
		if *serial == "" {
			return errors.New("--serial is required")
		}
		regs, err := sqlite.OpenRegisters(ctx, filepath.Join(*dir, "registers.db"))
		if err != nil {
			return err
		}
		defer regs.Close()
		if err := regs.RevokeCertificate(ctx, *serial, time.Now().UTC(), *reason); err != nil {
			return err
		}
		fmt.Printf("revoked %s; a running hub refuses it within a second\n", *serial)
		return nil
	case "list":
		if err := parseConfig(fs, args); err != nil {
			return err
		}
		regs, err := sqlite.OpenRegisters(ctx, filepath.Join(*dir, "registers.db"))
		if err != nil {
			return err
		}
		defer regs.Close()
		list, err := regs.Certificates(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERIAL\tPARTICIPANT\tNOT AFTER\tREVOKED")
		for _, c := range list {
			rev := "-"
			if !c.RevokedAt.IsZero() {
				rev = c.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Serial, c.Participant, c.NotAfter.Format(time.DateOnly), rev)
		}
		return tw.Flush()
	default:
		fmt.Fprintln(os.Stderr, caUsage)
		return errUsage
	}
}

func openCA(ctx context.Context, dir, passEnv, passFile string) (*pki.CA, *sqlite.Registers, error) {
	pass, err := pki.Passphrase(passEnv, passFile)
	if err != nil {
		return nil, nil, err
	}
	ca, err := pki.LoadCA(filepath.Join(dir, "ca"), pass)
	if err != nil {
		return nil, nil, err
	}
	regs, err := sqlite.OpenRegisters(ctx, filepath.Join(dir, "registers.db"))
	if err != nil {
		return nil, nil, err
	}
	return ca, regs, nil
}
