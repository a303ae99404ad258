package audit

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

func cursorTrail() *Trail { return &Trail{indexKey: []byte("0123456789abcdef0123456789abcdef")} }

// TestPageTokenBound: a page token continues only the query it came from.
func TestPageTokenBound(t *testing.T) {
	tr := cursorTrail()
	q := Query{Subject: "85073003328", Kinds: ExchangeKinds, From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tok := tr.pageToken(&q, 42)
	if n, err := tr.parsePageToken(&q, tok); err != nil || n != 42 {
		t.Fatalf("own token: %d %v", n, err)
	}
	others := map[string]Query{
		"subject":      {Subject: "85073003307", Kinds: q.Kinds, From: q.From},
		"subject kind": {Subject: q.Subject, SubjectKind: crossroads.SubjectEnterprise, Kinds: q.Kinds, From: q.From},
		"kinds":        {Subject: q.Subject, Kinds: FileKinds, From: q.From},
		"period":       {Subject: q.Subject, Kinds: q.Kinds},
		"participant":  {Subject: q.Subject, Kinds: q.Kinds, From: q.From, Participant: "x"},
	}
	for name, o := range others {
		if _, err := tr.parsePageToken(&o, tok); !errors.Is(err, crossroads.ErrInvalid) {
			t.Errorf("%s: token accepted", name)
		}
	}
	// Another sequence number under the same MAC is refused.
	b, _ := base64.RawURLEncoding.DecodeString(tok)
	binary.BigEndian.PutUint64(b, 41)
	if _, err := tr.parsePageToken(&q, base64.RawURLEncoding.EncodeToString(b)); err == nil {
		t.Error("moved token accepted")
	}
	// A token of another trail's key is refused.
	other := &Trail{indexKey: []byte("another key of thirty-two bytes!")}
	if _, err := tr.parsePageToken(&q, other.pageToken(&q, 42)); err == nil {
		t.Error("foreign token accepted")
	}
}

// FuzzPageToken: any string is refused or parsed to a positive sequence
// number that re-encodes to the same token.
func FuzzPageToken(f *testing.F) {
	tr := cursorTrail()
	q := Query{Subject: "85073003328"}
	for _, s := range []string{tr.pageToken(&q, 1), tr.pageToken(&q, 1<<62), "", "12", "AAAAAAAAAAA", "%%%", "AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := tr.parsePageToken(&q, s)
		if err != nil {
			return
		}
		if n <= 0 || tr.pageToken(&q, n) != s {
			t.Fatalf("token %q parsed to %d", s, n)
		}
	})
}
