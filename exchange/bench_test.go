package exchange

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/personid"
)

// memStore is the little of a register store directory.Open reads: the
// registers and a stream of integrations, all in memory.
type memStore struct {
	crossroads.RegisterStore // not called
	n                        *crossroads.Network
	ints                     func(func(crossroads.Integration) error) error
}

func (m *memStore) Registers(context.Context) (*crossroads.Network, error) { return m.n, nil }
func (m *memStore) LastIntegrationChange(context.Context) (int64, error)   { return 0, nil }
func (m *memStore) EachIntegration(_ context.Context, fn func(crossroads.Integration) error) error {
	return m.ints(fn)
}

// BenchmarkCheck measures what the pipeline does before it forwards —
// operation matching, subject binding and the preventive decision —
// against registers of 100 services (3 operations each), 10,000
// authorisations and a person directory of 1,000,000 integrations (design
// §6), as directory.BenchmarkDecide does for the decision alone.
//
//	go test ./exchange -run XXX -bench Check -benchtime 200000x
func BenchmarkCheck(b *testing.B) {
	const nAuth, nInt, nSvc = 10_000, 1_000_000, 100
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := &crossroads.Network{}
	n.Participants = append(n.Participants, crossroads.Participant{ID: "rr", Kind: crossroads.KindAuthenticSource, Status: crossroads.StatusActive})
	for i := 0; i < nSvc; i++ {
		n.Services = append(n.Services, crossroads.Service{ID: fmt.Sprintf("svc-%d", i), Provider: "rr", BaseURL: "https://rr.example", Subject: crossroads.SubjectPerson,
			Fields: []string{"/name", "/address"}, Operations: []crossroads.Operation{
				{ID: "read", Method: "GET", Path: "/persons/{subject}", Query: []string{"lang"}},
				{ID: "history", Method: "GET", Path: "/persons/{subject}/history/{year:int}"},
				{ID: "correct", Method: "PUT", Path: "/persons/{subject}/address", Body: "application/json"},
			}})
	}
	for i := 0; i < nAuth; i++ {
		g := fmt.Sprintf("inst-%d", i%1000)
		if i < 1000 {
			n.Participants = append(n.Participants, crossroads.Participant{ID: g, Kind: crossroads.KindInstitution, Status: crossroads.StatusActive})
		}
		n.Authorisations = append(n.Authorisations, crossroads.Authorisation{
			ID: fmt.Sprintf("a-%d", i), Grantee: g, Services: []string{fmt.Sprintf("svc-%d", i%nSvc), fmt.Sprintf("svc-%d", (i+1)%nSvc)},
			Purposes: []string{"p1", "p2"}, Capacities: []crossroads.Capacity{{Sector: "s", Code: "c"}},
			Fields: map[string][]string{}, ValidFrom: t0, Status: crossroads.StatusActive,
		})
	}
	persons := make([]string, nInt/2)
	for i := range persons {
		persons[i] = personid.Make(fmt.Sprintf("%02d%02d%02d", 50+i%50, 1+i%12, 1+(i/600)%28), (i/16800)%997, false)
	}
	store := &memStore{n: n, ints: func(fn func(crossroads.Integration) error) error {
		for i := 0; i < nInt; i++ {
			if err := fn(crossroads.Integration{Person: persons[i%len(persons)], Participant: fmt.Sprintf("inst-%d", i%1000), Sector: "s", Capacity: "c", From: t0}); err != nil {
				return err
			}
		}
		return nil
	}}
	dir, err := directory.Open(context.Background(), store)
	if err != nil {
		b.Fatal(err)
	}
	p := NewPipeline(Config{Directory: dir, Kinds: personid.DefaultKinds(nil)})
	now := t0.Add(time.Hour)
	reqs := make([]Request, 1024)
	for i := range reqs {
		k := (i * 7919) % nInt
		reqs[i] = Request{Method: http.MethodGet, Service: fmt.Sprintf("svc-%d", k%1000%nSvc), Path: "/persons/" + persons[k%len(persons)],
			Header: http.Header{HeaderPurpose: {"p2"}, HeaderUser: {"bench@inst"}}}
		reqs[i].Header.Set("X-Requester", fmt.Sprintf("inst-%d", k%1000))
	}
	allowed := 0
	var s state
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := &reqs[i%len(reqs)]
		s = state{hdr: req.Header} // the header map is only read on success
		s.rec.Requester = req.Header.Get("X-Requester")
		if r := p.validate(req, &s); r != nil {
			b.Fatalf("refused: %s %s", r.reason, r.detail)
		}
		if p.decide(&s, now).Allowed {
			allowed++
		}
	}
	b.StopTimer()
	if allowed == 0 {
		b.Fatal("no request was allowed: the benchmark measures only denials")
	}
}
