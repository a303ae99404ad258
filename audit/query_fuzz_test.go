package audit

import (
	"net/url"
	"testing"
)

// FuzzParseQuery: the audit search's query string never panics the
// parser, and what it accepts is in range.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"participant=ocmw-gent&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&limit=10",
		"limit=0", "limit=1001", "limit=-1", "from=yesterday", "to=2026-13-01T00:00:00Z",
		"subject=85073003328&subject=x&pageToken=%00", "outcome=denied&limit=99999999999999999999",
		"kind=exchange,audit-search&kind=integration&subjectKind=enterprise", "kind=bogus", "kind=", "subjectKind=company",
		"%zz", "from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999999+14:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseQuery(v)
		if err != nil {
			return
		}
		if q.Limit < 0 || q.Limit > 1000 {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		if v.Get("participant") != q.Participant || v.Get("pageToken") != q.PageToken {
			t.Fatal("fields not carried over")
		}
	})
}
