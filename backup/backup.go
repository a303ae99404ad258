// Package backup makes consistent online backups of a hub — registers,
// audit store, Merkle log and key files — and restores them, on both
// backends:
//
//   - Embedded (SQLite, POSIX log): each database is snapshotted with
//     SQLite's VACUUM INTO (a transactionally consistent copy taken while
//     the hub writes; never a file copy of a live database), and the POSIX
//     log is copied while holding Tessera's own tree-state lock, so that
//     no integration runs during the copy and the copied tiles, entry
//     bundles, tree state and checkpoint agree.
//   - PostgreSQL: pg_dump (one consistent snapshot of registers and audit
//     records); a log shared in MariaDB/MySQL: mariadb-dump
//     --single-transaction (one consistent snapshot of the log).
//
// The log is copied before the audit store: every leaf in the copied log
// then has its record in the copied store (records are durable before
// they are integrated). Records the store snapshot shows integrated beyond
// the copied log's size are unmarked on restore and integrated again, in
// the same (sequence) order, which re-derives the same leaves at the same
// indexes: the restored log is consistent with every checkpoint published
// before the backup began.
//
// A backup is a directory: manifest.json (what was backed up, with a
// SHA-256 of every file, checked before a restore writes anything), the
// data directory's other files under files/ (CA, hub certificate, the
// log's verifier key), and the database snapshots, which hold every secret
// of the hub wrapped (wrapped_keys, the data keys).
//
// The key provider's own keys (the FileProvider directory, keys/ by
// default, or an HSM) are deliberately not in a backup: erasure destroys
// KEKs there, and a backup must not bring them back. The manifest records
// which provider the hub used; a restore needs that live provider, which
// still holds every KEK not destroyed by an erasure since.
package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Source names a hub's state: its data directory and, optionally, the
// PostgreSQL database of registers and audit records and the MariaDB/MySQL
// database of a shared log.
type Source struct {
	DataDir     string
	DatabaseURL string // "": SQLite files in DataDir
	LogDatabase string // "": the POSIX log in DataDir/audit/log
	// KeyDir is the hub's FileProvider directory ("": DataDir/keys); it is
	// never backed up. KeyProvider names the provider: "file" (default) or
	// "pkcs11" (an HSM; KeyDir is then unused).
	KeyDir      string
	KeyProvider string
}

// keyDir returns the FileProvider directory of s.
func (s Source) keyDir() string {
	if s.KeyDir != "" {
		return s.KeyDir
	}
	return filepath.Join(s.DataDir, keysDir)
}

// Keys records the key provider a backup needs at restore time.
type Keys struct {
	Provider string `json:"provider"`      // file | pkcs11
	Dir      string `json:"dir,omitempty"` // the FileProvider directory (absolute) at backup time
}

// Manifest describes a backup.
type Manifest struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Store    string    `json:"store"` // sqlite | postgres
	Log      string    `json:"log"`   // posix | mysql
	LogSize  uint64    `json:"logSize"`
	Duration string    `json:"duration"`
	Keys     *Keys     `json:"keys,omitempty"` // absent in backups of earlier versions
	Files    []File    `json:"files"`
}

// File is one file of a backup.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Names inside a backup and a data directory.
const (
	manifestFile  = "manifest.json"
	registersFile = "registers.db"
	auditDB       = "audit/audit.db"
	posixLog      = "audit/log"
	pgDump        = "postgres.dump"
	logDump       = "log.sql"
	filesDir      = "files"
	keysDir       = "keys" // hub.KeysDir
)

// featureDBs are the embedded databases of the hub's features (mutation
// push, batch consultation, the federation gateway, secure processing):
// present only once the feature has run, snapshotted like the registers.
var featureDBs = []string{"push.db", "batch.db", "efgs.db", "spe.db"}

// sqliteDBs are the embedded databases of the data directory dir: the
// registers, the audit records and the features' that exist.
func sqliteDBs(dir string) []string {
	dbs := []string{registersFile, auditDB}
	for _, db := range featureDBs {
		if _, err := os.Stat(filepath.Join(dir, db)); err == nil {
			dbs = append(dbs, db)
		}
	}
	return dbs
}

// skipped reports whether a data-directory path (slash-separated,
// relative) is taken by a database snapshot rather than copied as a file.
func skipped(rel string) bool {
	for _, db := range append([]string{registersFile, auditDB}, featureDBs...) {
		if rel == db || rel == db+"-wal" || rel == db+"-shm" || rel == db+"-journal" {
			return true
		}
	}
	return rel == posixLog || strings.HasPrefix(rel, posixLog+"/")
}

// Backup writes a consistent snapshot of src into the new directory out.
func Backup(ctx context.Context, src Source, out string) (*Manifest, error) {
	t0 := time.Now()
	if err := os.Mkdir(out, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m := &Manifest{Version: 1, Created: t0.UTC(), Store: "sqlite", Log: "posix", Keys: &Keys{Provider: "file"}}
	switch src.KeyProvider {
	case "", "file":
		kd, err := filepath.Abs(src.keyDir())
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		m.Keys.Dir = kd
	case "pkcs11":
		m.Keys.Provider = "pkcs11"
	default:
		return nil, fmt.Errorf("backup: unknown key provider %q", src.KeyProvider)
	}
	if src.DatabaseURL != "" {
		m.Store = "postgres"
	}
	if src.LogDatabase != "" {
		m.Log = "mysql"
	}
	// 1. The log, before the store.
	var err error
	if m.Log == "posix" {
		m.LogSize, err = copyPOSIXLog(ctx, filepath.Join(src.DataDir, posixLog), filepath.Join(out, "log"))
	} else {
		m.LogSize, err = dumpMySQL(ctx, src.LogDatabase, filepath.Join(out, logDump))
	}
	if err != nil {
		return nil, err
	}
	// 2. The stores.
	if m.Store == "sqlite" {
		for _, db := range sqliteDBs(src.DataDir) {
			if err := vacuumInto(ctx, filepath.Join(src.DataDir, db), filepath.Join(out, filepath.Base(db))); err != nil {
				return nil, err
			}
		}
	} else if err := run(ctx, nil, "pg_dump", "--format=custom", "--no-owner", "--file="+filepath.Join(out, pgDump), "--dbname="+src.DatabaseURL); err != nil {
		return nil, err
	}
	// 3. Every other file of the data directory (CA, certificates), but
	// not the key provider's directory.
	providerDir := ""
	if m.Keys.Provider == "file" {
		if rel, err := filepath.Rel(src.DataDir, src.keyDir()); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			providerDir = filepath.ToSlash(rel)
		}
	}
	skip := func(rel string) bool {
		return skipped(rel) || rel == keysDir || (providerDir != "" && rel == providerDir)
	}
	if err := copyTree(src.DataDir, filepath.Join(out, filesDir), skip); err != nil {
		return nil, err
	}
	if m.Files, err = hashTree(out); err != nil {
		return nil, err
	}
	m.Duration = time.Since(t0).Round(time.Millisecond).String()
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := writeSync(filepath.Join(out, manifestFile), b, 0o600); err != nil {
		return nil, err
	}
	return m, nil
}

// vacuumInto snapshots the SQLite database file into dst.
func vacuumInto(ctx context.Context, file, dst string) error {
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("backup: snapshot %s: %w", filepath.Base(file), err)
	}
	return syncFile(dst)
}

// copyPOSIXLog copies a Tessera POSIX log holding its tree-state lock (the
// lock Tessera's integration takes), and returns the copied tree size.
func copyPOSIXLog(ctx context.Context, dir, dst string) (uint64, error) {
	lock, err := os.OpenFile(filepath.Join(dir, ".state", "treeState.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return 0, fmt.Errorf("backup: log lock: %w", err)
	}
	defer lock.Close()
	fl := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	for {
		if err = syscall.FcntlFlock(lock.Fd(), syscall.F_SETLKW, &fl); err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("backup: log lock: %w", err)
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err := copyTree(dir, dst, func(rel string) bool { return strings.HasSuffix(rel, ".lock") }); err != nil {
		return 0, err
	}
	return posixTreeSize(dst)
}

func posixTreeSize(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, ".state", "treeState"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("backup: log state: %w", err)
	}
	var ts struct {
		Size uint64 `json:"size"`
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		return 0, fmt.Errorf("backup: log state: %w", err)
	}
	return ts.Size, nil
}

// mysqlArgs turns a go-sql-driver DSN into client arguments (the password
// goes through the environment, not the command line).
func mysqlArgs(dsn string) (args []string, env []string, db string, err error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, "", fmt.Errorf("log database: %w", err)
	}
	if cfg.DBName == "" {
		return nil, nil, "", errors.New("log database: the DSN names no database")
	}
	switch cfg.Net {
	case "unix":
		args = append(args, "--socket="+cfg.Addr)
	default:
		host, port := cfg.Addr, "3306"
		if i := strings.LastIndex(cfg.Addr, ":"); i >= 0 {
			host, port = cfg.Addr[:i], cfg.Addr[i+1:]
		}
		args = append(args, "--protocol=tcp", "--host="+host, "--port="+port)
	}
	if cfg.User != "" {
		args = append(args, "--user="+cfg.User)
	}
	if cfg.Passwd != "" {
		env = append(env, "MYSQL_PWD="+cfg.Passwd)
	}
	return args, env, cfg.DBName, nil
}

// dumpMySQL dumps the log database in one consistent snapshot and returns
// the tree size it holds.
func dumpMySQL(ctx context.Context, dsn, dst string) (uint64, error) {
	args, env, db, err := mysqlArgs(dsn)
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, dumpTool(), append(args, "--single-transaction", "--skip-lock-tables", "--hex-blob", db)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("backup: %s: %w: %s", cmd.Path, err, strings.TrimSpace(stderr.String()))
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	// The dump's TreeState row is the size it holds.
	b, err := os.ReadFile(dst)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return dumpTreeSize(b)
}

// dumpTreeSize finds "INSERT INTO `TreeState` VALUES (0,SIZE,…" in a dump
// (mariadb-dump may break the line after VALUES).
func dumpTreeSize(b []byte) (uint64, error) {
	const marker = "INSERT INTO `TreeState` VALUES"
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return 0, nil // an empty log
	}
	rest := bytes.TrimLeft(b[i+len(marker):], " \r\n\t")
	if !bytes.HasPrefix(rest, []byte("(0,")) {
		return 0, errors.New("backup: log dump: unreadable tree state")
	}
	rest = rest[len("(0,"):]
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return 0, errors.New("backup: log dump: unreadable tree state")
	}
	n, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("backup: log dump: tree state: %w", err)
	}
	return n, nil
}

func dumpTool() string {
	if p, err := exec.LookPath("mariadb-dump"); err == nil {
		return p
	}
	return "mysqldump"
}

func clientTool() string {
	if p, err := exec.LookPath("mariadb"); err == nil {
		return p
	}
	return "mysql"
}

// run runs a client tool, its error output in the error.
func run(ctx context.Context, stdin io.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("backup: %s is not installed (Debian: postgresql-client, mariadb-client)", name)
		}
		return fmt.Errorf("backup: %s: %w: %s", name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// copyTree copies the regular files of src into dst (created), skipping
// the relative paths skip selects; each file is synced.
func copyTree(src, dst string, skip func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != src {
				return nil // removed while we walked (a collected partial tile)
			}
			return fmt.Errorf("backup: %w", err)
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("backup: %w", err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("backup: %w", err)
		}
		return writeSync(target, b, info.Mode().Perm())
	})
}

func writeSync(file string, b []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("backup: %w", err)
	}
	return f.Close()
}

func syncFile(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	return f.Sync()
}

// hashTree lists every file under dir with its SHA-256.
func hashTree(dir string) ([]File, error) {
	var out []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == manifestFile {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		out = append(out, File{Path: filepath.ToSlash(rel), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return out, nil
}

func runOut(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	return runOutIn(ctx, env, nil, name, args...)
}

func runOutIn(ctx context.Context, env []string, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(name), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func trimSpace(b []byte) []byte { return bytes.TrimSpace(b) }
