package hub_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/hub"
)

// TestOIDCRootCAsRefused: a roots file that is missing or holds no
// certificate stops the hub from opening, rather than silently falling
// back to the system's roots. (The scenario's citizen step is the
// positive case: the hub trusts the demo identity provider through it.)
func TestOIDCRootCAsRefused(t *testing.T) {
	noPEM := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{noPEM, filepath.Join(t.TempDir(), "missing.pem")} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = demo.Start(context.Background(), demo.Options{DataDir: t.TempDir(), People: 5,
			Configure: func(c *hub.Config) { c.OIDCRootCAs = file }}, ln)
		ln.Close()
		if err == nil || !strings.Contains(err.Error(), "OpenID Connect roots") {
			t.Errorf("%s: %v", filepath.Base(file), err)
		}
	}
}
