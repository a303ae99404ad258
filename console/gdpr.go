package console

import (
	"context"
	"encoding/csv"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// The GDPR records are generated from the registers: what each controller
// obtains through the hub and what it discloses, under which authorisation
// and for which purposes — so that they never drift from what the hub
// actually enforces.

// Art30 is the record of processing activities (GDPR Art. 30(1)) of one
// controller, as far as its processing passes through the hub.
type Art30 struct {
	Controller       crossroads.Participant
	Activities       []Activity // what it obtains, one per authorisation
	Discloses        []Disclosure
	Retention        string
	SecurityMeasures []string
}

// Activity is one authorisation of the controller.
type Activity struct {
	Authorisation crossroads.Authorisation
	Purposes      []string
	Subjects      []string // categories of data subjects
	Data          []string // categories of personal data: service: fields
	Sources       []string // providers
	Active        bool
}

// Disclosure is a recipient of a service the controller provides.
type Disclosure struct {
	Service, Recipient, Reference string
	Purposes                      []string
}

// securityMeasures are the hub's own technical measures (Art. 32), the
// same for every controller whose processing passes through it.
var securityMeasures = []string{
	"security.mtls", "security.check", "security.minimise", "security.seal", "security.encrypted", "security.log",
}

func (c *Console) art30(now time.Time) []Art30 {
	n := c.cfg.Directory.Snapshot()
	services := map[string]crossroads.Service{}
	for _, s := range n.Services {
		services[s.ID] = s
	}
	byID := map[string]*Art30{}
	get := func(id string) *Art30 {
		if a, ok := byID[id]; ok {
			return a
		}
		p, _ := c.cfg.Directory.Participant(id)
		a := &Art30{SecurityMeasures: securityMeasures, Retention: retention(c.cfg.Retention)}
		if p != nil {
			a.Controller = *p
		} else {
			a.Controller = crossroads.Participant{ID: id, Name: id}
		}
		byID[id] = a
		return a
	}
	for _, au := range n.Authorisations {
		act := Activity{Authorisation: au, Purposes: au.Purposes, Active: au.ActiveAt(now)}
		subj, src := map[string]bool{}, map[string]bool{}
		for _, sid := range au.Services {
			s := services[sid]
			subj[s.SubjectKind()] = true
			src[s.Provider] = true
			fields := au.Fields[sid]
			f := strings.Join(fields, ", ")
			if len(fields) == 1 && fields[0] == crossroads.WholePayload || f == "" {
				f = "(whole response)"
			}
			act.Data = append(act.Data, sid+": "+f)
			prov := get(s.Provider)
			prov.Discloses = append(prov.Discloses, Disclosure{Service: sid, Recipient: au.Grantee, Reference: au.Reference, Purposes: au.Purposes})
		}
		for k := range subj {
			act.Subjects = append(act.Subjects, k)
		}
		for _, cp := range au.Capacities {
			act.Subjects = append(act.Subjects, "capacity "+cp.Sector+"/"+cp.Code)
		}
		for k := range src {
			act.Sources = append(act.Sources, k)
		}
		sort.Strings(act.Subjects)
		sort.Strings(act.Sources)
		g := get(au.Grantee)
		g.Activities = append(g.Activities, act)
	}
	out := make([]Art30, 0, len(byID))
	for _, a := range byID {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Controller.ID < out[j].Controller.ID })
	return out
}

func retention(d time.Duration) string {
	if d < 0 {
		return "audit records: kept without limit"
	}
	return "audit records: " + strconv.Itoa(int(d.Hours()/24)) + " days, then their personal data are erased"
}

// DPIA is the screening of one authorisation (GDPR Art. 35): a DPIA is
// required when the data are classified 3 or higher, the processing is on
// a large scale, or it touches special categories (Art. 9, 10).
type DPIA struct {
	Authorisation  crossroads.Authorisation
	Classification int
	LargeScale     bool
	Special        []string // the fields or services that are special categories
	Required       bool
	Reasons        []string // message keys
	Files          int      // files the grantee holds (integrations)
}

// largeScale is the number of files (persons in the grantee's
// directory) from which an authorisation's processing is on a large
// scale; an authorisation restricted to no capacity reaches anyone, and is
// large-scale as well.
const largeScale = 10000

// special matches field names and service ids of special categories of
// data (Art. 9: health, ethnic origin, political opinions, religion, trade
// union membership, genetic, biometric, sex life; Art. 10: criminal).
var special = regexp.MustCompile(`(?i)health|medic|disab|diagnos|ethnic|racial|politic|relig|belief|union|genetic|biometric|sex|criminal|convict|offen`)

func (c *Console) dpia(ctx context.Context) []DPIA {
	n := c.cfg.Directory.Snapshot()
	services := map[string]crossroads.Service{}
	for _, s := range n.Services {
		services[s.ID] = s
	}
	files := map[string]int{}
	var out []DPIA
	for _, au := range n.Authorisations {
		d := DPIA{Authorisation: au}
		personal := false
		for _, sid := range au.Services {
			s := services[sid]
			d.Classification = max(d.Classification, s.Classification)
			personal = personal || s.SubjectKind() == crossroads.SubjectPerson
			if special.MatchString(sid) || special.MatchString(s.Description) {
				d.Special = append(d.Special, sid)
			}
			for _, f := range au.Fields[sid] {
				if special.MatchString(f) {
					d.Special = append(d.Special, sid+" "+f)
				}
			}
		}
		if _, ok := files[au.Grantee]; !ok {
			ins, err := c.cfg.Directory.Store().Integrations(ctx, au.Grantee, "")
			if err == nil {
				files[au.Grantee] = len(ins)
			}
		}
		d.Files = files[au.Grantee]
		d.LargeScale = personal && (len(au.Capacities) == 0 || d.Files >= largeScale)
		if d.Classification >= 3 {
			d.Reasons = append(d.Reasons, "dpia.classification")
		}
		if d.LargeScale {
			d.Reasons = append(d.Reasons, "dpia.largescale")
		}
		if len(d.Special) > 0 {
			d.Reasons = append(d.Reasons, "dpia.special")
		}
		d.Required = len(d.Reasons) > 0
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Authorisation.ID < out[j].Authorisation.ID })
	return out
}

// Milestone is one deadline after a declared incident.
type Milestone struct {
	Key    string // message key: what is due
	Due    time.Time
	Passed bool
}

// breachTimeline gives the notification deadlines from the moment the
// incident became known: an early warning within 24 hours (NIS2 Art.
// 23(4)(a)), the notification to the supervisory authority within 72 hours
// (GDPR Art. 33(1); NIS2 Art. 23(4)(b)), the final report within a month
// (NIS2 Art. 23(4)(d)).
func breachTimeline(known, now time.Time) []Milestone {
	ms := []Milestone{
		{Key: "breach.24h", Due: known.Add(24 * time.Hour)},
		{Key: "breach.72h", Due: known.Add(72 * time.Hour)},
		{Key: "breach.month", Due: known.AddDate(0, 1, 0)},
	}
	for i := range ms {
		ms[i].Passed = now.After(ms[i].Due)
	}
	return ms
}

type gdprData struct {
	Art30    []Art30
	DPIA     []DPIA
	Incident string
	Timeline []Milestone
}

func (c *Console) gdpr(w http.ResponseWriter, r *http.Request, ss *session) {
	now := c.cfg.Now()
	d := &gdprData{Art30: c.art30(now), DPIA: c.dpia(r.Context()), Incident: r.URL.Query().Get("incident")}
	v := view{Data: d}
	if d.Incident != "" {
		t, err := parseLocal(d.Incident)
		if err != nil {
			v.Error = "err.incident"
		} else {
			d.Timeline = breachTimeline(t, now)
		}
	}
	c.render(w, r, http.StatusOK, "gdpr", ss, v)
}

// parseLocal reads a datetime-local field (UTC) or an RFC 3339 time.
func parseLocal(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errBadTime
}

func (c *Console) art30CSV(w http.ResponseWriter, r *http.Request, ss *session) {
	lang := c.language(w, r)
	download(w, "text/csv; charset=utf-8", "art30-records.csv")
	cw := csv.NewWriter(w)
	cw.Write([]string{"controller", "controllerName", "incidentContact", "authorisation", "reference", "active", "purposes", "dataSubjects", "personalData", "sources", "retention", "securityMeasures"})
	for _, a := range c.art30(c.cfg.Now()) {
		var measures []string
		for _, m := range a.SecurityMeasures {
			measures = append(measures, translate(lang, m))
		}
		for _, act := range a.Activities {
			var ps []string
			for _, p := range act.Purposes {
				ps = append(ps, purposeName(lang, p))
			}
			cw.Write(cells(a.Controller.ID, a.Controller.Name, a.Controller.IncidentContact, act.Authorisation.ID, act.Authorisation.Reference,
				strconv.FormatBool(act.Active), strings.Join(ps, "; "), strings.Join(act.Subjects, "; "), strings.Join(act.Data, "; "),
				strings.Join(act.Sources, "; "), a.Retention, strings.Join(measures, "; ")))
		}
	}
	cw.Flush()
}

func (c *Console) dpiaCSV(w http.ResponseWriter, r *http.Request, ss *session) {
	lang := c.language(w, r)
	download(w, "text/csv; charset=utf-8", "dpia-screening.csv")
	cw := csv.NewWriter(w)
	cw.Write([]string{"authorisation", "reference", "grantee", "classification", "largeScale", "specialCategories", "dpiaRequired", "reasons"})
	for _, d := range c.dpia(r.Context()) {
		var rs []string
		for _, k := range d.Reasons {
			rs = append(rs, translate(lang, k))
		}
		cw.Write(cells(d.Authorisation.ID, d.Authorisation.Reference, d.Authorisation.Grantee, strconv.Itoa(d.Classification),
			strconv.FormatBool(d.LargeScale), strings.Join(d.Special, "; "), strconv.FormatBool(d.Required), strings.Join(rs, "; ")))
	}
	cw.Flush()
}
