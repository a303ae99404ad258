package directory

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// A snapshot file lets a node start on a national directory without
// reading every integration from the store (issue 13): the compact tables
// as they are in memory, the exact integrations, and the position of the
// store's change feed they reflect. At start, a snapshot younger than
// MaxSnapshotAge is read and the feed replayed from its position — every
// change since, whoever made it, in order, idempotently — so memory ends
// where the store is. The store stays the only truth: a missing, old,
// damaged or foreign snapshot is ignored and the directory loaded from the
// store as before.
//
// Format (integers little-endian): the magic "crossroads-directory-1\n";
// the feed position (int64) and the Unix time in nanoseconds when it was
// read (int64); the anchor: the feed's change at that position as JSON
// (uint32 length and bytes), which the store must still hold, unchanged —
// a snapshot of another store, or of a store restored from a backup, is
// refused; the participants (uint32 count, then each as uint16 length
// and bytes; index 0 is empty); the capacities (uint32 count, each as kind,
// sector and code strings and the uint16 canonical index); for each of the
// 256 shards the table's size and its used slots (uint32 each) and every
// slot (16 bytes: lo, hi uint32, participant, capacity, from, to uint16);
// the exact integrations (uint32 count, each a uint32 length and its JSON);
// and the SHA-256 of everything before it.

// SnapshotFile is the snapshot's name in a hub's data directory.
const SnapshotFile = "directory.snapshot"

// MaxSnapshotAge is the oldest snapshot a start uses: half the hub's
// change-feed retention (an hour), the rule by which a node that could not
// follow the feed for that long reloads whole.
const MaxSnapshotAge = 30 * time.Minute

const snapshotMagic = "crossroads-directory-1\n"

// errSnapshot marks a snapshot that cannot be used.
var errSnapshot = errors.New("directory snapshot unusable")

// WriteSnapshot writes the person directory to file (atomically: a
// temporary file, synced, renamed). Writes may go on meanwhile: the feed
// position is read first, so whatever the snapshot holds beyond it is
// replayed harmlessly at the next start.
func (d *Directory) WriteSnapshot(ctx context.Context, file string) (err error) {
	d.writeMu.Lock()
	pos := d.changes
	d.writeMu.Unlock()
	at := time.Now()
	if pos <= 0 {
		return fmt.Errorf("directory snapshot: the store's change feed is empty: nothing to anchor a snapshot to")
	}
	anchor, err := d.anchor(ctx, pos)
	if err != nil {
		return fmt.Errorf("directory snapshot: %w", err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(file), ".directory-snapshot-*")
	if err != nil {
		return fmt.Errorf("directory snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	w := &snapWriter{w: bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)}
	w.bytes([]byte(snapshotMagic))
	w.u64(uint64(pos))
	w.u64(uint64(at.UnixNano()))
	w.u32(uint32(len(anchor)))
	w.bytes(anchor)
	names := d.names.cur.Load()
	w.u32(uint32(len(names.partOf)))
	for _, p := range names.partOf {
		w.str(p)
	}
	w.u32(uint32(len(names.capOf)))
	for i, c := range names.capOf {
		w.str(c.kind)
		w.str(c.sector)
		w.str(c.code)
		w.u16(names.canonOf[i])
	}
	var exact []crossroads.Integration
	var slots []slot
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.RLock()
		slots = append(slots[:0], s.t.slots...)
		n := s.t.n
		for _, v := range s.m {
			exact = append(exact, v...)
		}
		s.mu.RUnlock()
		w.u32(uint32(len(slots)))
		w.u32(uint32(n))
		for j := range slots {
			c := &slots[j]
			w.u32(c.lo)
			w.u32(c.hi)
			w.u16(c.part)
			w.u16(c.capacity)
			w.u16(c.from)
			w.u16(c.to)
		}
	}
	w.u32(uint32(len(exact)))
	for _, in := range exact {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("directory snapshot: %w", err)
		}
		w.u32(uint32(len(b)))
		w.bytes(b)
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	if w.err != nil {
		return fmt.Errorf("directory snapshot: %w", w.err)
	}
	if _, err := tmp.Write(h.Sum(nil)); err != nil {
		return fmt.Errorf("directory snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("directory snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("directory snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("directory snapshot: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(file)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}

// anchor returns the feed's change at pos, encoded.
func (d *Directory) anchor(ctx context.Context, pos int64) ([]byte, error) {
	c, err := d.store.IntegrationChanges(ctx, pos-1, 1)
	if err != nil {
		return nil, err
	}
	if len(c) == 0 || c[0].Seq != pos {
		return nil, fmt.Errorf("%w: change %d not in the feed", errSnapshot, pos)
	}
	return json.Marshal(c[0])
}

type snapWriter struct {
	w   *bufio.Writer
	err error
	buf [8]byte
}

func (w *snapWriter) bytes(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}
func (w *snapWriter) u16(v uint16) { binary.LittleEndian.PutUint16(w.buf[:2], v); w.bytes(w.buf[:2]) }
func (w *snapWriter) u32(v uint32) { binary.LittleEndian.PutUint32(w.buf[:4], v); w.bytes(w.buf[:4]) }
func (w *snapWriter) u64(v uint64) { binary.LittleEndian.PutUint64(w.buf[:8], v); w.bytes(w.buf[:8]) }
func (w *snapWriter) str(s string) { w.u16(uint16(len(s))); w.bytes([]byte(s)) }

// snapshot is a decoded snapshot file.
type snapshot struct {
	pos    int64
	at     time.Time
	anchor []byte
	names  *interned
	tables [shardCount]table
	exact  []crossroads.Integration
}

// readSnapshot decodes and checks a snapshot: its checksum, and that every
// index and count is in range, so that a damaged file is refused rather
// than trusted.
func readSnapshot(data []byte) (*snapshot, error) {
	if len(data) < len(snapshotMagic)+16+sha256.Size || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a snapshot", errSnapshot)
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); string(got[:]) != string(sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", errSnapshot)
	}
	r := &snapReader{b: body[len(snapshotMagic):]}
	s := &snapshot{pos: int64(r.u64()), at: time.Unix(0, int64(r.u64()))}
	s.anchor = r.next(r.count(1))
	names := &interned{parts: map[string]uint16{}, caps: map[capacityName]uint16{}}
	np := r.count(2)
	if np == 0 || np > 0x10000 {
		return nil, fmt.Errorf("%w: %d participants", errSnapshot, np)
	}
	for i := 0; i < np && r.err == nil; i++ {
		p := r.str()
		names.partOf = append(names.partOf, p)
		if i > 0 {
			names.parts[p] = uint16(i)
		}
	}
	nc := r.count(8)
	if nc == 0 || nc > 0x10000 {
		return nil, fmt.Errorf("%w: %d capacities", errSnapshot, nc)
	}
	for i := 0; i < nc && r.err == nil; i++ {
		c := capacityName{r.str(), r.str(), r.str()}
		canon := r.u16()
		if int(canon) > i {
			return nil, fmt.Errorf("%w: capacity %d", errSnapshot, i)
		}
		names.capOf = append(names.capOf, c)
		names.canonOf = append(names.canonOf, canon)
		if i > 0 {
			names.caps[c] = uint16(i)
		}
	}
	if r.err == nil && (len(names.parts) != np-1 || len(names.caps) != nc-1) {
		return nil, fmt.Errorf("%w: duplicate names", errSnapshot)
	}
	s.names = names
	for i := range s.tables {
		size, n := r.count(16), int(r.u32())
		if r.err != nil {
			break
		}
		if n >= size && size > 0 || n > size {
			return nil, fmt.Errorf("%w: shard %d overfull", errSnapshot, i)
		}
		t := table{slots: newSlots(size)}
		for j := range t.slots {
			c := slot{lo: r.u32(), hi: r.u32(), part: r.u16(), capacity: r.u16(), from: r.u16(), to: r.u16()}
			if c.part == 0 {
				if c != (slot{}) {
					return nil, fmt.Errorf("%w: shard %d", errSnapshot, i)
				}
				continue
			}
			if int(c.part) >= np || c.capacity == 0 || int(c.capacity) >= nc || shardOf(c.key()) != uint64(i) {
				return nil, fmt.Errorf("%w: shard %d slot %d", errSnapshot, i, j)
			}
			t.slots[j] = c
			t.n++
		}
		if r.err == nil && t.n != n {
			return nil, fmt.Errorf("%w: shard %d holds %d slots, says %d", errSnapshot, i, t.n, n)
		}
		s.tables[i] = t
	}
	ne := r.count(4)
	for i := 0; i < ne && r.err == nil; i++ {
		b := r.next(r.count(1))
		var in crossroads.Integration
		if r.err == nil {
			if err := json.Unmarshal(b, &in); err != nil {
				return nil, fmt.Errorf("%w: exact integration %d: %v", errSnapshot, i, err)
			}
			s.exact = append(s.exact, in)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", errSnapshot, r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errSnapshot, len(r.b))
	}
	return s, nil
}

type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *snapReader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *snapReader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *snapReader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *snapReader) str() string { return string(r.next(int(r.u16()))) }

// count reads a uint32 count of items of at least each bytes, refusing one
// the rest of the file cannot hold (no allocation from a forged count).
func (r *snapReader) count(each int) int {
	n := int(r.u32())
	if r.err == nil && n > len(r.b)/each {
		r.err = fmt.Errorf("count %d beyond the file", n)
		return 0
	}
	return n
}

// OpenSnapshot is Open, starting from the snapshot in file when it is
// usable (see WriteSnapshot): the feed is then replayed from the
// snapshot's position instead of every integration being read. It reports
// whether the snapshot was used; a snapshot that is not is no error.
func OpenSnapshot(ctx context.Context, store crossroads.RegisterStore, file string) (*Directory, bool, error) {
	s, err := loadSnapshot(ctx, store, file)
	if err != nil {
		d, err := Open(ctx, store)
		return d, false, err
	}
	d := newDirectory(store)
	if err := d.reloadRegisters(ctx); err != nil {
		return nil, false, err
	}
	d.names.cur.Store(s.names)
	for i := range d.shards {
		d.shards[i].t = s.tables[i]
	}
	for _, in := range s.exact {
		d.put(in)
	}
	d.changes = s.pos
	if _, err := d.RefreshIntegrations(ctx); err != nil {
		return nil, false, fmt.Errorf("load integrations: replay after the snapshot: %w", err)
	}
	return d, true, nil
}

// loadSnapshot reads file and checks that it may be used against store:
// young enough, and at a feed position the store has reached.
func loadSnapshot(ctx context.Context, store crossroads.RegisterStore, file string) (*snapshot, error) {
	if file == "" {
		return nil, errSnapshot
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s, err := readSnapshot(data)
	if err != nil {
		return nil, err
	}
	if age := time.Since(s.at); age > MaxSnapshotAge || age < -time.Minute {
		return nil, fmt.Errorf("%w: %s old", errSnapshot, age.Round(time.Second))
	}
	last, err := store.LastIntegrationChange(ctx)
	if err != nil {
		return nil, err
	}
	if s.pos > last || s.pos <= 0 {
		return nil, fmt.Errorf("%w: feed position %d, the store's is %d", errSnapshot, s.pos, last)
	}
	d := &Directory{store: store}
	anchor, err := d.anchor(ctx, s.pos)
	if err != nil {
		return nil, err
	}
	if string(anchor) != string(s.anchor) {
		return nil, fmt.Errorf("%w: the store's change %d differs (another store, or one restored)", errSnapshot, s.pos)
	}
	return s, nil
}
