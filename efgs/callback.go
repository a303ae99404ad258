package efgs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/problem"
)

// Resolver resolves a callback host (net.DefaultResolver; a fake in tests).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

type netResolver struct{}

func (netResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

// privatePrefixes are the reference's local subnets, and more: callbacks
// never reach them unless AllowPrivateCallbacks.
var privatePrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
		"192.168.0.0/16", "::1/128", "::/128", "fc00::/7", "fe80::/10", "::ffff:0:0/96"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

func private(a netip.Addr) bool {
	if a.Is4In6() {
		a = a.Unmap()
	}
	for _, p := range privatePrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return a.IsMulticast() || a.IsUnspecified()
}

// checkCallbackURL is the reference's checkUrl: https, no query, no user
// info, a registered unrevoked CALLBACK certificate of the country for the
// host, and a host whose addresses are all public (unless allowed).
func (g *Gateway) checkCallbackURL(ctx context.Context, raw, country string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || !u.IsAbs():
		return nil, errors.New("the URL does not parse as an absolute URL")
	case u.Scheme != "https":
		return nil, errors.New("the callback URL must use https")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("the callback URL must not have query parameters")
	case u.User != nil || u.Fragment != "":
		return nil, errors.New("the callback URL must not have user info or a fragment")
	case len(raw) > 2048:
		return nil, errors.New("the callback URL is too long")
	}
	if _, err := g.callbackCert(ctx, u.Hostname(), country); err != nil {
		return nil, err
	}
	if g.cfg.AllowPrivateCallbacks {
		return u, nil
	}
	addrs, err := g.resolvePublic(ctx, u.Hostname())
	if err != nil {
		return nil, err
	}
	_ = addrs
	return u, nil
}

// callbackCert finds the country's registered CALLBACK certificates for host.
func (g *Gateway) callbackCert(ctx context.Context, host, country string) ([]crossroads.EFGSCertificate, error) {
	all, err := g.cfg.Store.Certificates(ctx)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	var out []crossroads.EFGSCertificate
	for _, c := range all {
		if c.Country == country && c.Type == crossroads.EFGSCertCallback && c.Host == host && c.RevokedAt.IsZero() && g.checkAnchor(c) == nil {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no active CALLBACK certificate of %s for host %s", country, host)
	}
	return out, nil
}

func (g *Gateway) resolvePublic(ctx context.Context, host string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if addrs, err = g.cfg.Resolver.LookupNetIP(rctx, "ip", host); err != nil || len(addrs) == 0 {
			return nil, fmt.Errorf("the callback host does not resolve")
		}
	}
	for _, a := range addrs {
		if private(a) {
			return nil, errors.New("the callback host has a private or loopback address")
		}
	}
	return addrs, nil
}

// validCallbackID: 1 to 64 characters of [A-Za-z0-9._~-].
func validCallbackID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// ListCallbacks serves GET /diagnosiskeys/callback.
func (g *Gateway) ListCallbacks(w http.ResponseWriter, r *http.Request) {
	const action = crossroads.FederationCallbackList
	m, rf := g.authenticate(r)
	if rf != nil {
		g.fail(w, r, action, m, rf, nil)
		return
	}
	cs, err := g.cfg.Store.Callbacks(r.Context(), m.country)
	if err != nil {
		g.cfg.Logger.Error("efgs: callbacks", "err", err)
		g.fail(w, r, action, m, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, ""), nil)
		return
	}
	if err := g.record(r.Context(), action, m, nil, map[string]any{"callbacks": len(cs)}); err != nil {
		problem503(w)
		return
	}
	writeJSON(w, http.StatusOK, cs)
}

// PutCallback serves PUT /diagnosiskeys/callback/{id}?url=….
func (g *Gateway) PutCallback(w http.ResponseWriter, r *http.Request) {
	const action = crossroads.FederationCallbackPut
	m, rf := g.authenticate(r)
	if rf != nil {
		g.fail(w, r, action, m, rf, nil)
		return
	}
	id, raw := r.PathValue("id"), r.URL.Query().Get("url")
	detail := map[string]any{"callbackId": id, "url": raw}
	if !validCallbackID(id) {
		g.fail(w, r, action, m, refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidCallback, "the callback id must be 1 to 64 of A-Z a-z 0-9 . _ ~ -"), detail)
		return
	}
	if _, err := g.checkCallbackURL(r.Context(), raw, m.country); err != nil {
		g.fail(w, r, action, m, refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidCallback, "callback URL is invalid: %v", err), detail)
		return
	}
	if err := g.record(r.Context(), action, m, nil, detail); err != nil {
		problem503(w)
		return
	}
	if err := g.cfg.Store.PutCallback(r.Context(), crossroads.EFGSCallback{Country: m.country, ID: id, URL: raw}); err != nil {
		g.cfg.Logger.Error("efgs: put callback", "err", err)
		g.fail(w, r, action, m, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "not able to write data; retry"), detail)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// DeleteCallback serves DELETE /diagnosiskeys/callback/{id}.
func (g *Gateway) DeleteCallback(w http.ResponseWriter, r *http.Request) {
	const action = crossroads.FederationCallbackDelete
	m, rf := g.authenticate(r)
	if rf != nil {
		g.fail(w, r, action, m, rf, nil)
		return
	}
	id := r.PathValue("id")
	detail := map[string]any{"callbackId": id}
	if !validCallbackID(id) {
		g.fail(w, r, action, m, refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidCallback, "the callback id is not valid"), detail)
		return
	}
	cs, err := g.cfg.Store.Callbacks(r.Context(), m.country)
	if err != nil {
		g.fail(w, r, action, m, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, ""), detail)
		return
	}
	found := false
	for _, c := range cs {
		found = found || c.ID == id
	}
	if !found {
		g.fail(w, r, action, m, refuse(http.StatusNotFound, crossroads.ReasonEFGSNoCallback, "no callback subscription with that id"), detail)
		return
	}
	if err := g.record(r.Context(), action, m, nil, detail); err != nil {
		problem503(w)
		return
	}
	if err := g.cfg.Store.DeleteCallback(r.Context(), m.country, id); err != nil && !errors.Is(err, crossroads.ErrNotFound) {
		g.fail(w, r, action, m, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "not able to write data; retry"), detail)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func problem503(w http.ResponseWriter) {
	problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the act cannot be recorded; retry")
}

// NewCallbackClient is the client that delivers callbacks: TLS 1.2+ with
// the hub's certificate as client certificate (mTLS), no redirects, a
// timeout. The server's certificate is checked by deliver against the
// country's registered CALLBACK certificates, as the reference's callback
// trust manager does, not against a web PKI.
func NewCallbackClient(cert func() *tls.Certificate, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultCallbackTimeout
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{
				MinVersion:           tls.VersionTLS12,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert(), nil },
				InsecureSkipVerify:   true, // verified by VerifyConnection (deliver): pinned CALLBACK thumbprints
			},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// pinned carries the thumbprints a delivery's server may present.
type pinned map[string]bool

// verifyPinned is the TLS check of a callback server: its leaf must be
// one of the pinned CALLBACK certificates (and valid now).
func verifyPinned(pins pinned, now time.Time) func(cs tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("callback server presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		if !pins[Thumbprint(leaf.Raw)] {
			return errors.New("callback server certificate is not a registered CALLBACK certificate of the country")
		}
		if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired}
		}
		return nil
	}
}

// deliver sends one announcement: GET url?batchTag=…&date=….
func (g *Gateway) deliver(ctx context.Context, t crossroads.EFGSCallbackTask) error {
	u, err := g.checkCallbackURL(ctx, t.URL, t.Country)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadSubscription, err)
	}
	certs, err := g.callbackCert(ctx, u.Hostname(), t.Country)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadSubscription, err)
	}
	pins := pinned{}
	for _, c := range certs {
		pins[c.Thumbprint] = true
	}
	q := url.Values{"batchTag": {t.BatchTag}, "date": {t.Day}}
	u.RawQuery = q.Encode()
	client := g.cfg.CallbackClient
	if client == nil {
		return errors.New("no callback client")
	}
	tr, ok := client.Transport.(*http.Transport)
	if !ok {
		return errors.New("callback client transport is not an *http.Transport")
	}
	// A transport per delivery: its TLS check pins this country's
	// certificates and its dialer refuses private addresses (a host that
	// resolved public at subscription may not now).
	tr = tr.Clone()
	tr.TLSClientConfig.VerifyConnection = verifyPinned(pins, g.cfg.Now())
	if !g.cfg.AllowPrivateCallbacks {
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			addrs, err := g.resolvePublic(ctx, host)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort(addrs[0].String(), port))
		}
	}
	defer tr.CloseIdleConnections()
	cl := *client
	cl.Transport = tr
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("callback answered %s", resp.Status)
	}
	return nil
}

var errBadSubscription = errors.New("subscription no longer valid")

// DeliverDue sends the announcements that are due and returns how many it
// tried. A subscription whose URL fails the checks is removed at once; one
// that fails MaxFailures times in a row is removed.
func (g *Gateway) DeliverDue(ctx context.Context) (int, error) {
	tasks, err := g.cfg.Store.DueCallbacks(ctx, g.cfg.Now(), 100)
	if err != nil {
		return 0, err
	}
	for _, t := range tasks {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		m := member{participant: "hub", country: t.Country}
		detail := map[string]any{"callbackId": t.CallbackID, "batchTag": t.BatchTag, "date": t.Day, "retries": t.Retries}
		// Recorded before it is sent; a failure is recorded after.
		if err := g.record(ctx, crossroads.FederationCallbackSent, m, nil, detail); err != nil {
			return 0, fmt.Errorf("record callback: %w", err)
		}
		err := g.deliver(ctx, t)
		switch {
		case err == nil:
			if err := g.cfg.Store.CallbackDelivered(ctx, t.ID); err != nil {
				return 0, err
			}
			g.m.callbacks.WithLabelValues(t.Country, "delivered").Inc()
		case errors.Is(err, errBadSubscription):
			if err := g.cfg.Store.DeleteCallback(ctx, t.Country, t.CallbackID); err != nil && !errors.Is(err, crossroads.ErrNotFound) {
				return 0, err
			}
			detail["error"] = err.Error()
			g.m.callbacks.WithLabelValues(t.Country, "removed").Inc()
			g.recordBackground(ctx, crossroads.FederationCallbackDrop, m, refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidCallback, "%v", err), detail)
		default:
			removed, ferr := g.cfg.Store.CallbackFailed(ctx, t.ID, g.cfg.Now().Add(g.cfg.RetryWait), g.cfg.MaxFailures)
			if ferr != nil && !errors.Is(ferr, crossroads.ErrNotFound) {
				return 0, ferr
			}
			detail["error"] = err.Error()
			action, result := crossroads.FederationCallbackFailed, "failed"
			if removed {
				action, result = crossroads.FederationCallbackDrop, "removed"
			}
			g.m.callbacks.WithLabelValues(t.Country, result).Inc()
			g.cfg.Logger.Warn("efgs: callback failed", "country", t.Country, "callback", t.CallbackID, "removed", removed, "err", err)
			g.recordBackground(ctx, action, m, refuse(http.StatusBadGateway, crossroads.ReasonProviderUnreachable, "%v", err), detail)
		}
	}
	return len(tasks), nil
}

// recordBackground records an act of the gateway itself (no one waits on
// its answer; a record that cannot be committed is logged).
func (g *Gateway) recordBackground(ctx context.Context, action string, m member, rf *refusal, detail map[string]any) {
	if err := g.record(ctx, action, m, rf, detail); err != nil {
		g.cfg.Logger.Error("efgs: audit", "action", action, "err", err)
	}
}

// Erase erases the batches of days beyond the retention and records what
// it erased (nothing is released by an erasure; a run that erases nothing
// leaves no record, so that a quiet gateway does not fill the trail).
func (g *Gateway) Erase(ctx context.Context) (batches, keys int64, err error) {
	day := g.cfg.Now().UTC().AddDate(0, 0, -g.cfg.RetentionDays).Format(time.DateOnly)
	batches, keys, err = g.cfg.Store.Erase(ctx, day)
	if err != nil || batches == 0 {
		return batches, keys, err
	}
	g.m.erased.Add(float64(keys))
	if err := g.record(ctx, crossroads.FederationErase, member{participant: "hub"}, nil,
		map[string]any{"before": day, "batches": batches, "keys": keys}); err != nil {
		return batches, keys, fmt.Errorf("record erasure: %w", err)
	}
	return batches, keys, nil
}

// Run delivers callbacks and erases expired keys until ctx is done.
func (g *Gateway) Run(ctx context.Context) {
	cb := time.NewTicker(g.cfg.CallbackInterval)
	defer cb.Stop()
	erase := time.NewTicker(time.Hour)
	defer erase.Stop()
	doErase := func() {
		if b, k, err := g.Erase(ctx); err != nil && ctx.Err() == nil {
			g.cfg.Logger.Error("efgs: retention", "err", err)
		} else if b > 0 {
			g.cfg.Logger.Info("efgs: retention erased", "batches", b, "keys", k)
		}
	}
	doErase()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cb.C:
			if _, err := g.DeliverDue(ctx); err != nil && ctx.Err() == nil {
				g.cfg.Logger.Error("efgs: callbacks", "err", err)
			}
		case <-erase.C:
			doErase()
		}
	}
}
