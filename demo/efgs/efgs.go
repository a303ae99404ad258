// Package efgs is the federation-gateway demo ('crossroads demo --profile
// efgs'): the hub as an EFGS-compatible gateway for three member states,
// with their certificates (authentication, signing, callback) signed by a
// trust anchor, and a scenario of uploads, downloads, a rejected batch, a
// callback and an off-boarded member — all through real mTLS.
package efgs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/efgs"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
)

// Countries are the demo's member states.
var Countries = []string{"DE", "FR", "NL"}

// Participant is the national backend participant id of a country.
func Participant(country string) string { return "nb-" + strings.ToLower(country) }

// Member is a member state's national backend as the demo runs it.
type Member struct {
	Country     string
	Client      *http.Client    // mTLS with its AUTHENTICATION certificate
	TLS         tls.Certificate // that certificate and its key
	Signing     *x509.Certificate
	SigningKey  crypto.Signer
	CallbackURL string
	Callbacks   chan url // announcements its callback server received
}

type url = string

// Gateway is a running demo gateway.
type Gateway struct {
	*demo.Running
	Base    string // the gateway's base URL (hub base + /efgs)
	Members map[string]*Member
	Dir     string
	closers []func()
}

// Close stops the callback servers and the hub.
func (g *Gateway) Close() {
	for _, c := range g.closers {
		c()
	}
	g.Running.Close()
}

// Start starts the hub with the gateway, on-boards the member states
// (network file, certificates) and writes their files to o.Dir/efgs.
func Start(ctx context.Context, o demo.Options, ln net.Listener) (*Gateway, <-chan error, error) {
	return StartWith(ctx, o, ln, Countries)
}

// EU27 are the member states of the load test.
var EU27 = []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL",
	"PL", "PT", "RO", "SK", "SI", "ES", "SE"}

// StartWith is Start with the given member states.
func StartWith(ctx context.Context, o demo.Options, ln net.Listener, countries []string) (*Gateway, <-chan error, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "crossroads-efgs-")
		if err != nil {
			return nil, nil, err
		}
		dir = d
		o.Dir = d
	}
	edir := filepath.Join(dir, "efgs")
	if err := os.MkdirAll(edir, 0o700); err != nil {
		return nil, nil, err
	}
	// The trust anchor signs every member certificate, as the reference's
	// operators do; the gateway checks its signature at each use.
	taKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ta, err := selfSigned(taKey, "EFGS demo trust anchor", "EU", true)
	if err != nil {
		return nil, nil, err
	}
	taFile := filepath.Join(edir, "trust-anchor.crt")
	if err := writePEM(taFile, "CERTIFICATE", ta.Raw, 0o644); err != nil {
		return nil, nil, err
	}
	configure := o.Configure
	o.Configure = func(c *hub.Config) {
		if configure != nil {
			configure(c)
		}
		c.EFGS.TrustAnchorFile = taFile
		c.EFGS.AllowPrivateCallbacks = true // the demo's callback servers are on localhost
		c.EFGS.CallbackInterval = 200 * time.Millisecond
		c.EFGS.RetryWait = time.Second
	}
	r, errc, err := demo.Start(ctx, o, ln)
	if err != nil {
		return nil, nil, err
	}
	g := &Gateway{Running: r, Base: r.Base + hub.DefaultEFGSPrefix, Members: map[string]*Member{}, Dir: edir}
	ok := false
	defer func() {
		if !ok {
			g.Close()
		}
	}()
	// On-boarding, step 1: the national backends in the network file.
	var nw strings.Builder
	nw.WriteString("# Federation gateway members: national backends with their country.\n# Off-board one by setting its status to suspended and applying again.\nparticipants:\n")
	for _, c := range countries {
		fmt.Fprintf(&nw, "  - id: %s\n    name: National backend %s\n    kind: national-backend\n    status: active\n    country: %s\n", Participant(c), c, c)
	}
	netFile := filepath.Join(edir, "network.yaml")
	if err := os.WriteFile(netFile, []byte(nw.String()), 0o644); err != nil {
		return nil, nil, err
	}
	if err := g.applyNetwork(ctx, nw.String()); err != nil {
		return nil, nil, fmt.Errorf("apply the members' network file: %w", err)
	}
	// Step 2: their certificates, signed by the trust anchor.
	var members efgs.MemberFile
	for _, c := range countries {
		m, entry, err := g.member(ctx, c, edir, ta, taKey)
		if err != nil {
			return nil, nil, fmt.Errorf("member %s: %w", c, err)
		}
		g.Members[c] = m
		members.Federation.Members = append(members.Federation.Members, entry)
	}
	body, _ := json.MarshalIndent(members, "", "  ")
	if err := os.WriteFile(filepath.Join(edir, "members.json"), body, 0o644); err != nil {
		return nil, nil, err
	}
	if status, b, err := g.call(ctx, g.Running.Clients.Client(demo.Operator), http.MethodPost, g.Base+"/admin/members",
		map[string]string{"Content-Type": "application/json"}, body); err != nil || status != http.StatusOK {
		return nil, nil, fmt.Errorf("register member certificates: %d %s %v", status, b, err)
	}
	ok = true
	return g, errc, nil
}

func (g *Gateway) applyNetwork(ctx context.Context, yaml string) error {
	status, b, err := g.call(ctx, g.Running.Clients.Client(demo.Operator), http.MethodPost, g.Running.Base+"/v1/admin/apply",
		map[string]string{"Content-Type": "application/yaml"}, []byte(yaml))
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("apply: %d %s", status, b)
	}
	return nil
}

// member issues a country's certificates, starts its callback server and
// writes its files.
func (g *Gateway) member(ctx context.Context, c, dir string, ta *x509.Certificate, taKey *ecdsa.PrivateKey) (*Member, efgs.MemberEntry, error) {
	entry := efgs.MemberEntry{Country: c}
	cdir := filepath.Join(dir, strings.ToLower(c))
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return nil, entry, err
	}
	h := g.Running.Hub
	// AUTHENTICATION: the TLS client certificate, from the network CA.
	certPEM, keyPEM, rec, err := h.CA.Issue(pki.IssueRequest{Participant: Participant(c)})
	if err != nil {
		return nil, entry, err
	}
	if err := h.Registers.RecordCertificate(ctx, rec); err != nil {
		return nil, entry, err
	}
	pair, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, entry, err
	}
	if err := os.WriteFile(filepath.Join(cdir, "authentication.crt"), certPEM, 0o644); err != nil {
		return nil, entry, err
	}
	if err := os.WriteFile(filepath.Join(cdir, "authentication.key"), keyPEM, 0o600); err != nil {
		return nil, entry, err
	}
	m := &Member{Country: c, TLS: pair, Callbacks: make(chan url, 16)}
	m.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: h.CA.Pool(), Certificates: []tls.Certificate{pair}}}}
	// SIGNING: the country's own key and certificate.
	sk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if m.Signing, err = selfSigned(sk, "EFGS signing "+c, c, false); err != nil {
		return nil, entry, err
	}
	m.SigningKey = sk
	if err := writeCert(cdir, "signing", m.Signing, sk); err != nil {
		return nil, entry, err
	}
	// CALLBACK: the server certificate of its callback endpoint, which
	// accepts only the hub (network CA client certificates).
	cbKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cbCert, err := selfSigned(cbKey, "callback "+c, c, false, "127.0.0.1")
	if err != nil {
		return nil, entry, err
	}
	if err := writeCert(cdir, "callback", cbCert, cbKey); err != nil {
		return nil, entry, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, entry, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case m.Callbacks <- r.URL.RawQuery:
		default:
		}
	}), TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{cbCert.Raw}, PrivateKey: cbKey}},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: h.CA.Pool()}}
	go srv.ServeTLS(ln, "", "")
	g.closers = append(g.closers, func() { srv.Close() })
	m.CallbackURL = "https://" + ln.Addr().String() + "/efgs-callback"
	for _, x := range []struct {
		typ, host string
		der       []byte
	}{{"AUTHENTICATION", "", pair.Certificate[0]}, {"SIGNING", "", m.Signing.Raw}, {"CALLBACK", "127.0.0.1", cbCert.Raw}} {
		sum := sha256.Sum256(x.der)
		sig, err := ecdsa.SignASN1(rand.Reader, taKey, sum[:])
		if err != nil {
			return nil, entry, err
		}
		entry.Certificates = append(entry.Certificates, efgs.CertificateSpec{Type: x.typ, Host: x.host,
			PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.der})), Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	return m, entry, nil
}

func (g *Gateway) call(ctx context.Context, cl *http.Client, method, target string, hdr map[string]string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp.StatusCode, b, nil
}

// Keys makes n fresh keys of a country, visiting the others.
func Keys(country string, n int, now time.Time) []efgs.DiagnosisKey {
	keys := make([]efgs.DiagnosisKey, n)
	for i := range keys {
		data := make([]byte, 16)
		rand.Read(data)
		var visited []string
		for _, c := range Countries {
			if c != country {
				visited = append(visited, c)
			}
		}
		keys[i] = efgs.DiagnosisKey{KeyData: data, RollingStartIntervalNumber: uint32(now.Add(-24*time.Hour).Unix()/600) + uint32(i%144),
			RollingPeriod: 144, TransmissionRiskLevel: int32(i % 8), VisitedCountries: visited, Origin: country,
			ReportType: efgs.ReportConfirmedTest, DaysSinceOnsetOfSymptoms: int32(i%10) - 2}
	}
	return keys
}

// Sign is the batchSignature of keys by the member's SIGNING certificate.
func (m *Member) Sign(keys []efgs.DiagnosisKey) (string, error) {
	sd, err := pkcs7.NewSignedData(efgs.BatchBytesToVerify(&efgs.DiagnosisKeyBatch{Keys: keys}))
	if err != nil {
		return "", err
	}
	if err := sd.AddSigner(m.Signing, m.SigningKey, pkcs7.SignerInfoConfig{}); err != nil {
		return "", err
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// Upload posts a signed batch as protobuf and returns the status.
func (g *Gateway) Upload(ctx context.Context, m *Member, tag string, keys []efgs.DiagnosisKey, sig string) (int, []byte, error) {
	if sig == "" {
		var err error
		if sig, err = m.Sign(keys); err != nil {
			return 0, nil, err
		}
	}
	return g.call(ctx, m.Client, http.MethodPost, g.Base+"/diagnosiskeys/upload", map[string]string{"batchTag": tag, "batchSignature": sig,
		"Content-Type": efgs.MediaProtobuf}, (&efgs.DiagnosisKeyBatch{Keys: keys}).MarshalProto())
}

// DownloadDay walks a day's batches by nextBatchTag, as national clients
// do, and returns the keys and the tags seen.
func (g *Gateway) DownloadDay(ctx context.Context, m *Member, day string) ([]efgs.DiagnosisKey, []string, int, error) {
	keys, tags, _, st, err := g.downloadDay(ctx, m, day)
	return keys, tags, st, err
}

func (g *Gateway) downloadDay(ctx context.Context, m *Member, day string) ([]efgs.DiagnosisKey, []string, map[string][]efgs.DiagnosisKey, int, error) {
	var (
		keys    []efgs.DiagnosisKey
		tags    []string
		next    string
		byBatch = map[string][]efgs.DiagnosisKey{}
	)
	for range 10000 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.Base+"/diagnosiskeys/download/"+day, nil)
		req.Header.Set("Accept", efgs.MediaProtobuf)
		if next != "" {
			req.Header.Set("batchTag", next)
		}
		resp, err := m.Client.Do(req)
		if err != nil {
			return nil, nil, nil, 0, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return keys, tags, byBatch, resp.StatusCode, nil
		}
		bt, err := efgs.UnmarshalBatch(b, 0)
		if err != nil {
			return nil, nil, nil, 0, err
		}
		keys = append(keys, bt.Keys...)
		tag := resp.Header.Get("batchTag")
		tags = append(tags, tag)
		byBatch[tag] = bt.Keys
		if next = resp.Header.Get("nextBatchTag"); next == "null" {
			return keys, tags, byBatch, http.StatusOK, nil
		}
	}
	return nil, nil, nil, 0, errors.New("no end to the day's batches")
}

// Step is one scenario step's result.
type Step struct {
	Name   string
	As     string
	Status int
	OK     bool
	Note   string
}

// Scenario runs the demo's steps.
func (g *Gateway) Scenario(ctx context.Context) []Step {
	var out []Step
	step := func(name, as string, status int, ok bool, note string, args ...any) {
		out = append(out, Step{Name: name, As: as, Status: status, OK: ok, Note: fmt.Sprintf(note, args...)})
	}
	now := time.Now().UTC()
	day := now.Format(time.DateOnly)
	de, fr, nl := g.Members["DE"], g.Members["FR"], g.Members["NL"]
	run := fmt.Sprint(now.UnixNano())

	st, b, err := g.call(ctx, nl.Client, http.MethodPut, g.Base+"/diagnosiskeys/callback/nl-main?url="+urlQuery(nl.CallbackURL), nil, nil)
	step("NL subscribes a callback", "NL", st, err == nil && st == http.StatusOK, "%s", b)

	deKeys, frKeys := Keys("DE", 50, now), Keys("FR", 30, now)
	st, b, err = g.Upload(ctx, de, "de-"+run, deKeys, "")
	step("DE uploads 50 signed keys", "DE", st, err == nil && st == http.StatusCreated, "%s%v", b, errOrNil(err))
	st, b, err = g.Upload(ctx, fr, "fr-"+run, frKeys, "")
	step("FR uploads 30 signed keys", "FR", st, err == nil && st == http.StatusCreated, "%s%v", b, errOrNil(err))

	st, _, err = g.Upload(ctx, de, "de-"+run, Keys("DE", 1, now), "")
	step("DE re-uses its batch tag", "DE", st, err == nil && st == http.StatusConflict, "duplicate tag refused")
	forged, _ := de.Sign(deKeys)
	st, _, err = g.Upload(ctx, fr, "fr-forged-"+run, Keys("FR", 5, now), forged)
	step("FR uploads a batch with a wrong signature", "FR", st, err == nil && st == http.StatusBadRequest, "rejected, nothing stored")
	st, _, err = g.Upload(ctx, de, "de-fr-"+run, Keys("FR", 5, now), "")
	step("DE uploads keys of FR's origin", "DE", st, err == nil && st == http.StatusBadRequest, "origin must be the uploader's country")

	keys, tags, byBatch, st, err := g.downloadDay(ctx, nl, day)
	own := 0
	for _, k := range keys {
		if k.Origin == "NL" {
			own++
		}
	}
	step("NL downloads the day's batches", "NL", st, err == nil && st == http.StatusOK && len(keys) >= 80 && own == 0,
		"%d keys in batches %s (own excluded)", len(keys), strings.Join(tags, ", "))

	select {
	case q := <-nl.Callbacks:
		step("NL's callback is called (mTLS)", "hub", http.StatusOK, strings.Contains(q, "batchTag="), "%s", q)
	case <-time.After(30 * time.Second):
		step("NL's callback is called (mTLS)", "hub", 0, false, "no callback within 30 s")
	}

	if len(tags) > 0 {
		st, b, err := g.call(ctx, nl.Client, http.MethodGet, g.Base+"/diagnosiskeys/audit/download/"+day+"/"+tags[len(tags)-1], nil, nil)
		var entries []efgs.AuditEntry
		json.Unmarshal(b, &entries)
		verified := false
		if len(entries) == 1 {
			// The receiver checks the batch it downloaded against the
			// uploader's signature.
			if p7, _, err := efgs.ParseSignature(entries[0].BatchSignature); err == nil {
				verified = efgs.VerifyDetached(p7, efgs.BatchBytesToVerify(&efgs.DiagnosisKeyBatch{Keys: byBatch[tags[len(tags)-1]]})) == nil
			}
		}
		step("NL verifies the last batch's signature (audit download)", "NL", st, err == nil && st == http.StatusOK && verified, "%d audit entries, signed by %s", len(entries), first(entries))
	}

	// Off-boarding FR through the network file: refused at once.
	if err := g.applyNetwork(ctx, "participants:\n  - id: nb-fr\n    name: National backend FR\n    kind: national-backend\n    status: suspended\n    country: FR\n"); err != nil {
		step("FR is off-boarded (network.yaml)", "ops", 0, false, "%v", err)
	} else {
		step("FR is off-boarded (network.yaml)", "ops", http.StatusOK, true, "status suspended")
	}
	_, _, st, err = g.DownloadDay(ctx, fr, day)
	step("FR tries to download", "FR", st, err == nil && st == http.StatusForbidden, "an off-boarded member is refused")
	return out
}

func first(es []efgs.AuditEntry) string {
	if len(es) == 0 {
		return "-"
	}
	return es[0].Country + " " + es[0].UploaderSigningThumbprint[:12] + "…"
}

func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	return " " + err.Error()
}

func urlQuery(s string) string {
	return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(s)
}

// Print writes the steps as a table and reports whether all behaved.
func Print(w io.Writer, steps []Step) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTEP\tCALLER\tSTATUS\tRESULT\tDETAIL")
	all := true
	for i, s := range steps {
		verdict := "ok"
		if !s.OK {
			verdict, all = "FAIL", false
		}
		note := s.Note
		if len(note) > 90 {
			note = note[:87] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", i+1, s.Name, s.As, s.Status, verdict, note)
	}
	tw.Flush()
	return all
}

// Run is 'crossroads demo --profile efgs'.
func Run(ctx context.Context, o demo.Options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8443"
	}
	if o.People == 0 {
		o.People = 20
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another with --listen)", o.Listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, errc, err := Start(ctx, o, ln)
	if err != nil {
		ln.Close()
		return err
	}
	defer g.Close()
	fmt.Fprintf(o.Out, "Crossroads federation gateway (EFGS profile): %s, member files in %s\n\n", g.Base, g.Dir)
	ok := Print(o.Out, g.Scenario(ctx))
	fmt.Fprintln(o.Out)
	if !ok {
		cancel()
		<-errc
		return errors.New("the federation scenario did not behave as expected")
	}
	fmt.Fprintln(o.Out, "All steps behaved as expected: every upload, download and callback was authenticated, verified and audited.")
	if o.ScenarioOnly {
		cancel()
		return <-errc
	}
	fmt.Fprintf(o.Out, `
The gateway stays up until Ctrl-C. Try it as DE's national backend:

  curl --cacert %[1]s/../ca.crt --cert %[1]s/de/authentication.crt --key %[1]s/de/authentication.key \
       -H 'Accept: application/json; version=1.0' %[2]s/diagnosiskeys/download/%[3]s

Member certificates: %[1]s/<country>/{authentication,signing,callback}.{crt,key};
trust anchor %[1]s/trust-anchor.crt; network file %[1]s/network.yaml; members %[1]s/members.json.
`, g.Dir, g.Base, time.Now().UTC().Format(time.DateOnly))
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	return nil
}

func selfSigned(key crypto.Signer, cn, country string, ca bool, hosts ...string) (*x509.Certificate, error) {
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: cn, Country: []string{country}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: ca, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func writeCert(dir, name string, c *x509.Certificate, key *ecdsa.PrivateKey) error {
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", c.Raw, 0o644); err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".key"), "PRIVATE KEY", der, 0o600)
}

func writePEM(file, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
