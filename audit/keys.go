package audit

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/crossroads-hub/crossroads/atomicfile"
	"github.com/crossroads-hub/crossroads/keys"
)

// KeyProvider holds the key-encryption keys (KEKs) that wrap the per-period
// data keys, one KEK (or more, after a race or a rotation) per period, and
// the key of the subject blind index. keys.Keyring is the hub's (KEKs in a
// keys.Provider, an HSM or the passphrase-sealed local provider); FileKeys
// is an unprotected default for tests and tools over test data.
type KeyProvider interface {
	// NewKEK creates a KEK for period and returns its id.
	NewKEK(ctx context.Context, period string) (string, error)
	// KEKs lists the KEKs and their periods.
	KEKs(ctx context.Context) ([]keys.KEK, error)
	// WrapDataKey wraps the data key of period under KEK kekID.
	WrapDataKey(ctx context.Context, kekID, period string, dataKey []byte) ([]byte, error)
	// UnwrapDataKey unwraps a data key of period wrapped under kekID.
	UnwrapDataKey(ctx context.Context, kekID, period string, wrapped []byte) ([]byte, error)
	// DestroyKEK destroys a KEK (crypto-shredding); not an error if absent.
	DestroyKEK(ctx context.Context, kekID string) error
	// IndexKey returns the 32-byte key of the subject blind index. It must
	// never change, or earlier records can no longer be found by subject.
	IndexKey(ctx context.Context) ([]byte, error)
}

var _ KeyProvider = (*keys.Keyring)(nil)

// FileKeys is a KeyProvider over plaintext key files in a directory: one
// file per KEK (kek-<period>_<random>.key, 32 random bytes, mode 0600) and
// index.key for the blind index. It protects nothing against whoever reads
// the directory, and its erasure does not survive a copy of it: it is the
// default of Config for tests and tools over test data only. The hub uses
// keys.Keyring; files of earlier versions (kek-<time>.key, index.key) are
// read for their migration into it.
type FileKeys struct {
	dir string

	mu    sync.Mutex
	keks  map[string][]byte
	index []byte
}

var kekIDPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,80}$`)

// OpenFileKeys opens, creating it if needed, the key directory dir.
func OpenFileKeys(dir string) (*FileKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	k := &FileKeys{dir: dir, keks: map[string][]byte{}}
	idx, err := loadOrCreateKey(filepath.Join(dir, "index.key"))
	if err != nil {
		return nil, err
	}
	k.index = idx
	return k, nil
}

// NewKEK implements KeyProvider.
func (k *FileKeys) NewKEK(_ context.Context, period string) (string, error) {
	if !kekIDPattern.MatchString(period) || strings.Contains(period, "_") {
		return "", fmt.Errorf("audit keys: invalid period %q", period)
	}
	var r [8]byte
	rand.Read(r[:])
	id := fmt.Sprintf("%s_%x", period, r)
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := loadOrCreateKey(filepath.Join(k.dir, "kek-"+id+".key"))
	if err != nil {
		return "", err
	}
	k.keks[id] = key
	return id, nil
}

// KEKs implements KeyProvider. KEKs of earlier versions, not tied to a
// period, have an empty Period.
func (k *FileKeys) KEKs(context.Context) ([]keys.KEK, error) {
	ents, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	var out []keys.KEK
	for _, e := range ents {
		id, pre := strings.CutPrefix(e.Name(), "kek-")
		id, suf := strings.CutSuffix(id, ".key")
		if !pre || !suf || !kekIDPattern.MatchString(id) {
			continue // index.key, current, …
		}
		per, _, found := strings.Cut(id, "_")
		if !found {
			per = ""
		}
		out = append(out, keys.KEK{ID: id, Period: per})
	}
	return out, nil
}

func (k *FileKeys) kek(id string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keks[id]; ok {
		return key, nil
	}
	if !kekIDPattern.MatchString(id) {
		return nil, fmt.Errorf("audit keys: invalid KEK id %q", id)
	}
	key, err := os.ReadFile(filepath.Join(k.dir, "kek-"+id+".key"))
	if err != nil {
		return nil, fmt.Errorf("audit keys: KEK %s: %w", id, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("audit keys: KEK %s: want 32 bytes, have %d", id, len(key))
	}
	k.keks[id] = key
	return key, nil
}

// WrapDataKey implements KeyProvider.
func (k *FileKeys) WrapDataKey(_ context.Context, kekID, _ string, dataKey []byte) ([]byte, error) {
	kek, err := k.kek(kekID)
	if err != nil {
		return nil, err
	}
	return seal(kek, dataKey, []byte("crossroads-audit-kek:"+kekID))
}

// UnwrapDataKey implements KeyProvider.
func (k *FileKeys) UnwrapDataKey(_ context.Context, kekID, _ string, wrapped []byte) ([]byte, error) {
	kek, err := k.kek(kekID)
	if err != nil {
		return nil, err
	}
	return open(kek, wrapped, []byte("crossroads-audit-kek:"+kekID))
}

// DestroyKEK implements KeyProvider.
func (k *FileKeys) DestroyKEK(_ context.Context, kekID string) error {
	if !kekIDPattern.MatchString(kekID) {
		return nil
	}
	k.mu.Lock()
	delete(k.keks, kekID)
	k.mu.Unlock()
	if err := os.Remove(filepath.Join(k.dir, "kek-"+kekID+".key")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit keys: %w", err)
	}
	return nil
}

// IndexKey implements KeyProvider.
func (k *FileKeys) IndexKey(context.Context) ([]byte, error) { return k.index, nil }

// loadOrCreateKey reads a 32-byte key file, creating it (0600) with random
// bytes when absent.
func loadOrCreateKey(file string) ([]byte, error) {
	key, err := os.ReadFile(file)
	if err == nil {
		if len(key) != 32 {
			return nil, fmt.Errorf("audit keys: %s: want 32 bytes, have %d", filepath.Base(file), len(key))
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	key = make([]byte, 32)
	rand.Read(key)
	if err := atomicfile.Write(file, key, 0o600); err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	return key, nil
}

// seal encrypts with AES-256-GCM; the result is the 12-byte nonce followed
// by the ciphertext and tag.
func seal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(out)
	return aead.Seal(out, out, plaintext, aad), nil
}

func open(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("audit: ciphertext too short")
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("audit: decrypt: %w", err)
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return cipher.NewGCM(block)
}
