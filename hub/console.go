package hub

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"slices"

	"github.com/crossroads-hub/crossroads/console"
	"github.com/crossroads-hub/crossroads/httpapi"
)

// The browser console (package console) at /console/, on the hub's own
// listener and TLS: citizens without a client certificate reach it (the
// server requests a certificate but does not require one,
// pki.ServerTLSConfig), operators and auditors present theirs. Its acts go
// through h.API as the participant acting (httpapi.API.ServeAs).
func init() {
	addFeature(feature{
		name: "console",
		open: func(ctx context.Context, h *Hub) ([]httpapi.Route, error) {
			s := h.cfg.Console
			if s.ClientID == "" {
				s.ClientID = h.cfg.OIDCClientID
			}
			var client *http.Client
			if h.citizen != nil {
				client = h.citizen.HTTPClient()
			}
			c, err := console.New(console.Config{
				Settings: s, Directory: h.Directory, Trail: h.Trail, Scheme: h.Scheme, Revocations: h.Revs,
				API: func() console.API { return h.API }, Gatherer: h.Registry, Limiter: h.Limiter, Retention: h.cfg.Retention,
				Issuer: h.cfg.OIDCIssuer, SubjectClaim: h.cfg.OIDCSubjectClaim, HTTPClient: client,
				Witnesses: len(h.cfg.Witnesses), Quorum: h.cfg.WitnessQuorum, Logger: h.log,
			})
			if err != nil {
				return nil, err
			}
			h.console = c
			return []httpapi.Route{{Pattern: console.Path, Access: httpapi.Optional, Handler: c}}, nil
		},
		run: func(ctx context.Context, h *Hub) { h.console.Run(ctx) },
	})
}

// consoleTLS stops asking for a client certificate on the console's own
// host names (Settings.Hostnames, by default the host of Settings.URL when
// it is a DNS name): a browser asked for one shows a certificate picker
// (and a headless one waits forever), which citizens must never meet. The
// listener, the server certificate and everything else stay the same;
// operators log in with their certificate on the hub's other names, where
// it is asked for as before.
func (h *Hub) consoleTLS() {
	names := h.cfg.Console.Hostnames
	if u, err := url.Parse(h.cfg.Console.URL); len(names) == 0 && err == nil && u.Hostname() != "" && net.ParseIP(u.Hostname()) == nil {
		names = []string{u.Hostname()}
	}
	if len(names) == 0 {
		return
	}
	base := h.Server.TLSConfig
	noCert := base.Clone()
	noCert.ClientAuth = tls.NoClientCert
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(names, hello.ServerName) {
			return noCert, nil
		}
		return nil, nil
	}
}
