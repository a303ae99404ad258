package console_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/console/consoletest"
	"github.com/crossroads-hub/crossroads/demo"
)

// waitLogged waits until every durable record is in a published checkpoint.
func waitLogged(t *testing.T, n *consoletest.Net) {
	t.Helper()
	want := int64(n.Hub.Trail.Stats().Records)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		cp, err := n.Hub.Trail.Checkpoint(t.Context())
		if err != nil {
			continue
		}
		text, _, _ := strings.Cut(string(cp), "\n\n")
		if c, err := verify.ParseCheckpoint(text + "\n"); err == nil && c.N >= want {
			return
		}
	}
	t.Fatal("records not in a published checkpoint in time")
}

// TestCitizen: a citizen logs in through the demo's identity provider and
// sees exactly their own exchanges and files — with proofs that verify
// against the log's key — and not another citizen's.
func TestCitizen(t *testing.T) {
	n := consoletest.Start(t)
	me, other := n.People[0], n.People[1]
	if st := n.Exchange(t, demo.OCMW, demo.ServicePerson, "persons/"+me.INSZ, "social-aid", me.INSZ); st != http.StatusOK {
		t.Fatalf("exchange: %d", st)
	}
	for range 2 {
		if st := n.Exchange(t, demo.OCMW, demo.ServicePerson, "persons/"+other.INSZ, "social-aid", other.INSZ); st != http.StatusOK {
			t.Fatalf("exchange: %d", st)
		}
	}
	waitLogged(t, n)
	b := n.Browser(t, "")
	st, page := b.Login(me.INSZ)
	if st != http.StatusOK || !strings.Contains(page, `http-equiv="refresh"`) {
		t.Fatalf("login: %d %s", st, page)
	}
	st, page = b.Get("/console/me?lang=en")
	if st != http.StatusOK {
		t.Fatalf("me: %d %s", st, page)
	}
	for _, want := range []string{"OCMW Gent", "Social assistance", "CSSS/24/101", `lang="en"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the citizen's page lacks %q", want)
		}
	}
	if rows := strings.Count(page, "data-exchange="); rows != 1 || strings.Contains(page, other.INSZ) {
		t.Errorf("the citizen sees %d exchanges, not exactly their own one", rows)
	}
	// The proofs on the page verify against the log's key.
	proofs := regexp.MustCompile(`(?s)<pre class="proof" hidden>(.*?)</pre>`).FindAllStringSubmatch(page, -1)
	if len(proofs) == 0 {
		t.Fatal("no proof on the page")
	}
	v, err := note.NewVerifier(n.Hub.Trail.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range proofs {
		p, err := verify.ParseProof([]byte(htmlUnescape(m[1])))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify.CheckProof(p, v, tlog.RecordHash(p.Extra)); err != nil {
			t.Fatalf("proof on the page: %v", err)
		}
	}
	// Dutch and French.
	if _, page = b.Get("/console/me?lang=nl"); !strings.Contains(page, "Wie gebruikte mijn gegevens") || !strings.Contains(page, `lang="nl"`) {
		t.Error("no Dutch page")
	}
	req, _ := http.NewRequest(http.MethodGet, b.Base+"/console/", nil)
	req.Header.Set("Accept-Language", "fr-BE,fr;q=0.9")
	b2 := n.Browser(t, "")
	if resp, err := b2.Do(req); err == nil {
		defer resp.Body.Close()
		buf := make([]byte, 4096)
		k, _ := resp.Body.Read(buf)
		if !strings.Contains(string(buf[:k]), `lang="fr"`) {
			t.Error("Accept-Language fr did not give French")
		}
	}
	// Downloads.
	if st, body := b.Get("/console/me/data.json"); st != http.StatusOK || !strings.Contains(body, `"exchanges"`) || strings.Contains(body, other.INSZ) {
		t.Errorf("JSON download: %d", st)
	}
	if st, body := b.Get("/console/me/print"); st != http.StatusOK || !strings.Contains(body, "OCMW Gent") {
		t.Errorf("print: %d", st)
	}
	// A citizen is not an operator.
	if st, _ := b.Get("/console/ops"); st != http.StatusForbidden {
		t.Errorf("citizen on the operator's page: %d", st)
	}
	// The login is recorded.
	page2, err := n.Hub.Trail.Search(t.Context(), audit.Query{Kinds: []string{crossroads.RecordConsole}})
	if err != nil || len(page2.Records) == 0 || page2.Records[0].Action != crossroads.ConsoleLogin {
		t.Fatalf("console login not recorded: %v %+v", err, page2)
	}
	// Logout ends the session.
	_, me1 := b.Get("/console/me")
	if st, _ := b.Post("/console/logout", url.Values{"csrf": {consoletest.CSRF(me1)}}, nil); st != http.StatusOK {
		t.Fatalf("logout: %d", st)
	}
	if st, _ := b.Get("/console/me"); st != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", st)
	}
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&#43;", "+", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`)
	return r.Replace(s)
}

// TestSessionFixationAndCSRF: a session id planted before login is never
// the session's; forms without the token, with another session's, or from
// another origin are refused and change nothing.
func TestSessionFixationAndCSRF(t *testing.T) {
	n := consoletest.Start(t)
	b := n.Browser(t, "")
	u, _ := url.Parse(b.Base)
	planted := &http.Cookie{Name: "__Host-crossroads-console", Value: "attacker-chosen-id", Path: "/", Secure: true}
	b.Jar.SetCookies(u, []*http.Cookie{planted})
	if st, _ := b.Login("alice.operator"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	var got string
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == planted.Name {
			got = c.Value
		}
	}
	if got == "" || got == planted.Value {
		t.Fatalf("session id after login: %q", got)
	}
	attacker := n.Browser(t, "")
	attacker.Jar.SetCookies(u, []*http.Cookie{planted})
	if st, _ := attacker.Get("/console/ops"); st != http.StatusUnauthorized {
		t.Fatalf("planted id: %d", st)
	}
	_, ops := b.Get("/console/ops")
	token := consoletest.CSRF(ops)
	if token == "" {
		t.Fatal("no anti-forgery token on the page")
	}
	form := url.Values{"status": {"suspended"}}
	path := "/console/ops/authorisations/ocmw-social-aid/status"
	if st, _ := b.Post(path, form, nil); st != http.StatusForbidden {
		t.Errorf("form without token: %d", st)
	}
	form.Set("csrf", "another-token")
	if st, _ := b.Post(path, form, nil); st != http.StatusForbidden {
		t.Errorf("form with a wrong token: %d", st)
	}
	form.Set("csrf", token)
	if st, _ := b.Post(path, form, http.Header{"Origin": {"https://evil.example"}}); st != http.StatusForbidden {
		t.Errorf("cross-origin form: %d", st)
	}
	if st, _ := b.Post(path, form, http.Header{"Sec-Fetch-Site": {"cross-site"}}); st != http.StatusForbidden {
		t.Errorf("cross-site form: %d", st)
	}
	if a, _ := n.Hub.Directory.Authorisation("ocmw-social-aid"); a.Status != crossroads.StatusActive {
		t.Fatal("a refused form changed the registers")
	}
	// The right token plans the change (and nothing is written yet).
	if st, page := b.Post(path, form, nil); st != http.StatusOK || consoletest.Change(page) == "" {
		t.Fatalf("preview: %d", st)
	}
	if a, _ := n.Hub.Directory.Authorisation("ocmw-social-aid"); a.Status != crossroads.StatusActive {
		t.Fatal("the preview changed the registers")
	}
}

// TestOperatorChangesAuthorisation: the operator suspends an authorisation
// through the console — diff first, then confirmation — which is applied
// as the API's apply (a register-apply record of the operator), and the
// next exchange under it is denied.
func TestOperatorChangesAuthorisation(t *testing.T) {
	n := consoletest.Start(t)
	me := n.People[0]
	b := n.Browser(t, "")
	if st, _ := b.Login("alice.operator"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	st, ops := b.Get("/console/ops")
	if st != http.StatusOK || !strings.Contains(ops, "ocmw-social-aid") {
		t.Fatalf("ops: %d", st)
	}
	st, plan := b.Post("/console/ops/authorisations/ocmw-social-aid/status", url.Values{"csrf": {consoletest.CSRF(ops)}, "status": {"suspended"}}, nil)
	if st != http.StatusOK || !strings.Contains(plan, "suspended") {
		t.Fatalf("plan: %d %s", st, plan)
	}
	st, done := b.Post("/console/ops/apply", url.Values{"csrf": {consoletest.CSRF(plan)}, "change": {consoletest.Change(plan)}}, nil)
	if st != http.StatusOK || !strings.Contains(done, "applied") {
		t.Fatalf("apply: %d", st)
	}
	// A second confirmation of the same change is refused.
	if st, _ := b.Post("/console/ops/apply", url.Values{"csrf": {consoletest.CSRF(plan)}, "change": {consoletest.Change(plan)}}, nil); st != http.StatusConflict {
		t.Errorf("second confirmation: %d", st)
	}
	recs, err := n.Hub.Trail.Search(t.Context(), audit.Query{Kinds: []string{crossroads.RecordApply}})
	if err != nil || len(recs.Records) == 0 || recs.Records[0].Requester != demo.Operator || recs.Records[0].User != "alice.operator" {
		t.Fatalf("apply not recorded as the operator's: %v %+v", err, recs)
	}
	if st := n.Exchange(t, demo.OCMW, demo.ServicePerson, "persons/"+me.INSZ, "social-aid", me.INSZ); st != http.StatusForbidden {
		t.Fatalf("exchange under a suspended authorisation: %d", st)
	}
}

// TestCertificateLogin: an operator's session made with the client
// certificate is bound to it: the cookie alone opens nothing.
func TestCertificateLogin(t *testing.T) {
	n := consoletest.Start(t)
	b := n.Browser(t, demo.Operator)
	if st, _ := b.Get("/console/login/certificate"); st != http.StatusOK {
		t.Fatalf("certificate login: %d", st)
	}
	if st, _ := b.Get("/console/ops"); st != http.StatusOK {
		t.Fatalf("ops: %d", st)
	}
	u, _ := url.Parse(b.Base)
	thief := n.Browser(t, "")
	thief.Jar.SetCookies(u, b.Jar.Cookies(u))
	if st, _ := thief.Get("/console/ops"); st != http.StatusUnauthorized {
		t.Fatalf("the cookie without the certificate: %d", st)
	}
	// An institution's certificate opens no console session.
	if st, _ := n.Browser(t, demo.OCMW).Get("/console/login/certificate"); st != http.StatusForbidden {
		t.Fatalf("institution's certificate: %d", st)
	}
}

// TestAuditorAndGDPR: the auditor searches the trail (recorded as the
// API's search), exports CSV, and reads the GDPR records.
func TestAuditorAndGDPR(t *testing.T) {
	n := consoletest.Start(t)
	me := n.People[0]
	n.Exchange(t, demo.OCMW, demo.ServicePerson, "persons/"+me.INSZ, "social-aid", me.INSZ)
	waitLogged(t, n)
	b := n.Browser(t, "")
	if st, _ := b.Login("bob.auditor"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	st, page := b.Get("/console/audit?search=1&participant=ocmw-gent&subject=" + me.INSZ)
	if st != http.StatusOK || !strings.Contains(page, "person-identity") || !strings.Contains(page, `class="proof"`) {
		t.Fatalf("search: %d %s", st, page)
	}
	recs, _ := n.Hub.Trail.Search(t.Context(), audit.Query{Kinds: []string{crossroads.RecordAuditSearch}})
	if len(recs.Records) == 0 || recs.Records[0].Requester != demo.Auditor {
		t.Fatal("the console's search is not recorded as the auditor's")
	}
	st, csv := b.Get("/console/audit/records.csv?participant=ocmw-gent")
	if st != http.StatusOK || !strings.HasPrefix(csv, "time,kind,action") || !strings.Contains(csv, "person-identity") {
		t.Fatalf("csv: %d %s", st, csv)
	}
	if st, _ := b.Get("/console/ops"); st != http.StatusForbidden {
		t.Errorf("auditor on the operator's page: %d", st)
	}
	st, g := b.Get("/console/gdpr?incident=2026-01-10T08:00")
	if st != http.StatusOK || !strings.Contains(g, "DPIA required") || !strings.Contains(g, "2026-01-13 08:00") || !strings.Contains(g, "OCMW Gent") {
		t.Fatalf("gdpr: %d", st)
	}
	if st, body := b.Get("/console/gdpr/art30.csv"); st != http.StatusOK || !strings.Contains(body, "ocmw-social-aid") {
		t.Fatalf("art30 csv: %d", st)
	}
	if st, body := b.Get("/console/gdpr/dpia.csv"); st != http.StatusOK || !strings.Contains(body, "dpiaRequired") {
		t.Fatalf("dpia csv: %d", st)
	}
}

// TestSecurityHeaders: a strict CSP without inline script or style, and
// no caching of pages.
func TestSecurityHeaders(t *testing.T) {
	n := consoletest.Start(t)
	resp, err := n.Browser(t, "").Client.Get(n.ConsoleURL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP: %q", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers: %v", resp.Header)
	}
}

// TestTemplatesHaveNoInlineScriptOrStyle keeps the CSP honest.
func TestTemplatesHaveNoInlineScriptOrStyle(t *testing.T) {
	files, _ := os.ReadDir("templates")
	for _, f := range files {
		b, _ := os.ReadFile("templates/" + f.Name())
		s := string(b)
		if regexp.MustCompile(`<script>|<style|style="|\son[a-z]+="`).MatchString(s) {
			t.Errorf("%s has inline script or style", f.Name())
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestOperatorCertificates: issuing from a CSR and revoking through the
// console are the API's acts (certificate issue and revoke records of the
// operator), and a revoked certificate's participant is refused.
func TestOperatorCertificates(t *testing.T) {
	n := consoletest.Start(t)
	b := n.Browser(t, "")
	if st, _ := b.Login("alice.operator"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: demo.ONEM}}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	_, ops := b.Get("/console/ops")
	st, crt := b.Post("/console/ops/certificates", url.Values{"csrf": {consoletest.CSRF(ops)}, "participant": {demo.ONEM}, "csr": {csr}, "validityDays": {"30"}}, nil)
	if st != http.StatusOK || !strings.Contains(crt, "BEGIN CERTIFICATE") {
		t.Fatalf("issue: %d %s", st, crt)
	}
	blk, _ := pem.Decode([]byte(crt))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	serial := cert.SerialNumber.Text(16)
	st, page := b.Post("/console/ops/certificates/"+serial+"/revoke", url.Values{"csrf": {consoletest.CSRF(ops)}, "reason": {"test"}}, nil)
	if st != http.StatusOK || !strings.Contains(page, "revoked") {
		t.Fatalf("revoke: %d", st)
	}
	recs, err := n.Hub.Trail.Search(t.Context(), audit.Query{Kinds: []string{crossroads.RecordCertificate}})
	if err != nil {
		t.Fatal(err)
	}
	acts := map[string]bool{}
	for _, r := range recs.Records {
		if r.Requester == demo.Operator && r.User == "alice.operator" {
			acts[r.Action] = true
		}
	}
	if !acts["issue"] || !acts["revoke"] {
		t.Fatalf("certificate acts recorded as the operator's: %v", acts)
	}
	// A bad CSR is the API's refusal, shown on the page.
	if st, _ := b.Post("/console/ops/certificates", url.Values{"csrf": {consoletest.CSRF(ops)}, "participant": {demo.ONEM}, "csr": {"junk"}}, nil); st != http.StatusUnprocessableEntity && st != http.StatusBadRequest {
		t.Fatalf("bad CSR: %d", st)
	}
	// The logout is recorded too.
	b.Post("/console/logout", url.Values{"csrf": {consoletest.CSRF(ops)}}, nil)
	recs, _ = n.Hub.Trail.Search(t.Context(), audit.Query{Kinds: []string{crossroads.RecordConsole}})
	if len(recs.Records) == 0 || recs.Records[0].Action != crossroads.ConsoleLogout {
		t.Fatal("logout not recorded")
	}
}

// TestNoCertificateRequestOnConsoleName: on the console's name the hub
// asks for no client certificate (a browser would show a picker); on its
// other names it still does.
func TestNoCertificateRequestOnConsoleName(t *testing.T) {
	n := consoletest.Start(t)
	asked := func(base string) bool {
		u := mustURL(base)
		requested := false
		conn, err := tls.Dial("tcp", "127.0.0.1:"+u.Port(), &tls.Config{ServerName: u.Hostname(), RootCAs: n.Roots, MinVersion: tls.VersionTLS13,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				requested = true
				return &tls.Certificate{}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		return requested
	}
	if asked(n.ConsoleURL) {
		t.Error("a client certificate is asked for on the console's name")
	}
	if !asked(n.Base) {
		t.Error("no client certificate asked for on the hub's address")
	}
}
