package spedemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/dp"
	"github.com/crossroads-hub/crossroads/spe"
)

// Step is one step of the secure-processing scenario and how it went.
type Step struct {
	Name   string
	OK     bool
	Detail string
}

// Run is `crossroads demo --profile spe`: two hubs on loopback (a, on
// opts.Listen, and its federation peer b), a data permit on both, two
// data holders uploading synthetic admissions over tus, the researcher's
// queries (one passing, one failing the threshold, one failing dominance,
// a differencing attempt refused, a differentially private release), a
// federated query across the two hubs, and the permit's expiry halting
// the workspace. With opts.ScenarioOnly it exits after the scenario,
// non-zero when a step misbehaved; otherwise hub a stays up until ctx ends.
func Run(ctx context.Context, opts demo.Options) error {
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8443"
	}
	if opts.DataDir == "" {
		d, err := os.MkdirTemp("", "crossroads-spe-demo-")
		if err != nil {
			return err
		}
		opts.DataDir = d
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Hub b, the peer, first: it issues hub a's peer certificate.
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	optsB := opts
	optsB.DataDir, optsB.Dir, optsB.Configure = filepath.Join(opts.DataDir, "hub-b"), "", nil
	rb, errB, err := demo.Start(ctx, optsB, lnB)
	if err != nil {
		lnB.Close()
		return fmt.Errorf("hub b: %w", err)
	}
	defer rb.Close()
	cert, err := PeerCert(ctx, rb)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another with --listen)", opts.Listen, err)
	}
	optsA := opts
	optsA.DataDir, optsA.Configure = filepath.Join(opts.DataDir, "hub-a"), PeerConfig(rb, cert)
	ra, errA, err := demo.Start(ctx, optsA, ln)
	if err != nil {
		ln.Close()
		return fmt.Errorf("hub a: %w", err)
	}
	defer ra.Close()
	fmt.Fprintf(out, "Crossroads secure-processing demo: hub a on %s, its peer hub b on %s\n\n", ra.Base, rb.Base)

	steps, wa := Scenario(ctx, ra, rb)
	ok := Print(out, steps)
	stop := func() error {
		cancel()
		return errors.Join(<-errA, <-errB)
	}
	if !ok {
		stop()
		return errors.New("the secure-processing scenario did not behave as expected")
	}
	fmt.Fprintln(out, "\nAll steps behaved as expected: permits, sealed workspaces, resumable uploads, checked outputs, a federated query and an expiry halt, every act in the audit trail.")
	if opts.ScenarioOnly {
		return stop()
	}
	fmt.Fprintf(out, `
Hub a stays up until Ctrl-C. The permit's members' certificates are in %[1]s. Try:

  curl --cacert %[1]s/ca.crt --cert %[1]s/researcher.crt --key %[1]s/researcher.key %[2]s/v1/spe/permits
`, wa.Dir, ra.Base)
	<-ctx.Done()
	return stop()
}

// Print writes the steps; it reports whether all behaved.
func Print(w io.Writer, steps []Step) bool {
	ok := true
	for _, s := range steps {
		mark := "ok  "
		if !s.OK {
			mark, ok = "FAIL", false
		}
		fmt.Fprintf(w, "%s %-58s %s\n", mark, s.Name, s.Detail)
	}
	return ok
}

// Scenario runs the steps on hub a (with peer b) and returns them with
// hub a's permit world.
func Scenario(ctx context.Context, ra, rb *demo.Running) ([]Step, *World) {
	var steps []Step
	add := func(name string, ok bool, format string, args ...any) bool {
		steps = append(steps, Step{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
		return ok
	}
	wa, wb, err := Federate(ctx, ra, rb)
	if !add("data permit granted on both hubs", err == nil, "%v", errOr(err, "permit-cardio: 2 datasets, 6 members, ε=1")) {
		return steps, wa
	}
	upload := func(w *World, as, dataset string, data []byte, where string) {
		_, st, err := w.Upload(ctx, as, dataset, data)
		add(fmt.Sprintf("%s uploads %s to %s (tus)", as, dataset, where), err == nil && st == http.StatusNoContent, "HTTP %d, %d bytes %v", st, len(data), errOr(err, ""))
	}
	upload(wa, HolderA, DatasetA, Admissions(1, 300, true, true), "hub a")
	upload(wa, HolderB, DatasetB, Admissions(2, 240, false, false), "hub a")
	upload(wb, HolderB, DatasetB, Admissions(3, 180, false, false), "hub b")
	_, st, _ := wa.Upload(ctx, Researcher, DatasetA, Admissions(4, 10, false, false))
	add("a researcher may not upload", st == http.StatusForbidden, "HTTP %d", st)

	notIsland := map[string]any{"column": "region", "op": "ne", "value": "Island"}
	query := func(name string, req spe.QueryRequest, want string, check func(*spe.ReleaseView) bool) *spe.ReleaseView {
		st, reason, v, err := wa.Query(ctx, req)
		ok := err == nil && st == http.StatusOK && v.Status == want && (check == nil || check(v))
		add(name, ok, "HTTP %d %s status=%s %s", st, reason, v.Status, summary(v))
		return v
	}
	query("count by region: the island's 3 rows fail the threshold", spe.QueryRequest{Query: Q(DatasetA, []string{"region"}, "count", "")},
		spe.ReleaseFail, func(v *spe.ReleaseView) bool {
			return len(v.Cells) == 1 && slices.Contains(v.Cells[0].Fails, "threshold")
		})
	query("count by region, island left out: passes", spe.QueryRequest{Query: Q(DatasetA, []string{"region"}, "count", "", notIsland)},
		spe.ReleasePass, func(v *spe.ReleaseView) bool { return v.Result != nil && len(v.Result.Cells) == 3 })
	query("cost by region: one stay dominates the West", spe.QueryRequest{Query: Q(DatasetA, []string{"region"}, "sum", "cost", notIsland)},
		spe.ReleaseFail, func(v *spe.ReleaseView) bool {
			return len(v.Cells) == 1 && slices.Contains(v.Cells[0].Fails, "dominance")
		})
	query("count by sex, island left out: passes", spe.QueryRequest{Query: Q(DatasetA, []string{"sex"}, "count", "", notIsland)}, spe.ReleasePass, nil)
	query("count by sex of all: differencing refused", spe.QueryRequest{Query: Q(DatasetA, []string{"sex"}, "count", "")},
		spe.ReleaseRefused, func(v *spe.ReleaseView) bool { return len(v.Differencing) > 0 && v.Result == nil })
	query("noisy count by region (Laplace, ε=0.5)", spe.QueryRequest{Query: Q(DatasetB, []string{"region"}, "count", ""), Noise: &dp.Params{Mechanism: dp.Laplace, Epsilon: 0.5}},
		spe.ReleasePass, func(v *spe.ReleaseView) bool { return v.Noisy != nil })
	st, reason, _, _ := wa.Query(ctx, spe.QueryRequest{Query: Q(DatasetB, []string{"region"}, "count", ""), Noise: &dp.Params{Mechanism: dp.Laplace, Epsilon: 0.7}})
	add("noisy count beyond the budget: refused", st == http.StatusForbidden && reason == string(crossroads.ReasonBudgetExhausted), "HTTP %d %s", st, reason)
	query("federated count by region (hub a + hub b)", spe.QueryRequest{Query: Q(DatasetB, []string{"region"}, "count", ""), Federated: true},
		spe.ReleasePass, func(v *spe.ReleaseView) bool {
			var n int64
			for _, c := range v.Result.Cells {
				n += c.N
			}
			return n == 240+180
		})

	// The permit expires: the workspace terminates at once.
	p := wa.Permit
	p.ValidTo = time.Now().Add(-time.Second)
	if p.ValidFrom.After(p.ValidTo) {
		p.ValidFrom = p.ValidTo.Add(-time.Hour)
	}
	err = wa.SetPermit(ctx, p)
	st, reason, _ = wa.Call(ctx, Researcher, http.MethodGet, "", nil, nil)
	add("the permit expires: the researcher is refused", err == nil && st == http.StatusForbidden && reason == string(crossroads.ReasonPermitNotActive), "HTTP %d %s", st, errOr(err, reason))
	_, st, _ = wa.Upload(ctx, HolderA, DatasetA, Admissions(5, 20, false, false))
	add("… and so is a data holder's upload", st == http.StatusForbidden, "HTTP %d", st)
	var ws spe.WorkspaceView
	st, _, _ = wa.Call(ctx, demo.Operator, http.MethodGet, "", nil, &ws)
	add("the operator sees the workspace terminated", st == http.StatusOK && ws.State == spe.StateTerminated, "state=%s (%s)", ws.State, ws.Reason)
	return steps, wa
}

func summary(v *spe.ReleaseView) string {
	switch {
	case v == nil:
		return ""
	case v.Noisy != nil:
		return fmt.Sprintf("(%d noisy cells)", len(v.Noisy.Cells))
	case v.Result != nil:
		return fmt.Sprintf("(%d cells released)", len(v.Result.Cells))
	case len(v.Cells) > 0:
		return fmt.Sprintf("(suppress %v: %v)", v.Cells[0].Index, v.Cells[0].Fails)
	case len(v.Differencing) > 0:
		return "(" + v.Differencing[0].Detail + ")"
	case v.Detail != "":
		return "(" + v.Detail + ")"
	}
	return ""
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}
