// Package storage opens a hub's stores — registers, certificates and audit
// records — from a data directory and an optional PostgreSQL URL. The hub
// (serve) and every command (init, ca, apply, audit, get) open them through
// Open, so that they all read the same place.
//
// The data directory always holds the network CA, the hub's certificate,
// the audit keys and the Merkle log; the registers and audit records live
// in it too (embedded SQLite) unless DatabaseURL names a PostgreSQL
// database:
//
//	ca/ca.crt, ca/ca.key.enc   the network CA
//	hub/hub.crt, hub/hub.key   the hub's own certificate
//	registers.db               registers and certificates (SQLite only)
//	audit/                     audit.db (SQLite only), audit keys, the Merkle log
package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/keys"
	"github.com/crossroads-hub/crossroads/store/postgres"
	"github.com/crossroads-hub/crossroads/store/sqlite"
)

// Paths inside the data directory.
func CADir(dir string) string    { return filepath.Join(dir, "ca") }
func HubDir(dir string) string   { return filepath.Join(dir, "hub") }
func AuditDir(dir string) string { return filepath.Join(dir, "audit") }

// RegistersFile is the embedded registers database in the data directory.
const RegistersFile = "registers.db"

// ErrNotInitialised reports a data directory without the state asked for.
var ErrNotInitialised = errors.New("storage: not initialised")

// Registers is the register and certificate store.
type Registers interface {
	crossroads.RegisterStore
	crossroads.CertificateStore
	Close() error
}

// AuditStore is the audit record store.
type AuditStore interface {
	audit.Store
	keys.Store // the wrapped keys of the hub's key hierarchy
	Close() error
}

// Options say where the stores are and which to open.
type Options struct {
	// Dir is the data directory (required).
	Dir string
	// DatabaseURL (postgres://… or key=value) puts registers and audit
	// records in PostgreSQL instead of SQLite files in Dir.
	DatabaseURL string
	// Audit opens the audit store as well as the registers.
	Audit bool
	// Create creates what is missing (SQLite files, the audit directory).
	// Without it, a data directory lacking an embedded database, or, with
	// Audit, lacking an audit trail, is refused with ErrNotInitialised:
	// read-only commands never leave an empty store behind.
	Create bool
}

// Stores are the opened stores. Audit is nil unless Options.Audit.
type Stores struct {
	Dir       string
	Postgres  bool
	Registers Registers
	Audit     AuditStore
}

// AuditDir is the audit trail's directory (keys and Merkle log).
func (s *Stores) AuditDir() string { return AuditDir(s.Dir) }

// Close closes every store.
func (s *Stores) Close() error {
	var errs []error
	if s.Audit != nil {
		errs = append(errs, s.Audit.Close())
	}
	if s.Registers != nil {
		errs = append(errs, s.Registers.Close())
	}
	return errors.Join(errs...)
}

// Open opens the stores o names.
func Open(ctx context.Context, o Options) (_ *Stores, err error) {
	if o.Dir == "" {
		return nil, errors.New("storage: no data directory")
	}
	s := &Stores{Dir: o.Dir, Postgres: o.DatabaseURL != ""}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if o.Audit {
		if o.Create {
			if err := os.MkdirAll(AuditDir(o.Dir), 0o700); err != nil {
				return nil, fmt.Errorf("storage: create audit directory: %w", err)
			}
		} else if !HasTrail(o.Dir) {
			return nil, fmt.Errorf("%w: no audit trail in %s (run 'crossroads init --dir %s', or point --dir at the hub's data directory)", ErrNotInitialised, AuditDir(o.Dir), o.Dir)
		}
	}
	if s.Postgres {
		regs, err := postgres.OpenRegisters(ctx, o.DatabaseURL)
		if err != nil {
			return nil, err
		}
		s.Registers = regs // never a typed nil in the interface
		if o.Audit {
			a, err := postgres.OpenAudit(ctx, o.DatabaseURL)
			if err != nil {
				return nil, err
			}
			s.Audit = a
		}
		return s, nil
	}
	regFile := filepath.Join(o.Dir, RegistersFile)
	if !o.Create {
		if err := mustExist(regFile); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create data directory: %w", err)
	}
	regs, err := sqlite.OpenRegisters(ctx, regFile)
	if err != nil {
		return nil, err
	}
	s.Registers = regs
	if o.Audit {
		if !o.Create {
			if err := mustExist(filepath.Join(AuditDir(o.Dir), sqlite.AuditFile)); err != nil {
				return nil, err
			}
		}
		a, err := sqlite.OpenAudit(ctx, AuditDir(o.Dir))
		if err != nil {
			return nil, err
		}
		s.Audit = a
	}
	return s, nil
}

func mustExist(file string) error {
	_, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist (run 'crossroads init', or give --database-url for a PostgreSQL hub)", ErrNotInitialised, file)
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// HasCA reports whether dir holds a network CA.
func HasCA(dir string) bool {
	_, err := os.Stat(filepath.Join(CADir(dir), "ca.crt"))
	return err == nil
}

// HasTrail reports whether dir holds an audit trail: its log signing key
// or its Merkle log.
func HasTrail(dir string) bool {
	for _, p := range []string{audit.NoteKeyFile, "log"} {
		if _, err := os.Stat(filepath.Join(AuditDir(dir), p)); err == nil {
			return true
		}
	}
	return false
}
