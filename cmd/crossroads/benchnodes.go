package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads/cluster"
)

// runBenchNodes is 'crossroads bench --nodes 1,2,3': the throughput of 1,
// 2 and 3 'serve' processes behind HAProxy on one PostgreSQL database and
// one shared log, from one run.
func runBenchNodes(ctx context.Context, nodes, dbURL, logDB string, clients, people int, warmup, window time.Duration, out string) error {
	var sizes []int
	for _, f := range strings.Split(nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			return fmt.Errorf("--nodes %q: want a comma-separated list of node counts (1–16)", nodes)
		}
		sizes = append(sizes, n)
	}
	if dbURL == "" || logDB == "" {
		return fmt.Errorf("--nodes needs --database-url (a fresh PostgreSQL database) and --log-database (a MariaDB/MySQL DSN)")
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	dir, err := os.MkdirTemp("", "crossroads-bench-nodes-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	c, err := cluster.Start(ctx, cluster.Options{Binary: bin, Dir: dir, DatabaseURL: dbURL, LogDatabase: logDB,
		Nodes: slices.Max(sizes), People: people})
	if err != nil {
		return err
	}
	defer c.Close()
	rows, err := c.Bench(ctx, sizes, clients, warmup, window, os.Stderr)
	if err != nil {
		return err
	}
	if err := c.Stop(); err != nil {
		return err
	}
	md := cluster.BenchMarkdown(rows, clients, "crossroads "+strings.Join(os.Args[1:], " "))
	fmt.Print(md)
	if out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	os.RemoveAll(filepath.Clean(dir))
	return nil
}
