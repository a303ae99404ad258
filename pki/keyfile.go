package pki

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
)

// Encrypted key file, version 1:
//
//	{"format":"crossroads-ca-key","version":1,
//	 "kdf":"pbkdf2-sha256","iterations":600000,"salt":"<b64>",
//	 "cipher":"aes-256-gcm","check":"<b64>","nonce":"<b64>","ciphertext":"<b64>"}
//
// master = PBKDF2-HMAC-SHA-256(passphrase, salt, iterations, 32)
// key    = HKDF-SHA-256(master, salt, "crossroads ca key v1 encryption", 32)
// check  = HKDF-SHA-256(master, salt, "crossroads ca key v1 check", 32)
// ciphertext = AES-256-GCM(key, nonce, PKCS #8 DER, aad = header fields)
const (
	keyFileFormat  = "crossroads-ca-key"
	keyFileVersion = 1
	kdfName        = "pbkdf2-sha256"
	cipherName     = "aes-256-gcm"

	// KDFIterations is the PBKDF2 iteration count for new key files
	// (OWASP 2023 recommendation for PBKDF2-HMAC-SHA-256).
	KDFIterations = 600_000
	// maxKDFIterations bounds what a key file may ask for, so a tampered
	// file cannot make LoadCA spin for hours.
	maxKDFIterations = 20_000_000
	saltLen          = 16
)

type keyFile struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	KDF        string `json:"kdf"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	Cipher     string `json:"cipher"`
	Check      []byte `json:"check"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// aad binds every header field to the ciphertext.
func (k *keyFile) aad() []byte {
	return []byte(k.Format + "\x00" + strconv.Itoa(k.Version) + "\x00" + k.KDF + "\x00" +
		strconv.Itoa(k.Iterations) + "\x00" + base64.StdEncoding.EncodeToString(k.Salt) + "\x00" + k.Cipher)
}

// deriveKeys returns the AES key and the passphrase check value.
func deriveKeys(passphrase, salt []byte, iterations int) (key, check []byte, err error) {
	master, err := pbkdf2.Key(sha256.New, string(passphrase), salt, iterations, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive key: %w", err)
	}
	defer clear(master)
	key, err = hkdf.Key(sha256.New, master, salt, "crossroads ca key v1 encryption", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive key: %w", err)
	}
	check, err = hkdf.Key(sha256.New, master, salt, "crossroads ca key v1 check", 32)
	if err != nil {
		clear(key)
		return nil, nil, fmt.Errorf("derive key: %w", err)
	}
	return key, check, nil
}

func encryptKey(plaintext, passphrase []byte) ([]byte, error) {
	return encryptKeyAs(keyFileFormat, plaintext, passphrase)
}

func encryptKeyAs(format string, plaintext, passphrase []byte) ([]byte, error) {
	kf := keyFile{
		Format: format, Version: keyFileVersion,
		KDF: kdfName, Iterations: KDFIterations, Salt: make([]byte, saltLen),
		Cipher: cipherName,
	}
	if _, err := rand.Read(kf.Salt); err != nil {
		return nil, fmt.Errorf("encrypt key: salt: %w", err)
	}
	key, check, err := deriveKeys(passphrase, kf.Salt, kf.Iterations)
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	defer clear(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	kf.Check = check
	kf.Nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(kf.Nonce); err != nil {
		return nil, fmt.Errorf("encrypt key: nonce: %w", err)
	}
	kf.Ciphertext = aead.Seal(nil, kf.Nonce, plaintext, kf.aad())
	out, err := json.MarshalIndent(&kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	return append(out, '\n'), nil
}

func decryptKey(data, passphrase []byte) ([]byte, error) {
	return decryptKeyAs(keyFileFormat, data, passphrase)
}

func decryptKeyAs(format string, data, passphrase []byte) ([]byte, error) {
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptKeyFile, err)
	}
	switch {
	case kf.Format != format:
		return nil, fmt.Errorf("%w: format %q", ErrCorruptKeyFile, kf.Format)
	case kf.Version != keyFileVersion:
		return nil, fmt.Errorf("%w: unsupported version %d", ErrCorruptKeyFile, kf.Version)
	case kf.KDF != kdfName || kf.Cipher != cipherName:
		return nil, fmt.Errorf("%w: unsupported algorithms %q/%q", ErrCorruptKeyFile, kf.KDF, kf.Cipher)
	case kf.Iterations < KDFIterations || kf.Iterations > maxKDFIterations:
		return nil, fmt.Errorf("%w: iteration count %d out of range", ErrCorruptKeyFile, kf.Iterations)
	case len(kf.Salt) < saltLen || len(kf.Check) != 32 || len(kf.Nonce) != 12 || len(kf.Ciphertext) < 16:
		return nil, fmt.Errorf("%w: field sizes", ErrCorruptKeyFile)
	}
	key, check, err := deriveKeys(passphrase, kf.Salt, kf.Iterations)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if subtle.ConstantTimeCompare(check, kf.Check) != 1 {
		return nil, ErrWrongPassphrase
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, kf.Nonce, kf.Ciphertext, kf.aad())
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorruptKeyFile)
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// Passphrase returns the CA key passphrase from the environment variable
// envVar if it is set and non-empty, otherwise from file (trailing CR/LF
// removed). It never logs the passphrase; it warns when file is readable by
// group or others. Either source may be "" to skip it.
func Passphrase(envVar, file string) ([]byte, error) {
	if envVar != "" {
		if v, ok := os.LookupEnv(envVar); ok && v != "" {
			return []byte(v), nil
		}
	}
	if file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("pki: passphrase file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			slog.Warn("pki: passphrase file is readable by group or others", "file", file, "mode", fi.Mode().Perm().String())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("pki: passphrase file: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("pki: passphrase file %s is empty", file)
		}
		return b, nil
	}
	if envVar != "" {
		return nil, fmt.Errorf("pki: no CA passphrase: set %s or give a passphrase file", envVar)
	}
	return nil, errors.New("pki: no CA passphrase: no environment variable or file given")
}
