package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/crossroads-hub/crossroads/backup"
)

func init() {
	register("backup", "make a consistent online backup of registers, audit store, log and keys", runBackup)
}

func runBackup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	dir := fs.String("dir", "data", "the hub's data directory (env CROSSROADS_DIR)")
	dbURL := fs.String("database-url", "", "PostgreSQL URL of the registers and audit records (default: the SQLite files in --dir)")
	logDB := fs.String("log-database", "", "MariaDB/MySQL DSN of a shared audit log (default: the POSIX log in --dir)")
	out := fs.String("out", "", "new directory to write the backup to (required)")
	keyDir := fs.String("key-dir", "", "the hub's key provider directory (default: DIR/keys): recorded, never copied")
	module := fs.String("pkcs11-module", "", "the hub's keys are in an HSM (PKCS#11 module): recorded")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crossroads backup --out DIR [flags]\n\nWrites a consistent snapshot of a running (or stopped) hub: SQLite databases with VACUUM INTO\nor PostgreSQL with pg_dump, the POSIX log under Tessera's lock or a shared log with\nmariadb-dump --single-transaction, and the other files of DIR. The log is taken first, then the stores.\nThe key provider (DIR/keys, --key-dir, or an HSM) is not copied: erasure must survive\nbackups. A restore needs the live provider.")
		fs.PrintDefaults()
	}
	if err := parseConfig(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *out == "" {
		fmt.Fprintf(fs.Output(), "backup: --out is required; unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	src := backup.Source{DataDir: *dir, DatabaseURL: *dbURL, LogDatabase: *logDB, KeyDir: *keyDir}
	if *module != "" {
		src.KeyProvider = "pkcs11"
	}
	m, err := backup.Backup(ctx, src, *out)
	if err != nil {
		return err
	}
	fmt.Printf("backup written to %s: %s store, %s log of %d leaves, %d files, in %s; keys: the %s provider %s (not copied)\n",
		*out, m.Store, m.Log, m.LogSize, len(m.Files), m.Duration, m.Keys.Provider, m.Keys.Dir)
	return nil
}
