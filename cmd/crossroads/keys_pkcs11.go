//go:build cgo

package main

import (
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/keys/pkcs11"
)

// openPKCS11 opens an HSM token as the key provider (cgo builds only).
func openPKCS11(module, token, pin string) (keys.Provider, error) {
	return pkcs11.Open(pkcs11.Config{Module: module, TokenLabel: token, PIN: pin})
}
