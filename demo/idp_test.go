package demo_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/crossroads-hub/crossroads/demo"
)

func startIdP(t *testing.T) (*demo.IdentityProvider, []demo.Person, *http.Client) {
	t.Helper()
	people := demo.People(3)
	p, err := demo.StartIdentityProvider(people, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CertPEM) {
		t.Fatal("no certificate in CertPEM")
	}
	cl := &http.Client{Timeout: 5 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(cl.CloseIdleConnections)
	return p, people, cl
}

// TestIdentityProviderLogin: the code flow gives an ID token that a
// standard relying party (go-oidc, as the hub's citizen view) verifies
// through discovery and the JWKS, naming the person.
func TestIdentityProviderLogin(t *testing.T) {
	p, people, cl := startIdP(t)
	ctx := oidc.ClientContext(context.Background(), cl)
	tok, err := p.Login(ctx, people[1].INSZ)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	id, err := prov.Verifier(&oidc.Config{ClientID: demo.CitizenClientID, SupportedSigningAlgs: []string{oidc.ES256}}).Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != people[1].INSZ || id.Issuer != p.Issuer {
		t.Fatalf("token for %s from %s", id.Subject, id.Issuer)
	}
	if _, err := prov.Verifier(&oidc.Config{ClientID: "another-client", SupportedSigningAlgs: []string{oidc.ES256}}).Verify(ctx, tok); err == nil {
		t.Fatal("token accepted for another audience")
	}
	if _, err := p.Login(ctx, "00000000097"); err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("login of a person the provider does not know: %v", err)
	}
}

// TestIdentityProviderRefusals: the authorisation and token endpoints
// refuse what OpenID Connect Core and PKCE say they must.
func TestIdentityProviderRefusals(t *testing.T) {
	p, people, cl := startIdP(t)
	verifier := strings.Repeat("v", 64)
	sum := sha256.Sum256([]byte(verifier))
	good := url.Values{"response_type": {"code"}, "client_id": {demo.CitizenClientID}, "redirect_uri": {demo.CitizenRedirect},
		"scope": {"openid"}, "state": {"s1"}, "login_hint": {people[0].INSZ},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	authorize := func(change func(url.Values)) (int, url.Values) {
		t.Helper()
		q := url.Values{}
		for k, v := range good {
			q[k] = v
		}
		change(q)
		resp, err := cl.Get(p.Issuer + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return resp.StatusCode, loc.Query()
	}
	for name, c := range map[string]struct {
		change func(url.Values)
		status int
		error  string
	}{
		"unknown client":     {func(q url.Values) { q.Set("client_id", "evil") }, 400, ""},
		"other redirect":     {func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, 400, ""},
		"implicit flow":      {func(q url.Values) { q.Set("response_type", "id_token") }, 302, "unsupported_response_type"},
		"no openid scope":    {func(q url.Values) { q.Set("scope", "profile") }, 302, "invalid_scope"},
		"no PKCE":            {func(q url.Values) { q.Del("code_challenge") }, 302, "invalid_request"},
		"plain PKCE":         {func(q url.Values) { q.Set("code_challenge_method", "plain") }, 302, "invalid_request"},
		"unknown person":     {func(q url.Values) { q.Set("login_hint", "00000000097") }, 302, "access_denied"},
		"no person at all":   {func(q url.Values) { q.Del("login_hint") }, 302, "access_denied"},
		"good, for contrast": {func(url.Values) {}, 302, ""},
	} {
		status, q := authorize(c.change)
		if status != c.status || q.Get("error") != c.error {
			t.Errorf("%s: %d %q, want %d %q", name, status, q.Get("error"), c.status, c.error)
		}
		if status == 302 && q.Get("state") != "s1" {
			t.Errorf("%s: state not returned", name)
		}
	}

	_, q := authorize(func(url.Values) {})
	code := q.Get("code")
	token := func(change func(url.Values)) (int, string) {
		t.Helper()
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {demo.CitizenClientID},
			"redirect_uri": {demo.CitizenRedirect}, "code_verifier": {verifier}}
		change(f)
		resp, err := cl.PostForm(p.Issuer+"/token", f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			Error   string
			IDToken string `json:"id_token"`
		}
		json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode == 200 && v.IDToken == "" {
			t.Fatal("200 without an ID token")
		}
		return resp.StatusCode, v.Error
	}
	for name, c := range map[string]struct {
		change func(url.Values)
		status int
		error  string
	}{
		"password grant": {func(f url.Values) { f.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
		"other client":   {func(f url.Values) { f.Set("client_id", "evil") }, 401, "invalid_client"},
		"other redirect": {func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") }, 401, "invalid_client"},
		"unknown code":   {func(f url.Values) { f.Set("code", "nope") }, 400, "invalid_grant"},
	} {
		if status, e := token(c.change); status != c.status || e != c.error {
			t.Errorf("%s: %d %q, want %d %q", name, status, e, c.status, c.error)
		}
	}
	// A wrong verifier spends the code: it cannot be retried.
	if status, e := token(func(f url.Values) { f.Set("code_verifier", strings.Repeat("w", 64)) }); status != 400 || e != "invalid_grant" {
		t.Errorf("wrong verifier: %d %q", status, e)
	}
	if status, e := token(func(url.Values) {}); status != 400 || e != "invalid_grant" {
		t.Errorf("code after a failed redemption: %d %q", status, e)
	}
	_, q = authorize(func(url.Values) {})
	code = q.Get("code")
	if status, e := token(func(url.Values) {}); status != 200 {
		t.Fatalf("good code: %d %q", status, e)
	}
	if status, e := token(func(url.Values) {}); status != 400 || e != "invalid_grant" {
		t.Errorf("code used twice: %d %q", status, e)
	}
}
