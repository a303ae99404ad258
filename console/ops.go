package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit/verify"
)

// call serves an in-process request of the session's participant through
// the hub's API: the console's acts are their API twins.
func (c *Console) call(r *http.Request, ss *session, method, target, contentType string, body []byte, hdr http.Header) *httptest.ResponseRecorder {
	req, _ := http.NewRequestWithContext(r.Context(), method, target, bytes.NewReader(body))
	req.Host, req.TLS, req.RemoteAddr = r.Host, r.TLS, r.RemoteAddr
	for k, v := range hdr {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if ss.user != "" {
		req.Header.Set("Crossroads-User", ss.user)
	}
	rec := httptest.NewRecorder()
	c.cfg.API().ServeAs(rec, req, ss.participant)
	return rec
}

// problemDetail reads the detail of an API problem answer.
func problemDetail(rec *httptest.ResponseRecorder) string {
	var p struct {
		Title, Detail, Reason string
		Problems              []struct{ Field, Message string } `json:"problems"`
	}
	json.Unmarshal(rec.Body.Bytes(), &p)
	s := strings.TrimSpace(p.Title + ": " + p.Detail)
	for _, x := range p.Problems {
		s += "; " + x.Field + ": " + x.Message
	}
	return s
}

// opsData is the operator's page.
type opsData struct {
	Network      *crossroads.Network
	Integrations map[string]int
	Certificates []crossroads.Certificate
	Now          time.Time
	Live         Live
	InFlight     int
	Limited      int
	Checkpoint   string
	TreeSize     int64
	Witnesses    int
	Quorum       int
	Integrating  bool
	NetworkYAML  string
	Result       string
}

func (c *Console) opsData(r *http.Request, ss *session) (*opsData, error) {
	d := &opsData{Network: c.cfg.Directory.Snapshot(), Integrations: map[string]int{}, Now: c.cfg.Now(),
		Live: c.live(), Witnesses: c.cfg.Witnesses, Quorum: c.cfg.Quorum, Integrating: c.cfg.Trail.Integrating()}
	sort.Slice(d.Network.Authorisations, func(i, j int) bool { return d.Network.Authorisations[i].ID < d.Network.Authorisations[j].ID })
	store := c.cfg.Directory.Store()
	for _, p := range d.Network.Participants {
		ins, err := store.Integrations(r.Context(), p.ID, "")
		if err != nil {
			return nil, err
		}
		if len(ins) > 0 {
			d.Integrations[p.ID] = len(ins)
		}
	}
	rec := c.call(r, ss, http.MethodGet, "/v1/admin/certificates", "", nil, nil)
	var list struct{ Certificates []crossroads.Certificate }
	if rec.Code == http.StatusOK {
		json.Unmarshal(rec.Body.Bytes(), &list)
	}
	d.Certificates = list.Certificates
	sort.Slice(d.Certificates, func(i, j int) bool { return d.Certificates[i].NotAfter.Before(d.Certificates[j].NotAfter) })
	if c.cfg.Limiter != nil {
		d.InFlight, d.Limited = c.cfg.Limiter.InFlight(), c.cfg.Limiter.Len()
	}
	if cp, err := c.cfg.Trail.Checkpoint(r.Context()); err == nil {
		d.Checkpoint = string(cp)
		if text, _, ok := strings.Cut(string(cp), "\n\n"); ok {
			if c, err := verify.ParseCheckpoint(text + "\n"); err == nil {
				d.TreeSize = c.N
			}
		}
	}
	return d, nil
}

func (c *Console) ops(w http.ResponseWriter, r *http.Request, ss *session) {
	c.renderOps(w, r, ss, http.StatusOK, view{})
}

// renderOps shows the operator's page with v's error or notice.
func (c *Console) renderOps(w http.ResponseWriter, r *http.Request, ss *session, status int, v view) {
	d, err := c.opsData(r, ss)
	if err != nil {
		c.log.Error("console operator view", "err", err)
		c.fail(w, r, http.StatusServiceUnavailable, "", "err.store")
		return
	}
	v.Data = d
	c.render(w, r, status, "ops", ss, v)
}

// authorisationStatus prepares the change of one authorisation's status
// (suspend, activate, revoke): a network file with that entry changed,
// planned by the API's dry run, shown as a diff to confirm.
func (c *Console) authorisationStatus(w http.ResponseWriter, r *http.Request, ss *session) {
	a, ok := c.cfg.Directory.Authorisation(r.PathValue("id"))
	status := r.PostFormValue("status")
	if !ok {
		c.fail(w, r, http.StatusNotFound, "", "err.notfound")
		return
	}
	switch status {
	case crossroads.StatusActive, crossroads.StatusSuspended, crossroads.StatusRevoked:
	default:
		c.renderOps(w, r, ss, http.StatusBadRequest, view{Error: "err.status"})
		return
	}
	changed := *a
	changed.Status = status
	body, err := yaml.Marshal(&crossroads.Network{Authorisations: []crossroads.Authorisation{changed}})
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "", "err.form")
		return
	}
	c.plan(w, r, ss, body)
}

// networkFile plans a network file pasted or uploaded by the operator.
func (c *Console) networkFile(w http.ResponseWriter, r *http.Request, ss *session) {
	body := []byte(r.PostFormValue("network"))
	if f, _, err := r.FormFile("file"); err == nil {
		body, err = io.ReadAll(io.LimitReader(f, maxForm))
		f.Close()
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, "", "err.form")
			return
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		c.renderOps(w, r, ss, http.StatusBadRequest, view{Error: "err.empty"})
		return
	}
	c.plan(w, r, ss, body)
}

// applyResult is the API's answer to an apply.
type applyResult struct {
	DryRun   bool     `json:"dryRun"`
	Changed  bool     `json:"changed"`
	Diff     string   `json:"diff"`
	Version  int64    `json:"version"`
	Warnings []string `json:"warnings"`
}

// plan runs the API's dry run and shows the diff with a confirmation form.
func (c *Console) plan(w http.ResponseWriter, r *http.Request, ss *session, body []byte) {
	rec := c.call(r, ss, http.MethodPost, "/v1/admin/apply?dry-run=true", "application/yaml", body, nil)
	if rec.Code != http.StatusOK {
		c.renderOps(w, r, ss, rec.Code, view{Error: "err.apply", Detail: problemDetail(rec)})
		return
	}
	var res applyResult
	json.Unmarshal(rec.Body.Bytes(), &res)
	p := &pendingApply{token: randomID(), body: body, version: res.Version, diff: res.Diff}
	if res.Changed {
		c.sess.setPending(ss, p)
	}
	c.render(w, r, http.StatusOK, "apply", ss, view{Data: map[string]any{"Result": res, "Token": p.token}})
}

// confirmApply applies the change the operator was shown, on condition
// that the registers are still at the version its diff was computed at.
func (c *Console) confirmApply(w http.ResponseWriter, r *http.Request, ss *session) {
	p := c.sess.takePending(ss, r.PostFormValue("change"))
	if p == nil {
		c.renderOps(w, r, ss, http.StatusConflict, view{Error: "err.nochange"})
		return
	}
	rec := c.call(r, ss, http.MethodPost, "/v1/admin/apply", "application/yaml", p.body,
		http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(p.version, 10))}})
	if rec.Code != http.StatusOK {
		c.renderOps(w, r, ss, rec.Code, view{Error: "err.apply", Detail: problemDetail(rec)})
		return
	}
	c.log.Info("console: network applied", "participant", ss.participant)
	c.renderOps(w, r, ss, http.StatusOK, view{Notice: "notice.applied"})
}

// issueCertificate signs a CSR through the API and hands the certificate out.
func (c *Console) issueCertificate(w http.ResponseWriter, r *http.Request, ss *session) {
	body, _ := json.Marshal(map[string]any{"participant": r.PostFormValue("participant"), "csr": r.PostFormValue("csr"),
		"validityDays": atoi(r.PostFormValue("validityDays"))})
	rec := c.call(r, ss, http.MethodPost, "/v1/admin/certificates", "application/json", body, nil)
	if rec.Code != http.StatusOK && rec.Code != http.StatusCreated {
		c.renderOps(w, r, ss, rec.Code, view{Error: "err.certificate", Detail: problemDetail(rec)})
		return
	}
	var out struct {
		Certificate string `json:"certificate"`
		Serial      string `json:"serial"`
	}
	json.Unmarshal(rec.Body.Bytes(), &out)
	download(w, "application/x-pem-file", fmt.Sprintf("%s.crt", r.PostFormValue("participant")))
	w.Write([]byte(out.Certificate))
}

// revokeCertificate revokes through the API.
func (c *Console) revokeCertificate(w http.ResponseWriter, r *http.Request, ss *session) {
	body, _ := json.Marshal(map[string]string{"reason": r.PostFormValue("reason")})
	rec := c.call(r, ss, http.MethodPost, "/v1/admin/certificates/"+r.PathValue("serial")+"/revoke", "application/json", body, nil)
	if rec.Code != http.StatusOK {
		c.renderOps(w, r, ss, rec.Code, view{Error: "err.revoke", Detail: problemDetail(rec)})
		return
	}
	c.renderOps(w, r, ss, http.StatusOK, view{Notice: "notice.revoked"})
}
