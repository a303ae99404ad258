package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/crossroads-hub/crossroads/atomicfile"
)

var sealedFormat = regexp.MustCompile(`^crossroads-[a-z0-9-]{1,48}$`)

// SealWithPassphrase encrypts secret under passphrase in the format of the
// CA's encrypted key file (AES-256-GCM under PBKDF2-HMAC-SHA-256, see
// keyfile.go), labelled format ("crossroads-…"): a file sealed for one
// purpose does not open as another.
func SealWithPassphrase(format string, secret, passphrase []byte) ([]byte, error) {
	if !sealedFormat.MatchString(format) || format == keyFileFormat {
		return nil, fmt.Errorf("pki: seal: invalid format %q", format)
	}
	if len(passphrase) == 0 {
		return nil, errors.New("pki: seal: empty passphrase")
	}
	return encryptKeyAs(format, secret, passphrase)
}

// OpenWithPassphrase decrypts what SealWithPassphrase sealed with format.
// It returns ErrWrongPassphrase or ErrCorruptKeyFile (wrapped).
func OpenWithPassphrase(format string, sealed, passphrase []byte) ([]byte, error) {
	if !sealedFormat.MatchString(format) || format == keyFileFormat {
		return nil, fmt.Errorf("pki: open: invalid format %q", format)
	}
	return decryptKeyAs(format, sealed, passphrase)
}

// ChangePassphrase re-encrypts the CA key in dir under newPassphrase.
func ChangePassphrase(dir string, oldPassphrase, newPassphrase []byte) error {
	if len(newPassphrase) < MinPassphraseLen {
		return fmt.Errorf("pki: change passphrase: passphrase shorter than %d bytes", MinPassphraseLen)
	}
	if _, err := LoadCA(dir, oldPassphrase); err != nil { // the key matches its certificate
		return err
	}
	file := filepath.Join(dir, CAKeyFile)
	enc, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("pki: change passphrase: %w", err)
	}
	der, err := decryptKey(enc, oldPassphrase)
	if err != nil {
		return fmt.Errorf("pki: change passphrase: %w", err)
	}
	defer clear(der)
	out, err := encryptKey(der, newPassphrase)
	if err != nil {
		return fmt.Errorf("pki: change passphrase: %w", err)
	}
	if err := atomicfile.Write(file, out, 0o600); err != nil {
		return fmt.Errorf("pki: change passphrase: %w", err)
	}
	return nil
}
