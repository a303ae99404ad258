// Package hostile attacks a live Crossroads hub, and optionally one of its
// providers, with hostile input, and reports how each attempt was answered:
// oversized bodies and headers, slow clients, bad client certificates,
// path and header injection, request smuggling, JSON bombs, and forged
// hub signatures. Every answer must be a clear 4xx (or a refused handshake
// or closed connection), carry no internals, and the hub must stay up with
// bounded memory; attempts that reach the exchange pipeline must be audited
// (a Crossroads-Receipt) or counted in the metrics.
//
// Run is used by the package's tests against an in-process demo hub and by
// 'crossroads hostile --target URL'. It sends traffic only to Target.Base
// and Target.Provider.
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/crossroads-hub/crossroads/pki"
)

// Target describes what to attack.
type Target struct {
	Base   string         // the hub, e.g. https://127.0.0.1:8443
	Roots  *x509.CertPool // the network CA
	Client tls.Certificate
	// A valid exchange for Client: GET {Base}/v1/exchange/{Service}/{Path}
	// with Purpose and Subject (the subject Path names).
	Service, Path, Purpose, Subject string
	// OtherSubject is another valid subject of the same kind (the
	// subject-mismatch attack is skipped without it).
	OtherSubject string
	// WritePath is the path of an operation of Service that takes a JSON
	// body with PUT (e.g. persons/{id}/address): the body attacks use it.
	// Empty: they POST to Path, and the content-type attack is skipped.
	WritePath string
	// Optional certificates of the network CA for the certificate attacks;
	// each attack is skipped when its certificate is absent.
	Expired, Revoked *tls.Certificate
	// Provider, if set, is an authentic source's base URL attacked directly
	// with Client and forged hub signatures; ProviderPath a path it serves
	// (e.g. /persons/{id}).
	Provider, ProviderPath string
	// MaxRequestBody is the hub's body limit (default 1 MiB).
	MaxRequestBody int64
	// SlowClients is the number of slowloris connections (default 20).
	SlowClients int
	// SlowlorisWait bounds the wait for the hub to close slow connections
	// (default 20 s; the hub's ReadHeaderTimeout is 5 s).
	SlowlorisWait time.Duration
	// MaxHeapGrowth bounds the growth of the hub's heap in use over the run,
	// read from its /metrics (default 256 MiB).
	MaxHeapGrowth float64
	// Impostor, if set, checks that the hub authenticates providers.
	Impostor *Impostor
	// EFGS, if set, attacks the federation gateway (efgs.go).
	EFGS *EFGSTarget
}

// Result is one attack and how it was answered.
type Result struct {
	Name   string `json:"name"`
	Want   string `json:"want"`
	Got    string `json:"got"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Exchange is true when the attempt reached the exchange pipeline (it
	// got a Crossroads-Exchange-Id); Audited when it got a receipt.
	Exchange bool `json:"exchange,omitempty"`
	Audited  bool `json:"audited,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Results []Result `json:"results"`
	// From the hub's /metrics before and after.
	HeapBefore, HeapAfter                    float64 `json:"-"`
	ExchangesCounted, UnauthenticatedCounted float64 `json:"-"`
	OK                                       bool    `json:"ok"`
}

// Failed returns the results that did not behave.
func (r *Report) Failed() []Result {
	var out []Result
	for _, x := range r.Results {
		if !x.OK {
			out = append(out, x)
		}
	}
	return out
}

// Table renders the report.
func (r *Report) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tATTACK\tWANT\tGOT\tRESULT\tDETAIL")
	for i, x := range r.Results {
		v := "ok"
		if !x.OK {
			v = "FAIL"
		}
		d := x.Detail
		if len(d) > 80 {
			d = d[:77] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, x.Name, x.Want, x.Got, v, d)
	}
	tw.Flush()
	return b.String()
}

// leaks are fragments that must never appear in an answer: Go errors,
// stack traces, file paths, library names.
var leaks = []string{
	"goroutine ", ".go:", "panic", "runtime.", "runtime/", "/home/", "/root/", "/tmp/", "/usr/", "/work/",
	"x509:", "tls:", "crypto/", "pki:", "sqlite", "SQL", "net/http", "errors.", "nil pointer", "stack",
	"dial tcp", "connection refused", "EOF",
}

// Leak returns the first internal-looking fragment of b, or "".
func Leak(b []byte) string {
	for _, l := range leaks {
		if bytes.Contains(b, []byte(l)) {
			return l
		}
	}
	return ""
}

// answer is what came back from one attempt.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error // transport error: refused handshake, closed connection
}

func (a answer) String() string {
	if a.err != nil {
		return "refused/closed"
	}
	s := strconv.Itoa(a.status)
	if r := problemReason(a); r != "" {
		s += " " + r
	}
	return s
}

func problemReason(a answer) string {
	if !strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") {
		return ""
	}
	i := bytes.Index(a.body, []byte(`"reason":"`))
	if i < 0 {
		return ""
	}
	rest := a.body[i+len(`"reason":"`):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return ""
}

type runner struct {
	t    Target
	host string // host:port of the hub
	rep  Report
}

// Run attacks the target and reports. It returns an error only when the
// target cannot be reached at all.
func Run(ctx context.Context, t Target) (*Report, error) {
	if t.MaxRequestBody == 0 {
		t.MaxRequestBody = 1 << 20
	}
	if t.SlowClients == 0 {
		t.SlowClients = 20
	}
	if t.SlowlorisWait == 0 {
		t.SlowlorisWait = 20 * time.Second
	}
	if t.MaxHeapGrowth == 0 {
		t.MaxHeapGrowth = 256 << 20
	}
	u, err := url.Parse(t.Base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("hostile: target %q: want https://host:port", t.Base)
	}
	r := &runner{t: t, host: u.Host}
	before, err := r.metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("hostile: read the target's metrics: %w", err)
	}

	r.bodies(ctx)
	r.headers(ctx)
	r.paths(ctx)
	r.operations(ctx)
	r.certificates(ctx)
	r.integrations(ctx)
	r.push(ctx) // push.go
	r.crossSite(ctx)
	r.spe(ctx)   // spe.go
	r.seals(ctx) // seals.go
	r.slowloris(ctx)
	if t.Provider != "" {
		r.provider(ctx)
	}
	if t.Impostor != nil {
		r.impostor(ctx)
	}
	if t.EFGS != nil {
		r.efgs(ctx)
	}

	// The hub is still up and answers a valid exchange.
	r.check("hub still serves /healthz", "200", r.get(ctx, &t.Client, "/healthz", nil), func(a answer) bool { return a.status == http.StatusOK }, false)
	r.check("hub still serves a valid exchange", "200", r.exchange(ctx, nil, nil), func(a answer) bool { return a.status == http.StatusOK }, false)

	after, err := r.metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("hostile: read the target's metrics after the run: %w", err)
	}
	rep := &r.rep
	rep.HeapBefore, rep.HeapAfter = before["go_memstats_heap_inuse_bytes"], after["go_memstats_heap_inuse_bytes"]
	rep.ExchangesCounted = after["crossroads_exchanges_total"] - before["crossroads_exchanges_total"]
	rep.UnauthenticatedCounted = after["crossroads_unauthenticated_requests_total"] - before["crossroads_unauthenticated_requests_total"]
	growth := rep.HeapAfter - rep.HeapBefore
	rep.Results = append(rep.Results, Result{
		Name: "hub memory bounded", Want: fmt.Sprintf("heap growth < %d MiB", int(t.MaxHeapGrowth)>>20),
		Got: fmt.Sprintf("%.1f → %.1f MiB", rep.HeapBefore/(1<<20), rep.HeapAfter/(1<<20)), OK: growth < t.MaxHeapGrowth,
	})
	reached := 0
	for _, x := range rep.Results {
		if x.Exchange {
			reached++
		}
	}
	rep.Results = append(rep.Results, Result{
		Name: "every exchange attempt counted", Want: fmt.Sprintf("≥ %d in crossroads_exchanges_total", reached),
		Got: fmt.Sprintf("%.0f (%.0f unauthenticated)", rep.ExchangesCounted, rep.UnauthenticatedCounted), OK: rep.ExchangesCounted >= float64(reached),
	})
	rep.OK = len(rep.Failed()) == 0
	return rep, nil
}

// check records one attempt. want is the expectation shown; ok decides.
// problemJSON requires an application/problem+json body on HTTP answers.
func (r *runner) check(name, want string, a answer, ok func(answer) bool, problemJSON bool) {
	res := Result{Name: name, Want: want, Got: a.String(), OK: ok(a)}
	if a.err != nil {
		res.Detail = errKind(a.err)
	} else {
		res.Exchange = a.header.Get("Crossroads-Exchange-Id") != ""
		res.Audited = a.header.Get("Crossroads-Receipt") != ""
		if l := Leak(a.body); l != "" {
			res.OK, res.Detail = false, "leaks internals: "+strconv.Quote(l)
		} else if problemJSON && a.status >= 400 && !strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") {
			res.OK, res.Detail = false, "not application/problem+json: "+a.header.Get("Content-Type")
		} else if res.Exchange && a.status >= 400 && !res.Audited && a.status != http.StatusUnauthorized && a.status != http.StatusServiceUnavailable {
			// 401 (no certificate) and 503 (shed) are counted, not audited.
			res.OK, res.Detail = false, "refusal not audited (no Crossroads-Receipt)"
		} else if len(a.body) > 0 {
			res.Detail = oneLine(a.body)
		}
	}
	r.rep.Results = append(r.rep.Results, res)
}

func status(codes ...int) func(answer) bool {
	return func(a answer) bool {
		if a.err != nil {
			return false
		}
		for _, c := range codes {
			if a.status == c {
				return true
			}
		}
		return false
	}
}

// statusOrClosed accepts the codes or a closed connection.
func statusOrClosed(codes ...int) func(answer) bool {
	s := status(codes...)
	return func(a answer) bool { return a.err != nil || s(a) }
}

func refused(a answer) bool { return a.err != nil }

func notServerError(a answer) bool { return a.err == nil && a.status < 500 }

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func errKind(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "bad certificate"), strings.Contains(s, "unknown certificate authority"),
		strings.Contains(s, "certificate required"), strings.Contains(s, "expired"), strings.Contains(s, "revoked"),
		strings.Contains(s, "handshake"):
		return "TLS refused: " + lastPart(s)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case strings.Contains(s, "reset"), strings.Contains(s, "broken pipe"):
		return "connection reset"
	}
	return lastPart(s)
}

func lastPart(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

// dial opens a TLS connection to the hub presenting cert (nil: none).
func (r *runner) dial(ctx context.Context, cert *tls.Certificate) (*tls.Conn, error) {
	cfg := clientTLS(cert, r.t.Roots)
	if h, _, err := net.SplitHostPort(r.host); err == nil {
		cfg.ServerName = h
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", r.host)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// raw sends head (request line and headers, CRLF-terminated, without the
// final empty line) then body, as they are, and reads one response.
// bodyStream, if set, is written instead of body, concurrently with the
// read, so that an early answer is seen.
func (r *runner) raw(ctx context.Context, cert *tls.Certificate, head string, body io.Reader) answer {
	c, err := r.dial(ctx, cert)
	if err != nil {
		return answer{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, head+"\r\n"); err != nil {
		return answer{err: err}
	}
	if body != nil {
		go func() {
			buf := make([]byte, 32<<10)
			io.CopyBuffer(c, body, buf) // ends when the hub closes the connection
		}()
	}
	// The method tells the response parser whether a body follows (HEAD).
	method, _, _ := strings.Cut(head, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// exchangeHead is the head of a valid exchange request, with extra header
// lines and an optional method and path override.
func (r *runner) exchangeHead(method, path string, extra ...string) string {
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/v1/exchange/" + r.t.Service + "/" + r.t.Path
	}
	lines := []string{
		method + " " + path + " HTTP/1.1",
		"Host: " + r.host,
		"Crossroads-Purpose: " + r.t.Purpose,
		"Crossroads-User: hostile@test",
		"Connection: close",
	}
	if r.t.Subject != "" {
		lines = append(lines, "Crossroads-Subject: "+r.t.Subject)
	}
	lines = append(lines, extra...)
	return strings.Join(lines, "\r\n") + "\r\n"
}

// clientTLS presents cert (nil: none) whatever CAs the server says it
// accepts: an attacker sends its certificate anyway.
func clientTLS(cert *tls.Certificate, roots *x509.CertPool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	if cert != nil {
		c := *cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return cfg
}

// client is an HTTP client presenting cert (nil: none).
func (r *runner) client(cert *tls.Certificate, roots *x509.CertPool) *http.Client {
	cfg := clientTLS(cert, roots)
	return &http.Client{
		Timeout:       15 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func do(cl *http.Client, req *http.Request) answer {
	resp, err := cl.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (r *runner) get(ctx context.Context, cert *tls.Certificate, path string, hdr http.Header) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.t.Base+path, nil)
	if err != nil {
		return answer{err: err}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return do(r.client(cert, r.t.Roots), req)
}

// exchange sends the valid exchange as cert (nil: Client; anonymous
// when anon), with hdr overriding headers.
func (r *runner) exchange(ctx context.Context, cert *tls.Certificate, hdr http.Header) answer {
	return r.exchangeAs(ctx, cert, false, hdr)
}

func (r *runner) exchangeAs(ctx context.Context, cert *tls.Certificate, anon bool, hdr http.Header) answer {
	if cert == nil && !anon {
		cert = &r.t.Client
	}
	h := http.Header{}
	h.Set("Crossroads-Purpose", r.t.Purpose)
	h.Set("Crossroads-User", "hostile@test")
	if r.t.Subject != "" {
		h.Set("Crossroads-Subject", r.t.Subject)
	}
	for k, v := range hdr {
		h[k] = v
	}
	return r.get(ctx, cert, "/v1/exchange/"+r.t.Service+"/"+r.t.Path, h)
}

// nested returns depth levels of [ ] nesting.
func nested(depth int) []byte {
	return append(bytes.Repeat([]byte("["), depth), bytes.Repeat([]byte("]"), depth)...)
}

// repeatReader yields n bytes of b repeated, without holding them.
type repeatReader struct {
	b   []byte
	n   int64
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && int64(n) < r.n {
		c := copy(p[n:], r.b[r.off:])
		if int64(c) > r.n-int64(n) {
			c = int(r.n - int64(n))
		}
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	r.n -= int64(n)
	return n, nil
}

func (r *runner) bodies(ctx context.Context) {
	t := r.t
	over := t.MaxRequestBody + 1<<20
	method, path := "POST", ""
	if t.WritePath != "" {
		method, path = "PUT", "/v1/exchange/"+t.Service+"/"+t.WritePath
	}
	r.check("oversized body (Content-Length)", "413", r.raw(ctx, &t.Client,
		r.exchangeHead(method, path, "Content-Type: application/json", "Content-Length: "+strconv.FormatInt(over, 10)),
		&repeatReader{b: []byte(`{"a":1},`), n: over}), status(http.StatusRequestEntityTooLarge), true)
	r.check("oversized body (chunked, no length)", "413", r.raw(ctx, &t.Client,
		r.exchangeHead(method, path, "Content-Type: application/json", "Transfer-Encoding: chunked"),
		chunked(&repeatReader{b: []byte("x"), n: over})), status(http.StatusRequestEntityTooLarge), true)
	r.check("declared exabyte body", "413", r.raw(ctx, &t.Client,
		r.exchangeHead(method, path, "Content-Type: application/json", "Content-Length: 1000000000000000000"), nil), status(http.StatusRequestEntityTooLarge), true)
	r.check("JSON bomb beyond the body limit", "413", r.raw(ctx, &t.Client,
		r.exchangeHead(method, path, "Content-Type: application/json", "Content-Length: "+strconv.FormatInt(over, 10)),
		&repeatReader{b: []byte(`[[[[[[[[[[`), n: over}), status(http.StatusRequestEntityTooLarge), true)
	// Within the limit a JSON body is checked well-formed and
	// depth-limited before anything is forwarded.
	deep := nested(10_000)
	r.check("10,000-deep JSON body to an exchange", "4xx", r.raw(ctx, &t.Client,
		r.exchangeHead(method, path, "Content-Type: application/json", "Content-Length: "+strconv.Itoa(len(deep))),
		bytes.NewReader(deep)), func(a answer) bool { return a.err == nil && a.status >= 400 && a.status < 500 }, true)
	r.check("bad Content-Length", "400", r.raw(ctx, &t.Client, r.exchangeHead(method, path, "Content-Length: 12abc"), nil),
		status(http.StatusBadRequest), false)
}

// chunked encodes r as an HTTP/1.1 chunked body.
func chunked(src io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 16<<10)
		for range 1 << 16 { // bounded: at most 1 GiB
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := fmt.Fprintf(pw, "%x\r\n%s\r\n", n, buf[:n]); werr != nil {
					pw.CloseWithError(werr)
					return
				}
			}
			if err != nil {
				io.WriteString(pw, "0\r\n\r\n")
				pw.Close()
				return
			}
		}
		pw.Close()
	}()
	return pr
}

func (r *runner) headers(ctx context.Context) {
	t := r.t
	big := "X-Pad: " + strings.Repeat("a", 64<<10)
	r.check("oversized header (64 KiB)", "431 or closed", r.raw(ctx, &t.Client, r.exchangeHead("", "", big), nil),
		statusOrClosed(http.StatusRequestHeaderFieldsTooLarge), false)
	many := make([]string, 5000)
	for i := range many {
		many[i] = "X-H" + strconv.Itoa(i) + ": v"
	}
	r.check("5,000 headers", "431 or closed", r.raw(ctx, &t.Client, r.exchangeHead("", "", many...), nil),
		statusOrClosed(http.StatusRequestHeaderFieldsTooLarge), false)
	r.check("bare CR in a header value", "400", r.raw(ctx, &t.Client, r.exchangeHead("", "", "X-Inject: a\rInjected: b"), nil),
		statusOrClosed(http.StatusBadRequest), false)
	r.check("NUL in a header value", "400", r.raw(ctx, &t.Client, r.exchangeHead("", "", "X-Inject: a\x00b"), nil),
		statusOrClosed(http.StatusBadRequest), false)
	// Folding joins the line to X-Fold's value (net/http); it never becomes
	// a header of its own, and the hub forwards only its own headers.
	r.check("obsolete line folding", "one header: not 5xx", r.raw(ctx, &t.Client, r.exchangeHead("", "", "X-Fold: a", " Crossroads-Requester: hub"), nil),
		notServerError, false)
	// Transfer-Encoding wins (RFC 9112 §6.3) and the connection closes
	// after the answer: the trailing request is never served.
	r.check("smuggling: Content-Length with Transfer-Encoding", "one 4xx answer", r.raw(ctx, &t.Client,
		r.exchangeHead("POST", "", "Content-Length: 4", "Transfer-Encoding: chunked"), strings.NewReader("0\r\n\r\nGET /v1/admin/network HTTP/1.1\r\nHost: x\r\n\r\n")),
		func(a answer) bool { return a.err != nil || (a.status >= 400 && a.status < 500) }, false)
	r.check("control character in Crossroads-User", "400", r.raw(ctx, &t.Client,
		strings.Replace(r.exchangeHead("", ""), "Crossroads-User: hostile@test", "Crossroads-User: a\x01b", 1), nil),
		statusOrClosed(http.StatusBadRequest), false)
	r.check("repeated Crossroads-Subject", "400 invalid-header", r.raw(ctx, &t.Client,
		r.exchangeHead("", "", "Crossroads-Subject: "+t.Subject), nil), status(http.StatusBadRequest), true)
	r.check("Crossroads-User of 10 KiB", "400 invalid-header", r.raw(ctx, &t.Client,
		strings.Replace(r.exchangeHead("", ""), "Crossroads-User: hostile@test", "Crossroads-User: "+strings.Repeat("u", 10<<10), 1), nil),
		status(http.StatusBadRequest), true)
	r.check("forged Crossroads-Hub-Signature toward the hub", "ignored: not 5xx", r.exchange(ctx, nil, http.Header{
		"Crossroads-Hub-Signature": {"eyJhbGciOiJub25lIn0.e30."}, "Crossroads-Requester": {"hub"}, "Crossroads-Authorisation": {"forged"},
	}), func(a answer) bool { return a.err == nil && a.status < 500 }, true)
}

func (r *runner) paths(ctx context.Context) {
	t := r.t
	svc := "/v1/exchange/" + t.Service + "/"
	four := func(a answer) bool { return a.err != nil || (a.status >= 400 && a.status < 500) }
	for _, p := range []struct{ name, path string }{
		{"dot segments", svc + "../../v1/admin/network"},
		{"encoded dot segments", svc + "%2e%2e/%2e%2e/v1/admin/network"},
		{"encoded slash", svc + "persons%2F..%2F..%2Fadmin"},
		{"encoded backslash", svc + "persons%5C..%5Cadmin"},
		{"raw backslash", svc + `persons\..\admin`},
		{"encoded NUL", svc + "persons/%00"},
		{"double slash", svc + "/persons//" + t.Subject},
		{"encoded CRLF in the path", svc + "persons/x%0d%0aInjected:%20yes"},
		{"path of 3,000 bytes", svc + strings.Repeat("a/", 1500)},
		{"service id with dots", "/v1/exchange/..%2f/x"},
	} {
		r.check("path: "+p.name, "4xx", r.raw(ctx, &t.Client, r.exchangeHead("", p.path), nil), four, true)
	}
	for _, p := range []struct{ name, path string }{
		{"dot segments outside exchanges", "/v1/authorizations/../admin/network"},
		{"double slash outside exchanges", "/v1//admin/network"},
	} {
		r.check("path: "+p.name, "400", r.raw(ctx, &t.Client, r.exchangeHead("", p.path), nil), status(http.StatusBadRequest), true)
	}
	// RFC 9112 servers accept absolute-form; the hub ignores the host and
	// calls only the registered endpoint.
	r.check("path: absolute-form target with a foreign host", "served as usual: not 5xx", r.raw(ctx, &t.Client,
		r.exchangeHead("", "https://evil.example"+svc+t.Path), nil), notServerError, true)
	r.check("path: CRLF in the request line", "400 or closed", r.raw(ctx, &t.Client,
		r.exchangeHead("", svc+"x\rInjected: yes"), nil), statusOrClosed(http.StatusBadRequest), false)
	r.check("path: space in the request target", "400 or closed", r.raw(ctx, &t.Client,
		r.exchangeHead("", svc+"a b"), nil), statusOrClosed(http.StatusBadRequest), false)
}

// operations: calls that do not match what the service declares (issue 8)
// are refused, each with its own reason, before anything is forwarded.
func (r *runner) operations(ctx context.Context) {
	t := r.t
	svc := "/v1/exchange/" + t.Service + "/"
	reason := func(code int, want string) func(answer) bool {
		return func(a answer) bool { return a.err == nil && a.status == code && problemReason(a) == want }
	}
	if t.OtherSubject != "" {
		r.check("operation: subject in the path is not the declared one", "400 subject-mismatch", r.raw(ctx, &t.Client,
			strings.Replace(r.exchangeHead("", ""), "Crossroads-Subject: "+t.Subject, "Crossroads-Subject: "+t.OtherSubject, 1), nil),
			reason(http.StatusBadRequest, "subject-mismatch"), true)
	}
	r.check("operation: a path no operation declares", "404 unknown-operation", r.raw(ctx, &t.Client,
		r.exchangeHead("", svc+t.Path+"/hostile/extra"), nil), reason(http.StatusNotFound, "unknown-operation"), true)
	r.check("operation: undeclared query parameter", "400 unknown-parameter", r.raw(ctx, &t.Client,
		r.exchangeHead("", svc+t.Path+"?hostile=1"), nil), reason(http.StatusBadRequest, "unknown-parameter"), true)
	r.check("operation: POST to a GET operation", "405 method-not-allowed + Allow", r.raw(ctx, &t.Client,
		r.exchangeHead("POST", "", "Content-Type: application/json", "Content-Length: 2"), strings.NewReader("{}")),
		func(a answer) bool {
			return reason(http.StatusMethodNotAllowed, "method-not-allowed")(a) && strings.Contains(a.header.Get("Allow"), "GET")
		}, true)
	r.check("operation: body to an operation without body", "415 unsupported-media-type", r.raw(ctx, &t.Client,
		r.exchangeHead("GET", "", "Content-Type: application/json", "Content-Length: 2"), strings.NewReader("{}")),
		reason(http.StatusUnsupportedMediaType, "unsupported-media-type"), true)
	if t.WritePath != "" {
		r.check("operation: body of another media type", "415 unsupported-media-type", r.raw(ctx, &t.Client,
			r.exchangeHead("PUT", svc+t.WritePath, "Content-Type: text/plain", "Content-Length: 2"), strings.NewReader("{}")),
			reason(http.StatusUnsupportedMediaType, "unsupported-media-type"), true)
	}
	r.check("operation: OPTIONS", "204 + Allow, not forwarded", r.raw(ctx, &t.Client, r.exchangeHead("OPTIONS", ""), nil),
		func(a answer) bool {
			return a.err == nil && a.status == http.StatusNoContent && a.header.Get("Allow") != "" && len(a.body) == 0
		}, false)
	r.check("operation: HEAD", "200, no body", r.raw(ctx, &t.Client, r.exchangeHead("HEAD", ""), nil),
		func(a answer) bool { return a.err == nil && a.status == http.StatusOK && len(a.body) == 0 }, false)
}

func (r *runner) certificates(ctx context.Context) {
	t := r.t
	r.check("no client certificate (exchange)", "401 certificate-required", r.exchangeAs(ctx, nil, true, nil),
		status(http.StatusUnauthorized), true)
	r.check("no client certificate (admin)", "401", r.get(ctx, nil, "/v1/admin/network", nil), status(http.StatusUnauthorized), true)
	if self, err := SelfSigned(t.Client.Leaf); err == nil {
		r.check("self-signed client certificate", "handshake refused", r.exchange(ctx, &self, nil), refused, false)
	}
	if other, err := OtherCA(t.Client.Leaf); err == nil {
		r.check("certificate of another CA", "handshake refused", r.exchange(ctx, &other, nil), refused, false)
	}
	if t.Expired != nil {
		r.check("expired certificate", "handshake refused", r.exchange(ctx, t.Expired, nil), refused, false)
	}
	if t.Revoked != nil {
		r.check("revoked certificate", "handshake refused", r.exchange(ctx, t.Revoked, nil), refused, false)
	}
}

// slowloris opens SlowClients connections that send their headers one
// line a second, and as many that never finish the TLS handshake; the hub
// must close them all (ReadHeaderTimeout) while still serving others.
func (r *runner) slowloris(ctx context.Context) {
	t := r.t
	ctx, cancel := context.WithTimeout(ctx, t.SlowlorisWait)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	closed, open, dialFail := 0, 0, 0
	done := func(ok bool) {
		mu.Lock()
		defer mu.Unlock()
		if ok {
			closed++
		} else {
			open++
		}
	}
	for i := range 2 * t.SlowClients {
		handshake := i%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var err error
			if handshake {
				c, err = r.dial(ctx, nil)
			} else {
				c, err = (&net.Dialer{}).DialContext(ctx, "tcp", r.host)
			}
			if err != nil {
				mu.Lock()
				dialFail++
				mu.Unlock()
				return
			}
			defer c.Close()
			deadline, _ := ctx.Deadline()
			c.SetDeadline(deadline)
			if !handshake {
				// Never speaks: the hub must drop it.
				_, err := c.Read(make([]byte, 1))
				done(!isTimeout(err))
				return
			}
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: "+r.host+"\r\n"); err != nil {
				done(true)
				return
			}
			got := make(chan error, 1)
			go func() {
				// A 408 answer or EOF both mean the hub gave up on us.
				_, err := c.Read(make([]byte, 1024))
				got <- err
			}()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for j := 0; ; j++ {
				select {
				case err := <-got:
					done(!isTimeout(err))
					return
				case <-tick.C:
					if _, err := fmt.Fprintf(c, "X-Slow-%d: a\r\n", j); err != nil {
						done(true)
						return
					}
				}
			}
		}()
	}
	// While they hang on, the hub serves others.
	served := r.get(ctx, nil, "/healthz", nil)
	wg.Wait()
	ok := open == 0 && closed == 2*t.SlowClients-dialFail && served.status == http.StatusOK
	r.rep.Results = append(r.rep.Results, Result{
		Name: fmt.Sprintf("slowloris: %d slow headers, %d silent connections", t.SlowClients, t.SlowClients),
		Want: "all closed by the hub; others served", OK: ok,
		Got: fmt.Sprintf("%d closed, %d still open, %d not connected; /healthz meanwhile: %s", closed, open, dialFail, served),
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// provider attacks an authentic source directly, as a participant that
// is not the hub.
func (r *runner) provider(ctx context.Context) {
	t := r.t
	cl := r.client(&t.Client, t.Roots)
	send := func(sign func(*http.Request) error) answer {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(t.Provider, "/")+t.ProviderPath, nil)
		if err != nil {
			return answer{err: err}
		}
		req.Header.Set("Crossroads-Exchange-Id", "0190c3f2-0000-7000-8000-000000000000")
		req.Header.Set("Crossroads-Requester", "hub")
		req.Header.Set("Crossroads-User", "hostile@test")
		req.Header.Set("Crossroads-Purpose", t.Purpose)
		req.Header.Set("Crossroads-Authorisation", "forged")
		if t.Subject != "" {
			req.Header.Set("Crossroads-Subject", t.Subject)
		}
		if sign != nil {
			if err := sign(req); err != nil {
				return answer{err: err}
			}
		}
		return do(cl, req)
	}
	r.check("provider: no hub signature", "401", send(nil), status(http.StatusUnauthorized), true)
	r.check("provider: garbage hub signature", "401", send(func(req *http.Request) error {
		req.Header.Set(pki.HeaderHubSignature, "eyJhbGciOiJub25lIn0.e30.")
		return nil
	}), status(http.StatusUnauthorized), true)
	r.check("provider: signature by a participant, not the hub", "401", send(func(req *http.Request) error {
		s, err := pki.NewSigner(t.Client)
		if err != nil {
			return err
		}
		return pki.SignRequest(s, req, nil, pki.RequestClaims{Service: t.Service})
	}), status(http.StatusUnauthorized), true)
	r.check("provider: two hub signatures", "401", send(func(req *http.Request) error {
		req.Header.Add(pki.HeaderHubSignature, "a.b.c")
		req.Header.Add(pki.HeaderHubSignature, "d.e.f")
		return nil
	}), status(http.StatusUnauthorized), true)
}
