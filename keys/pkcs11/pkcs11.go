//go:build cgo

// Package pkcs11 is a keys.Provider over a PKCS#11 token (an HSM, or
// SoftHSM2 for tests) through github.com/ThalesGroup/crypto11. Its keys
// are AES-256 secret keys generated in the token, sensitive and not
// extractable: they never leave it; sealing is AES-256-GCM in the token.
//
// The package needs cgo (the token's module is a C library); it is
// imported only by the HSM wiring of the command (built with cgo), so that
// the rest of the hub keeps building as a static pure-Go binary.
package pkcs11

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"

	"github.com/crossroads-hub/crossroads/keys"
)

// Config names the token.
type Config struct {
	Module     string // path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string
	PIN        string // the user PIN
}

// Provider implements keys.Provider on a PKCS#11 token.
type Provider struct {
	ctx *crypto11.Context

	mu    sync.Mutex
	cache map[string]cipher.AEAD
}

var _ keys.Provider = (*Provider)(nil)

const nonceSize = 12

// Open logs in to the token.
func Open(cfg Config) (*Provider, error) {
	if cfg.Module == "" || cfg.TokenLabel == "" {
		return nil, errors.New("pkcs11: module and token label are required")
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN, GCMIVLength: nonceSize})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: open token %q: %w", cfg.TokenLabel, err)
	}
	return &Provider{ctx: c, cache: map[string]cipher.AEAD{}}, nil
}

// Name implements keys.Provider.
func (p *Provider) Name() string { return "pkcs11" }

func parseID(id string) ([]byte, error) {
	h, ok := strings.CutPrefix(id, "p")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 16 {
		return nil, fmt.Errorf("pkcs11: key %q: %w", id, keys.ErrNotFound)
	}
	return b, nil
}

// NewKey implements keys.Provider.
func (p *Provider) NewKey(_ context.Context, label string) (string, error) {
	raw := make([]byte, 16)
	rand.Read(raw)
	k, err := p.ctx.GenerateSecretKeyWithLabel(raw, []byte(label), 256, crypto11.CipherAES)
	if err != nil {
		return "", fmt.Errorf("pkcs11: generate key: %w", err)
	}
	a, err := k.NewGCM()
	if err != nil {
		return "", fmt.Errorf("pkcs11: %w", err)
	}
	id := "p" + hex.EncodeToString(raw)
	p.mu.Lock()
	p.cache[id] = a
	p.mu.Unlock()
	return id, nil
}

func (p *Provider) aead(id string) (cipher.AEAD, error) {
	p.mu.Lock()
	a, ok := p.cache[id]
	p.mu.Unlock()
	if ok {
		return a, nil
	}
	raw, err := parseID(id)
	if err != nil {
		return nil, err
	}
	k, err := p.ctx.FindKey(raw, nil)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: find key %s: %w", id, err)
	}
	if k == nil {
		return nil, fmt.Errorf("pkcs11: key %s: %w", id, keys.ErrNotFound)
	}
	if a, err = k.NewGCM(); err != nil {
		return nil, fmt.Errorf("pkcs11: %w", err)
	}
	p.mu.Lock()
	p.cache[id] = a
	p.mu.Unlock()
	return a, nil
}

// Seal implements keys.Provider: nonce ‖ ciphertext ‖ tag.
func (p *Provider) Seal(_ context.Context, id string, plaintext, aad []byte) (out []byte, err error) {
	a, err := p.aead(id)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	defer func() { // crypto11 panics when the token fails
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("pkcs11: seal: %v", r)
		}
	}()
	return a.Seal(nonce, nonce, plaintext, aad), nil
}

// Open implements keys.Provider.
func (p *Provider) Open(_ context.Context, id string, sealed, aad []byte) ([]byte, error) {
	a, err := p.aead(id)
	if err != nil {
		return nil, err
	}
	if len(sealed) < nonceSize+16 {
		return nil, errors.New("pkcs11: sealed data too short")
	}
	pt, err := a.Open(nil, sealed[:nonceSize], sealed[nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: open: %w", err)
	}
	return pt, nil
}

// Destroy implements keys.Provider: the key object is destroyed in the
// token.
func (p *Provider) Destroy(_ context.Context, id string) error {
	raw, err := parseID(id)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	delete(p.cache, id)
	p.mu.Unlock()
	ks, err := p.ctx.FindKeys(raw, nil)
	if err != nil {
		return fmt.Errorf("pkcs11: find key %s: %w", id, err)
	}
	for _, k := range ks {
		if err := k.Delete(); err != nil {
			return fmt.Errorf("pkcs11: destroy key %s: %w", id, err)
		}
	}
	return nil
}

// Keys implements keys.Provider: the token's secret keys whose id this
// provider made.
func (p *Provider) Keys(context.Context) ([]keys.ProviderKey, error) {
	ks, err := p.ctx.FindAllKeys()
	if err != nil {
		return nil, fmt.Errorf("pkcs11: list keys: %w", err)
	}
	var out []keys.ProviderKey
	for _, k := range ks {
		attrs, err := p.ctx.GetAttributes(k, []crypto11.AttributeType{crypto11.CkaId, crypto11.CkaLabel})
		if err != nil {
			return nil, fmt.Errorf("pkcs11: key attributes: %w", err)
		}
		var id, label []byte
		if a := attrs[crypto11.CkaId]; a != nil {
			id = a.Value
		}
		if a := attrs[crypto11.CkaLabel]; a != nil {
			label = a.Value
		}
		if len(id) != 16 {
			continue // not one of ours
		}
		out = append(out, keys.ProviderKey{ID: "p" + hex.EncodeToString(id), Label: string(label)})
	}
	return out, nil
}

// Close implements keys.Provider.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.cache = map[string]cipher.AEAD{}
	p.mu.Unlock()
	return p.ctx.Close()
}
