package push_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/push"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// routingNetwork: subscribers institutions, each subscribed (push) to the
// mutation and holding a file on each of persons persons: subscribers ×
// persons files in the person directory.
func routingNetwork(b *testing.B, subscribers, persons int) (*push.Push, *crossroads.Service, []string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	regs, err := sqlite.OpenRegisters(ctx, filepath.Join(dir, "registers.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { regs.Close() })
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	capy := crossroads.Capacity{Sector: "17", Code: "beneficiary"}
	n := &crossroads.Network{
		Participants: []crossroads.Participant{{ID: "pop", Name: "Pop", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive}},
		Services: []crossroads.Service{{ID: "population", Provider: "pop", BaseURL: "https://pop.example", Classification: 1, Fields: []string{"/address"},
			Subject: crossroads.SubjectPerson, Operations: []crossroads.Operation{{ID: "moved", Kind: crossroads.OperationMutation}}}},
	}
	ids := make([]string, persons)
	for i := range ids {
		ids[i] = personid.Make(fmt.Sprintf("%02d%02d%02d", 50+i%50, 1+i%12, 1+(i/12)%28), 1+(i/336)%997, false)
	}
	var ins []crossroads.Integration
	for s := range subscribers {
		id := fmt.Sprintf("inst-%04d", s)
		n.Participants = append(n.Participants, crossroads.Participant{ID: id, Name: id, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
		n.Authorisations = append(n.Authorisations, crossroads.Authorisation{ID: "a-" + id, Reference: "r", Grantee: id, Services: []string{"population"},
			Purposes: []string{"aid"}, Fields: map[string][]string{"population": {"/address"}}, Operations: map[string][]string{"population": {"moved"}},
			Capacities: []crossroads.Capacity{capy}, ValidFrom: from, Status: crossroads.StatusActive})
		n.Subscriptions = append(n.Subscriptions, crossroads.Subscription{ID: "s-" + id, Subscriber: id, Service: "population", Operation: "moved",
			Purpose: "aid", Capacities: []crossroads.Capacity{capy}, Delivery: crossroads.DeliveryPull, Status: crossroads.StatusActive})
		for _, p := range ids {
			ins = append(ins, crossroads.Integration{Person: p, Participant: id, Sector: capy.Sector, Capacity: capy.Code, From: from})
		}
	}
	if err := regs.Apply(ctx, n); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < len(ins); i += 20000 {
		if err := regs.Apply(ctx, &crossroads.Network{Integrations: ins[i:min(i+20000, len(ins))]}); err != nil {
			b.Fatal(err)
		}
	}
	d, err := directory.Open(ctx, regs)
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.OpenPush(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	p := push.New(push.Config{Directory: d, Store: st})
	svc, _ := d.Service("population")
	return p, svc, ids
}

// BenchmarkRoute: the eligibility of one mutation against every
// subscription, with 100,000 subscribers' files on the person set.
func BenchmarkRoute(b *testing.B) {
	for _, c := range []struct{ subscribers, persons int }{{100, 1000}, {10, 10000}} {
		b.Run(fmt.Sprintf("subscribers=%d/persons=%d", c.subscribers, c.persons), func(b *testing.B) {
			p, svc, ids := routingNetwork(b, c.subscribers, c.persons)
			op, _ := svc.Operation("moved")
			now := time.Now()
			eff := now.Truncate(24 * time.Hour)
			b.ReportAllocs()
			b.ResetTimer()
			routed := 0
			for i := range b.N {
				subs, _ := p.Route(svc, op, crossroads.SubjectPerson, ids[i%len(ids)], eff, now)
				routed += len(subs)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mutations/s")
			b.ReportMetric(float64(routed)/float64(b.N), "subscribers/mutation")
		})
	}
}

// BenchmarkRouteAndStore: routing and the outbox transaction (SQLite,
// synchronous=FULL) per mutation, without the HTTP and audit round trips.
func BenchmarkRouteAndStore(b *testing.B) {
	p, svc, ids := routingNetwork(b, 100, 1000)
	op, _ := svc.Operation("moved")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	rows := 0
	for i := range b.N {
		now := time.Now()
		subs, _ := p.Route(svc, op, crossroads.SubjectPerson, ids[i%len(ids)], now, now)
		entries := make([]push.Entry, len(subs))
		for j, s := range subs {
			entries[j] = push.Entry{Subscription: s.ID, Subscriber: s.Subscriber, Queue: s.Subscriber + " " + ids[i%len(ids)], Delivery: s.Delivery,
				State: push.StatePending, NextAt: now, Since: now}
		}
		pub := push.Publication{ID: fmt.Sprintf("p%d", i), Publisher: "pop", Service: "population", Operation: "moved", Key: fmt.Sprintf("k%d", i),
			Digest: "d", SubjectKind: "person", Subject: ids[i%len(ids)], Effective: now, Payload: []byte(`{"address":{}}`), Routed: len(subs), Time: now}
		if err := p.Store().Publish(ctx, pub, entries); err != nil {
			b.Fatal(err)
		}
		rows += len(entries)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mutations/s")
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "outbox-rows/s")
}
