package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/storage"
)

func init() {
	register("audit", "verify the audit log, check proofs and the local trail, print the log key", nil).
		sub("key", "print the log's note verifier key (its name is the log origin)", func(_ context.Context, args []string) error { return auditKey(args) }).
		sub("verify", "check a log's checkpoint signature, consistency with a saved checkpoint and, with --full, the whole tree", auditVerify).
		sub("prove", "check a c2sp.org/tlog-proof@v1 (and a receipt), or fetch an exchange's proof as a party", auditProve).
		sub("check", "check the local trail: records against leaves, the log (hub stopped)", auditCheck).
		sub("rewrap", "rewrap data keys under the current key-encryption key (hub stopped)", auditRewrap)
}

func auditFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("audit "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: crossroads audit %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func auditKey(args []string) error {
	fs := auditFlags("key", "[--dir DATA]")
	dir := fs.String("dir", "data", "the hub's data directory (the trail is in DATA/audit)")
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if !storage.HasTrail(*dir) {
		return fmt.Errorf("%w: no audit trail in %s", storage.ErrNotInitialised, storage.AuditDir(*dir))
	}
	vkey, err := audit.ReadVerifierKey(storage.AuditDir(*dir))
	if err != nil {
		return err
	}
	origin, _, _ := strings.Cut(vkey, "+")
	fmt.Fprintf(os.Stderr, "log origin: %s\n", origin)
	fmt.Println(vkey)
	return nil
}

// verifierFlags adds --key and --key-string and returns a function giving
// the verifier (fetched from the log, trust on first use, when neither is set).
func verifierFlags(fs *flag.FlagSet) func(ctx context.Context, src *verify.HTTP) (string, note.Verifier, error) {
	keyFile := fs.String("key", "", "file holding the log's note verifier key")
	keyString := fs.String("key-string", "", "the log's note verifier key")
	return func(ctx context.Context, src *verify.HTTP) (string, note.Verifier, error) {
		vkey := *keyString
		switch {
		case *keyFile != "":
			b, err := os.ReadFile(*keyFile)
			if err != nil {
				return "", nil, err
			}
			vkey = string(b)
		case vkey == "" && src != nil:
			b, err := src.Get(ctx, "key")
			if err != nil {
				return "", nil, fmt.Errorf("fetch key: %w", err)
			}
			vkey = string(b)
			fmt.Fprintf(os.Stderr, "warning: using the key served by the log itself (%s); pin it with --key\n", strings.TrimSpace(vkey))
		case vkey == "":
			return "", nil, errors.New("need --key or --key-string")
		}
		vkey = strings.TrimSpace(vkey)
		v, err := note.NewVerifier(vkey)
		return vkey, v, err
	}
}

func auditVerify(ctx context.Context, args []string) error {
	fs := auditFlags("verify", "--log URL [--ca CA] [--since FILE] [--save FILE] [--full] [--key FILE | --key-string KEY]")
	logURL := fs.String("log", "", "base URL of the log, e.g. https://hub.example/v1/log/")
	since := fs.String("since", "", "a previously verified checkpoint file: check consistency with it")
	save := fs.String("save", "", "write the verified checkpoint to this file")
	full := fs.Bool("full", false, "re-derive the whole tree from the entry bundles and check every tile")
	caFile := fs.String("ca", "", "PEM roots to trust for the log's HTTPS (default: the system's), e.g. the network CA")
	getV := verifierFlags(fs)
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *logURL == "" {
		fs.Usage()
		return errUsage
	}
	src := &verify.HTTP{Base: *logURL}
	if *caFile != "" {
		pool, err := pki.LoadPool(*caFile)
		if err != nil {
			return err
		}
		src.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	}
	_, v, err := getV(ctx, src)
	if err != nil {
		return err
	}
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return err
	}
	cp, err := verify.OpenCheckpoint(raw, v)
	if err != nil {
		return err
	}
	fmt.Printf("checkpoint: %s, size %d, root %s: signature OK\n", cp.Origin, cp.N, cp.Hash)
	if *since != "" {
		oraw, err := os.ReadFile(*since)
		if err != nil {
			return err
		}
		old, err := verify.OpenCheckpoint(oraw, v)
		if err != nil {
			return fmt.Errorf("saved checkpoint: %w", err)
		}
		if err := verify.Consistency(ctx, src, old.Tree, cp.Tree); err != nil {
			return fmt.Errorf("NOT CONSISTENT with %s: %w", *since, err)
		}
		fmt.Printf("consistent with saved checkpoint of size %d\n", old.N)
	}
	if *full {
		if _, err := verify.Full(ctx, src, cp.Tree); err != nil {
			return fmt.Errorf("full verification FAILED: %w", err)
		}
		fmt.Printf("full: %d entries re-derive the root; every tile matches\n", cp.N)
	}
	if *save != "" {
		if err := os.WriteFile(*save, raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func auditProve(ctx context.Context, args []string) error {
	fs := auditFlags("prove", "--proof FILE [--receipt TOKEN] [--log URL] [--key FILE | --key-string KEY]\n       crossroads audit prove --exchange ID --hub URL --cert C --cert-key K --ca CA")
	proofFile := fs.String("proof", "", "c2sp.org/tlog-proof@v1 file ('-' for standard input)")
	receipt := fs.String("receipt", "", "the exchange's receipt token: check it and that the proof is for its leaf")
	logURL := fs.String("log", "", "base URL of the log (to fetch the key, and check consistency with the current checkpoint)")
	exchange := fs.String("exchange", "", "fetch the proof of this exchange from --hub (as a party of the exchange)")
	hubURL := fs.String("hub", "", "the hub, with --exchange: https://host:port")
	certFile := fs.String("cert", "", "your participant certificate, with --exchange")
	keyFile := fs.String("cert-key", "", "its private key, with --exchange")
	caFile := fs.String("ca", "", "the network CA certificate, with --exchange")
	getV := verifierFlags(fs)
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *proofFile == "" && *exchange == "" {
		fs.Usage()
		return errUsage
	}
	var raw []byte
	var err error
	var client *http.Client
	switch {
	case *exchange != "":
		if *hubURL == "" || *certFile == "" || *keyFile == "" || *caFile == "" {
			return errors.New("--exchange needs --hub, --cert, --cert-key and --ca")
		}
		if client, err = mtlsClient(*certFile, *keyFile, *caFile); err != nil {
			return err
		}
		if raw, err = fetchProof(ctx, client, *hubURL, *exchange); err != nil {
			return err
		}
		if *logURL == "" {
			*logURL = strings.TrimSuffix(*hubURL, "/") + "/v1/log/"
		}
	case *proofFile == "-":
		raw, err = io.ReadAll(os.Stdin)
	default:
		raw, err = os.ReadFile(*proofFile)
	}
	if err != nil {
		return err
	}
	var src *verify.HTTP
	if *logURL != "" {
		src = &verify.HTTP{Base: *logURL, Client: client}
	}
	vkey, v, err := getV(ctx, src)
	if err != nil {
		return err
	}
	p, err := verify.ParseProof(raw)
	if err != nil {
		return err
	}
	if p.Extra == nil {
		return errors.New("proof carries no leaf (extra)")
	}
	lh := tlog.RecordHash(p.Extra)
	if *receipt != "" {
		c, err := audit.VerifyReceipt(*receipt, vkey)
		if err != nil {
			return err
		}
		if tlog.Hash(c.LeafHash) != lh {
			return errors.New("the proof is not for the receipt's leaf")
		}
		fmt.Printf("receipt of exchange %s: signature OK, leaf matches\n", c.ExchangeID)
	}
	cp, err := verify.CheckProof(p, v, lh)
	if err != nil {
		return err
	}
	fmt.Printf("leaf %d included in %s at size %d: OK\n", p.Index, cp.Origin, cp.N)
	if src != nil {
		craw, err := src.ReadCheckpoint(ctx)
		if err != nil {
			return err
		}
		cur, err := verify.OpenCheckpoint(craw, v)
		if err != nil {
			return err
		}
		if err := verify.Consistency(ctx, src, cp.Tree, cur.Tree); err != nil {
			return fmt.Errorf("proof checkpoint NOT CONSISTENT with the log's current one: %w", err)
		}
		fmt.Printf("consistent with the current checkpoint of size %d\n", cur.N)
	}
	return nil
}

// mtlsClient is an HTTPS client presenting a participant certificate and
// trusting the network CA.
func mtlsClient(certFile, keyFile, caFile string) (*http.Client, error) {
	cfg, err := pki.LoadClientTLS(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// fetchProof asks the hub for an exchange's tlog-proof.
func fetchProof(ctx context.Context, client *http.Client, hub, exchange string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(hub, "/")+"/v1/audit/proofs/"+url.PathEscape(exchange), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch proof: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch proof: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch proof: %s: %s", resp.Status, b)
	}
	return b, nil
}

func auditCheck(ctx context.Context, args []string) error {
	fs := auditFlags("check", "[--dir DATA] [--database-url URL]")
	sf := addStoreFlags(fs)
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	return withTrail(ctx, sf, func(t *audit.Trail) error {
		rep, err := t.Check(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("records %d, integrated %d, log size %d\n", rep.Records, rep.Integrated, rep.LogSize)
		for _, p := range rep.Problems {
			fmt.Println("PROBLEM:", p)
		}
		if len(rep.Problems) > 0 {
			return fmt.Errorf("%d problems", len(rep.Problems))
		}
		return nil
	})
}

func auditRewrap(ctx context.Context, args []string) error {
	fs := auditFlags("rewrap", "[--dir DATA] [--database-url URL]")
	sf := addStoreFlags(fs)
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	return withTrail(ctx, sf, func(t *audit.Trail) error {
		n, err := t.Rewrap(ctx)
		fmt.Printf("rewrapped %d data keys\n", n)
		return err
	})
}

// withTrail opens the hub's existing trail (never creating one) and runs fn.
func withTrail(ctx context.Context, sf storeFlags, fn func(*audit.Trail) error) error {
	st, err := sf.open(ctx, true, false)
	if err != nil {
		return err
	}
	defer st.Close()
	acfg := audit.Config{Dir: st.AuditDir(), Store: st.Audit, Logger: newLogger("warn")}
	if hubKeys(st.AuditDir()) { // keys.go: a hub's trail, its keys in the keyring
		pass, err := pki.Passphrase("CROSSROADS_CA_PASSPHRASE", "")
		if err != nil {
			return err
		}
		t, kr, err := hub.OpenTrail(ctx, hub.Config{DataDir: *sf.dir, DatabaseURL: *sf.databaseURL, Passphrase: pass}, acfg)
		if err != nil {
			return err
		}
		defer kr.Close()
		return errors.Join(fn(t), t.Close(ctx))
	}
	t, err := audit.Open(ctx, acfg)
	if err != nil {
		return err
	}
	return errors.Join(fn(t), t.Close(ctx))
}
