//go:build cgo

package hub_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/keys/pkcs11"
	"github.com/crossroads-hub/crossroads/keys/pkcs11/softhsmtest"
)

// TestHubOnHSM: the hub with its root keys in a PKCS#11 token (SoftHSM2):
// no local key provider directory, the trail readable across a restart.
func TestHubOnHSM(t *testing.T) {
	tok, _ := softhsmtest.Token(t)
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := hub.Init(dir, keysPass, "Test CA", nil); err != nil {
		t.Fatal(err)
	}
	openHSM := func() *hub.Hub {
		p, err := pkcs11.Open(tok)
		if err != nil {
			t.Fatal(err)
		}
		h, err := hub.Open(ctx, hub.Config{DataDir: dir, Passphrase: keysPass, KeyProvider: p, Retention: -1,
			Logger: slog.New(slog.DiscardHandler), MaxMergeDelay: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := openHSM()
	if _, err := h.Trail.Commit(ctx, &crossroads.AuditRecord{ExchangeID: "on-hsm", Requester: "inst-a", Subject: "85073003328",
		Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed}); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, hub.KeysDir)); !os.IsNotExist(err) {
		t.Fatal("a local key provider was created beside the HSM")
	}
	h = openHSM()
	defer h.Close(ctx)
	if p, err := h.Trail.Search(ctx, audit.Query{Subject: "85073003328"}); err != nil || len(p.Records) != 1 {
		t.Fatalf("record after a restart on the HSM: %v, %v", p, err)
	}
	list, err := h.Keys.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range list {
		if i.Provider != "pkcs11" {
			t.Fatalf("key %+v not in the HSM", i)
		}
	}
}
