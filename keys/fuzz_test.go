package keys_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/keys"
)

// FuzzKeyFile: whatever a provider key file holds, the FileProvider neither
// panics nor uses a key it did not seal itself.
func FuzzKeyFile(f *testing.F) {
	dir := f.TempDir()
	p, err := keys.OpenFileProvider(dir, pass)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	id, err := p.NewKey(ctx, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	valid, _ := os.ReadFile(filepath.Join(dir, id+".key"))
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add([]byte(`{"version":1,"id":"` + id + `","label":"x","root":"0","sealed":"AAAA"}`))
	f.Add([]byte("null"))
	target := "f000000000000000000000000"
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, target+".key"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		p.Keys(ctx) // reads and checks every key file
		if _, err := p.Seal(ctx, target, []byte("x"), nil); err == nil {
			t.Fatalf("a key file not sealed for id %s opened: %q", target, b)
		}
	})
}
