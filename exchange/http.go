package exchange

import (
	"net/http"
	"strconv"
	"strings"
)

// Handler is the HTTP adapter of the pipeline:
// {METHOD} /v1/exchange/{serviceId}/{path...}.
type Handler struct {
	p *Pipeline
}

// New returns the exchange API's HTTP handler over a new pipeline.
func New(cfg Config) *Handler { return &Handler{p: NewPipeline(cfg)} }

// Pipeline returns the pipeline the handler adapts.
func (h *Handler) Pipeline() *Pipeline { return h.p }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Request{
		TLS: r.TLS, Method: r.Method, RawQuery: r.URL.RawQuery,
		Header: r.Header, Body: r.Body, ContentLength: r.ContentLength,
	}
	if raw := r.URL.EscapedPath(); strings.HasPrefix(raw, Prefix) {
		rest := raw[len(Prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			req.Service, req.Path = rest[:i], rest[i:]
		} else {
			req.Service = rest
		}
	}
	end := region(r.Context(), "exchange")
	res, _ := h.p.Do(r.Context(), req)
	end()
	hdr := w.Header()
	for k, v := range res.Header {
		hdr[k] = v
	}
	if res.Status != http.StatusNoContent {
		hdr.Set("Content-Length", strconv.Itoa(len(res.Body)))
	}
	w.WriteHeader(res.Status)
	if r.Method != http.MethodHead && len(res.Body) > 0 {
		w.Write(res.Body)
	}
}
