package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/postgres/pgtest"
)

// benchRow is an audit row of realistic size (a ~600-byte ciphertext).
func benchRow(i int, now time.Time) *audit.Row {
	r := &audit.Row{
		ExchangeID: fmt.Sprintf("bench-%09d", i), Time: now, Requester: "inst-a", Provider: "rr", Service: "rr.person",
		Purpose: "benefit.check", Outcome: crossroads.OutcomeAllowed, Reason: string(crossroads.ReasonAllowed),
		SubjectIndex: make([]byte, 32), Period: now.Format("2006-01-02"),
		Nonce: make([]byte, 32), Ciphertext: make([]byte, 600), Leaf: make([]byte, audit.LeafSize),
	}
	rand.Read(r.SubjectIndex)
	rand.Read(r.Nonce)
	rand.Read(r.Ciphertext)
	return r
}

// BenchmarkAuditInsertBatch256: one group commit of 256 records.
func BenchmarkAuditInsertBatch256(b *testing.B) {
	db := pgtest.New(b)
	ctx := context.Background()
	s, err := postgres.OpenAudit(ctx, db.Schema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const size = 256
	now := time.Now().UTC()
	next := 0
	rows := make([]*audit.Row, size)
	for b.Loop() {
		b.StopTimer()
		for i := range rows {
			rows[i] = benchRow(next, now)
			next++
		}
		b.StartTimer()
		if err := s.InsertBatch(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkAuditGet: the row of one exchange among 50,000.
func BenchmarkAuditGet(b *testing.B) {
	db := pgtest.New(b)
	ctx := context.Background()
	s, err := postgres.OpenAudit(ctx, db.Schema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 50_000
	now := time.Now().UTC()
	for start := 0; start < n; start += 1000 {
		rows := make([]*audit.Row, 1000)
		for i := range rows {
			rows[i] = benchRow(start+i, now)
		}
		if err := s.InsertBatch(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, fmt.Sprintf("bench-%09d", (i*7919)%n)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

var benchParticipants = []string{"cpas-brussel", "hziv", "rva", "fons-a", "fons-b", "mutual-1", "mutual-2", "mutual-3"}

func benchPerson(i int) string { return fmt.Sprintf("%011d", 50_000_000_000+i*97) }

// BenchmarkIntegrationsLookup: the directory lookup of one person at one
// participant among 100,000 integrations (as the SQLite benchmark).
func BenchmarkIntegrationsLookup(b *testing.B) {
	db := pgtest.New(b)
	ctx := context.Background()
	s, err := postgres.OpenRegisters(ctx, db.Schema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 100_000
	reg := &crossroads.Network{}
	for _, p := range benchParticipants {
		reg.Participants = append(reg.Participants, crossroads.Participant{ID: p, Name: p, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
	}
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		reg.Integrations = append(reg.Integrations, crossroads.Integration{Person: benchPerson(i / 2),
			Participant: benchParticipants[(i/2+i%2)%len(benchParticipants)], Sector: "17", Capacity: "beneficiary", From: from})
	}
	start := time.Now()
	if err := s.Apply(ctx, reg); err != nil {
		b.Fatal(err)
	}
	b.Logf("Apply of %d integrations: %v", n, time.Since(start).Round(time.Millisecond))
	i := 0
	for b.Loop() {
		k := (i * 7919) % n
		got, err := s.Integrations(ctx, benchParticipants[(k/2+k%2)%len(benchParticipants)], benchPerson(k/2))
		if err != nil || len(got) == 0 {
			b.Fatalf("lookup %d: %v, %d rows", k, err, len(got))
		}
		i++
	}
}

// BenchmarkChangeIntegration: one accountable change to the person
// directory (version held FOR SHARE, insert, change feed, history row).
func BenchmarkChangeIntegration(b *testing.B) {
	db := pgtest.New(b)
	ctx := context.Background()
	s, err := postgres.OpenRegisters(ctx, db.Schema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	reg := &crossroads.Network{}
	for _, p := range benchParticipants {
		reg.Participants = append(reg.Participants, crossroads.Participant{ID: p, Name: p, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
	}
	if err := s.Apply(ctx, reg); err != nil {
		b.Fatal(err)
	}
	n, err := s.Registers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := crossroads.IntegrationEvent{Action: crossroads.IntegrationRegister, Actor: "rva", User: "agent",
			Integration: crossroads.Integration{Person: benchPerson(i), Participant: "rva", Sector: "2", Capacity: "unemployed", From: from}}
		if _, err := s.ChangeIntegration(ctx, ev, n.Version); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
