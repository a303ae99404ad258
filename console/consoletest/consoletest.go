// Package consoletest starts a demo network for the console's tests (Go
// and browser) and drives the console as a browser does: cookies, forms,
// the identity provider's login page.
package consoletest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
)

// Net is a running demo network.
type Net struct {
	*demo.Running
	Roots *x509.CertPool // the hub's CA and the identity provider's certificate
}

// Start starts a demo network with a few people; it stops with the test.
func Start(t testing.TB) *Net {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, errc, err := demo.Start(ctx, demo.Options{DataDir: t.TempDir(), People: 6,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, ln)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-errc; r.Close() })
	roots := r.Hub.CA.Pool()
	roots.AppendCertsFromPEM(r.IdentityProvider.CertPEM)
	return &Net{Running: r, Roots: roots}
}

// Exchange makes an exchange as a client institution and returns its status.
func (n *Net) Exchange(t testing.TB, as, service, path, purpose, subject string) int {
	t.Helper()
	resp, _, err := n.Clients.Exchange(context.Background(), as, service, path, purpose, subject)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// Browser is an HTTP client with cookies, like a browser.
type Browser struct {
	*http.Client
	Base   string
	issuer string
	t      testing.TB
}

// Browser returns a new browser; with certificate, it presents that
// participant's client certificate.
func (n *Net) Browser(t testing.TB, certificate string) *Browser {
	jar, _ := cookiejar.New(nil)
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: n.Roots}
	if certificate != "" {
		c := n.Certs[certificate]
		tc.Certificates = []tls.Certificate{c}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	base := n.ConsoleURL // by the console's name: no certificate asked
	if certificate != "" {
		base = n.Base // the hub's name, where certificates are asked for
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &Browser{Client: &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}, Base: base, issuer: n.IdentityProvider.Issuer, t: t}
}

// Get fetches a page and returns its status and body.
func (b *Browser) Get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.Client.Get(b.abs(path))
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Post submits a form.
func (b *Browser) Post(path string, form url.Values, header http.Header) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.abs(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *Browser) abs(path string) string {
	if strings.HasPrefix(path, "https://") {
		return path
	}
	return b.Base + path
}

var (
	csrfRE   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	loginRE  = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)
	changeRE = regexp.MustCompile(`name="change" value="([^"]+)"`)
)

// CSRF returns the anti-forgery token of a page's forms.
func CSRF(page string) string {
	if m := csrfRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// Change returns the confirmation token of an apply page.
func Change(page string) string {
	if m := changeRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// Login logs in through the console and the identity provider's login
// page as login (a national number or a staff login) and returns the
// page the console lands on.
func (b *Browser) Login(login string) (int, string) {
	b.t.Helper()
	status, page := b.Get("/console/login?login_hint=" + url.QueryEscape(login))
	if status != http.StatusOK {
		return status, page
	}
	m := loginRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no login page: %s", page)
	}
	// The login page is the provider's: post to it.
	return b.postLogin(m[1], login)
}

func (b *Browser) postLogin(id, login string) (int, string) {
	resp, err := b.Client.PostForm(b.loginURL(), url.Values{"authRequestID": {id}, "username": {login}})
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// loginURL is the provider's login form, learnt from the last redirect.
func (b *Browser) loginURL() string { return b.issuer + "/login" }
