package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/push/outbox"
)

// TestPushStore runs the conformance suite of mutation push's outbox
// (push.Store); open returns an empty store.
func TestPushStore(t *testing.T, open func(t *testing.T) outbox.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	pub := func(id, key, subject string) outbox.Publication {
		return outbox.Publication{ID: id, Publisher: "pop", Service: "population", Operation: "address-changed", Key: key,
			Digest: "sha-256=:" + id + ":", SubjectKind: "person", Subject: subject, Effective: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			Payload: json.RawMessage(`{"street":"x"}`), Routed: 1, Time: t0}
	}
	entry := func(sub, subscriber, subject, delivery string) outbox.Entry {
		return outbox.Entry{Subscription: sub, Subscriber: subscriber, Queue: subscriber + " " + subject, Delivery: delivery,
			State: outbox.StatePending, NextAt: t0, Since: t0}
	}
	mustClaim := func(t *testing.T, s outbox.Store, owner string, now time.Time, want int) []outbox.Entry {
		t.Helper()
		es, err := s.Claim(ctx, owner, now, time.Minute, 10)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		if len(es) != want {
			t.Fatalf("Claim: %d entries, want %d: %+v", len(es), want, es)
		}
		return es
	}

	t.Run("publish", func(t *testing.T) {
		s := open(t)
		p := pub("p1", "k1", "85073003328")
		if err := s.Publish(ctx, p, []outbox.Entry{entry("s1", "ocmw", "85073003328", "push")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Publication(ctx, "population", "pop", "k1")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "p1" || !got.Time.Equal(t0) || !got.Effective.Equal(p.Effective) || string(got.Payload) != string(p.Payload) || got.Digest != p.Digest || got.Routed != 1 {
			t.Fatalf("round trip: %+v", got)
		}
		if err := s.Publish(ctx, pub("p2", "k1", "85073003328"), nil); !errors.Is(err, crossroads.ErrConflict) {
			t.Fatalf("same key again: %v, want ErrConflict", err)
		}
		if _, err := s.Publication(ctx, "population", "pop", "nope"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
		if _, err := s.Publication(ctx, "population", "other", "k1"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Fatalf("another publisher's key: %v", err)
		}
	})

	t.Run("queue order and leases", func(t *testing.T) {
		s := open(t)
		for i, subj := range []string{"A", "A", "B"} {
			if err := s.Publish(ctx, pub("p"+string(rune('0'+i)), "k"+string(rune('0'+i)), subj), []outbox.Entry{entry("s1", "ocmw", subj, "push")}); err != nil {
				t.Fatal(err)
			}
		}
		es := mustClaim(t, s, "n1", t0, 2) // the heads of A and B
		if es[0].Publication.Subject == es[1].Publication.Subject {
			t.Fatalf("two entries of one queue claimed: %+v", es)
		}
		mustClaim(t, s, "n2", t0, 0) // leased
		var headA outbox.Entry
		for _, e := range es {
			if e.Publication.Subject == "A" {
				headA = e
			}
		}
		if err := s.Finish(ctx, headA.Seq, "n2", outbox.StateDelivered, t0, ""); !errors.Is(err, crossroads.ErrConflict) {
			t.Fatalf("finish by another owner: %v", err)
		}
		if err := s.Finish(ctx, headA.Seq, "n1", outbox.StateDelivered, t0, ""); err != nil {
			t.Fatal(err)
		}
		next := mustClaim(t, s, "n2", t0, 1)
		if next[0].Publication.Subject != "A" || next[0].Seq <= headA.Seq {
			t.Fatalf("next of queue A: %+v", next[0])
		}
		// retry later: not due before, due after
		if err := s.Retry(ctx, next[0].Seq, "n2", 1, t0.Add(time.Hour), "down"); err != nil {
			t.Fatal(err)
		}
		mustClaim(t, s, "n1", t0.Add(time.Minute+time.Second), 1) // B's lease (n1) ran out; A's retry not due
		got := mustClaim(t, s, "n3", t0.Add(2*time.Hour), 2)
		for _, e := range got {
			if e.Publication.Subject == "A" && (e.Attempts != 1 || e.LastError != "down") {
				t.Fatalf("retried entry: %+v", e)
			}
		}
	})

	t.Run("seal, feed, ack", func(t *testing.T) {
		s := open(t)
		for i := range 3 {
			if err := s.Publish(ctx, pub("p"+string(rune('0'+i)), "k"+string(rune('0'+i)), "S"+string(rune('0'+i))),
				[]outbox.Entry{entry("feed", "onem", "S"+string(rune('0'+i)), "pull")}); err != nil {
				t.Fatal(err)
			}
		}
		es := mustClaim(t, s, "n1", t0, 3)
		// seal the first and the third: the feed stops before the second
		for _, i := range []int{0, 2} {
			if err := s.Seal(ctx, es[i].Seq, "n1", outbox.Sealed{Body: []byte(`{}`), Seal: "seal", Receipt: "r", ExchangeID: "x"}, outbox.StateAvailable); err != nil {
				t.Fatal(err)
			}
		}
		f, err := s.Feed(ctx, "feed", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != 1 || f[0].Seq != es[0].Seq || f[0].Sealed.Seal != "seal" || string(f[0].Sealed.Body) != `{}` {
			t.Fatalf("feed: %+v", f)
		}
		if err := s.Seal(ctx, es[1].Seq, "n1", outbox.Sealed{Body: []byte(`{}`), Seal: "seal"}, outbox.StateAvailable); err != nil {
			t.Fatal(err)
		}
		if f, _ = s.Feed(ctx, "feed", 0, 10); len(f) != 3 {
			t.Fatalf("feed after sealing all: %d", len(f))
		}
		if err := s.Ack(ctx, "feed", es[1].Seq, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(ctx, "feed", es[0].Seq, t0); err != nil { // never back
			t.Fatal(err)
		}
		if c, err := s.Cursor(ctx, "feed"); err != nil || c != es[1].Seq {
			t.Fatalf("cursor %d, %v; want %d", c, err, es[1].Seq)
		}
		if c, err := s.Cursor(ctx, "other"); err != nil || c != 0 {
			t.Fatalf("cursor of another: %d, %v", c, err)
		}
		counts, err := s.Counts(ctx)
		if err != nil || counts[outbox.StateDelivered] != 2 || counts[outbox.StateAvailable] != 1 {
			t.Fatalf("counts %v, %v", counts, err)
		}
	})

	t.Run("concurrent claims never share a queue", func(t *testing.T) {
		s := open(t)
		const queues, per = 4, 6
		for i := range queues * per {
			subj := "Q" + string(rune('a'+i%queues))
			if err := s.Publish(ctx, pub(fmt.Sprintf("p%d", i), fmt.Sprintf("k%d", i), subj), []outbox.Entry{entry("s1", "ocmw", subj, "push")}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		holder := map[string]string{}
		last := map[string]int64{}
		done := 0
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := range 4 {
			owner := fmt.Sprintf("node-%d", w)
			wg.Go(func() {
				for range 2000 {
					mu.Lock()
					finished := done == queues*per
					mu.Unlock()
					if finished {
						return
					}
					es, err := s.Claim(ctx, owner, t0, time.Minute, 2)
					if err != nil {
						errs <- err
						return
					}
					for _, e := range es {
						mu.Lock()
						if h, busy := holder[e.Queue]; busy {
							mu.Unlock()
							errs <- fmt.Errorf("queue %s claimed by %s while %s holds it", e.Queue, owner, h)
							return
						}
						if e.Seq <= last[e.Queue] {
							mu.Unlock()
							errs <- fmt.Errorf("queue %s: entry %d after %d", e.Queue, e.Seq, last[e.Queue])
							return
						}
						holder[e.Queue], last[e.Queue] = owner, e.Seq
						mu.Unlock()
						time.Sleep(time.Millisecond)
						mu.Lock()
						delete(holder, e.Queue)
						done++
						mu.Unlock()
						if err := s.Finish(ctx, e.Seq, owner, outbox.StateDelivered, t0, ""); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if done != queues*per {
			t.Fatalf("%d of %d delivered", done, queues*per)
		}
	})

	t.Run("dead letters and redelivery", func(t *testing.T) {
		s := open(t)
		for i := range 2 {
			if err := s.Publish(ctx, pub("p"+string(rune('0'+i)), "k"+string(rune('0'+i)), "S"+string(rune('0'+i))),
				[]outbox.Entry{entry("s1", "ocmw", "S"+string(rune('0'+i)), "push")}); err != nil {
				t.Fatal(err)
			}
		}
		es := mustClaim(t, s, "n1", t0, 2)
		if err := s.Finish(ctx, es[0].Seq, "n1", outbox.StateDead, t0, "gone"); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, es[1].Seq, "n1", outbox.StateDelivered, t0, ""); err != nil {
			t.Fatal(err)
		}
		dead, err := s.Entries(ctx, outbox.EntryQuery{Subscription: "s1", State: outbox.StateDead})
		if err != nil || len(dead) != 1 || dead[0].Seq != es[0].Seq || dead[0].LastError != "gone" {
			t.Fatalf("dead entries %+v, %v", dead, err)
		}
		later := t0.Add(time.Hour)
		if n, err := s.Redeliver(ctx, "s1", nil, later); err != nil || n != 1 {
			t.Fatalf("redeliver dead: %d, %v", n, err)
		}
		if n, err := s.Redeliver(ctx, "s1", []int64{es[1].Seq}, later); err != nil || n != 1 {
			t.Fatalf("redeliver a delivered one: %d, %v", n, err)
		}
		if n, err := s.Redeliver(ctx, "other", nil, later); err != nil || n != 0 {
			t.Fatalf("redeliver another subscription: %d, %v", n, err)
		}
		got := mustClaim(t, s, "n2", later, 2)
		for _, e := range got {
			if e.Attempts != 0 || !e.Since.Equal(later) {
				t.Fatalf("redelivered entry: %+v", e)
			}
		}
		all, err := s.Entries(ctx, outbox.EntryQuery{})
		if err != nil || len(all) != 2 {
			t.Fatalf("entries: %d, %v", len(all), err)
		}
	})
}

// TestSubscriptions checks that a register store keeps the subscription
// table: Apply writes it (bumping the version), Registers reads it back.
func TestSubscriptions(t *testing.T, store crossroads.RegisterStore) {
	ctx := context.Background()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := &crossroads.Network{
		Participants: []crossroads.Participant{{ID: "pop", Name: "Pop", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive},
			{ID: "ocmw", Name: "OCMW", Kind: crossroads.KindInstitution, Status: crossroads.StatusActive}},
		Services: []crossroads.Service{{ID: "population", Provider: "pop", BaseURL: "https://pop.example", Classification: 1, Fields: []string{"/a"},
			Subject: crossroads.SubjectPerson, Operations: []crossroads.Operation{{ID: "address-changed", Kind: crossroads.OperationMutation}}}},
		Authorisations: []crossroads.Authorisation{{ID: "a1", Reference: "r", Grantee: "ocmw", Services: []string{"population"}, Purposes: []string{"aid"},
			Fields: map[string][]string{"population": {"/a"}}, ValidFrom: from, Status: crossroads.StatusActive}},
	}
	if err := store.Apply(ctx, n); err != nil {
		t.Fatal(err)
	}
	before, err := store.Registers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub := crossroads.Subscription{ID: "s1", Subscriber: "ocmw", Service: "population", Operation: "address-changed", Purpose: "aid",
		Capacities: []crossroads.Capacity{{Sector: "17", Code: "beneficiary"}}, Delivery: crossroads.DeliveryPush, Endpoint: "https://ocmw.example/events",
		Status: crossroads.StatusActive}
	if err := store.Apply(ctx, &crossroads.Network{Subscriptions: []crossroads.Subscription{sub}, Version: before.Version}); err != nil {
		t.Fatal(err)
	}
	after, err := store.Registers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version+1 {
		t.Fatalf("version %d → %d: a subscription write must bump it", before.Version, after.Version)
	}
	if len(after.Subscriptions) != 1 {
		t.Fatalf("subscriptions: %+v", after.Subscriptions)
	}
	got := after.Subscriptions[0]
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(sub)
	if string(a) != string(b) {
		t.Fatalf("round trip:\n got %s\nwant %s", a, b)
	}
	if svc := after.Services[0]; svc.Operations[0].Kind != crossroads.OperationMutation {
		t.Fatalf("operation kind lost: %+v", svc.Operations)
	}
	sub.Status = crossroads.StatusSuspended
	if err := store.Apply(ctx, &crossroads.Network{Subscriptions: []crossroads.Subscription{sub}, Version: before.Version}); !errors.Is(err, crossroads.ErrStale) {
		t.Fatalf("stale version: %v", err)
	}
	bad := sub
	bad.ID, bad.Subscriber = "s2", "nobody"
	if err := store.Apply(ctx, &crossroads.Network{Subscriptions: []crossroads.Subscription{bad}}); !errors.Is(err, crossroads.ErrInvalid) {
		t.Fatalf("unknown subscriber: %v, want ErrInvalid", err)
	}
}
