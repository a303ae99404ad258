package console

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/audit"
)

// searchFields are the search form's fields, passed to the API as they are.
var searchFields = []string{"participant", "service", "subject", "purpose", "outcome", "kind", "from", "to"}

// auditRow is a search result with its proof (when already in the log).
type auditRow struct {
	audit.Entry
	Proof string
}

type auditData struct {
	Query    url.Values
	Rows     []auditRow
	Next     string
	Searched bool
	LogKey   string
}

// search runs the search through the API (GET /v1/audit/records as the
// session's participant): validated and itself recorded in the trail as an
// audit-search, exactly as the API's.
func (c *Console) search(r *http.Request, ss *session, limit int) (*audit.Page, url.Values, int, string) {
	q := url.Values{}
	in := r.URL.Query()
	for _, f := range searchFields {
		if v := strings.TrimSpace(in.Get(f)); v != "" {
			if (f == "from" || f == "to") && len(v) == len("2006-01-02") {
				v += "T00:00:00Z"
			}
			if (f == "from" || f == "to") && len(v) == len("2006-01-02T15:04") {
				v += ":00Z"
			}
			q.Set(f, v)
		}
	}
	if t := in.Get("pageToken"); t != "" {
		q.Set("pageToken", t)
	}
	q.Set("limit", strconv.Itoa(limit))
	rec := c.call(r, ss, http.MethodGet, "/v1/audit/records?"+q.Encode(), "", nil, nil)
	q.Del("limit")
	if rec.Code != http.StatusOK {
		return nil, q, rec.Code, problemDetail(rec)
	}
	var p audit.Page
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		return nil, q, http.StatusBadGateway, ""
	}
	return &p, q, http.StatusOK, ""
}

func (c *Console) auditSearch(w http.ResponseWriter, r *http.Request, ss *session) {
	d := &auditData{Query: r.URL.Query(), LogKey: c.cfg.Trail.VerifierKey()}
	if r.URL.Query().Get("search") == "" {
		c.render(w, r, http.StatusOK, "audit", ss, view{Data: d})
		return
	}
	p, q, status, detail := c.search(r, ss, 50)
	if p == nil {
		c.render(w, r, status, "audit", ss, view{Data: d, Error: "err.search", Detail: detail})
		return
	}
	d.Searched = true
	for _, e := range p.Records {
		row := auditRow{Entry: e}
		if e.LogIndex != nil {
			pr := c.call(r, ss, http.MethodGet, "/v1/audit/proofs/"+url.PathEscape(e.ExchangeID), "", nil, nil)
			if pr.Code == http.StatusOK {
				row.Proof = pr.Body.String()
			}
		}
		d.Rows = append(d.Rows, row)
	}
	if p.NextPageToken != "" {
		q.Set("pageToken", p.NextPageToken)
		q.Set("search", "1")
		d.Next = "/console/audit?" + q.Encode()
	}
	c.render(w, r, http.StatusOK, "audit", ss, view{Data: d})
}

// auditRecord shows one record's proof to verify.
func (c *Console) auditRecord(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	pr := c.call(r, ss, http.MethodGet, "/v1/audit/proofs/"+url.PathEscape(id), "", nil, nil)
	if pr.Code != http.StatusOK {
		c.render(w, r, pr.Code, "record", ss, view{Error: "err.proof", Detail: problemDetail(pr), Data: map[string]string{"ID": id}})
		return
	}
	c.render(w, r, http.StatusOK, "record", ss, view{Data: map[string]string{"ID": id, "Proof": pr.Body.String(), "LogKey": c.cfg.Trail.VerifierKey()}})
}

// auditCSV exports a search (up to 1000 records a page; the file says
// whether more follow).
func (c *Console) auditCSV(w http.ResponseWriter, r *http.Request, ss *session) {
	p, _, status, detail := c.search(r, ss, audit.MaxLimit)
	if p == nil {
		c.render(w, r, status, "audit", ss, view{Data: &auditData{Query: r.URL.Query()}, Error: "err.search", Detail: detail})
		return
	}
	download(w, "text/csv; charset=utf-8", "audit-records.csv")
	cw := csv.NewWriter(w)
	cw.Write([]string{"time", "kind", "action", "exchangeId", "requester", "user", "service", "provider", "subjectKind", "subject",
		"purpose", "authorisationId", "authorisationRef", "outcome", "reason", "logIndex", "erased"})
	for _, e := range p.Records {
		idx := ""
		if e.LogIndex != nil {
			idx = strconv.FormatInt(*e.LogIndex, 10)
		}
		kind := e.Kind
		if kind == "" {
			kind = "exchange"
		}
		cw.Write(cells(e.Time.UTC().Format(time.RFC3339Nano), kind, e.Action, e.ExchangeID, e.Requester, e.User, e.Service, e.Provider,
			e.SubjectKind, e.Subject, e.Purpose, e.AuthorisationID, e.AuthorisationRef, e.Outcome, string(e.Reason), idx, strconv.FormatBool(e.Erased)))
	}
	if p.NextPageToken != "" {
		cw.Write([]string{"# more records follow: narrow the search or continue with pageToken=" + p.NextPageToken})
	}
	cw.Flush()
}

// cells neutralises spreadsheet formulas (CSV injection): a cell that
// starts with = + - @ or a control character is prefixed with a quote.
func cells(vs ...string) []string {
	for i, v := range vs {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			vs[i] = "'" + v
		}
	}
	return vs
}
