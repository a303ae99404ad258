package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/store/mysqllog"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// consistent checks that each earlier checkpoint is consistent with the
// trail's current checkpoint (a consistency proof from the log's tiles).
func consistent(ctx context.Context, tr *audit.Trail, earlier [][]byte) error {
	v, err := note.NewVerifier(tr.VerifierKey())
	if err != nil {
		return err
	}
	raw, err := tr.Checkpoint(ctx)
	if err != nil {
		return err
	}
	cur, err := verify.OpenCheckpoint(raw, v)
	if err != nil {
		return fmt.Errorf("current checkpoint: %w", err)
	}
	for _, e := range earlier {
		old, err := verify.OpenCheckpoint(e, v)
		if err != nil {
			return fmt.Errorf("earlier checkpoint: %w", err)
		}
		if old.N > cur.N {
			return fmt.Errorf("the log (size %d) is smaller than an earlier checkpoint (size %d)", cur.N, old.N)
		}
		if err := verify.Consistency(ctx, tr.Reader(), old.Tree, cur.Tree); err != nil {
			return fmt.Errorf("earlier checkpoint of size %d: %w", old.N, err)
		}
	}
	return nil
}

// Report is the result of Verify.
type Report struct {
	Records, Integrated int
	LogSize             int64
	Answers, Receipted  int
	Problems            []string
}

func (r *Report) problem(format string, a ...any) {
	if len(r.Problems) < 50 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
	}
}

// Verify checks the shared trail once every node has stopped: the log
// verifies (audit.Trail.Check: records decrypt and open their leaves, the
// log re-derives from its tiles to the signed checkpoint), every record is
// one leaf and every leaf one record, every exchange is recorded once, and
// every answer that carried a receipt has its record, whose leaf the
// receipt names; no 200 answer lacks a receipt.
//
// Each checkpoint in earlier (signed notes served before) must be
// consistent with the log's current one.
func (c *Cluster) Verify(ctx context.Context, answers []Answer, earlier ...[]byte) (*Report, error) {
	dir := filepath.Join(c.Nodes[0].Dir, "audit")
	acfg := audit.Config{Dir: dir, MaxMergeDelay: time.Second}
	var st audit.Store
	if c.opts.DatabaseURL != "" {
		ps, err := postgres.OpenAudit(ctx, c.opts.DatabaseURL)
		if err != nil {
			return nil, err
		}
		defer ps.Close()
		st = ps
		if c.opts.LogDatabase != "" {
			lg, err := mysqllog.Open(ctx, c.opts.LogDatabase)
			if err != nil {
				return nil, err
			}
			defer lg.Close()
			// The verifier takes the lease like any node, so it cannot race one.
			acfg.Log = &audit.LogStorage{Driver: lg.Driver(), Reader: lg.Reader(), Barrier: lg.Barrier, MinCheckpointInterval: mysqllog.MinCheckpointInterval}
			acfg.Lease = ps.Lease("audit-log")
		}
	} else {
		ss, err := sqlite.OpenAudit(ctx, dir)
		if err != nil {
			return nil, err
		}
		defer ss.Close()
		st = ss
	}
	acfg.Store = st
	// The trail opens as the nodes open it: the KEKs in the deployment's key
	// provider (the shared key directory), the note key wrapped in the store.
	pass, err := pki.Passphrase("", filepath.Join(c.Nodes[0].Dir, "ca-passphrase"))
	if err != nil {
		return nil, err
	}
	tr, kr, err := hub.OpenTrail(ctx, hub.Config{DataDir: c.Nodes[0].Dir, Passphrase: pass, KeyDir: c.KeyDir()}, acfg)
	if err != nil {
		return nil, err
	}
	defer kr.Close()
	defer tr.Close(context.WithoutCancel(ctx))
	rep := &Report{Answers: len(answers)}
	if len(earlier) > 0 {
		if err := consistent(ctx, tr, earlier); err != nil {
			rep.problem("%v", err)
		}
	}
	chk, err := tr.Check(ctx)
	if err != nil {
		return nil, err
	}
	rep.Records, rep.Integrated, rep.LogSize = chk.Records, chk.Integrated, chk.LogSize
	for _, p := range chk.Problems {
		rep.problem("audit check: %s", p)
	}
	if chk.Integrated != chk.Records || int64(chk.Records) != chk.LogSize {
		rep.problem("%d records, %d integrated, %d leaves: want all equal", chk.Records, chk.Integrated, chk.LogSize)
	}
	rows := map[string]audit.Row{}
	for after := int64(0); ; {
		page, err := st.Rows(ctx, after, 1000, false)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if _, dup := rows[r.ExchangeID]; dup {
				rep.problem("exchange %s recorded twice", r.ExchangeID)
			}
			if r.Log != tr.Origin() {
				rep.problem("exchange %s names log %q, want %q", r.ExchangeID, r.Log, tr.Origin())
			}
			rows[r.ExchangeID] = r
		}
		after = page[len(page)-1].Seq
	}
	seen := map[string]bool{}
	for _, a := range answers {
		if a.ExchangeID == "" {
			rep.problem("an answer (status %d) without an exchange id", a.Status)
			continue
		}
		if seen[a.ExchangeID] {
			rep.problem("exchange id %s answered twice", a.ExchangeID)
		}
		seen[a.ExchangeID] = true
		if a.Receipt == "" {
			if a.Status == http.StatusOK {
				rep.problem("exchange %s: released (200) without a receipt", a.ExchangeID)
			}
			continue
		}
		rep.Receipted++
		row, ok := rows[a.ExchangeID]
		if !ok {
			rep.problem("exchange %s: answered %d with a receipt but has no record", a.ExchangeID, a.Status)
			continue
		}
		claims, err := audit.VerifyReceipt(a.Receipt, c.VerifierKey)
		if err != nil {
			rep.problem("exchange %s: receipt: %v", a.ExchangeID, err)
			continue
		}
		lh := audit.LeafHash(row.Leaf)
		if claims.ExchangeID != a.ExchangeID || !bytes.Equal(claims.LeafHash, lh[:]) {
			rep.problem("exchange %s: the receipt does not name the record's leaf", a.ExchangeID)
		}
		if row.Index < 0 {
			rep.problem("exchange %s: record not in the log after a clean stop", a.ExchangeID)
		}
	}
	return rep, nil
}
