package exchange

import (
	"strings"
	"testing"
	"time"
)

func TestValidIDAndText(t *testing.T) {
	for _, ok := range []string{"a", "social-aid", "svc.v2", "a_b", "0abc"} {
		if !validID(ok) {
			t.Errorf("validID(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "-a", "A", "a b", "a/b", "é", string(make([]byte, 64))} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
	if !validText("alice@ocmw-gent (case 12)", 128) || validText("a\nb", 128) || validText("", 128) || validText("abc", 2) {
		t.Error("validText")
	}
}

func TestIsJSONMedia(t *testing.T) {
	for mt, want := range map[string]bool{
		"application/json": true, "application/problem+json": true, "application/vnd.x+json": true,
		"text/plain": false, "": false, "application/jsonx": false, "text/json": false,
	} {
		if got := isJSONMedia(mt); got != want {
			t.Errorf("isJSONMedia(%q) = %v", mt, got)
		}
	}
}

func TestProviderStatus(t *testing.T) {
	for code, want := range map[int]string{
		200: "", 201: "", 204: "", 404: "not-found-at-provider", 409: "provider-conflict", 422: "provider-unprocessable",
		100: "provider-error", 202: "provider-error", 301: "provider-error", 304: "provider-error", 400: "provider-error",
		401: "provider-error", 418: "provider-error", 500: "provider-error", 503: "provider-error",
	} {
		r := providerStatus(code)
		got := ""
		if r != nil {
			got = string(r.reason)
		}
		if got != want {
			t.Errorf("status %d: %q, want %q", code, got, want)
		}
	}
}

func TestValidCharset(t *testing.T) {
	for cs, want := range map[string]bool{"utf-8": true, "ISO-8859-1": true, "": false, "a b": false, "x;y": false, strings.Repeat("a", 33): false} {
		if validCharset(cs) != want {
			t.Errorf("validCharset(%q) != %v", cs, want)
		}
	}
}

func TestAbuseWindows(t *testing.T) {
	w := newAbuseWindows(60e9, 2)
	t0 := timeAt(0)
	for i := 0; i < 5; i++ {
		w.note("a", "participant-suspended", t0)
	}
	w.note("b", "unknown-participant", t0)
	w.note("c", "unknown-participant", t0) // beyond the bound: summarised under "*"
	w.note("d", "unknown-participant", t0)
	if got := w.due(timeAt(59), false); len(got) != 0 {
		t.Fatalf("windows closed early: %v", got)
	}
	got := w.due(timeAt(60), false)
	counts := map[string]int64{}
	for _, s := range got {
		counts[s.key.actor] = s.n
	}
	if counts["a"] != 5 || counts["b"] != 1 || counts["*"] != 2 || len(counts) != 3 {
		t.Fatalf("summaries %v", counts)
	}
	if len(w.open) != 0 {
		t.Fatal("closed windows kept")
	}
	w.note("a", "participant-suspended", timeAt(61))
	if got := w.due(timeAt(62), true); len(got) != 1 || got[0].n != 1 {
		t.Fatalf("flush all: %v", got)
	}
}

func timeAt(sec int) time.Time { return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC) }
