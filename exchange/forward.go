package exchange

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/minimise"
	"github.com/crossroads-hub/crossroads/pki"
)

// forward calls the provider over mTLS with the hub's signature: the
// operation's method, the canonical target under the registered base URL,
// and only the headers the contract names. The response's body is left
// open for minimise; cleanup closes it.
func (p *Pipeline) forward(ctx context.Context, s *state) (*http.Response, func(), *refusal) {
	op := s.match.Operation
	target := strings.TrimSuffix(s.svc.BaseURL, "/") + s.target
	// The forwarding transport checks that the other end holds the
	// registered provider's certificate.
	ctx, cancel := context.WithTimeout(crossroads.WithProvider(ctx, s.svc.Provider), p.cfg.ProviderTimeout)
	var body io.Reader = http.NoBody
	if len(s.body) > 0 {
		body = bytes.NewReader(s.body)
	}
	// HEAD is answered from the GET: the hub needs the body to minimise,
	// seal and size it.
	req, err := http.NewRequestWithContext(ctx, op.Method, target, body)
	if err != nil {
		cancel()
		p.cfg.Logger.Error("provider request", "exchange", s.rec.ExchangeID, "service", s.svc.ID, "err", transportError(err))
		return nil, nil, refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
	}
	hdr := req.Header
	hdr.Set(pki.HeaderExchangeID, s.rec.ExchangeID)
	hdr.Set(pki.HeaderRequester, s.rec.Requester)
	hdr.Set(pki.HeaderUser, s.rec.User)
	hdr.Set(pki.HeaderPurpose, s.rec.Purpose)
	hdr.Set(pki.HeaderAuthorisation, s.rec.AuthorisationID)
	if s.rec.Subject != "" {
		hdr.Set(pki.HeaderSubject, s.rec.Subject)
	}
	if s.rec.CorrelationID != "" {
		hdr.Set(pki.HeaderCorrelationID, s.rec.CorrelationID)
	}
	if len(s.body) > 0 {
		hdr.Set("Content-Type", s.match.Body)
	}
	hdr.Set("Accept", "application/json")
	if err := pki.SignRequest(p.cfg.Signer, req, s.body, pki.RequestClaims{
		ExchangeID: s.rec.ExchangeID, Requester: s.rec.Requester, User: s.rec.User, Purpose: s.rec.Purpose,
		Subject: s.rec.Subject, SubjectKind: s.rec.SubjectKind, AuthorisationID: s.rec.AuthorisationID,
		Service: s.rec.Service, Operation: op.ID, IssuedAt: s.start,
	}); err != nil {
		cancel()
		p.cfg.Logger.Error("sign forwarded request", "exchange", s.rec.ExchangeID, "err", err)
		return nil, nil, refuse(http.StatusInternalServerError, "signing-failed", "")
	}
	t0 := time.Now()
	resp, err := p.client.Do(req)
	p.cfg.Metrics.providerSeconds.WithLabelValues(s.rec.Service).Observe(time.Since(t0).Seconds())
	if err != nil {
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			p.cfg.Metrics.providerError(s.rec.Service, "timeout")
			return nil, nil, refuse(http.StatusGatewayTimeout, crossroads.ReasonProviderTimeout, "")
		}
		p.cfg.Metrics.providerError(s.rec.Service, "unreachable")
		p.cfg.Logger.Warn("provider unreachable", "exchange", s.rec.ExchangeID, "service", s.rec.Service, "err", transportError(err))
		return nil, nil, refuse(http.StatusBadGateway, crossroads.ReasonProviderUnreachable, "")
	}
	s.rec.ProviderStatus = resp.StatusCode
	cleanup := func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection if cheap
		resp.Body.Close()
		cancel()
	}
	if r := providerStatus(resp.StatusCode); r != nil {
		cleanup()
		if r.reason == crossroads.ReasonProviderError {
			p.cfg.Metrics.providerError(s.rec.Service, "status")
		}
		return nil, nil, r
	}
	return resp, cleanup, nil
}

// providerStatus maps a provider's status to what the requester is told:
// 200, 201 and 204 pass; 404, 409 and 422 become the hub's own problems
// (never the provider's body: it may hold data the authorisation does not
// grant, or internals); any other status is a provider error.
func providerStatus(code int) *refusal {
	switch code {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		return nil
	case http.StatusNotFound:
		return refuse(http.StatusNotFound, crossroads.ReasonNotFoundAtProvider, "the provider has no such record")
	case http.StatusConflict:
		return refuse(http.StatusConflict, crossroads.ReasonProviderConflict, "the provider refused the request as conflicting with its state")
	case http.StatusUnprocessableEntity:
		return refuse(http.StatusUnprocessableEntity, crossroads.ReasonProviderUnprocessable, "the provider could not process the request")
	}
	return refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
}

// minimise reads the provider's response and keeps only what g grants. It
// returns the released body and its reduced content type: the media type
// alone (and a charset for text/*), so nothing passes in parameters.
func (p *Pipeline) minimise(s *state, g *minimise.Grants, resp *http.Response) ([]byte, string, *refusal) {
	if resp.StatusCode == http.StatusNoContent {
		return nil, "", nil
	}
	raw := resp.Header.Get("Content-Type")
	mt, params := "", map[string]string(nil)
	if raw != "" {
		var err error
		if mt, params, err = mime.ParseMediaType(raw); err != nil {
			p.cfg.Metrics.providerError(s.rec.Service, "bad-content-type")
			return nil, "", refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
		}
	}
	isJSON := isJSONMedia(mt)
	if !isJSON && !g.Whole() {
		return nil, "", refuse(http.StatusBadGateway, crossroads.ReasonResponseNotGranted, "the response is not JSON and the authorisation does not grant it whole")
	}
	if isJSON {
		return p.minimiseJSON(s, g, resp, mt)
	}
	body, r := p.readResponse(s, resp)
	if r != nil {
		return nil, "", r
	}
	if len(body) == 0 {
		return nil, "", nil
	}
	ctype := mt
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if cs := params["charset"]; strings.HasPrefix(mt, "text/") && validCharset(cs) {
		ctype += "; charset=" + strings.ToLower(cs)
	}
	return body, ctype, nil
}

// minimiseJSON streams the provider's JSON through the grants: memory is
// bounded by what is kept and the nesting depth, not by the response.
func (p *Pipeline) minimiseJSON(s *state, g *minimise.Grants, resp *http.Response, mt string) ([]byte, string, *refusal) {
	src := &countingReader{r: io.LimitReader(resp.Body, p.cfg.MaxResponseBody+1)}
	var out bytes.Buffer
	err := g.Stream(&out, src)
	switch {
	case src.n > p.cfg.MaxResponseBody:
		p.cfg.Metrics.providerError(s.rec.Service, "too-large")
		return nil, "", refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
	case err == nil:
		return out.Bytes(), mt, nil
	case src.n == 0 && src.eof:
		return nil, "", nil // no body at all (e.g. a 201 without content)
	case errors.Is(err, minimise.ErrNotJSON):
		p.cfg.Metrics.providerError(s.rec.Service, "bad-json")
		return nil, "", refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
	case errors.Is(err, context.DeadlineExceeded):
		p.cfg.Metrics.providerError(s.rec.Service, "timeout")
		return nil, "", refuse(http.StatusGatewayTimeout, crossroads.ReasonProviderTimeout, "")
	}
	p.cfg.Metrics.providerError(s.rec.Service, "read")
	return nil, "", refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
}

// countingReader counts what it reads and whether it reached the end.
type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func (p *Pipeline) readResponse(s *state, resp *http.Response) ([]byte, *refusal) {
	max := p.cfg.MaxResponseBody
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			p.cfg.Metrics.providerError(s.rec.Service, "timeout")
			return nil, refuse(http.StatusGatewayTimeout, crossroads.ReasonProviderTimeout, "")
		}
		p.cfg.Metrics.providerError(s.rec.Service, "read")
		return nil, refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
	}
	if int64(len(b)) > max {
		p.cfg.Metrics.providerError(s.rec.Service, "too-large")
		return nil, refuse(http.StatusBadGateway, crossroads.ReasonProviderError, "")
	}
	return b, nil
}

// validCharset: a charset name of 1–32 characters of [A-Za-z0-9._:-].
func validCharset(cs string) bool {
	if cs == "" || len(cs) > 32 {
		return false
	}
	for i := 0; i < len(cs); i++ {
		c := cs[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// transportError strips the URL (which may hold a person id) from a client
// error before it is logged.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
