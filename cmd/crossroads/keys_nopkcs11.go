//go:build !cgo

package main

import (
	"errors"

	"github.com/crossroads-hub/crossroads/keys"
)

// openPKCS11 fails: a static (CGO_ENABLED=0) build cannot load a PKCS#11
// module.
func openPKCS11(_, _, _ string) (keys.Provider, error) {
	return nil, errors.New("this build has no PKCS#11 support (built without cgo)")
}
