package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/directory"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// memTrail is an audit log in memory that can be made to fail.
type memTrail struct {
	mu   sync.Mutex
	fail bool
	recs []crossroads.AuditRecord
}

func (m *memTrail) Commit(_ context.Context, r *crossroads.AuditRecord) (crossroads.Receipt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return crossroads.Receipt{}, errors.New("disk full")
	}
	m.recs = append(m.recs, *r)
	return crossroads.Receipt{ExchangeID: r.ExchangeID}, nil
}

// failingRegisters makes Apply fail on demand.
type failingRegisters struct {
	store *sqlite.Registers
	crossroads.RegisterStore
	mu      sync.Mutex
	fail    bool
	applies int
}

func (f *failingRegisters) Apply(ctx context.Context, n *crossroads.Network) error {
	f.mu.Lock()
	f.applies++
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("database is locked")
	}
	return f.store.Apply(ctx, n)
}

const operatorOnly = "participants:\n  - id: ops\n    name: Operator\n    kind: operator\n    status: active\n"
const addInstitution = "participants:\n  - id: inst-x\n    name: X\n    kind: institution\n    status: active\n"

func newTestAPI(t *testing.T, trail crossroads.AuditLog) (*API, *failingRegisters) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.OpenRegisters(ctx, filepath.Join(t.TempDir(), "registers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	desired, err := apply.Parse(strings.NewReader(operatorOnly))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apply.Apply(ctx, st, desired, nil, false); err != nil {
		t.Fatal(err)
	}
	fr := &failingRegisters{store: st, RegisterStore: st}
	d, err := directory.Open(ctx, fr)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Directory: d, Scheme: personid.INSZ{}, Audit: trail, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}), fr
}

// postAsOperator calls the apply handler as the operator (the guard and
// the cross-site rules are tested through the hub, over mTLS).
func postAsOperator(a *API, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/admin/apply", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/yaml")
	r = r.WithContext(crossroads.WithCaller(r.Context(), &crossroads.Participant{ID: "ops", Kind: crossroads.KindOperator, Status: crossroads.StatusActive}))
	w := httptest.NewRecorder()
	a.postApply(w, r)
	return w
}

// TestApplyNotWrittenUnlessRecorded: the store is not written when the
// trail cannot record the apply, nor without a trail at all.
func TestApplyNotWrittenUnlessRecorded(t *testing.T) {
	for name, trail := range map[string]crossroads.AuditLog{"trail down": &memTrail{fail: true}, "no trail": nil} {
		t.Run(name, func(t *testing.T) {
			a, fr := newTestAPI(t, trail)
			w := postAsOperator(a, addInstitution)
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "audit-unavailable") {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if fr.applies != 0 {
				t.Fatalf("store written %d times", fr.applies)
			}
			if _, ok := a.cfg.Directory.Participant("inst-x"); ok {
				t.Fatal("applied")
			}
		})
	}
}

// TestApplyWriteFailureRecorded: when the store refuses a recorded apply,
// a failed record naming the apply follows, and the answer is 503.
func TestApplyWriteFailureRecorded(t *testing.T) {
	trail := &memTrail{}
	a, fr := newTestAPI(t, trail)
	fr.fail = true
	w := postAsOperator(a, addInstitution)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if len(trail.recs) != 2 {
		t.Fatalf("%d records, want the apply and its failure", len(trail.recs))
	}
	first, second := trail.recs[0], trail.recs[1]
	var d struct{ Failed string }
	json.Unmarshal(second.Detail, &d)
	if first.Kind != crossroads.RecordApply || first.Outcome != crossroads.OutcomeAllowed ||
		second.Kind != crossroads.RecordApply || second.Outcome != crossroads.OutcomeFailed || d.Failed != first.ExchangeID {
		t.Fatalf("records %+v", trail.recs)
	}
	// With the store back, the same file applies, recorded once more.
	fr.fail = false
	if w := postAsOperator(a, addInstitution); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if len(trail.recs) != 3 || !strings.Contains(string(trail.recs[2].Detail), "inst-x") {
		t.Fatalf("records %+v", trail.recs)
	}
}
