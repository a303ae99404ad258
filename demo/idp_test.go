package demo_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
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
	if _, err := p.Login(ctx, "00000000097"); err == nil {
		t.Fatalf("login of a person the provider does not know: %v", err)
	}
}

// TestIdentityProviderRefusals: the provider (zitadel's OP) requires
// PKCE S256 and refuses a code with the wrong verifier or a second time.
func TestIdentityProviderRefusals(t *testing.T) {
	p, people, cl := startIdP(t)
	verifier := strings.Repeat("v", 64)
	sum := sha256.Sum256([]byte(verifier))
	good := url.Values{"response_type": {"code"}, "client_id": {demo.CitizenClientID}, "redirect_uri": {demo.CitizenRedirect},
		"scope": {"openid"}, "state": {"s1"}, "login_hint": {people[0].INSZ},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	get := func(u string) *url.URL {
		t.Helper()
		resp, err := cl.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("GET %s: %d without a redirect", u, resp.StatusCode)
		}
		return loc
	}
	// Without PKCE: an error back to the client.
	noPKCE := url.Values{}
	for k, v := range good {
		noPKCE[k] = v
	}
	noPKCE.Del("code_challenge")
	noPKCE.Del("code_challenge_method")
	if loc := get(p.Issuer + "/authorize?" + noPKCE.Encode()); loc.Query().Get("error") == "" {
		t.Fatalf("authorisation without PKCE went on: %s", loc)
	}
	// With PKCE: the login page, the login, the code.
	loc := get(p.Issuer + "/authorize?" + good.Encode())
	id := loc.Query().Get("authRequestID")
	resp, err := cl.PostForm(p.Issuer+"/login", url.Values{"authRequestID": {id}, "username": {people[0].INSZ}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := resp.Location()
	for back != nil && !strings.HasPrefix(back.String(), demo.CitizenRedirect) {
		back = get(back.String())
	}
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", back)
	}
	token := func(v string) int {
		resp, err := cl.PostForm(p.Issuer+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"client_id": {demo.CitizenClientID}, "redirect_uri": {demo.CitizenRedirect}, "code_verifier": {v}})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := token(strings.Repeat("w", 64)); st == http.StatusOK {
		t.Fatal("a code was exchanged with the wrong verifier")
	}
	if st := token(verifier); st != http.StatusOK {
		t.Fatalf("the right verifier: %d", st)
	}
	if st := token(verifier); st == http.StatusOK {
		t.Fatal("a code was exchanged twice")
	}
}
