package exchange

import "testing"

func TestCheckPath(t *testing.T) {
	for _, ok := range []string{"", "persons/85073003328", "a/b/c", "x-y_z.json", "a%20b"} {
		if msg := checkPath(ok); msg != "" {
			t.Errorf("checkPath(%q) = %q, want ok", ok, msg)
		}
	}
	for _, bad := range []string{"..", "a/../b", "./a", "a/%2e%2e/b", "a%2Fb", "a%2fb", "a%5cb", "a\\b", "a b", "a\r\nb", "a%00b", "a%zz", "a\x7fb"} {
		if msg := checkPath(bad); msg == "" {
			t.Errorf("checkPath(%q) accepted", bad)
		}
	}
}

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

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "application/problem+json": true,
		"text/plain": false, "": false, "application/jsonx": false, "text/json": false,
	} {
		if got := isJSON(ct); got != want {
			t.Errorf("isJSON(%q) = %v", ct, got)
		}
	}
}
