package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads/atomicfile"
	"github.com/crossroads-hub/crossroads/pki"
)

// FileProvider is the local Provider: a directory holding a root key
// sealed by a passphrase (root-<id>.key.enc, the CA key's format:
// AES-256-GCM under PBKDF2-HMAC-SHA-256) and one file per provider key
// (<id>.key), sealed under the root key. Nothing in the directory is in
// clear; the passphrase is needed to use any of it.
//
// Several nodes may share one directory (on shared storage): key files are
// created atomically under random ids, and the first root key under a
// fixed name, exclusively (nodes that open an empty directory together
// agree on one root). Rotating the root is for one process alone.
type FileProvider struct {
	dir string

	mu    sync.Mutex
	roots map[string]cipher.AEAD // by root id; one, two during a rotation
	cur   string                 // root id new keys are sealed under
	cache map[string]cipher.AEAD // provider keys, unsealed
}

const (
	rootFormat = "crossroads-root-key"
	keyFileV   = 1
)

var (
	rootFile = regexp.MustCompile(`^root-([0-9a-f]{16})\.key\.enc$`)
	keyFile  = regexp.MustCompile(`^(f[0-9a-f]{24})\.key$`)
)

// providerKeyFile is a provider key sealed under a root key.
type providerKeyFile struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Label   string    `json:"label"`
	Root    string    `json:"root"`
	Created time.Time `json:"created"`
	Sealed  []byte    `json:"sealed"` // AES-256-GCM(root, key), nonce first
}

func (f *providerKeyFile) aad() []byte {
	return []byte("crossroads-provider-key\x00" + f.ID + "\x00" + f.Label + "\x00" + f.Root)
}

// OpenFileProvider opens the provider directory dir with passphrase,
// creating it and its root key when dir holds none.
func OpenFileProvider(dir string, passphrase []byte) (*FileProvider, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("keys: file provider: a passphrase is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: file provider: %w", err)
	}
	p := &FileProvider{dir: dir, roots: map[string]cipher.AEAD{}, cache: map[string]cipher.AEAD{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("keys: file provider: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if m := rootFile.FindStringSubmatch(e.Name()); m != nil {
			ids = append(ids, m[1])
		}
	}
	if len(ids) == 0 {
		created, err := p.firstRoot(passphrase)
		if err != nil {
			return nil, err
		}
		if created {
			p.cur = firstRootID
			return p, nil
		}
		ids = []string{firstRootID} // another process created it first
	}
	for _, id := range ids {
		b, err := os.ReadFile(filepath.Join(dir, "root-"+id+".key.enc"))
		if err != nil {
			return nil, fmt.Errorf("keys: file provider: %w", err)
		}
		raw, err := pki.OpenWithPassphrase(rootFormat, b, passphrase)
		if err != nil {
			return nil, fmt.Errorf("keys: file provider: root key %s: %w", id, err)
		}
		a, err := newGCM(raw)
		clear(raw)
		if err != nil {
			return nil, err
		}
		p.roots[id] = a
	}
	// After a rotation interrupted by a crash, both roots exist: finish it
	// under the newest.
	slices.Sort(ids)
	p.cur = ids[len(ids)-1]
	if len(ids) > 1 {
		if err := p.finishRotation(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// firstRootID is the id of a directory's first root key: a fixed name, so
// that processes opening an empty shared directory together agree on one
// root (a later rotation's time-based id sorts after it).
const firstRootID = "0000000000000000"

// firstRoot creates the first root key of an empty directory unless
// another process does so first: the sealed root is written to a temporary
// file and hard-linked to its name, which fails if the name exists (link
// is atomic, on NFS too). It reports whether this process created it.
func (p *FileProvider) firstRoot(passphrase []byte) (bool, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	defer clear(raw)
	sealed, err := pki.SealWithPassphrase(rootFormat, raw, passphrase)
	if err != nil {
		return false, fmt.Errorf("keys: file provider: %w", err)
	}
	f, err := os.CreateTemp(p.dir, ".root-new-*")
	if err != nil {
		return false, fmt.Errorf("keys: file provider: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(sealed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("keys: file provider: %w", err)
	}
	err = os.Link(tmp, filepath.Join(p.dir, "root-"+firstRootID+".key.enc"))
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("keys: file provider: %w", err)
	}
	if d, err := os.Open(p.dir); err == nil {
		d.Sync()
		d.Close()
	}
	a, err := newGCM(raw)
	if err != nil {
		return false, err
	}
	p.roots[firstRootID] = a
	return true, nil
}

func (p *FileProvider) newRoot(passphrase []byte) (string, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	defer clear(raw)
	// Ids sort by creation time, so that the newest root is known.
	id := fmt.Sprintf("%016x", uint64(time.Now().UnixNano()))
	sealed, err := pki.SealWithPassphrase(rootFormat, raw, passphrase)
	if err != nil {
		return "", fmt.Errorf("keys: file provider: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(p.dir, "root-"+id+".key.enc"), sealed, 0o600); err != nil {
		return "", fmt.Errorf("keys: file provider: %w", err)
	}
	a, err := newGCM(raw)
	if err != nil {
		return "", err
	}
	p.roots[id] = a
	return id, nil
}

// Name implements Provider.
func (p *FileProvider) Name() string { return "file" }

// Dir returns the provider directory.
func (p *FileProvider) Dir() string { return p.dir }

// NewKey implements Provider.
func (p *FileProvider) NewKey(_ context.Context, label string) (string, error) {
	if label == "" || len(label) > 128 {
		return "", fmt.Errorf("keys: file provider: invalid label %q", label)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	defer clear(raw)
	var rid [12]byte
	rand.Read(rid[:])
	id := "f" + hex.EncodeToString(rid[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writeKey(id, label, time.Now().UTC(), raw); err != nil {
		return "", err
	}
	a, err := newGCM(raw)
	if err != nil {
		return "", err
	}
	p.cache[id] = a
	return id, nil
}

func (p *FileProvider) writeKey(id, label string, created time.Time, raw []byte) error {
	kf := providerKeyFile{Version: keyFileV, ID: id, Label: label, Root: p.cur, Created: created}
	kf.Sealed = sealAEAD(p.roots[p.cur], raw, kf.aad())
	b, err := json.Marshal(&kf)
	if err != nil {
		return fmt.Errorf("keys: file provider: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(p.dir, id+".key"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("keys: file provider: %w", err)
	}
	return nil
}

// readKey reads and unseals a key file.
func (p *FileProvider) readKey(id string) (*providerKeyFile, []byte, error) {
	if !keyFile.MatchString(id + ".key") {
		return nil, nil, fmt.Errorf("keys: file provider: key %q: %w", id, ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(p.dir, id+".key"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("keys: file provider: key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("keys: file provider: %w", err)
	}
	var kf providerKeyFile
	if err := json.Unmarshal(b, &kf); err != nil || kf.Version != keyFileV || kf.ID != id {
		return nil, nil, fmt.Errorf("keys: file provider: key %s: malformed file", id)
	}
	root, ok := p.roots[kf.Root]
	if !ok {
		return nil, nil, fmt.Errorf("keys: file provider: key %s: sealed under unknown root %s", id, kf.Root)
	}
	raw, err := openAEAD(root, kf.Sealed, kf.aad())
	if err != nil || len(raw) != 32 {
		return nil, nil, fmt.Errorf("keys: file provider: key %s: does not open under its root", id)
	}
	return &kf, raw, nil
}

func (p *FileProvider) key(id string) (cipher.AEAD, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.cache[id]; ok {
		return a, nil
	}
	_, raw, err := p.readKey(id)
	if err != nil {
		return nil, err
	}
	a, err := newGCM(raw)
	clear(raw)
	if err != nil {
		return nil, err
	}
	p.cache[id] = a
	return a, nil
}

// Seal implements Provider.
func (p *FileProvider) Seal(_ context.Context, id string, plaintext, aad []byte) ([]byte, error) {
	a, err := p.key(id)
	if err != nil {
		return nil, err
	}
	return sealAEAD(a, plaintext, aad), nil
}

// Open implements Provider.
func (p *FileProvider) Open(_ context.Context, id string, sealed, aad []byte) ([]byte, error) {
	a, err := p.key(id)
	if err != nil {
		return nil, err
	}
	return openAEAD(a, sealed, aad)
}

// Destroy implements Provider: the key file is overwritten and removed.
// (An overwrite is no guarantee on a journaling or copy-on-write file
// system or an SSD; the file is sealed under the root key in any case.)
func (p *FileProvider) Destroy(_ context.Context, id string) error {
	if !keyFile.MatchString(id + ".key") {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cache, id)
	return destroyFile(filepath.Join(p.dir, id+".key"))
}

func destroyFile(file string) error {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keys: destroy: %w", err)
	}
	if f, err := os.OpenFile(file, os.O_WRONLY, 0); err == nil {
		f.Write(make([]byte, fi.Size()))
		f.Sync()
		f.Close()
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keys: destroy: %w", err)
	}
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Keys implements Provider.
func (p *FileProvider) Keys(context.Context) ([]ProviderKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("keys: file provider: %w", err)
	}
	var out []ProviderKey
	for _, e := range ents {
		m := keyFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		kf, raw, err := p.readKey(m[1])
		if errors.Is(err, ErrNotFound) {
			continue // destroyed meanwhile (another node)
		}
		if err != nil {
			return nil, err
		}
		clear(raw)
		out = append(out, ProviderKey{ID: kf.ID, Label: kf.Label})
	}
	return out, nil
}

// RotateRoot seals a new root key under passphrase (which may differ from
// the old one: this is how the passphrase is changed), reseals every key
// under it and destroys the old root. A crash midway leaves both roots; the
// next open finishes the rotation.
func (p *FileProvider) RotateRoot(passphrase []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, err := p.newRoot(passphrase)
	if err != nil {
		return err
	}
	p.cur = id
	return p.finishRotation()
}

// finishRotation reseals under p.cur every key sealed under another root,
// then destroys the other roots. p.mu is held (or p is not shared yet).
func (p *FileProvider) finishRotation() error {
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("keys: file provider: %w", err)
	}
	for _, e := range ents {
		m := keyFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		kf, raw, err := p.readKey(m[1])
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if kf.Root != p.cur {
			err = p.writeKey(kf.ID, kf.Label, kf.Created, raw)
		}
		clear(raw)
		if err != nil {
			return err
		}
	}
	for id := range p.roots {
		if id == p.cur {
			continue
		}
		if err := destroyFile(filepath.Join(p.dir, "root-"+id+".key.enc")); err != nil {
			return err
		}
		delete(p.roots, id)
	}
	return nil
}

// Close implements Provider.
func (p *FileProvider) Close() error {
	p.mu.Lock()
	p.cache = map[string]cipher.AEAD{}
	p.roots = map[string]cipher.AEAD{}
	p.mu.Unlock()
	return nil
}

// IsProviderDir reports whether dir holds a FileProvider's root key.
func IsProviderDir(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if rootFile.MatchString(e.Name()) {
			return true
		}
	}
	return false
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealAEAD returns nonce ‖ ciphertext ‖ tag.
func sealAEAD(a cipher.AEAD, plaintext, aad []byte) []byte {
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	rand.Read(out)
	return a.Seal(out, out, plaintext, aad)
}

func openAEAD(a cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, errors.New("keys: sealed data too short")
	}
	pt, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("keys: open: %w", err)
	}
	return pt, nil
}
