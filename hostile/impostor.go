package hostile

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Impostor checks that the hub authenticates the providers it forwards to
// (issue 8 item 4). The hostile tool serves, at the address the registers
// give as the base URL of Service, one server certificate after another
// and asks the hub for an exchange of that service each time: only the
// registered provider's own, valid certificate may be accepted; with any
// other the hub must answer 502 provider-unreachable and the impostor
// must receive no request.
type Impostor struct {
	// Listen is the host:port the service's base URL points at; Listener,
	// if set, is used instead (tests).
	Listen   string
	Listener net.Listener
	// An exchange Client may make of the service (with Target.Purpose).
	Service, Path, Subject string
	// Right is the registered provider's server certificate (for the
	// address): it must be accepted.
	Right tls.Certificate
	// Optional certificates that must be refused; each case is skipped
	// when absent. A certificate of a look-alike CA is always tried.
	Other   *tls.Certificate // another participant's server certificate
	Expired *tls.Certificate // the provider's, expired
	Revoked *tls.Certificate // the provider's, already revoked
	// ToRevoke and Revoke, if both set, check that revoking the
	// provider's certificate closes the hub's open keep-alive connection:
	// ToRevoke is served and used, Revoke revokes it (and returns once the
	// hub has been told), and the next exchange must be refused.
	ToRevoke *tls.Certificate
	Revoke   func(ctx context.Context, cert *x509.Certificate) error
	// CloseWait bounds the wait for the hub to close a revoked
	// connection (default 10 s).
	CloseWait time.Duration
}

// impostorServer serves a switchable certificate and counts requests and
// open connections.
type impostorServer struct {
	cert     atomic.Pointer[tls.Certificate]
	requests atomic.Int64
	mu       sync.Mutex
	open     map[net.Conn]struct{}
	srv      *http.Server
}

func (s *impostorServer) serve(ln net.Listener) {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
		// Every connection shows the current certificate: no resumption
		// of a session made with an earlier one.
		SessionTicketsDisabled: true,
	}
	s.open = map[net.Conn]struct{}{}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			s.requests.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{}`)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnState: func(c net.Conn, st http.ConnState) {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch st {
			case http.StateNew:
				s.open[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(s.open, c)
			}
		},
	}
	go s.srv.Serve(tls.NewListener(ln, cfg))
}

func (s *impostorServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// use switches to cert after closing every open connection, so that the
// hub cannot reuse one made with the previous certificate.
func (s *impostorServer) use(cert *tls.Certificate) {
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.cert.Store(cert)
	time.Sleep(100 * time.Millisecond) // let the hub's pool notice the closed connections
}

// impostor runs the provider-authentication cases.
func (r *runner) impostor(ctx context.Context) {
	imp := r.t.Impostor
	ln := imp.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", imp.Listen); err != nil {
			r.rep.Results = append(r.rep.Results, Result{Name: "provider impostor", Want: "listen on " + imp.Listen, Got: err.Error()})
			return
		}
	}
	s := &impostorServer{}
	s.cert.Store(&imp.Right)
	s.serve(ln)
	defer s.srv.Close()

	call := func() answer {
		h := http.Header{}
		h.Set("Crossroads-Purpose", r.t.Purpose)
		h.Set("Crossroads-User", "hostile@test")
		if imp.Subject != "" {
			h.Set("Crossroads-Subject", imp.Subject)
		}
		return r.get(ctx, &r.t.Client, "/v1/exchange/"+imp.Service+"/"+imp.Path, h)
	}
	// refusedUnseen: 502 provider-unreachable and no request reached the
	// impostor.
	refusedUnseen := func(before int64) func(answer) bool {
		return func(a answer) bool {
			return a.err == nil && a.status == http.StatusBadGateway && problemReason(a) == "provider-unreachable" && s.requests.Load() == before
		}
	}
	refusedCases := 0
	refuse := func(name string, cert *tls.Certificate) {
		if cert == nil {
			return
		}
		s.use(cert)
		refusedCases++
		before := s.requests.Load()
		r.check("provider impostor: "+name, "502 provider-unreachable, no request reached it", call(), refusedUnseen(before), true)
	}
	m0, _ := r.metrics(ctx)
	refuse("another participant's certificate", imp.Other)
	if foreign, err := OtherCA(imp.Right.Leaf); err == nil {
		refuse("certificate of a look-alike CA", &foreign)
	}
	if self, err := SelfSigned(imp.Right.Leaf); err == nil {
		refuse("self-signed certificate", &self)
	}
	refuse("expired certificate", imp.Expired)
	refuse("revoked certificate", imp.Revoked)

	if m1, err := r.metrics(ctx); err == nil && m0 != nil {
		const name = "crossroads_provider_certificate_refusals_total"
		got := m1[name] - m0[name]
		r.rep.Results = append(r.rep.Results, Result{
			Name: "provider impostors counted", Want: fmt.Sprintf("≥ %d in %s", refusedCases, name),
			Got: fmt.Sprintf("%.0f", got), OK: got >= float64(refusedCases),
		})
	}

	s.use(&imp.Right)
	r.check("provider impostor: the registered provider's certificate", "200", call(), status(http.StatusOK), true)

	if imp.ToRevoke == nil || imp.Revoke == nil {
		return
	}
	s.use(imp.ToRevoke)
	first := call()
	open := s.openConns()
	r.check("provider revoked while connected: before", "200 over a kept-alive connection", first,
		func(a answer) bool { return a.err == nil && a.status == http.StatusOK && open > 0 }, true)
	if err := imp.Revoke(ctx, imp.ToRevoke.Leaf); err != nil {
		r.rep.Results = append(r.rep.Results, Result{Name: "provider revoked while connected", Want: "revoked", Got: err.Error()})
		return
	}
	wait := imp.CloseWait
	if wait == 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	for s.openConns() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	left := s.openConns()
	r.rep.Results = append(r.rep.Results, Result{
		Name: "provider revoked while connected: connection closed", Want: "the hub closes it",
		Got: fmt.Sprintf("%d connections still open", left), OK: left == 0,
	})
	before := s.requests.Load()
	r.check("provider revoked while connected: after", "502 provider-unreachable, no request reached it", call(), refusedUnseen(before), true)
}

// CheckProviders runs only the provider-authentication cases of
// t.Impostor against the hub at t.Base.
func CheckProviders(ctx context.Context, t Target) (*Report, error) {
	if t.Impostor == nil {
		return nil, fmt.Errorf("hostile: no impostor configured")
	}
	u, err := url.Parse(t.Base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("hostile: target %q: want https://host:port", t.Base)
	}
	r := &runner{t: t, host: u.Host}
	r.impostor(ctx)
	r.rep.OK = len(r.rep.Failed()) == 0
	return &r.rep, nil
}
