package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/storage"
)

func init() {
	register("ca", "manage the network CA: init, issue, renew, revoke, list", nil).
		sub("init", "create the network CA in the data directory (key encrypted with the passphrase)", caInit).
		sub("issue", "issue a participant certificate (new key, or --csr for a key that stays with the institution)", caIssue).
		sub("renew", "issue a successor of a certificate: same participant, names and usage, new validity", caRenew).
		sub("revoke", "revoke a certificate; a running hub refuses it within a second, without restart", caRevoke).
		sub("list", "list issued certificates", caList)
}

const caNote = "\nThe CA passphrase comes from $CROSSROADS_CA_PASSPHRASE or --passphrase-file; the stores\nfrom --dir and --database-url, as for 'crossroads serve'. Every flag can also be set as\nCROSSROADS_<FLAG> or in --config FILE."

func caFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("ca "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: crossroads ca %s %s\n%s\n\n", name, synopsis, caNote)
		fs.PrintDefaults()
	}
	return fs
}

func caInit(ctx context.Context, args []string) error {
	fs := caFlags("init", "[--dir DATA] [--name NAME]")
	dir := fs.String("dir", "data", "data directory")
	pf := addPassFlags(fs)
	name := fs.String("name", "Crossroads Network CA", "CA common name")
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	pass, err := pf.get()
	if err != nil {
		return err
	}
	ca, err := hub.Init(*dir, pass, *name, nil)
	if err != nil {
		return err
	}
	fmt.Printf("network CA created in %s (serial %s, valid until %s)\n", storage.CADir(*dir), pki.SerialHex(ca.Certificate()), ca.Certificate().NotAfter.Format(time.DateOnly))
	return nil
}

func caIssue(ctx context.Context, args []string) error {
	fs := caFlags("issue", "--participant ID [--csr FILE] [--server --hostname NAME ...] [--out DIR]")
	sf := addStoreFlags(fs)
	pf := addPassFlags(fs)
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
	req := pki.IssueRequest{Participant: *participant, Validity: time.Duration(*days) * 24 * time.Hour, Server: *server}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			req.IPAddresses = append(req.IPAddresses, ip)
		} else {
			req.DNSNames = append(req.DNSNames, n)
		}
	}
	return issueAndWrite(ctx, sf, pf, req, *csr, *out)
}

// issueAndWrite issues req (from the CSR file when csrFile is set), records
// the certificate and writes <out>/<participant>.crt (and .key), never
// overwriting a key file.
func issueAndWrite(ctx context.Context, sf storeFlags, pf passFlags, req pki.IssueRequest, csrFile, out string) error {
	if req.Participant == pki.HubParticipant {
		return errors.New("the participant id \"hub\" is reserved: the hub issues its own certificate")
	}
	if err := pki.ValidateParticipantID(req.Participant); err != nil {
		return err
	}
	var csrPEM []byte
	if csrFile != "" {
		b, err := os.ReadFile(csrFile)
		if err != nil {
			return fmt.Errorf("read CSR: %w", err)
		}
		csrPEM = b
	}
	if csrPEM == nil {
		if err := noKeyFile(out, req.Participant); err != nil {
			return err
		}
	}
	ca, err := loadCA(*sf.dir, pf)
	if err != nil {
		return err
	}
	st, err := sf.open(ctx, false, true)
	if err != nil {
		return err
	}
	defer st.Close()
	rec, err := issueTo(ctx, st.Registers, ca, req, csrPEM, out)
	if err != nil {
		return err
	}
	fmt.Printf("issued %s (serial %s, valid until %s)\n", filepath.Join(out, req.Participant+".crt"), rec.Serial, rec.NotAfter.Format(time.DateOnly))
	return nil
}

// noKeyFile refuses to go on when <out>/<participant>.key exists: a key is
// never overwritten.
func noKeyFile(out, participant string) error {
	keyFile := filepath.Join(out, participant+".key")
	if _, err := os.Lstat(keyFile); err == nil {
		return fmt.Errorf("%s exists: move it away first (a key is never overwritten)", keyFile)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// issueTo issues req (for the key of csrPEM, or a new key), records the
// certificate and writes <out>/<participant>.crt (and the new .key, which
// must not exist).
func issueTo(ctx context.Context, certs crossroads.CertificateStore, ca *pki.CA, req pki.IssueRequest, csrPEM []byte, out string) (crossroads.Certificate, error) {
	var certPEM, keyPEM []byte
	var rec crossroads.Certificate
	var err error
	if csrPEM != nil {
		certPEM, rec, err = ca.SignCSRRequest(csrPEM, req)
	} else {
		certPEM, keyPEM, rec, err = ca.Issue(req)
	}
	if err != nil {
		return rec, err
	}
	if err := certs.RecordCertificate(ctx, rec); err != nil {
		return rec, err
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return rec, err
	}
	if keyPEM != nil {
		if err := writeNew(filepath.Join(out, req.Participant+".key"), keyPEM, 0o600); err != nil {
			return rec, err
		}
	}
	return rec, os.WriteFile(filepath.Join(out, req.Participant+".crt"), certPEM, 0o644)
}

// writeNew writes a file that must not exist yet.
func writeNew(file string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func caRenew(ctx context.Context, args []string) error {
	fs := caFlags("renew", "(--serial SERIAL | --participant ID) [--csr FILE] [--out DIR] [--days N]")
	sf := addStoreFlags(fs)
	pf := addPassFlags(fs)
	serial := fs.String("serial", "", "serial of the certificate to renew (any case, colons or leading zeros allowed)")
	participant := fs.String("participant", "", "renew this participant's latest unrevoked certificate")
	out := fs.String("out", ".", "directory to write <participant>.crt (and a new .key)")
	csr := fs.String("csr", "", "PEM certificate signing request for the new key (else a new key is generated)")
	days := fs.Int("days", 365, "validity of the new certificate in days")
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if (*serial == "") == (*participant == "") {
		return errors.New("give exactly one of --serial and --participant")
	}
	old, err := findCertificate(ctx, sf, *serial, *participant)
	if err != nil {
		return err
	}
	block, _ := pem.Decode([]byte(old.PEM))
	if block == nil {
		return fmt.Errorf("certificate %s: no PEM recorded", old.Serial)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", old.Serial, err)
	}
	req := pki.IssueRequest{Participant: old.Participant, DNSNames: cert.DNSNames, IPAddresses: cert.IPAddresses,
		Validity: time.Duration(*days) * 24 * time.Hour}
	for _, u := range cert.ExtKeyUsage {
		req.Server = req.Server || u == x509.ExtKeyUsageServerAuth
	}
	fmt.Printf("renewing %s of %s (valid until %s); the old certificate stays valid until then unless revoked\n", old.Serial, old.Participant, old.NotAfter.Format(time.DateOnly))
	return issueAndWrite(ctx, sf, pf, req, *csr, *out)
}

// findCertificate finds a certificate by serial, or a participant's
// unrevoked certificate that expires last.
func findCertificate(ctx context.Context, sf storeFlags, serial, participant string) (crossroads.Certificate, error) {
	if serial != "" {
		var err error
		if serial, err = pki.ParseSerial(serial); err != nil {
			return crossroads.Certificate{}, err
		}
	}
	st, err := sf.open(ctx, false, false)
	if err != nil {
		return crossroads.Certificate{}, err
	}
	defer st.Close()
	list, err := st.Registers.Certificates(ctx)
	if err != nil {
		return crossroads.Certificate{}, err
	}
	var found *crossroads.Certificate
	for i, c := range list {
		switch {
		case serial != "" && c.Serial == serial:
			return c, nil
		case participant != "" && c.Participant == participant && c.RevokedAt.IsZero() && (found == nil || c.NotAfter.After(found.NotAfter)):
			found = &list[i]
		}
	}
	if found == nil {
		return crossroads.Certificate{}, fmt.Errorf("no such certificate: %w", crossroads.ErrNotFound)
	}
	return *found, nil
}

func caRevoke(ctx context.Context, args []string) error {
	fs := caFlags("revoke", "--serial SERIAL [--reason TEXT]")
	sf := addStoreFlags(fs)
	serial := fs.String("serial", "", "serial of the certificate to revoke (required; any case, colons or leading zeros allowed)")
	reason := fs.String("reason", "", "reason, kept with the revocation")
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *serial == "" {
		return errors.New("--serial is required")
	}
	s, err := pki.ParseSerial(*serial)
	if err != nil {
		return err
	}
	st, err := sf.open(ctx, false, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Registers.RevokeCertificate(ctx, s, time.Now().UTC(), *reason); err != nil {
		return err
	}
	fmt.Printf("revoked %s; a running hub refuses it within a second\n", s)
	return nil
}

func caList(ctx context.Context, args []string) error {
	fs := caFlags("list", "")
	sf := addStoreFlags(fs)
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	st, err := sf.open(ctx, false, false)
	if err != nil {
		return err
	}
	defer st.Close()
	q := httpapi.RegisterQuery{Kind: "certificates"}
	v, err := httpapi.ReadRegister(ctx, st.Registers, st.Registers, q)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printRegister(os.Stdout, q, raw, "table")
}
