package efgs_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/smallstep/pkcs7"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/efgs"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// The tests encode batches with the protobuf library's dynamic messages
// over a descriptor of the reference's Efgs.proto (not with the gateway's
// hand encoder), compute the signed bytes with their own code, and sign
// with the CMS library: nothing of the server's code path.

var batchDesc, keyDesc = func() (protoreflect.MessageDescriptor, protoreflect.MessageDescriptor) {
	s := proto.String
	i := proto.Int32
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: s(name), Number: i(n), Type: typ.Enum(), Label: label, JsonName: s(name)}
		if typeName != "" {
			f.TypeName = s(typeName)
		}
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name: s("Efgs.proto"), Package: s("eu.interop"), Syntax: s("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: s("DiagnosisKeyBatch"), Field: []*descriptorpb.FieldDescriptorProto{
				field("keys", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, rep, ".eu.interop.DiagnosisKey")}},
			{Name: s("DiagnosisKey"), Field: []*descriptorpb.FieldDescriptorProto{
				field("keyData", 1, descriptorpb.FieldDescriptorProto_TYPE_BYTES, opt, ""),
				field("rollingStartIntervalNumber", 2, descriptorpb.FieldDescriptorProto_TYPE_UINT32, opt, ""),
				field("rollingPeriod", 3, descriptorpb.FieldDescriptorProto_TYPE_UINT32, opt, ""),
				field("transmissionRiskLevel", 4, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
				field("visitedCountries", 5, descriptorpb.FieldDescriptorProto_TYPE_STRING, rep, ""),
				field("origin", 6, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
				field("reportType", 7, descriptorpb.FieldDescriptorProto_TYPE_ENUM, opt, ".eu.interop.ReportType"),
				field("days_since_onset_of_symptoms", 8, descriptorpb.FieldDescriptorProto_TYPE_SINT32, opt, ""),
			}},
		},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: s("ReportType"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: s("UNKNOWN"), Number: i(0)}, {Name: s("CONFIRMED_TEST"), Number: i(1)}, {Name: s("CONFIRMED_CLINICAL_DIAGNOSIS"), Number: i(2)},
			{Name: s("SELF_REPORT"), Number: i(3)}, {Name: s("RECURSIVE"), Number: i(4)}, {Name: s("REVOKED"), Number: i(5)}}}},
	}
	f, err := protodesc.NewFile(fd, nil)
	if err != nil {
		panic(err)
	}
	return f.Messages().ByName("DiagnosisKeyBatch"), f.Messages().ByName("DiagnosisKey")
}()

// tkey is a key as the tests build it.
type tkey struct {
	data    []byte
	start   uint32
	period  uint32
	risk    int32
	visited []string
	origin  string
	report  int32
	dsos    int32
}

func dynBatch(keys []tkey) *dynamicpb.Message {
	m := dynamicpb.NewMessage(batchDesc)
	list := m.Mutable(batchDesc.Fields().ByName("keys")).List()
	f := keyDesc.Fields()
	for _, k := range keys {
		km := dynamicpb.NewMessage(keyDesc)
		km.Set(f.ByName("keyData"), protoreflect.ValueOfBytes(k.data))
		km.Set(f.ByName("rollingStartIntervalNumber"), protoreflect.ValueOfUint32(k.start))
		km.Set(f.ByName("rollingPeriod"), protoreflect.ValueOfUint32(k.period))
		km.Set(f.ByName("transmissionRiskLevel"), protoreflect.ValueOfInt32(k.risk))
		vc := km.Mutable(f.ByName("visitedCountries")).List()
		for _, c := range k.visited {
			vc.Append(protoreflect.ValueOfString(c))
		}
		km.Set(f.ByName("origin"), protoreflect.ValueOfString(k.origin))
		km.Set(f.ByName("reportType"), protoreflect.ValueOfEnum(protoreflect.EnumNumber(k.report)))
		km.Set(f.ByName("days_since_onset_of_symptoms"), protoreflect.ValueOfInt32(k.dsos))
		list.Append(protoreflect.ValueOfMessage(km))
	}
	return m
}

func encodeProto(t testing.TB, keys []tkey) []byte {
	b, err := proto.Marshal(dynBatch(keys))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeJSON(t testing.TB, keys []tkey) []byte {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(dynBatch(keys))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeProto decodes a download with the protobuf library.
func decodeProto(t testing.TB, b []byte) []tkey {
	m := dynamicpb.NewMessage(batchDesc)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("download does not decode: %v", err)
	}
	return fromDyn(m)
}

func decodeJSON(t testing.TB, b []byte) []tkey {
	m := dynamicpb.NewMessage(batchDesc)
	if err := protojson.Unmarshal(b, m); err != nil {
		t.Fatalf("JSON download does not decode: %v: %s", err, b)
	}
	return fromDyn(m)
}

func fromDyn(m *dynamicpb.Message) []tkey {
	var out []tkey
	list := m.Get(batchDesc.Fields().ByName("keys")).List()
	f := keyDesc.Fields()
	for i := 0; i < list.Len(); i++ {
		km := list.Get(i).Message()
		k := tkey{data: km.Get(f.ByName("keyData")).Bytes(), start: uint32(km.Get(f.ByName("rollingStartIntervalNumber")).Uint()),
			period: uint32(km.Get(f.ByName("rollingPeriod")).Uint()), risk: int32(km.Get(f.ByName("transmissionRiskLevel")).Int()),
			origin: km.Get(f.ByName("origin")).String(), report: int32(km.Get(f.ByName("reportType")).Enum()),
			dsos: int32(km.Get(f.ByName("days_since_onset_of_symptoms")).Int())}
		vc := km.Get(f.ByName("visitedCountries")).List()
		for j := 0; j < vc.Len(); j++ {
			k.visited = append(k.visited, vc.Get(j).String())
		}
		out = append(out, k)
	}
	return out
}

// signedBytes is the test's own rendering of the layout the signature
// covers (docs/efgs.md): per key the base64 of each field followed by '.',
// keys sorted by the base64 of their string, concatenated.
func signedBytes(keys []tkey) []byte {
	b64 := base64.StdEncoding.EncodeToString
	be := func(v uint32) string { return b64(binary.BigEndian.AppendUint32(nil, v)) }
	var strs []string
	for _, k := range keys {
		s := strings.Join([]string{b64(k.data), be(k.start), be(k.period), be(uint32(k.risk)), b64([]byte(strings.Join(k.visited, ","))),
			b64([]byte(k.origin)), be(uint32(k.report)), be(uint32(k.dsos))}, ".") + "."
		strs = append(strs, s)
	}
	sort.Slice(strs, func(i, j int) bool { return b64([]byte(strs[i])) < b64([]byte(strs[j])) })
	return []byte(strings.Join(strs, ""))
}

// signer is a signing certificate and its key.
type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var (
	keyMu    sync.Mutex
	rsaCache *rsa.PrivateKey
)

// rsaKey is one 2048-bit key shared by the tests (generation is slow).
func rsaKey() *rsa.PrivateKey {
	keyMu.Lock()
	defer keyMu.Unlock()
	if rsaCache == nil {
		var err error
		if rsaCache, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	return rsaCache
}

var serial int64 = 1000

func newCert(t testing.TB, key crypto.Signer, cn, country string, hosts ...string) *x509.Certificate {
	t.Helper()
	keyMu.Lock()
	serial++
	sn := serial
	keyMu.Unlock()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: cn, Country: []string{country}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: hosts,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	for _, h := range hosts {
		if ip := netIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func newSigner(t testing.TB, kind, country string) signer {
	var key crypto.Signer = rsaKey()
	if kind == "ecdsa" {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return signer{newCert(t, key, "signing "+country, country), key}
}

// sign makes the batchSignature header: base64 of a detached CMS
// SignedData over content, with digest (default SHA-256).
func (s signer) sign(t testing.TB, content []byte, digest asn1.ObjectIdentifier) string {
	t.Helper()
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	if digest != nil {
		sd.SetDigestAlgorithm(digest)
	}
	if err := sd.AddSigner(s.cert, s.key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func thumb(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// fakeAudit keeps records in memory; fail makes commits fail.
type fakeAudit struct {
	mu   sync.Mutex
	recs []crossroads.AuditRecord
	fail bool
}

func (a *fakeAudit) Commit(_ context.Context, rec *crossroads.AuditRecord) (crossroads.Receipt, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return crossroads.Receipt{}, errors.New("audit down")
	}
	a.recs = append(a.recs, *rec)
	return crossroads.Receipt{ExchangeID: rec.ExchangeID}, nil
}

func (a *fakeAudit) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		out = append(out, r.Action+":"+r.Outcome)
	}
	return out
}

func (a *fakeAudit) last() crossroads.AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recs[len(a.recs)-1]
}

// country is a member state of the test federation.
type country struct {
	code string
	p    *crossroads.Participant
	auth *x509.Certificate
	sig  signer
}

// env is a gateway on a real SQLite store with three member states.
type env struct {
	t         *testing.T
	g         *efgs.Gateway
	store     *sqlite.EFGS
	audit     *fakeAudit
	reg       *prometheus.Registry
	mux       *http.ServeMux
	members   map[string]*country
	now       time.Time
	proxyID   string
	countries []string
}

func newEnv(t *testing.T, mutate ...func(*efgs.Config)) *env {
	t.Helper()
	st, err := sqlite.OpenEFGS(context.Background(), filepath.Join(t.TempDir(), sqlite.EFGSFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, store: st, audit: &fakeAudit{}, reg: prometheus.NewRegistry(), members: map[string]*country{},
		now: time.Now().UTC(), proxyID: "lb"}
	for i, code := range []string{"DE", "FR", "NL"} {
		kind := "rsa"
		if i == 1 {
			kind = "ecdsa"
		}
		c := &country{code: code, p: &crossroads.Participant{ID: "nb-" + strings.ToLower(code), Kind: crossroads.KindNationalBackend, Status: crossroads.StatusActive, Country: code},
			auth: newCert(t, rsaKey(), "auth "+code, code), sig: newSigner(t, kind, code)}
		e.members[code] = c
		e.countries = append(e.countries, code)
		for _, reg := range []crossroads.EFGSCertificate{
			{Thumbprint: thumb(c.auth), Country: code, Type: crossroads.EFGSCertAuthentication, PEM: pemOf(c.auth), Signature: "dGE="},
			{Thumbprint: thumb(c.sig.cert), Country: code, Type: crossroads.EFGSCertSigning, PEM: pemOf(c.sig.cert), Signature: "dGE="},
		} {
			if err := st.PutCertificate(context.Background(), reg); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := efgs.Config{Store: st, Audit: e.audit, Registerer: e.reg, Now: func() time.Time { return e.now },
		Member: func(code string) (*crossroads.Participant, bool) {
			if c, ok := e.members[code]; ok {
				return c.p, true
			}
			return nil, false
		}, TrustedProxies: []string{e.proxyID}}
	for _, m := range mutate {
		m(&cfg)
	}
	if e.g, err = efgs.New(cfg); err != nil {
		t.Fatal(err)
	}
	e.mux = http.NewServeMux()
	for pattern, h := range map[string]http.HandlerFunc{
		"POST /diagnosiskeys/upload":                          e.g.Upload,
		"GET /diagnosiskeys/download/{date}":                  e.g.Download,
		"GET /diagnosiskeys/audit/download/{date}/{batchTag}": e.g.AuditDownload,
		"GET /diagnosiskeys/callback":                         e.g.ListCallbacks,
		"PUT /diagnosiskeys/callback/{id}":                    e.g.PutCallback,
		"DELETE /diagnosiskeys/callback/{id}":                 e.g.DeleteCallback,
		"POST /admin/members":                                 e.g.AdminMembers,
		"POST /admin/members/{country}/offboard":              e.g.AdminOffboard,
		"POST /admin/certificates/{thumbprint}/revoke":        e.g.AdminRevoke,
	} {
		e.mux.Handle(pattern, h)
	}
	return e
}

// req is a request as the hub's guard hands it on: the participant of the
// connection in the context, its certificate in r.TLS.
func (e *env) req(code, method, target string, hdr map[string]string, body []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, bytes.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	if c, ok := e.members[code]; ok {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.auth}}
		r = r.WithContext(crossroads.WithCaller(r.Context(), c.p))
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

// key makes a valid key of origin (the rolling start within the window).
func (e *env) key(origin string, n int, visited ...string) tkey {
	d := sha256.Sum256([]byte(origin + string(rune(n)) + e.t.Name()))
	return tkey{data: d[:16], start: uint32(e.now.Add(-48*time.Hour).Unix()/600) + uint32(n%100), period: 144, risk: int32(n % 9),
		visited: visited, origin: origin, report: 1, dsos: int32(n%20) - 5}
}

func (e *env) keys(origin string, n int) []tkey {
	out := make([]tkey, n)
	for i := range out {
		out[i] = e.key(origin, i, "BE", origin)
	}
	return out
}

// upload posts keys as protobuf, signed by the country's signer.
func (e *env) upload(code, tag string, keys []tkey) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.req(code, "POST", "/diagnosiskeys/upload", map[string]string{"batchTag": tag, "batchSignature": e.members[code].sig.sign(e.t, signedBytes(keys), nil),
		"Content-Type": "application/protobuf; version=1.0"}, encodeProto(e.t, keys))
}

func (e *env) download(code, date, tag, accept string) *httptest.ResponseRecorder {
	h := map[string]string{"Accept": accept}
	if tag != "" {
		h["batchTag"] = tag
	}
	return e.req(code, "GET", "/diagnosiskeys/download/"+date, h, nil)
}

func (e *env) today() string { return e.now.Format(time.DateOnly) }

func status(t *testing.T, w *httptest.ResponseRecorder, want int) {
	t.Helper()
	if w.Code != want {
		b, _ := io.ReadAll(w.Result().Body)
		t.Fatalf("status %d, want %d: %s", w.Code, want, b)
	}
}

func netIP(h string) []byte {
	parts := strings.Split(h, ".")
	if len(parts) != 4 {
		return nil
	}
	ip := make([]byte, 4)
	for i, p := range parts {
		var n int
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil
			}
			n = n*10 + int(c-'0')
		}
		ip[i] = byte(n)
	}
	return ip
}

func newReq(method, target string, hdr map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

func recorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
