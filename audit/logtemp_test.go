package audit

import "testing"

func TestIsLogTemp(t *testing.T) {
	for _, c := range []struct {
		dir, name string
		temp      bool
	}{
		{"log", "checkpoint", false},
		{"log", "checkpoint1234567", true},
		{"log/.state", "treeState", false},
		{"log/.state", "treeState99", true},
		{"log/.state", "gcState42", true},
		{"log/.state", "version7", true},
		{"log/.state", "treeState.lock", false},
		{"log/tile/0/x001", "067", false},
		{"log/tile/0/x001", "0671804289383", true},
		{"log/tile/0", "x001", false},
		{"log/tile/0/067.p", "5", false},
		{"log/tile/0/067.p", "255", false},
		{"log/tile/0/067.p", "256", true},
		{"log/tile/0/067.p", "51804289383", true},
		{"log/tile/0/067.p", "05", true},
		{"log/entries/x001", "067", false},
		{"log/entries", "0001681692777", true},
		{"log", "README", false},
	} {
		if got := isLogTemp(c.dir, c.name); got != c.temp {
			t.Errorf("isLogTemp(%q, %q) = %v, want %v", c.dir, c.name, got, c.temp)
		}
	}
}
