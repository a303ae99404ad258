package hub_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
)

// TestProviderRevocationClosesConnections: revoking a provider's
// certificate through the admin API closes the hub's kept-alive
// connections to it, and its services then answer 502
// provider-unreachable, audited, without reaching it.
func TestProviderRevocationClosesConnections(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	p := r.People[0]
	call := func() (int, string) {
		resp, b, err := r.Clients.Exchange(ctx, demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ)
		if err != nil {
			t.Fatal(err)
		}
		var pd struct{ Reason string }
		json.Unmarshal(b, &pd)
		if resp.StatusCode >= 400 && resp.Header.Get("Crossroads-Receipt") == "" {
			t.Errorf("status %d not audited", resp.StatusCode)
		}
		return resp.StatusCode, pd.Reason
	}
	if st, reason := call(); st != 200 {
		t.Fatalf("before: %d %s", st, reason)
	}
	if r.Hub.Upstream.Len() == 0 {
		t.Fatal("no kept-alive connection to the provider")
	}
	if err := r.Revoke(ctx, demo.PopulationRegister); err != nil {
		t.Fatal(err)
	}
	// The employment register's connection, if any, stays; the population
	// register's goes at once (admin revoke), or within a poll.
	deadline := time.Now().Add(2 * time.Second)
	for r.Hub.Upstream.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.Hub.Upstream.Len(); n != 0 {
		t.Fatalf("%d provider connections still open after revocation", n)
	}
	if st, reason := call(); st != 502 || reason != "provider-unreachable" {
		t.Fatalf("after: %d %s, want 502 provider-unreachable", st, reason)
	}
}
