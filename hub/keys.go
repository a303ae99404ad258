package hub

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/atomicfile"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/pki"
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
	p, err := keys.OpenFileProvider(dir, cfg.Passphrase)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
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
	kr, err := openKeyring(ctx, cfg, p, st)
	if err != nil {
		p.Close()
	}
	return kr, err
}

// asyncProvider is a provider being opened in the background.
type asyncProvider struct {
	done  chan struct{}
	p     keys.Provider
	err   error
	taken bool
}

func openProviderAsync(cfg Config) *asyncProvider {
	a := &asyncProvider{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.p, a.err = OpenProvider(cfg)
	}()
	return a
}

// keyring waits for the provider and opens the keyring over it; the
// keyring then owns the provider.
func (a *asyncProvider) keyring(ctx context.Context, cfg Config, st keys.Store) (*keys.Keyring, error) {
	<-a.done
	if a.err != nil {
		return nil, a.err
	}
	kr, err := openKeyring(ctx, cfg, a.p, st)
	if err == nil {
		a.taken = true
	}
	return kr, err
}

// discard closes the provider unless a keyring took it.
func (a *asyncProvider) discard() {
	<-a.done
	if a.p != nil && !a.taken {
		a.p.Close()
	}
}

func openKeyring(ctx context.Context, cfg Config, p keys.Provider, st keys.Store) (*keys.Keyring, error) {
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

// RotateKey rotates a key of the hierarchy (kinds: root, master, kek,
// note, hub-tls; see 'crossroads keys') and records the rotation in the
// audit trail (a RecordKey event, action rotate, naming the kind and the
// new key's public identity, never a secret). newPassphrase, for root
// only, replaces the passphrase (nil: keep it). New note and TLS keys take
// effect when the hub next starts.
func (h *Hub) RotateKey(ctx context.Context, kind string, newPassphrase []byte) (string, error) {
	var detail map[string]any
	switch kind {
	case "root":
		fp, ok := h.Keys.Provider().(*keys.FileProvider)
		if !ok {
			return "", fmt.Errorf("rotate root: the %s provider has no root key of the hub's (rotate its keys in the HSM)", h.Keys.Provider().Name())
		}
		if newPassphrase != nil && len(newPassphrase) < pki.MinPassphraseLen {
			return "", fmt.Errorf("rotate root: the new passphrase is shorter than %d bytes", pki.MinPassphraseLen)
		}
		pass := newPassphrase
		if pass == nil {
			pass = h.cfg.Passphrase
		}
		if err := fp.RotateRoot(pass); err != nil {
			return "", err
		}
		if newPassphrase != nil { // one passphrase opens the CA and the provider
			if err := pki.ChangePassphrase(caDir(h.cfg.DataDir), h.cfg.Passphrase, newPassphrase); err != nil {
				return "", fmt.Errorf("rotate root: the provider has the new passphrase, but the CA key not: %w", err)
			}
		}
		detail = map[string]any{"kind": kind, "passphraseChanged": newPassphrase != nil}
	case "master":
		id, err := h.Keys.RotateMaster(ctx)
		if err != nil {
			return "", err
		}
		detail = map[string]any{"kind": kind, "id": id}
	case "kek":
		n, err := h.Trail.Rewrap(ctx)
		if err != nil {
			return "", err
		}
		detail = map[string]any{"kind": kind, "dataKeys": n}
	case "note":
		skey, vkey, err := note.GenerateKey(rand.Reader, h.Trail.Origin())
		if err != nil {
			return "", fmt.Errorf("rotate note key: %w", err)
		}
		s, err := h.Keys.Rotate(ctx, keys.KindNote, []byte(skey), vkey)
		if err != nil {
			return "", err
		}
		if err := atomicfile.Write(filepath.Join(h.cfg.DataDir, "audit", audit.NotePublicFile), []byte(vkey+"\n"), 0o644); err != nil {
			return "", err
		}
		detail = map[string]any{"kind": kind, "version": s.Version, "verifierKey": vkey}
	case keys.KindHubTLS:
		leaf := h.Cert.Leaf
		req := pki.IssueRequest{Participant: HubID, DNSNames: leaf.DNSNames, IPAddresses: leaf.IPAddresses, Server: true}
		certPEM, keyPEM, rec, err := h.CA.Issue(req)
		if err != nil {
			return "", fmt.Errorf("rotate hub key: %w", err)
		}
		if err := h.Registers.RecordCertificate(ctx, rec); err != nil {
			return "", err
		}
		s, err := h.Keys.Rotate(ctx, keys.KindHubTLS, keyPEM, string(certPEM))
		if err != nil {
			return "", err
		}
		if err := writeHubCert(hubDir(h.cfg.DataDir), filepath.Join(hubDir(h.cfg.DataDir), "hub.crt"), certPEM); err != nil {
			return "", err
		}
		detail = map[string]any{"kind": kind, "version": s.Version, "serial": rec.Serial}
	case keys.KindIndex:
		key := make([]byte, 32)
		rand.Read(key)
		s, err := h.Keys.Rotate(ctx, keys.KindIndex, key, "")
		if err != nil {
			return "", err
		}
		n, err := h.Trail.Reindex(ctx, s.Key)
		if err != nil {
			return "", fmt.Errorf("rotate index: %w (run the rotation again: it recomputes every index from the records)", err)
		}
		detail = map[string]any{"kind": kind, "version": s.Version, "records": n}
	default:
		return "", fmt.Errorf("rotate: unknown key kind %q (root, master, kek, note, hub-tls, index)", kind)
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return "", err
	}
	rec := &crossroads.AuditRecord{
		Kind: crossroads.RecordKey, Action: "rotate", ExchangeID: "key-" + uuid.NewString(),
		Time: time.Now().UTC(), Requester: HubID, Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed,
		Detail: b,
	}
	if _, err := h.Trail.Commit(ctx, rec); err != nil {
		return "", fmt.Errorf("rotated %s, but recording it in the audit trail failed: %w", kind, err)
	}
	h.log.Info("key rotated", "kind", kind, "record", rec.ExchangeID)
	return string(b), nil
}
