// Package demotest starts the demo network for tests: a hub with its
// authentic sources on loopback, stopped when the test ends.
package demotest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/pki"
)

// Start runs the demo network on a free loopback port until tb ends.
// Zero options get a temporary data directory, 30 people and a 5 s
// provider timeout.
func Start(tb testing.TB, opts demo.Options) *demo.Running {
	tb.Helper()
	if opts.DataDir == "" {
		opts.DataDir = tb.TempDir()
	}
	if opts.People == 0 {
		opts.People = 30
	}
	if opts.ProviderTimeout == 0 {
		opts.ProviderTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, errc, err := demo.Start(ctx, opts, ln)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		<-errc
		r.Close()
	})
	return r
}

// ReadOperation is the operation AddProvider and Register give a service:
// GET /x/{subject} (call it with the path "x/" + the person's INSZ).
var ReadOperation = crossroads.Operation{ID: "read", Method: "GET", Path: "/x/{subject}"}

// AddProvider serves h over HTTPS with the population register's
// certificate, registers it as service id (about a person, returning
// fields, with ReadOperation) and grants it to the OCMW for social-aid. It
// returns the provider's base URL.
func AddProvider(tb testing.TB, r *demo.Running, id string, fields []string, h http.Handler) string {
	tb.Helper()
	url := Serve(tb, r, h)
	Register(tb, r, id, url, fields)
	return url
}

// Serve serves h over HTTPS with the population register's certificate
// until tb ends and returns its base URL.
func Serve(tb testing.TB, r *demo.Running, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(tls.NewListener(ln, pki.ServerTLSConfig(r.Hub.CA.Pool(), r.Certs[demo.PopulationRegister], nil)))
	tb.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// Register adds service id at url to the registers (about a person, with
// ReadOperation), granted to the OCMW for social-aid with fields.
func Register(tb testing.TB, r *demo.Running, id, url string, fields []string) {
	tb.Helper()
	RegisterService(tb, r, crossroads.Service{ID: id, Provider: demo.PopulationRegister, BaseURL: url, Classification: 1, Fields: fields,
		Subject: crossroads.SubjectPerson, Operations: []crossroads.Operation{ReadOperation}}, fields, nil)
}

// RegisterService adds svc to the registers, granted to the OCMW for
// social-aid (authorisation ocmw-social-aid) with fields and, if not nil,
// the operations ops.
func RegisterService(tb testing.TB, r *demo.Running, svc crossroads.Service, fields []string, ops []string) {
	tb.Helper()
	id := svc.ID
	var a crossroads.Authorisation
	for _, x := range r.Hub.Directory.Snapshot().Authorisations {
		if x.ID == "ocmw-social-aid" {
			a = x
		}
	}
	a.Services = append(append([]string(nil), a.Services...), id)
	fm := map[string][]string{id: fields}
	for k, v := range a.Fields {
		fm[k] = v
	}
	a.Fields = fm
	if ops != nil {
		om := map[string][]string{id: ops}
		for k, v := range a.Operations {
			om[k] = v
		}
		a.Operations = om
	}
	n := &crossroads.Network{
		Services:       []crossroads.Service{svc},
		Authorisations: []crossroads.Authorisation{a},
	}
	if _, err := apply.Apply(context.Background(), r.Hub.Directory.Store(), n, r.Hub.Scheme, false); err != nil {
		tb.Fatal(err)
	}
}
