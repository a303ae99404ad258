package crossroads

import (
	"slices"
	"time"
)

// KindDataPermit is the Authorisation.Kind of a data permit (seed 002
// EHDSR-1): an access body's grant to process named datasets of named data
// holders in a secure processing workspace, for one purpose, by the natural
// persons it lists. Its terms are in Authorisation.Permit; its validity and
// status are the authorisation's own (ValidFrom, ValidTo, Status). A
// permit names no services: it grants nothing on the exchange path.
const KindDataPermit = "data-permit"

// Roles a permit gives its members (seed 002 issue 14). Operators are not
// members: a participant of kind operator may halt any workspace (OPR-20)
// and never reads its contents (SDR-2).
const (
	RoleAccessBody = "access-body" // the health data access body that granted the permit
	RoleDataHolder = "data-holder" // uploads the permitted datasets (EHDSR-11)
	RoleResearcher = "researcher"  // queries the workspace, downloads released results (EHDSR-12)
	RoleReviewer   = "reviewer"    // decides outputs held for manual review (EHDSR-13)
	RoleOperator   = "operator"    // the SPE operator: halts, never reads
)

// Statistics a permit may allow (Permit.Statistics).
const (
	StatCount    = "count"
	StatSum      = "sum"
	StatMean     = "mean"
	StatMedian   = "median"
	StatQuantile = "quantile"
)

// Permit is the terms of a data permit.
type Permit struct {
	// AccessBody is the participant (the HDAB) that granted the permit.
	AccessBody string `json:"accessBody" yaml:"accessBody"`
	// Datasets are the data the permit covers (EHDSR-10), each held by
	// one data holder who alone may upload it.
	Datasets []PermitDataset `json:"datasets" yaml:"datasets"`
	// Members are the natural persons allowed into the workspace
	// (EHDSR-3), each a participant of the network with its own client
	// certificate of the network CA (EHDSR-5: strongly identified), and
	// the role the permit gives them.
	Members []PermitMember `json:"members" yaml:"members"`
	// Purpose says what the processing is for, in words (the
	// authorisation's Purposes carry the machine-readable codes).
	Purpose string `json:"purpose,omitempty" yaml:"purpose,omitempty"`
	// Statistics are the statistics a query may ask for (Stat*); empty:
	// count only.
	Statistics []string `json:"statistics,omitempty" yaml:"statistics,omitempty"`
	// Software names the software components the permit authorises
	// (FCR-3, FCR-4); the hub's own query engine is "crossroads-aggregate".
	Software []string `json:"software,omitempty" yaml:"software,omitempty"`
	// Rules are the disclosure-control rules every result is checked with
	// (outputcheck.Rules, as JSON/YAML keys); absent keys take the
	// defaults (docs/outputcheck.md).
	Rules map[string]any `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Budget is the differential-privacy budget; nil: no noisy releases.
	Budget *PrivacyBudget `json:"budget,omitempty" yaml:"budget,omitempty"`
	// Files restricts what may be uploaded into the workspace (TIR-5).
	Files *PermitFiles `json:"files,omitempty" yaml:"files,omitempty"`
	// Peers are the other hubs whose workspaces of the same permit a
	// federated query fans out to (FCR-5, TIR-31: only these).
	Peers []PermitPeer `json:"peers,omitempty" yaml:"peers,omitempty"`
}

// PermitDataset is one dataset a permit names.
type PermitDataset struct {
	ID          string `json:"id" yaml:"id"`
	Holder      string `json:"holder" yaml:"holder"` // participant id of the data holder
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// PermitMember is a natural person a permit allows, in one role.
type PermitMember struct {
	Participant string `json:"participant" yaml:"participant"` // the person's own participant id (its certificate names it)
	Role        string `json:"role" yaml:"role"`
	Name        string `json:"name,omitempty" yaml:"name,omitempty"`
}

// PrivacyBudget is a differential-privacy budget (ε, δ), spent by noisy
// releases under basic composition.
type PrivacyBudget struct {
	Epsilon float64 `json:"epsilon" yaml:"epsilon"`
	Delta   float64 `json:"delta" yaml:"delta"`
}

// PermitFiles are a workspace's upload rules.
type PermitFiles struct {
	// Types are the content types accepted, sniffed from the content:
	// csv, parquet, json, text. Empty: csv.
	Types []string `json:"types,omitempty" yaml:"types,omitempty"`
	// MaxBytes bounds one upload (0: the hub's default).
	MaxBytes int64 `json:"maxBytes,omitempty" yaml:"maxBytes,omitempty"`
}

// PermitPeer is a peer hub of a federated permit.
type PermitPeer struct {
	Hub string `json:"hub" yaml:"hub"` // the peer hub's participant id (its certificate names it)
	URL string `json:"url" yaml:"url"` // https://host:port of the peer hub
}

// Reasons of the secure-processing API (RFC 9457 problem "reason"s).
const (
	ReasonNoPermit         Reason = "no-permit"          // 404: no data permit with that id (or the caller is not one of its members)
	ReasonPermitNotActive  Reason = "permit-not-active"  // 403: the permit has expired, is suspended or revoked
	ReasonWorkspaceHalted  Reason = "workspace-halted"   // 403: the workspace is halted or terminated
	ReasonRoleNotPermitted Reason = "role-not-permitted" // 403: the caller's role in the permit does not allow this
	ReasonFileType         Reason = "file-type-refused"  // 415: the upload's content is not of a permitted type
	ReasonChecksumMismatch Reason = "checksum-mismatch"  // 460: the tus Upload-Checksum does not match
	ReasonUnknownDataset   Reason = "unknown-dataset"    // 400: the permit names no such dataset (of this holder)
	ReasonInvalidQuery     Reason = "invalid-query"      // 400: the query does not parse or asks for what the permit does not allow
	ReasonNotReleased      Reason = "not-released"       // 403: the result has not been released
	ReasonBudgetExhausted  Reason = "budget-exhausted"   // 403: the differential-privacy budget is spent
	ReasonReviewConflict   Reason = "review-conflict"    // 409: a reviewer who requested the output, or decided it already
	ReasonPeerRefused      Reason = "peer-refused"       // 502: a peer hub refused or failed its part of a federated query
	ReasonNoSuchRelease    Reason = "no-such-release"    // 404: the workspace has no release with that id
	ReasonSPEUnavailable   Reason = "spe-unavailable"    // 503: the workspace's store, files or key could not be reached
)

// Roles returns the roles participant holds in the permit.
func (p *Permit) Roles(participant string) []string {
	var out []string
	for _, m := range p.Members {
		if m.Participant == participant && !slices.Contains(out, m.Role) {
			out = append(out, m.Role)
		}
	}
	return out
}

// HasRole reports whether participant holds role in the permit.
func (p *Permit) HasRole(participant, role string) bool {
	return slices.Contains(p.Roles(participant), role)
}

// Dataset returns the dataset with the given id.
func (p *Permit) Dataset(id string) (*PermitDataset, bool) {
	for i := range p.Datasets {
		if p.Datasets[i].ID == id {
			return &p.Datasets[i], true
		}
	}
	return nil, false
}

// AllowsStatistic reports whether the permit allows stat.
func (p *Permit) AllowsStatistic(stat string) bool {
	if len(p.Statistics) == 0 {
		return stat == StatCount
	}
	return slices.Contains(p.Statistics, stat)
}

// PermitActiveAt reports whether a is a data permit in force at t.
func PermitActiveAt(a *Authorisation, t time.Time) bool {
	return a != nil && a.Kind == KindDataPermit && a.Permit != nil && a.ActiveAt(t)
}
