package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTP reads a log published in the tlog-tiles layout under a base URL
// (for the hub, https://host/v1/log/).
type HTTP struct {
	Base   string
	Client *http.Client // http.DefaultClient when nil
}

// ErrNotFound is returned for a resource the log does not serve.
var ErrNotFound = errors.New("not found")

// TilePath returns the tlog-tiles path of a hash tile ("tile/L/N[.p/W]"),
// or of an entry bundle when level is -1 ("tile/entries/N[.p/W]").
func TilePath(level int, index uint64, p uint8) string {
	var b strings.Builder
	b.WriteString("tile/")
	if level < 0 {
		b.WriteString("entries/")
	} else {
		fmt.Fprintf(&b, "%d/", level)
	}
	var groups []string
	for n := index; ; n /= 1000 {
		groups = append(groups, fmt.Sprintf("%03d", n%1000))
		if n < 1000 {
			break
		}
	}
	for i := len(groups) - 1; i >= 0; i-- {
		if i > 0 {
			b.WriteString("x")
		}
		b.WriteString(groups[i])
		if i > 0 {
			b.WriteString("/")
		}
	}
	if p > 0 {
		fmt.Fprintf(&b, ".p/%d", p)
	}
	return b.String()
}

// Get fetches a path under the base URL.
func (h *HTTP) Get(ctx context.Context, path string) ([]byte, error) {
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	u := strings.TrimSuffix(h.Base, "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %w", u, ErrNotFound)
	default:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
}

// ReadCheckpoint implements Source.
func (h *HTTP) ReadCheckpoint(ctx context.Context) ([]byte, error) { return h.Get(ctx, "checkpoint") }

// ReadTile implements Source. A missing partial tile falls back to the
// full one, as the tlog-tiles spec allows.
func (h *HTTP) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := h.Get(ctx, TilePath(int(level), index, p))
	if p > 0 && errors.Is(err, ErrNotFound) {
		b, err = h.Get(ctx, TilePath(int(level), index, 0))
	}
	return b, err
}

// ReadEntryBundle implements Source, with the same fallback.
func (h *HTTP) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	b, err := h.Get(ctx, TilePath(-1, index, p))
	if p > 0 && errors.Is(err, ErrNotFound) {
		b, err = h.Get(ctx, TilePath(-1, index, 0))
	}
	return b, err
}
