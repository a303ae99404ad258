package provider_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/provider"
)

// The test vectors live in docs/provider.md, each in a fenced block after
// an <!-- vector:NAME --> line. TestVectors checks that they stay true;
//
//	go test ./provider -run TestVectors -write-vectors
//
// makes fresh ones (a new CA, hub key and tokens) and rewrites the blocks.
var writeVectors = flag.Bool("write-vectors", false, "regenerate the test vectors in docs/provider.md")

const docPath = "../docs/provider.md"

var vectorBlock = regexp.MustCompile("(?s)(<!-- vector:([a-z0-9.-]+) -->\n```[a-z]*\n)(.*?)(\n```)")

func readVectors(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range vectorBlock.FindAllSubmatch(doc, -1) {
		out[string(m[2])] = string(m[3])
	}
	return out
}

// vectorRequest is one signed request of the vectors.
type vectorRequest struct {
	name, method, target, ctype, body string
	operation, subjectKind, subject   string
}

var vectorRequests = []vectorRequest{
	{name: "read", method: http.MethodGet, target: "/persons/85073003328?lang=nl", operation: "read", subjectKind: "person", subject: "85073003328"},
	{name: "correct-address", method: http.MethodPut, target: "/persons/85073003328/address", ctype: "application/json",
		body: `{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"}`, operation: "correct-address", subjectKind: "person", subject: "85073003328"},
}

// rawRequest renders r as the provider receives it (HTTP/1.1, LF line
// ends for the document).
func rawRequest(r *http.Request, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\nHost: source.example\n", r.Method, r.URL.RequestURI())
	keys := []string{"Accept", "Content-Type", "Content-Length", pki.HeaderExchangeID, pki.HeaderRequester, pki.HeaderUser,
		pki.HeaderPurpose, pki.HeaderSubject, pki.HeaderAuthorisation, pki.HeaderHubSignature}
	for _, k := range keys {
		if v := r.Header.Get(k); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	if body != "" {
		b.WriteString("\n" + body)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func generateVectors(t *testing.T) map[string]string {
	t.Helper()
	ca, err := pki.InitCA(t.TempDir(), []byte("test vectors passphrase"), "Crossroads Test Vectors CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _, err := ca.Issue(pki.IssueRequest{Participant: "hub", DNSNames: []string{"hub.example"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	hubCert, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := pki.NewSigner(hubCert)
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Now().UTC().Truncate(time.Second)
	v := map[string]string{
		"ca.crt":  strings.TrimSpace(string(ca.CertPEM())),
		"hub.crt": strings.TrimSpace(string(certPEM)),
		"hub.key": strings.TrimSpace(string(keyPEM)),
		"time":    issued.Add(10 * time.Second).Format(time.RFC3339),
	}
	for i, vr := range vectorRequests {
		r, err := http.NewRequest(vr.method, "https://source.example"+vr.target, strings.NewReader(vr.body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Accept", "application/json")
		if vr.ctype != "" {
			r.Header.Set("Content-Type", vr.ctype)
			r.Header.Set("Content-Length", fmt.Sprint(len(vr.body)))
		}
		r.Header.Set(pki.HeaderExchangeID, fmt.Sprintf("0193d5a8-7c4e-7%03d-8a1b-3f6c2d9e0b4%d", i, i))
		r.Header.Set(pki.HeaderRequester, "ocmw-gent")
		r.Header.Set(pki.HeaderUser, "alice@ocmw-gent")
		r.Header.Set(pki.HeaderPurpose, "social-aid")
		r.Header.Set(pki.HeaderSubject, vr.subject)
		r.Header.Set(pki.HeaderAuthorisation, "ocmw-social-aid")
		if err := pki.SignRequest(signer, r, []byte(vr.body), pki.RequestClaims{
			Service: "person-identity", Operation: vr.operation, SubjectKind: vr.subjectKind, IssuedAt: issued,
		}); err != nil {
			t.Fatal(err)
		}
		tok := r.Header.Get(pki.HeaderHubSignature)
		parts := strings.Split(tok, ".")
		hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		v[vr.name+".http"] = rawRequest(r, vr.body)
		v[vr.name+".header"] = indent(t, abbreviateX5C(t, hdr))
		v[vr.name+".claims"] = indent(t, payload)
	}
	return v
}

// abbreviateX5C replaces the certificate in a protected header by a
// placeholder (it is hub.crt; the test checks that).
func abbreviateX5C(t *testing.T, hdr []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(hdr, &m); err != nil {
		t.Fatal(err)
	}
	m["x5c"] = []string{"<hub.crt, DER, base64>"}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b.Bytes())
}

func indent(t *testing.T, b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func writeDoc(t *testing.T, v map[string]string) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	doc = vectorBlock.ReplaceAllFunc(doc, func(m []byte) []byte {
		sub := vectorBlock.FindSubmatch(m)
		name := string(sub[2])
		val, ok := v[name]
		if !ok {
			t.Fatalf("docs/provider.md has an unknown vector %q", name)
		}
		seen[name] = true
		return []byte(string(sub[1]) + val + string(sub[4]))
	})
	for name := range v {
		if !seen[name] {
			t.Fatalf("docs/provider.md has no block for vector %q", name)
		}
	}
	if err := os.WriteFile(docPath, doc, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVectors checks the test vectors of docs/provider.md: the token of
// each request verifies against ca.crt at the stated time, was made with
// hub.key, and its claims are exactly those shown; the request passes the
// middleware once and is refused as a replay, stale or tampered.
func TestVectors(t *testing.T) {
	if *writeVectors {
		writeDoc(t, generateVectors(t))
	}
	v := readVectors(t)
	for _, name := range []string{"ca.crt", "hub.crt", "hub.key", "time"} {
		if v[name] == "" {
			t.Fatalf("docs/provider.md lacks vector %s", name)
		}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(v["ca.crt"])) {
		t.Fatal("ca.crt: no certificate")
	}
	hubCert, err := pki.LoadKeyPair([]byte(v["hub.crt"]), []byte(v["hub.key"]))
	if err != nil {
		t.Fatalf("hub.crt/hub.key: %v", err)
	}
	if id, err := pki.ParticipantID(hubCert.Leaf); err != nil || id != "hub" {
		t.Fatalf("hub.crt names participant %q (%v)", id, err)
	}
	if !hubCert.PrivateKey.(*ecdsa.PrivateKey).PublicKey.Equal(hubCert.Leaf.PublicKey) {
		t.Fatal("hub.key is not hub.crt's key")
	}
	at, err := time.Parse(time.RFC3339, v["time"])
	if err != nil {
		t.Fatalf("time: %v", err)
	}
	for _, vr := range vectorRequests {
		t.Run(vr.name, func(t *testing.T) {
			raw := v[vr.name+".http"]
			if raw == "" {
				t.Fatalf("no vector %s.http", vr.name)
			}
			parse := func(raw string) *http.Request {
				t.Helper()
				head, body, _ := strings.Cut(raw, "\n\n")
				wire := strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n" + body
				r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
				if err != nil {
					t.Fatalf("%s.http: %v", vr.name, err)
				}
				return r
			}
			r := parse(raw)
			tok := r.Header.Get(pki.HeaderHubSignature)
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatal("the signature is not a compact JWS")
			}
			// The protected header: as shown, with hub.crt as x5c.
			hdrJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
			if err != nil {
				t.Fatal(err)
			}
			var hdr struct {
				X5C []string `json:"x5c"`
			}
			json.Unmarshal(hdrJSON, &hdr)
			block, _ := pem.Decode([]byte(v["hub.crt"]))
			if len(hdr.X5C) != 1 || hdr.X5C[0] != base64.StdEncoding.EncodeToString(block.Bytes) {
				t.Error("the x5c header is not [hub.crt]")
			}
			if got := indent(t, abbreviateX5C(t, hdrJSON)); got != v[vr.name+".header"] {
				t.Errorf("protected header\n got %s\nwant %s", got, v[vr.name+".header"])
			}
			// The claims: as shown, and what VerifyHubRequest returns.
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			if got := indent(t, payload); got != v[vr.name+".claims"] {
				t.Errorf("claims\n got %s\nwant %s", got, v[vr.name+".claims"])
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			claims, err := pki.VerifyHubRequest(parse(raw), body, roots, at, 0)
			if err != nil {
				t.Fatalf("the vector does not verify: %v", err)
			}
			if claims.Operation != vr.operation || claims.SubjectKind != vr.subjectKind || claims.BodyDigest != pki.Digest([]byte(vr.body)) {
				t.Errorf("claims %+v", claims)
			}

			// Through the middleware: once, then a replay; stale later;
			// refused when tampered.
			mw := provider.New(provider.Config{Roots: roots, Now: func() time.Time { return at }, Logger: slog.New(slog.DiscardHandler)})
			h, got := wrap(mw)
			if code, reason := serve(h, parse(raw)); code != http.StatusNoContent {
				t.Fatalf("vector refused: %d %s", code, reason)
			}
			if s := got.Load(); s == nil || s.req.Operation != vr.operation || s.req.Subject != vr.subject || string(s.body) != vr.body {
				t.Errorf("facts %+v", s)
			}
			if _, reason := serve(h, parse(raw)); reason != string(provider.ReasonReplayed) {
				t.Errorf("replay: %s", reason)
			}
			late := provider.New(provider.Config{Roots: roots, Now: func() time.Time { return at.Add(2 * time.Minute) }, Logger: slog.New(slog.DiscardHandler)})
			if _, reason := serve(late.Wrap(http.NotFoundHandler()), parse(raw)); reason != string(provider.ReasonStaleSignature) {
				t.Errorf("two minutes later: %s", reason)
			}
			tampered := strings.Replace(raw, "social-aid", "marketing", 1)
			fresh := provider.New(provider.Config{Roots: roots, Now: func() time.Time { return at }, Logger: slog.New(slog.DiscardHandler)})
			if _, reason := serve(fresh.Wrap(http.NotFoundHandler()), parse(tampered)); reason != string(provider.ReasonInvalidSignature) {
				t.Errorf("tampered purpose: %s", reason)
			}
		})
	}
	// The vectors' key signs tokens that verify (for implementers who
	// want to make their own).
	s, err := pki.NewSigner(hubCert)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Header.Set(pki.HeaderExchangeID, "0193d5a8-0000-7000-8000-000000000000")
	if err := pki.SignRequest(s, r, nil, pki.RequestClaims{Service: "s", IssuedAt: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.VerifyHubRequest(r, nil, roots, at, 0); err != nil {
		t.Fatalf("a token made with hub.key: %v", err)
	}
}
