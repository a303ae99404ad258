package console

import (
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCatalogue: every message key the templates and the code use exists,
// in English, Dutch and French, and every purpose too.
func TestCatalogue(t *testing.T) {
	keys := map[string]bool{}
	files, _ := os.ReadDir("templates")
	re := regexp.MustCompile(`\{\{t "([^"]+)"`)
	for _, f := range files {
		b, _ := os.ReadFile("templates/" + f.Name())
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = true
		}
	}
	goFiles, _ := os.ReadDir(".")
	code := regexp.MustCompile(`"((?:err|notice|dpia|breach|security)\.[a-z0-9]+)"`)
	for _, f := range goFiles {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f.Name())
		for _, m := range code.FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = true
		}
	}
	for _, p := range pageNames {
		keys["title."+p] = true
	}
	for _, k := range []string{"outcome.allowed", "outcome.denied", "outcome.failed", "file.register", "file.end", "file.correct",
		"status.suspended", "status.revoked", "verify.ok", "verify.bad", "verify.nosig"} {
		keys[k] = true
	}
	for k := range keys {
		v, ok := catalogue[k]
		if !ok {
			t.Errorf("message %q is not in the catalogue", k)
			continue
		}
		for i, s := range v {
			if s == "" {
				t.Errorf("message %q has no text in %s", k, languages[i])
			}
		}
	}
	for code, p := range purposes {
		for _, l := range languages {
			if p[l] == "" {
				t.Errorf("purpose %q has no words in %s", code, l)
			}
		}
	}
	if got := purposeName("fr", "unknown-purpose-code"); got != "Unknown purpose code" {
		t.Errorf("unknown purpose: %q", got)
	}
}

func TestQuantile(t *testing.T) {
	bs := []bucket{{0.001, 10}, {0.01, 90}, {0.1, 100}, {math.Inf(1), 100}}
	if q := quantile(bs, 0.5); q <= 0.001 || q >= 0.01 {
		t.Errorf("p50 %v", q)
	}
	if q := quantile(bs, 0.99); q <= 0.01 || q > 0.1 {
		t.Errorf("p99 %v", q)
	}
	if q := quantile([]bucket{{0.1, 0}, {math.Inf(1), 5}}, 0.5); q != 0.1 {
		t.Errorf("beyond the last bucket: %v", q)
	}
}

func TestBreachTimeline(t *testing.T) {
	known := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	ms := breachTimeline(known, known.Add(48*time.Hour))
	if len(ms) != 3 || !ms[0].Passed || ms[1].Passed || ms[1].Due != known.Add(72*time.Hour) || ms[2].Due != known.AddDate(0, 1, 0) {
		t.Fatalf("%+v", ms)
	}
}

func TestCellsNeutraliseFormulas(t *testing.T) {
	got := cells("=cmd|' /C calc'!A0", "+1", "-2", "@x", "plain", "")
	want := []string{"'=cmd|' /C calc'!A0", "'+1", "'-2", "'@x", "plain", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d: %q", i, got[i])
		}
	}
}

func TestSessions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessions(time.Minute, time.Hour, func() time.Time { return now })
	a := s.create(session{role: RoleCitizen})
	b := s.create(session{role: RoleCitizen})
	if a.id == b.id || a.csrf == b.csrf || len(a.id) < 43 {
		t.Fatal("ids not unique or too short")
	}
	if !validCSRF(a, a.csrf) || validCSRF(a, b.csrf) || validCSRF(a, "") {
		t.Fatal("token check")
	}
	now = now.Add(59 * time.Second)
	if s.get(a.id) == nil {
		t.Fatal("expired before the idle timeout")
	}
	now = now.Add(61 * time.Second)
	if s.get(a.id) != nil || s.get(b.id) != nil {
		t.Fatal("idle session still alive")
	}
	f := s.startFlow(&flow{state: "x"})
	if s.takeFlow(f) == nil || s.takeFlow(f) != nil {
		t.Fatal("a login flow is good exactly once")
	}
}

func FuzzParseLocal(f *testing.F) {
	for _, s := range []string{"2026-01-10T08:00", "2026-01-10T08:00:00", "2026-01-10T08:00:00Z", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tm, err := parseLocal(s); err == nil && tm.Location() != time.UTC {
			t.Fatal("not UTC")
		}
	})
}
