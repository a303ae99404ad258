package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// Subject is a canonical subject id of SubjectKind (person when
	// empty), matched through the blind index.
	Subject     string
	SubjectKind string   // with Subject: its kind; alone: records about subjects of that kind
	Kinds       []string // record kinds (crossroads.Record*), any of them; empty: all
	Purpose     string
	Outcome     string
	From, To    time.Time
	PageToken   string // from a previous Page of the same query
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
	// Next is the link to the next page (set by the HTTP handler); absent
	// on the last page.
	Next string `json:"next,omitempty"`
}

// MaxLimit is the largest page.
const MaxLimit = 1000

// Search returns the records matching q, newest first, decrypting the page.
// A page token that does not belong to q is refused (crossroads.ErrInvalid).
func (t *Trail) Search(ctx context.Context, q Query) (*Page, error) {
	rows, next, err := t.searchRows(ctx, &q)
	if err != nil {
		return nil, err
	}
	p := &Page{Records: []Entry{}, NextPageToken: next}
	for i := range rows {
		e, err := t.entry(ctx, &rows[i])
		if err != nil {
			return nil, err
		}
		p.Records = append(p.Records, e)
	}
	return p, nil
}

// searchRows returns the rows of one page of q and the token of the next.
func (t *Trail) searchRows(ctx context.Context, q *Query) ([]Row, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, MaxLimit)
	sq := StoreQuery{
		Participant: q.Participant, Service: q.Service, Purpose: q.Purpose, Outcome: q.Outcome,
		From: q.From, To: q.To, Kinds: q.Kinds, SubjectKind: q.SubjectKind, Limit: limit + 1,
	}
	if q.Subject != "" {
		kind := q.SubjectKind
		if kind == "" {
			kind = crossroads.SubjectPerson
		}
		sq.SubjectIndex, sq.SubjectKind = blindIndex(t.indexKey, kind, q.Subject), ""
	}
	if q.PageToken != "" {
		n, err := t.parsePageToken(q, q.PageToken)
		if err != nil {
			return nil, "", err
		}
		sq.BeforeSeq = n
	}
	rows, err := t.store.Search(ctx, sq)
	if err != nil {
		return nil, "", fmt.Errorf("audit: search: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = t.pageToken(q, rows[limit-1].Seq)
	}
	return rows, next, nil
}

// entry decrypts a row (its clear columns only once erased).
func (t *Trail) entry(ctx context.Context, row *Row) (Entry, error) {
	var e Entry
	if row.Erased() {
		e = Entry{AuditRecord: *erasedRecord(row), Erased: true}
	} else {
		rec, _, err := t.decrypt(ctx, row)
		if err != nil {
			return e, err
		}
		e = Entry{AuditRecord: *rec}
	}
	e.Log = row.Log
	if row.Index >= 0 {
		idx := row.Index
		e.LogIndex = &idx
	}
	return e, nil
}

// SubjectEntry is one line of "who looked at my data" (an exchange about
// the subject, or someone's search of the trail for them) or of "who has a
// file on me" (an integration event).
type SubjectEntry struct {
	Time       time.Time `json:"time"`
	ExchangeID string    `json:"exchangeId"`
	// Kind is the record kind: absent for an exchange, audit-search for an
	// auditor's or operator's search naming the subject, integration for a
	// change to a file on the subject.
	Kind string `json:"kind,omitempty"`
	// Action is the event's action (search; register, end, correct).
	Action string `json:"action,omitempty"`
	// Institution is who acted: the requester of an exchange, the auditor
	// who searched, the institution whose file changed (or the operator
	// who changed it).
	Institution      string `json:"institution"`
	Service          string `json:"service,omitempty"`
	Purpose          string `json:"purpose,omitempty"`
	AuthorisationRef string `json:"authorisationRef,omitempty"`
	Outcome          string `json:"outcome"`
	// File is the file an integration event is about.
	File *File `json:"file,omitempty"`
	// Proof is the record's C2SP tlog-proof, absent until integrated and
	// covered by a published checkpoint.
	Proof string `json:"proof,omitempty"`
	// Erased is set when the record's payload was erased after its
	// retention period.
	Erased bool `json:"erased,omitempty"`
}

// File is an institution's file on a subject, as an integration event
// records it (its Detail is the crossroads.Integration after the change).
type File struct {
	Institution string     `json:"institution"`
	Sector      string     `json:"sector"`
	Capacity    string     `json:"capacity"`
	From        time.Time  `json:"from"`
	To          *time.Time `json:"to,omitempty"` // exclusive; absent while open
}

// Subject views: the record kinds each shows.
var (
	// ExchangeKinds are shown in the exchanges view: the exchanges about
	// the subject and the searches of the trail for them.
	ExchangeKinds = []string{crossroads.RecordExchange, crossroads.RecordAuditSearch}
	// FileKinds are shown in the files view: changes to files on the subject.
	FileKinds = []string{crossroads.RecordIntegration}
)

// SubjectQuery selects one page of a subject's own view.
type SubjectQuery struct {
	Kind      string   // subject kind; empty: person
	Subject   string   // canonical id (required)
	Records   []string // record kinds (ExchangeKinds, FileKinds)
	From, To  time.Time
	PageToken string
	Limit     int // default 100, at most MaxLimit
}

// SubjectPage is one page of a subject's view, newest first.
type SubjectPage struct {
	Entries       []SubjectEntry `json:"entries"`
	NextPageToken string         `json:"nextPageToken,omitempty"`
}

// SubjectPage returns one page of the records about a subject of the
// given kinds, newest first, each with its inclusion proof. Records about
// a subject of another kind never match, even if the ids are alike.
func (t *Trail) SubjectPage(ctx context.Context, sq SubjectQuery) (*SubjectPage, error) {
	if sq.Subject == "" {
		return nil, fmt.Errorf("audit: subject required: %w", crossroads.ErrInvalid)
	}
	kind := sq.Kind
	if kind == "" {
		kind = crossroads.SubjectPerson
	}
	if sq.Limit <= 0 {
		sq.Limit = 100
	}
	q := Query{Subject: sq.Subject, SubjectKind: kind, Kinds: sq.Records, From: sq.From, To: sq.To, PageToken: sq.PageToken, Limit: sq.Limit}
	rows, next, err := t.searchRows(ctx, &q)
	if err != nil {
		return nil, err
	}
	out := &SubjectPage{Entries: make([]SubjectEntry, 0, len(rows)), NextPageToken: next}
	if len(rows) == 0 {
		return out, nil
	}
	pf, err := t.newProver(ctx)
	if err != nil && !errors.Is(err, ErrNotIntegrated) {
		return nil, err
	}
	for i := range rows {
		e, err := t.entry(ctx, &rows[i])
		if err != nil {
			return nil, err
		}
		se := SubjectEntry{
			Time: e.Time, ExchangeID: e.ExchangeID, Kind: e.Kind, Action: e.Action, Institution: e.Requester,
			Service: e.Service, Purpose: e.Purpose, AuthorisationRef: e.AuthorisationRef, Outcome: e.Outcome, Erased: e.Erased,
		}
		if e.Kind == crossroads.RecordIntegration && len(e.Detail) > 0 {
			var in crossroads.Integration
			if json.Unmarshal(e.Detail, &in) == nil {
				f := &File{Institution: in.Participant, Sector: in.Sector, Capacity: in.Capacity, From: in.From}
				if !in.To.IsZero() {
					to := in.To
					f.To = &to
				}
				se.File = f
			}
		}
		if pf != nil {
			if pr, err := pf.prove(ctx, &rows[i]); err == nil {
				se.Proof = string(pr.Marshal())
			} else if !errors.Is(err, ErrNotIntegrated) {
				return nil, err
			}
		}
		out.Entries = append(out.Entries, se)
	}
	return out, nil
}

// BySubject lists, newest first, every exchange about a person between
// from and to (zero means unbounded), each with its inclusion proof. It
// reads every page: the HTTP views use SubjectPage.
func (t *Trail) BySubject(ctx context.Context, subject string, from, to time.Time) ([]SubjectEntry, error) {
	out := []SubjectEntry{}
	q := SubjectQuery{Subject: subject, Records: []string{crossroads.RecordExchange}, From: from, To: to, Limit: MaxLimit}
	for {
		p, err := t.SubjectPage(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Entries...)
		if p.NextPageToken == "" {
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
		e, err := t.entry(ctx, &rows[i])
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Seq: rows[i].Seq, Entry: e})
	}
	return out, nil
}
