package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// FuzzParseMutation: any input is either refused with ErrInvalid or parsed
// into a mutation whose payload is a compact JSON object and whose key and
// subject obey their rules; parsing never panics.
func FuzzParseMutation(f *testing.F) {
	for _, s := range []string{
		`{"subject":"85073003328","effectiveDate":"2026-01-01","idempotencyKey":"k1","payload":{"a":1}}`,
		`{"type":"address-changed","subjectKind":"person","subject":"85073003328","effectiveDate":"2026-01-01T10:00:00+01:00","idempotencyKey":"a:b.c_d-e","payload":{ "x" : [1, {"y":null}] }}`,
		`{"subject":"x","effectiveDate":"2026-13-01","idempotencyKey":"k","payload":{}}`,
		`{"subject":"x","effectiveDate":"2026-01-01","idempotencyKey":"k","payload":{}} {}`,
		`{"subject":"x","effectiveDate":"2026-01-01","idempotencyKey":"k","payload":{},"payload":{}}`,
		`[]`, `null`, ``, `{"payload":` + string(bytes.Repeat([]byte("["), 100)),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMutation(b)
		if err != nil {
			if !errors.Is(err, crossroads.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if !keyPattern.MatchString(m.Key) || m.Subject == "" || len(m.Subject) > 64 {
			t.Fatalf("accepted %q: key %q subject %q", b, m.Key, m.Subject)
		}
		if len(m.Payload) == 0 || m.Payload[0] != '{' || !json.Valid(m.Payload) {
			t.Fatalf("payload %q", m.Payload)
		}
		var c bytes.Buffer
		json.Compact(&c, m.Payload)
		if !bytes.Equal(c.Bytes(), m.Payload) {
			t.Fatalf("payload not compact: %q", m.Payload)
		}
		if m.Effective.IsZero() || m.Effective.Location() != time.UTC {
			t.Fatalf("effective %v", m.Effective)
		}
	})
}

func TestParseMutation(t *testing.T) {
	m, err := ParseMutation([]byte(`{"subject":"85073003328","effectiveDate":"2026-02-03","idempotencyKey":"k1","payload":{ "a" : 1 }}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Key != "k1" || string(m.Payload) != `{"a":1}` || !m.Effective.Equal(time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", m)
	}
	for _, bad := range []string{
		`{"subject":"x","effectiveDate":"2026-01-01","idempotencyKey":"has space","payload":{}}`,
		`{"subject":"","effectiveDate":"2026-01-01","idempotencyKey":"k","payload":{}}`,
		`{"subject":"x","effectiveDate":"2026-01-01","idempotencyKey":"k","payload":"s"}`,
		`{"subject":"x","effectiveDate":"2026-01-01","idempotencyKey":"k"}`,
		`{"subject":"x","effectiveDate":"2026-01-01","idempotencyKey":"k","payload":{},"payload":{}}`,
	} {
		if _, err := ParseMutation([]byte(bad)); !errors.Is(err, crossroads.ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := New(Config{MinBackoff: time.Second, MaxBackoff: 8 * time.Second})
	for n, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		for range 50 {
			d := p.backoff(n)
			if d < base/2 || d >= base*3/2 {
				t.Fatalf("attempt %d: %v outside [%v, %v)", n, d, base/2, base*3/2)
			}
		}
	}
}
