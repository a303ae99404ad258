package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/pki"
)

func init() {
	register("keys", "list the key hierarchy, rotate a key", nil).
		sub("list", "list the provider's keys and the wrapped secrets (no secret is shown)", keysList).
		sub("rotate", "rotate a key (KIND: root, master, kek, note, hub-tls, index); recorded in the audit trail", keysRotate)
}

func keysList(ctx context.Context, args []string) error {
	return runKeys(ctx, append([]string{"list"}, args...))
}

func keysRotate(ctx context.Context, args []string) error {
	if wantsHelp(args) {
		fmt.Fprintf(os.Stdout, "usage: crossroads keys rotate KIND [flags]\n\n%s", keysUsage)
		return errHelp
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(os.Stderr, keysUsage)
		return errUsage
	}
	return runKeys(ctx, append([]string{"rotate"}, args...))
}

const keysUsage = `usage: crossroads keys <subcommand> [flags]

subcommands:
  list                 list the provider's keys and the wrapped secrets (no secret is shown)
  rotate KIND          rotate a key; the rotation is recorded in the audit trail. KIND:
    root               the FileProvider's root key (with --new-passphrase-env/-file: and the passphrase)
    master             the provider key wrapping the secrets (stop the other nodes first)
    kek                every period's key-encryption key (data keys rewrapped, old KEKs destroyed)
    note               the log's checkpoint signing key (same origin; give verifiers the new key)
    hub-tls            the hub's key and certificate (reissued by the CA)
    index              the blind-index key (every record's index recomputed)
  The hub must be stopped on a SQLite data directory; new keys take effect at the next start.

flags (both): --dir, --database-url, --passphrase-env, --passphrase-file, --key-dir,
  --pkcs11-module, --pkcs11-token, --pkcs11-pin-env (as for serve)
`

// keyProviderFlags adds the key provider's flags to fs; the returned
// function sets them in a hub configuration.
func keyProviderFlags(fs *flag.FlagSet) func(*hub.Config) error {
	dir := fs.String("key-dir", "", "directory of the local key provider (default: DIR/keys); ignored with --pkcs11-module")
	module := fs.String("pkcs11-module", "", "PKCS#11 module of the HSM holding the root keys, e.g. /usr/lib/softhsm/libsofthsm2.so")
	token := fs.String("pkcs11-token", "", "label of the HSM token")
	pinEnv := fs.String("pkcs11-pin-env", "CROSSROADS_PKCS11_PIN", "environment variable holding the token's user PIN")
	return func(cfg *hub.Config) error {
		cfg.KeyDir = *dir
		if *module == "" {
			return nil
		}
		p, err := openPKCS11(*module, *token, os.Getenv(*pinEnv))
		if err != nil {
			return err
		}
		cfg.KeyProvider = p
		return nil
	}
}

func runKeys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, keysUsage)
		return errUsage
	}
	sub, kind := args[0], ""
	args = args[1:]
	switch sub {
	case "list":
	case "rotate":
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, keysUsage)
			return errUsage
		}
		kind, args = args[0], args[1:]
	default:
		fmt.Fprintf(os.Stderr, "crossroads keys: unknown subcommand %q\n%s", sub, keysUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.Usage = func() {
		synopsis := "[flags]"
		if sub == "rotate" {
			synopsis = "KIND [flags]"
		}
		fmt.Fprintf(fs.Output(), "usage: crossroads keys %s %s\n\n%s\n", sub, synopsis, keysUsage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "data", "data directory")
	dbURL := fs.String("database-url", "", "PostgreSQL URL of the deployment (default: SQLite in --dir)")
	passEnv := fs.String("passphrase-env", "CROSSROADS_CA_PASSPHRASE", "environment variable holding the CA and key passphrase")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase")
	newPassEnv := fs.String("new-passphrase-env", "", "rotate root: environment variable holding the new passphrase")
	newPassFile := fs.String("new-passphrase-file", "", "rotate root: file holding the new passphrase")
	provider := keyProviderFlags(fs)
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	pass, err := pki.Passphrase(*passEnv, *passFile)
	if err != nil {
		return err
	}
	// A logger of its own: newLogger would also replace the global ones.
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := hub.Config{DataDir: *dir, DatabaseURL: *dbURL, Passphrase: pass, Retention: -1, Logger: log}
	if err := provider(&cfg); err != nil {
		return err
	}
	var newPass []byte
	if *newPassEnv != "" || *newPassFile != "" {
		if newPass, err = pki.Passphrase(*newPassEnv, *newPassFile); err != nil {
			return err
		}
	}
	h, err := hub.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer h.Close(context.WithoutCancel(ctx))
	if sub == "list" {
		list, err := h.Keys.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "KIND\tVERSION\tPERIOD\tPROVIDER\tKEY\tCREATED")
		for _, i := range list {
			v, created := "", ""
			if i.Version > 0 {
				v = fmt.Sprint(i.Version)
			}
			if !i.Created.IsZero() {
				created = i.Created.Format("2006-01-02T15:04:05Z")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Kind, v, i.Period, i.Provider, i.ID, created)
		}
		return w.Flush()
	}
	rep, err := h.RotateKey(ctx, kind, newPass)
	if err != nil {
		return err
	}
	fmt.Printf("rotated %s: %s\n", kind, rep)
	return nil
}

// hubKeys reports whether the audit directory dir is a hub's (DIR/audit
// beside DIR/keys), whose keys are in the keyring.
func hubKeys(auditDir string) bool {
	return keys.IsProviderDir(filepath.Join(filepath.Dir(filepath.Clean(auditDir)), hub.KeysDir))
}
