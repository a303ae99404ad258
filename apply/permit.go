package apply

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/outputcheck"
)

// permitRoles are the roles a permit may give its members.
var permitRoles = []string{crossroads.RoleAccessBody, crossroads.RoleDataHolder, crossroads.RoleResearcher, crossroads.RoleReviewer}

// permitStatistics are the statistics a permit may allow.
var permitStatistics = []string{crossroads.StatCount, crossroads.StatSum, crossroads.StatMean, crossroads.StatMedian, crossroads.StatQuantile}

// permitFileTypes are the content types a workspace can recognise.
var permitFileTypes = []string{"csv", "parquet", "json", "text"}

// permit checks the kind and terms of an authorisation (issue 14): a data
// permit has terms whose participants exist, whose members hold known
// roles, whose datasets are each held by a member of role data-holder, and
// whose budget and rules make sense; an authorisation of another kind has
// no terms.
func (ps *problems) permit(path string, a crossroads.Authorisation, w *world) {
	switch a.Kind {
	case "":
		if a.Permit != nil {
			ps.add(path+".permit", "permit terms need kind %q", crossroads.KindDataPermit)
		}
		return
	case crossroads.KindDataPermit:
	default:
		ps.add(path+".kind", "%q is not an authorisation kind (%q, or none for a deliberation)", a.Kind, crossroads.KindDataPermit)
		return
	}
	if len(a.Services) > 0 {
		ps.add(path+".services", "a data permit names no services (it grants nothing on the exchange path)")
	}
	p := a.Permit
	path += ".permit"
	if p == nil {
		ps.add(path, "a data permit needs its terms")
		return
	}
	known := func(fp, id string) bool {
		if id == "" {
			ps.add(fp, "a participant id is required")
			return false
		}
		if _, ok := w.participants[id]; !ok {
			ps.add(fp, "unknown participant %q", id)
			return false
		}
		return true
	}
	known(path+".accessBody", p.AccessBody)
	if len(p.Members) == 0 {
		ps.add(path+".members", "at least one member is required")
	}
	for j, m := range p.Members {
		mp := fmt.Sprintf("%s.members[%d]", path, j)
		if known(mp+".participant", m.Participant) {
			if pt := w.participants[m.Participant]; pt.Kind == crossroads.KindOperator {
				ps.add(mp+".participant", "%q is an operator: operators halt workspaces but are never members (SDR-2)", m.Participant)
			}
		}
		if !slices.Contains(permitRoles, m.Role) {
			ps.add(mp+".role", "%q is not a permit role (%v)", m.Role, permitRoles)
		}
		if slices.IndexFunc(p.Members[:j], func(o crossroads.PermitMember) bool { return o.Participant == m.Participant && o.Role == m.Role }) >= 0 {
			ps.add(mp, "member %q listed twice as %s", m.Participant, m.Role)
		}
	}
	if len(p.Datasets) == 0 {
		ps.add(path+".datasets", "at least one dataset is required (EHDSR-10)")
	}
	for j, d := range p.Datasets {
		dp := fmt.Sprintf("%s.datasets[%d]", path, j)
		if !idPattern.MatchString(d.ID) {
			ps.add(dp+".id", "%q is not a valid dataset id (a-z 0-9 . _ -, at most 63)", d.ID)
		}
		if slices.IndexFunc(p.Datasets[:j], func(o crossroads.PermitDataset) bool { return o.ID == d.ID }) >= 0 {
			ps.add(dp+".id", "dataset %q listed twice", d.ID)
		}
		if known(dp+".holder", d.Holder) && !p.HasRole(d.Holder, crossroads.RoleDataHolder) {
			ps.add(dp+".holder", "%q is not a member of role %s", d.Holder, crossroads.RoleDataHolder)
		}
	}
	for j, s := range p.Statistics {
		if !slices.Contains(permitStatistics, s) {
			ps.add(fmt.Sprintf("%s.statistics[%d]", path, j), "%q is not a statistic (%v)", s, permitStatistics)
		}
	}
	if len(p.Rules) > 0 {
		// The rules as the workspace will read them (outputcheck.ParseRules
		// over the defaults: unknown keys and bad values refused).
		b, err := json.Marshal(p.Rules)
		if err == nil {
			_, err = outputcheck.ParseRules(b)
		}
		if err != nil {
			ps.add(path+".rules", "%v", err)
		}
	}
	if b := p.Budget; b != nil {
		if !(b.Epsilon > 0) || math.IsInf(b.Epsilon, 0) {
			ps.add(path+".budget.epsilon", "must be a positive number")
		}
		if !(b.Delta >= 0 && b.Delta < 1) {
			ps.add(path+".budget.delta", "must be in [0, 1)")
		}
	}
	if f := p.Files; f != nil {
		if f.MaxBytes < 0 {
			ps.add(path+".files.maxBytes", "must not be negative")
		}
		for j, t := range f.Types {
			if !slices.Contains(permitFileTypes, t) {
				ps.add(fmt.Sprintf("%s.files.types[%d]", path, j), "%q is not a file type (%v)", t, permitFileTypes)
			}
		}
	}
	for j, peer := range p.Peers {
		pp := fmt.Sprintf("%s.peers[%d]", path, j)
		if peer.Hub == "" {
			ps.add(pp+".hub", "the peer hub's participant id is required")
		}
		if u, err := url.Parse(peer.URL); err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" && u.Path != "/" {
			ps.add(pp+".url", "%q is not an https://host:port URL", peer.URL)
		}
	}
}

// fmtPermit shows a permit's terms in a diff (JSON, keys in order).
func fmtPermit(p *crossroads.Permit) string {
	if p == nil {
		return "(none)"
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "(unprintable)"
	}
	return string(b)
}
