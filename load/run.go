package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxProblemBody bounds how much of an error body is parsed for a reason.
const maxProblemBody = 64 << 10

// template is a Request prepared for sending.
type template struct {
	method string
	url    *url.URL
	header http.Header
	body   []byte
	expect int
}

type generator struct {
	cfg   Config
	tmpls []template
	order []int // smooth weighted round-robin over tmpls
	seq   atomic.Uint64
	rts   []*http.Transport
	rtSeq atomic.Uint64

	warmEnd, end time.Time
	measured     atomic.Int64 // measured requests started (for MaxRequests)

	mu         sync.Mutex
	lat, lag   Histogram
	status     map[int]int64
	reasons    map[string]int64
	errs       map[string]int64
	requests   int64
	responses  int64
	unexpected int64
	late       int64
	lastDone   time.Time
}

// Run sends the configured load and reports on the measured window. If ctx
// is cancelled, Run stops early and returns the partial report with an
// error.
func Run(ctx context.Context, c Config) (*Report, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &generator{
		cfg:     cfg,
		status:  map[int]int64{},
		reasons: map[string]int64{},
		errs:    map[string]int64{},
	}
	if err := g.prepare(); err != nil {
		return nil, err
	}
	defer func() {
		for _, t := range g.rts {
			t.CloseIdleConnections()
		}
	}()

	start := time.Now()
	g.warmEnd = start.Add(cfg.Warmup)
	g.end = g.warmEnd.Add(cfg.Duration)
	rep := &Report{
		Target:      cfg.Target,
		Mode:        cfg.Mode,
		Protocol:    "HTTP/1.1",
		Connections: cfg.Connections,
		Warmup:      cfg.Warmup,
		Duration:    cfg.Duration,
		Machine:     CurrentMachine(),
	}
	if cfg.HTTP2 {
		rep.Protocol = "HTTP/2"
	}
	var stop time.Time
	if cfg.Mode == ModeOpen {
		rep.Rate = cfg.Rate
		stop = g.runOpen(ctx, start, rep)
	} else {
		rep.Concurrency = cfg.Concurrency
		stop = g.runClosed(ctx)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastDone.After(stop) {
		stop = g.lastDone
	}
	rep.Elapsed = max(stop.Sub(g.warmEnd), 0)
	rep.Requests, rep.Responses, rep.Unexpected = g.requests, g.responses, g.unexpected
	if rep.Elapsed > 0 {
		rep.Throughput = float64(g.responses) / rep.Elapsed.Seconds()
	}
	rep.Latency = g.lat.Summary()
	rep.Status, rep.Reasons, rep.Errors = g.status, g.reasons, g.errs
	h := g.lat
	rep.Histogram = &h
	if cfg.Mode == ModeOpen {
		rep.Late = g.late
		lag := g.lag.Summary()
		rep.SendLag = &lag
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("load: interrupted: %w", err)
	}
	return rep, nil
}

func (g *generator) prepare() error {
	base, _ := url.Parse(strings.TrimSuffix(g.cfg.Target, "/")) // checked by withDefaults
	total := 0
	for _, r := range g.cfg.Requests {
		u, err := url.Parse(base.String() + r.Path)
		if err != nil {
			return fmt.Errorf("load: request path %q: %w", r.Path, err)
		}
		h := r.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		m := r.Method
		if m == "" {
			m = http.MethodGet
		}
		g.tmpls = append(g.tmpls, template{method: m, url: u, header: h, body: r.Body, expect: r.Expect})
		total += max(r.Weight, 1)
	}
	// Smooth weighted round-robin: the mix is interleaved, not in blocks.
	cur := make([]int, len(g.tmpls))
	g.order = make([]int, 0, total)
	for range total {
		best := 0
		for i, r := range g.cfg.Requests {
			cur[i] += max(r.Weight, 1)
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		g.order = append(g.order, best)
	}

	n := 1
	if g.cfg.HTTP2 {
		n = g.cfg.Connections
	}
	var tc *tls.Config
	if g.cfg.TLS != nil {
		tc = g.cfg.TLS.Clone()
		tc.MinVersion = tls.VersionTLS13
	}
	for range n {
		p := new(http.Protocols)
		switch {
		case !g.cfg.HTTP2:
			p.SetHTTP1(true)
		case base.Scheme == "http":
			p.SetUnencryptedHTTP2(true)
		default:
			p.SetHTTP2(true)
		}
		t := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tc.Clone(), // each transport sets its own ALPN list
			TLSHandshakeTimeout: 10 * time.Second,
			DisableCompression:  true,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   g.cfg.HTTP2,
			Protocols:           p,
		}
		if g.cfg.HTTP2 {
			// One multiplexed connection per transport; without the cap,
			// the first concurrent requests would each dial their own.
			t.MaxConnsPerHost = 1
		} else {
			t.MaxConnsPerHost = g.cfg.Connections
			t.MaxIdleConnsPerHost = g.cfg.Connections
		}
		g.rts = append(g.rts, t)
	}
	return nil
}

// next picks the next request of the mix.
func (g *generator) next() *template {
	i := g.seq.Add(1) - 1
	return &g.tmpls[g.order[i%uint64(len(g.order))]]
}

// admit reports whether one more measured request may start.
func (g *generator) admit() bool {
	return g.cfg.MaxRequests == 0 || g.measured.Add(1) <= g.cfg.MaxRequests
}

// runClosed runs the workers; it returns when dispatching stopped.
func (g *generator) runClosed(ctx context.Context) time.Time {
	var (
		wg      sync.WaitGroup
		stopMu  sync.Mutex
		stopped time.Time
	)
	for range g.cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(g.end) {
					return
				}
				measured := !now.Before(g.warmEnd)
				if measured && !g.admit() {
					stopMu.Lock()
					if stopped.IsZero() {
						stopped = now
					}
					stopMu.Unlock()
					return
				}
				g.do(ctx, g.next(), now, now, measured)
			}
		})
	}
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return time.Now()
	case !stopped.IsZero():
		return stopped
	}
	return g.end
}

// schedule gives the intended send times of open mode.
type schedule struct {
	start time.Time
	rate  float64
}

func (s schedule) at(i int64) time.Time {
	return s.start.Add(time.Duration(float64(i) * 1e9 / s.rate))
}

// firstAtOrAfter is the index of the first intended time not before t.
func (s schedule) firstAtOrAfter(t time.Time) int64 {
	j := max(int64(math.Ceil(t.Sub(s.start).Seconds()*s.rate)), 0)
	for j > 0 && !s.at(j-1).Before(t) {
		j--
	}
	for s.at(j).Before(t) {
		j++
	}
	return j
}

// runOpen sends on schedule; it returns when dispatching stopped.
func (g *generator) runOpen(ctx context.Context, start time.Time, rep *Report) time.Time {
	s := schedule{start: start, rate: g.cfg.Rate}
	first, last := s.firstAtOrAfter(g.warmEnd), s.firstAtOrAfter(g.end)
	rep.Offered = last - first
	// unsentFrom counts the window's intended sends from index i on.
	unsentFrom := func(i int64) int64 { return max(last-max(i, first), 0) }

	sem := make(chan struct{}, g.cfg.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	endTimer := time.NewTimer(time.Until(g.end))
	defer endTimer.Stop()

	for i := int64(0); i < last; i++ {
		intended := s.at(i)
		if d := time.Until(intended); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return time.Now()
			}
		}
		if ctx.Err() != nil {
			return time.Now()
		}
		now := time.Now()
		if !now.Before(g.end) { // hopelessly behind: what remains was never sent
			rep.Unsent = unsentFrom(i)
			return g.end
		}
		measured := i >= first
		if measured && !g.admit() {
			return now
		}
		select {
		case sem <- struct{}{}:
		default: // in-flight cap reached: wait, the wait shows as lateness
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return time.Now()
			case <-endTimer.C:
				rep.Unsent = unsentFrom(i)
				return g.end
			}
		}
		t := g.next()
		wg.Go(func() {
			defer func() { <-sem }()
			g.do(ctx, t, intended, time.Now(), measured)
		})
	}
	return g.end
}

// do sends one request and records it if measured. intended is when it
// should have left, sent when it did.
func (g *generator) do(ctx context.Context, t *template, intended, sent time.Time, measured bool) {
	status, reason, err := g.roundTrip(ctx, t)
	done := time.Now()
	if !measured || (err != nil && ctx.Err() != nil) {
		return // warm-up, or cut short by the caller: not the target's doing
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests++
	if done.After(g.lastDone) {
		g.lastDone = done
	}
	if g.cfg.Mode == ModeOpen {
		lag := sent.Sub(intended)
		g.lag.RecordDuration(lag)
		if lag > g.cfg.LateAfter {
			g.late++
		}
	}
	if err != nil {
		g.errs[classify(err)]++
		return
	}
	g.responses++
	g.lat.RecordDuration(done.Sub(intended))
	g.status[status]++
	if status >= 400 {
		g.reasons[reason]++
	}
	if t.expect != 0 && status != t.expect {
		g.unexpected++
	}
}

// roundTrip sends t and reads the whole answer; for 4xx/5xx it returns the
// problem "reason" (NoReason if none).
func (g *generator) roundTrip(ctx context.Context, t *template) (status int, reason string, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	req := (&http.Request{
		Method:     t.method,
		URL:        t.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     t.header, // read-only for the transport
		Host:       t.url.Host,
	}).WithContext(ctx)
	if len(t.body) > 0 {
		body := t.body
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	rt := g.rts[0]
	if len(g.rts) > 1 {
		rt = g.rts[(g.rtSeq.Add(1)-1)%uint64(len(g.rts))]
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		reason = NoReason
		if isJSON(resp.Header.Get("Content-Type")) {
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxProblemBody))
			if err != nil {
				return 0, "", fmt.Errorf("load: reading body: %w", err)
			}
			reason = problemReason(b)
		}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", fmt.Errorf("load: reading body: %w", err)
	}
	return resp.StatusCode, reason, nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/problem+json" || mt == "application/json")
}

// problemReason extracts the "reason" member of problem details.
func problemReason(body []byte) string {
	var p struct {
		Reason any `json:"reason"`
	}
	if json.Unmarshal(body, &p) != nil {
		return NoReason
	}
	if s, ok := p.Reason.(string); ok && s != "" {
		return s
	}
	return NoReason
}

// classify names the kind of a transport error.
func classify(err error) string {
	var (
		ne      net.Error
		opErr   *net.OpError
		verr    *tls.CertificateVerificationError
		rherr   tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		host    x509.HostnameError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.As(err, &verr), errors.As(err, &rherr), errors.As(err, &alert),
		errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &host),
		strings.Contains(err.Error(), "tls: "):
		return ErrTLS
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &opErr) && opErr.Op == "dial":
		return ErrConnect
	}
	return ErrOther
}
