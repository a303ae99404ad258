package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/pki"
)

// Step is one call of the scenario and what it must give.
type Step struct {
	Name       string
	As         string // participant whose certificate is used
	Method     string // default GET
	Service    string
	Path       string // service-relative, the subject in it
	Purpose    string
	Subject    string // Crossroads-Subject (optional: the path names the subject)
	Body       string // request body (Content-Type application/json)
	WantStatus int    // 0: the connection must be refused
	WantReason string // problem reason for denials
	// Check inspects an allowed answer (minimisation, seal).
	Check func(body []byte, h http.Header) error
	// Before runs first (e.g. revoke a certificate).
	Before func(ctx context.Context) error
	// Do, if set, makes the step's call instead of an exchange (the
	// person directory, the citizen's view); Service then only labels it.
	Do func(ctx context.Context, c *Clients) (*http.Response, []byte, error)
	// Summary, if set, writes the detail of an answer that passed Check.
	Summary func(body []byte) string
}

// Result is what a step gave.
type Result struct {
	Step   Step
	Status int
	Reason string
	Note   string
	OK     bool
}

// Clients holds one mTLS client per participant.
type Clients struct {
	Base  string // https://127.0.0.1:port
	Roots *x509.CertPool
	certs map[string]tls.Certificate
	http  map[string]*http.Client
	// Login logs a person in at the citizens' identity provider and
	// returns their ID token.
	Login func(ctx context.Context, person string) (string, error)
}

// NewClients makes an HTTP client per participant certificate.
func NewClients(base string, roots *x509.CertPool, certs map[string]tls.Certificate) *Clients {
	c := &Clients{Base: base, Roots: roots, certs: certs, http: map[string]*http.Client{}}
	for id, cert := range certs {
		c.http[id] = &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: pki.ClientTLSConfig(roots, cert), MaxIdleConnsPerHost: 64},
		}
	}
	return c
}

// Client returns the participant's client.
func (c *Clients) Client(id string) *http.Client { return c.http[id] }

// Exchange performs one GET exchange call.
func (c *Clients) Exchange(ctx context.Context, as, service, path, purpose, subject string) (*http.Response, []byte, error) {
	return c.Call(ctx, as, http.MethodGet, service, path, purpose, subject, "")
}

// Call performs one exchange call with any method; a non-empty body is
// sent as application/json.
func (c *Clients) Call(ctx context.Context, as, method, service, path, purpose, subject, body string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+"/v1/exchange/"+service+"/"+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Crossroads-Purpose", purpose)
	req.Header.Set("Crossroads-User", "demo-user@"+as)
	if subject != "" {
		req.Header.Set("Crossroads-Subject", subject)
	}
	cl, ok := c.http[as]
	if !ok {
		return nil, nil, fmt.Errorf("no certificate for %s", as)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

// Integration sends a change to the person directory (PUT or DELETE
// /v1/integrations) as participant as, on behalf of its demo user.
func (c *Clients) Integration(ctx context.Context, as, method string, in map[string]any) (*http.Response, []byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+"/v1/integrations", bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Crossroads-User", "demo-user@"+as)
	cl, ok := c.http[as]
	if !ok {
		return nil, nil, fmt.Errorf("no certificate for %s", as)
	}
	return do(cl, req)
}

// Citizen logs person in (c.Login) and reads path (/v1/me/files, …) with
// the ID token, without a client certificate, as the citizen's browser.
func (c *Clients) Citizen(ctx context.Context, person, path string) (*http.Response, []byte, error) {
	if c.Login == nil {
		return nil, nil, errors.New("no identity provider for citizens")
	}
	tok, err := c.Login(ctx, person)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.Roots}}}
	defer cl.CloseIdleConnections()
	return do(cl, req)
}

func do(cl *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := cl.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

// Scenario returns the demo's steps: allowed exchanges with minimisation,
// every denial reason, and a revoked certificate.
func Scenario(people []Person, revoke func(ctx context.Context, participant string) error, roots *x509.CertPool) []Step {
	p0, p1, p2 := people[0], people[1], people[2]
	last := people[len(people)-1]
	unknown := "00000000097" // valid INSZ, no file anywhere
	companies := Companies(DemoCompanies)
	employer := companies[0]
	dotted := employer.Number[:4] + "." + employer.Number[4:7] + "." + employer.Number[7:] // as users write it
	var file, ended crossroads.Integration                                                 // as the hub answered
	return []Step{
		{Name: "allowed, minimised to name and city", As: OCMW, Service: ServicePerson, Path: "persons/" + p0.INSZ, Purpose: "social-aid", WantStatus: 200,
			Check: func(b []byte, h http.Header) error {
				if err := onlyKeys(b, "name", "address"); err != nil {
					return err
				}
				var v struct{ Address map[string]any }
				json.Unmarshal(b, &v)
				if len(v.Address) != 1 || v.Address["city"] == nil {
					return fmt.Errorf("address should hold only the city: %v", v.Address)
				}
				return checkSeal(h, b, roots, "read", "/persons/"+p0.INSZ, "", p0.INSZ)
			}},
		{Name: "allowed, nested array minimised", As: OCMW, Service: ServiceEmployment, Path: "employments/" + p1.INSZ, Purpose: "social-aid", Subject: p1.INSZ, WantStatus: 200,
			Check: func(b []byte, h http.Header) error {
				if strings.Contains(string(b), "Salary") || strings.Contains(string(b), "jobTitle") {
					return fmt.Errorf("salary or job title leaked: %s", b)
				}
				return onlyKeys(b, "status", "employments")
			}},
		{Name: "allowed, whole payload (plain text)", As: ONEM, Service: ServiceCertificate, Path: "certificates/" + p0.INSZ, Purpose: "unemployment-benefit", Subject: p0.INSZ, WantStatus: 200},
		{Name: "non-JSON not granted whole", As: OCMW, Service: ServiceCertificate, Path: "certificates/" + p0.INSZ, Purpose: "social-aid", Subject: p0.INSZ, WantStatus: 502, WantReason: "response-not-granted"},
		{Name: "unknown service", As: OCMW, Service: "tax-returns", Path: "returns/" + p0.INSZ, Purpose: "social-aid", Subject: p0.INSZ, WantStatus: 404, WantReason: "unknown-service"},
		{Name: "no authorisation", As: ONEM, Service: ServicePerson, Path: "persons/" + p0.INSZ, Purpose: "unemployment-benefit", Subject: p0.INSZ, WantStatus: 403, WantReason: "no-authorisation"},
		{Name: "purpose not covered", As: OCMW, Service: ServicePerson, Path: "persons/" + p0.INSZ, Purpose: "marketing", Subject: p0.INSZ, WantStatus: 403, WantReason: "purpose-not-covered"},
		{Name: "authorisation expired", As: OCMW, Service: ServiceEmployment, Path: "employments/" + p0.INSZ, Purpose: "debt-mediation", Subject: p0.INSZ, WantStatus: 403, WantReason: "authorisation-not-active"},
		{Name: "no file on the person", As: OCMW, Service: ServicePerson, Path: "persons/" + unknown, Purpose: "social-aid", Subject: unknown, WantStatus: 403, WantReason: "no-integration"},
		{Name: "file in a capacity not covered", As: OCMW, Service: ServicePerson, Path: "persons/" + last.INSZ, Purpose: "social-aid", Subject: last.INSZ, WantStatus: 403, WantReason: "capacity-not-covered"},
		{Name: "ONEM has no file on this person", As: ONEM, Service: ServiceEmployment, Path: "employments/" + p2.INSZ, Purpose: "unemployment-benefit", Subject: p2.INSZ, WantStatus: 403, WantReason: "no-integration"},
		{Name: "requester suspended", As: Suspended, Service: ServicePerson, Path: "persons/" + p1.INSZ, Purpose: "health-insurance", Subject: p1.INSZ, WantStatus: 403, WantReason: "participant-suspended"},
		{Name: "provider suspended", As: OCMW, Service: ServiceRetired, Path: "lookup/" + p0.INSZ, Purpose: "social-aid", Subject: p0.INSZ, WantStatus: 403, WantReason: "provider-suspended"},
		{Name: "invalid person id", As: OCMW, Service: ServicePerson, Path: "persons/85073003329", Purpose: "social-aid", Subject: "85073003329", WantStatus: 400, WantReason: "invalid-subject"},
		{Name: "subject in the path differs from the declared one", As: OCMW, Service: ServicePerson, Path: "persons/" + p1.INSZ, Purpose: "social-aid", Subject: p0.INSZ, WantStatus: 400, WantReason: "subject-mismatch"},
		{Name: "path of no declared operation", As: OCMW, Service: ServicePerson, Path: "persons/" + p0.INSZ + "/salary", Purpose: "social-aid", WantStatus: 404, WantReason: "unknown-operation"},
		{Name: "method the path does not accept", As: OCMW, Method: http.MethodPost, Service: ServicePerson, Path: "persons/" + p0.INSZ, Purpose: "social-aid", WantStatus: 405, WantReason: "method-not-allowed"},
		{Name: "write granted explicitly (address correction)", As: OCMW, Method: http.MethodPut, Service: ServicePerson, Path: "persons/" + p0.INSZ + "/address", Purpose: "address-correction",
			Body: `{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"}`, WantStatus: 200,
			Check: func(b []byte, h http.Header) error {
				if err := onlyKeys(b, "address"); err != nil {
					return err
				}
				return checkSeal(h, b, roots, OpCorrectAddress, "/persons/"+p0.INSZ+"/address", "", p0.INSZ)
			}},
		{Name: "write not granted by the authorisation", As: OCMW, Method: http.MethodPut, Service: ServicePerson, Path: "persons/" + p0.INSZ + "/address", Purpose: "social-aid",
			Body: `{"street":"Veldstraat 1","postalCode":"9000","city":"Gent"}`, WantStatus: 403, WantReason: "operation-not-covered"},
		{Name: "allowed company exchange (employer check)", As: ONEM, Service: ServiceEnterprise, Path: "enterprises/" + dotted, Purpose: "employer-check", WantStatus: 200,
			Check: func(b []byte, h http.Header) error {
				if err := onlyKeys(b, "enterpriseNumber", "name", "legalForm", "status", "address"); err != nil {
					return err
				}
				return checkSeal(h, b, roots, "read", "/enterprises/"+employer.Number, "enterprise", employer.Number)
			}},
		{Name: "invalid enterprise number", As: ONEM, Service: ServiceEnterprise, Path: "enterprises/0123.456.748", Purpose: "employer-check", WantStatus: 400, WantReason: "invalid-subject"},
		// The person directory is accountable: a file registered and ended
		// through the API, each with a receipt, in force in between, shown
		// to the person; backdating refused.
		{Name: "ONEM registers a file on the person", As: ONEM, Method: http.MethodPut, Service: "integrations", WantStatus: 201,
			Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
				return c.Integration(ctx, ONEM, http.MethodPut, map[string]any{"person": p2.INSZ, "sector": CapClaimant.Sector, "capacity": CapClaimant.Code})
			},
			Check:   func(b []byte, h http.Header) error { return readChange(b, h, crossroads.IntegrationRegister, &file) },
			Summary: func([]byte) string { return describeFile(file) + ", receipt" }},
		{Name: "allowed with the new file", As: ONEM, Service: ServiceEmployment, Path: "employments/" + p2.INSZ, Purpose: "unemployment-benefit", WantStatus: 200},
		{Name: "ONEM ends the file", As: ONEM, Method: http.MethodDelete, Service: "integrations", WantStatus: 200,
			Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
				return c.Integration(ctx, ONEM, http.MethodDelete, map[string]any{"person": p2.INSZ, "sector": file.Sector, "capacity": file.Capacity, "from": file.From})
			},
			Check:   func(b []byte, h http.Header) error { return readChange(b, h, crossroads.IntegrationEnd, &ended) },
			Summary: func([]byte) string { return describeFile(ended) + ", receipt" }},
		{Name: "file ended: no file on the person", As: ONEM, Service: ServiceEmployment, Path: "employments/" + p2.INSZ, Purpose: "unemployment-benefit", WantStatus: 403, WantReason: "no-integration"},
		{Name: "backdated file refused", As: ONEM, Method: http.MethodPut, Service: "integrations", WantStatus: 400, WantReason: "backdated-integration",
			Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
				from := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
				return c.Integration(ctx, ONEM, http.MethodPut, map[string]any{"person": p2.INSZ, "sector": CapClaimant.Sector, "capacity": CapClaimant.Code, "from": from})
			}},
		{Name: "the person sees the file and its period", As: "citizen " + p2.INSZ, Service: "me/files", WantStatus: 200,
			Do: func(ctx context.Context, c *Clients) (*http.Response, []byte, error) {
				return c.Citizen(ctx, p2.INSZ, "/v1/me/files")
			},
			Check: func(b []byte, h http.Header) error { return seesFile(b, ONEM, file, ended) },
			Summary: func([]byte) string {
				return fmt.Sprintf("%s's file registered, ended: %s → %s", ONEM, ended.From.UTC().Format("15:04:05"), ended.To.UTC().Format("15:04:05.000"))
			}},
		BatchStep(people, roots), // batch consultation: 1,000 persons, mixed outcomes (scenario_batch.go)
		{Name: "allowed before revocation", As: ONEM, Service: ServiceEmployment, Path: "employments/" + p0.INSZ, Purpose: "unemployment-benefit", Subject: p0.INSZ, WantStatus: 200},
		{Name: "certificate revoked", As: ONEM, Service: ServiceEmployment, Path: "employments/" + p0.INSZ, Purpose: "unemployment-benefit", Subject: p0.INSZ, WantStatus: 0,
			Before: func(ctx context.Context) error { return revoke(ctx, ONEM) }},
	}
}

// Run executes the steps in order.
func (c *Clients) Run(ctx context.Context, steps []Step) []Result {
	out := make([]Result, 0, len(steps))
	for _, s := range steps {
		r := Result{Step: s}
		if s.Before != nil {
			if err := s.Before(ctx); err != nil {
				r.Note = "setup failed: " + err.Error()
				out = append(out, r)
				continue
			}
		}
		method := s.Method
		if method == "" {
			method = http.MethodGet
		}
		var resp *http.Response
		var body []byte
		var err error
		if s.Do != nil {
			resp, body, err = s.Do(ctx, c)
		} else {
			resp, body, err = c.Call(ctx, s.As, method, s.Service, s.Path, s.Purpose, s.Subject, s.Body)
		}
		switch {
		case err != nil && s.WantStatus == 0:
			r.OK, r.Note = true, "refused at the TLS handshake"
		case err != nil:
			r.Note = "request failed: " + err.Error()
		default:
			r.Status = resp.StatusCode
			var p struct{ Reason string }
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				json.Unmarshal(body, &p)
			}
			r.Reason = p.Reason
			switch {
			case s.WantStatus == 0:
				r.OK = resp.StatusCode == http.StatusForbidden && p.Reason == "certificate-revoked"
				r.Note = "refused by the hub"
			case resp.StatusCode != s.WantStatus || p.Reason != s.WantReason:
				r.Note = fmt.Sprintf("want %d %s", s.WantStatus, s.WantReason)
			case s.Check != nil:
				if err := s.Check(body, resp.Header); err != nil {
					r.Note = err.Error()
				} else {
					r.OK, r.Note = true, summarise(body)
					if s.Summary != nil {
						r.Note = s.Summary(body)
					}
				}
			default:
				r.OK = true
				if resp.StatusCode == 200 {
					r.Note = summarise(body)
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// Print writes the results as a table; it returns false if any step failed.
func Print(w io.Writer, results []Result) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTEP\tCALLER\tSERVICE\tSTATUS\tREASON\tRESULT\tDETAIL")
	all := true
	for i, r := range results {
		status := fmt.Sprint(r.Status)
		if r.Status == 0 {
			status = "-"
		}
		verdict := "ok"
		if !r.OK {
			verdict, all = "FAIL", false
		}
		note := r.Note
		if len(note) > 70 {
			note = note[:67] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, r.Step.Name, r.Step.As, r.Step.Service, status, dash(r.Reason), verdict, note)
	}
	tw.Flush()
	return all
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func summarise(b []byte) string {
	s := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte("\n"), []byte(" "))))
	return s
}

func onlyKeys(b []byte, keys ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if len(m) != len(keys) {
		return fmt.Errorf("want only %v, got %d members", keys, len(m))
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("missing %s", k)
		}
	}
	return nil
}

// checkSeal verifies the hub's seal over the released body, and that it
// names the act: operation, canonical target, subject and its kind.
func checkSeal(h http.Header, body []byte, roots *x509.CertPool, op, target, kind, subject string) error {
	c, err := pki.VerifySeal(h.Get(pki.HeaderSeal), body, roots, time.Now())
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if c.ExchangeID != h.Get(pki.HeaderExchangeID) {
		return fmt.Errorf("seal does not match the response")
	}
	if c.Operation != op || c.Target != target || c.SubjectKind != kind || c.Subject != subject || c.Status != http.StatusOK || c.ContentType != h.Get("Content-Type") {
		return fmt.Errorf("seal does not name the act: %+v", c)
	}
	if h.Get(pki.HeaderReceipt) == "" {
		return fmt.Errorf("no audit receipt")
	}
	return nil
}

// readChange checks the answer to a change of the person directory (the
// action done, an audit receipt) and keeps the file as the hub wrote it.
func readChange(b []byte, h http.Header, action string, into *crossroads.Integration) error {
	var v struct {
		Action      string
		Changed     bool
		Integration crossroads.Integration
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if v.Action != action || !v.Changed {
		return fmt.Errorf("want action %s, got %q (changed %v)", action, v.Action, v.Changed)
	}
	if h.Get(pki.HeaderReceipt) == "" {
		return errors.New("no audit receipt")
	}
	*into = v.Integration
	return nil
}

// seesFile checks that the person's files view shows holder's file as
// registered and as ended (newest first), with the periods the hub gave.
func seesFile(b []byte, holder string, registered, ended crossroads.Integration) error {
	var v struct{ Files []audit.SubjectEntry }
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	var seen []string
	for _, e := range v.Files {
		f := e.File
		if e.Kind != crossroads.RecordIntegration || f == nil || f.Institution != holder || f.Sector != registered.Sector ||
			f.Capacity != registered.Capacity || !f.From.Equal(registered.From) {
			continue
		}
		switch {
		case e.Action == crossroads.IntegrationRegister && f.To == nil:
			seen = append(seen, e.Action)
		case e.Action == crossroads.IntegrationEnd && f.To != nil && f.To.Equal(ended.To):
			seen = append(seen, e.Action)
		}
	}
	if !slices.Equal(seen, []string{crossroads.IntegrationEnd, crossroads.IntegrationRegister}) {
		return fmt.Errorf("want the end and the registration of %s's file, newest first; saw %v", holder, seen)
	}
	return nil
}

// describeFile writes a file's capacity and period.
func describeFile(in crossroads.Integration) string {
	to := "open"
	if !in.To.IsZero() {
		to = in.To.UTC().Format("15:04:05.000")
	}
	return fmt.Sprintf("%s/%s %s → %s", in.Sector, in.Capacity, in.From.UTC().Format("2006-01-02 15:04:05"), to)
}
