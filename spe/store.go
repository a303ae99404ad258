package spe

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Workspace states.
const (
	StateOpen       = "open"       // members may work in it
	StateHalted     = "halted"     // an operator halted it (OPR-20); every request refused
	StateTerminated = "terminated" // its permit expired or was revoked (OPR-5); for good
)

// Workspace is the state of one permit's workspace, as stored.
type Workspace struct {
	Permit  string    `json:"permit"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"` // why it was halted or terminated
	Actor   string    `json:"actor,omitempty"`  // who halted it ("" for the hub itself)
	Created time.Time `json:"created"`
	Changed time.Time `json:"changed"`
}

// Upload is a completed upload into a workspace: a dataset file, encrypted
// at rest under the workspace key.
type Upload struct {
	Permit   string    `json:"permit"`
	ID       string    `json:"id"`
	Dataset  string    `json:"dataset"`
	Holder   string    `json:"holder"` // the data holder that uploaded it
	User     string    `json:"user"`   // the natural person (member) who uploaded it
	Filename string    `json:"filename,omitempty"`
	Type     string    `json:"type"` // sniffed: csv, parquet, json, text
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"` // hex, of the plaintext
	At       time.Time `json:"at"`
}

// Release statuses. A query's result is pass (released at once), fail
// (nothing released: the cells to suppress are listed to the requester),
// review (held for two reviewers), then released or rejected.
const (
	ReleasePass     = "pass"
	ReleaseFail     = "fail"
	ReleaseReview   = "review"
	ReleaseReleased = "released" // after review
	ReleaseRejected = "rejected" // after review
	ReleaseRefused  = "refused"  // differencing or budget: never computed into an output
)

// Release is one query of a workspace and what became of its result. The
// result itself (and the checker's cells) is stored encrypted in the
// workspace, not here: an administrator reading the store sees no value.
type Release struct {
	Permit    string          `json:"permit"`
	ID        string          `json:"id"`
	Requester string          `json:"requester"`
	Query     json.RawMessage `json:"query"`
	Status    string          `json:"status"`
	Noisy     bool            `json:"noisy,omitempty"`     // a differentially private release
	Federated bool            `json:"federated,omitempty"` // merged from several sites
	Created   time.Time       `json:"created"`
	Decided   time.Time       `json:"decided,omitzero"`
}

// Released reports whether the researcher may download the result.
func (r *Release) Released() bool { return r.Status == ReleasePass || r.Status == ReleaseReleased }

// Review decisions.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Review is one reviewer's decision on a release held for review.
type Review struct {
	Permit   string    `json:"permit"`
	Release  string    `json:"release"`
	Reviewer string    `json:"reviewer"`
	Decision string    `json:"decision"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
}

// ErrBudget is returned by SpendBudget when the spend would exceed the budget.
var ErrBudget = errors.New("spe: privacy budget exhausted")

// Store persists workspaces, uploads, releases, reviews and the privacy
// budget spent. Every method is atomic. Conformance: store/storetest.TestSPEStore.
type Store interface {
	// Workspace returns a permit's workspace; crossroads.ErrNotFound when absent.
	Workspace(ctx context.Context, permit string) (Workspace, error)
	// PutWorkspace inserts or replaces it. A terminated workspace stays
	// terminated (crossroads.ErrConflict).
	PutWorkspace(ctx context.Context, w Workspace) error
	// PutUpload records a completed upload; crossroads.ErrConflict if its
	// (Permit, ID) exists.
	PutUpload(ctx context.Context, u Upload) error
	// Uploads lists a permit's uploads, oldest first.
	Uploads(ctx context.Context, permit string) ([]Upload, error)
	// PutRelease inserts or replaces a release.
	PutRelease(ctx context.Context, r Release) error
	// Release returns one; crossroads.ErrNotFound when absent.
	Release(ctx context.Context, permit, id string) (Release, error)
	// Releases lists a permit's releases, oldest first.
	Releases(ctx context.Context, permit string) ([]Release, error)
	// AddReview records a decision; crossroads.ErrConflict if the reviewer
	// already decided the release.
	AddReview(ctx context.Context, r Review) error
	// Reviews lists a release's decisions, oldest first.
	Reviews(ctx context.Context, permit, release string) ([]Review, error)
	// SpendBudget adds (epsilon, delta) to what the permit has spent,
	// unless the sum would exceed limit (ErrBudget, nothing spent); it
	// returns the total spent.
	SpendBudget(ctx context.Context, permit string, epsilon, delta float64, limit crossroads.PrivacyBudget) (crossroads.PrivacyBudget, error)
	// Spent returns what the permit has spent.
	Spent(ctx context.Context, permit string) (crossroads.PrivacyBudget, error)
}

// Exceeds reports whether spent goes beyond limit (with a margin for the
// rounding of sums of floating-point spends).
func Exceeds(spent, limit crossroads.PrivacyBudget) bool {
	return spent.Epsilon > limit.Epsilon+1e-9 || spent.Delta > limit.Delta+1e-15
}
