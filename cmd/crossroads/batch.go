package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/batch"
)

func init() {
	register("batch", "batch consultation: submit many exchanges at once, follow them, fetch the results", nil).
		sub("submit", "submit a batch (NDJSON items from a file or standard input)", runBatchSubmit).
		sub("status", "show a batch's progress (--wait: until it is done)", runBatchStatus).
		sub("fetch", "write a batch's results as NDJSON", runBatchFetch)
}

// addBatchServeFlags adds the batch service's bounds to 'serve'.
func addBatchServeFlags(fs *flag.FlagSet) func() batch.Options {
	maxItems := fs.Int("batch-max-items", batch.DefaultMaxItems, "items allowed in one batch consultation")
	retention := fs.Duration("batch-retention", batch.DefaultRetention, "how long a batch's results are kept once it is done")
	workers := fs.Int("batch-workers", batch.DefaultWorkers, "batch items in flight on this node")
	perParticipant := fs.Int("batch-per-participant", batch.DefaultPerParticipant, "batch items in flight on this node for one submitting participant")
	perProvider := fs.Int("batch-per-provider", batch.DefaultPerProvider, "batch items in flight on this node towards one provider")
	return func() batch.Options {
		return batch.Options{MaxItems: *maxItems, Retention: *retention, Workers: *workers, PerParticipant: *perParticipant, PerProvider: *perProvider}
	}
}

// batchFlags are the connection flags every batch subcommand takes.
type batchFlags struct {
	hub, cert, key, ca, user *string
}

func addBatchFlags(fs *flag.FlagSet) batchFlags {
	return batchFlags{
		hub:  fs.String("hub", "", "the hub (https://host:port)"),
		cert: fs.String("cert", "", "the participant's certificate (PEM)"),
		key:  fs.String("key", "", "its key (PEM)"),
		ca:   fs.String("ca", "", "the network CA certificate (PEM)"),
		user: fs.String("user", "", "Crossroads-User: who, at the participant, acts"),
	}
}

func (f batchFlags) client() (*http.Client, string, error) {
	if *f.hub == "" || *f.cert == "" || *f.key == "" || *f.ca == "" {
		return nil, "", errors.New("--hub, --cert, --key and --ca are required")
	}
	cl, err := mtlsClient(*f.cert, *f.key, *f.ca)
	if err != nil {
		return nil, "", err
	}
	cl.Timeout = 0 // results may take long to stream; requests carry their own context
	return cl, strings.TrimSuffix(*f.hub, "/"), nil
}

func (f batchFlags) do(ctx context.Context, cl *http.Client, method, u, ctype string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if *f.user != "" {
		req.Header.Set("Crossroads-User", *f.user)
	}
	return cl.Do(req)
}

// hubError renders a problem answer.
func hubError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var p struct {
		Reason, Detail string
		Problems       []struct{ Path, Message string }
	}
	if json.Unmarshal(b, &p) == nil && p.Reason != "" {
		msg := fmt.Sprintf("%s: %s: %s", resp.Status, p.Reason, p.Detail)
		for _, it := range p.Problems {
			msg += fmt.Sprintf("\n  %s: %s", it.Path, it.Message)
		}
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}

func runBatchSubmit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("batch submit", flag.ContinueOnError)
	bf := addBatchFlags(fs)
	file := fs.String("f", "-", "the NDJSON file of items ('-': standard input)")
	wait := fs.Bool("wait", false, "follow the batch until it is done (a progress bar on a terminal)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: crossroads batch submit [-f ITEMS.ndjson] [--wait] --hub URL --cert C --key K --ca CA [--user U]

Submits a batch consultation: one item per line, each an exchange to run as the
certificate's participant (see docs/batch.md):

  {"operation":"person-identity/read","parameters":{"subject":"85073100123"},"purpose":"social-aid","user":"jan"}
  {"service":"person-identity","method":"GET","path":"/persons/85073100123","purpose":"social-aid","user":"jan"}

Prints the batch id. A batch with an invalid line is refused whole, naming the lines.
`)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return errUsage
	}
	cl, base, err := bf.client()
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	resp, err := bf.do(ctx, cl, http.MethodPost, base+"/v1/batches", batch.ContentType, in)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("submit: %w", hubError(resp))
	}
	var p batch.Progress
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	fmt.Println(p.ID)
	if !*wait {
		fmt.Fprintf(os.Stderr, "batch %s accepted: %d items\n", p.ID, p.Total)
		return nil
	}
	_, err = follow(ctx, bf, cl, base, p.ID, os.Stderr)
	return err
}

func runBatchStatus(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("batch status", flag.ContinueOnError)
	bf := addBatchFlags(fs)
	wait := fs.Bool("wait", false, "follow the batch until it is done (a progress bar on a terminal)")
	output := fs.String("o", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: crossroads batch status ID [--wait] [-o text|json] --hub URL --cert C --key K --ca CA

Shows a batch's progress: items total, done, allowed, denied, failed, and its state.
`)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (*output != "text" && *output != "json") {
		fs.Usage()
		return errUsage
	}
	cl, base, err := bf.client()
	if err != nil {
		return err
	}
	var p batch.Progress
	if *wait {
		p, err = follow(ctx, bf, cl, base, pos[0], os.Stderr)
	} else {
		p, err = progressOf(ctx, bf, cl, base, pos[0])
	}
	if err != nil {
		return err
	}
	if *output == "json" {
		b, _ := json.MarshalIndent(p, "", "  ")
		fmt.Println(string(b))
		return nil
	}
	fmt.Printf("batch %s: %s, %d of %d done: %d allowed, %d denied, %d failed\n", p.ID, p.State, p.Done, p.Total, p.Allowed, p.Denied, p.Failed)
	if !p.Expires.IsZero() {
		fmt.Printf("results kept until %s\n", p.Expires.Format(time.RFC3339))
	}
	return nil
}

func runBatchFetch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("batch fetch", flag.ContinueOnError)
	bf := addBatchFlags(fs)
	out := fs.String("o", "-", "where to write the NDJSON results ('-': standard output)")
	after := fs.Int("after", 0, "only the results after this item")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: crossroads batch fetch ID [-o RESULTS.ndjson] [--after N] --hub URL --cert C --key K --ca CA

Writes a batch's results so far, one NDJSON line per item in item order, each with
its outcome, status, reason, exchange id, the hub's seal and the audit receipt, and
the released body (body, or bodyBase64 when it is not compact JSON).
`)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *after < 0 {
		fs.Usage()
		return errUsage
	}
	cl, base, err := bf.client()
	if err != nil {
		return err
	}
	u := base + "/v1/batches/" + url.PathEscape(pos[0]) + "/results"
	if *after > 0 {
		u += fmt.Sprintf("?after=%d", *after)
	}
	resp, err := bf.do(ctx, cl, http.MethodGet, u, "", nil)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch: %w", hubError(resp))
	}
	w := io.Writer(os.Stdout)
	if *out != "-" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) // personal data: the owner only
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if st := resp.Header.Get("Crossroads-Batch-State"); st != crossroads.BatchDone {
		fmt.Fprintf(os.Stderr, "batch %s is %s: these are the results so far\n", pos[0], st)
	}
	return nil
}

func progressOf(ctx context.Context, bf batchFlags, cl *http.Client, base, id string) (batch.Progress, error) {
	var p batch.Progress
	resp, err := bf.do(ctx, cl, http.MethodGet, base+"/v1/batches/"+url.PathEscape(id), "", nil)
	if err != nil {
		return p, fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("status: %w", hubError(resp))
	}
	err = json.NewDecoder(resp.Body).Decode(&p)
	return p, err
}

// follow polls a batch until it is done, drawing a progress bar on a
// terminal, or a line per change otherwise.
func follow(ctx context.Context, bf batchFlags, cl *http.Client, base, id string, w *os.File) (batch.Progress, error) {
	tty := isTerminal(w)
	last := -1
	for {
		p, err := progressOf(ctx, bf, cl, base, id)
		if err != nil {
			return p, err
		}
		if p.Done != last {
			last = p.Done
			if tty {
				fmt.Fprintf(w, "\r%s", progressBar(p, 30))
			} else {
				fmt.Fprintf(w, "batch %s: %d/%d done (%d allowed, %d denied, %d failed)\n", p.ID, p.Done, p.Total, p.Allowed, p.Denied, p.Failed)
			}
		}
		if p.State == crossroads.BatchDone {
			if tty {
				fmt.Fprintln(w)
			}
			return p, nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return p, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// progressBar renders [#####-----] done/total with the outcomes.
func progressBar(p batch.Progress, width int) string {
	filled := 0
	if p.Total > 0 {
		filled = p.Done * width / p.Total
	}
	return fmt.Sprintf("[%s%s] %d/%d  allowed %d  denied %d  failed %d", strings.Repeat("#", filled), strings.Repeat("-", width-filled),
		p.Done, p.Total, p.Allowed, p.Denied, p.Failed)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
