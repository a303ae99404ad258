package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/pki"
)

// certRenewal holds the hub's current certificate, which it renews while
// running: before it expires, and at once when it is revoked (issue 16).
type certRenewal struct {
	cur       atomic.Pointer[tls.Certificate]
	mu        sync.Mutex                          // serialises renewals
	transport interface{ CloseIdleConnections() } // the provider transport
}

// renewable makes the server, the provider transport and the signer use
// the current certificate, and registers the expiry metric.
func (h *Hub) renewable(tr interface{ CloseIdleConnections() }) {
	h.renew = &certRenewal{transport: tr}
	c := h.Cert
	h.renew.cur.Store(&c)
	h.Server.TLSConfig.Certificates = nil
	h.Server.TLSConfig.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.currentCert(), nil }
	h.Registry.MustRegister(&expiryCollector{h: h})
}

// currentCert is the certificate the hub presents now.
func (h *Hub) currentCert() *tls.Certificate {
	if h.renew != nil {
		return h.renew.cur.Load()
	}
	return &h.Cert
}

// CurrentCertificate returns the hub's current certificate's leaf.
func (h *Hub) CurrentCertificate() *x509.Certificate { return h.currentCert().Leaf }

// renewBefore is how long before expiry leaf is renewed.
func (h *Hub) renewBefore(leaf *x509.Certificate) time.Duration {
	if h.cfg.RenewBefore > 0 {
		return h.cfg.RenewBefore
	}
	return leaf.NotAfter.Sub(leaf.NotBefore) / 3
}

// keepHubCert reports whether the hub may go on presenting leaf: not
// within renewBefore of its expiry, and not revoked.
func (h *Hub) keepHubCert(ctx context.Context, leaf *x509.Certificate) bool {
	if time.Until(leaf.NotAfter) < h.renewBefore(leaf) {
		return false
	}
	serial := pki.SerialHex(leaf)
	if h.Revs != nil {
		return !h.Revs.IsRevoked(serial)
	}
	revoked, _, err := h.Registers.RevokedSince(ctx, 0)
	if err != nil {
		h.log.Warn("hub certificate: read revocations", "err", err)
		return true
	}
	return !slices.Contains(revoked, serial)
}

// renewNow reissues the hub's certificate unless the current one may be
// kept, and switches the server, the transport and the signer to it.
func (h *Hub) renewNow(ctx context.Context, why string) {
	r := h.renew
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if h.keepHubCert(ctx, old.Leaf) {
		return
	}
	c, err := h.hubCertificate(ctx)
	if err != nil {
		h.log.Error("hub certificate: renewal failed; will retry", "why", why, "err", err)
		return
	}
	if err := h.Signer.Rotate(c); err != nil {
		h.log.Error("hub certificate: renewed, but the signer refused it", "err", err)
		return
	}
	r.cur.Store(&c)
	r.transport.CloseIdleConnections()
	h.log.Info("hub certificate renewed", "why", why, "old", pki.SerialHex(old.Leaf), "new", pki.SerialHex(c.Leaf), "notAfter", c.Leaf.NotAfter)
}

// renewLoop renews the hub's certificate before it expires.
func (h *Hub) renewLoop(ctx context.Context) {
	every := h.cfg.RenewCheck
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.renewNow(ctx, "expiry")
	}
}

// renewIfRevoked reissues the hub's certificate when serials revoke it.
func (h *Hub) renewIfRevoked(serials []string) {
	if h.renew == nil {
		return
	}
	cur := pki.SerialHex(h.renew.cur.Load().Leaf)
	for _, s := range serials {
		if c, err := pki.ParseSerial(s); err == nil && c == cur {
			h.renewNow(context.Background(), "revoked")
			return
		}
	}
}

// expiryCollector exports crossroads_certificate_expiry_seconds: seconds
// until the hub's certificate and each unrevoked participant certificate
// of the register expire (negative once expired). The register is read at
// most every 30 s.
type expiryCollector struct {
	h      *Hub
	mu     sync.Mutex
	at     time.Time
	cached []crossroads.Certificate
}

var expiryDesc = prometheus.NewDesc("crossroads_certificate_expiry_seconds",
	"Seconds until a certificate expires: the hub's own and each unrevoked participant certificate of the register.",
	[]string{"participant", "serial"}, nil)

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	leaf := c.h.currentCert().Leaf
	ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, leaf.NotAfter.Sub(now).Seconds(), HubID, pki.SerialHex(leaf))
	for _, cert := range c.certificates(now) {
		if cert.Participant == HubID || !cert.RevokedAt.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, cert.NotAfter.Sub(now).Seconds(), cert.Participant, cert.Serial)
	}
}

func (c *expiryCollector) certificates(now time.Time) []crossroads.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.at) < 30*time.Second {
		return c.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, err := c.h.Registers.Certificates(ctx)
	if err != nil {
		c.h.log.Warn("certificate expiry metric: read the register", "err", err)
		return c.cached
	}
	c.at, c.cached = now, list
	return list
}
