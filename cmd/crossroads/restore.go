package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/crossroads-hub/crossroads/backup"
)

func init() {
	register("restore", "restore a backup into an empty data directory and databases", runRestore)
}

func runRestore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	from := fs.String("from", "", "the backup directory (required)")
	dir := fs.String("dir", "data", "the data directory to restore into: absent or empty (env CROSSROADS_DIR)")
	dbURL := fs.String("database-url", "", "empty PostgreSQL database to restore the registers and audit records into (a PostgreSQL backup)")
	logDB := fs.String("log-database", "", "empty MariaDB/MySQL database to restore a shared log into (created if absent)")
	keyDir := fs.String("key-dir", "", "the live key provider directory (default: DIR/keys, which may be DIR's only entry); start the hub with the same")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads restore --from BACKUP [flags]\n\nChecks every file of the backup against its manifest, then restores it into an empty data\ndirectory (and empty databases). Records integrated after the log was copied are integrated\nagain, in the same order, when the hub starts. A backup holds no provider key: the live key\nprovider (--key-dir, or the HSM) must be there; it opens every day not erased since.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *from == "" {
		fmt.Fprintf(fs.Output(), "restore: --from is required; unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	m, err := backup.Restore(ctx, *from, backup.Source{DataDir: *dir, DatabaseURL: *dbURL, LogDatabase: *logDB, KeyDir: *keyDir})
	if err != nil {
		return err
	}
	fmt.Printf("restored the backup of %s into %s: %s store, %s log of %d leaves\n", m.Created.Format("2006-01-02T15:04:05Z"), *dir, m.Store, m.Log, m.LogSize)
	if *keyDir != "" {
		fmt.Printf("start the hub with --key-dir %s\n", *keyDir)
	}
	return nil
}
