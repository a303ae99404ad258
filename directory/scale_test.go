package directory

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/policy"
)

// nationalNetwork is the network of BenchmarkDecide: 1,000 institutions,
// 100 services, 10,000 authorisations (10 per grantee and service).
func nationalNetwork() *crossroads.Network {
	const nAuth = 10_000
	n := &crossroads.Network{}
	n.Participants = append(n.Participants, crossroads.Participant{ID: "rr", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive})
	for i := 0; i < 100; i++ {
		n.Services = append(n.Services, crossroads.Service{ID: fmt.Sprintf("svc-%d", i), Provider: "rr", ConcernsPerson: true})
	}
	for i := 0; i < nAuth; i++ {
		g := fmt.Sprintf("inst-%d", i%1000)
		if i < 1000 {
			n.Participants = append(n.Participants, crossroads.Participant{ID: g, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
		}
		n.Authorisations = append(n.Authorisations, crossroads.Authorisation{
			ID: fmt.Sprintf("a-%d", i), Grantee: g, Services: []string{fmt.Sprintf("svc-%d", i%100), fmt.Sprintf("svc-%d", (i+1)%100)},
			Purposes: []string{"p1", "p2"}, Capacities: []crossroads.Capacity{{Sector: "s", Code: "c"}},
			Fields: map[string][]string{}, ValidFrom: t0, Status: crossroads.StatusActive,
		})
	}
	return n
}

// scaleIntegration is the i-th of n synthetic integrations: two per
// person (11-digit ids spread over the number space), on distinct
// institutions, periods in whole days, one in eight ended.
func scaleIntegration(i, n int) crossroads.Integration {
	persons := max(1, n/2)
	p := i % persons
	in := crossroads.Integration{
		Person:      personOf(p),
		Participant: "inst-" + strconv.Itoa((p*7+i/persons)%1000),
		Sector:      "s", Capacity: "c",
		From: t0.AddDate(0, 0, -(i % 3000)),
	}
	if i%8 == 7 {
		in.To = t0.AddDate(1, 0, 0)
	}
	return in
}

func personOf(p int) string { return fmt.Sprintf("%011d", uint64(p)*2_654_435_761%99_999_999_999) }

// integrationCount is 10 M unless CROSSROADS_DIRECTORY_INTEGRATIONS says
// otherwise (100000000 for the national figure; ≈ 3 GiB).
func integrationCount(b *testing.B) int {
	if s := os.Getenv("CROSSROADS_DIRECTORY_INTEGRATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 10_000_000
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkDecideNational measures the preventive check against 10,000
// authorisations and 10 M integrations (CROSSROADS_DIRECTORY_INTEGRATIONS
// for another count) of INSZ subjects, and reports the directory's memory
// per integration (heap after loading, minus heap before).
func BenchmarkDecideNational(b *testing.B) {
	nInt := integrationCount(b)
	d := newDirectory(nil)
	d.regs.Store(index(nationalNetwork()))
	before := heapInUse()
	start := time.Now()
	for i := 0; i < nInt; i++ {
		d.put(scaleIntegration(i, nInt))
	}
	d.fit()
	load := time.Since(start)
	perInt := float64(heapInUse()-before) / float64(nInt)
	now := t0.Add(time.Hour)
	// Requests spread over the whole table, far more than the CPU caches
	// hold (262,144 subjects), so that each decision pays its cache misses
	// as on a node serving a whole population.
	reqs := make([]policy.Request, 1<<18)
	for i := range reqs {
		in := scaleIntegration((i*7919+13)%nInt, nInt)
		g, _ := strconv.Atoi(in.Participant[len("inst-"):])
		reqs[i] = policy.Request{Requester: in.Participant, Service: fmt.Sprintf("svc-%d", g%100), Purpose: "p2", Subject: in.Person}
	}
	allowed := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		if policy.Decide(d, reqs[i%len(reqs)], now).Allowed {
			allowed++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	if allowed == 0 {
		b.Fatal("no request was allowed: the benchmark measures only denials")
	}
	b.ReportMetric(perInt, "B/integration")
	b.ReportMetric(float64(load.Nanoseconds())/float64(nInt), "ns-put/integration")
	runtime.KeepAlive(d)
}
