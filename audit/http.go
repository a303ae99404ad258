package audit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"github.com/crossroads-hub/crossroads/problem"
	"github.com/transparency-dev/tessera/api/layout"
)

// LogHandler serves the Merkle log read-only in the C2SP tlog-tiles layout
// under /v1/log/: checkpoint, tile/L/N[.p/W], tile/entries/N[.p/W], and
// key (the note verifier key). Mount it at "/v1/log/".
func (t *Trail) LogHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/log/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp, err := t.Checkpoint(r.Context())
		if err != nil {
			if errors.Is(err, ErrNotWitnessed) {
				w.Header().Set("Retry-After", "10")
				writeProblem(w, http.StatusServiceUnavailable, "Checkpoint not yet cosigned", "No checkpoint has yet been cosigned by the witnesses the log's policy requires.")
				return
			}
			t.log.Error("audit read checkpoint", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, "Checkpoint unavailable", "")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(cp)
	})
	mux.HandleFunc("GET /v1/log/key", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, t.vkey)
	})
	mux.HandleFunc("GET /v1/log/tile/entries/{index...}", func(w http.ResponseWriter, r *http.Request) {
		idx, p, err := layout.ParseTileIndexPartial(r.PathValue("index"))
		if err != nil {
			writeProblem(w, http.StatusNotFound, "Not found", "")
			return
		}
		b, err := t.lg.reader.ReadEntryBundle(r.Context(), idx, p)
		if err == nil && p > 0 {
			b, err = truncateBundle(b, int(p))
		}
		serveTile(w, b, err, p)
	})
	mux.HandleFunc("GET /v1/log/tile/{level}/{index...}", func(w http.ResponseWriter, r *http.Request) {
		lvl, idx, p, err := layout.ParseTileLevelIndexPartial(r.PathValue("level"), r.PathValue("index"))
		if err != nil {
			writeProblem(w, http.StatusNotFound, "Not found", "")
			return
		}
		b, err := t.lg.reader.ReadTile(r.Context(), lvl, idx, p)
		if err == nil && p > 0 {
			// The full tile stands in for a collected partial one.
			if len(b) < int(p)*32 {
				err = errors.New("short tile")
			} else {
				b = b[:int(p)*32]
			}
		}
		serveTile(w, b, err, p)
	})
	return mux
}

func serveTile(w http.ResponseWriter, b []byte, err error, p uint8) {
	if err != nil {
		writeProblem(w, http.StatusNotFound, "Not found", "")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if p == 0 {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=60")
	}
	w.Write(b)
}

// truncateBundle keeps the first n entries of an entry bundle.
func truncateBundle(b []byte, n int) ([]byte, error) {
	off := 0
	for i := 0; i < n; i++ {
		if off+2 > len(b) {
			return nil, errors.New("short entry bundle")
		}
		off += 2 + int(binary.BigEndian.Uint16(b[off:]))
		if off > len(b) {
			return nil, errors.New("short entry bundle")
		}
	}
	return b[:off], nil
}

// Handler serves the log (/v1/log/…), the proofs
// (GET /v1/audit/proofs/{exchangeId}) and the record search
// (GET /v1/audit/records). The caller is taken from crossroads.CallerFrom.
func (t *Trail) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/log/", t.LogHandler())
	mux.Handle("GET /v1/audit/proofs/{exchangeId}", t.ProofHandler())
	mux.Handle("GET /v1/audit/records", t.RecordsHandler())
	return mux
}

func privileged(p *crossroads.Participant) bool {
	return p.Kind == crossroads.KindOperator || p.Kind == crossroads.KindAuditor
}

// HeaderRecordErased marks the proof of a record whose payload was erased
// after its retention period.
const HeaderRecordErased = "Crossroads-Record-Erased"

// ProofHandler serves GET /v1/audit/proofs/{exchangeId}: the record's C2SP
// tlog-proof, to the requester or provider of the exchange and to
// operators and auditors; anyone else gets 404, as for an unknown exchange.
func (t *Trail) ProofHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, ok := crossroads.CallerFrom(r.Context())
		if !ok {
			writeProblem(w, http.StatusUnauthorized, "Authentication required", "")
			return
		}
		id := r.PathValue("exchangeId")
		row, err := t.store.Get(r.Context(), id)
		if err != nil || !(privileged(caller) || caller.ID == row.Requester || (row.Provider != "" && caller.ID == row.Provider)) {
			if err != nil && !errors.Is(err, crossroads.ErrNotFound) {
				t.log.Error("audit proof lookup", "err", err)
				writeProblem(w, http.StatusServiceUnavailable, "Audit trail unavailable", "")
				return
			}
			writeProblem(w, http.StatusNotFound, "Not found", "No audit record of this exchange is available to you.")
			return
		}
		var pr *verify.Proof
		if row.Index >= 0 {
			var p *prover
			if p, err = t.newProver(r.Context()); err == nil {
				pr, err = p.prove(r.Context(), &row)
			}
		} else {
			err = ErrNotIntegrated
		}
		if errors.Is(err, ErrNotIntegrated) {
			w.Header().Set("Retry-After", strconv.Itoa(int((t.cfg.MaxMergeDelay+time.Second-1)/time.Second)))
			writeProblem(w, http.StatusServiceUnavailable, "Not yet in the log", "The record is durable; its inclusion proof is available within the maximum merge delay.")
			return
		}
		if err != nil {
			t.log.Error("audit proof", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, "Audit trail unavailable", "")
			return
		}
		if row.Erased() {
			// The leaf and its proof stay; the record's content is gone.
			w.Header().Set(HeaderRecordErased, "true")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(pr.Marshal())
	})
}

// RecordsHandler serves GET /v1/audit/records?participant=&service=
// &subject=&subjectKind=&kind=&purpose=&outcome=&from=&to=&pageToken=&limit=
// (times in RFC 3339; kind repeatable, "exchange" for exchanges) to
// operators and auditors; others get 403. Every search is itself recorded
// in the trail before it is answered (an audit-search event naming the
// searcher, the query in its detail and the subject searched for as its
// subject, so that the subject sees it); if that record cannot be made
// durable the search is refused with 503. Pages carry a next link.
func (t *Trail) RecordsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, ok := crossroads.CallerFrom(r.Context())
		if !ok {
			writeProblem(w, http.StatusUnauthorized, "Authentication required", "")
			return
		}
		if !privileged(caller) {
			writeProblem(w, http.StatusForbidden, "Forbidden", "Only operators and auditors may search the audit trail.")
			return
		}
		q, err := parseQuery(r.URL.Query())
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "Invalid query", err.Error())
			return
		}
		if q.PageToken != "" {
			if _, err := t.parsePageToken(&q, q.PageToken); err != nil {
				writeProblem(w, http.StatusBadRequest, "Invalid query", "Bad page token: it does not continue this query.")
				return
			}
		}
		if err := t.recordSearch(r, caller, &q); err != nil {
			t.log.Error("audit search not recorded; refused", "caller", caller.ID, "err", err)
			writeReason(w, http.StatusServiceUnavailable, crossroads.ReasonAuditUnavailable, "The search could not be recorded in the audit trail; it was not run.")
			return
		}
		p, err := t.Search(r.Context(), q)
		if errors.Is(err, crossroads.ErrInvalid) {
			writeProblem(w, http.StatusBadRequest, "Invalid query", "Bad page token.")
			return
		}
		if err != nil {
			t.log.Error("audit search", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, "Audit trail unavailable", "")
			return
		}
		if p.NextPageToken != "" {
			p.Next = NextLink(r, p.NextPageToken)
			w.Header().Set("Link", "<"+p.Next+`>; rel="next"`)
		}
		t.log.Info("audit search", "caller", caller.ID, "records", len(p.Records))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(p)
	})
}

// HeaderUser names the natural person acting for a participant (as on
// exchanges).
const HeaderUser = "Crossroads-User"

// maxUser bounds the recorded user name.
const maxUser = 200

// UserOf returns the natural person a request names (Crossroads-User),
// length-capped.
func UserOf(r *http.Request) string {
	u := r.Header.Get(HeaderUser)
	if len(u) > maxUser {
		u = u[:maxUser]
	}
	return u
}

// searchDetail is the detail of an audit-search event: the query, without
// the subject (the record's own Subject).
type searchDetail struct {
	Participant string    `json:"participant,omitempty"`
	Service     string    `json:"service,omitempty"`
	SubjectKind string    `json:"subjectKind,omitempty"`
	Kinds       []string  `json:"kinds,omitempty"`
	Purpose     string    `json:"purpose,omitempty"`
	Outcome     string    `json:"outcome,omitempty"`
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
	Page        bool      `json:"page,omitempty"` // a later page of the search
	Limit       int       `json:"limit,omitempty"`
}

// recordSearch commits the audit-search event of q.
func (t *Trail) recordSearch(r *http.Request, caller *crossroads.Participant, q *Query) error {
	rec, err := Event(crossroads.RecordAuditSearch, "search", caller.ID, UserOf(r), searchDetail{
		Participant: q.Participant, Service: q.Service, SubjectKind: q.SubjectKind, Kinds: q.Kinds,
		Purpose: q.Purpose, Outcome: q.Outcome, From: q.From, To: q.To, Page: q.PageToken != "", Limit: q.Limit,
	})
	if err != nil {
		return err
	}
	if q.Subject != "" {
		rec.Subject, rec.SubjectKind = q.Subject, q.SubjectKind
		if rec.SubjectKind == "" {
			rec.SubjectKind = crossroads.SubjectPerson
		}
	}
	_, err = t.Commit(r.Context(), rec)
	return err
}

// NextLink is the link to the next page of the request r: its path and
// query with pageToken set.
func NextLink(r *http.Request, token string) string {
	v := r.URL.Query()
	v.Set("pageToken", token)
	return r.URL.Path + "?" + v.Encode()
}

// recordKinds are the values of the kind parameter.
var recordKinds = map[string]string{
	"exchange": crossroads.RecordExchange, crossroads.RecordIntegration: crossroads.RecordIntegration,
	crossroads.RecordApply: crossroads.RecordApply, crossroads.RecordCertificate: crossroads.RecordCertificate,
	crossroads.RecordKey: crossroads.RecordKey, crossroads.RecordAuditSearch: crossroads.RecordAuditSearch,
	crossroads.RecordAbuseSummary: crossroads.RecordAbuseSummary,
	crossroads.RecordMutation:     crossroads.RecordMutation, crossroads.RecordDelivery: crossroads.RecordDelivery,
	crossroads.RecordBatch: crossroads.RecordBatch, crossroads.RecordFederation: crossroads.RecordFederation,
	crossroads.RecordSPE: crossroads.RecordSPE, crossroads.RecordConsole: crossroads.RecordConsole,
}

func parseQuery(v url.Values) (Query, error) {
	q := Query{
		Participant: v.Get("participant"), Service: v.Get("service"), Subject: v.Get("subject"),
		SubjectKind: v.Get("subjectKind"), Purpose: v.Get("purpose"), Outcome: v.Get("outcome"), PageToken: v.Get("pageToken"),
	}
	for _, ks := range v["kind"] {
		for _, k := range strings.Split(ks, ",") {
			kind, ok := recordKinds[k]
			if !ok {
				return q, errors.New("kind: want exchange, integration, register-apply, certificate, key, audit-search or abuse-summary")
			}
			if !slices.Contains(q.Kinds, kind) {
				q.Kinds = append(q.Kinds, kind)
			}
		}
	}
	if q.SubjectKind != "" && q.SubjectKind != crossroads.SubjectPerson && q.SubjectKind != crossroads.SubjectEnterprise {
		return q, errors.New("subjectKind: want person or enterprise")
	}
	var err error
	if s := v.Get("from"); s != "" {
		if q.From, err = time.Parse(time.RFC3339, s); err != nil {
			return q, errors.New("from: want an RFC 3339 time")
		}
	}
	if s := v.Get("to"); s != "" {
		if q.To, err = time.Parse(time.RFC3339, s); err != nil {
			return q, errors.New("to: want an RFC 3339 time")
		}
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > MaxLimit {
			return q, errors.New("limit: want 1 to 1000")
		}
	}
	return q, nil
}

// writeReason answers with a problem carrying a documented reason.
func writeReason(w http.ResponseWriter, status int, reason crossroads.Reason, detail string) {
	problem.Write(w, problem.New(status, reason, detail))
}

// writeProblem answers with RFC 9457 problem details (package problem),
// with a title of its own.
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	p := problem.New(status, "", detail)
	p.Title = title
	problem.Write(w, p)
}
