package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads/witness"
)

func init() {
	register("witness", "run a tlog witness", runWitness).
		sub("key", "print the witness's verifier key (creating the key with --name)", func(_ context.Context, args []string) error { return runWitnessKey(args) })
}

// witnessKeyFile holds the witness's Ed25519 key in the signed-note private
// key format (PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || seed)>).
const witnessKeyFile = "witness.key"

// logFlags collects repeated --log ORIGIN=VERIFIERKEY flags.
type logFlags []witness.Log

func (l *logFlags) String() string { return fmt.Sprint(len(*l), " logs") }

func (l *logFlags) Set(s string) error {
	origin, vkey, ok := strings.Cut(s, "=")
	if !ok || origin == "" || vkey == "" {
		return fmt.Errorf("want ORIGIN=VERIFIERKEY, got %q", s)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("log %q: verifier key: %w", origin, err)
	}
	for i := range *l {
		if (*l)[i].Origin == origin {
			(*l)[i].Verifiers = append((*l)[i].Verifiers, v)
			return nil
		}
	}
	*l = append(*l, witness.Log{Origin: origin, Verifiers: []note.Verifier{v}})
	return nil
}

func runWitness(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("witness", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads witness --dir DIR [--name NAME] [--listen ADDR] --log ORIGIN=VERIFIERKEY ... [--tls-cert FILE --tls-key FILE]")
		fmt.Fprintln(fs.Output(), "       crossroads witness key --dir DIR [--name NAME]")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "localhost:7380", "address to serve add-checkpoint on")
	dir := fs.String("dir", "", "directory holding the witness key and state (required)")
	name := fs.String("name", "", "witness key name, e.g. witness.example.org/w1 (required on first run)")
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM)")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	var logs logFlags
	fs.Var(&logs, "log", "log to witness, as ORIGIN=VERIFIERKEY (repeatable; repeat an origin for several keys)")
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *dir == "" || (*tlsCert == "") != (*tlsKey == "") {
		fs.Usage()
		return errUsage
	}
	if len(logs) == 0 {
		return errors.New("no --log configured")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	signer, created, err := loadOrCreateWitnessKey(*dir, *name)
	if err != nil {
		return err
	}
	if created {
		fmt.Printf("created witness key; verifier key:\n%s\n", signer.VerifierKey())
	}
	store, err := witness.OpenFileStore(filepath.Join(*dir, "state"))
	if err != nil {
		return err
	}
	defer store.Close()
	w, err := witness.New(ctx, witness.Config{Name: signer.Name(), Signer: signer, Store: store, Logs: logs, Logger: logger})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	logger.InfoContext(ctx, "witness listening", "addr", ln.Addr().String(), "tls", *tlsCert != "",
		"name", signer.Name(), "verifier_key", signer.VerifierKey())
	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- srv.ServeTLS(ln, *tlsCert, *tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	logger.InfoContext(ctx, "witness stopped")
	return nil
}

func runWitnessKey(args []string) error {
	fs := flag.NewFlagSet("witness key", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads witness key --dir DIR [--name NAME]\n\nPrints the witness's verifier key; with --name, creates the key if there is none.")
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "", "directory holding the witness key (required)")
	name := fs.String("name", "", "witness key name, to create the key if there is none")
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		fs.Usage()
		return errUsage
	}
	signer, _, err := loadOrCreateWitnessKey(*dir, *name)
	if err != nil {
		return err
	}
	fmt.Println(signer.VerifierKey())
	return nil
}

// loadOrCreateWitnessKey reads the witness key from dir, or creates it if
// there is none and name is set. A set name must match the stored key's.
func loadOrCreateWitnessKey(dir, name string) (*witness.Cosigner, bool, error) {
	path := filepath.Join(dir, witnessKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if name == "" {
			return nil, false, fmt.Errorf("no witness key in %s: pass --name to create one", dir)
		}
		skey, signer, err := witness.GenerateKey(name)
		if err != nil {
			return nil, false, err
		}
		skey += "\n"
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("creating %s: %w", dir, err)
		}
		if err := writeNew(path, []byte(skey), 0o600); err != nil {
			return nil, false, fmt.Errorf("writing witness key: %w", err)
		}
		return signer, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading witness key: %w", err)
	}
	signer, err := witness.ParsePrivateKey(string(b))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	if name != "" && name != signer.Name() {
		return nil, false, fmt.Errorf("witness key in %s is named %q, not %q", dir, signer.Name(), name)
	}
	return signer, false, nil
}
