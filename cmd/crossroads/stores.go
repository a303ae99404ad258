package main

import (
	"context"
	"flag"

	"github.com/crossroads-hub/crossroads/pki"
	"github.com/crossroads-hub/crossroads/storage"
)

// storeFlags are --dir and --database-url, the same for every command that
// opens the stores (storage.Open).
type storeFlags struct {
	dir, databaseURL *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		dir:         fs.String("dir", "data", "data directory: CA, hub certificate, audit keys and log; the SQLite stores unless --database-url"),
		databaseURL: fs.String("database-url", "", "PostgreSQL URL (postgres://…) for registers and audit records; default: embedded SQLite in --dir"),
	}
}

// open opens the stores: the audit store too with withAudit; creating
// what is missing only with create.
func (s storeFlags) open(ctx context.Context, withAudit, create bool) (*storage.Stores, error) {
	return storage.Open(ctx, storage.Options{Dir: *s.dir, DatabaseURL: *s.databaseURL, Audit: withAudit, Create: create})
}

// passFlags are --passphrase-env and --passphrase-file.
type passFlags struct{ env, file *string }

func addPassFlags(fs *flag.FlagSet) passFlags {
	return passFlags{
		env:  fs.String("passphrase-env", "CROSSROADS_CA_PASSPHRASE", "environment variable holding the CA key passphrase"),
		file: fs.String("passphrase-file", "", "file holding the CA key passphrase (instead of the environment)"),
	}
}

func (p passFlags) get() ([]byte, error) { return pki.Passphrase(*p.env, *p.file) }

// loadCA opens the network CA of the data directory.
func loadCA(dir string, p passFlags) (*pki.CA, error) {
	pass, err := p.get()
	if err != nil {
		return nil, err
	}
	return pki.LoadCA(storage.CADir(dir), pass)
}
