package bench

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/problem"
)

// provider is the population register of the benchmark: the demo
// register's work — mutual TLS, verify the hub's signature (same skew),
// look the person up, answer the same JSON — without the demo register's
// replay cache, so that the baselines can send requests signed once before
// the run, and without its 200,000-id cap, which a hub above ~1,700
// exchanges/s fills within its 2-minute window and then refuses
// everything. Hub, bare proxy and direct runs all reach this one server.
type provider struct {
	roots  *x509.CertPool
	people map[string]*demo.Person
}

func newProvider(roots *x509.CertPool, people []demo.Person) *provider {
	p := &provider{roots: roots, people: make(map[string]*demo.Person, len(people))}
	for i := range people {
		p.people[people[i].INSZ] = &people[i]
	}
	return p
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		problem.Error(w, http.StatusBadRequest, "invalid-body", "")
		return
	}
	if _, err := pki.VerifyHubRequest(r, body, p.roots, time.Now(), time.Minute); err != nil {
		problem.Error(w, http.StatusUnauthorized, "invalid-hub-signature", "requests must come from the hub, signed")
		return
	}
	const prefix = "/persons/"
	if len(r.URL.Path) <= len(prefix) || r.URL.Path[:len(prefix)] != prefix || r.Method != http.MethodGet {
		problem.Error(w, http.StatusNotFound, "not-found", "")
		return
	}
	insz := r.URL.Path[len(prefix):]
	if subj := r.Header.Get("Crossroads-Subject"); subj != "" && subj != insz {
		problem.Error(w, http.StatusBadRequest, "subject-mismatch", "the path names another person than Crossroads-Subject")
		return
	}
	q, ok := p.people[insz]
	if !ok {
		problem.Error(w, http.StatusNotFound, "not-found", "no such person in this register")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"insz":        q.INSZ,
		"name":        map[string]string{"first": q.First, "last": q.Last},
		"birthDate":   q.BirthDate,
		"address":     map[string]string{"street": q.Street, "postalCode": q.PostalCode, "city": q.City},
		"nationality": "BE",
		"civilStatus": "single",
	})
}

// serveProvider serves p over mutual TLS with cert on 127.0.0.1; it returns
// the base URL and a stop function.
func serveProvider(p *provider, roots *x509.CertPool, cert tls.Certificate) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench: provider: %w", err)
	}
	cfg := pki.ServerTLSConfig(roots, cert, nil)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	srv := &http.Server{Handler: p, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, cfg)) // ends with ErrServerClosed
	}()
	return "https://" + ln.Addr().String(), func() { srv.Close(); <-done }, nil
}
