package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrMalformedKey is returned (wrapped) for a private key that cannot be read.
var ErrMalformedKey = errors.New("witness: malformed private key")

// GenerateKey makes a new Ed25519 witness key named name. It returns the
// private key in the signed-note format ("PRIVATE+KEY+<name>+<key ID>+
// <base64(0x01 || seed)>"), which ParsePrivateKey reads back, and the
// cosigner.
func GenerateKey(name string) (skey string, c *Cosigner, err error) {
	if !isValidName(name) {
		return "", nil, fmt.Errorf("witness: invalid key name %q", name)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("witness: generate key: %w", err)
	}
	if c, err = NewCosigner(name, key); err != nil {
		return "", nil, err
	}
	return MarshalPrivateKey(name, key), c, nil
}

// MarshalPrivateKey encodes key in the signed-note private key format.
func MarshalPrivateKey(name string, key ed25519.PrivateKey) string {
	k := append([]byte{algEd25519}, key.Seed()...)
	id := keyHash(name, append([]byte{algEd25519}, key.Public().(ed25519.PublicKey)...))
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(k))
}

// ParsePrivateKey reads a signed-note Ed25519 private key and returns its
// cosigner. The name and key ID are separated by "+", which is also a
// base64 character: the key is everything after the key ID, never split.
func ParsePrivateKey(skey string) (*Cosigner, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(skey), "PRIVATE+KEY+")
	if !ok {
		return nil, fmt.Errorf("%w: no PRIVATE+KEY+ prefix", ErrMalformedKey)
	}
	name, rest, ok1 := strings.Cut(rest, "+")
	id16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !isValidName(name) || len(id16) != 8 {
		return nil, fmt.Errorf("%w: want PRIVATE+KEY+<name>+<key ID>+<key>", ErrMalformedKey)
	}
	id, err := strconv.ParseUint(id16, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: key ID: %v", ErrMalformedKey, err)
	}
	raw, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, fmt.Errorf("%w: not an Ed25519 key", ErrMalformedKey)
	}
	key := ed25519.NewKeyFromSeed(raw[1:])
	if uint32(id) != keyHash(name, append([]byte{algEd25519}, key.Public().(ed25519.PublicKey)...)) {
		return nil, fmt.Errorf("%w: key ID does not match the key", ErrMalformedKey)
	}
	// x/mod reads the same format: stay compatible with it.
	if _, err := note.NewSigner(strings.TrimSpace(skey)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedKey, err)
	}
	return NewCosigner(name, key)
}
