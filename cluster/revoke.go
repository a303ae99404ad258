package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
)

// Revoke revokes every certificate of participant through node i's admin
// API, as the operator, and returns once the node acknowledged.
func (c *Cluster) Revoke(ctx context.Context, i int, participant string) error {
	ops := c.Client(demo.Operator, false)
	base := "https://" + c.Nodes[i].Addr
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/admin/certificates", nil)
	resp, err := ops.Do(req)
	if err != nil {
		return fmt.Errorf("cluster: list certificates: %w", err)
	}
	var list struct{ Certificates []crossroads.Certificate }
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("cluster: list certificates: %w", err)
	}
	n := 0
	for _, cert := range list.Certificates {
		if cert.Participant != participant || !cert.RevokedAt.IsZero() {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/admin/certificates/"+cert.Serial+"/revoke",
			bytes.NewReader([]byte(`{"reason":"multi-node test: key compromise"}`)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := ops.Do(req)
		if err != nil {
			return fmt.Errorf("cluster: revoke: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("cluster: revoke %s: status %d", cert.Serial, resp.StatusCode)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("cluster: %s has no certificate to revoke", participant)
	}
	return nil
}

// Refused reports whether node i refuses participant's certificate now,
// on a new connection: the handshake fails, or the request is refused as
// unauthenticated (401) or forbidden (403).
func (c *Cluster) Refused(ctx context.Context, i int, participant string) (bool, error) {
	cl := c.Client(participant, false)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.Nodes[i].Addr+"/v1/audit/proofs/multi-probe", nil)
	resp, err := cl.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return true, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden, nil
}

// RefusedWithin revokes participant through node i and returns, for every
// node, how long after the revocation was acknowledged it first refused
// the certificate (polling every 20 ms up to limit; -1 if it never did).
func (c *Cluster) RefusedWithin(ctx context.Context, i int, participant string, limit time.Duration) ([]time.Duration, error) {
	for j := range c.Nodes {
		if refused, err := c.Refused(ctx, j, participant); err != nil || refused {
			return nil, fmt.Errorf("cluster: node %d refuses %s before the revocation (%v)", j, participant, err)
		}
	}
	if err := c.Revoke(ctx, i, participant); err != nil {
		return nil, err
	}
	t0 := time.Now()
	out := make([]time.Duration, len(c.Nodes))
	var wg sync.WaitGroup
	for j := range c.Nodes {
		out[j] = -1
		wg.Go(func() {
			for time.Since(t0) <= limit {
				if refused, _ := c.Refused(ctx, j, participant); refused {
					out[j] = time.Since(t0)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return out, nil
}

// Integrator returns the index of the node that integrates the shared log
// (crossroads_audit_log_integrating 1 in its metrics), or -1 if none does.
func (c *Cluster) Integrator(ctx context.Context) int {
	cl := c.Client(demo.Operator, false)
	for i, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+n.Addr+"/metrics", nil)
		resp, err := cl.Do(req)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(b, []byte("\ncrossroads_audit_log_integrating 1\n")) {
			return i
		}
	}
	return -1
}

// Records returns node i's crossroads_audit_records_total (the records it
// committed since it started), -1 if it cannot be read.
func (c *Cluster) Records(ctx context.Context, i int) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.Nodes[i].Addr+"/metrics", nil)
	resp, err := c.Client(demo.Operator, false).Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	const name = "\ncrossroads_audit_records_total "
	j := bytes.Index(b, []byte(name))
	if j < 0 {
		return -1
	}
	rest := b[j+len(name):]
	if k := bytes.IndexByte(rest, '\n'); k >= 0 {
		rest = rest[:k]
	}
	v, err := strconv.ParseFloat(string(rest), 64)
	if err != nil {
		return -1
	}
	return v
}
