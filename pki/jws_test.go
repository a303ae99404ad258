package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func testSigner(t testing.TB, ca *CA, participant string) *Signer {
	t.Helper()
	s, err := NewSigner(issueTLS(t, ca, IssueRequest{Participant: participant}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleSeal() SealClaims {
	return SealClaims{
		ExchangeID:     "01J8Z3Q9K7",
		Requester:      "onem.example",
		Service:        "rn.person",
		Subject:        "85073003328",
		Purpose:        "unemployment-benefit",
		ResponseDigest: Digest([]byte(`{"name":"x"}`)),
		Time:           time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("CET", 3600)),
	}
}

func TestDigest(t *testing.T) {
	// RFC 9530 §B.1 example body.
	if got, want := Digest([]byte(`{"hello": "world"}`)), "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"; got != want {
		t.Errorf("Digest = %s, want %s", got, want)
	}
	if got, want := Digest(nil), "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"; got != want {
		t.Errorf("Digest(nil) = %s, want %s", got, want)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ca := testCA(t)
	pool := ca.Pool()
	hub := testSigner(t, ca, HubParticipant)
	if hub.Participant() != HubParticipant || hub.Certificate() == nil {
		t.Fatal("signer identity")
	}
	in := sampleSeal()
	tok, err := hub.Sign(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("not compact: %s", tok)
	}
	// Header: ES256, typ, x5c chain with the signer's certificate.
	hdr := decodeSegment(t, tok, 0)
	var h struct {
		Alg string   `json:"alg"`
		Typ string   `json:"typ"`
		X5c []string `json:"x5c"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	if h.Alg != "ES256" || h.Typ != TypeSeal || len(h.X5c) != 1 {
		t.Fatalf("header %s", hdr)
	}
	if der, _ := base64.StdEncoding.DecodeString(h.X5c[0]); !bytes.Equal(der, hub.Certificate().Raw) {
		t.Fatal("x5c is not the signer's certificate")
	}
	// go-jose, independently of Verify, accepts the token.
	obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Verify(hub.Certificate().PublicKey); err != nil {
		t.Fatalf("go-jose rejects the token: %v", err)
	}
	if _, err := obj.Signatures[0].Protected.Certificates(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("x5c chain: %v", err)
	}
	// Payload: time in RFC 3339 UTC with milliseconds.
	if p := decodeSegment(t, tok, 1); !bytes.Contains(p, []byte(`"time":"2026-03-04T04:06:07.891Z"`)) {
		t.Fatalf("payload %s", p)
	}

	for _, pass := range []string{"cold", "warm"} {
		if pass == "cold" {
			resetVerifyCache()
		}
		var out SealClaims
		signer, err := Verify(tok, pool, time.Now(), &out)
		if err != nil {
			t.Fatalf("%s: %v", pass, err)
		}
		want := in
		want.Time = in.Time.UTC().Truncate(time.Millisecond)
		if signer != HubParticipant || out != want {
			t.Fatalf("%s: signer %q claims %+v, want %+v", pass, signer, out, want)
		}
	}
	// Untyped claims and a nil target.
	tok2, err := hub.Sign(map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if _, err := Verify(tok2, pool, time.Time{}, &m); err != nil || m["a"] != "b" {
		t.Fatalf("untyped: %v %v", m, err)
	}
	if _, err := Verify(tok2, pool, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSignVerifyConcurrent(t *testing.T) {
	ca := testCA(t)
	pool := ca.Pool()
	hub := testSigner(t, ca, HubParticipant)
	resetVerifyCache()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				c := sampleSeal()
				c.ExchangeID = fmt.Sprint(i, "-", j)
				tok, err := hub.Sign(c)
				if err != nil {
					t.Error(err)
					return
				}
				var out SealClaims
				if _, err := Verify(tok, pool, time.Now(), &out); err != nil || out.ExchangeID != c.ExchangeID {
					t.Error(out.ExchangeID, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func decodeSegment(t testing.TB, tok string, i int) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeSegment(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestVerifyRejects(t *testing.T) {
	ca := testCA(t)
	pool := ca.Pool()
	hub := testSigner(t, ca, HubParticipant)
	tok, err := hub.Sign(sampleSeal())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	now := time.Now()

	// Payload changed after signing.
	var claims map[string]any
	_ = json.Unmarshal(decodeSegment(t, tok, 1), &claims)
	claims["requester"] = "evil.example"
	forgedPayload, _ := json.Marshal(claims)
	// Signature bit flipped.
	sig := decodeSegment(t, tok, 2)
	sig[10] ^= 1
	// Header with alg none / HS256 (algorithm confusion).
	var hdr map[string]any
	_ = json.Unmarshal(decodeSegment(t, tok, 0), &hdr)
	withAlg := func(alg string) string {
		h := map[string]any{}
		for k, v := range hdr {
			h[k] = v
		}
		h["alg"] = alg
		b, _ := json.Marshal(h)
		return encodeSegment(b)
	}
	// A certificate from another CA, placed in the x5c of a token signed by
	// that CA's participant claiming to be the hub.
	other := otherCA(t)
	foreign := testSigner(t, other, HubParticipant)
	foreignTok, _ := foreign.Sign(sampleSeal())
	// The signature of the foreign key under the header (x5c) of our hub.
	spliced := parts[0] + "." + strings.Split(foreignTok, ".")[1] + "." + strings.Split(foreignTok, ".")[2]
	// A self-signed certificate that claims to be the hub.
	selfSigned, err := NewSigner(other.asTLSParticipant(t, HubParticipant))
	if err != nil {
		t.Fatal(err)
	}
	selfTok, _ := selfSigned.Sign(sampleSeal())
	// A request token presented as a seal.
	reqTok, _ := hub.Sign(RequestClaims{ExchangeID: "x", IssuedAt: now})
	// A JWS made with go-jose directly, without x5c.
	key := issueTLS(t, ca, IssueRequest{Participant: HubParticipant}).PrivateKey.(*ecdsa.PrivateKey)
	js, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	obj, _ := js.Sign([]byte(`{}`))
	noX5c, _ := obj.CompactSerialize()
	jsonSer := obj.FullSerialize()

	cases := map[string]string{
		"empty":              "",
		"garbage":            "not a token",
		"one dot":            "a.b",
		"four parts":         tok + ".x",
		"tampered payload":   parts[0] + "." + encodeSegment(forgedPayload) + "." + parts[2],
		"tampered sig":       parts[0] + "." + parts[1] + "." + encodeSegment(sig),
		"truncated sig":      parts[0] + "." + parts[1] + "." + parts[2][:20],
		"empty sig":          parts[0] + "." + parts[1] + ".",
		"alg none":           withAlg("none") + "." + parts[1] + ".",
		"alg HS256":          withAlg("HS256") + "." + parts[1] + "." + parts[2],
		"alg ES384":          withAlg("ES384") + "." + parts[1] + "." + parts[2],
		"other CA":           foreignTok,
		"spliced signature":  spliced,
		"self-signed":        selfTok,
		"wrong type":         reqTok,
		"no x5c":             noX5c,
		"JSON serialization": jsonSer,
		"whitespace":         " " + tok,
		"too long":           tok + strings.Repeat("A", MaxTokenLen),
	}
	for name, bad := range cases {
		for _, pass := range []string{"cold", "warm"} {
			if pass == "cold" {
				resetVerifyCache()
			} else if _, err := Verify(tok, pool, now, &SealClaims{}); err != nil {
				t.Fatal(err) // warms the cache with the hub's header
			}
			var out SealClaims
			if signer, err := Verify(bad, pool, now, &out); err == nil {
				t.Errorf("%s (%s cache): accepted, signer %q", name, pass, signer)
			} else if !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("%s (%s cache): %v does not wrap ErrInvalidSignature", name, pass, err)
			}
		}
	}
}

// asTLSParticipant makes a self-signed certificate with the CA's key that
// carries a participant id, as an attacker could.
func (ca *CA) asTLSParticipant(t *testing.T, participant string) tls.Certificate {
	t.Helper()
	self := &CA{cert: ca.cert, key: ca.key}
	certPEM, _, err := self.sign(&ca.key.PublicKey, IssueRequest{Participant: participant}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEMCert(t, certPEM)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: ca.key, Leaf: c}
}

func TestVerifyValidityAndRoots(t *testing.T) {
	ca := testCA(t)
	pool := ca.Pool()
	now := time.Now()
	s, err := NewSigner(issueTLSAt(t, ca, HubParticipant, now.Add(-time.Hour), now.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(sampleSeal())
	if err != nil {
		t.Fatal(err)
	}
	for _, pass := range []string{"cold", "warm"} {
		if pass == "cold" {
			resetVerifyCache()
		} else if _, err := Verify(tok, pool, now, nil); err != nil {
			t.Fatal(err)
		}
		for name, at := range map[string]time.Time{"expired": now.Add(2 * time.Hour), "not yet valid": now.Add(-2 * time.Hour)} {
			if _, err := Verify(tok, pool, at, nil); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("%s (%s): %v", name, pass, err)
			}
		}
	}
	// A cached chain is tied to its roots: other roots must not accept it.
	if _, err := Verify(tok, pool, now, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(tok, otherCA(t).Pool(), now, nil); err == nil {
		t.Error("cached verification accepted under other roots")
	}
	if _, err := Verify(tok, x509.NewCertPool(), now, nil); err == nil {
		t.Error("empty pool accepted")
	}
	if _, err := Verify(tok, nil, now, nil); err == nil {
		t.Error("nil pool accepted")
	}
	// An equal pool built separately hits the cache.
	if _, err := Verify(tok, ca.Pool(), now, nil); err != nil {
		t.Errorf("equal pool: %v", err)
	}
}

func TestVerifyParticipantOfSigner(t *testing.T) {
	ca := testCA(t)
	alice := testSigner(t, ca, "alice")
	tok, err := alice.Sign(sampleSeal())
	if err != nil {
		t.Fatal(err)
	}
	if signer, err := Verify(tok, ca.Pool(), time.Now(), &SealClaims{}); err != nil || signer != "alice" {
		t.Fatalf("signer %q, %v", signer, err)
	}
	if _, err := VerifySeal(tok, []byte(`{"name":"x"}`), ca.Pool(), time.Now()); !errors.Is(err, ErrUnexpectedSigner) {
		t.Fatalf("seal by alice: %v", err)
	}
}

func TestVerifySeal(t *testing.T) {
	ca := testCA(t)
	hub := testSigner(t, ca, HubParticipant)
	body := []byte(`{"name":"x"}`)
	tok, err := hub.Sign(sampleSeal())
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifySeal(tok, body, ca.Pool(), time.Now())
	if err != nil || c.ExchangeID != "01J8Z3Q9K7" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := VerifySeal(tok, []byte(`{"name":"y"}`), ca.Pool(), time.Now()); !errors.Is(err, ErrClaimsMismatch) {
		t.Fatalf("other body: %v", err)
	}
}

func TestNewSignerRejects(t *testing.T) {
	ca := testCA(t)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	certPEM, _, err := ca.SignCSR(makeCSR(t, edKey, nil), "ed", 0)
	if err != nil {
		t.Fatal(err)
	}
	ed := tls.Certificate{Certificate: [][]byte{parsePEMCert(t, certPEM).Raw}, PrivateKey: edKey}
	if _, err := NewSigner(ed); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("Ed25519: %v", err)
	}
	a := issueTLS(t, ca, IssueRequest{Participant: "a"})
	b := issueTLS(t, ca, IssueRequest{Participant: "b"})
	a.PrivateKey = b.PrivateKey
	if _, err := NewSigner(a); err == nil {
		t.Error("mismatched key accepted")
	}
	if _, err := NewSigner(tls.Certificate{}); err == nil {
		t.Error("empty certificate accepted")
	}
}

// hubRequest is a request as the hub forwards it.
func hubRequest(t *testing.T, s *Signer, method, target string, body []byte) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "https://provider.example"+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(HeaderExchangeID, "ex-1")
	r.Header.Set(HeaderRequester, "onem.example")
	r.Header.Set(HeaderUser, "user-7")
	r.Header.Set(HeaderPurpose, "benefit")
	r.Header.Set(HeaderSubject, "85073003328")
	r.Header.Set(HeaderAuthorisation, "auth-9")
	r.Header.Set(HeaderCorrelationID, "corr-1")
	if err := SignRequest(s, r, body, RequestClaims{
		ExchangeID: "ex-1", Requester: "onem.example", User: "user-7", Purpose: "benefit",
		Subject: "85073003328", AuthorisationID: "auth-9", Service: "rn.person",
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// asReceived turns an outgoing request into what the provider's server sees.
func asReceived(t *testing.T, out *http.Request, body []byte) *http.Request {
	t.Helper()
	in := httptest.NewRequest(out.Method, out.URL.RequestURI(), bytes.NewReader(body))
	in.Header = out.Header.Clone()
	return in
}

func TestHeaderNamesCanonical(t *testing.T) {
	for _, h := range []string{HeaderExchangeID, HeaderRequester, HeaderUser, HeaderPurpose, HeaderSubject,
		HeaderAuthorisation, HeaderCorrelationID, HeaderHubSignature, HeaderSeal} {
		if http.CanonicalHeaderKey(h) != h {
			t.Errorf("%s is not canonical", h)
		}
	}
}

func TestHubRequestOverHTTP(t *testing.T) {
	ca := testCA(t)
	pool := ca.Pool()
	hub := testSigner(t, ca, HubParticipant)
	type result struct {
		claims RequestClaims
		err    error
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c, err := VerifyHubRequest(r, body, pool, time.Now(), 30*time.Second)
		results <- result{c, err}
	}))
	defer srv.Close()
	body := []byte(`{"query":"x"}`)
	r := hubRequest(t, hub, http.MethodPost, "/persons/85%2F07/ab%20c?x=1&y=%C3%A9", body)
	r.URL.Scheme, r.URL.Host = "http", strings.TrimPrefix(srv.URL, "http://")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	res := <-results
	if res.err != nil {
		t.Fatalf("provider refused a genuine request: %v", res.err)
	}
	if res.claims.Service != "rn.person" || res.claims.Path != "/persons/85%2F07/ab%20c?x=1&y=%C3%A9" || res.claims.Method != "POST" {
		t.Fatalf("claims %+v", res.claims)
	}
}

func TestVerifyHubRequestRejects(t *testing.T) {
	ca := testCA(t)
	pool := ca.Pool()
	hub := testSigner(t, ca, HubParticipant)
	alice := testSigner(t, ca, "alice")
	body := []byte(`{"query":"x"}`)
	now := time.Now()
	const skew = 30 * time.Second

	good := asReceived(t, hubRequest(t, hub, http.MethodPost, "/persons/1?x=1", body), body)
	if _, err := VerifyHubRequest(good, body, pool, now, skew); err != nil {
		t.Fatalf("genuine request refused: %v", err)
	}

	type mut func(r *http.Request) ([]byte, time.Time)
	same := func(f func(r *http.Request)) mut {
		return func(r *http.Request) ([]byte, time.Time) { f(r); return body, now }
	}
	cases := map[string]struct {
		m    mut
		want error
	}{
		"method":            {same(func(r *http.Request) { r.Method = http.MethodPut }), ErrClaimsMismatch},
		"path":              {same(func(r *http.Request) { r.URL.Path = "/persons/2" }), ErrClaimsMismatch},
		"query":             {same(func(r *http.Request) { r.URL.RawQuery = "x=2" }), ErrClaimsMismatch},
		"body":              {func(r *http.Request) ([]byte, time.Time) { return []byte(`{"query":"y"}`), now }, ErrClaimsMismatch},
		"empty body":        {func(r *http.Request) ([]byte, time.Time) { return nil, now }, ErrClaimsMismatch},
		"subject header":    {same(func(r *http.Request) { r.Header.Set(HeaderSubject, "93051822361") }), ErrClaimsMismatch},
		"requester header":  {same(func(r *http.Request) { r.Header.Set(HeaderRequester, "evil") }), ErrClaimsMismatch},
		"purpose header":    {same(func(r *http.Request) { r.Header.Set(HeaderPurpose, "marketing") }), ErrClaimsMismatch},
		"user removed":      {same(func(r *http.Request) { r.Header.Del(HeaderUser) }), ErrClaimsMismatch},
		"authorisation":     {same(func(r *http.Request) { r.Header.Set(HeaderAuthorisation, "auth-10") }), ErrClaimsMismatch},
		"exchange id":       {same(func(r *http.Request) { r.Header.Set(HeaderExchangeID, "ex-2") }), ErrClaimsMismatch},
		"duplicated header": {same(func(r *http.Request) { r.Header.Add(HeaderSubject, "93051822361") }), ErrClaimsMismatch},
		"stale":             {func(r *http.Request) ([]byte, time.Time) { return body, now.Add(skew + time.Second) }, ErrStale},
		"from the future":   {func(r *http.Request) ([]byte, time.Time) { return body, now.Add(-skew - time.Second) }, ErrStale},
		"no signature":      {same(func(r *http.Request) { r.Header.Del(HeaderHubSignature) }), ErrInvalidSignature},
		"two signatures":    {same(func(r *http.Request) { r.Header.Add(HeaderHubSignature, r.Header.Get(HeaderHubSignature)) }), ErrInvalidSignature},
		"garbage signature": {same(func(r *http.Request) { r.Header.Set(HeaderHubSignature, "x.y.z") }), ErrInvalidSignature},
		"signed by alice": {func(r *http.Request) ([]byte, time.Time) {
			a := asReceived(t, hubRequest(t, alice, http.MethodPost, "/persons/1?x=1", body), body)
			r.Header.Set(HeaderHubSignature, a.Header.Get(HeaderHubSignature))
			return body, now
		}, ErrUnexpectedSigner},
		"seal as signature": {same(func(r *http.Request) {
			tok, _ := hub.Sign(sampleSeal())
			r.Header.Set(HeaderHubSignature, tok)
		}), ErrInvalidSignature},
		"signature of another request": {func(r *http.Request) ([]byte, time.Time) {
			o := hubRequest(t, hub, http.MethodPost, "/persons/3?x=1", body)
			r.Header.Set(HeaderHubSignature, o.Header.Get(HeaderHubSignature))
			return body, now
		}, ErrClaimsMismatch},
	}
	for name, c := range cases {
		r := asReceived(t, hubRequest(t, hub, http.MethodPost, "/persons/1?x=1", body), body)
		b, at := c.m(r)
		_, err := VerifyHubRequest(r, b, pool, at, skew)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "85073003328") {
			t.Errorf("%s: error leaks a header value: %v", name, err)
		}
	}
}

func TestSignRequestChecksHeaders(t *testing.T) {
	ca := testCA(t)
	hub := testSigner(t, ca, HubParticipant)
	r, _ := http.NewRequest(http.MethodGet, "https://p.example/x", nil)
	r.Header.Set(HeaderExchangeID, "ex-1")
	err := SignRequest(hub, r, nil, RequestClaims{ExchangeID: "ex-2"})
	if !errors.Is(err, ErrClaimsMismatch) || r.Header.Get(HeaderHubSignature) != "" {
		t.Fatalf("mismatching claims signed: %v", err)
	}
	// Empty claims take their header's value: the signature covers what is sent.
	r.Header.Set(HeaderSubject, "85073003328")
	if err := SignRequest(hub, r, nil, RequestClaims{ExchangeID: "ex-1", Service: "s"}); err != nil {
		t.Fatal(err)
	}
	c, err := VerifyHubRequest(asReceived(t, r, nil), nil, ca.Pool(), time.Now(), 0)
	if err != nil || c.Method != "GET" || c.Path != "/x" || c.BodyDigest != Digest(nil) || c.IssuedAt.IsZero() ||
		c.Subject != "85073003328" || c.ExchangeID != "ex-1" || c.Requester != "" {
		t.Fatalf("%+v %v", c, err)
	}
	r.Header.Add(HeaderPurpose, "a")
	r.Header.Add(HeaderPurpose, "b")
	if err := SignRequest(hub, r, nil, RequestClaims{}); !errors.Is(err, ErrClaimsMismatch) {
		t.Fatalf("repeated header signed: %v", err)
	}
}
