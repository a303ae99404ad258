package load

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// ExchangePrefix is the path prefix of the hub's exchange API; the bare
// proxy strips it and the service id that follows.
const ExchangePrefix = "/v1/exchange/"

// stripExchange turns the escaped path /v1/exchange/{serviceId}/{rest} into
// /{rest}; ok is false for other paths.
func stripExchange(escaped string) (rest string, ok bool) {
	after, found := strings.CutPrefix(escaped, ExchangePrefix)
	if !found {
		return "", false
	}
	service, rest, _ := strings.Cut(after, "/")
	if service == "" {
		return "", false
	}
	return "/" + rest, true
}

// BareProxy builds the baseline of the benchmark: a TLS 1.3 reverse proxy
// (httputil.ReverseProxy, nothing else) that requires a client certificate
// verified against serverTLS.ClientCAs, strips /v1/exchange/{serviceId}
// from the path and forwards method, path, query, headers and body to
// upstream over mutual TLS with upstreamTLS. Paths outside the exchange API
// get 404; an unreachable upstream gives 502.
//
// It listens on listenAddr and returns the server and the TLS listener; the
// caller serves with srv.Serve(ln) and stops with srv.Close or Shutdown.
// Both HTTP/1.1 and HTTP/2 are offered to clients.
func BareProxy(listenAddr string, upstream *url.URL, serverTLS, upstreamTLS *tls.Config) (*http.Server, net.Listener, error) {
	switch {
	case upstream == nil || upstream.Host == "" || (upstream.Scheme != "https" && upstream.Scheme != "http"):
		return nil, nil, errors.New("load: bare proxy: upstream must be an absolute http(s) URL")
	case serverTLS == nil || len(serverTLS.Certificates) == 0 && serverTLS.GetCertificate == nil:
		return nil, nil, errors.New("load: bare proxy: server TLS needs a certificate")
	case serverTLS.ClientCAs == nil:
		return nil, nil, errors.New("load: bare proxy: server TLS needs ClientCAs to verify clients")
	case upstream.Scheme == "https" && upstreamTLS == nil:
		return nil, nil, errors.New("load: bare proxy: an https upstream needs a TLS configuration")
	}
	stc := serverTLS.Clone()
	stc.MinVersion = tls.VersionTLS13
	stc.ClientAuth = tls.RequireAndVerifyClientCert
	if len(stc.NextProtos) == 0 {
		stc.NextProtos = []string{"h2", "http/1.1"}
	}
	var utc *tls.Config
	if upstreamTLS != nil {
		utc = upstreamTLS.Clone()
		utc.MinVersion = tls.VersionTLS13
	}

	target := *upstream
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The handler below has checked the prefix.
			rest, _ := stripExchange(pr.In.URL.EscapedPath())
			pr.Out.URL.RawPath = rest
			pr.Out.URL.Path, _ = url.PathUnescape(rest) // valid: it was escaped by net/url
			pr.SetURL(&target)
		},
		// Tuned like a production proxy: a pool big enough that the
		// baseline is not throttled by reconnecting.
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     utc,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := stripExchange(r.URL.EscapedPath()); !ok {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("load: bare proxy: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         stc,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Refused handshakes are expected under test; keep the log quiet.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return srv, tls.NewListener(ln, stc), nil
}
