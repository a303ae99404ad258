package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

var keysPass = []byte("hub keys test passphrase")

func openHub(t *testing.T, dir string) *hub.Hub {
	t.Helper()
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Passphrase: keysPass, Retention: -1,
		Logger: slog.New(slog.DiscardHandler), MaxMergeDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestLegacyKeysMigrated: a data directory of an earlier version, with its
// keys in plaintext files (audit/audit-keys/, audit/audit-note.key,
// hub/hub.key), is migrated on first start: the keys are wrapped into the
// keyring, the files removed, and nothing of them is left in clear; the
// old records stay readable and findable by subject, the log keeps its key.
func TestLegacyKeysMigrated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca, err := hub.Init(dir, keysPass, "Test CA", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The earlier version's files.
	certPEM, keyPEM, _, err := ca.Issue(pki.IssueRequest{Participant: hub.HubID, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "hub"), 0o700)
	os.WriteFile(filepath.Join(dir, "hub", "hub.crt"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "hub", "hub.key"), keyPEM, 0o600)
	auditDir := filepath.Join(dir, "audit")
	os.MkdirAll(auditDir, 0o700)
	st, err := sqlite.OpenAudit(ctx, auditDir)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := audit.Open(ctx, audit.Config{Dir: auditDir, Store: st, MaxMergeDelay: 200 * time.Millisecond}) // plaintext defaults
	if err != nil {
		t.Fatal(err)
	}
	oldVKey := tr.VerifierKey()
	if _, err := tr.Commit(ctx, &crossroads.AuditRecord{ExchangeID: "old-1", Requester: "inst-a", Subject: "85073003328",
		Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed}); err != nil {
		t.Fatal(err)
	}
	tr.Close(ctx)
	st.Close()
	var plain [][]byte
	filepath.WalkDir(filepath.Join(auditDir, "audit-keys"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(p)
			plain = append(plain, b)
		}
		return nil
	})
	note, _ := os.ReadFile(filepath.Join(auditDir, audit.NoteKeyFile))
	plain = append(plain, bytes.TrimSpace(note), keyPEM)
	if len(plain) < 4 {
		t.Fatalf("legacy key files: %d", len(plain))
	}

	for range 2 { // the second start finds nothing left to migrate
		h := openHub(t, dir)
		if h.Trail.VerifierKey() != oldVKey {
			t.Fatal("the log's key changed in the migration")
		}
		if !bytes.Equal(h.Cert.Certificate[0], mustLeaf(t, certPEM)) {
			t.Fatal("the hub's certificate changed in the migration")
		}
		p, err := h.Trail.Search(ctx, audit.Query{Subject: "85073003328"})
		if err != nil || len(p.Records) != 1 {
			t.Fatalf("old record by subject after migration: %v, %v", p, err)
		}
		if err := h.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"audit/audit-keys", "audit/" + audit.NoteKeyFile, "hub/hub.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after the migration", f)
		}
	}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, k := range plain {
			if bytes.Contains(b, k) {
				t.Errorf("%s holds a migrated key in clear", p)
			}
		}
		return nil
	})
	if v, err := audit.ReadVerifierKey(auditDir); err != nil || v != oldVKey {
		t.Fatalf("audit key after migration: %q, %v", v, err)
	}
}

func mustLeaf(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	return blk.Bytes
}

// TestRotateKeys rotates every kind; each rotation is an audited event,
// the trail stays readable, and the new note and TLS keys are used from
// the next start.
func TestRotateKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := hub.Init(dir, keysPass, "Test CA", nil); err != nil {
		t.Fatal(err)
	}
	h := openHub(t, dir)
	if _, err := h.Trail.Commit(ctx, &crossroads.AuditRecord{ExchangeID: "before", Requester: "inst-a", Subject: "85073003328",
		Outcome: crossroads.OutcomeAllowed, Reason: crossroads.ReasonAllowed}); err != nil {
		t.Fatal(err)
	}
	vkey, serial := h.Trail.VerifierKey(), h.Cert.Leaf.SerialNumber.String()
	newPass := []byte("the new passphrase")
	oldIndex, err := h.Keys.IndexKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldIndex = bytes.Clone(oldIndex)
	for _, kind := range []string{"kek", "master", "note", "hub-tls", "index"} {
		if _, err := h.RotateKey(ctx, kind, nil); err != nil {
			t.Fatalf("rotate %s: %v", kind, err)
		}
	}
	if _, err := h.RotateKey(ctx, "root", newPass); err != nil {
		t.Fatalf("rotate root: %v", err)
	}
	if _, err := h.RotateKey(ctx, "nonsense", nil); err == nil {
		t.Fatal("rotate nonsense: no error")
	}
	// Found by subject right after the index rotation, in the same process.
	if p, err := h.Trail.Search(ctx, audit.Query{Subject: "85073003328"}); err != nil || len(p.Records) != 1 {
		t.Fatalf("record by subject after index rotation: %v, %v", p, err)
	}
	p, err := h.Trail.Search(ctx, audit.Query{Participant: hub.HubID})
	if err != nil {
		t.Fatal(err)
	}
	rotated := map[string]bool{}
	for _, r := range p.Records {
		var d struct{ Kind string }
		json.Unmarshal(r.Detail, &d)
		if r.Kind == crossroads.RecordKey && r.Action == "rotate" {
			rotated[d.Kind] = true
		}
		if bytes.Contains(r.Detail, []byte("PRIVATE")) {
			t.Fatal("a rotation record holds a private key")
		}
	}
	if len(rotated) != 6 {
		t.Fatalf("rotations recorded: %v", rotated)
	}
	h.Close(ctx)

	if _, err := hub.Open(ctx, hub.Config{DataDir: dir, Passphrase: keysPass, Retention: -1, Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("opened with the passphrase replaced by rotate root")
	}
	h, err = hub.Open(ctx, hub.Config{DataDir: dir, Passphrase: newPass, Retention: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if h.Trail.VerifierKey() == vkey || !strings.HasPrefix(h.Trail.VerifierKey(), h.Trail.Origin()+"+") {
		t.Fatal("note key not rotated (or its origin changed)")
	}
	if h.Cert.Leaf.SerialNumber.String() == serial {
		t.Fatal("hub certificate not rotated")
	}
	if p, err := h.Trail.Search(ctx, audit.Query{Subject: "85073003328"}); err != nil || len(p.Records) != 1 {
		t.Fatalf("record after every rotation: %v, %v", p, err)
	}
	if idx, _ := h.Keys.IndexKey(ctx); bytes.Equal(idx, oldIndex) {
		t.Fatal("index key not rotated")
	}
	list, err := h.Keys.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, i := range list {
		kinds[i.Kind]++
	}
	if kinds["master"] != 1 || kinds[keys.KindNote] != 1 || kinds[keys.KindHubTLS] != 1 || kinds[keys.KindIndex] != 1 || kinds["kek"] < 1 {
		t.Fatalf("hierarchy after rotations: %v", kinds)
	}
}
