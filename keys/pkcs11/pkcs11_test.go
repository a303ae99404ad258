//go:build cgo

package pkcs11_test

import (
	"testing"

	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/keys/keystest"
	"github.com/crossroads-hub/crossroads/keys/pkcs11"
	"github.com/crossroads-hub/crossroads/keys/pkcs11/softhsmtest"
)

func softHSM(t *testing.T) (pkcs11.Config, string) { return softhsmtest.Token(t) }

func open(t *testing.T, cfg pkcs11.Config) *pkcs11.Provider {
	t.Helper()
	p, err := pkcs11.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProvider(t *testing.T) {
	cfg, _ := softHSM(t)
	p := open(t, cfg)
	defer p.Close()
	keystest.Provider(t, p)
}

func TestWrongPIN(t *testing.T) {
	cfg, _ := softHSM(t)
	cfg.PIN = "0000"
	if p, err := pkcs11.Open(cfg); err == nil {
		p.Close()
		t.Fatal("logged in with a wrong PIN")
	}
	cfg.TokenLabel = "no-such-token"
	if _, err := pkcs11.Open(cfg); err == nil {
		t.Fatal("opened a missing token")
	}
}

// TestEraseSurvivesBackupHSM: the KEKs live only in the token; the erasure
// destroys them there, and a backup of the data directory no longer opens
// the erased records.
func TestEraseSurvivesBackupHSM(t *testing.T) {
	cfg, tokens := softHSM(t)
	p := open(t, cfg)
	keystest.EraseSurvivesBackup(t, keystest.Drill{
		Provider: p,
		Reopen: func() keys.Provider {
			q := open(t, cfg)
			t.Cleanup(func() { q.Close() })
			return q
		},
		Disk: []string{tokens},
	})
}
