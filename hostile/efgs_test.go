package hostile_test

import (
	"context"
	"net"
	"testing"

	"github.com/crossroads-hub/crossroads/demo"
	demoefgs "github.com/crossroads-hub/crossroads/demo/efgs"
	"github.com/crossroads-hub/crossroads/hostile"
)

// The federation gateway holds against malformed protobuf, wrong
// signatures, another country's certificate and keys, oversized batches
// and replayed tags.
func TestEFGS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, errc, err := demoefgs.Start(ctx, demo.Options{DataDir: t.TempDir(), Dir: t.TempDir(), People: 5}, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		<-errc
		g.Close()
	}()
	de, fr := g.Members["DE"], g.Members["FR"]
	rep, err := hostile.RunEFGS(ctx, hostile.Target{Base: g.Running.Base, Roots: g.Running.Hub.CA.Pool(), Client: g.Running.Certs[demo.OCMW],
		EFGS: &hostile.EFGSTarget{Member: de.TLS, Country: "DE", Signing: de.Signing, SigningKey: de.SigningKey,
			Other: fr.Signing, OtherKey: fr.SigningKey, OtherOrigin: "FR"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Table())
	if !rep.OK {
		t.Fatalf("failed:\n%s", rep.Table())
	}
}
