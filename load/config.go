// Package load is the load harness of Crossroads: a generator of HTTPS
// traffic over mutual TLS with a weighted mix of requests (closed or open
// model), a bare reverse proxy used as a baseline, and the comparison table
// of docs/performance.md.
package load

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads/pki"
)

// Mode is the load model.
type Mode string

const (
	// ModeClosed runs Concurrency workers, each sending its next request as
	// soon as the previous one is answered.
	ModeClosed Mode = "closed"
	// ModeOpen sends Rate requests per second on a fixed schedule whatever
	// the answers, up to MaxInFlight outstanding; latency is measured from
	// the intended send time so that a stall is not hidden (no coordinated
	// omission).
	ModeOpen Mode = "open"
)

// Bounds that keep a run finite and sane.
const (
	MaxDuration    = 24 * time.Hour
	MaxConcurrency = 100_000
	MaxRate        = 1_000_000
	maxWeightTotal = 1 << 20

	// DefaultOpenConnections is the HTTP/1.1 pool of open mode.
	DefaultOpenConnections = 64
)

// Request is one kind of request in the mix.
type Request struct {
	// Name labels the request in mix files; optional.
	Name string
	// Weight is the relative frequency (≥ 1; 0 means 1).
	Weight int
	Method string // default GET
	// Path is appended to Config.Target; it may carry a query.
	Path   string
	Header http.Header
	Body   []byte
	// Expect is the expected status; 0 expects nothing (never unexpected).
	Expect int
}

// Config describes one load run.
type Config struct {
	// Target is the base URL, e.g. "https://127.0.0.1:8443".
	Target string
	// TLS is the client configuration: certificate, CA pool. TLS 1.3 is
	// enforced. Nil means a plain-HTTP target (tests and tooling only).
	TLS *tls.Config
	// Requests is the weighted mix.
	Requests []Request
	Mode     Mode // default ModeClosed

	// Concurrency is the number of workers in closed mode (default 1).
	Concurrency int
	// Rate is the arrival rate in open mode, requests per second.
	Rate float64
	// MaxInFlight caps outstanding requests in open mode (default 10,000).
	// When reached, the schedule waits; the wait is counted in the latency
	// and in Late, and what the window closes on is counted as Unsent.
	MaxInFlight int
	// LateAfter is how far behind its intended time a send may leave before
	// it counts as late (open mode; default 1ms).
	LateAfter time.Duration

	Warmup   time.Duration
	Duration time.Duration // required, at most MaxDuration
	// MaxRequests, if > 0, ends the run after that many measured requests.
	MaxRequests int64
	// Timeout bounds each request (default 10s).
	Timeout time.Duration

	// Connections is the size of the keep-alive pool. HTTP/1.1: at most that
	// many connections (0: Concurrency in closed mode,
	// DefaultOpenConnections in open mode). HTTP/2: that many connections, requests spread round-robin,
	// more only when a server's stream limit is reached (0: 1).
	Connections int
	// HTTP2 negotiates HTTP/2 instead of HTTP/1.1.
	HTTP2 bool
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Mode == "" {
		cfg.Mode = ModeClosed
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 10_000
	}
	if cfg.LateAfter == 0 {
		cfg.LateAfter = time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Connections == 0 {
		switch {
		case cfg.HTTP2:
			cfg.Connections = 1
		case cfg.Mode == ModeClosed:
			cfg.Connections = cfg.Concurrency
		default:
			// Unbounded, a burst would dial a connection per request and
			// drown both sides in handshakes; requests beyond the pool
			// wait for a connection, and the wait counts in their latency.
			cfg.Connections = DefaultOpenConnections
		}
	}
	u, err := url.Parse(cfg.Target)
	switch {
	case err != nil:
		return cfg, fmt.Errorf("load: target: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return cfg, fmt.Errorf("load: target %q: want an absolute http(s) URL", cfg.Target)
	case u.Scheme == "https" && cfg.TLS == nil:
		return cfg, errors.New("load: an https target needs a TLS configuration")
	case cfg.Mode != ModeClosed && cfg.Mode != ModeOpen:
		return cfg, fmt.Errorf("load: mode %q: want %q or %q", cfg.Mode, ModeClosed, ModeOpen)
	case cfg.Duration <= 0 || cfg.Duration > MaxDuration:
		return cfg, fmt.Errorf("load: duration %s: want (0, %s]", cfg.Duration, MaxDuration)
	case cfg.Warmup < 0 || cfg.Warmup > MaxDuration:
		return cfg, fmt.Errorf("load: warm-up %s: want [0, %s]", cfg.Warmup, MaxDuration)
	case cfg.Concurrency < 0 || cfg.Concurrency > MaxConcurrency:
		return cfg, fmt.Errorf("load: concurrency %d: want [1, %d]", cfg.Concurrency, MaxConcurrency)
	case cfg.MaxInFlight < 0 || cfg.MaxInFlight > MaxConcurrency:
		return cfg, fmt.Errorf("load: max in-flight %d: want [1, %d]", cfg.MaxInFlight, MaxConcurrency)
	case cfg.Mode == ModeOpen && (!(cfg.Rate > 0) || cfg.Rate > MaxRate):
		return cfg, fmt.Errorf("load: rate %g: want (0, %d] requests/s", cfg.Rate, MaxRate)
	case cfg.Connections < 0 || cfg.Connections > MaxConcurrency:
		return cfg, fmt.Errorf("load: connections %d: want [0, %d]", cfg.Connections, MaxConcurrency)
	case cfg.Timeout < 0 || cfg.LateAfter < 0 || cfg.MaxRequests < 0:
		return cfg, errors.New("load: negative timeout, late-after or max-requests")
	case len(cfg.Requests) == 0:
		return cfg, errors.New("load: empty request mix")
	}
	total := 0
	for i, r := range cfg.Requests {
		if r.Weight < 0 {
			return cfg, fmt.Errorf("load: request %d: negative weight", i)
		}
		if !strings.HasPrefix(r.Path, "/") {
			return cfg, fmt.Errorf("load: request %d: path %q must start with /", i, r.Path)
		}
		total += max(r.Weight, 1)
		if total > maxWeightTotal {
			return cfg, fmt.Errorf("load: weights add up to more than %d", maxWeightTotal)
		}
	}
	return cfg, nil
}

// mixFile is the on-disk form of a mix (JSON or YAML).
type mixFile struct {
	Requests []mixRequest `json:"requests" yaml:"requests"`
}

type mixRequest struct {
	Name   string            `json:"name" yaml:"name"`
	Weight int               `json:"weight" yaml:"weight"`
	Method string            `json:"method" yaml:"method"`
	Path   string            `json:"path" yaml:"path"`
	Header map[string]string `json:"header" yaml:"header"`
	// Body is sent as is; BodyJSON, if set, is marshalled (JSON files) or
	// converted from YAML.
	Body     string `json:"body" yaml:"body"`
	BodyJSON any    `json:"bodyJson" yaml:"bodyJson"`
	Expect   int    `json:"expect" yaml:"expect"`
}

// ParseMix reads a mix: {"requests": [{"name", "weight", "method", "path",
// "header": {name: value}, "body" | "bodyJson", "expect"}]}. format is
// "json" or "yaml".
func ParseMix(data []byte, format string) ([]Request, error) {
	var f mixFile
	switch format {
	case "json":
		d := json.NewDecoder(bytes.NewReader(data))
		d.DisallowUnknownFields()
		if err := d.Decode(&f); err != nil {
			return nil, fmt.Errorf("load: mix: %w", err)
		}
	case "yaml", "yml":
		d := yaml.NewDecoder(bytes.NewReader(data))
		d.KnownFields(true)
		if err := d.Decode(&f); err != nil {
			return nil, fmt.Errorf("load: mix: %w", err)
		}
	default:
		return nil, fmt.Errorf("load: mix format %q: want json or yaml", format)
	}
	if len(f.Requests) == 0 {
		return nil, errors.New("load: mix: no requests")
	}
	out := make([]Request, len(f.Requests))
	for i, m := range f.Requests {
		r := Request{Name: m.Name, Weight: m.Weight, Method: strings.ToUpper(m.Method), Path: m.Path, Expect: m.Expect}
		if r.Method == "" {
			r.Method = http.MethodGet
		}
		if len(m.Header) > 0 {
			r.Header = make(http.Header, len(m.Header))
			for k, v := range m.Header {
				r.Header.Set(k, v)
			}
		}
		switch {
		case m.Body != "" && m.BodyJSON != nil:
			return nil, fmt.Errorf("load: mix: request %d: both body and bodyJson", i)
		case m.Body != "":
			r.Body = []byte(m.Body)
		case m.BodyJSON != nil:
			b, err := json.Marshal(m.BodyJSON)
			if err != nil {
				return nil, fmt.Errorf("load: mix: request %d: bodyJson: %w", i, err)
			}
			r.Body = b
			if r.Header.Get("Content-Type") == "" {
				if r.Header == nil {
					r.Header = http.Header{}
				}
				r.Header.Set("Content-Type", "application/json")
			}
		}
		if !strings.HasPrefix(r.Path, "/") {
			return nil, fmt.Errorf("load: mix: request %d: path %q must start with /", i, r.Path)
		}
		out[i] = r
	}
	return out, nil
}

// LoadMix reads a mix file; the format follows the extension (.json, .yaml,
// .yml).
func LoadMix(path string) ([]Request, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load: mix: %w", err)
	}
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	return ParseMix(data, ext)
}

// ClientTLS builds a TLS 1.3 client configuration from PEM files: the
// client certificate and key, and the CA that signs the server.
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cfg, err := pki.LoadClientTLS(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return cfg, nil
}

// Baseline adapts a hub mix for the baselines: expectations are cleared
// (the provider answers every request; there is no decision to check) and,
// if direct, the /v1/exchange/{serviceId} prefix is stripped as the bare
// proxy does, so that the same requests reach the provider itself.
func Baseline(reqs []Request, direct bool) []Request {
	out := make([]Request, len(reqs))
	for i, r := range reqs {
		r.Expect = 0
		r.Header = r.Header.Clone()
		if direct {
			path, query, _ := strings.Cut(r.Path, "?")
			if rest, ok := stripExchange(path); ok {
				r.Path = rest
				if query != "" {
					r.Path += "?" + query
				}
			}
		}
		out[i] = r
	}
	return out
}
