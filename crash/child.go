package crash

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/crossroads-hub/crossroads/demo"
)

// Child is the hub process of the harness ('crossroads crash --child'): it
// opens (or, the first time, creates) the demo network in dataDir —
// re-using its CA, passphrase and registers, re-applying the demo network
// file, which is idempotent — and serves on listen until ctx is done, then
// stops cleanly (in-flight exchanges finish, the audit trail is closed and
// its checkpoint published). It runs no scenario.
func Child(ctx context.Context, dataDir, listen string, people int, log *slog.Logger) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("crash child: listen on %s: %w", listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, errc, err := demo.Start(ctx, demo.Options{DataDir: dataDir, People: people, Logger: log}, ln)
	if err != nil {
		ln.Close()
		return fmt.Errorf("crash child: %w", err)
	}
	serr := <-errc // returns once ctx is done and in-flight requests finished
	r.Close()      // closes the audit trail: integrates and publishes
	if serr != nil {
		return fmt.Errorf("crash child: %w", serr)
	}
	return nil
}
