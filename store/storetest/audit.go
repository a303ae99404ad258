package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
)

// TestAuditStore runs the audit.Store conformance suite. open must return
// a store for t: empty the first time it is called with a given t, and —
// after the previous store was closed — the same data when called again
// with the same t (the durability test reopens). Stores that implement
// io.Closer are closed by the suite.
//
// Beyond the interface documentation, the suite fixes this contract (that
// of the SQLite store):
//   - Times come back in UTC, exact to the microsecond (the suite writes
//     whole microseconds); a nil SubjectIndex comes back nil.
//   - Seq is positive and increases in the order of the rows given to
//     InsertBatch and across batches and reopens; it need not be dense.
//     Of rows repeating an exchange id within a batch, the first is stored.
//   - Rows with a negative limit is unlimited; Search with Limit ≤ 0
//     returns at most 100 rows. Participant matches requester or provider.
//   - Keys are listed in period order.
//   - A record's month does not matter: rows of any month, past or future,
//     are stored and found (partitioned backends create partitions).
func TestAuditStore(t *testing.T, open func(t *testing.T) audit.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) audit.Store)
	}{
		{"Empty", testAuditEmpty},
		{"InsertGet", testAuditInsertGet},
		{"Duplicates", testAuditDuplicates},
		{"RowsAndMarks", testAuditRowsAndMarks},
		{"Search", testAuditSearch},
		{"SearchPaging", testAuditSearchPaging},
		{"Months", testAuditMonths},
		{"Keys", testAuditKeys},
		{"Durability", testAuditDurability},
		{"Concurrent", testAuditConcurrent},
		{"LogID", testAuditLogID},
		{"CommitOrder", testAuditCommitOrder},
		{"Cursors", testAuditCursors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, func(t *testing.T) audit.Store {
				s := open(t)
				if c, ok := s.(io.Closer); ok {
					t.Cleanup(func() { c.Close() })
				}
				return s
			})
		})
	}
}

// auditT0 has whole microseconds and a non-UTC zone.
var auditT0 = time.Date(2025, 3, 15, 9, 30, 1, 123456000, brussels)

// auditRow makes a distinct row i of exchange id.
func auditRow(i int, id string) *audit.Row {
	r := &audit.Row{
		ExchangeID: id,
		Time:       auditT0.Add(time.Duration(i) * time.Second),
		Requester:  []string{"inst-a", "inst-b", "inst-c"}[i%3],
		Provider:   []string{"rr", "rsz"}[i%2],
		Service:    []string{"rr.person", "rsz.employer", "rr.address"}[i%3],
		Purpose:    []string{"benefit.check", "fraud"}[i%2],
		Outcome:    []string{crossroads.OutcomeAllowed, crossroads.OutcomeDenied, crossroads.OutcomeFailed}[i%3],
		Reason:     string([]crossroads.Reason{crossroads.ReasonAllowed, crossroads.ReasonNoAuthorisation, crossroads.ReasonProviderError}[i%3]),
		Period:     auditT0.Add(time.Duration(i) * time.Second).UTC().Format("2006-01-02"),
		Nonce:      bytes.Repeat([]byte{byte(i)}, 32),
		Ciphertext: append(bytes.Repeat([]byte{0xc0, byte(i)}, 40), byte(i>>8)),
		Leaf:       append([]byte{1}, bytes.Repeat([]byte{byte(i), 0x1e}, 20)...),
		Index:      -1,
	}
	if i%4 != 3 { // every fourth exchange concerns no subject
		r.SubjectIndex = bytes.Repeat([]byte{byte(i % 5), 0x5b}, 16)
		r.SubjectKind = []string{crossroads.SubjectPerson, crossroads.SubjectEnterprise}[i%2]
	}
	// Most records are exchanges; some are events of other kinds.
	r.Kind = []string{crossroads.RecordExchange, crossroads.RecordExchange, crossroads.RecordIntegration, crossroads.RecordExchange,
		crossroads.RecordAuditSearch, crossroads.RecordExchange, crossroads.RecordApply}[i%7]
	return r
}

func auditRows(from, n int) []*audit.Row {
	rows := make([]*audit.Row, n)
	for i := range rows {
		rows[i] = auditRow(from+i, fmt.Sprintf("ex-%06d", from+i))
	}
	return rows
}

func insert(t *testing.T, s audit.Store, rows []*audit.Row) {
	t.Helper()
	if err := s.InsertBatch(ctx, rows); err != nil {
		t.Fatalf("InsertBatch: %v", err)
	}
}

// wantRow is r as the store returns it.
func wantRow(r *audit.Row) audit.Row {
	w := *r
	w.Time = w.Time.UTC()
	if len(w.SubjectIndex) == 0 {
		w.SubjectIndex = nil
	}
	return w
}

func mustRows(t *testing.T, s audit.Store, after int64, limit int, unintegrated bool) []audit.Row {
	t.Helper()
	rows, err := s.Rows(ctx, after, limit, unintegrated)
	if err != nil {
		t.Fatalf("Rows(%d, %d, %v): %v", after, limit, unintegrated, err)
	}
	return rows
}

func seqs(rows []audit.Row) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.Seq
	}
	return out
}

func ids(rows []audit.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ExchangeID
	}
	return out
}

func testAuditEmpty(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	if rows := mustRows(t, s, 0, 100, false); len(rows) != 0 {
		t.Errorf("Rows on a new store: %v", rows)
	}
	if n, err := s.MaxIndex(ctx); err != nil || n != -1 {
		t.Errorf("MaxIndex on a new store = %d, %v; want -1", n, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("Get on a new store = %v, want ErrNotFound", err)
	}
	if rows, err := s.Search(ctx, audit.StoreQuery{}); err != nil || len(rows) != 0 {
		t.Errorf("Search on a new store = %v, %v", rows, err)
	}
	if keys, err := s.Keys(ctx); err != nil || len(keys) != 0 {
		t.Errorf("Keys on a new store = %v, %v", keys, err)
	}
	if _, err := s.Key(ctx, "2025-01-01"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("Key on a new store = %v, want ErrNotFound", err)
	}
	if err := s.InsertBatch(ctx, nil); err != nil {
		t.Errorf("InsertBatch(nil) = %v", err)
	}
	if err := s.MarkIntegrated(ctx, nil); err != nil {
		t.Errorf("MarkIntegrated(nil) = %v", err)
	}
}

func testAuditInsertGet(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	rows := auditRows(0, 8)
	rows[0].Seq = 99 // InsertBatch sets Seq whatever it held
	insert(t, s, rows)
	var prev int64
	for _, r := range rows {
		if r.Seq <= prev {
			t.Fatalf("Seq %d of %s after %d: want increasing, positive", r.Seq, r.ExchangeID, prev)
		}
		prev = r.Seq
	}
	for _, r := range rows {
		got, err := s.Get(ctx, r.ExchangeID)
		if err != nil {
			t.Fatalf("Get(%s): %v", r.ExchangeID, err)
		}
		diff(t, "Get("+r.ExchangeID+")", got, wantRow(r))
		if got.Time.Location() != time.UTC {
			t.Errorf("Get(%s).Time not in UTC: %v", r.ExchangeID, got.Time)
		}
	}
	// A second batch continues the sequence.
	more := auditRows(8, 3)
	insert(t, s, more)
	if more[0].Seq <= prev {
		t.Errorf("second batch Seq %d not after %d", more[0].Seq, prev)
	}
	if _, err := s.Get(ctx, "ex-999999"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("Get of an unknown exchange = %v, want ErrNotFound", err)
	}
}

func testAuditDuplicates(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	first := auditRows(0, 3)
	insert(t, s, first)
	// ex-000001 is stored; ex-000010 repeats within the batch.
	dupStored := auditRow(50, "ex-000001")
	a, b := auditRow(10, "ex-000010"), auditRow(11, "ex-000010")
	c := auditRow(12, "ex-000012")
	batch := []*audit.Row{dupStored, a, b, c}
	insert(t, s, batch)
	if dupStored.Seq != 0 || b.Seq != 0 {
		t.Errorf("duplicates got Seq %d and %d, want 0", dupStored.Seq, b.Seq)
	}
	if a.Seq <= first[2].Seq || c.Seq <= a.Seq {
		t.Errorf("new rows got Seq %d, %d after %d", a.Seq, c.Seq, first[2].Seq)
	}
	got, err := s.Get(ctx, "ex-000001")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "stored row after a duplicate insert", got, wantRow(first[1]))
	got, err = s.Get(ctx, "ex-000010")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "first of repeated rows", got, wantRow(a))
	if all := mustRows(t, s, 0, -1, false); len(all) != 5 {
		t.Errorf("%d rows stored, want 5: %v", len(all), ids(all))
	}
	// A batch made only of duplicates.
	again := auditRows(0, 3)
	insert(t, s, again)
	for _, r := range again {
		if r.Seq != 0 {
			t.Errorf("duplicate %s got Seq %d", r.ExchangeID, r.Seq)
		}
	}
}

func testAuditRowsAndMarks(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	rows := auditRows(0, 10)
	insert(t, s, rows)
	all := mustRows(t, s, 0, 100, false)
	if len(all) != 10 {
		t.Fatalf("Rows: %d rows, want 10", len(all))
	}
	for i := range all {
		diff(t, "Rows", all[i], wantRow(rows[i]))
	}
	if got := mustRows(t, s, rows[3].Seq, 4, false); !slices.Equal(ids(got), []string{"ex-000004", "ex-000005", "ex-000006", "ex-000007"}) {
		t.Errorf("Rows(after 3rd, 4) = %v", ids(got))
	}
	if got := mustRows(t, s, rows[9].Seq, 10, false); len(got) != 0 {
		t.Errorf("Rows after the last = %v", ids(got))
	}
	// Integrate rows 0, 1, 2 and 5.
	marks := []audit.Mark{{Seq: rows[0].Seq, Index: 0}, {Seq: rows[1].Seq, Index: 1}, {Seq: rows[2].Seq, Index: 2}, {Seq: rows[5].Seq, Index: 3}}
	if err := s.MarkIntegrated(ctx, marks); err != nil {
		t.Fatalf("MarkIntegrated: %v", err)
	}
	un := mustRows(t, s, 0, 100, true)
	if want := []string{"ex-000003", "ex-000004", "ex-000006", "ex-000007", "ex-000008", "ex-000009"}; !slices.Equal(ids(un), want) {
		t.Errorf("unintegrated rows = %v, want %v", ids(un), want)
	}
	if !slices.IsSorted(seqs(un)) {
		t.Errorf("unintegrated rows not in Seq order: %v", seqs(un))
	}
	for _, r := range un {
		if r.Index != -1 {
			t.Errorf("unintegrated row %s has Index %d", r.ExchangeID, r.Index)
		}
	}
	if got := mustRows(t, s, rows[4].Seq, 2, true); !slices.Equal(ids(got), []string{"ex-000006", "ex-000007"}) {
		t.Errorf("Rows(after 5th, 2, unintegrated) = %v", ids(got))
	}
	if got, err := s.Get(ctx, "ex-000005"); err != nil || got.Index != 3 {
		t.Errorf("Get of an integrated row: Index %d, %v; want 3", got.Index, err)
	}
	if n, err := s.MaxIndex(ctx); err != nil || n != 3 {
		t.Errorf("MaxIndex = %d, %v; want 3", n, err)
	}
	for i, r := range mustRows(t, s, 0, 100, false) {
		want := map[int]int64{0: 0, 1: 1, 2: 2, 5: 3}
		w, ok := want[i]
		if !ok {
			w = -1
		}
		if r.Index != w {
			t.Errorf("row %s: Index %d, want %d", r.ExchangeID, r.Index, w)
		}
	}
	// Integrate the rest; none is left.
	marks = marks[:0]
	for i, r := range un {
		marks = append(marks, audit.Mark{Seq: r.Seq, Index: int64(4 + i)})
	}
	if err := s.MarkIntegrated(ctx, marks); err != nil {
		t.Fatalf("MarkIntegrated: %v", err)
	}
	if got := mustRows(t, s, 0, 100, true); len(got) != 0 {
		t.Errorf("unintegrated rows after marking all: %v", ids(got))
	}
	if n, err := s.MaxIndex(ctx); err != nil || n != 9 {
		t.Errorf("MaxIndex = %d, %v; want 9", n, err)
	}
}

// searchFixture inserts 30 rows, one second apart, and returns them.
func searchFixture(t *testing.T, s audit.Store) []*audit.Row {
	rows := auditRows(0, 30)
	insert(t, s, rows[:10])
	insert(t, s, rows[10:])
	return rows
}

// expect filters rows by keep, newest first, at most limit.
func expect(rows []*audit.Row, limit int, keep func(*audit.Row) bool) []string {
	var out []string
	for i := len(rows) - 1; i >= 0 && len(out) < limit; i-- {
		if keep(rows[i]) {
			out = append(out, rows[i].ExchangeID)
		}
	}
	return out
}

func testAuditSearch(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	rows := searchFixture(t, s)
	subject := auditRow(2, "").SubjectIndex
	cases := []struct {
		name string
		q    audit.StoreQuery
		keep func(*audit.Row) bool
	}{
		{"all", audit.StoreQuery{Limit: 100}, func(*audit.Row) bool { return true }},
		{"requester", audit.StoreQuery{Participant: "inst-b", Limit: 100}, func(r *audit.Row) bool { return r.Requester == "inst-b" }},
		{"provider", audit.StoreQuery{Participant: "rsz", Limit: 100}, func(r *audit.Row) bool { return r.Provider == "rsz" }},
		{"service", audit.StoreQuery{Service: "rr.address", Limit: 100}, func(r *audit.Row) bool { return r.Service == "rr.address" }},
		{"purpose", audit.StoreQuery{Purpose: "fraud", Limit: 100}, func(r *audit.Row) bool { return r.Purpose == "fraud" }},
		{"outcome", audit.StoreQuery{Outcome: crossroads.OutcomeDenied, Limit: 100}, func(r *audit.Row) bool { return r.Outcome == crossroads.OutcomeDenied }},
		{"subject", audit.StoreQuery{SubjectIndex: subject, Limit: 100}, func(r *audit.Row) bool { return bytes.Equal(r.SubjectIndex, subject) }},
		{"unknown subject", audit.StoreQuery{SubjectIndex: []byte("nobody"), Limit: 100}, func(*audit.Row) bool { return false }},
		{"from", audit.StoreQuery{From: rows[20].Time, Limit: 100}, func(r *audit.Row) bool { return !r.Time.Before(rows[20].Time) }},
		{"to exclusive", audit.StoreQuery{To: rows[5].Time, Limit: 100}, func(r *audit.Row) bool { return r.Time.Before(rows[5].Time) }},
		{"from to", audit.StoreQuery{From: rows[7].Time, To: rows[17].Time, Limit: 100}, func(r *audit.Row) bool {
			return !r.Time.Before(rows[7].Time) && r.Time.Before(rows[17].Time)
		}},
		{"combined", audit.StoreQuery{Participant: "rr", Outcome: crossroads.OutcomeAllowed, From: rows[3].Time, Limit: 100}, func(r *audit.Row) bool {
			return (r.Requester == "rr" || r.Provider == "rr") && r.Outcome == crossroads.OutcomeAllowed && !r.Time.Before(rows[3].Time)
		}},
		{"kind", audit.StoreQuery{Kinds: []string{crossroads.RecordIntegration}, Limit: 100}, func(r *audit.Row) bool { return r.Kind == crossroads.RecordIntegration }},
		{"kinds", audit.StoreQuery{Kinds: []string{crossroads.RecordExchange, crossroads.RecordAuditSearch}, Limit: 100}, func(r *audit.Row) bool {
			return r.Kind == crossroads.RecordExchange || r.Kind == crossroads.RecordAuditSearch
		}},
		{"subject kind", audit.StoreQuery{SubjectKind: crossroads.SubjectEnterprise, Limit: 100}, func(r *audit.Row) bool { return r.SubjectKind == crossroads.SubjectEnterprise }},
		{"subject and kinds", audit.StoreQuery{SubjectIndex: subject, Kinds: []string{crossroads.RecordExchange}, SubjectKind: crossroads.SubjectPerson, Limit: 100}, func(r *audit.Row) bool {
			return bytes.Equal(r.SubjectIndex, subject) && r.Kind == crossroads.RecordExchange && r.SubjectKind == crossroads.SubjectPerson
		}},
		{"before seq", audit.StoreQuery{BeforeSeq: rows[12].Seq, Limit: 100}, func(r *audit.Row) bool { return r.Seq < rows[12].Seq }},
		{"limit", audit.StoreQuery{Outcome: crossroads.OutcomeFailed, Limit: 3}, func(r *audit.Row) bool { return r.Outcome == crossroads.OutcomeFailed }},
		{"default limit", audit.StoreQuery{}, func(*audit.Row) bool { return true }},
	}
	for _, c := range cases {
		got, err := s.Search(ctx, c.q)
		if err != nil {
			t.Fatalf("Search(%s): %v", c.name, err)
		}
		limit := c.q.Limit
		if limit <= 0 {
			limit = 100
		}
		want := expect(rows, limit, c.keep)
		if len(want) == 0 && !strings.HasPrefix(c.name, "unknown") {
			t.Fatalf("Search(%s): the fixture has no matching row", c.name)
		}
		if !slices.Equal(ids(got), want) {
			t.Errorf("Search(%s) = %v, want %v", c.name, ids(got), want)
		}
	}
	// Search returns whole rows, with their log index.
	if err := s.MarkIntegrated(ctx, []audit.Mark{{Seq: rows[29].Seq, Index: 0}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Search(ctx, audit.StoreQuery{Limit: 2})
	if err != nil || len(got) != 2 {
		t.Fatalf("Search: %v, %v", got, err)
	}
	w := wantRow(rows[29])
	w.Index = 0
	diff(t, "Search row", got[0], w)
	diff(t, "Search row", got[1], wantRow(rows[28]))
}

func testAuditSearchPaging(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	rows := searchFixture(t, s)
	// Page through inst-a's exchanges three at a time, as Trail.Search does.
	q := audit.StoreQuery{Participant: "inst-a", Limit: 3}
	var got []string
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatal("paging does not end")
		}
		res, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(res)...)
		if len(res) < q.Limit {
			break
		}
		q.BeforeSeq = res[len(res)-1].Seq
	}
	if want := expect(rows, 100, func(r *audit.Row) bool { return r.Requester == "inst-a" }); !slices.Equal(got, want) {
		t.Errorf("paged search = %v, want %v", got, want)
	}
}

// testAuditMonths stores rows of many months, years apart, out of order,
// in one batch: a partitioned backend must route each to its partition.
func testAuditMonths(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	times := []time.Time{
		time.Date(2031, 7, 4, 12, 0, 0, 1000, time.UTC),
		time.Date(2019, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 10, 0, 0, 0, brussels), // 09:00 UTC
		time.Date(2024, 3, 1, 0, 30, 0, 0, brussels),  // still February in UTC
		time.Now().Truncate(time.Microsecond),
	}
	var rows []*audit.Row
	for i, tm := range times {
		r := auditRow(i, fmt.Sprintf("m-%d", i))
		r.Time = tm
		rows = append(rows, r)
	}
	insert(t, s, rows)
	for _, r := range rows {
		got, err := s.Get(ctx, r.ExchangeID)
		if err != nil {
			t.Fatalf("Get(%s): %v", r.ExchangeID, err)
		}
		diff(t, "row of "+r.Time.String(), got, wantRow(r))
	}
	feb := audit.StoreQuery{From: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)}
	if got, err := s.Search(ctx, feb); err != nil || !slices.Equal(ids(got), []string{"m-4", "m-3"}) {
		t.Errorf("Search(February 2024) = %v, %v; want [m-4 m-3]", ids(got), err)
	}
	edge := audit.StoreQuery{From: time.Date(2019, 12, 31, 23, 59, 59, 999999000, time.UTC), To: time.Date(2020, 1, 1, 0, 0, 0, 1000, time.UTC)}
	if got, err := s.Search(ctx, edge); err != nil || !slices.Equal(ids(got), []string{"m-2", "m-1"}) {
		t.Errorf("Search(year boundary) = %v, %v; want [m-2 m-1]", ids(got), err)
	}
	if got := mustRows(t, s, 0, 100, true); !slices.Equal(ids(got), []string{"m-0", "m-1", "m-2", "m-3", "m-4", "m-5"}) {
		t.Errorf("Rows = %v, want insertion order", ids(got))
	}
}

func testAuditKeys(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	k1 := audit.DataKey{Period: "2025-03-15", KEKID: "kek-1", Wrapped: []byte("wrapped-1")}
	got, err := s.PutKey(ctx, k1)
	if err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	diff(t, "PutKey of a new period", got, k1)
	other := audit.DataKey{Period: k1.Period, KEKID: "kek-2", Wrapped: []byte("another key")}
	got, err = s.PutKey(ctx, other)
	if err != nil {
		t.Fatalf("PutKey (existing period): %v", err)
	}
	diff(t, "PutKey of an existing period", got, k1)
	k0 := audit.DataKey{Period: "2025-03-14", KEKID: "kek-1", Wrapped: []byte{0, 1, 2, 0xff}}
	if _, err := s.PutKey(ctx, k0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Key(ctx, k1.Period); err != nil {
		t.Errorf("Key: %v", err)
	} else {
		diff(t, "Key", got, k1)
	}
	if _, err := s.Key(ctx, "2025-03-16"); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("Key of an unknown period = %v, want ErrNotFound", err)
	}
	keys, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "Keys", keys, []audit.DataKey{k0, k1})
	// Rewrap.
	re := audit.DataKey{Period: k1.Period, KEKID: "kek-2", Wrapped: []byte("rewrapped-1")}
	if err := s.ReplaceKey(ctx, re); err != nil {
		t.Fatalf("ReplaceKey: %v", err)
	}
	if got, err := s.Key(ctx, k1.Period); err != nil {
		t.Errorf("Key: %v", err)
	} else {
		diff(t, "Key after ReplaceKey", got, re)
	}
	if err := s.ReplaceKey(ctx, audit.DataKey{Period: "1999-01-01", KEKID: "k", Wrapped: []byte("x")}); !errors.Is(err, crossroads.ErrNotFound) {
		t.Errorf("ReplaceKey of an unknown period = %v, want ErrNotFound", err)
	}
	keys, err = s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "Keys after ReplaceKey", keys, []audit.DataKey{k0, re})
}

func testAuditDurability(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	rows := auditRows(0, 20)
	insert(t, s, rows)
	if err := s.MarkIntegrated(ctx, []audit.Mark{{Seq: rows[0].Seq, Index: 0}, {Seq: rows[1].Seq, Index: 1}}); err != nil {
		t.Fatal(err)
	}
	k := audit.DataKey{Period: "2025-03-15", KEKID: "kek-1", Wrapped: []byte("w")}
	if _, err := s.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	want := mustRows(t, s, 0, -1, false)
	c, ok := s.(io.Closer)
	if !ok {
		t.Skip("store has no Close; durability is the backend's own test")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t)
	diff(t, "rows after reopen", mustRows(t, s, 0, -1, false), want)
	if n, err := s.MaxIndex(ctx); err != nil || n != 1 {
		t.Errorf("MaxIndex after reopen = %d, %v; want 1", n, err)
	}
	if got, err := s.Key(ctx, k.Period); err != nil {
		t.Errorf("Key after reopen: %v", err)
	} else {
		diff(t, "key after reopen", got, k)
	}
	// Seq goes on increasing; duplicates are still recognised.
	more := auditRows(19, 2)
	insert(t, s, more)
	if more[0].Seq != 0 || more[1].Seq <= want[len(want)-1].Seq {
		t.Errorf("after reopen: duplicate got Seq %d, new row Seq %d (last before %d)", more[0].Seq, more[1].Seq, want[len(want)-1].Seq)
	}
}

// testAuditConcurrent: several writers (group-commit batches from several
// hub nodes) and readers at once neither fail nor lose rows.
func testAuditConcurrent(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	const workers, batches, size = 4, 5, 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := s.InsertBatch(ctx, auditRows((w*batches+b)*size, size)); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range batches {
				if _, err := s.Search(ctx, audit.StoreQuery{Participant: "inst-a", Limit: 10}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Rows(ctx, 0, 50, true); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all := mustRows(t, s, 0, -1, false)
	if len(all) != workers*batches*size {
		t.Errorf("%d rows after concurrent inserts, want %d", len(all), workers*batches*size)
	}
	if !slices.IsSorted(seqs(all)) || len(slices.Compact(seqs(all))) != len(all) {
		t.Errorf("Seqs not unique and increasing")
	}
}

// testAuditLogID: a row names its log from insertion on, with its index
// once marked; a row without a log comes back without one.
func testAuditLogID(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	rows := auditRows(0, 3)
	rows[0].Log, rows[1].Log = "hub.example/audit", "hub.example/audit"
	insert(t, s, rows)
	if err := s.MarkIntegrated(ctx, []audit.Mark{{Seq: rows[0].Seq, Index: 0}}); err != nil {
		t.Fatal(err)
	}
	got := mustRows(t, s, 0, -1, false)
	if len(got) != 3 {
		t.Fatalf("%d rows, want 3", len(got))
	}
	for i, want := range []struct {
		log string
		idx int64
	}{{"hub.example/audit", 0}, {"hub.example/audit", -1}, {"", -1}} {
		if got[i].Log != want.log || got[i].Index != want.idx {
			t.Errorf("row %d: (log, index) = (%q, %d), want (%q, %d)", i, got[i].Log, got[i].Index, want.log, want.idx)
		}
	}
	r, err := s.Get(ctx, rows[0].ExchangeID)
	if err != nil || r.Log != "hub.example/audit" || r.Index != 0 {
		t.Errorf("Get = (%q, %d), %v; want (hub.example/audit, 0)", r.Log, r.Index, err)
	}
	found, err := s.Search(ctx, audit.StoreQuery{Participant: rows[1].Requester, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if f.ExchangeID == rows[1].ExchangeID && f.Log != "hub.example/audit" {
			t.Errorf("Search: log %q", f.Log)
		}
	}
}

// testAuditCommitOrder: writers commit batches concurrently (the nodes of
// a deployment) while a reader follows the trail the way the SIEM export
// does, resuming after the largest sequence number it has seen. It must
// see every row: sequence numbers follow commit order, so no row commits
// behind the reader's position.
func testAuditCommitOrder(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	const workers, batches, size = 4, 15, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				if err := s.InsertBatch(ctx, auditRows(10_000+(w*batches+b)*size, size)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	seen := map[string]bool{}
	var cursor int64
	for done := false; ; {
		select {
		case <-writersDone:
			done = true
		default:
		}
		rows, err := s.Rows(ctx, cursor, 50, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if seen[r.ExchangeID] {
				t.Fatalf("row %s read twice", r.ExchangeID)
			}
			seen[r.ExchangeID] = true
			cursor = r.Seq
		}
		if done && len(rows) == 0 {
			break
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != workers*batches*size {
		t.Errorf("the cursor reader saw %d rows of %d: a row committed behind its position", len(seen), workers*batches*size)
	}
}

// testAuditCursors: named cursors start at 0, keep the last position set
// and survive a reopen.
func testAuditCursors(t *testing.T, open func(*testing.T) audit.Store) {
	s := open(t)
	cs, ok := s.(audit.CursorStore)
	if !ok {
		t.Fatal("the store does not implement audit.CursorStore")
	}
	if pos, err := cs.Cursor(ctx, "siem"); err != nil || pos != 0 {
		t.Fatalf("Cursor of a new name = %d, %v; want 0", pos, err)
	}
	for _, p := range []int64{7, 42} {
		if err := cs.SetCursor(ctx, "siem", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs.SetCursor(ctx, "other", 3); err != nil {
		t.Fatal(err)
	}
	c, ok := s.(io.Closer)
	if !ok {
		t.Skip("store has no Close")
	}
	c.Close()
	cs = open(t).(audit.CursorStore)
	for name, want := range map[string]int64{"siem": 42, "other": 3} {
		if pos, err := cs.Cursor(ctx, name); err != nil || pos != want {
			t.Errorf("Cursor(%s) after reopen = %d, %v; want %d", name, pos, err, want)
		}
	}
}
