package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads/atomicfile"
)

// NoteKeyFile is the name, in the data directory, of the default note
// signing key of the log (a golang.org/x/mod/sumdb/note private key).
const NoteKeyFile = "audit-note.key"

// NotePublicFile is the name, in the data directory, of the note verifier
// key of the log, written by the hub (whose signing key is in its keyring).
const NotePublicFile = "audit-note.pub"

// DefaultOrigin is the log origin (note key name) used when none is given.
const DefaultOrigin = "crossroads.example/audit"

// LoadOrCreateNoteKey reads the note private key in dir/NoteKeyFile,
// generating an Ed25519 key named origin (mode 0600) when absent.
func LoadOrCreateNoteKey(dir, origin string) (string, error) {
	file := filepath.Join(dir, NoteKeyFile)
	b, err := os.ReadFile(file)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("audit: note key: %w", err)
	}
	if origin == "" {
		origin = DefaultOrigin
	}
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", fmt.Errorf("audit: note key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("audit: note key: %w", err)
	}
	if err := atomicfile.Write(file, []byte(skey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("audit: note key: %w", err)
	}
	return skey, nil
}

// ReadVerifierKey returns the note verifier key of the log in dir: the one
// the hub wrote to dir/NotePublicFile, or that of the signing key in
// dir/NoteKeyFile (the default of Config).
func ReadVerifierKey(dir string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(dir, NotePublicFile)); err == nil {
		vkey := strings.TrimSpace(string(b))
		if _, err := note.NewVerifier(vkey); err != nil {
			return "", fmt.Errorf("audit: note key: %s: %w", NotePublicFile, err)
		}
		return vkey, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, NoteKeyFile))
	if err != nil {
		return "", fmt.Errorf("audit: note key: %w", err)
	}
	return VerifierKey(strings.TrimSpace(string(b)))
}

// VerifierKey derives the note verifier key ("name+hash+base64") of an
// Ed25519 note private key ("PRIVATE+KEY+name+hash+base64").
func VerifierKey(skey string) (string, error) {
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return "", errors.New("audit: not a note private key")
	}
	name, rest, _ := strings.Cut(rest, "+")
	_, key64, ok := strings.Cut(rest, "+")
	if !ok || name == "" {
		return "", errors.New("audit: malformed note private key")
	}
	k, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(k) != 1+ed25519.SeedSize || k[0] != 1 {
		return "", errors.New("audit: note private key is not Ed25519")
	}
	pub := ed25519.NewKeyFromSeed(k[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", fmt.Errorf("audit: note key: %w", err)
	}
	if _, err := note.NewSigner(skey); err != nil {
		return "", fmt.Errorf("audit: note key: %w", err)
	}
	return vkey, nil
}
