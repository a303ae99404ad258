package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/citizen"
)

// citizenPageSize bounds one page of a citizen's view.
const citizenPageSize = 200

// myData is a citizen's page: their exchanges and their files, each entry
// with its proof.
type myData struct {
	Exchanges, Files []audit.SubjectEntry
	Next             string // page token of the next exchanges
	LogKey           string
	Origin           string
}

func (c *Console) myData(ctx context.Context, ss *session, pageToken string) (*myData, error) {
	now := c.cfg.Now().UTC()
	ex, err := c.cfg.Trail.SubjectPage(ctx, audit.SubjectQuery{Kind: crossroads.SubjectPerson, Subject: ss.person,
		Records: audit.ExchangeKinds, From: now.AddDate(0, -citizen.DefaultPeriod, 0), To: now, PageToken: pageToken, Limit: citizenPageSize})
	if err != nil {
		return nil, err
	}
	files, err := c.cfg.Trail.SubjectPage(ctx, audit.SubjectQuery{Kind: crossroads.SubjectPerson, Subject: ss.person,
		Records: audit.FileKinds, Limit: audit.MaxLimit})
	if err != nil {
		return nil, err
	}
	return &myData{Exchanges: ex.Entries, Files: files.Entries, Next: ex.NextPageToken,
		LogKey: c.cfg.Trail.VerifierKey(), Origin: c.cfg.Trail.Origin()}, nil
}

func (c *Console) me(w http.ResponseWriter, r *http.Request, ss *session) {
	d, err := c.myData(r.Context(), ss, r.URL.Query().Get("pageToken"))
	if errors.Is(err, crossroads.ErrInvalid) {
		c.fail(w, r, http.StatusBadRequest, "", "err.form")
		return
	}
	if err != nil {
		c.log.Error("console citizen view", "err", err)
		c.fail(w, r, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "err.audit")
		return
	}
	c.render(w, r, http.StatusOK, "me", ss, view{Data: d})
}

// mePrint is the same data as a page made for printing (or saving as PDF).
func (c *Console) mePrint(w http.ResponseWriter, r *http.Request, ss *session) {
	d, err := c.myData(r.Context(), ss, "")
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "err.audit")
		return
	}
	c.render(w, r, http.StatusOK, "print", ss, view{Data: d})
}

// meJSON downloads the data as JSON (the API's shapes).
func (c *Console) meJSON(w http.ResponseWriter, r *http.Request, ss *session) {
	d, err := c.myData(r.Context(), ss, "")
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "err.audit")
		return
	}
	download(w, "application/json", "my-data.json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(map[string]any{"exchanges": d.Exchanges, "files": d.Files, "logKey": d.LogKey,
		"complete": d.Next == "", "generated": c.cfg.Now().UTC()})
}

// register is the public register of authorisations, readable by anyone
// (each citizen's entries link here by reference).
func (c *Console) register(w http.ResponseWriter, r *http.Request) {
	n := c.cfg.Directory.Snapshot()
	now := c.cfg.Now()
	type row struct {
		crossroads.Authorisation
		Active bool
	}
	rows := make([]row, 0, len(n.Authorisations))
	for _, a := range n.Authorisations {
		rows = append(rows, row{Authorisation: a, Active: a.ActiveAt(now)})
	}
	c.render(w, r, http.StatusOK, "register", c.current(r), view{Data: rows})
}

// atoi parses a small positive number (0 when absent or bad).
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

var errBadTime = errors.New("console: want a date and time")
