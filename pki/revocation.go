package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Errors about a peer certificate.
var (
	ErrNoClientCertificate = errors.New("pki: no verified client certificate")
	ErrRevoked             = errors.New("pki: certificate revoked")
	ErrExpired             = errors.New("pki: certificate expired or not yet valid")
)

// Revocations is the set of revoked certificate serials. Reads are lock-free
// (an atomic pointer to an immutable map); writes copy the map. It is safe
// for concurrent use. The zero value is an empty set.
type Revocations struct {
	mu  sync.Mutex // serialises writers
	set atomic.Pointer[map[string]struct{}]
}

// NewRevocations returns an empty set.
func NewRevocations() *Revocations {
	r := &Revocations{}
	m := map[string]struct{}{}
	r.set.Store(&m)
	return r
}

// Add marks serials (hex, any case, optional ':' separators or leading
// zeros) as revoked.
func (r *Revocations) Add(serials ...string) { r.add(serials) }

// add inserts serials and returns the canonical form of those not yet in the set.
func (r *Revocations) add(serials []string) []string {
	if len(serials) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	var added []string
	for _, s := range serials {
		s = canonicalSerial(s)
		if s == "" {
			continue
		}
		if _, ok := old[s]; !ok && !contains(added, s) {
			added = append(added, s)
		}
	}
	if len(added) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(old)+len(added))
	maps.Copy(m, old)
	for _, s := range added {
		m[s] = struct{}{}
	}
	r.set.Store(&m)
	return added
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// IsRevoked reports whether serial (as SerialHex gives it; other spellings
// are canonicalised) is revoked. A nil set revokes nothing.
func (r *Revocations) IsRevoked(serial string) bool {
	m := r.load()
	if len(m) == 0 {
		return false
	}
	_, ok := m[canonicalSerial(serial)]
	return ok
}

// Len returns the number of revoked serials.
func (r *Revocations) Len() int { return len(r.load()) }

func (r *Revocations) load() map[string]struct{} {
	if r == nil {
		return nil
	}
	if p := r.set.Load(); p != nil {
		return *p
	}
	return nil
}

// canonicalSerial is ParseSerial on the hot path: it returns s itself (no
// allocation) when s is already canonical, and "" when s is no serial.
func canonicalSerial(s string) string {
	canonical := len(s) > 0 && len(s) <= maxSerialDigits && (s[0] != '0' || len(s) == 1)
	for i := 0; i < len(s) && canonical; i++ {
		c := s[i]
		canonical = c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
	}
	if canonical {
		return s
	}
	c, err := ParseSerial(s)
	if err != nil {
		return ""
	}
	return c
}

// DefaultPollInterval is Watch's interval when none is given.
const DefaultPollInterval = 250 * time.Millisecond

// Watch polls store.RevokedSince every interval (DefaultPollInterval if
// every <= 0) until ctx ends, starting with everything revoked so far. It
// adds each reported serial to r and, if onRevoked is not nil, passes it the
// batch, even serials that were already in r (another part of this node may
// have added them directly), so that onRevoked can close their connections.
// Store errors are logged with slog and polling goes on: on the first
// failure, then at most once a minute while failing, and on recovery.
func (r *Revocations) Watch(ctx context.Context, store crossroads.CertificateStore, every time.Duration, onRevoked func(serials []string)) {
	if every <= 0 {
		every = DefaultPollInterval
	}
	var (
		cursor    int64
		failing   bool
		lastLog   time.Time
		failCount int
	)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		serials, next, err := store.RevokedSince(ctx, cursor)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			failCount++
			if !failing || time.Since(lastLog) >= time.Minute {
				slog.Error("pki: polling revoked certificates failed", "err", err, "failures", failCount)
				lastLog = time.Now()
			}
			failing = true
		default:
			if failing {
				slog.Info("pki: polling revoked certificates recovered", "failures", failCount)
				failing, failCount = false, 0
			}
			cursor = next
			if len(serials) > 0 {
				r.add(serials)
				if onRevoked != nil {
					batch := make([]string, 0, len(serials))
					for _, s := range serials {
						if c := canonicalSerial(s); c != "" && !contains(batch, c) {
							batch = append(batch, c)
						}
					}
					onRevoked(batch)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckPeer authenticates the client of a TLS connection: it needs a
// verified chain to the network CA, a leaf valid at now and not revoked
// (revs may be nil), and returns the participant id and leaf. The exchange
// path should call it on every request (r.TLS): it closes the window between
// a revocation and the closing of connections.
func CheckPeer(cs *tls.ConnectionState, revs *Revocations, now time.Time) (string, *x509.Certificate, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", nil, ErrNoClientCertificate
	}
	leaf := cs.VerifiedChains[0][0]
	if err := checkLeaf(leaf, revs, now); err != nil {
		return "", nil, err
	}
	id, err := ParticipantID(leaf)
	if err != nil {
		return "", nil, err
	}
	return id, leaf, nil
}

func checkLeaf(leaf *x509.Certificate, revs *Revocations, now time.Time) error {
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("%w: serial %s", ErrExpired, SerialHex(leaf))
	}
	if revs != nil && revs.IsRevoked(SerialHex(leaf)) {
		return fmt.Errorf("%w: serial %s", ErrRevoked, SerialHex(leaf))
	}
	return nil
}

// ConnTracker remembers, for each open TLS connection of an http.Server
// whose handshake is complete, the serial of its client certificate, so that
// CloseSerial can cut every connection of a revoked certificate. Set
// http.Server.ConnState to its ConnState method. Safe for concurrent use.
type ConnTracker struct {
	mu       sync.Mutex
	bySerial map[string]map[net.Conn]struct{}
	serialOf map[net.Conn]string // "" for a TLS connection without client certificate
}

// NewConnTracker returns an empty tracker.
func NewConnTracker() *ConnTracker {
	return &ConnTracker{
		bySerial: make(map[string]map[net.Conn]struct{}),
		serialOf: make(map[net.Conn]string),
	}
}

// ConnState is an http.Server.ConnState hook. A connection is recorded the
// first time it turns active (the server has completed the handshake by
// then) and forgotten when it is closed or hijacked.
func (t *ConnTracker) ConnState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateActive, http.StateIdle:
		t.mu.Lock()
		_, known := t.serialOf[c]
		t.mu.Unlock()
		if known {
			return
		}
		tc, ok := c.(*tls.Conn)
		if !ok {
			return
		}
		cs := tc.ConnectionState()
		if !cs.HandshakeComplete {
			return
		}
		serial := ""
		if len(cs.PeerCertificates) > 0 {
			serial = SerialHex(cs.PeerCertificates[0])
		}
		t.mu.Lock()
		if _, known := t.serialOf[c]; !known {
			t.serialOf[c] = serial
			if serial != "" {
				set := t.bySerial[serial]
				if set == nil {
					set = make(map[net.Conn]struct{})
					t.bySerial[serial] = set
				}
				set[c] = struct{}{}
			}
		}
		t.mu.Unlock()
	case http.StateClosed, http.StateHijacked:
		t.mu.Lock()
		t.forget(c)
		t.mu.Unlock()
	}
}

func (t *ConnTracker) forget(c net.Conn) {
	serial, ok := t.serialOf[c]
	if !ok {
		return
	}
	delete(t.serialOf, c)
	if set := t.bySerial[serial]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(t.bySerial, serial)
		}
	}
}

// CloseSerial closes every tracked connection whose client certificate has
// one of serials and returns how many it closed. It closes the underlying
// socket at once (no close_notify, which could block on a slow peer).
func (t *ConnTracker) CloseSerial(serials ...string) int {
	var victims []net.Conn
	t.mu.Lock()
	for _, s := range serials {
		for c := range t.bySerial[canonicalSerial(s)] {
			victims = append(victims, c)
		}
	}
	for _, c := range victims {
		t.forget(c)
	}
	t.mu.Unlock()
	for _, c := range victims {
		raw := c
		if tc, ok := c.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if err := raw.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			slog.Warn("pki: closing connection of revoked certificate", "remote", c.RemoteAddr().String(), "err", err)
		}
	}
	if len(victims) > 0 {
		slog.Info("pki: closed connections of revoked certificates", "connections", len(victims), "serials", serials)
	}
	return len(victims)
}

// Len returns the number of tracked connections.
func (t *ConnTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.serialOf)
}
