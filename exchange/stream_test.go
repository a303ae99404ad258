package exchange

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/minimise"
)

// docReader yields a JSON document of about n bytes — an array of records
// whose names are granted and whose notes are not — without holding it.
type docReader struct {
	n, sent int
	buf     []byte
	done    bool
}

func (d *docReader) Read(p []byte) (int, error) {
	for len(d.buf) == 0 {
		switch {
		case d.done:
			return 0, io.EOF
		case d.sent == 0:
			d.buf = []byte(`[`)
		case d.sent >= d.n:
			d.buf, d.done = []byte(`{"name":"last"}]`), true
		default:
			d.buf = []byte(`{"name":"x","note":"` + strings.Repeat("n", 200) + `","id":12345},`)
		}
		d.sent += len(d.buf)
	}
	n := copy(p, d.buf)
	d.buf = d.buf[n:]
	return n, nil
}

// TestMinimiseStreamsLargeResponse: a 10 MB provider response is minimised
// on the way through, with memory bounded by what is kept (here about
// 0.7 MB of names), not by the response (issue 8: < 32 MB extra heap).
func TestMinimiseStreamsLargeResponse(t *testing.T) {
	p := NewPipeline(Config{MaxResponseBody: 11 << 20})
	g, _ := minimise.Compile([]string{"/name"})
	s := &state{}
	s.rec.Service = "big"
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(&docReader{n: 10 << 20})}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, ctype, r := p.minimise(s, g, resp)
	runtime.ReadMemStats(&after)
	if r != nil {
		t.Fatalf("refused: %s", r.reason)
	}
	if ctype != "application/json" || !bytes.HasPrefix(out, []byte(`[{"name":"x"},`)) || bytes.Contains(out, []byte("note")) {
		t.Fatalf("released %q… (%s)", out[:min(len(out), 64)], ctype)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("minimising 10 MB allocated %d MiB", alloc>>20)
	}

	// Beyond the response limit: a provider error, whatever the grant.
	resp.Body = io.NopCloser(&docReader{n: 12 << 20})
	if _, _, r := p.minimise(s, g, resp); r == nil || r.reason != crossroads.ReasonProviderError {
		t.Fatalf("oversized response: %+v", r)
	}
	// Not JSON although it says so.
	resp.Body = io.NopCloser(strings.NewReader(`{"name":`))
	if _, _, r := p.minimise(s, g, resp); r == nil || r.reason != crossroads.ReasonProviderError {
		t.Fatalf("bad JSON: %+v", r)
	}
	// No body at all.
	resp.StatusCode, resp.Body = 201, io.NopCloser(strings.NewReader(""))
	if out, ctype, r := p.minimise(s, g, resp); r != nil || len(out) != 0 || ctype != "" {
		t.Fatalf("empty 201: %q %q %+v", out, ctype, r)
	}
}
