package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/tlog"
)

// Query selects audit records. Empty fields do not filter; To is exclusive.
type Query struct {
	Participant string // requester or provider
	Service     string
	Subject     string // canonical person id, matched through the blind index
	Purpose     string
	Outcome     string
	From, To    time.Time
	PageToken   string // from a previous Page
	Limit       int    // default 50, at most 1000
}

// Entry is a decrypted record with its log position.
type Entry struct {
	crossroads.AuditRecord
	LogIndex *int64 `json:"logIndex,omitempty"` // nil until integrated
	// Log names the Merkle log the record is committed to (its origin, as
	// in its receipt); LogIndex is its place there.
	Log string `json:"log,omitempty"`
	// Erased is set when the record's payload was erased after its
	// retention period: only its non-personal metadata remains.
	Erased bool `json:"erased,omitempty"`
}

// Page is one page of search results, newest first.
type Page struct {
	Records       []Entry `json:"records"`
	NextPageToken string  `json:"nextPageToken,omitempty"`
}

// Search returns the records matching q, newest first, decrypting the page.
func (t *Trail) Search(ctx context.Context, q Query) (*Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	sq := StoreQuery{
		Participant: q.Participant, Service: q.Service, Purpose: q.Purpose, Outcome: q.Outcome,
		From: q.From, To: q.To, Limit: limit + 1,
	}
	if q.Subject != "" {
		sq.SubjectIndex = blindIndex(t.indexKey, q.Subject)
	}
	if q.PageToken != "" {
		n, err := strconv.ParseInt(q.PageToken, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("audit: bad page token: %w", crossroads.ErrInvalid)
		}
		sq.BeforeSeq = n
	}
	rows, err := t.store.Search(ctx, sq)
	if err != nil {
		return nil, fmt.Errorf("audit: search: %w", err)
	}
	p := &Page{Records: []Entry{}}
	if len(rows) > limit {
		rows = rows[:limit]
		p.NextPageToken = strconv.FormatInt(rows[limit-1].Seq, 10)
	}
	for i := range rows {
		var e Entry
		if rows[i].Erased() {
			e = Entry{AuditRecord: *erasedRecord(&rows[i]), Erased: true}
		} else {
			rec, _, err := t.decrypt(ctx, &rows[i])
			if err != nil {
				return nil, err
			}
			e = Entry{AuditRecord: *rec}
		}
		e.Log = rows[i].Log
		if rows[i].Index >= 0 {
			idx := rows[i].Index
			e.LogIndex = &idx
		}
		p.Records = append(p.Records, e)
	}
	return p, nil
}

// SubjectEntry is one line of "who looked at my data".
type SubjectEntry struct {
	Time             time.Time `json:"time"`
	ExchangeID       string    `json:"exchangeId"`
	Institution      string    `json:"institution"`
	Service          string    `json:"service,omitempty"`
	Purpose          string    `json:"purpose,omitempty"`
	AuthorisationRef string    `json:"authorisationRef,omitempty"`
	Outcome          string    `json:"outcome"`
	// Proof is the record's C2SP tlog-proof, absent until integrated and
	// covered by a published checkpoint.
	Proof string `json:"proof,omitempty"`
	// Erased is set when the record's payload was erased after its
	// retention period.
	Erased bool `json:"erased,omitempty"`
}

// maxSubjectEntries bounds a BySubject answer.
const maxSubjectEntries = 10000

// BySubject lists, newest first, the exchanges about a person between
// from and to (zero means unbounded), each with its inclusion proof.
func (t *Trail) BySubject(ctx context.Context, subject string, from, to time.Time) ([]SubjectEntry, error) {
	if subject == "" {
		return nil, fmt.Errorf("audit: subject required: %w", crossroads.ErrInvalid)
	}
	pf, err := t.newProver(ctx)
	if err != nil && !errors.Is(err, ErrNotIntegrated) {
		return nil, err
	}
	out := []SubjectEntry{}
	q := Query{Subject: subject, From: from, To: to, Limit: 1000}
	for {
		p, err := t.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range p.Records {
			se := SubjectEntry{
				Time: e.Time, ExchangeID: e.ExchangeID, Institution: e.Requester, Service: e.Service,
				Purpose: e.Purpose, AuthorisationRef: e.AuthorisationRef, Outcome: e.Outcome, Erased: e.Erased,
			}
			if e.LogIndex != nil && pf != nil {
				row, err := t.store.Get(ctx, e.ExchangeID)
				if err != nil {
					return nil, fmt.Errorf("audit: %w", err)
				}
				if pr, err := pf.prove(ctx, &row); err == nil {
					se.Proof = string(pr.Marshal())
				} else if !errors.Is(err, ErrNotIntegrated) {
					return nil, err
				}
			}
			out = append(out, se)
		}
		if p.NextPageToken == "" || len(out) >= maxSubjectEntries {
			return out, nil
		}
		q.PageToken = p.NextPageToken
	}
}

// prover builds inclusion proofs against one published checkpoint.
type prover struct {
	cp     []byte
	tree   verify.Checkpoint
	hashes *client.ProofBuilder
}

func (t *Trail) newProver(ctx context.Context) (*prover, error) {
	cp, err := t.Checkpoint(ctx)
	if errors.Is(err, ErrNotWitnessed) {
		return nil, ErrNotIntegrated
	}
	if err != nil {
		return nil, err
	}
	c, err := verify.OpenCheckpoint(cp, t.verifier)
	if err != nil {
		return nil, fmt.Errorf("audit: own checkpoint: %w", err)
	}
	if c.N == 0 {
		return nil, ErrNotIntegrated
	}
	pb, err := client.NewProofBuilder(ctx, uint64(c.N), t.lg.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("audit: proof builder: %w", err)
	}
	return &prover{cp: cp, tree: c, hashes: pb}, nil
}

func (p *prover) prove(ctx context.Context, row *Row) (*verify.Proof, error) {
	if row.Index < 0 || row.Index >= p.tree.N {
		return nil, ErrNotIntegrated
	}
	hs, err := p.hashes.InclusionProof(ctx, uint64(row.Index))
	if err != nil {
		return nil, fmt.Errorf("audit: inclusion proof: %w", err)
	}
	rp := make(tlog.RecordProof, len(hs))
	for i, h := range hs {
		if len(h) != tlog.HashSize {
			return nil, errors.New("audit: inclusion proof: bad hash size")
		}
		rp[i] = tlog.Hash(h)
	}
	return &verify.Proof{Extra: row.Leaf, Index: row.Index, Hashes: rp, Checkpoint: p.cp}, nil
}

// Proof returns the C2SP tlog-proof of an exchange's record against the
// latest published checkpoint; its extra data is the leaf. It returns
// crossroads.ErrNotFound for an unknown exchange and ErrNotIntegrated for
// a record not yet covered by a checkpoint. The leaf of an erased record
// stays in the log: its proof is still returned, and Opening says it is
// erased.
func (t *Trail) Proof(ctx context.Context, exchangeID string) (*verify.Proof, error) {
	row, err := t.store.Get(ctx, exchangeID)
	if err != nil {
		return nil, fmt.Errorf("audit: proof: %w", err)
	}
	if row.Index < 0 {
		return nil, ErrNotIntegrated
	}
	p, err := t.newProver(ctx)
	if err != nil {
		return nil, err
	}
	return p.prove(ctx, &row)
}

// Opening is what lets a party check a record against its leaf: the
// canonical record bytes and the commitment nonce.
type Opening struct {
	Record []byte `json:"record"` // canonical JSON
	Nonce  []byte `json:"nonce"`
	Leaf   []byte `json:"leaf"`
}

// Opening returns the opening of an exchange's commitment (personal data:
// serve it only to the parties of the exchange); ErrErased after the
// record's retention period.
func (t *Trail) Opening(ctx context.Context, exchangeID string) (*Opening, error) {
	row, err := t.store.Get(ctx, exchangeID)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	_, canon, err := t.decrypt(ctx, &row)
	if err != nil {
		return nil, err
	}
	return &Opening{Record: canon, Nonce: row.Nonce, Leaf: row.Leaf}, nil
}

// CheckReport is the result of Check.
type CheckReport struct {
	Records    int      // rows in the store
	Integrated int      // rows with a log index
	Erased     int      // rows whose payload was erased after retention
	LogSize    int64    // size of the published checkpoint
	Problems   []string // empty when all is well (no personal data)
}

// Check verifies the whole trail: every stored record decrypts and opens
// its commitment; every integrated record's leaf is the log's entry at its
// index, no index is used twice; the published log re-derives from its
// entries to the signed checkpoint. Problems are reported, not returned as
// errors; an error means Check could not run.
func (t *Trail) Check(ctx context.Context) (*CheckReport, error) {
	rep := &CheckReport{}
	cpRaw, err := t.lg.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: check: %w", err)
	}
	cp, err := verify.OpenCheckpoint(cpRaw, t.verifier)
	if err != nil {
		rep.Problems = append(rep.Problems, "checkpoint: "+err.Error())
		return rep, nil
	}
	rep.LogSize = cp.N
	var entries [][]byte
	if err := verify.Entries(ctx, t.lg.reader, cp.N, func(_ int64, d []byte) error {
		entries = append(entries, append([]byte(nil), d...))
		return nil
	}); err != nil {
		rep.Problems = append(rep.Problems, "log entries: "+err.Error())
	} else if _, err := verify.Full(ctx, t.lg.reader, cp.Tree); err != nil {
		rep.Problems = append(rep.Problems, "log: "+err.Error())
	}
	seen := make(map[int64]bool)
	var after int64
	for {
		rows, err := t.store.Rows(ctx, after, 1000, false)
		if err != nil {
			return nil, fmt.Errorf("audit: check: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		for i := range rows {
			r := &rows[i]
			rep.Records++
			bad := func(format string, a ...any) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("record seq %d (exchange %s): ", r.Seq, r.ExchangeID)+fmt.Sprintf(format, a...))
			}
			if r.Erased() {
				rep.Erased++
			} else if _, canon, err := t.decrypt(ctx, r); err != nil {
				bad("%v", err)
			} else if _, c, err := ParseLeaf(r.Leaf); err != nil {
				bad("%v", err)
			} else if Commitment(r.Nonce, canon) != c {
				bad("commitment does not match the leaf")
			}
			if r.Index < 0 {
				continue
			}
			rep.Integrated++
			switch {
			case seen[r.Index]:
				bad("log index %d used twice", r.Index)
			case r.Index < int64(len(entries)) && string(entries[r.Index]) != string(r.Leaf):
				bad("leaf differs from log entry %d", r.Index)
			}
			seen[r.Index] = true
		}
		after = rows[len(rows)-1].Seq
	}
	covered := int64(0)
	for idx := range seen {
		if idx < cp.N {
			covered++
		}
	}
	if covered != cp.N {
		rep.Problems = append(rep.Problems, fmt.Sprintf("log has %d leaves, %d records are recorded at them", cp.N, covered))
	}
	return rep, nil
}

// Record is a stored record in store order, as exported to a SIEM: the
// decrypted record (its non-personal metadata only once erased) with its
// store sequence number.
type Record struct {
	Seq int64 `json:"seq"`
	Entry
}

// RecordsAfter returns, in store sequence order, up to limit records with
// a sequence number above afterSeq, decrypted. Sequence numbers only grow,
// so a reader that remembers the last one it handled resumes there.
func (t *Trail) RecordsAfter(ctx context.Context, afterSeq int64, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 500
	}
	rows, err := t.store.Rows(ctx, afterSeq, limit, false)
	if err != nil {
		return nil, fmt.Errorf("audit: records after %d: %w", afterSeq, err)
	}
	out := make([]Record, 0, len(rows))
	for i := range rows {
		r := Record{Seq: rows[i].Seq}
		if rows[i].Erased() {
			r.Entry = Entry{AuditRecord: *erasedRecord(&rows[i]), Erased: true}
		} else {
			rec, _, err := t.decrypt(ctx, &rows[i])
			if err != nil {
				return nil, err
			}
			r.Entry = Entry{AuditRecord: *rec}
		}
		r.Log = rows[i].Log
		if rows[i].Index >= 0 {
			idx := rows[i].Index
			r.LogIndex = &idx
		}
		out = append(out, r)
	}
	return out, nil
}
