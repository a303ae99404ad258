package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	demoefgs "github.com/crossroads-hub/crossroads/demo/efgs"
	"github.com/crossroads-hub/crossroads/efgs"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
)

func init() {
	register("efgs", "the federation gateway (EFGS profile): its members' certificates", nil).
		sub("members", "list, register (-f members.yaml), revoke or off-board federation members' certificates", runEFGSMembers).
		sub("load", "load-test an in-process federation gateway: 27 member states uploading and downloading batches of 5,000 keys", runEFGSLoad)
}

func runEFGSLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("efgs load", flag.ContinueOnError)
	members := fs.Int("members", 27, "member states (at most 27)")
	batches := fs.Int("batches", 2, "batches each member uploads")
	keys := fs.Int("keys", efgs.DefaultMaxBatchKeys, "keys per batch")
	conc := fs.Int("concurrency", 8, "requests in flight")
	data := fs.String("data", "", "hub data directory (default: a new temporary directory, removed after)")
	dbURL := fs.String("database-url", "", "run the hub on this PostgreSQL database instead of SQLite")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads efgs load [--members 27] [--batches 2] [--keys 5000] [--concurrency 8]\n\nStarts the federation gateway in process on 127.0.0.1 with the member states on-boarded,\nuploads every member's signed batches over mTLS, then has every member download every\nbatch of the day; prints keys/s in, batches/s out and latency quantiles.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *members < 1 || *members > len(demoefgs.EU27) {
		fs.Usage()
		return errUsage
	}
	dir := *data
	if dir == "" {
		d, err := os.MkdirTemp("", "crossroads-efgs-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, errc, err := demoefgs.StartWith(ctx, demo.Options{DataDir: filepath.Join(dir, "hub"), Dir: filepath.Join(dir, "out"), People: 5, DatabaseURL: *dbURL}, ln, demoefgs.EU27[:*members])
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		cancel()
		<-errc
		g.Close()
	}()
	rep, err := g.Load(ctx, demoefgs.LoadOptions{BatchesPerMember: *batches, KeysPerBatch: *keys, Concurrency: *conc})
	if err != nil {
		return err
	}
	fmt.Print(rep)
	return nil
}

const efgsMembersUsage = `usage: crossroads efgs members list|apply|revoke|offboard [ARG] --hub URL --cert C --key K --ca CA [--prefix /efgs]

  list                      the registered certificates (country, type, thumbprint, revoked)
  apply -f members.yaml     register every certificate of the file, all or nothing
  revoke THUMBPRINT         revoke one certificate (refused from the next request on)
  offboard COUNTRY          revoke every certificate of a country

A member is on-boarded by its participant in network.yaml (kind national-backend, its
country; 'crossroads apply') and its certificates here. Off-board it by suspending the
participant, or with 'offboard'; either refuses it at once. Everything goes through the
hub's admin API with an operator certificate, and is recorded in the audit trail.
The members file:

  federation:
    members:
      - country: DE
        certificates:
          - {type: AUTHENTICATION, file: de/authentication.crt, signature: <trust anchor's, base64>}
          - {type: SIGNING, file: de/signing.crt, signature: ...}
          - {type: CALLBACK, file: de/callback.crt, host: callback.de.example, signature: ...}
`

func runEFGSMembers(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("efgs members", flag.ContinueOnError)
	file := fs.String("f", "", "members file (YAML), with apply")
	hubURL := fs.String("hub", "", "the hub's base URL (https://host:port) (required)")
	cert := fs.String("cert", "", "operator certificate")
	key := fs.String("key", "", "operator key")
	caFile := fs.String("ca", "", "network CA certificate")
	prefix := fs.String("prefix", hub.DefaultEFGSPrefix, "the gateway's prefix on the hub")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), efgsMembersUsage)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || *hubURL == "" {
		fs.Usage()
		return errUsage
	}
	tlsCfg, err := pki.LoadClientTLS(*cert, *key, *caFile)
	if err != nil {
		return err
	}
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	base := strings.TrimSuffix(*hubURL, "/") + *prefix
	switch pos[0] {
	case "list":
		b, err := efgsCall(ctx, cl, http.MethodGet, base+"/admin/certificates", nil, http.StatusOK)
		if err != nil {
			return err
		}
		var certs []crossroads.EFGSCertificate
		if err := json.Unmarshal(b, &certs); err != nil {
			return fmt.Errorf("hub answer: %w", err)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "COUNTRY\tTYPE\tTHUMBPRINT\tHOST\tREVOKED")
		for _, c := range certs {
			rev := "-"
			if !c.RevokedAt.IsZero() {
				rev = c.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Country, c.Type, c.Thumbprint, dashIfEmpty(c.Host), rev)
		}
		return tw.Flush()
	case "apply":
		if *file == "" {
			fs.Usage()
			return errUsage
		}
		mf, err := readMembersFile(*file)
		if err != nil {
			return err
		}
		body, _ := json.Marshal(mf)
		b, err := efgsCall(ctx, cl, http.MethodPost, base+"/admin/members", body, http.StatusOK)
		if err != nil {
			return err
		}
		var certs []crossroads.EFGSCertificate
		json.Unmarshal(b, &certs)
		for _, c := range certs {
			fmt.Printf("registered %s %s %s\n", c.Country, c.Type, c.Thumbprint)
		}
		return nil
	case "revoke", "offboard":
		if len(pos) != 2 {
			fs.Usage()
			return errUsage
		}
		target, want := base+"/admin/certificates/"+efgs.NormaliseThumbprint(pos[1])+"/revoke", http.StatusNoContent
		if pos[0] == "offboard" {
			target, want = base+"/admin/members/"+pos[1]+"/offboard", http.StatusOK
		}
		if _, err := efgsCall(ctx, cl, http.MethodPost, target, []byte("{}"), want); err != nil {
			return err
		}
		fmt.Printf("%s %s: done\n", pos[0], pos[1])
		return nil
	}
	fs.Usage()
	return errUsage
}

// readMembersFile reads a members file, strictly, and inlines the PEM
// files it names (relative to it).
func readMembersFile(file string) (*efgs.MemberFile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var mf efgs.MemberFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&mf); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for i := range mf.Federation.Members {
		for j := range mf.Federation.Members[i].Certificates {
			c := &mf.Federation.Members[i].Certificates[j]
			if c.File == "" {
				continue
			}
			p := c.File
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(file), p)
			}
			pemBytes, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("%s: members[%d].certificates[%d]: %w", file, i, j, err)
			}
			c.PEM, c.File = string(pemBytes), ""
		}
	}
	return &mf, nil
}

func efgsCall(ctx context.Context, cl *http.Client, method, url string, body []byte, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// efgsServeFlags adds the gateway's settings to serve's flags; the
// returned function puts them in the hub's configuration.
func efgsServeFlags(fs *flag.FlagSet) func(*hub.Config) {
	disabled := fs.Bool("efgs-disable", false, "do not serve the federation gateway (EFGS profile)")
	prefix := fs.String("efgs-prefix", hub.DefaultEFGSPrefix, "path prefix of the federation gateway")
	maxKeys := fs.Int("efgs-max-batch-keys", efgs.DefaultMaxBatchKeys, "most keys in an uploaded batch (beyond: 413)")
	maxAge := fs.Int("efgs-max-age-days", efgs.DefaultMaxAgeDays, "download window in days before today (older: 410)")
	retention := fs.Int("efgs-retention-days", efgs.DefaultRetentionDays, "days after which batches and keys are erased")
	proxies := fs.String("efgs-trusted-proxies", "", "comma-separated participant ids of load balancers whose X-SSL-Client-SHA256/X-SSL-Client-DN headers are trusted (default none)")
	anchor := fs.String("efgs-trust-anchor", "", "PEM certificate of the trust anchor that signs member certificates (checked at registration and each use)")
	return func(c *hub.Config) {
		c.EFGS.Disabled, c.EFGS.Prefix, c.EFGS.MaxBatchKeys, c.EFGS.MaxAgeDays, c.EFGS.RetentionDays = *disabled, *prefix, *maxKeys, *maxAge, *retention
		c.EFGS.TrustAnchorFile = *anchor
		for _, p := range strings.Split(*proxies, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.EFGS.TrustedProxies = append(c.EFGS.TrustedProxies, p)
			}
		}
	}
}
