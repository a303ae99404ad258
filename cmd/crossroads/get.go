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
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/httpapi"
	"github.com/crossroads-hub/crossroads/personid"
)

func init() {
	register("get", "show registers: participants, services, authorisations, integrations, certificates", runGet)
}

func runGet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	sf := addStoreFlags(fs)
	output := fs.String("o", "table", "output format: table, json or yaml")
	participant := fs.String("participant", "", "only this participant's integrations or certificates")
	hubURL := fs.String("hub", "", "read through a running hub's admin API instead (https://host:port)")
	cert := fs.String("cert", "", "operator or auditor certificate, with --hub")
	key := fs.String("key", "", "its key, with --hub")
	caFile := fs.String("ca", "", "network CA certificate, with --hub")
	scheme := fs.String("person-scheme", "insz", "person identifier scheme (integrations by subject)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: crossroads get participants|services|authorisations|integrations|certificates [ID] [-o table|json|yaml]
       [--dir DATA [--database-url URL] | --hub URL --cert C --key K --ca CA]

Shows a register, or one entry by ID (a certificate by serial, in any case, with or
without colons or leading zeros; integrations by subject). Reads the stores the hub runs
on (--dir, --database-url), or a running hub's admin API (--hub) with an operator or
auditor certificate.
`)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return errUsage
	}
	switch *output {
	case "table", "json", "yaml":
	default:
		return fmt.Errorf("-o %q: want table, json or yaml", *output)
	}
	q := httpapi.RegisterQuery{Kind: pos[0], Participant: *participant}
	if q.Kind == "authorizations" {
		q.Kind = "authorisations"
	}
	if len(pos) == 2 {
		q.ID = pos[1]
	}
	var raw []byte
	if *hubURL != "" {
		if raw, err = getRemote(ctx, q, *hubURL, *cert, *key, *caFile); err != nil {
			return err
		}
	} else {
		if q.Kind == "integrations" && q.ID != "" {
			s, err := personid.Lookup(*scheme)
			if err != nil {
				return err
			}
			if q.ID, err = s.Canonical(q.ID); err != nil {
				return fmt.Errorf("subject %q: %w", q.ID, err)
			}
		}
		st, err := sf.open(ctx, false, false)
		if err != nil {
			return err
		}
		defer st.Close()
		v, err := httpapi.ReadRegister(ctx, st.Registers, st.Registers, q)
		if err != nil {
			return err
		}
		if raw, err = json.Marshal(v); err != nil {
			return err
		}
	}
	return printRegister(os.Stdout, q, raw, *output)
}

func getRemote(ctx context.Context, q httpapi.RegisterQuery, base, certFile, keyFile, caFile string) ([]byte, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("--hub needs --cert, --key and --ca")
	}
	client, err := mtlsClient(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	u := strings.TrimSuffix(base, "/") + "/v1/admin/registers/" + url.PathEscape(q.Kind)
	if q.ID != "" {
		u += "/" + url.PathEscape(q.ID)
	}
	if q.Participant != "" {
		u += "?participant=" + url.QueryEscape(q.Participant)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// printRegister prints the JSON the stores or the hub gave: as is, as
// YAML with the same keys, or as a table.
func printRegister(w io.Writer, q httpapi.RegisterQuery, raw []byte, format string) error {
	switch format {
	case "json":
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	single := q.ID != "" && q.Kind != "integrations"
	if single {
		raw = append(append([]byte("["), raw...), ']')
	}
	var err error
	switch q.Kind {
	case "participants":
		err = table(tw, raw, "ID\tNAME\tKIND\tSTATUS", func(p crossroads.Participant) string {
			return strings.Join([]string{p.ID, p.Name, p.Kind, p.Status}, "\t")
		})
	case "services":
		err = table(tw, raw, "ID\tPROVIDER\tSUBJECT\tCLASSIFICATION\tOPERATIONS", func(s crossroads.Service) string {
			ops := make([]string, len(s.Operations))
			for i, o := range s.Operations {
				ops[i] = o.ID
			}
			return fmt.Sprintf("%s\t%s\t%s\t%d\t%s", s.ID, s.Provider, s.SubjectKind(), s.Classification, dash(strings.Join(ops, ",")))
		})
	case "authorisations":
		err = table(tw, raw, "ID\tREFERENCE\tGRANTEE\tSERVICES\tPURPOSES\tSTATUS\tVALID TO", func(a crossroads.Authorisation) string {
			return strings.Join([]string{a.ID, a.Reference, a.Grantee, strings.Join(a.Services, ","), strings.Join(a.Purposes, ","), a.Status, day(a.ValidTo)}, "\t")
		})
	case "integrations":
		err = table(tw, raw, "KIND\tSUBJECT\tPARTICIPANT\tSECTOR\tCAPACITY\tFROM\tTO", func(i crossroads.Integration) string {
			kind := i.Kind
			if kind == "" {
				kind = crossroads.SubjectPerson
			}
			return strings.Join([]string{kind, i.Person, i.Participant, i.Sector, i.Capacity, day(i.From), day(i.To)}, "\t")
		})
	case "certificates":
		err = table(tw, raw, "SERIAL\tPARTICIPANT\tNOT AFTER\tREVOKED", func(c crossroads.Certificate) string {
			rev := "-"
			if !c.RevokedAt.IsZero() {
				rev = c.RevokedAt.Format(time.RFC3339)
			}
			return strings.Join([]string{c.Serial, c.Participant, day(c.NotAfter), rev}, "\t")
		})
	}
	if err != nil {
		return err
	}
	return tw.Flush()
}

func table[T any](w io.Writer, raw []byte, header string, row func(T) string) error {
	var list []T
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	fmt.Fprintln(w, header)
	for _, v := range list {
		fmt.Fprintln(w, row(v))
	}
	return nil
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.DateOnly)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
