package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

var participants = []string{"cpas-brussel", "hziv", "rva", "fons-a", "fons-b", "mutual-1", "mutual-2", "mutual-3"}

// fill writes n integrations: n/2 people, each known to two participants.
func fill(tb testing.TB, s *sqlite.Registers, n int) {
	tb.Helper()
	ctx := context.Background()
	reg := &crossroads.Network{}
	for _, p := range participants {
		reg.Participants = append(reg.Participants, crossroads.Participant{ID: p, Name: p, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
	}
	if err := s.Apply(ctx, reg); err != nil {
		tb.Fatal(err)
	}
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 50_000
	for start := 0; start < n; start += batch {
		b := &crossroads.Network{}
		for i := start; i < min(start+batch, n); i++ {
			b.Integrations = append(b.Integrations, crossroads.Integration{
				Person: person(i / 2), Participant: participants[(i/2+i%2)%len(participants)],
				Sector: "17", Capacity: "beneficiary", From: from})
		}
		if err := s.Apply(ctx, b); err != nil {
			tb.Fatal(err)
		}
	}
}

func person(i int) string {
	return personid.Make(fmt.Sprintf("%02d%02d%02d", 50+i%50, 1+i/50%12, 1+i/600%28), i/16800, false)
}

func openBench(tb testing.TB) *sqlite.Registers {
	s, err := sqlite.OpenRegisters(context.Background(), filepath.Join(tb.TempDir(), "registers.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkIntegrationsLookup: the directory lookup of one person at one
// participant among 100,000 integrations.
func BenchmarkIntegrationsLookup(b *testing.B) {
	s := openBench(b)
	const n = 100_000
	fill(b, s, n)
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := (i * 7919) % n
		got, err := s.Integrations(ctx, participants[(k/2+k%2)%len(participants)], person(k/2))
		if err != nil || len(got) == 0 {
			b.Fatalf("lookup %d: %v, %d rows", k, err, len(got))
		}
		i++
	}
}

// BenchmarkEachIntegration100k streams 100,000 integrations per op.
func BenchmarkEachIntegration100k(b *testing.B) {
	s := openBench(b)
	const n = 100_000
	fill(b, s, n)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		count := 0
		if err := s.EachIntegration(ctx, func(crossroads.Integration) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("streamed %d, want %d", count, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
}

// TestEachIntegrationMillion streams 1,000,000 integrations and checks that
// the heap does not grow with the row count (a slice of them all would take
// well over 100 MiB). Set CROSSROADS_LONG_TESTS=1 to run it (about a minute, mostly inserting).
func TestEachIntegrationMillion(t *testing.T) {
	if os.Getenv("CROSSROADS_LONG_TESTS") == "" {
		t.Skip("set CROSSROADS_LONG_TESTS=1 to stream 1,000,000 rows")
	}
	s := openBench(t)
	const n = 1_000_000
	fill(t, s, n)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	count := 0
	err := s.EachIntegration(context.Background(), func(crossroads.Integration) error {
		if count++; count%100_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("streamed %d, want %d", count, n)
	}
	t.Logf("heap: %d MiB before, %d MiB peak while streaming", base>>20, peak>>20)
	if grow := int64(peak) - int64(base); grow > 64<<20 {
		t.Errorf("heap grew by %d MiB while streaming", grow>>20)
	}
}

// BenchmarkChangeIntegration: one accountable change to the person
// directory (insert, history row, version check) among 100,000
// integrations.
func BenchmarkChangeIntegration(b *testing.B) {
	s := openBench(b)
	fill(b, s, 100_000)
	ctx := context.Background()
	v, err := s.Registers(ctx)
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := crossroads.IntegrationEvent{Action: crossroads.IntegrationRegister, Actor: "rva", User: "agent",
			Integration: crossroads.Integration{Person: person(i), Participant: "rva", Sector: "2", Capacity: "unemployed", From: from}}
		if _, err := s.ChangeIntegration(ctx, ev, v.Version); err != nil {
			b.Fatal(err)
		}
	}
}
