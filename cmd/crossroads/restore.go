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
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads restore --from BACKUP [flags]\n\nChecks every file of the backup against its manifest, then restores it into an empty data\ndirectory (and empty databases). Records integrated after the log was copied are integrated\nagain, in the same order, when the hub starts.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *from == "" {
		fmt.Fprintf(fs.Output(), "restore: --from is required; unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	m, err := backup.Restore(ctx, *from, backup.Source{DataDir: *dir, DatabaseURL: *dbURL, LogDatabase: *logDB})
	if err != nil {
		return err
	}
	fmt.Printf("restored the backup of %s into %s: %s store, %s log of %d leaves\n", m.Created.Format("2006-01-02T15:04:05Z"), *dir, m.Store, m.Log, m.LogSize)
	return nil
}
