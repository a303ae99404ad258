package directory

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
)

// snapshotFixture is a store with compact and exact integrations, and a
// directory over it.
func snapshotFixture(t testing.TB) (*Directory, crossroads.RegisterStore, []crossroads.Integration) {
	t.Helper()
	ctx := context.Background()
	store := openStore(t)
	d, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	n := network()
	n.Authorisations[0].Capacities = append(n.Authorisations[0].Capacities, crossroads.Capacity{Sector: "s", Code: "employer", Kind: crossroads.SubjectEnterprise})
	if err := d.Store().Apply(ctx, n); err != nil {
		t.Fatal(err)
	}
	ins := []crossroads.Integration{
		{Person: personid.Make("850730", 1, false), Participant: "ocmw", Sector: "s", Capacity: "c", From: t0},
		{Person: personid.Make("850730", 2, false), Participant: "ocmw", Sector: "s", Capacity: "c", From: t0, To: t0.AddDate(1, 0, 0)},
		{Person: personid.Make("850730", 3, false), Participant: "ocmw", Sector: "s", Capacity: "c", From: t0.Add(90 * time.Minute)}, // exact
		{Kind: crossroads.SubjectEnterprise, Person: "0403170701", Participant: "ocmw", Sector: "s", Capacity: "employer", From: t0},
	}
	for _, in := range ins {
		if err := d.Store().PutIntegration(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	return d, store, ins
}

func sameDirectory(t *testing.T, got, want *Directory, ins []crossroads.Integration) {
	t.Helper()
	for _, in := range ins {
		k := crossroads.SubjectKey(in.Kind, in.Person)
		if g, w := sortIntegrations(got.Integrations(k, in.Participant)), sortIntegrations(want.Integrations(k, in.Participant)); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: got %v, want %v", k, g, w)
		}
	}
}

// TestSnapshotStart: a node started from a snapshot, with changes made
// after it (by this node and behind its back), holds what a node loading
// the store whole holds.
func TestSnapshotStart(t *testing.T) {
	ctx := context.Background()
	d, store, ins := snapshotFixture(t)
	if _, err := d.RefreshIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), SnapshotFile)
	if err := d.WriteSnapshot(ctx, file); err != nil {
		t.Fatal(err)
	}
	// After the snapshot: one integration ended, one removed, one added,
	// written straight to the store (another node).
	ended := ins[0]
	ended.To = t0.AddDate(0, 2, 0)
	if err := store.PutIntegration(ctx, ended); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteIntegration(ctx, ins[2]); err != nil {
		t.Fatal(err)
	}
	added := crossroads.Integration{Person: personid.Make("850730", 4, false), Participant: "ocmw", Sector: "s", Capacity: "c", From: t0}
	if err := store.PutIntegration(ctx, added); err != nil {
		t.Fatal(err)
	}
	ins = append(ins, added)

	fromSnap, used, err := OpenSnapshot(ctx, store, file)
	if err != nil || !used {
		t.Fatalf("OpenSnapshot: used %v, %v", used, err)
	}
	whole, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	sameDirectory(t, fromSnap, whole, ins)
	if got := fromSnap.Integrations(ins[0].Person, "ocmw"); len(got) != 1 || !got[0].To.Equal(ended.To) {
		t.Errorf("the end made after the snapshot: %v", got)
	}
	if got := fromSnap.Integrations(ins[2].Person, "ocmw"); len(got) != 0 {
		t.Errorf("the deletion made after the snapshot: %v", got)
	}
	// It keeps following the feed and writing through.
	if err := fromSnap.Store().DeleteIntegration(ctx, added); err != nil {
		t.Fatal(err)
	}
	if got := fromSnap.Integrations(added.Person, "ocmw"); len(got) != 0 {
		t.Errorf("write-through after a snapshot start: %v", got)
	}
}

// TestSnapshotRefused: a missing, damaged, old or foreign snapshot is not
// used; the directory is loaded from the store instead.
func TestSnapshotRefused(t *testing.T) {
	ctx := context.Background()
	d, store, ins := snapshotFixture(t)
	if _, err := d.RefreshIntegrations(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, SnapshotFile)
	if err := d.WriteSnapshot(ctx, file); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, data []byte, s crossroads.RegisterStore) {
		t.Helper()
		f := filepath.Join(dir, name)
		if data != nil {
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got, used, err := OpenSnapshot(ctx, s, f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if used {
			t.Errorf("%s: the snapshot was used", name)
		}
		if s == store {
			sameDirectory(t, got, d, ins)
		}
	}
	check("missing", nil, store)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 1
	check("flipped", flipped, store)
	check("truncated", good[:len(good)-1], store)
	old := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(old[len(snapshotMagic)+8:], uint64(time.Now().Add(-MaxSnapshotAge-time.Minute).UnixNano()))
	check("old", resum(old), store)
	// Another store, further along its feed, whose change at the
	// snapshot's position is another one.
	otherStore := openStore(t)
	if err := otherStore.Apply(ctx, network()); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if err := otherStore.PutIntegration(ctx, crossroads.Integration{Person: personid.Make("850730", 20+i, false), Participant: "ocmw", Sector: "s", Capacity: "c", From: t0}); err != nil {
			t.Fatal(err)
		}
	}
	check("foreign", good, otherStore)
	// The same file is used when all is well.
	if _, used, err := OpenSnapshot(ctx, store, file); err != nil || !used {
		t.Fatalf("good snapshot: used %v, %v", used, err)
	}
}

// resum rewrites a snapshot's checksum after an edit.
func resum(b []byte) []byte {
	body := b[:len(b)-32]
	sum := sha256.Sum256(body)
	return append(append([]byte(nil), body...), sum[:]...)
}

// FuzzReadSnapshot: no input makes the decoder panic or allocate beyond
// the input's size (inputs are re-checksummed, so that the fuzzer reaches
// the parser behind the checksum).
func FuzzReadSnapshot(f *testing.F) {
	ctx := context.Background()
	d, _, _ := snapshotFixture(f)
	if _, err := d.RefreshIntegrations(ctx); err != nil {
		f.Fatal(err)
	}
	file := filepath.Join(f.TempDir(), SnapshotFile)
	if err := d.WriteSnapshot(ctx, file); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := readSnapshot(good); err != nil {
		f.Fatalf("a written snapshot does not read back: %v", err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = readSnapshot(data)
		if len(data) >= 32 {
			if s, err := readSnapshot(resum(data)); err == nil && (s.names == nil || len(s.names.partOf) == 0 || len(s.names.capOf) == 0) {
				t.Fatal("accepted a snapshot without names")
			}
		}
	})
}
