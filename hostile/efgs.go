package hostile

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/crossroads-hub/crossroads/efgs"
)

// EFGSTarget describes the federation gateway to attack (Target.EFGS):
// a member state's national backend (its TLS certificate, country and
// SIGNING key) and another member's SIGNING key.
type EFGSTarget struct {
	Prefix      string // default /efgs
	Member      tls.Certificate
	Country     string
	Signing     *x509.Certificate
	SigningKey  crypto.Signer
	Other       *x509.Certificate // another country's SIGNING certificate
	OtherKey    crypto.Signer
	OtherOrigin string
	// MaxBatchKeys is the gateway's batch limit (default 5,000).
	MaxBatchKeys int
}

// RunEFGS attacks only the federation gateway.
func RunEFGS(ctx context.Context, t Target) (*Report, error) {
	u, err := url.Parse(t.Base)
	if err != nil || u.Scheme != "https" || t.EFGS == nil {
		return nil, fmt.Errorf("hostile: target %q: want https://host:port and an EFGS target", t.Base)
	}
	r := &runner{t: t, host: u.Host}
	r.efgs(ctx)
	r.rep.OK = len(r.rep.Failed()) == 0
	return &r.rep, nil
}

// efgs attacks the gateway: malformed protobuf, wrong signatures, another
// country's certificate and keys, oversized batches, replayed tags, a
// non-member. Every refusal is a 4xx problem without internals.
func (r *runner) efgs(ctx context.Context) {
	e := r.t.EFGS
	prefix := e.Prefix
	if prefix == "" {
		prefix = "/efgs"
	}
	max := e.MaxBatchKeys
	if max == 0 {
		max = efgs.DefaultMaxBatchKeys
	}
	now := time.Now().UTC()
	keys := func(origin string, n int) []efgs.DiagnosisKey {
		out := make([]efgs.DiagnosisKey, n)
		for i := range out {
			d := make([]byte, 16)
			rand.Read(d)
			out[i] = efgs.DiagnosisKey{KeyData: d, RollingStartIntervalNumber: uint32(now.Add(-time.Hour).Unix() / 600), RollingPeriod: 144,
				TransmissionRiskLevel: 1, Origin: origin, ReportType: efgs.ReportConfirmedTest}
		}
		return out
	}
	sign := func(cert *x509.Certificate, key crypto.Signer, content []byte) string {
		sd, err := pkcs7.NewSignedData(content)
		if err != nil {
			return ""
		}
		if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
			return ""
		}
		sd.Detach()
		der, _ := sd.Finish()
		return base64.StdEncoding.EncodeToString(der)
	}
	bytesOf := func(ks []efgs.DiagnosisKey) []byte {
		return efgs.BatchBytesToVerify(&efgs.DiagnosisKeyBatch{Keys: ks})
	}
	upload := func(cert *tls.Certificate, tag, sig, ctype string, body []byte) answer {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.t.Base+prefix+"/diagnosiskeys/upload", bytes.NewReader(body))
		if err != nil {
			return answer{err: err}
		}
		req.Header.Set("batchTag", tag)
		if sig != "" {
			req.Header.Set("batchSignature", sig)
		}
		req.Header.Set("Content-Type", ctype)
		return do(r.client(cert, r.t.Roots), req)
	}
	proto := efgs.MediaProtobuf
	run := fmt.Sprint(now.UnixNano())
	good := keys(e.Country, 3)
	goodSig := sign(e.Signing, e.SigningKey, bytesOf(good))
	enc := func(ks []efgs.DiagnosisKey) []byte { return (&efgs.DiagnosisKeyBatch{Keys: ks}).MarshalProto() }

	r.check("efgs: malformed protobuf", "400", upload(&e.Member, "h-mal-"+run, goodSig, proto, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}), status(http.StatusBadRequest), true)
	r.check("efgs: protobuf of another message", "400", upload(&e.Member, "h-other-"+run, goodSig, proto, []byte(strings.Repeat("\x12\x03abc", 50))), status(http.StatusBadRequest), true)
	r.check("efgs: JSON nesting bomb", "400", upload(&e.Member, "h-bomb-"+run, goodSig, efgs.MediaJSON, []byte(strings.Repeat("[", 100000))), status(http.StatusBadRequest), true)
	r.check("efgs: signature over other keys", "400", upload(&e.Member, "h-sig-"+run, sign(e.Signing, e.SigningKey, bytesOf(keys(e.Country, 3))), proto, enc(good)), status(http.StatusBadRequest), true)
	r.check("efgs: truncated signature", "400", upload(&e.Member, "h-trunc-"+run, goodSig[:len(goodSig)/2], proto, enc(good)), status(http.StatusBadRequest), true)
	r.check("efgs: garbage signature", "400", upload(&e.Member, "h-garb-"+run, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x30, 0x82}, 500)), proto, enc(good)), status(http.StatusBadRequest), true)
	r.check("efgs: another country's signing certificate", "400", upload(&e.Member, "h-cc-"+run, sign(e.Other, e.OtherKey, bytesOf(good)), proto, enc(good)), status(http.StatusBadRequest), true)
	foreign := keys(e.OtherOrigin, 2)
	r.check("efgs: another country's keys", "400", upload(&e.Member, "h-origin-"+run, sign(e.Signing, e.SigningKey, bytesOf(foreign)), proto, enc(foreign)), status(http.StatusBadRequest), true)
	big := keys(e.Country, max+1)
	r.check("efgs: oversized batch", "413", upload(&e.Member, "h-big-"+run, "x", proto, enc(big)), status(http.StatusRequestEntityTooLarge), true)
	r.check("efgs: oversized body", "413", upload(&e.Member, "h-body-"+run, "x", proto, bytes.Repeat([]byte{0}, 17<<20)), statusOrClosed(http.StatusRequestEntityTooLarge), true)
	tag := "h-replay-" + run
	r.check("efgs: a valid batch", "201", upload(&e.Member, tag, goodSig, proto, enc(good)), status(http.StatusCreated), true)
	r.check("efgs: replayed batch tag", "409", upload(&e.Member, tag, goodSig, proto, enc(good)), status(http.StatusConflict), true)
	r.check("efgs: replayed keys under a new tag", "207", upload(&e.Member, tag+"-b", goodSig, proto, enc(good)), status(http.StatusMultiStatus), false)
	r.check("efgs: non-member uploads", "401/403", upload(&r.t.Client, "h-nm-"+run, goodSig, proto, enc(good)), status(http.StatusUnauthorized, http.StatusForbidden), true)
	r.check("efgs: download without a certificate", "401/403/refused", r.get(ctx, nil, prefix+"/diagnosiskeys/download/"+now.Format(time.DateOnly), nil),
		statusOrClosed(http.StatusUnauthorized, http.StatusForbidden), true)
	r.check("efgs: download of a path-injected date", "400/404", r.get(ctx, &e.Member, prefix+"/diagnosiskeys/download/..%2f..%2fetc", nil),
		status(http.StatusBadRequest, http.StatusNotFound), true)
	r.check("efgs: callback to a private address", "400", r.put(ctx, &e.Member, prefix+"/diagnosiskeys/callback/h?url="+url.QueryEscape("https://169.254.169.254/latest")),
		status(http.StatusBadRequest), true)
	r.check("efgs: gateway still serves a download", "200/404", r.get(ctx, &e.Member, prefix+"/diagnosiskeys/download/"+now.Format(time.DateOnly),
		http.Header{"Accept": {proto}}), status(http.StatusOK, http.StatusNotFound), false)
}

func (r *runner) put(ctx context.Context, cert *tls.Certificate, path string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.t.Base+path, nil)
	if err != nil {
		return answer{err: err}
	}
	return do(r.client(cert, r.t.Roots), req)
}
