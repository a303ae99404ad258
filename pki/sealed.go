package pki

import (
	"errors"
	"fmt"
	"regexp"
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
