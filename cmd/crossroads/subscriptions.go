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
	"net/url"
	"os"
	"strconv"
	"strings"
)

func init() {
	register("subscriptions", "mutation push: list subscriptions, show a subscription's outbox, redeliver dead letters", nil).
		sub("list", "list the subscription table (through a running hub)", func(ctx context.Context, args []string) error {
			return runSubscriptions(ctx, "list", args)
		}).
		sub("entries", "show a subscription's outbox entries (e.g. --state dead)", func(ctx context.Context, args []string) error {
			return runSubscriptions(ctx, "entries", args)
		}).
		sub("redeliver", "redeliver a push subscription's dead letters (or --seq entries); audited", func(ctx context.Context, args []string) error {
			return runSubscriptions(ctx, "redeliver", args)
		})
}

func runSubscriptions(ctx context.Context, name string, args []string) error {
	fs := flag.NewFlagSet("subscriptions "+name, flag.ContinueOnError)
	hubURL := fs.String("hub", "", "the hub's URL (https://host:port)")
	cert := fs.String("cert", "", "operator certificate")
	key := fs.String("key", "", "its key")
	caFile := fs.String("ca", "", "network CA certificate")
	state := fs.String("state", "", "entries: only this state (pending, available, delivered, dead, dropped)")
	seqs := fs.String("seq", "", "redeliver: these entries (comma-separated sequence numbers) instead of every dead letter")
	fs.Usage = func() {
		line := map[string]string{
			"list":      "list",
			"entries":   "entries ID [--state S]",
			"redeliver": "redeliver ID [--seq N,N…]",
		}[name]
		fmt.Fprintf(fs.Output(), `usage: crossroads subscriptions %s --hub URL --cert C --key K --ca CA

Mutation push, through a running hub's API with an operator certificate. list shows
the subscription table, entries a subscription's outbox, and redeliver makes a push
subscription's dead letters (or the entries named, delivered or dead) pending again,
with a new dead-letter horizon; the hub records the act first.
`, line)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	want := 1
	if name == "list" {
		want = 0
	}
	if len(pos) != want {
		fs.Usage()
		return errUsage
	}
	if *hubURL == "" || *cert == "" || *key == "" || *caFile == "" {
		return errors.New("subscriptions: needs --hub, --cert, --key and --ca")
	}
	client, err := mtlsClient(*cert, *key, *caFile)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(*hubURL, "/")
	var method, u string
	var body []byte
	switch name {
	case "list":
		method, u = http.MethodGet, base+"/v1/subscriptions"
	case "entries":
		method, u = http.MethodGet, base+"/v1/admin/subscriptions/"+url.PathEscape(pos[0])+"/entries"
		if *state != "" {
			u += "?state=" + url.QueryEscape(*state)
		}
	case "redeliver":
		method, u = http.MethodPost, base+"/v1/admin/subscriptions/"+url.PathEscape(pos[0])+"/redeliver"
		var b struct {
			Seqs []int64 `json:"seqs,omitempty"`
		}
		if *seqs != "" {
			for _, s := range strings.Split(*seqs, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
				if err != nil || n < 1 {
					return fmt.Errorf("--seq %q: want sequence numbers", s)
				}
				b.Seqs = append(b.Seqs, n)
			}
		}
		body, _ = json.Marshal(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") == nil {
		b = pretty.Bytes()
	}
	_, err = os.Stdout.Write(b)
	return err
}
