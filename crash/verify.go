package crash

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

type servedCheckpoint struct {
	cp verify.Checkpoint
}

// checkCheckpoint reads the checkpoint the running hub serves, verifies its
// signature and its consistency with the previous one (from the served
// tiles): the log only grows, across crashes too.
func (h *harness) checkCheckpoint(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	src := &verify.HTTP{Base: h.base + "/v1/log/", Client: h.clients[demo.Operator]}
	if h.vkey == "" {
		k, err := src.Get(ctx, "key")
		if err != nil {
			return fmt.Errorf("crash: log key: %w", err)
		}
		h.vkey = strings.TrimSpace(string(k))
	}
	v, err := note.NewVerifier(h.vkey)
	if err != nil {
		return fmt.Errorf("crash: log key: %w", err)
	}
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		h.rep.problem("served checkpoint unreadable after a start: %v", err)
		return nil
	}
	cp, err := verify.OpenCheckpoint(raw, v)
	if err != nil {
		h.rep.problem("served checkpoint does not verify: %v", err)
		return nil
	}
	h.cpMu.Lock()
	defer h.cpMu.Unlock()
	h.rep.Checkpoints++
	if h.cp != nil {
		old := h.cp.cp
		switch {
		case cp.N < old.N:
			h.rep.problem("the log shrank from %d to %d leaves across a restart", old.N, cp.N)
			return nil
		case cp.N == old.N && cp.Hash != old.Hash:
			h.rep.problem("two checkpoints of size %d with different roots", cp.N)
			return nil
		case cp.N > old.N && old.N > 0:
			if err := verify.Consistency(ctx, src, old.Tree, cp.Tree); err != nil {
				h.rep.problem("checkpoint of size %d is not consistent with the previous one of size %d: %v", cp.N, old.N, err)
				return nil
			}
		}
	}
	h.cp = &servedCheckpoint{cp: cp}
	return nil
}

// verify checks the stopped hub's data directory.
func (h *harness) verify(ctx context.Context, w *workers) error {
	if err := h.verifyAudit(ctx, w); err != nil {
		return err
	}
	if err := h.verifyBatches(ctx, w); err != nil { // batch.go
		return err
	}
	if err := h.verifyPush(ctx, w); err != nil { // push.go
		return err
	}
	return h.verifyRegisters(ctx, w)
}

// verifyAudit opens the audit trail as the hub does and checks it, then
// checks every answer the clients received against the store.
func (h *harness) verifyAudit(ctx context.Context, w *workers) error {
	dir := filepath.Join(h.dataDir, "audit")
	st, err := sqlite.OpenAudit(ctx, dir)
	if err != nil {
		return fmt.Errorf("crash: open audit store: %w", err)
	}
	defer st.Close()
	// The demo network's passphrase is kept beside it (demo.Start).
	pass, err := os.ReadFile(filepath.Join(h.dataDir, "ca-passphrase"))
	if err != nil {
		return fmt.Errorf("crash: passphrase: %w", err)
	}
	tr, kr, err := hub.OpenTrail(ctx, hub.Config{DataDir: h.dataDir, Passphrase: pass}, audit.Config{Dir: dir, Store: st, MaxMergeDelay: time.Second})
	if err != nil {
		return fmt.Errorf("crash: open audit trail: %w", err)
	}
	defer kr.Close()
	defer tr.Close(context.WithoutCancel(ctx))
	if tr.VerifierKey() != h.vkey {
		h.rep.problem("the trail's verifier key is not the one the hub served")
	}
	chk, err := tr.Check(ctx)
	if err != nil {
		return fmt.Errorf("crash: audit check: %w", err)
	}
	h.rep.Records, h.rep.Integrated, h.rep.LogSize = chk.Records, chk.Integrated, chk.LogSize
	for _, p := range chk.Problems {
		h.rep.problem("audit check: %s", p)
	}
	if chk.Integrated != chk.Records {
		h.rep.problem("%d records stored but %d integrated in the log after a clean stop", chk.Records, chk.Integrated)
	}
	if int64(chk.Integrated) != chk.LogSize {
		h.rep.problem("%d records integrated but the log has %d leaves", chk.Integrated, chk.LogSize)
	}

	// Every stored row, by exchange id.
	rows := map[string]audit.Row{}
	for after := int64(0); ; {
		page, err := st.Rows(ctx, after, 1000, false)
		if err != nil {
			return fmt.Errorf("crash: read audit rows: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if _, dup := rows[r.ExchangeID]; dup {
				h.rep.problem("exchange %s recorded twice", r.ExchangeID)
			}
			rows[r.ExchangeID] = r
		}
		after = page[len(page)-1].Seq
	}

	seen := map[string]bool{}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.answers {
		if a.ExchangeID == "" {
			h.rep.problem("an answer (status %d) without an exchange id", a.Status)
			continue
		}
		if seen[a.ExchangeID] {
			h.rep.problem("exchange id %s answered twice", a.ExchangeID)
		}
		seen[a.ExchangeID] = true
		if a.Receipt == "" {
			if a.Status == http.StatusOK {
				h.rep.problem("exchange %s: released (200) without a receipt", a.ExchangeID)
			}
			continue
		}
		row, ok := rows[a.ExchangeID]
		if !ok {
			h.rep.problem("exchange %s: answered %d with a receipt but has no record", a.ExchangeID, a.Status)
			continue
		}
		claims, err := audit.VerifyReceipt(a.Receipt, h.vkey)
		if err != nil {
			h.rep.problem("exchange %s: receipt: %v", a.ExchangeID, err)
			continue
		}
		lh := audit.LeafHash(row.Leaf)
		switch {
		case claims.ExchangeID != a.ExchangeID:
			h.rep.problem("exchange %s: the receipt names exchange %s", a.ExchangeID, claims.ExchangeID)
		case !bytes.Equal(claims.LeafHash, lh[:]):
			h.rep.problem("exchange %s: the receipt's leaf is not the record's", a.ExchangeID)
		case row.Index < 0:
			h.rep.problem("exchange %s: record not in the log after a clean stop", a.ExchangeID)
		}
		if want := outcomeOf(a.Status); want != "" && row.Outcome != want {
			h.rep.problem("exchange %s: answered %d, recorded as %s", a.ExchangeID, a.Status, row.Outcome)
		}
	}
	return nil
}

func outcomeOf(status int) string {
	switch {
	case status == http.StatusOK:
		return string(crossroads.OutcomeAllowed)
	case status == http.StatusForbidden:
		return string(crossroads.OutcomeDenied)
	}
	return ""
}

// verifyRegisters checks the integration and authorisation changes.
func (h *harness) verifyRegisters(ctx context.Context, w *workers) error {
	reg, err := sqlite.OpenRegisters(ctx, filepath.Join(h.dataDir, "registers.db"))
	if err != nil {
		return fmt.Errorf("crash: open registers: %w", err)
	}
	defer reg.Close()

	// Integrations: the state of each key must be one its history allows.
	list, err := reg.Integrations(ctx, demo.ONEM, "")
	if err != nil {
		return fmt.Errorf("crash: read integrations: %w", err)
	}
	type key struct {
		person string
		from   time.Time
	}
	stored := map[key]crossroads.Integration{}
	for _, in := range list {
		stored[key{in.Person, in.From.UTC()}] = in
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, put := range w.puts {
		want := w.integration(k)
		got, present := stored[key{want.Person, want.From}]
		del, deleted := w.dels[k]
		if present && (got.Sector != want.Sector || got.Capacity != want.Capacity || !got.To.IsZero() && !deleted) {
			h.rep.problem("integration %d is stored differently from what was sent: %+v", k, got)
		}
		// A DELETE ends a file (its period closes) rather than removing it.
		// Possible states after the PUT (and the DELETE of odd keys).
		switch {
		case !present && put.acked:
			h.rep.problem("integration %d: its PUT was acknowledged but it is absent", k)
		case present && deleted && del.acked && got.To.IsZero():
			h.rep.problem("integration %d: its DELETE was acknowledged but it is still open", k)
		}
	}

	// Authorisations: apply k writes crash-k at version 1 and crash-(k-1) at
	// version 2 in one transaction.
	n, err := reg.Registers(ctx)
	if err != nil {
		return fmt.Errorf("crash: read registers: %w", err)
	}
	auths := map[string]crossroads.Authorisation{}
	for _, a := range n.Authorisations {
		auths[a.ID] = a
	}
	// versions[k] is crash-k's stored version: 0 absent, 1 or 2, -1 neither
	// (half-applied).
	versions := make([]int, len(w.applies))
	for k := range versions {
		a, ok := auths[fmt.Sprintf("crash-%d", k)]
		if !ok {
			continue
		}
		versions[k] = -1
		for v := 1; v <= 2; v++ {
			if sameAuthorisation(a, authorisation(k, v)) {
				versions[k] = v
			}
		}
		if versions[k] < 0 {
			h.rep.problem("authorisation crash-%d is half-applied: %+v", k, a)
		}
	}
	// Apply k (k ≥ 1) is the only writer of crash-(k-1) at version 2, so
	// applied[k] is known from it; crash-k must then be at version 2 if
	// apply k+1 was applied, else at version 1 if apply k was, else absent.
	// An apply that wrote one of its two authorisations and not the other
	// breaks this.
	applied := make([]bool, len(w.applies)+1)
	for k := 1; k < len(w.applies); k++ {
		applied[k] = versions[k-1] == 2
	}
	applied[0] = versions[0] == 1 || versions[0] == 2 && applied[1] // best knowledge
	for k, ap := range w.applies {
		want := 0
		switch {
		case applied[k+1]:
			want = 2
		case applied[k]:
			want = 1
		}
		if versions[k] >= 0 && versions[k] != want {
			h.rep.problem("network apply %d or %d half-applied: crash-%d at version %d, want %d", k, k+1, k, versions[k], want)
		}
		if ap.acked && !applied[k] {
			h.rep.problem("network apply %d was acknowledged but is not in the registers", k)
		}
	}
	for id := range auths {
		if ks, ok := strings.CutPrefix(id, "crash-"); ok && !slices.ContainsFunc(w.applies, func(c change) bool { return strconv.Itoa(c.seq) == ks }) {
			h.rep.problem("authorisation %s exists but was never sent", id)
		}
	}
	return nil
}

// sameAuthorisation compares what the harness controls.
func sameAuthorisation(a, b crossroads.Authorisation) bool {
	norm := func(x crossroads.Authorisation) crossroads.Authorisation {
		x.ValidFrom, x.ValidTo = x.ValidFrom.UTC(), x.ValidTo.UTC()
		slices.Sort(x.Services)
		slices.Sort(x.Purposes)
		for s, f := range x.Fields {
			f = slices.Clone(f)
			slices.Sort(f)
			x.Fields[s] = f
		}
		if len(x.Capacities) == 0 {
			x.Capacities = nil
		}
		return x
	}
	a.Fields, b.Fields = cloneFields(a.Fields), cloneFields(b.Fields)
	return reflect.DeepEqual(norm(a), norm(b))
}

func cloneFields(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}
