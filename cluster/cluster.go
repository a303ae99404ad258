// Package cluster runs several hub nodes ('crossroads serve' processes) on
// one PostgreSQL database and one shared Merkle log in MariaDB, behind an
// HAProxy load balancer in TCP mode (TLS passthrough: mutual TLS ends at
// the nodes). It is the machinery of the multi-node test and of
// 'crossroads bench --nodes'.
//
// The first node's data directory is bootstrapped in-process with the demo
// network (CA, hub certificate, participants' certificates, audit keys and
// log note key); the authentic sources keep running in-process. Every node
// gets a copy of that data directory (the CA, the network file, the
// passphrase) except its key provider directory: all nodes use the first
// node's (--key-dir), as a deployment's nodes use one key directory on
// storage they all reach (or one HSM), and share the wrapped keys through
// the database.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
)

// Options configure a cluster.
type Options struct {
	Binary      string // the crossroads executable (required)
	Dir         string // working directory: data directories, logs, HAProxy config (required)
	DatabaseURL string // PostgreSQL, fresh (required)
	LogDatabase string // MariaDB/MySQL DSN of the shared log (required)
	Nodes       int    // default 3
	People      int    // synthetic people (default 500)
	// HAProxy is the haproxy executable (default: found in PATH).
	HAProxy string
}

// Node is one 'crossroads serve' process.
type Node struct {
	Index   int
	Dir     string
	Addr    string
	logFile *os.File
	cmd     *exec.Cmd
	exited  chan error
}

// Cluster is a running set of nodes behind a load balancer.
type Cluster struct {
	opts   Options
	demo   *demo.Running
	Nodes  []*Node
	LB     string // host:port of the load balancer
	Pool   *x509.CertPool
	Certs  map[string]tls.Certificate
	People []demo.Person
	// VerifierKey is the log's note verifier key.
	VerifierKey string
	haproxy     *exec.Cmd
	haExited    chan error
	bootDir     string
	active      int // nodes behind the load balancer
}

// HAProxyPath returns the haproxy executable, or an error if none is
// installed.
func HAProxyPath() (string, error) {
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if f, err := exec.LookPath(p); err == nil {
			return f, nil
		}
	}
	return "", errors.New("cluster: haproxy is not installed (Debian: apt-get install haproxy)")
}

// Start bootstraps the network and starts the nodes and the load balancer.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Binary == "" || opts.Dir == "" {
		return nil, errors.New("cluster: Binary and Dir are required")
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.Nodes > 1 && (opts.DatabaseURL == "" || opts.LogDatabase == "") {
		return nil, errors.New("cluster: several nodes need DatabaseURL and LogDatabase")
	}
	if opts.LogDatabase != "" && opts.DatabaseURL == "" {
		return nil, errors.New("cluster: a shared log needs DatabaseURL")
	}
	if opts.People <= 0 {
		opts.People = 500
	}
	if opts.HAProxy == "" {
		if opts.HAProxy, err = HAProxyPath(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{opts: opts, bootDir: filepath.Join(opts.Dir, "boot")}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := c.bootstrap(ctx); err != nil {
		return nil, err
	}
	for i := range opts.Nodes {
		n := &Node{Index: i, Dir: filepath.Join(opts.Dir, fmt.Sprintf("node-%d", i))}
		if err := copyDir(c.bootDir, n.Dir, c.KeyDir()); err != nil {
			return nil, err
		}
		if n.Addr, err = freeAddr(); err != nil {
			return nil, err
		}
		if n.logFile, err = os.OpenFile(filepath.Join(opts.Dir, fmt.Sprintf("node-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := c.StartNode(ctx, n.Index); err != nil {
			return nil, err
		}
	}
	c.active = len(c.Nodes)
	if err := c.startHAProxy(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Use runs the first n nodes behind the load balancer and stops the others.
func (c *Cluster) Use(ctx context.Context, n int) error {
	if n < 1 || n > len(c.Nodes) {
		return fmt.Errorf("cluster: %d nodes asked, %d exist", n, len(c.Nodes))
	}
	for i := n; i < len(c.Nodes); i++ {
		if err := c.StopNode(i); err != nil {
			return err
		}
	}
	for i := range n {
		if c.Nodes[i].cmd == nil {
			if err := c.StartNode(ctx, i); err != nil {
				return err
			}
		}
	}
	c.stopHAProxy()
	c.active = n
	return c.startHAProxy(ctx)
}

// bootstrap creates the demo network on the shared databases in-process,
// keeps its authentic sources running and stops its hub.
func (c *Cluster) bootstrap(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	r, errc, err := demo.Start(hctx, demo.Options{DataDir: c.bootDir, People: c.opts.People, DatabaseURL: c.opts.DatabaseURL,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Configure: func(cfg *hub.Config) { cfg.LogDatabase = c.opts.LogDatabase }}, ln)
	if err != nil {
		ln.Close()
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	c.demo = r
	c.Pool, c.Certs, c.People = r.Hub.CA.Pool(), r.Certs, r.People
	c.VerifierKey = r.Hub.Trail.VerifierKey()
	stop()
	if err := <-errc; err != nil {
		return fmt.Errorf("cluster: bootstrap hub: %w", err)
	}
	// The sources stay up; the bootstrap hub releases the stores.
	if err := r.Hub.Close(context.Background()); err != nil {
		return fmt.Errorf("cluster: bootstrap hub: %w", err)
	}
	return nil
}

// StartNode starts node i and waits until it is ready.
func (c *Cluster) StartNode(ctx context.Context, i int) error {
	n := c.Nodes[i]
	if n.cmd != nil {
		return fmt.Errorf("cluster: node %d is running", i)
	}
	args := []string{"serve", "--dir", n.Dir, "--listen", n.Addr,
		"--passphrase-file", filepath.Join(n.Dir, "ca-passphrase"), "--max-merge-delay", "1s", "--log-level", "warn"}
	if c.opts.DatabaseURL != "" {
		args = append(args, "--database-url", c.opts.DatabaseURL)
	}
	if c.opts.LogDatabase != "" {
		args = append(args, "--log-database", c.opts.LogDatabase)
	}
	args = append(args, "--key-dir", c.KeyDir())
	cmd := exec.Command(c.opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = n.logFile, n.logFile
	cmd.Env = append(os.Environ(), "CROSSROADS_CA_PASSPHRASE=")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start node %d: %w", i, err)
	}
	n.cmd, n.exited = cmd, make(chan error, 1)
	go func() { n.exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS13}, DisableKeepAlives: true}}
	for time.Now().Before(deadline) {
		select {
		case err := <-n.exited:
			n.cmd = nil
			return fmt.Errorf("cluster: node %d exited while starting (%v); see %s", i, err, n.logFile.Name())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := probe.Get("https://" + n.Addr + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cluster: node %d not ready within a minute; see %s", i, n.logFile.Name())
}

// KillNode sends SIGKILL to node i and waits for it to die.
func (c *Cluster) KillNode(i int) error { return c.signal(i, syscall.SIGKILL) }

// StopNode stops node i cleanly (SIGTERM).
func (c *Cluster) StopNode(i int) error { return c.signal(i, syscall.SIGTERM) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	n := c.Nodes[i]
	if n.cmd == nil {
		return nil
	}
	if err := n.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cluster: signal node %d: %w", i, err)
	}
	var err error
	select {
	case err = <-n.exited:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		err = <-n.exited
	}
	n.cmd = nil
	if sig == syscall.SIGTERM && err != nil {
		return fmt.Errorf("cluster: node %d did not stop cleanly: %w; see %s", i, err, n.logFile.Name())
	}
	return nil
}

// Stop stops every node cleanly and the load balancer.
func (c *Cluster) Stop() error {
	var errs []error
	for i := range c.Nodes {
		errs = append(errs, c.StopNode(i))
	}
	c.stopHAProxy()
	return errors.Join(errs...)
}

// Options returns the cluster's options.
func (c *Cluster) Options() Options { return c.opts }

// Close kills whatever still runs and stops the sources.
func (c *Cluster) Close() {
	for i := range c.Nodes {
		c.KillNode(i)
		if c.Nodes[i].logFile != nil {
			c.Nodes[i].logFile.Close()
		}
	}
	c.stopHAProxy()
	if c.demo != nil {
		c.demo.Close()
		c.demo = nil
	}
}

func (c *Cluster) startHAProxy(ctx context.Context) error {
	if c.LB == "" {
		lb, err := freeAddr()
		if err != nil {
			return err
		}
		c.LB = lb
	}
	lb := c.LB
	var b strings.Builder
	fmt.Fprintf(&b, `global
	maxconn 4096
defaults
	mode tcp
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	retries 2
	option redispatch
frontend hub
	bind %s
	default_backend nodes
backend nodes
	balance roundrobin
`, lb)
	for _, n := range c.Nodes[:c.active] {
		fmt.Fprintf(&b, "\tserver node-%d %s check inter 200ms fall 1 rise 2\n", n.Index, n.Addr)
	}
	cfg := filepath.Join(c.opts.Dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(c.opts.Dir, "haproxy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cmd := exec.Command(c.opts.HAProxy, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("cluster: start haproxy: %w", err)
	}
	c.haproxy, c.haExited = cmd, make(chan error, 1)
	go func() { c.haExited <- cmd.Wait(); lf.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.haExited:
			c.haproxy = nil
			return fmt.Errorf("cluster: haproxy exited (%v); see %s", err, lf.Name())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if conn, err := net.DialTimeout("tcp", lb, time.Second); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("cluster: haproxy does not listen")
}

func (c *Cluster) stopHAProxy() {
	if c.haproxy != nil {
		c.haproxy.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.haExited:
		case <-time.After(5 * time.Second):
			c.haproxy.Process.Kill()
			<-c.haExited
		}
		c.haproxy = nil
	}
}

// Client returns a client presenting participant's certificate; every
// client has its own connections (so that the load balancer spreads
// clients over nodes).
func (c *Cluster) Client(participant string, keepAlive bool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     pki.ClientTLSConfig(c.Pool, c.Certs[participant]),
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 4,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	}}
}

// KeyDir is the key provider directory every node uses (--key-dir): the
// bootstrap node's, initialised by it before any node starts.
func (c *Cluster) KeyDir() string { return filepath.Join(c.bootDir, hub.KeysDir) }

// copyDir copies the regular files of src into dst, except those under skip.
func copyDir(src, dst, skip string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip && d.IsDir() {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cluster: pick a port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}
