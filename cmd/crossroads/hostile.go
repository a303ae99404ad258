package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/hostile"
	"github.com/crossroads-hub/crossroads/pki"
)

func init() {
	register("hostile", "attack a hub with hostile input and report how it held", runHostile)
}

func runHostile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hostile", flag.ContinueOnError)
	var (
		target    = fs.String("target", "", "base URL of the hub, e.g. https://127.0.0.1:8443")
		cert      = fs.String("cert", "", "a participant's client certificate (PEM)")
		key       = fs.String("key", "", "its private key (PEM)")
		ca        = fs.String("ca", "", "the network CA certificate (PEM)")
		service   = fs.String("service", "", "a service the participant may call")
		path      = fs.String("path", "", "a path of that service, e.g. persons/85073003328")
		purpose   = fs.String("purpose", "", "a purpose covering the call")
		subject   = fs.String("subject", "", "the person the call concerns")
		expCert   = fs.String("expired-cert", "", "optional: an expired certificate of the network CA (PEM; key in --expired-key)")
		expKey    = fs.String("expired-key", "", "its key")
		revCert   = fs.String("revoked-cert", "", "optional: a revoked certificate of the network CA (PEM; key in --revoked-key)")
		revKey    = fs.String("revoked-key", "", "its key")
		provider  = fs.String("provider", "", "optional: an authentic source's base URL to attack directly with forged hub signatures")
		provPath  = fs.String("provider-path", "", "a path the provider serves, e.g. /persons/85073003328")
		maxBody   = fs.Int64("max-request-body", 1<<20, "the hub's request body limit")
		slow      = fs.Int("slow-clients", 20, "slowloris connections of each kind")
		slowWait  = fs.Duration("slowloris-wait", 20*time.Second, "how long to wait for the hub to drop slow clients")
		asJSON    = fs.Bool("json", false, "print the report as JSON")
		heapGrowM = fs.Int("max-heap-growth-mib", 256, "largest acceptable growth of the hub's heap in use")
		imp       = impostorFlags(fs)
		other     = fs.String("other-subject", "", "optional: another valid subject of the same kind (subject-mismatch and other-service-path cases)")
		writePath = fs.String("write-path", "", "optional: a path of an operation of --service that takes a JSON body (the body attacks use it)")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads hostile --target URL --cert C --key K --ca CA --service S --path P --purpose P [--subject ID] [flags]\n\nSends hostile input to a hub (only to --target and --provider) and reports, per attack,\nwhether it was refused cleanly. Exits non-zero if any attack was not.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if *target == "" || *cert == "" || *key == "" || *ca == "" || *service == "" || *purpose == "" {
		fmt.Fprintln(fs.Output(), "--target, --cert, --key, --ca, --service and --purpose are required")
		return errUsage
	}
	client, err := keyPair(*cert, *key)
	if err != nil {
		return err
	}
	roots, err := pki.LoadPool(*ca)
	if err != nil {
		return err
	}
	t := hostile.Target{
		Base: strings.TrimSuffix(*target, "/"), Roots: roots, Client: client,
		Service: *service, Path: *path, Purpose: *purpose, Subject: *subject, OtherSubject: *other, WritePath: *writePath,
		Provider: *provider, ProviderPath: *provPath, MaxRequestBody: *maxBody,
		SlowClients: *slow, SlowlorisWait: *slowWait, MaxHeapGrowth: float64(*heapGrowM) * (1 << 20),
	}
	if *expCert != "" {
		c, err := keyPair(*expCert, *expKey)
		if err != nil {
			return err
		}
		t.Expired = &c
	}
	if *revCert != "" {
		c, err := keyPair(*revCert, *revKey)
		if err != nil {
			return err
		}
		t.Revoked = &c
	}
	if t.Impostor, err = imp.impostor(); err != nil {
		return err
	}
	rep, err := hostile.Run(ctx, t)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Println(string(b))
	} else {
		fmt.Print(rep.Table())
	}
	if !rep.OK {
		return errors.New("some attacks were not refused cleanly")
	}
	return nil
}

func keyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read key: %w", err)
	}
	return pki.LoadKeyPair(certPEM, keyPEM)
}

// impostorOpts are the flags of the provider-authentication cases.
type impostorOpts struct {
	listen, service, path, subject                       *string
	cert, key, other, otherKey, exp, expKey, rev, revKey *string
}

func impostorFlags(fs *flag.FlagSet) impostorOpts {
	return impostorOpts{
		listen:   fs.String("impostor-listen", "", "optional: host:port that a service's registered baseUrl points at; the tool serves impostor providers there"),
		service:  fs.String("impostor-service", "", "that service (the --cert participant may call it for --purpose)"),
		path:     fs.String("impostor-path", "", "a path of that service"),
		subject:  fs.String("impostor-subject", "", "the subject of that call"),
		cert:     fs.String("impostor-cert", "", "the service's provider's server certificate for that address (must be accepted)"),
		key:      fs.String("impostor-key", "", "its key"),
		other:    fs.String("impostor-other-cert", "", "optional: another participant's server certificate (must be refused)"),
		otherKey: fs.String("impostor-other-key", "", "its key"),
		exp:      fs.String("impostor-expired-cert", "", "optional: the provider's expired certificate"),
		expKey:   fs.String("impostor-expired-key", "", "its key"),
		rev:      fs.String("impostor-revoked-cert", "", "optional: the provider's revoked certificate"),
		revKey:   fs.String("impostor-revoked-key", "", "its key"),
	}
}

func (o impostorOpts) impostor() (*hostile.Impostor, error) {
	if *o.listen == "" {
		return nil, nil
	}
	right, err := keyPair(*o.cert, *o.key)
	if err != nil {
		return nil, fmt.Errorf("--impostor-cert: %w", err)
	}
	imp := &hostile.Impostor{Listen: *o.listen, Service: *o.service, Path: *o.path, Subject: *o.subject, Right: right}
	for _, c := range []struct {
		cert, key string
		to        **tls.Certificate
	}{{*o.other, *o.otherKey, &imp.Other}, {*o.exp, *o.expKey, &imp.Expired}, {*o.rev, *o.revKey, &imp.Revoked}} {
		if c.cert == "" {
			continue
		}
		kp, err := keyPair(c.cert, c.key)
		if err != nil {
			return nil, err
		}
		*c.to = &kp
	}
	return imp, nil
}
