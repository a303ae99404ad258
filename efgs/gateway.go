package efgs

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/problem"
)

// Defaults of the reference's production configuration
// (efgs-application.yml).
const (
	DefaultMaxBatchKeys     = 5000 // upload-settings.maximum-upload-batch-size
	DefaultMaxAgeDays       = 2    // download-settings.max-age-in-days
	DefaultRetentionDays    = 2    // keys erased after the download window
	DefaultMaxFailures      = 5    // callback.max-retries
	DefaultRetryWait        = 300 * time.Second
	DefaultCallbackInterval = 10 * time.Second // the reference polls every 300 s
	DefaultCallbackTimeout  = 10 * time.Second
	DefaultThumbprintHeader = "X-SSL-Client-SHA256"
	DefaultDNHeader         = "X-SSL-Client-DN"
	// DefaultMaxBody bounds an upload body: 5,000 keys of a few hundred
	// bytes each fit many times over.
	DefaultMaxBody = 16 << 20
)

// Media types the gateway speaks (content-negotiation: protobuf-version
// 1.0, json-version 1.0).
const (
	MediaProtobuf = "application/protobuf; version=1.0"
	MediaJSON     = "application/json; version=1.0"
	serverMajor   = 1
	serverMinor   = 0
)

// Config configures a Gateway.
type Config struct {
	Store Store
	// Audit commits a record of every act before it is answered (required).
	Audit crossroads.AuditLog
	// Member returns the national backend of a country from the registers
	// (used to authenticate through a trusted load balancer and to check
	// registrations).
	Member func(country string) (*crossroads.Participant, bool)
	// MaxBatchKeys bounds an upload (default 5,000; beyond: 413).
	MaxBatchKeys int
	// MaxAgeDays is the download window in days before today (UTC; default
	// 2; older dates: 410).
	MaxAgeDays int
	// RetentionDays: batches of days more than this before today are
	// erased (default 2; the reference kept 14 before release 1.1).
	RetentionDays int
	// TrustedProxies are participant ids (load balancers with their own
	// network certificate) whose ThumbprintHeader and DNHeader name the
	// national backend's certificate, as the reference's cert-auth
	// header-fields. Empty (the default): only the TLS connection counts.
	TrustedProxies   []string
	ThumbprintHeader string
	DNHeader         string
	// TrustAnchor, when set, must have signed every registered certificate
	// (SHA-256 with its key over the certificate's DER, base64); checked
	// on registration and at each use, as the reference does.
	TrustAnchor *x509.Certificate
	// Callbacks: the deliveries' client (mTLS with the hub's certificate;
	// see NewCallbackClient), how often due ones are sent, how long after a
	// failure one is retried, after how many consecutive failures a
	// subscription is removed, and whether private and loopback targets
	// are allowed (tests and demos only).
	CallbackClient        *http.Client
	CallbackInterval      time.Duration
	RetryWait             time.Duration
	MaxFailures           int
	AllowPrivateCallbacks bool
	Resolver              Resolver

	MaxBody    int64
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Gateway serves the EFGS API.
type Gateway struct {
	cfg Config
	m   metrics
}

type metrics struct {
	keysIn, batchesIn, keysOut, batchesOut, refused *prometheus.CounterVec
	callbacks                                       *prometheus.CounterVec
	erased                                          prometheus.Counter
}

// New builds a gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, errors.New("efgs: a store and an audit log are required")
	}
	if cfg.Member == nil {
		cfg.Member = func(string) (*crossroads.Participant, bool) { return nil, false }
	}
	if cfg.MaxBatchKeys <= 0 {
		cfg.MaxBatchKeys = DefaultMaxBatchKeys
	}
	if cfg.MaxAgeDays <= 0 {
		cfg.MaxAgeDays = DefaultMaxAgeDays
	}
	if cfg.RetentionDays <= 0 {
		cfg.RetentionDays = DefaultRetentionDays
	}
	if cfg.ThumbprintHeader == "" {
		cfg.ThumbprintHeader = DefaultThumbprintHeader
	}
	if cfg.DNHeader == "" {
		cfg.DNHeader = DefaultDNHeader
	}
	if cfg.CallbackInterval <= 0 {
		cfg.CallbackInterval = DefaultCallbackInterval
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = DefaultRetryWait
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Resolver == nil {
		cfg.Resolver = netResolver{}
	}
	g := &Gateway{cfg: cfg}
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "crossroads", Subsystem: "efgs", Name: name, Help: help}, labels)
	}
	g.m = metrics{
		keysIn:     cv("uploaded_keys_total", "Keys accepted in uploads, by uploading country.", "country"),
		batchesIn:  cv("uploaded_batches_total", "Batches accepted, by uploading country.", "country"),
		keysOut:    cv("downloaded_keys_total", "Keys served in downloads, by downloading country.", "country"),
		batchesOut: cv("downloaded_batches_total", "Batches served, by downloading country.", "country"),
		refused:    cv("refused_total", "Requests refused, by country and reason.", "country", "reason"),
		callbacks:  cv("callbacks_total", "Callback deliveries, by country and result (delivered, failed, removed).", "country", "result"),
		erased: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "crossroads", Subsystem: "efgs", Name: "erased_keys_total",
			Help: "Keys erased after the retention."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{g.m.keysIn, g.m.batchesIn, g.m.keysOut, g.m.batchesOut, g.m.refused, g.m.callbacks, g.m.erased} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("efgs metrics: %w", err)
			}
		}
	}
	return g, nil
}

// member is an authenticated national backend.
type member struct {
	participant string
	country     string
	thumbprint  string // of its AUTHENTICATION certificate
}

// refusal is an answer other than success, with what the audit records.
type refusal struct {
	status int
	reason crossroads.Reason
	detail string
}

func (r *refusal) Error() string { return string(r.reason) + ": " + r.detail }

func refuse(status int, reason crossroads.Reason, format string, args ...any) *refusal {
	return &refusal{status, reason, fmt.Sprintf(format, args...)}
}

// authenticate finds the national backend behind the request: the
// network participant of the TLS connection (the hub's guard has checked
// its certificate, revocation and status), whose certificate must be a
// registered, unrevoked AUTHENTICATION certificate of its country; or,
// from a trusted load balancer, the certificate its headers name.
func (g *Gateway) authenticate(r *http.Request) (member, *refusal) {
	caller, ok := crossroads.CallerFrom(r.Context())
	if !ok {
		return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSNotMember, "no authenticated participant")
	}
	var thumb string
	if slices.Contains(g.cfg.TrustedProxies, caller.ID) {
		thumb = NormaliseThumbprint(r.Header.Get(g.cfg.ThumbprintHeader))
		if thumb == "" {
			return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSUnknownCertificate, "the load balancer sent no %s", g.cfg.ThumbprintHeader)
		}
	} else {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSUnknownCertificate, "no client certificate")
		}
		thumb = Thumbprint(r.TLS.PeerCertificates[0].Raw)
	}
	cert, err := g.cfg.Store.Certificate(r.Context(), thumb)
	switch {
	case errors.Is(err, crossroads.ErrNotFound):
		return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSUnknownCertificate, "the client certificate is not registered with the gateway")
	case err != nil:
		g.cfg.Logger.Error("efgs: certificate lookup", "err", err)
		return member{}, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
	case cert.Type != crossroads.EFGSCertAuthentication || !cert.RevokedAt.IsZero():
		return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSUnknownCertificate, "the client certificate is not an active AUTHENTICATION certificate")
	}
	if err := g.checkAnchor(cert); err != nil {
		return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSUnknownCertificate, "the certificate's trust-anchor signature does not verify")
	}
	p := caller
	if slices.Contains(g.cfg.TrustedProxies, caller.ID) {
		if dn := r.Header.Get(g.cfg.DNHeader); dn != "" && !dnHasCountry(dn, cert.Country) {
			return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSUnknownCertificate, "the distinguished name is not of the certificate's country")
		}
		if p, ok = g.cfg.Member(cert.Country); !ok {
			return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSNotMember, "no national backend of %s", cert.Country)
		}
	}
	if p.Kind != crossroads.KindNationalBackend || p.Country == "" || p.Country != cert.Country {
		return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSNotMember, "the caller is no national backend of the certificate's country")
	}
	if p.Status != crossroads.StatusActive {
		return member{}, refuse(http.StatusForbidden, crossroads.ReasonEFGSNotMember, "the national backend is off-boarded")
	}
	return member{participant: p.ID, country: p.Country, thumbprint: thumb}, nil
}

// dnHasCountry reports whether an RFC 2253/4514 (or OpenSSL slash form)
// distinguished name has C=country.
func dnHasCountry(dn, country string) bool {
	for _, part := range strings.FieldsFunc(dn, func(r rune) bool { return r == ',' || r == '/' || r == '+' }) {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "C") && strings.TrimSpace(v) == country {
			return true
		}
	}
	return false
}

// record commits the audit record of an act; the act may be answered only
// if it returns nil.
func (g *Gateway) record(ctx context.Context, action string, m member, rf *refusal, detail map[string]any) error {
	actor := m.participant
	if actor == "" {
		if c, ok := crossroads.CallerFrom(ctx); ok {
			actor = c.ID
		} else {
			actor = "unknown"
		}
	}
	if detail == nil {
		detail = map[string]any{}
	}
	if m.country != "" {
		detail["country"] = m.country
	}
	rec, err := audit.Event(crossroads.RecordFederation, action, actor, "", detail)
	if err != nil {
		return err
	}
	rec.Service = "efgs"
	rec.Status = http.StatusOK
	if rf != nil {
		rec.Outcome, rec.Reason, rec.Status = crossroads.OutcomeDenied, rf.reason, rf.status
		if rf.status >= 500 || rf.status == http.StatusMultiStatus {
			rec.Outcome = crossroads.OutcomeFailed
		}
	}
	if _, err := g.cfg.Audit.Commit(ctx, rec); err != nil {
		return err
	}
	return nil
}

// fail records a refusal and answers it (503 if it cannot be recorded).
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, action string, m member, rf *refusal, detail map[string]any) {
	country := m.country
	if country == "" {
		country = "unknown"
	}
	g.m.refused.WithLabelValues(country, string(rf.reason)).Inc()
	if err := g.record(r.Context(), action, m, rf, detail); err != nil {
		g.cfg.Logger.Error("efgs: audit", "action", action, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the act cannot be recorded; retry")
		return
	}
	problem.Error(w, rf.status, rf.reason, rf.detail)
}

// contentType checks an upload's Content-Type: application/protobuf or
// application/json with a version compatible with 1.0.
func contentType(v string) (proto bool, rf *refusal) {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return false, refuse(http.StatusBadRequest, crossroads.ReasonEFGSMediaType, "Content-Type does not parse")
	}
	switch mt {
	case "application/protobuf":
		proto = true
	case "application/json":
	default:
		return false, refuse(http.StatusUnsupportedMediaType, crossroads.ReasonEFGSMediaType, "Content-Type must be application/protobuf or application/json")
	}
	ver, ok := params["version"]
	if !ok {
		return false, refuse(http.StatusBadRequest, crossroads.ReasonEFGSMediaType, "the version parameter of Content-Type is required")
	}
	if ok, perr := compatible(ver); perr != nil {
		return false, refuse(http.StatusBadRequest, crossroads.ReasonEFGSMediaType, "the version parameter is no version")
	} else if !ok {
		return false, refuse(http.StatusNotAcceptable, crossroads.ReasonEFGSMediaType, "protocol version %s is not compatible with %d.%d", ver, serverMajor, serverMinor)
	}
	return proto, nil
}

// compatible: the client's version (major[.minor[.patch]]) has the
// server's major and no higher minor.
func compatible(v string) (bool, error) {
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return false, errors.New("not a version")
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return false, errors.New("not a version")
		}
		nums[i] = n
	}
	return nums[0] == serverMajor && nums[1] <= serverMinor, nil
}

// accept picks the download's media type from Accept (default protobuf).
func accept(v string) (proto bool, rf *refusal) {
	if strings.TrimSpace(v) == "" {
		return true, nil
	}
	var sawType bool
	for _, part := range strings.Split(v, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*":
			return true, nil
		case "application/protobuf", "application/json":
			sawType = true
			ver, ok := params["version"]
			if !ok {
				continue
			}
			if ok, _ := compatible(ver); ok {
				return mt == "application/protobuf", nil
			}
		}
	}
	if sawType {
		return false, refuse(http.StatusUnsupportedMediaType, crossroads.ReasonEFGSMediaType, "Accept needs a compatible version parameter (1.0)")
	}
	return false, refuse(http.StatusNotAcceptable, crossroads.ReasonEFGSMediaType, "the gateway answers application/protobuf or application/json")
}

// Rolling start interval numbers count 10-minute intervals.
const rollingInterval = 600

// validateKeys applies the reference's field checks to every key.
func (g *Gateway) validateKeys(bt *DiagnosisKeyBatch) *refusal {
	if len(bt.Keys) == 0 {
		return refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidBatch, "the batch has no keys")
	}
	now := g.cfg.Now().UTC()
	day := now.Truncate(24 * time.Hour)
	minStart := day.Add(-15*24*time.Hour).Unix() / rollingInterval
	maxStart := now.Unix()/rollingInterval + 1
	for i := range bt.Keys {
		k := &bt.Keys[i]
		switch {
		case len(k.KeyData) != 16:
			return refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidBatch, "key %d: keyData is not 16 bytes", i)
		case int64(k.RollingStartIntervalNumber) < minStart || int64(k.RollingStartIntervalNumber) > maxStart:
			return refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidBatch, "key %d: invalid rolling start interval number", i)
		case k.RollingPeriod < 1 || k.RollingPeriod > 144:
			return refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidBatch, "key %d: invalid rolling period", i)
		case (k.TransmissionRiskLevel < 0 || k.TransmissionRiskLevel > 8) && k.TransmissionRiskLevel != 0x7fffffff:
			return refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidBatch, "key %d: invalid transmission risk level", i)
		}
	}
	return nil
}

// Upload serves POST /diagnosiskeys/upload.
func (g *Gateway) Upload(w http.ResponseWriter, r *http.Request) {
	const action = crossroads.FederationUpload
	m, rf := g.authenticate(r)
	if rf != nil {
		g.fail(w, r, action, m, rf, nil)
		return
	}
	tag := r.Header.Get("batchTag")
	detail := map[string]any{"batchTag": tag}
	fail := func(rf *refusal) { g.fail(w, r, action, m, rf, detail) }
	isProto, rf := contentType(r.Header.Get("Content-Type"))
	if rf != nil {
		fail(rf)
		return
	}
	if tag == "" || len(tag) > 100 {
		fail(refuse(http.StatusBadRequest, crossroads.ReasonInvalidHeader, "the batchTag header is required (at most 100 characters)"))
		return
	}
	sigHeader := r.Header.Get("batchSignature")
	if sigHeader == "" {
		fail(refuse(http.StatusBadRequest, crossroads.ReasonEFGSBadSignature, "the batchSignature header is required"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(refuse(http.StatusRequestEntityTooLarge, crossroads.ReasonEFGSBatchTooLarge, "the body exceeds %d bytes", g.cfg.MaxBody))
			return
		}
		fail(refuse(http.StatusBadRequest, crossroads.ReasonInvalidBody, "the body could not be read"))
		return
	}
	var bt *DiagnosisKeyBatch
	if isProto {
		bt, err = UnmarshalBatch(body, g.cfg.MaxBatchKeys)
	} else {
		bt, err = UnmarshalJSONBatch(body, g.cfg.MaxBatchKeys)
	}
	switch {
	case errors.Is(err, ErrTooManyKeys):
		fail(refuse(http.StatusRequestEntityTooLarge, crossroads.ReasonEFGSBatchTooLarge, "more than %d keys", g.cfg.MaxBatchKeys))
		return
	case err != nil:
		fail(refuse(http.StatusBadRequest, crossroads.ReasonEFGSInvalidBatch, "the batch does not decode"))
		return
	}
	detail["keys"] = len(bt.Keys)
	if rf := g.validateKeys(bt); rf != nil {
		fail(rf)
		return
	}
	if exists, err := g.cfg.Store.UploadExists(r.Context(), tag); err != nil {
		g.cfg.Logger.Error("efgs: upload tag lookup", "err", err)
		fail(refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "not able to read; retry"))
		return
	} else if exists {
		fail(refuse(http.StatusConflict, crossroads.ReasonEFGSDuplicateTag, "batchTag already exists"))
		return
	}
	signing, rf := g.verifySignature(r.Context(), m, bt, sigHeader)
	if rf != nil {
		fail(rf)
		return
	}
	detail["signingThumbprint"] = signing
	for i := range bt.Keys {
		if bt.Keys[i].Origin != m.country {
			fail(refuse(http.StatusBadRequest, crossroads.ReasonEFGSWrongOrigin, "key %d: origin %q is not the uploader's country", i, bt.Keys[i].Origin))
			return
		}
	}
	u := crossroads.EFGSUpload{Tag: tag, Country: m.country, UploaderThumbprint: m.thumbprint, SigningThumbprint: signing,
		Signature: sigHeader, ContentType: r.Header.Get("Content-Type"), At: g.cfg.Now(), Keys: make([]crossroads.EFGSKey, len(bt.Keys))}
	for i := range bt.Keys {
		h := sha256.Sum256(KeyBytesToVerify(&bt.Keys[i]))
		u.Keys[i] = crossroads.EFGSKey{Hash: h[:], Origin: bt.Keys[i].Origin, Proto: bt.Keys[i].AppendProto(nil)}
	}
	// No record, no release: the upload is recorded before it is stored.
	if err := g.record(r.Context(), action, m, nil, detail); err != nil {
		g.cfg.Logger.Error("efgs: audit", "action", action, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the upload cannot be recorded; retry")
		return
	}
	batch, err := g.cfg.Store.Upload(r.Context(), u)
	var dup *crossroads.EFGSDuplicateKeys
	switch {
	case errors.As(err, &dup):
		detail["duplicates"] = len(dup.Duplicate)
		rf := refuse(http.StatusMultiStatus, crossroads.ReasonEFGSInvalidBatch, "keys exist already; nothing stored")
		if err := g.record(r.Context(), action, m, rf, detail); err != nil {
			g.cfg.Logger.Error("efgs: audit", "action", action, "err", err)
		}
		g.m.refused.WithLabelValues(m.country, "duplicate-keys").Inc()
		b, _ := json.Marshal(map[string][]int{"201": dup.Fresh, "409": dup.Duplicate, "500": {}})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("batchTag", tag)
		w.WriteHeader(http.StatusMultiStatus)
		w.Write(b)
		return
	case errors.Is(err, crossroads.ErrConflict):
		g.fail(w, r, action, m, refuse(http.StatusConflict, crossroads.ReasonEFGSDuplicateTag, "batchTag already exists"), detail)
		return
	case err != nil:
		g.cfg.Logger.Error("efgs: store upload", "err", err)
		g.fail(w, r, action, m, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "not able to write data; retry"), detail)
		return
	}
	g.m.keysIn.WithLabelValues(m.country).Add(float64(len(u.Keys)))
	g.m.batchesIn.WithLabelValues(m.country).Inc()
	g.cfg.Logger.Info("efgs: upload", "country", m.country, "batchTag", tag, "downloadBatch", batch.Tag, "keys", len(u.Keys))
	w.Header().Set("batchTag", tag)
	w.WriteHeader(http.StatusCreated)
}

// verifySignature checks the batchSignature header: a CMS SignedData by a
// registered, unrevoked SIGNING certificate of the uploader's country over
// the batch's bytes to verify. It returns the signing thumbprint.
func (g *Gateway) verifySignature(ctx context.Context, m member, bt *DiagnosisKeyBatch, header string) (string, *refusal) {
	p7, signer, err := ParseSignature(header)
	if err != nil {
		return "", refuse(http.StatusBadRequest, crossroads.ReasonEFGSBadSignature, "batchSignature is not a base64 CMS SignedData with one signer")
	}
	thumb := Thumbprint(signer.Raw)
	cert, err := g.cfg.Store.Certificate(ctx, thumb)
	switch {
	case errors.Is(err, crossroads.ErrNotFound):
		return "", refuse(http.StatusBadRequest, crossroads.ReasonEFGSBadSignature, "the signer's certificate is not registered")
	case err != nil:
		g.cfg.Logger.Error("efgs: certificate lookup", "err", err)
		return "", refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
	case cert.Type != crossroads.EFGSCertSigning || cert.Country != m.country || !cert.RevokedAt.IsZero():
		return "", refuse(http.StatusBadRequest, crossroads.ReasonEFGSBadSignature, "the signer's certificate is no active SIGNING certificate of %s", m.country)
	}
	if err := g.checkAnchor(cert); err != nil {
		return "", refuse(http.StatusBadRequest, crossroads.ReasonEFGSBadSignature, "the signing certificate's trust-anchor signature does not verify")
	}
	if err := VerifyDetached(p7, BatchBytesToVerify(bt)); err != nil {
		return "", refuse(http.StatusBadRequest, crossroads.ReasonEFGSBadSignature, "the batch signature does not verify")
	}
	return thumb, nil
}

// parseDate parses a path date (yyyy-MM-dd) and checks the window.
func (g *Gateway) parseDate(s string) (string, *refusal) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "", refuse(http.StatusBadRequest, crossroads.ReasonInvalidParameter, "the date must be yyyy-MM-dd")
	}
	threshold := g.cfg.Now().UTC().AddDate(0, 0, -g.cfg.MaxAgeDays).Format(time.DateOnly)
	if d.Format(time.DateOnly) < threshold {
		return "", refuse(http.StatusGone, crossroads.ReasonEFGSGone, "the date is before the download window (%d days)", g.cfg.MaxAgeDays)
	}
	return d.Format(time.DateOnly), nil
}

// Download serves GET /diagnosiskeys/download/{date}.
func (g *Gateway) Download(w http.ResponseWriter, r *http.Request) {
	const action = crossroads.FederationDownload
	m, rf := g.authenticate(r)
	if rf != nil {
		g.fail(w, r, action, m, rf, nil)
		return
	}
	tag := r.Header.Get("batchTag")
	detail := map[string]any{"date": r.PathValue("date"), "batchTag": tag}
	fail := func(rf *refusal) { g.fail(w, r, action, m, rf, detail) }
	isProto, rf := accept(r.Header.Get("Accept"))
	if rf != nil {
		fail(rf)
		return
	}
	day, rf := g.parseDate(r.PathValue("date"))
	if rf != nil {
		fail(rf)
		return
	}
	batch, rf := g.batch(r.Context(), day, tag)
	if rf != nil {
		fail(rf)
		return
	}
	detail["batchTag"] = batch.Tag
	stored, err := g.cfg.Store.BatchKeys(r.Context(), batch.Tag, m.country)
	if err != nil {
		g.cfg.Logger.Error("efgs: batch keys", "err", err)
		fail(refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "not able to read; retry"))
		return
	}
	bt := &DiagnosisKeyBatch{Keys: make([]DiagnosisKey, len(stored))}
	for i, k := range stored {
		if err := bt.Keys[i].UnmarshalProto(k.Proto); err != nil {
			g.cfg.Logger.Error("efgs: stored key does not decode", "batch", batch.Tag, "err", err)
			fail(refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, ""))
			return
		}
	}
	detail["keys"] = len(bt.Keys)
	if err := g.record(r.Context(), action, m, nil, detail); err != nil {
		g.cfg.Logger.Error("efgs: audit", "action", action, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the download cannot be recorded; retry")
		return
	}
	next := batch.Next
	if next == "" {
		next = "null"
	}
	h := w.Header()
	h.Set("batchTag", batch.Tag)
	h.Set("nextBatchTag", next)
	h.Set("Cache-Control", "no-store")
	var out []byte
	if isProto {
		h.Set("Content-Type", "application/protobuf; version=1.0")
		h.Set("X-Protobuf-Schema", "Efgs.proto")
		h.Set("X-Protobuf-Message", "eu.interop.DiagnosisKeyBatch")
		out = bt.MarshalProto()
	} else {
		h.Set("Content-Type", "application/json; version=1.0")
		out = bt.AppendJSON(nil)
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	g.m.keysOut.WithLabelValues(m.country).Add(float64(len(bt.Keys)))
	g.m.batchesOut.WithLabelValues(m.country).Inc()
}

// batch finds the batch asked for: tag, or the day's first; it must be of
// that day.
func (g *Gateway) batch(ctx context.Context, day, tag string) (crossroads.EFGSBatch, *refusal) {
	if tag == "" {
		var err error
		if tag, err = g.cfg.Store.FirstBatch(ctx, day); errors.Is(err, crossroads.ErrNotFound) {
			return crossroads.EFGSBatch{}, refuse(http.StatusNotFound, crossroads.ReasonEFGSNoBatch, "no batches for the date")
		} else if err != nil {
			g.cfg.Logger.Error("efgs: first batch", "err", err)
			return crossroads.EFGSBatch{}, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
		}
	}
	b, err := g.cfg.Store.Batch(ctx, tag)
	switch {
	case errors.Is(err, crossroads.ErrNotFound):
		return b, refuse(http.StatusNotFound, crossroads.ReasonEFGSNoBatch, "no batch with the batchTag")
	case err != nil:
		g.cfg.Logger.Error("efgs: batch", "err", err)
		return b, refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, "")
	case b.Day != day:
		return b, refuse(http.StatusBadRequest, crossroads.ReasonEFGSDateMismatch, "the date does not match the batch")
	}
	return b, nil
}

// AuditEntry is the reference's audit information of one upload in a batch.
type AuditEntry struct {
	Country                             string `json:"country"`
	UploadedTime                        string `json:"uploadedTime"`
	UploaderCertificate                 string `json:"uploaderCertificate"`
	UploaderThumbprint                  string `json:"uploaderThumbprint"`
	UploaderOperatorSignature           string `json:"uploaderOperatorSignature"`
	SigningCertificate                  string `json:"signingCertificate"`
	UploaderSigningThumbprint           string `json:"uploaderSigningThumbprint"`
	SigningCertificateOperatorSignature string `json:"signingCertificateOperatorSignature"`
	Amount                              int64  `json:"amount"`
	BatchSignature                      string `json:"batchSignature"`
}

// AuditDownload serves GET /diagnosiskeys/audit/download/{date}/{batchTag}.
func (g *Gateway) AuditDownload(w http.ResponseWriter, r *http.Request) {
	const action = crossroads.FederationAuditDownload
	m, rf := g.authenticate(r)
	if rf != nil {
		g.fail(w, r, action, m, rf, nil)
		return
	}
	detail := map[string]any{"date": r.PathValue("date"), "batchTag": r.PathValue("batchTag")}
	fail := func(rf *refusal) { g.fail(w, r, action, m, rf, detail) }
	day, rf := g.parseDate(r.PathValue("date"))
	if rf != nil {
		fail(rf)
		return
	}
	b, rf := g.batch(r.Context(), day, r.PathValue("batchTag"))
	if rf != nil {
		fail(rf)
		return
	}
	entry := AuditEntry{Country: b.Country, UploadedTime: b.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		UploaderThumbprint: b.UploaderThumbprint, UploaderSigningThumbprint: b.SigningThumbprint, Amount: int64(b.Amount), BatchSignature: b.Signature}
	for _, c := range []struct {
		thumb    string
		pem, sig *string
	}{{b.UploaderThumbprint, &entry.UploaderCertificate, &entry.UploaderOperatorSignature}, {b.SigningThumbprint, &entry.SigningCertificate, &entry.SigningCertificateOperatorSignature}} {
		cert, err := g.cfg.Store.Certificate(r.Context(), c.thumb)
		if err == nil {
			*c.pem, *c.sig = cert.PEM, cert.Signature
		} else if !errors.Is(err, crossroads.ErrNotFound) {
			g.cfg.Logger.Error("efgs: certificate lookup", "err", err)
			fail(refuse(http.StatusInternalServerError, crossroads.ReasonEFGSStoreFailed, ""))
			return
		}
	}
	if err := g.record(r.Context(), action, m, nil, detail); err != nil {
		g.cfg.Logger.Error("efgs: audit", "action", action, "err", err)
		problem.Error(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "the audit download cannot be recorded; retry")
		return
	}
	writeJSON(w, http.StatusOK, []AuditEntry{entry})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, "internal-error", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// Metrics are the gateway's Prometheus counters (per country).
type Metrics struct {
	KeysIn, BatchesIn, KeysOut, BatchesOut, Refused, Callbacks *prometheus.CounterVec
}

// Metrics returns the gateway's counters.
func (g *Gateway) Metrics() Metrics {
	return Metrics{g.m.keysIn, g.m.batchesIn, g.m.keysOut, g.m.batchesOut, g.m.refused, g.m.callbacks}
}
