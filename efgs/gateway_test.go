package efgs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/smallstep/pkcs7"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/efgs"
)

func TestUploadDownload(t *testing.T) {
	e := newEnv(t)
	de := e.keys("DE", 3)
	de[0].visited = []string{"NL", "BE", "AT", "FR"} // order must be kept
	status(t, e.upload("DE", "de-20261201-a", de), http.StatusCreated)
	// JSON, ECDSA-signed.
	fr := e.keys("FR", 2)
	w := e.req("FR", "POST", "/diagnosiskeys/upload", map[string]string{"batchTag": "fr-1", "batchSignature": e.members["FR"].sig.sign(t, signedBytes(fr), nil),
		"Content-Type": "application/json; version=1.0"}, encodeJSON(t, fr))
	status(t, w, http.StatusCreated)
	if w.Header().Get("batchTag") != "fr-1" {
		t.Errorf("batchTag header %q", w.Header().Get("batchTag"))
	}
	// SHA-1 with RSA, as older national backends sign.
	nl := e.keys("NL", 1)
	w = e.req("NL", "POST", "/diagnosiskeys/upload", map[string]string{"batchTag": "nl-1", "batchSignature": e.members["NL"].sig.sign(t, signedBytes(nl), pkcs7.OIDDigestAlgorithmSHA1),
		"Content-Type": "application/protobuf; version=1.0"}, encodeProto(t, nl))
	status(t, w, http.StatusCreated)

	today := e.today()
	tag := strings.ReplaceAll(today, "-", "")
	// NL walks the day's batches by nextBatchTag, as national clients do.
	var got []tkey
	var tags []string
	next := ""
	for {
		w := e.download("NL", today, next, "application/protobuf; version=1.0")
		status(t, w, http.StatusOK)
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/protobuf") {
			t.Errorf("Content-Type %q", ct)
		}
		tags = append(tags, w.Header().Get("batchTag"))
		got = append(got, decodeProto(t, w.Body.Bytes())...)
		if next = w.Header().Get("nextBatchTag"); next == "null" {
			break
		}
		if len(tags) > 5 {
			t.Fatal("no end of the batch chain")
		}
	}
	if want := []string{tag + "-1", tag + "-2", tag + "-3"}; !slices.Equal(tags, want) {
		t.Errorf("batch tags %v, want %v", tags, want)
	}
	if len(got) != 5 {
		t.Fatalf("NL got %d keys, want 5 (its own excluded)", len(got))
	}
	for _, k := range got {
		if k.origin == "NL" {
			t.Errorf("own key served")
		}
	}
	if !reflect.DeepEqual(got[0], de[0]) {
		t.Errorf("key changed in transit:\n%+v\n%+v", got[0], de[0])
	}
	// JSON download: the reference's field names (snake_case for the
	// days since onset), parsed by a protobuf JSON parser.
	w = e.download("DE", today, tag+"-2", "application/json; version=1.0")
	status(t, w, http.StatusOK)
	if !strings.Contains(w.Body.String(), `"days_since_onset_of_symptoms"`) || !strings.Contains(w.Body.String(), `"keyData"`) {
		t.Errorf("JSON field names: %s", w.Body)
	}
	if keys := decodeJSON(t, w.Body.Bytes()); !reflect.DeepEqual(keys, fr) {
		t.Errorf("JSON keys %+v, want %+v", keys, fr)
	}
	if w.Header().Get("nextBatchTag") != tag+"-3" {
		t.Errorf("nextBatchTag %q", w.Header().Get("nextBatchTag"))
	}
	// DE downloading its own batch gets it empty.
	w = e.download("DE", today, tag+"-1", "")
	status(t, w, http.StatusOK)
	if n := len(decodeProto(t, w.Body.Bytes())); n != 0 {
		t.Errorf("own batch: %d keys", n)
	}
	if v := testutil.ToFloat64(e.g.Metrics().KeysIn.WithLabelValues("DE")); v != 3 {
		t.Errorf("uploaded keys metric of DE = %v", v)
	}
	if v := testutil.ToFloat64(e.g.Metrics().BatchesOut.WithLabelValues("NL")); v != 3 {
		t.Errorf("downloaded batches metric of NL = %v", v)
	}
}

func TestUploadRefusals(t *testing.T) {
	e := newEnv(t)
	good := e.keys("DE", 2)
	status(t, e.upload("DE", "taken", good), http.StatusCreated)
	proto := "application/protobuf; version=1.0"
	sign := func(keys []tkey) string { return e.members["DE"].sig.sign(t, signedBytes(keys), nil) }
	fresh := e.keys("DE", 3)[2:]
	other := e.keys("DE", 4)[3:]
	wrongOrigin := []tkey{e.key("FR", 7)}
	badField := []tkey{e.key("DE", 8)}
	badField[0].period = 145
	oldKey := []tkey{e.key("DE", 9)}
	oldKey[0].start = uint32(e.now.Add(-20*24*time.Hour).Unix() / 600)
	for name, tc := range map[string]struct {
		hdr    map[string]string
		body   []byte
		status int
		reason crossroads.Reason
	}{
		"too many keys":        {map[string]string{"batchTag": "big", "batchSignature": "x", "Content-Type": proto}, encodeProto(t, e.keys("DE", 5001)), 413, crossroads.ReasonEFGSBatchTooLarge},
		"duplicate tag":        {map[string]string{"batchTag": "taken", "batchSignature": sign(fresh), "Content-Type": proto}, encodeProto(t, fresh), 409, crossroads.ReasonEFGSDuplicateTag},
		"missing signature":    {map[string]string{"batchTag": "t1", "Content-Type": proto}, encodeProto(t, fresh), 400, crossroads.ReasonEFGSBadSignature},
		"signature not base64": {map[string]string{"batchTag": "t2", "batchSignature": "%%%", "Content-Type": proto}, encodeProto(t, fresh), 400, crossroads.ReasonEFGSBadSignature},
		"signature not CMS":    {map[string]string{"batchTag": "t3", "batchSignature": "AAAA", "Content-Type": proto}, encodeProto(t, fresh), 400, crossroads.ReasonEFGSBadSignature},
		"signature of others":  {map[string]string{"batchTag": "t4", "batchSignature": sign(other), "Content-Type": proto}, encodeProto(t, fresh), 400, crossroads.ReasonEFGSBadSignature},
		"another country's signing certificate": {map[string]string{"batchTag": "t5", "batchSignature": e.members["NL"].sig.sign(t, signedBytes(fresh), nil), "Content-Type": proto},
			encodeProto(t, fresh), 400, crossroads.ReasonEFGSBadSignature},
		"unregistered signer": {map[string]string{"batchTag": "t6", "batchSignature": newSigner(t, "ecdsa", "DE").sign(t, signedBytes(fresh), nil), "Content-Type": proto},
			encodeProto(t, fresh), 400, crossroads.ReasonEFGSBadSignature},
		"origin not the uploader's": {map[string]string{"batchTag": "t7", "batchSignature": sign(wrongOrigin), "Content-Type": proto}, encodeProto(t, wrongOrigin), 400, crossroads.ReasonEFGSWrongOrigin},
		"malformed protobuf":        {map[string]string{"batchTag": "t8", "batchSignature": "x", "Content-Type": proto}, []byte{0x0a, 0x05, 0x0a}, 400, crossroads.ReasonEFGSInvalidBatch},
		"malformed JSON":            {map[string]string{"batchTag": "t9", "batchSignature": "x", "Content-Type": "application/json; version=1.0"}, []byte(`{"keys":[{"keyData":1}]}`), 400, crossroads.ReasonEFGSInvalidBatch},
		"rolling period":            {map[string]string{"batchTag": "t10", "batchSignature": sign(badField), "Content-Type": proto}, encodeProto(t, badField), 400, crossroads.ReasonEFGSInvalidBatch},
		"rolling start too old":     {map[string]string{"batchTag": "t11", "batchSignature": sign(oldKey), "Content-Type": proto}, encodeProto(t, oldKey), 400, crossroads.ReasonEFGSInvalidBatch},
		"empty batch":               {map[string]string{"batchTag": "t12", "batchSignature": "x", "Content-Type": proto}, []byte{}, 400, crossroads.ReasonEFGSInvalidBatch},
		"no batchTag":               {map[string]string{"batchSignature": sign(fresh), "Content-Type": proto}, encodeProto(t, fresh), 400, crossroads.ReasonInvalidHeader},
		"unknown media type":        {map[string]string{"batchTag": "t13", "batchSignature": "x", "Content-Type": "text/plain"}, []byte("x"), 415, crossroads.ReasonEFGSMediaType},
		"no version":                {map[string]string{"batchTag": "t14", "batchSignature": "x", "Content-Type": "application/protobuf"}, []byte("x"), 400, crossroads.ReasonEFGSMediaType},
		"incompatible version":      {map[string]string{"batchTag": "t15", "batchSignature": "x", "Content-Type": "application/protobuf; version=2.0"}, []byte("x"), 406, crossroads.ReasonEFGSMediaType},
	} {
		t.Run(name, func(t *testing.T) {
			w := e.req("DE", "POST", "/diagnosiskeys/upload", tc.hdr, tc.body)
			status(t, w, tc.status)
			var p struct{ Reason crossroads.Reason }
			json.Unmarshal(w.Body.Bytes(), &p)
			if p.Reason != tc.reason {
				t.Errorf("reason %q, want %q", p.Reason, tc.reason)
			}
			if r := e.audit.last(); r.Action != crossroads.FederationUpload || r.Outcome == crossroads.OutcomeAllowed || r.Status != tc.status {
				t.Errorf("refusal recorded as %+v", r)
			}
		})
	}
	// Nothing of the refused uploads was stored: one batch today.
	w := e.download("NL", e.today(), "", "")
	status(t, w, http.StatusOK)
	if w.Header().Get("nextBatchTag") != "null" {
		t.Errorf("refused uploads made batches: next %q", w.Header().Get("nextBatchTag"))
	}
}

// A batch with keys stored before is answered 207 with the indexes, and
// nothing of it is stored.
func TestUploadDuplicateKeys(t *testing.T) {
	e := newEnv(t)
	first := e.keys("DE", 3)
	status(t, e.upload("DE", "a", first), http.StatusCreated)
	second := append([]tkey{e.key("DE", 50)}, first[1], e.key("DE", 51))
	w := e.upload("DE", "b", second)
	status(t, w, http.StatusMultiStatus)
	var body map[string][]int
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(body, map[string][]int{"201": {0, 2}, "409": {1}, "500": {}}) {
		t.Errorf("207 body %s", w.Body)
	}
	if w.Header().Get("batchTag") != "b" {
		t.Errorf("batchTag %q", w.Header().Get("batchTag"))
	}
	// Nothing stored: the fresh keys upload fine under the same tag.
	status(t, e.upload("DE", "b", []tkey{second[0], second[2]}), http.StatusCreated)
}

func TestDownloadRefusals(t *testing.T) {
	e := newEnv(t)
	status(t, e.upload("DE", "a", e.keys("DE", 1)), http.StatusCreated)
	tag := strings.ReplaceAll(e.today(), "-", "") + "-1"
	yesterday := e.now.AddDate(0, 0, -1).Format(time.DateOnly)
	old := e.now.AddDate(0, 0, -3).Format(time.DateOnly)
	for name, tc := range map[string]struct {
		date, tag, accept string
		status            int
	}{
		"beyond the window":   {old, "", "", http.StatusGone},
		"no batch that day":   {yesterday, "", "", http.StatusNotFound},
		"unknown tag":         {e.today(), tag + "0", "", http.StatusNotFound},
		"tag of another date": {yesterday, tag, "", http.StatusBadRequest},
		"bad date":            {"2026-13-01", "", "", http.StatusBadRequest},
		"accept text":         {e.today(), "", "text/plain", http.StatusNotAcceptable},
		"accept no version":   {e.today(), "", "application/json", http.StatusUnsupportedMediaType},
	} {
		t.Run(name, func(t *testing.T) {
			status(t, e.download("FR", tc.date, tc.tag, tc.accept), tc.status)
		})
	}
	// The window's oldest day is still served (2 days before today).
	status(t, e.download("FR", e.now.AddDate(0, 0, -2).Format(time.DateOnly), "", ""), http.StatusNotFound)
}

func TestAuditDownload(t *testing.T) {
	e := newEnv(t)
	keys := e.keys("FR", 4)
	sig := e.members["FR"].sig.sign(t, signedBytes(keys), nil)
	status(t, e.req("FR", "POST", "/diagnosiskeys/upload", map[string]string{"batchTag": "fr-x", "batchSignature": sig, "Content-Type": "application/protobuf; version=1.0"},
		encodeProto(t, keys)), http.StatusCreated)
	tag := strings.ReplaceAll(e.today(), "-", "") + "-1"
	w := e.req("DE", "GET", "/diagnosiskeys/audit/download/"+e.today()+"/"+tag, nil, nil)
	status(t, w, http.StatusOK)
	var entries []efgs.AuditEntry
	if err := json.Unmarshal(w.Body.Bytes(), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("entries %s: %v", w.Body, err)
	}
	en := entries[0]
	fr := e.members["FR"]
	if en.Country != "FR" || en.Amount != 4 || en.BatchSignature != sig || en.UploaderThumbprint != thumb(fr.auth) ||
		en.UploaderSigningThumbprint != thumb(fr.sig.cert) || en.SigningCertificate != pemOf(fr.sig.cert) || en.UploaderCertificate != pemOf(fr.auth) ||
		en.SigningCertificateOperatorSignature != "dGE=" {
		t.Errorf("audit entry %+v", en)
	}
	// A receiver verifies the batch with what the audit download gives.
	dl := e.download("DE", e.today(), tag, "")
	p7, signer, err := efgs.ParseSignature(en.BatchSignature)
	if err != nil || thumb(signer) != en.UploaderSigningThumbprint {
		t.Fatalf("signature: %v", err)
	}
	if err := efgs.VerifyDetached(p7, signedBytes(decodeProto(t, dl.Body.Bytes()))); err != nil {
		t.Errorf("the receiver cannot verify the batch: %v", err)
	}
	status(t, e.req("DE", "GET", "/diagnosiskeys/audit/download/"+e.today()+"/nope", nil, nil), http.StatusNotFound)
	status(t, e.req("DE", "GET", "/diagnosiskeys/audit/download/"+e.now.AddDate(0, 0, -5).Format(time.DateOnly)+"/"+tag, nil, nil), http.StatusGone)
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	ok := func(code string) int { return e.download(code, e.today(), "", "").Code }
	if c := ok("DE"); c != http.StatusNotFound { // authenticated; no batch yet
		t.Fatalf("member: %d", c)
	}
	// A certificate not registered as AUTHENTICATION (the signing one).
	de := e.members["DE"]
	auth := de.auth
	de.auth = de.sig.cert
	if c := ok("DE"); c != http.StatusForbidden {
		t.Errorf("signing certificate as client certificate: %d", c)
	}
	de.auth = auth
	// Revoked: refused at once.
	status(t, e.req("", "POST", "/admin/certificates/"+thumb(auth)+"/revoke", nil, nil), http.StatusNoContent)
	if c := ok("DE"); c != http.StatusForbidden {
		t.Errorf("revoked: %d", c)
	}
	// Another country's participant presenting NL's certificate.
	fr := e.members["FR"]
	fr.auth = e.members["NL"].auth
	if c := ok("FR"); c != http.StatusForbidden {
		t.Errorf("another country's certificate: %d", c)
	}
	// Off-boarded (suspended in the registers) and not a national backend.
	nl := e.members["NL"]
	nl.p.Status = crossroads.StatusSuspended
	if c := ok("NL"); c != http.StatusForbidden {
		t.Errorf("suspended: %d", c)
	}
	nl.p.Status = crossroads.StatusActive
	nl.p.Kind = crossroads.KindInstitution
	if c := ok("NL"); c != http.StatusForbidden {
		t.Errorf("institution: %d", c)
	}
	nl.p.Kind = crossroads.KindNationalBackend
	// Off-boarding through the admin API revokes every certificate.
	status(t, e.req("", "POST", "/admin/members/NL/offboard", nil, nil), http.StatusOK)
	if c := ok("NL"); c != http.StatusForbidden {
		t.Errorf("off-boarded: %d", c)
	}
	for _, a := range e.audit.actions() {
		if strings.HasPrefix(a, "download:") && !strings.HasSuffix(a, crossroads.OutcomeDenied) && !strings.HasSuffix(a, crossroads.OutcomeAllowed) {
			t.Errorf("record %s", a)
		}
	}
}

// From a trusted load balancer the headers name the certificate; from
// anyone else they are ignored.
func TestLoadBalancerHeaders(t *testing.T) {
	e := newEnv(t)
	lb := &crossroads.Participant{ID: e.proxyID, Kind: crossroads.KindOperator, Status: crossroads.StatusActive}
	do := func(p *crossroads.Participant, hdr map[string]string) int {
		r := newReq("GET", "/diagnosiskeys/download/"+e.today(), hdr)
		r = r.WithContext(crossroads.WithCaller(r.Context(), p))
		w := recorder()
		e.mux.ServeHTTP(w, r)
		return w.Code
	}
	fr := thumb(e.members["FR"].auth)
	if c := do(lb, map[string]string{"X-SSL-Client-SHA256": strings.ToUpper(fr), "X-SSL-Client-DN": "C=FR,CN=auth FR"}); c != http.StatusNotFound {
		t.Errorf("through the load balancer: %d", c)
	}
	if c := do(lb, map[string]string{"X-SSL-Client-SHA256": fr, "X-SSL-Client-DN": "C=DE,CN=auth FR"}); c != http.StatusForbidden {
		t.Errorf("DN of another country: %d", c)
	}
	if c := do(lb, nil); c != http.StatusForbidden {
		t.Errorf("no header: %d", c)
	}
	other := &crossroads.Participant{ID: "someone", Kind: crossroads.KindNationalBackend, Country: "DE", Status: crossroads.StatusActive}
	if c := do(other, map[string]string{"X-SSL-Client-SHA256": fr}); c != http.StatusForbidden {
		t.Errorf("headers from an untrusted participant: %d", c)
	}
}

// No record, no release: with the audit trail down nothing is stored or
// served.
func TestAuditUnavailable(t *testing.T) {
	e := newEnv(t)
	status(t, e.upload("DE", "a", e.keys("DE", 1)), http.StatusCreated)
	e.audit.fail = true
	status(t, e.upload("DE", "b", e.keys("DE", 2)[1:]), http.StatusServiceUnavailable)
	status(t, e.download("FR", e.today(), "", ""), http.StatusServiceUnavailable)
	e.audit.fail = false
	w := e.download("FR", e.today(), "", "")
	status(t, w, http.StatusOK)
	if w.Header().Get("nextBatchTag") != "null" {
		t.Errorf("an unrecorded upload was stored")
	}
	var n int
	for _, a := range e.audit.actions() {
		if a == "upload:allowed" || a == "download:allowed" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("records %v", e.audit.actions())
	}
}

func TestRetention(t *testing.T) {
	e := newEnv(t)
	e.now = e.now.AddDate(0, 0, -3)
	status(t, e.upload("DE", "old", e.keys("DE", 2)), http.StatusCreated)
	oldDay := e.today()
	e.now = e.now.AddDate(0, 0, 3)
	status(t, e.upload("DE", "new", e.keys("DE", 3)[2:]), http.StatusCreated)
	b, k, err := e.g.Erase(t.Context())
	if err != nil || b != 1 || k != 2 {
		t.Fatalf("Erase = %d, %d, %v", b, k, err)
	}
	if _, err := e.store.Batch(t.Context(), strings.ReplaceAll(oldDay, "-", "")+"-1"); err == nil {
		t.Errorf("old batch kept")
	}
	if a := e.audit.actions(); a[len(a)-1] != crossroads.FederationErase+":allowed" {
		t.Errorf("erase not recorded: %v", a)
	}
	n := len(e.audit.actions())
	if b, _, err := e.g.Erase(t.Context()); err != nil || b != 0 || len(e.audit.actions()) != n {
		t.Errorf("an erasure of nothing: %d batches, %v, %d new records", b, err, len(e.audit.actions())-n)
	}
}

func TestMembersAdmin(t *testing.T) {
	e := newEnv(t)
	newDE := newCert(t, rsaKey(), "auth DE 2", "DE")
	cb := newCert(t, rsaKey(), "cb DE", "DE", "cb.de.example")
	body := fmt.Sprintf(`{"federation":{"members":[{"country":"DE","certificates":[{"type":"AUTHENTICATION","pem":%q},{"type":"CALLBACK","pem":%q,"host":"cb.de.example"}]}]}}`,
		pemOf(newDE), pemOf(cb))
	status(t, e.req("", "POST", "/admin/members", nil, []byte(body)), http.StatusOK)
	if c, err := e.store.Certificate(t.Context(), thumb(cb)); err != nil || c.Host != "cb.de.example" || c.Type != crossroads.EFGSCertCallback {
		t.Errorf("callback certificate %+v %v", c, err)
	}
	for name, body := range map[string]string{
		"unknown country": fmt.Sprintf(`{"federation":{"members":[{"country":"XX","certificates":[{"type":"SIGNING","pem":%q}]}]}}`, pemOf(newDE)),
		"bad type":        fmt.Sprintf(`{"federation":{"members":[{"country":"DE","certificates":[{"type":"SIGN","pem":%q}]}]}}`, pemOf(newDE)),
		"callback host":   fmt.Sprintf(`{"federation":{"members":[{"country":"DE","certificates":[{"type":"CALLBACK","pem":%q,"host":"other.example"}]}]}}`, pemOf(cb)),
		"not PEM":         `{"federation":{"members":[{"country":"DE","certificates":[{"type":"SIGNING","pem":"x"}]}]}}`,
		"unknown field":   `{"federation":{"members":[{"country":"DE","certs":[]}]}}`,
	} {
		if w := e.req("", "POST", "/admin/members", nil, []byte(body)); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
}

// The operator routes refuse what a cross-site page could send.
func TestAdminSameSite(t *testing.T) {
	h := efgs.SameSite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for name, tc := range map[string]struct {
		hdr  map[string]string
		want int
	}{
		"json":              {map[string]string{"Content-Type": "application/json"}, http.StatusNoContent},
		"form":              {map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		"no body type":      {nil, http.StatusUnsupportedMediaType},
		"cross-site":        {map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		"same-origin fetch": {map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, http.StatusNoContent},
	} {
		r := newReq("POST", "/admin/members/DE/offboard", tc.hdr)
		w := recorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", name, w.Code, tc.want)
		}
	}
}
