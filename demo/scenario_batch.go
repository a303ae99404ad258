package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/batch"
	"github.com/crossroads-hub/crossroads/pki"
)

// BatchPersons is the size of the demo's batch.
const BatchPersons = 1000

// BatchItems returns the demo's batch of n items for the OCMW, one person
// each: people it has a file on (allowed), people of the register it has
// none on (no-integration), one in ten for an uncovered purpose
// (purpose-not-covered), one in fifty for an operation the service does
// not have (unknown-operation) and one in fifty for a service it has no
// authorisation for (no-authorisation).
func BatchItems(people []Person, n int) []crossroads.BatchItem {
	extra := People(len(people) + n)[len(people):] // valid INSZ numbers, no file anywhere
	company := Companies(DemoCompanies)[0].Number
	items := make([]crossroads.BatchItem, n)
	for i := range items {
		it := crossroads.BatchItem{Operation: ServicePerson + "/" + OpRead, Purpose: "social-aid", User: "batch@" + OCMW,
			CorrelationID: fmt.Sprintf("demo-%d", i+1)}
		subject := extra[i].INSZ
		if i < len(people)-1 {
			subject = people[i].INSZ
		}
		switch {
		case i%50 == 13:
			it.Operation = ServicePerson + "/salary"
		case i%50 == 29:
			it.Operation, subject = ServiceEnterprise+"/"+OpRead, company
		case i%10 == 7:
			it.Purpose, subject = "marketing", people[i%(len(people)-1)].INSZ
		}
		it.Parameters = map[string]string{"subject": subject}
		items[i] = it
	}
	return items
}

// NDJSON encodes items one per line.
func NDJSON(items []crossroads.BatchItem) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range items {
		enc.Encode(&items[i])
	}
	return b.Bytes()
}

// SubmitBatch posts an NDJSON batch as participant as.
func (c *Clients) SubmitBatch(ctx context.Context, as string, ndjson []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/v1/batches", bytes.NewReader(ndjson))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", batch.ContentType)
	req.Header.Set("Crossroads-User", "demo-user@"+as)
	return c.batchDo(as, req)
}

// BatchGet reads path (/v1/batches/{id} or …/results) as participant as.
func (c *Clients) BatchGet(ctx context.Context, as, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Crossroads-User", "demo-user@"+as)
	return c.batchDo(as, req)
}

func (c *Clients) batchDo(as string, req *http.Request) (*http.Response, []byte, error) {
	cl, ok := c.http[as]
	if !ok {
		return nil, nil, fmt.Errorf("no certificate for %s", as)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp, b, err
}

// AwaitBatch polls a batch until it is done (or timeout).
func (c *Clients) AwaitBatch(ctx context.Context, as, id string, timeout time.Duration) (batch.Progress, error) {
	deadline := time.Now().Add(timeout)
	for {
		var p batch.Progress
		resp, b, err := c.BatchGet(ctx, as, "/v1/batches/"+id)
		if err != nil {
			return p, err
		}
		if resp.StatusCode != http.StatusOK {
			return p, fmt.Errorf("batch %s: %s: %s", id, resp.Status, b)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return p, err
		}
		if p.State == crossroads.BatchDone {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("batch %s: %d of %d items done after %s", id, p.Done, p.Total, timeout)
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ReadResults parses an NDJSON results body.
func ReadResults(body []byte) ([]crossroads.BatchResult, error) {
	var out []crossroads.BatchResult
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var r crossroads.BatchResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("result line %d: %w", len(out)+1, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// CheckResults checks a batch's results against its n items: one line per
// item in order, each with a receipt and an exchange id, each allowed one
// with a seal over its released body that names the item's exchange. It
// returns the count of each reason, and of each outcome as "outcome:…".
func CheckResults(results []crossroads.BatchResult, n int, roots *x509.CertPool) (map[string]int, error) {
	if len(results) != n {
		return nil, fmt.Errorf("%d results for %d items", len(results), n)
	}
	counts := map[string]int{}
	for i, r := range results {
		if r.Seq != i+1 {
			return nil, fmt.Errorf("result %d is item %d", i+1, r.Seq)
		}
		if r.ExchangeID == "" || r.Receipt == "" {
			return nil, fmt.Errorf("item %d (%s %s): no exchange id or receipt", r.Seq, r.Outcome, r.Reason)
		}
		counts["outcome:"+r.Outcome]++
		counts[string(r.Reason)]++
		if r.Outcome != crossroads.OutcomeAllowed {
			continue
		}
		c, err := pki.VerifySeal(r.Seal, batch.Released(r), roots, time.Now())
		if err != nil {
			return nil, fmt.Errorf("item %d: seal: %w", r.Seq, err)
		}
		if c.ExchangeID != r.ExchangeID || c.Status != r.Status {
			return nil, fmt.Errorf("item %d: the seal names exchange %s, status %d", r.Seq, c.ExchangeID, c.Status)
		}
	}
	return counts, nil
}

func describeCounts(counts map[string]int) string {
	var reasons []string
	for k, v := range counts {
		if strings.HasPrefix(k, "outcome:") || k == string(crossroads.ReasonAllowed) {
			continue
		}
		reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(reasons)
	return fmt.Sprintf("%d allowed, %d denied (%s), %d failed; seals and receipts checked",
		counts["outcome:"+crossroads.OutcomeAllowed], counts["outcome:"+crossroads.OutcomeDenied], strings.Join(reasons, ", "), counts["outcome:"+crossroads.OutcomeFailed])
}

// BatchStep is the demo's batch consultation: the OCMW submits 1,000
// persons at once, the hub runs each item through the exchange pipeline,
// and the results come back with mixed outcomes, each with its own seal
// and receipt.
func BatchStep(people []Person, roots *x509.CertPool) Step {
	var counts map[string]int
	return Step{Name: "batch of 1,000 persons, mixed outcomes", As: OCMW, Method: http.MethodPost, Service: "batches", WantStatus: http.StatusOK,
		Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
			resp, b, err := c.SubmitBatch(ctx, OCMW, NDJSON(BatchItems(people, BatchPersons)))
			if err != nil || resp.StatusCode != http.StatusAccepted {
				return resp, b, err
			}
			var p batch.Progress
			if err := json.Unmarshal(b, &p); err != nil {
				return nil, nil, err
			}
			if _, err := c.AwaitBatch(ctx, OCMW, p.ID, 5*time.Minute); err != nil {
				return nil, nil, err
			}
			return c.BatchGet(ctx, OCMW, "/v1/batches/"+p.ID+"/results")
		},
		Check: func(b []byte, h http.Header) error {
			results, err := ReadResults(b)
			if err != nil {
				return err
			}
			if counts, err = CheckResults(results, BatchPersons, roots); err != nil {
				return err
			}
			for _, want := range []crossroads.Reason{crossroads.ReasonAllowed, crossroads.ReasonNoIntegration, crossroads.ReasonPurposeNotCovered,
				crossroads.ReasonUnknownOperation, crossroads.ReasonNoAuthorisation} {
				if counts[string(want)] == 0 {
					return fmt.Errorf("no item %s: %v", want, counts)
				}
			}
			return nil
		},
		Summary: func([]byte) string { return describeCounts(counts) },
	}
}
