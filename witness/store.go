package witness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/crossroads-hub/crossroads/atomicfile"
)

// ErrStateChanged is returned (wrapped) by Store.CompareAndSwap when the
// stored state is not the expected one.
var ErrStateChanged = errors.New("witness: stored state changed")

// State is the latest checkpoint a witness cosigned for one log.
type State struct {
	Size uint64
	Root tlog.Hash
	// Checkpoint is the signed checkpoint note that was cosigned; kept for
	// the record, not compared.
	Checkpoint []byte
}

// Store keeps the witness's per-log state durably.
type Store interface {
	// Latest returns the state for origin, and false if there is none.
	Latest(ctx context.Context, origin string) (State, bool, error)
	// CompareAndSwap atomically replaces the state for origin with new if
	// the current state has old's size and root hash (or is absent, if old
	// is nil), and returns an error wrapping ErrStateChanged otherwise. It
	// returns only once the new state is durable.
	CompareAndSwap(ctx context.Context, origin string, old *State, new State) error
}

func sameState(cur State, ok bool, old *State) bool {
	if old == nil {
		return !ok
	}
	return ok && cur.Size == old.Size && cur.Root == old.Root
}

// MemoryStore is a Store in memory, for tests and benchmarks. It is not
// durable and must not back a production witness.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]State
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: make(map[string]State)} }

// Latest implements Store.
func (s *MemoryStore) Latest(_ context.Context, origin string) (State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[origin]
	return st, ok, nil
}

// CompareAndSwap implements Store.
func (s *MemoryStore) CompareAndSwap(_ context.Context, origin string, old *State, new State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[origin]
	if !sameState(cur, ok, old) {
		return fmt.Errorf("%w for %q", ErrStateChanged, origin)
	}
	s.m[origin] = new
	return nil
}

// FileStore is a Store keeping one JSON file per log origin in a directory.
// Files are replaced atomically (temporary file, fsync, rename, directory
// fsync) under a per-origin mutex. Only one process may use a directory at a
// time: OpenFileStore takes an exclusive lock on it (on Unix), released by
// Close.
type FileStore struct {
	dir  string
	lock *os.File

	mu   sync.Mutex
	logs map[string]*fileEntry
}

type fileEntry struct {
	mu     sync.Mutex
	loaded bool
	ok     bool
	state  State
}

type fileState struct {
	Origin     string    `json:"origin"`
	Size       uint64    `json:"size"`
	Root       tlog.Hash `json:"root"`
	Checkpoint string    `json:"checkpoint,omitempty"`
}

// OpenFileStore opens (creating it if needed) a FileStore in dir.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness: creating state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("witness: opening state lock: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("witness: %w", err)
	}
	return &FileStore{dir: dir, lock: lock, logs: make(map[string]*fileEntry)}, nil
}

// Close releases the directory lock. The store must not be used afterwards.
func (s *FileStore) Close() error {
	if err := s.lock.Close(); err != nil {
		return fmt.Errorf("witness: closing state lock: %w", err)
	}
	return nil
}

func (s *FileStore) entry(origin string) *fileEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.logs[origin]
	if e == nil {
		e = &fileEntry{}
		s.logs[origin] = e
	}
	return e
}

func (s *FileStore) path(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:])+".json")
}

// load reads the entry's file if not done yet; e.mu must be held.
func (s *FileStore) load(e *fileEntry, origin string) error {
	if e.loaded {
		return nil
	}
	b, err := os.ReadFile(s.path(origin))
	if errors.Is(err, fs.ErrNotExist) {
		e.loaded, e.ok = true, false
		return nil
	}
	if err != nil {
		return fmt.Errorf("witness: reading state of %q: %w", origin, err)
	}
	var fst fileState
	if err := json.Unmarshal(b, &fst); err != nil {
		return fmt.Errorf("witness: decoding state of %q: %w", origin, err)
	}
	if fst.Origin != origin {
		return fmt.Errorf("witness: state file %s is for origin %q, not %q", s.path(origin), fst.Origin, origin)
	}
	e.loaded, e.ok = true, true
	e.state = State{Size: fst.Size, Root: fst.Root, Checkpoint: []byte(fst.Checkpoint)}
	return nil
}

// Latest implements Store.
func (s *FileStore) Latest(_ context.Context, origin string) (State, bool, error) {
	e := s.entry(origin)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.load(e, origin); err != nil {
		return State{}, false, err
	}
	return e.state, e.ok, nil
}

// CompareAndSwap implements Store.
func (s *FileStore) CompareAndSwap(ctx context.Context, origin string, old *State, new State) error {
	e := s.entry(origin)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.load(e, origin); err != nil {
		return err
	}
	if !sameState(e.state, e.ok, old) {
		return fmt.Errorf("%w for %q", ErrStateChanged, origin)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("witness: storing state of %q: %w", origin, err)
	}
	b, err := json.MarshalIndent(fileState{Origin: origin, Size: new.Size, Root: new.Root, Checkpoint: string(new.Checkpoint)}, "", "\t")
	if err != nil {
		return fmt.Errorf("witness: encoding state of %q: %w", origin, err)
	}
	if err := atomicfile.Write(s.path(origin), append(b, '\n'), 0o600); err != nil {
		// The file is either the old or the new version; reload next time.
		e.loaded = false
		return fmt.Errorf("witness: storing state of %q: %w", origin, err)
	}
	e.state, e.ok = new, true
	return nil
}
