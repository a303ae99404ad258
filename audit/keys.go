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
	"time"

	"github.com/crossroads-hub/crossroads/atomicfile"
)

// KeyProvider holds the key-encryption keys (KEKs) that wrap the per-period
// data keys, and the key of the subject blind index. A KMS or HSM can
// implement it; FileKeys is the embedded default.
type KeyProvider interface {
	// Wrap encrypts a data key under the current KEK and returns that KEK's id.
	Wrap(ctx context.Context, dataKey []byte) (kekID string, wrapped []byte, err error)
	// Unwrap decrypts a data key wrapped under the KEK kekID, which need not
	// be the current one.
	Unwrap(ctx context.Context, kekID string, wrapped []byte) ([]byte, error)
	// CurrentKEK returns the id of the KEK Wrap uses.
	CurrentKEK(ctx context.Context) (string, error)
	// IndexKey returns the 32-byte key of the subject blind index. It must
	// never change, or earlier records can no longer be found by subject.
	IndexKey(ctx context.Context) ([]byte, error)
}

// FileKeys is a KeyProvider over local key files in a directory: one file
// per KEK (kek-<id>.key, 32 random bytes, mode 0600), a "current" file
// naming the KEK in use, and index.key for the blind index.
type FileKeys struct {
	dir string

	mu      sync.Mutex
	keks    map[string][]byte
	current string
	index   []byte
}

var kekIDPattern = regexp.MustCompile(`^[0-9A-Za-z-]{1,64}$`)

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
	cur, err := os.ReadFile(filepath.Join(dir, "current"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, err := k.Rotate(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("audit keys: %w", err)
	default:
		id := strings.TrimSpace(string(cur))
		if _, err := k.kek(id); err != nil {
			return nil, err
		}
		k.current = id
	}
	return k, nil
}

// Rotate creates a new KEK and makes it current. Data keys wrapped under
// older KEKs still unwrap; Trail.Rewrap moves them to the new KEK.
func (k *FileKeys) Rotate() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := time.Now().UTC().Format("20060102T150405.000000000Z")
	id = strings.ReplaceAll(id, ".", "-")
	key, err := loadOrCreateKey(filepath.Join(k.dir, "kek-"+id+".key"))
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(k.dir, "current"), []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("audit keys: %w", err)
	}
	k.keks[id] = key
	k.current = id
	return id, nil
}

func (k *FileKeys) kek(id string) ([]byte, error) {
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

// CurrentKEK implements KeyProvider.
func (k *FileKeys) CurrentKEK(context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current, nil
}

// Wrap implements KeyProvider.
func (k *FileKeys) Wrap(_ context.Context, dataKey []byte) (string, []byte, error) {
	k.mu.Lock()
	id := k.current
	kek, err := k.kek(id)
	k.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	w, err := seal(kek, dataKey, []byte("crossroads-audit-kek:"+id))
	return id, w, err
}

// Unwrap implements KeyProvider.
func (k *FileKeys) Unwrap(_ context.Context, kekID string, wrapped []byte) ([]byte, error) {
	k.mu.Lock()
	kek, err := k.kek(kekID)
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return open(kek, wrapped, []byte("crossroads-audit-kek:"+kekID))
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
