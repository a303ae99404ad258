package hub

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads/atomicfile"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/keys"
)

// KeysDir is the default directory, in the data directory, of the local
// key provider (keys.FileProvider).
const KeysDir = "keys"

// Files of earlier versions, in clear, migrated into the keyring on first
// start and then removed.
const (
	legacyAuditKeys = "audit-keys" // in audit/: kek-*.key, current, index.key
	legacyHubKey    = "hub.key"    // in hub/
)

// OpenProvider opens the key provider of cfg: cfg.KeyProvider when set,
// else the local FileProvider in cfg.KeyDir (default DataDir/keys), sealed
// by cfg.Passphrase.
func OpenProvider(cfg Config) (keys.Provider, error) {
	if cfg.KeyProvider != nil {
		return cfg.KeyProvider, nil
	}
	dir := cfg.KeyDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, KeysDir)
	}
	return keys.OpenFileProvider(dir, cfg.Passphrase)
}

// OpenKeyring opens the key hierarchy of cfg over the wrapped-key table of
// the audit store st (the data directory's audit.db, or the PostgreSQL
// database every node shares), migrating the plaintext key files of
// earlier versions found in the data directory. Every node of a deployment
// opens the same hierarchy: the same provider (the same HSM token, or the
// same FileProvider directory and passphrase) and the same database.
func OpenKeyring(ctx context.Context, cfg Config, st keys.Store) (*keys.Keyring, error) {
	p, err := OpenProvider(cfg)
	if err != nil {
		return nil, err
	}
	kr, err := keys.Open(ctx, p, st)
	if err != nil {
		return nil, err
	}
	auditDir := filepath.Join(cfg.DataDir, "audit")
	legacy := filepath.Join(auditDir, legacyAuditKeys, "index.key")
	if _, err := kr.Ensure(ctx, keys.KindIndex, func() ([]byte, string, error) {
		b, err := os.ReadFile(legacy)
		if err == nil && len(b) == 32 {
			return b, "", nil // the records already indexed stay findable
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, "", err
		}
		b = make([]byte, 32)
		rand.Read(b)
		return b, "", nil
	}); err != nil {
		return nil, err
	}
	noteFile := filepath.Join(auditDir, audit.NoteKeyFile)
	ns, err := kr.Ensure(ctx, keys.KindNote, func() ([]byte, string, error) {
		skey := ""
		if b, err := os.ReadFile(noteFile); err == nil {
			skey = strings.TrimSpace(string(b))
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, "", err
		} else if skey, _, err = note.GenerateKey(rand.Reader, audit.DefaultOrigin); err != nil {
			return nil, "", err
		}
		vkey, err := audit.VerifierKey(skey)
		if err != nil {
			return nil, "", err
		}
		return []byte(skey), vkey, nil
	})
	if err != nil {
		return nil, err
	}
	// The verifier key is public: keep it where 'crossroads audit key'
	// finds it; the private key goes.
	if err := os.MkdirAll(auditDir, 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(auditDir, audit.NotePublicFile), []byte(ns.Public+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := removePlaintext(noteFile); err != nil {
		return nil, err
	}
	return kr, nil
}

// migrateAuditKeys moves the data keys wrapped by the plaintext KEKs of
// earlier versions (audit/audit-keys) under KEKs of the keyring, then
// removes those files.
func migrateAuditKeys(ctx context.Context, log *slog.Logger, tr *audit.Trail, auditDir string) error {
	dir := filepath.Join(auditDir, legacyAuditKeys)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	old, err := audit.OpenFileKeys(dir)
	if err != nil {
		return err
	}
	n, err := tr.MigrateKeys(ctx, old)
	if err != nil {
		return fmt.Errorf("migrate the plaintext audit keys: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := removePlaintext(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	if err := os.Remove(dir); err != nil {
		return err
	}
	log.Info("plaintext audit keys wrapped into the key provider and removed", "data keys", n)
	return nil
}

// removePlaintext overwrites and removes a plaintext key file of an earlier
// version (the overwrite is best effort: journaling and copy-on-write file
// systems and SSDs may keep old blocks; see docs/operations.md).
func removePlaintext(file string) error {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if f, err := os.OpenFile(file, os.O_WRONLY, 0); err == nil {
		f.Write(make([]byte, fi.Size()))
		f.Sync()
		f.Close()
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove plaintext key file: %w", err)
	}
	return nil
}

// OpenTrail opens, for tools, the audit trail of a stopped hub as the hub
// does: acfg.Dir defaults to DataDir/audit, acfg.Store (required) must be
// the hub's audit store, and the KEKs, the blind-index key and the note key
// come from the keyring of cfg (DataDir, Passphrase, KeyProvider, KeyDir).
// Close the trail, then the keyring.
func OpenTrail(ctx context.Context, cfg Config, acfg audit.Config) (*audit.Trail, *keys.Keyring, error) {
	st, ok := acfg.Store.(keys.Store)
	if !ok {
		return nil, nil, errors.New("hub: the audit store does not hold wrapped keys")
	}
	if acfg.Dir == "" {
		acfg.Dir = filepath.Join(cfg.DataDir, "audit")
	}
	kr, err := OpenKeyring(ctx, cfg, st)
	if err != nil {
		return nil, nil, err
	}
	ns, err := kr.Secret(ctx, keys.KindNote)
	if err != nil {
		kr.Close()
		return nil, nil, err
	}
	acfg.KeyProvider, acfg.NoteSigner = kr, string(ns.Key)
	tr, err := audit.Open(ctx, acfg)
	if err != nil {
		kr.Close()
		return nil, nil, err
	}
	if err := migrateAuditKeys(ctx, slog.Default(), tr, acfg.Dir); err != nil {
		tr.Close(ctx)
		kr.Close()
		return nil, nil, err
	}
	return tr, kr, nil
}
