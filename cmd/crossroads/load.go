package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/load"
)

func init() {
	register("load", "send a request mix over mTLS and report throughput and latency", runLoad)
}

func runLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var (
		target      = fs.String("target", "", "base URL of the target, e.g. https://127.0.0.1:8443")
		cert        = fs.String("cert", "", "client certificate (PEM)")
		key         = fs.String("key", "", "client private key (PEM)")
		ca          = fs.String("ca", "", "CA certificate that signs the target (PEM)")
		serverName  = fs.String("server-name", "", "TLS server name, if not the target's host")
		mixFile     = fs.String("mix", "", "request mix file (.json, .yaml)")
		mode        = fs.String("mode", string(load.ModeClosed), "load model: closed (workers back to back) or open (fixed arrival rate)")
		concurrency = fs.Int("concurrency", 16, "closed mode: number of workers")
		rate        = fs.Float64("rate", 1000, "open mode: requests per second")
		maxInFlight = fs.Int("max-in-flight", 10000, "open mode: cap on outstanding requests")
		warmup      = fs.Duration("warmup", 2*time.Second, "warm-up, not measured")
		duration    = fs.Duration("duration", 10*time.Second, "measured duration")
		maxRequests = fs.Int64("max-requests", 0, "stop after this many measured requests (0: no limit)")
		timeout     = fs.Duration("timeout", 10*time.Second, "per-request timeout")
		connections = fs.Int("connections", 0, "keep-alive pool: HTTP/1.1 connections (0: one per worker in closed mode, 64 in open mode); HTTP/2 connections (0: 1)")
		http2       = fs.Bool("http2", false, "use HTTP/2 instead of HTTP/1.1")
		self        = fs.Bool("self", false, "measure the generator's own ceiling against a trivial in-process mTLS server on 127.0.0.1 (ignores --target, --cert, --key, --ca)")
		asJSON      = fs.Bool("json", false, "print the report as JSON")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads load --target URL --cert C --key K --ca CA --mix FILE [flags]\n       crossroads load --self [flags]")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	cfg := load.Config{
		Mode:        load.Mode(*mode),
		Concurrency: *concurrency,
		Rate:        *rate,
		MaxInFlight: *maxInFlight,
		Warmup:      *warmup,
		Duration:    *duration,
		MaxRequests: *maxRequests,
		Timeout:     *timeout,
		Connections: *connections,
		HTTP2:       *http2,
	}
	if *mixFile != "" {
		reqs, err := load.LoadMix(*mixFile)
		if err != nil {
			return err
		}
		cfg.Requests = reqs
	}

	var (
		rep *load.Report
		err error
	)
	if *self {
		rep, err = load.SelfBench(ctx, cfg)
	} else {
		if *target == "" || *mixFile == "" {
			fmt.Fprintln(fs.Output(), "--target and --mix are required (or --self)")
			return errUsage
		}
		cfg.Target = *target
		if strings.HasPrefix(*target, "https:") {
			if *cert == "" || *key == "" || *ca == "" {
				fmt.Fprintln(fs.Output(), "an https target needs --cert, --key and --ca")
				return errUsage
			}
			tc, err := load.ClientTLS(*cert, *key, *ca)
			if err != nil {
				return err
			}
			tc.ServerName = *serverName
			cfg.TLS = tc
		}
		rep, err = load.Run(ctx, cfg)
	}
	if rep != nil { // also after an interruption: the partial report
		if *asJSON {
			b, jerr := rep.JSON()
			if jerr != nil {
				return jerr
			}
			fmt.Println(string(b))
		} else {
			fmt.Print(rep.Table())
		}
	}
	return err
}
