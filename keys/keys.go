// Package keys is the hub's key hierarchy.
//
// At the top, a Provider holds keys that never leave it: the local
// FileProvider (keys sealed under a root key that is itself sealed by the
// CA passphrase) or a PKCS#11 HSM (package keys/pkcs11). Below it:
//
//   - the master key, a provider key labelled "crossroads-master", wraps
//     every long-lived secret of the hub — the blind-index key, the log's
//     note signing key, the hub's TLS and seal key — which are stored only
//     wrapped, in a Store (a table of the audit database: the data
//     directory's audit.db, or the PostgreSQL database shared by every
//     node), and held unwrapped only in memory;
//   - one key-encryption key (KEK) per audit period, a provider key
//     labelled "crossroads-kek-<period>", wraps that period's data key
//     (stored in the audit database). Erasure destroys the KEK in the
//     provider, so that no copy of the database, however old, can open the
//     erased period again.
//
// A Keyring ties a Provider and a Store together; it implements
// audit.KeyProvider. All nodes of one deployment open the same provider
// (the same HSM token, or the same FileProvider directory) and the same
// database, and so share one hierarchy.
package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned (wrapped) for a key that does not exist.
var ErrNotFound = errors.New("keys: no such key")

// Provider holds AES-256 keys that never leave it, and encrypts with them.
// Implementations must be safe for concurrent use.
type Provider interface {
	// Name names the implementation ("file", "pkcs11") for listings.
	Name() string
	// NewKey creates a random AES-256 key labelled label and returns its id.
	NewKey(ctx context.Context, label string) (id string, err error)
	// Seal encrypts plaintext under key id (AES-256-GCM), binding aad.
	Seal(ctx context.Context, id string, plaintext, aad []byte) ([]byte, error)
	// Open decrypts what Seal sealed under id with the same aad.
	Open(ctx context.Context, id string, sealed, aad []byte) ([]byte, error)
	// Destroy destroys key id: nothing sealed under it opens again (through
	// this provider; a copy of the provider's own storage is the operator's
	// to control, see docs/operations.md). Destroying a missing key is not
	// an error.
	Destroy(ctx context.Context, id string) error
	// Keys lists the provider's keys.
	Keys(ctx context.Context) ([]ProviderKey, error)
	// Close releases the provider.
	Close() error
}

// ProviderKey is a key held by a Provider.
type ProviderKey struct {
	ID    string
	Label string
}

// Labels of the provider keys of the hierarchy.
const (
	MasterLabel = "crossroads-master"
	KEKPrefix   = "crossroads-kek-"
)

// Kinds of the wrapped secrets.
const (
	KindIndex  = "index"   // 32-byte key of the subject blind index
	KindNote   = "note"    // the log's note signing key (golang.org/x/mod/sumdb/note private key)
	KindHubTLS = "hub-tls" // the hub's private key (PKCS #8 PEM); Public holds its certificate
)

// Wrapped is a secret as a Store keeps it: wrapped under a provider key.
type Wrapped struct {
	Kind        string
	Version     int
	ProviderKey string // id of the provider key that wraps it
	Wrapped     []byte
	Public      string // public part, in clear (a verifier key, a certificate)
	Created     time.Time
}

// Store persists wrapped secrets. Every method is atomic.
type Store interface {
	// WrappedKeys lists the versions of kind, oldest first (every kind when
	// kind is "").
	WrappedKeys(ctx context.Context, kind string) ([]Wrapped, error)
	// PutWrappedKey inserts w unless its (Kind, Version) exists; it reports
	// whether it inserted.
	PutWrappedKey(ctx context.Context, w Wrapped) (bool, error)
	// ReplaceWrappedKey replaces the wrapping of an existing (Kind, Version)
	// (the secret itself is unchanged).
	ReplaceWrappedKey(ctx context.Context, w Wrapped) error
	// DeleteWrappedKey deletes a version; not an error when absent.
	DeleteWrappedKey(ctx context.Context, kind string, version int) error
}

// Secret is an unwrapped secret.
type Secret struct {
	Kind    string
	Version int
	Key     []byte
	Public  string
	Created time.Time
}

// Keyring is the key hierarchy of a deployment: a Provider and a Store.
type Keyring struct {
	p  Provider
	st Store

	mu      sync.Mutex
	secrets map[string]Secret // current version of each kind, unwrapped
}

// Open opens the hierarchy of p and st. The master key is created in the
// provider on first use.
func Open(_ context.Context, p Provider, st Store) (*Keyring, error) {
	if p == nil || st == nil {
		return nil, errors.New("keys: a provider and a store are required")
	}
	return &Keyring{p: p, st: st, secrets: map[string]Secret{}}, nil
}

// Provider returns the keyring's provider.
func (k *Keyring) Provider() Provider { return k.p }

// Close closes the provider.
func (k *Keyring) Close() error {
	k.mu.Lock()
	for _, s := range k.secrets {
		clear(s.Key)
	}
	k.secrets = map[string]Secret{}
	k.mu.Unlock()
	return k.p.Close()
}

func secretAAD(kind string, version int) []byte {
	return fmt.Appendf(nil, "crossroads-secret:%s:%d", kind, version)
}

// master returns the id of the master key, creating it when the provider
// has none. Several masters (nodes that started together) are all valid:
// every wrapped secret names its own; new ones use the lowest id, the same
// on every node.
func (k *Keyring) master(ctx context.Context) (string, error) {
	ids, err := k.labelled(ctx, MasterLabel)
	if err != nil {
		return "", err
	}
	if len(ids) > 0 {
		return ids[0], nil
	}
	id, err := k.p.NewKey(ctx, MasterLabel)
	if err != nil {
		return "", fmt.Errorf("keys: create master key: %w", err)
	}
	return id, nil
}

// labelled returns the ids of the provider keys labelled label, sorted.
func (k *Keyring) labelled(ctx context.Context, label string) ([]string, error) {
	pks, err := k.p.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list provider keys: %w", err)
	}
	var ids []string
	for _, pk := range pks {
		if pk.Label == label {
			ids = append(ids, pk.ID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Secret returns the current version of kind; ErrNotFound when there is none.
func (k *Keyring) Secret(ctx context.Context, kind string) (Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.secretLocked(ctx, kind)
}

func (k *Keyring) secretLocked(ctx context.Context, kind string) (Secret, error) {
	if s, ok := k.secrets[kind]; ok {
		return s, nil
	}
	ws, err := k.st.WrappedKeys(ctx, kind)
	if err != nil {
		return Secret{}, fmt.Errorf("keys: %s: %w", kind, err)
	}
	if len(ws) == 0 {
		return Secret{}, fmt.Errorf("keys: %s: %w", kind, ErrNotFound)
	}
	w := ws[len(ws)-1]
	raw, err := k.p.Open(ctx, w.ProviderKey, w.Wrapped, secretAAD(w.Kind, w.Version))
	if errors.Is(err, ErrNotFound) {
		return Secret{}, fmt.Errorf("keys: unwrap %s v%d: the %s provider does not hold the key that wraps it: every node must use the same provider (the same HSM token, or the same key directory): %w",
			kind, w.Version, k.p.Name(), err)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("keys: unwrap %s v%d: %w", kind, w.Version, err)
	}
	s := Secret{Kind: kind, Version: w.Version, Key: raw, Public: w.Public, Created: w.Created}
	k.secrets[kind] = s
	return s, nil
}

// Ensure returns the current version of kind, creating version 1 with gen
// when there is none. When several nodes race, one version 1 wins and all
// return it.
func (k *Keyring) Ensure(ctx context.Context, kind string, gen func() (secret []byte, public string, err error)) (Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, err := k.secretLocked(ctx, kind)
	if !errors.Is(err, ErrNotFound) {
		return s, err
	}
	secret, public, err := gen()
	if err != nil {
		return Secret{}, fmt.Errorf("keys: create %s: %w", kind, err)
	}
	if _, err := k.putLocked(ctx, kind, 1, secret, public); err != nil {
		return Secret{}, err
	}
	return k.secretLocked(ctx, kind)
}

// Rotate stores secret as the new current version of kind, deletes the
// older versions and returns the new one. Other nodes pick it up when they
// next open the keyring.
func (k *Keyring) Rotate(ctx context.Context, kind string, secret []byte, public string) (Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ws, err := k.st.WrappedKeys(ctx, kind)
	if err != nil {
		return Secret{}, fmt.Errorf("keys: rotate %s: %w", kind, err)
	}
	next := 1
	if len(ws) > 0 {
		next = ws[len(ws)-1].Version + 1
	}
	ok, err := k.putLocked(ctx, kind, next, secret, public)
	if err != nil {
		return Secret{}, err
	}
	if !ok {
		return Secret{}, fmt.Errorf("keys: rotate %s: version %d was created concurrently; retry", kind, next)
	}
	for _, w := range ws {
		if err := k.st.DeleteWrappedKey(ctx, kind, w.Version); err != nil {
			return Secret{}, fmt.Errorf("keys: rotate %s: retire v%d: %w", kind, w.Version, err)
		}
	}
	if old, ok := k.secrets[kind]; ok {
		clear(old.Key)
	}
	delete(k.secrets, kind)
	return k.secretLocked(ctx, kind)
}

func (k *Keyring) putLocked(ctx context.Context, kind string, version int, secret []byte, public string) (bool, error) {
	mid, err := k.master(ctx)
	if err != nil {
		return false, err
	}
	wrapped, err := k.p.Seal(ctx, mid, secret, secretAAD(kind, version))
	if err != nil {
		return false, fmt.Errorf("keys: wrap %s: %w", kind, err)
	}
	ok, err := k.st.PutWrappedKey(ctx, Wrapped{Kind: kind, Version: version, ProviderKey: mid, Wrapped: wrapped, Public: public, Created: time.Now().UTC()})
	if err != nil {
		return false, fmt.Errorf("keys: store %s: %w", kind, err)
	}
	return ok, nil
}

// RotateMaster creates a new master key, rewraps every stored secret under
// it and destroys the old master keys. Run it with the other nodes stopped:
// a node that stored a secret under an old master meanwhile would lose it.
func (k *Keyring) RotateMaster(ctx context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old, err := k.labelled(ctx, MasterLabel)
	if err != nil {
		return "", err
	}
	nid, err := k.p.NewKey(ctx, MasterLabel)
	if err != nil {
		return "", fmt.Errorf("keys: rotate master: %w", err)
	}
	ws, err := k.st.WrappedKeys(ctx, "")
	if err != nil {
		return "", fmt.Errorf("keys: rotate master: %w", err)
	}
	for _, w := range ws {
		aad := secretAAD(w.Kind, w.Version)
		raw, err := k.p.Open(ctx, w.ProviderKey, w.Wrapped, aad)
		if err != nil {
			return "", fmt.Errorf("keys: rotate master: unwrap %s v%d: %w", w.Kind, w.Version, err)
		}
		w.Wrapped, err = k.p.Seal(ctx, nid, raw, aad)
		clear(raw)
		if err != nil {
			return "", fmt.Errorf("keys: rotate master: %w", err)
		}
		w.ProviderKey = nid
		if err := k.st.ReplaceWrappedKey(ctx, w); err != nil {
			return "", fmt.Errorf("keys: rotate master: %w", err)
		}
	}
	// Destroying the old masters leaves the new one the only master.
	for _, id := range old {
		if err := k.p.Destroy(ctx, id); err != nil {
			return "", fmt.Errorf("keys: rotate master: destroy old master: %w", err)
		}
	}
	return nid, nil
}

// KEK is a period's key-encryption key in the provider.
type KEK struct {
	ID     string
	Period string
}

// NewKEK creates a key-encryption key for period in the provider.
func (k *Keyring) NewKEK(ctx context.Context, period string) (string, error) {
	if period == "" || strings.ContainsAny(period, " \t\n") {
		return "", fmt.Errorf("keys: invalid period %q", period)
	}
	id, err := k.p.NewKey(ctx, KEKPrefix+period)
	if err != nil {
		return "", fmt.Errorf("keys: create KEK %s: %w", period, err)
	}
	return id, nil
}

// KEKs lists the key-encryption keys of every period.
func (k *Keyring) KEKs(ctx context.Context) ([]KEK, error) {
	pks, err := k.p.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list provider keys: %w", err)
	}
	var out []KEK
	for _, pk := range pks {
		if per, ok := strings.CutPrefix(pk.Label, KEKPrefix); ok {
			out = append(out, KEK{ID: pk.ID, Period: per})
		}
	}
	slices.SortFunc(out, func(a, b KEK) int { return strings.Compare(a.Period+a.ID, b.Period+b.ID) })
	return out, nil
}

func kekAAD(period string) []byte { return []byte("crossroads-audit-kek:" + period) }

// WrapDataKey wraps a period's data key under the KEK kekID.
func (k *Keyring) WrapDataKey(ctx context.Context, kekID, period string, dataKey []byte) ([]byte, error) {
	return k.p.Seal(ctx, kekID, dataKey, kekAAD(period))
}

// UnwrapDataKey unwraps a period's data key wrapped under kekID.
func (k *Keyring) UnwrapDataKey(ctx context.Context, kekID, period string, wrapped []byte) ([]byte, error) {
	return k.p.Open(ctx, kekID, wrapped, kekAAD(period))
}

// DestroyKEK destroys a key-encryption key in the provider.
func (k *Keyring) DestroyKEK(ctx context.Context, kekID string) error {
	return k.p.Destroy(ctx, kekID)
}

// IndexKey returns the key of the subject blind index, creating it on
// first use. It is held unwrapped only in memory.
func (k *Keyring) IndexKey(ctx context.Context) ([]byte, error) {
	s, err := k.Ensure(ctx, KindIndex, func() ([]byte, string, error) {
		b := make([]byte, 32)
		rand.Read(b)
		return b, "", nil
	})
	if err != nil {
		return nil, err
	}
	return s.Key, nil
}

// Info describes a key for listings; it holds no secret.
type Info struct {
	Kind     string // a secret kind, "master" or "kek"
	Version  int    // secrets only
	ID       string // provider key id (masters, KEKs) or the wrapping key (secrets)
	Period   string // KEKs only
	Public   string
	Created  time.Time
	Provider string
}

// List lists the hierarchy: provider keys and wrapped secrets.
func (k *Keyring) List(ctx context.Context) ([]Info, error) {
	pks, err := k.p.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list provider keys: %w", err)
	}
	var out []Info
	for _, pk := range pks {
		switch {
		case pk.Label == MasterLabel:
			out = append(out, Info{Kind: "master", ID: pk.ID, Provider: k.p.Name()})
		case strings.HasPrefix(pk.Label, KEKPrefix):
			out = append(out, Info{Kind: "kek", ID: pk.ID, Period: strings.TrimPrefix(pk.Label, KEKPrefix), Provider: k.p.Name()})
		}
	}
	ws, err := k.st.WrappedKeys(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	for _, w := range ws {
		out = append(out, Info{Kind: w.Kind, Version: w.Version, ID: w.ProviderKey, Public: w.Public, Created: w.Created, Provider: k.p.Name()})
	}
	slices.SortStableFunc(out, func(a, b Info) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Period, b.Period)
	})
	return out, nil
}
