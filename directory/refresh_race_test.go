package directory

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// pausingStore pauses the first Registers read once armed, after reading.
type pausingStore struct {
	crossroads.RegisterStore
	mu               sync.Mutex
	armed            bool
	reached, release chan struct{}
}

func (s *pausingStore) Registers(ctx context.Context) (*crossroads.Network, error) {
	n, err := s.RegisterStore.Registers(ctx)
	s.mu.Lock()
	pause := s.armed
	s.armed = false
	s.mu.Unlock()
	if pause {
		close(s.reached)
		<-s.release
	}
	return n, err
}

// TestRefreshNeverUndoesAWrite: a refresh that read the store before a
// write through the directory must not install that older snapshot after
// the write (the write would be lost in memory until the next refresh: a
// suspended participant or an expired permit still in force).
func TestRefreshNeverUndoesAWrite(t *testing.T) {
	ctx := context.Background()
	store := &pausingStore{RegisterStore: openStore(t), reached: make(chan struct{}), release: make(chan struct{})}
	d, err := Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Store().Apply(ctx, network()); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.armed = true
	store.mu.Unlock()
	refreshed := make(chan error, 1)
	go func() { _, err := d.Refresh(ctx); refreshed <- err }()
	<-store.reached // the refresh holds the old snapshot

	n := network()
	n.Participants[0].Status = crossroads.StatusSuspended
	applied := make(chan error, 1)
	go func() { applied <- d.Store().Apply(ctx, &crossroads.Network{Participants: n.Participants[:1]}) }()
	// Let the write go as far as it can while the refresh is paused (with
	// the fix it waits for the refresh; without, it completes).
	select {
	case err := <-applied:
		applied <- err
	case <-time.After(200 * time.Millisecond):
	}
	close(store.release)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if p, _ := d.Participant("ocmw"); p.Status != crossroads.StatusSuspended {
		t.Fatalf("the suspension written through the directory was undone by a refresh: %s", p.Status)
	}
}
