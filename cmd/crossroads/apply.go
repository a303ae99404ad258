package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/crossroads-hub/crossroads/apply"
	"github.com/crossroads-hub/crossroads/personid"
	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/storage"
)

func init() {
	register("apply", "apply a network file to the registers (all or nothing)", runApply)
}

func runApply(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	file := fs.String("f", "", "network file (YAML); - for standard input (required)")
	dry := fs.Bool("dry-run", false, "validate and print the changes without writing")
	sf := addStoreFlags(fs)
	hubURL := fs.String("hub", "", "apply through a running hub's admin API instead (https://host:port)")
	cert := fs.String("cert", "", "operator certificate, with --hub")
	key := fs.String("key", "", "operator key, with --hub")
	caFile := fs.String("ca", "", "network CA certificate, with --hub")
	scheme := fs.String("person-scheme", "insz", "person identifier scheme")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads apply -f network.yaml [--dry-run] [--dir DATA [--database-url URL] | --hub URL --cert C --key K --ca CA]\n\nThe file is validated completely before anything is written; then every change is\nwritten in one transaction. Entries absent from the file are left as they are.\nOffline (--dir, --database-url: the stores 'crossroads serve' uses) works on a stopped or\nrunning hub (a running hub rereads the registers within a second); --hub applies through\nthe hub's admin API with an operator certificate.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *file == "" {
		fs.Usage()
		return errUsage
	}
	var in io.Reader = os.Stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	if *hubURL != "" {
		return applyRemote(ctx, in, *hubURL, *cert, *key, *caFile, *dry)
	}
	desired, err := apply.Parse(in)
	if err != nil {
		return err
	}
	s, err := personid.Lookup(*scheme)
	if err != nil {
		return err
	}
	st, err := sf.open(ctx, false, storage.HasCA(*sf.dir))
	if err != nil {
		return err
	}
	defer st.Close()
	plan, err := apply.Apply(ctx, st.Registers, desired, s, *dry)
	if err != nil {
		return err
	}
	printPlan(plan.String(), *dry, plan.HasChanges())
	return nil
}

func printPlan(diff string, dry, changed bool) {
	switch {
	case !changed:
		fmt.Println("no changes: the registers already say what the file says")
	case dry:
		fmt.Print(diff)
		fmt.Println("dry run: nothing written")
	default:
		fmt.Print(diff)
		fmt.Println("applied")
	}
}

func applyRemote(ctx context.Context, in io.Reader, base, certFile, keyFile, caFile string, dry bool) error {
	tlsCfg, err := pki.LoadClientTLS(certFile, keyFile, caFile)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(in, 8<<20))
	if err != nil {
		return err
	}
	url := base + "/v1/admin/apply"
	if dry {
		url += "?dry-run=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/yaml")
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status + ": " + string(b))
	}
	var out struct {
		Changed bool
		Diff    string
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("hub answer: %w", err)
	}
	printPlan(out.Diff, dry, out.Changed)
	return nil
}
