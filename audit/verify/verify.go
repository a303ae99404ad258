// Package verify checks a transparency log published in the C2SP
// tlog-tiles layout (checkpoint, hash tiles, entry bundles) and C2SP
// tlog-proof documents, with the standard libraries
// golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note only. It
// depends on no other Crossroads package, so that anyone can audit the
// hub's log with it.
package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of C2SP tlog-tiles hash tiles.
const TileHeight = 8

// TileWidth is the number of hashes in a full tile and of entries in a
// full entry bundle.
const TileWidth = 1 << TileHeight

// Checkpoint is the body of a C2SP tlog-checkpoint.
type Checkpoint struct {
	Origin string
	tlog.Tree
}

// String formats the checkpoint body (without extension lines).
func (c Checkpoint) String() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.N, base64.StdEncoding.EncodeToString(c.Hash[:]))
}

// ParseCheckpoint parses a checkpoint note text (origin, size, root hash,
// then optional extension lines).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return Checkpoint{}, errors.New("checkpoint: need at least three newline-terminated lines")
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	sz := strings.TrimSuffix(lines[1], "\n")
	n, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != sz || origin == "" {
		return Checkpoint{}, errors.New("checkpoint: malformed origin or size")
	}
	h, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(h) != tlog.HashSize {
		return Checkpoint{}, errors.New("checkpoint: malformed root hash")
	}
	return Checkpoint{Origin: origin, Tree: tlog.Tree{N: n, Hash: tlog.Hash(h)}}, nil
}

// OpenCheckpoint verifies a signed checkpoint note against the log's
// verifier (whose name must be the origin) and parses it.
func OpenCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("checkpoint origin %q is not the log's %q", c.Origin, v.Name())
	}
	return c, nil
}

// Source reads the published log. tessera.LogReader and HTTP implement it;
// p is the partial width (0 for a full tile or bundle).
type Source interface {
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// tileReader adapts a Source to tlog.TileReader.
type tileReader struct {
	ctx context.Context
	src Source
}

func (r tileReader) Height() int { return TileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != TileHeight || t.L < 0 || t.W < 1 || t.W > TileWidth {
			return nil, fmt.Errorf("unexpected tile %v", t)
		}
		p := uint8(t.W % TileWidth)
		b, err := r.src.ReadTile(r.ctx, uint64(t.L), uint64(t.N), p)
		if err != nil {
			return nil, fmt.Errorf("tile %d/%d: %w", t.L, t.N, err)
		}
		// A full tile may stand in for a missing partial one.
		if len(b) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %d/%d: %d bytes, want %d", t.L, t.N, len(b), t.W*tlog.HashSize)
		}
		out[i] = b[:t.W*tlog.HashSize]
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// HashReader returns a tlog.HashReader over the source's tiles that
// authenticates every tile against the tree (tlog.TileHashReader).
func HashReader(ctx context.Context, src Source, tree tlog.Tree) tlog.HashReader {
	return tlog.TileHashReader(tree, tileReader{ctx, src})
}

// Consistency checks that the tree old is a prefix of the tree new, with a
// consistency proof built from the source's tiles.
func Consistency(ctx context.Context, src Source, old, new tlog.Tree) error {
	if old.N > new.N {
		return fmt.Errorf("tree shrank from %d to %d", old.N, new.N)
	}
	if old.N == new.N {
		if old.Hash != new.Hash {
			return fmt.Errorf("fork: two roots for size %d", old.N)
		}
		return nil
	}
	if old.N == 0 {
		return nil
	}
	p, err := tlog.ProveTree(new.N, old.N, HashReader(ctx, src, new))
	if err != nil {
		return fmt.Errorf("consistency proof: %w", err)
	}
	if err := tlog.CheckTree(p, new.N, new.Hash, old.N, old.Hash); err != nil {
		return fmt.Errorf("inconsistent trees %d and %d: %w", old.N, new.N, err)
	}
	return nil
}

// Inclusion checks that the leaf with leafHash is at index in tree, with
// an inclusion proof built from the source's tiles.
func Inclusion(ctx context.Context, src Source, tree tlog.Tree, index int64, leafHash tlog.Hash) error {
	if index < 0 || index >= tree.N {
		return fmt.Errorf("index %d outside tree of size %d", index, tree.N)
	}
	p, err := tlog.ProveRecord(tree.N, index, HashReader(ctx, src, tree))
	if err != nil {
		return fmt.Errorf("inclusion proof: %w", err)
	}
	if err := tlog.CheckRecord(p, tree.N, tree.Hash, index, leafHash); err != nil {
		return fmt.Errorf("leaf %d not included: %w", index, err)
	}
	return nil
}

// ParseEntryBundle splits a tlog-tiles entry bundle (each entry a
// big-endian uint16 length followed by the data).
func ParseEntryBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("entry bundle: dangling byte")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, errors.New("entry bundle: truncated entry")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

// Entries returns the entries of the tree, in order, fetched from the
// source's entry bundles; fn (if not nil) is called with each.
func Entries(ctx context.Context, src Source, n int64, fn func(index int64, data []byte) error) error {
	for bi := int64(0); bi*TileWidth < n; bi++ {
		w := min(n-bi*TileWidth, TileWidth)
		raw, err := src.ReadEntryBundle(ctx, uint64(bi), uint8(w%TileWidth))
		if err != nil {
			return fmt.Errorf("entry bundle %d: %w", bi, err)
		}
		es, err := ParseEntryBundle(raw)
		if err != nil {
			return fmt.Errorf("entry bundle %d: %w", bi, err)
		}
		if int64(len(es)) < w {
			return fmt.Errorf("entry bundle %d: %d entries, want %d", bi, len(es), w)
		}
		for j := range w {
			if err := fn(bi*TileWidth+j, es[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Full re-derives the whole tree from the entry bundles, checks that its
// root is the checkpoint's and that every published hash tile is the one
// the entries imply. It returns the leaf hashes in order.
func Full(ctx context.Context, src Source, tree tlog.Tree) ([]tlog.Hash, error) {
	var stored []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("hash %d not computed", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	leaves := make([]tlog.Hash, 0, tree.N)
	err := Entries(ctx, src, tree.N, func(i int64, data []byte) error {
		h := tlog.RecordHash(data)
		leaves = append(leaves, h)
		hs, err := tlog.StoredHashesForRecordHash(i, h, hr)
		if err != nil {
			return err
		}
		stored = append(stored, hs...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	root, err := tlog.TreeHash(tree.N, hr)
	if err != nil {
		return nil, err
	}
	if root != tree.Hash {
		return nil, fmt.Errorf("entries give root %s, checkpoint says %s", root, tree.Hash)
	}
	tr := tileReader{ctx, src}
	for _, t := range tlog.NewTiles(TileHeight, 0, tree.N) {
		want, err := tlog.ReadTileData(t, hr)
		if err != nil {
			return nil, err
		}
		got, err := tr.ReadTiles([]tlog.Tile{t})
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(got[0], want) {
			return nil, fmt.Errorf("tile %d/%d (width %d) does not match the entries", t.L, t.N, t.W)
		}
	}
	return leaves, nil
}
