package audit_test

// The independent verifier: everything after the set-up (a Trail served
// over HTTP) uses only golang.org/x/mod/sumdb/tlog, note, net/http and
// the standard library — no Crossroads code — as an outside auditor would.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestIndependentVerifier(t *testing.T) {
	e := open(t, t.TempDir())
	srv := httptest.NewServer(e.trail.LogHandler())
	defer srv.Close()

	receipts := commitParallel(t, e.trail, 0, 300)
	cp1 := waitSize(t, e.trail, 300)
	receipts = append(receipts, commitParallel(t, e.trail, 300, 230)...)
	waitSize(t, e.trail, 530)

	// --- From here on: no Crossroads code. ---
	base := srv.URL + "/v1/log/"
	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return b
	}
	vkey := strings.TrimSpace(string(get("key")))
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	openCP := func(raw []byte) tlog.Tree {
		t.Helper()
		n, err := note.Open(raw, note.VerifierList(v))
		if err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		lines := strings.Split(n.Text, "\n")
		if len(lines) < 4 || lines[0] != v.Name() {
			t.Fatalf("checkpoint body %q", n.Text)
		}
		size, err := strconv.ParseInt(lines[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		h, err := base64.StdEncoding.DecodeString(lines[2])
		if err != nil || len(h) != 32 {
			t.Fatal("bad root hash")
		}
		return tlog.Tree{N: size, Hash: tlog.Hash(h)}
	}
	old := openCP(cp1)
	cur := openCP(get("checkpoint"))
	if cur.N < 530 || old.N < 300 || old.N > cur.N {
		t.Fatalf("sizes %d, %d", old.N, cur.N)
	}

	nPath := func(n int64) string {
		s := fmt.Sprintf("%03d", n%1000)
		for n /= 1000; n > 0; n /= 1000 {
			s = fmt.Sprintf("x%03d/", n%1000) + s
		}
		return s
	}
	tr := tileReader{get: get, nPath: nPath}
	hr := tlog.TileHashReader(cur, tr)

	// Every entry, from the entry bundles.
	index := map[tlog.Hash]int64{}
	for bi := int64(0); bi*256 < cur.N; bi++ {
		p := ""
		if w := min(cur.N-bi*256, 256); w < 256 {
			p = fmt.Sprintf(".p/%d", w)
		}
		b := get("tile/entries/" + nPath(bi) + p)
		for i := bi * 256; len(b) > 0; i++ {
			l := int(binary.BigEndian.Uint16(b))
			index[tlog.RecordHash(b[2:2+l])] = i
			b = b[2+l:]
		}
	}
	if int64(len(index)) != cur.N {
		t.Fatalf("%d distinct leaves in a tree of %d", len(index), cur.N)
	}

	// Every receipt is signed by the log key and its leaf is included.
	for _, r := range receipts {
		// claims . batch . signature: the claims are a leaf of a batch tree
		// whose root the log key signed.
		parts := strings.Split(r.Token, ".")
		if len(parts) != 3 {
			t.Fatalf("receipt of %s: %d parts", r.ExchangeID, len(parts))
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[0])
		rawBatch, _ := base64.RawURLEncoding.DecodeString(parts[1])
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		var batch struct {
			Index, Size int64
			Root        []byte
			Path        [][]byte
		}
		if err := json.Unmarshal(rawBatch, &batch); err != nil {
			t.Fatal(err)
		}
		rp := make(tlog.RecordProof, len(batch.Path))
		for i, h := range batch.Path {
			rp[i] = tlog.Hash(h)
		}
		if err := tlog.CheckRecord(rp, batch.Size, tlog.Hash(batch.Root), batch.Index, tlog.RecordHash(payload)); err != nil {
			t.Fatalf("receipt of %s: batch path: %v", r.ExchangeID, err)
		}
		msg := fmt.Sprintf("crossroads receipt v2\n%d\n%s\n", batch.Size, base64.StdEncoding.EncodeToString(batch.Root))
		if !v.Verify([]byte(msg), sig) {
			t.Fatalf("receipt of %s: bad signature", r.ExchangeID)
		}
		var claims struct {
			ExchangeID string `json:"exchangeId"`
			LeafHash   []byte `json:"leafHash"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil || claims.ExchangeID != r.ExchangeID {
			t.Fatalf("receipt payload %s: %v", payload, err)
		}
		lh := tlog.Hash(claims.LeafHash)
		i, ok := index[lh]
		if !ok {
			t.Fatalf("leaf of %s not in the log", r.ExchangeID)
		}
		proof, err := tlog.ProveRecord(cur.N, i, hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(proof, cur.N, cur.Hash, i, lh); err != nil {
			t.Fatalf("inclusion of %s: %v", r.ExchangeID, err)
		}
	}

	// The earlier checkpoint is a prefix of the current one.
	tp, err := tlog.ProveTree(cur.N, old.N, hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(tp, cur.N, cur.Hash, old.N, old.Hash); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	// And the root re-derives from the leaves.
	root, err := tlog.TreeHash(cur.N, hr)
	if err != nil || root != cur.Hash {
		t.Fatalf("tree hash %v, %v", root, err)
	}
}

// tileReader fetches C2SP tlog-tiles hash tiles (the path has no height
// element, unlike the sumdb tiles of tlog.Tile.Path).
type tileReader struct {
	get   func(string) []byte
	nPath func(int64) string
}

func (r tileReader) Height() int { return 8 }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tl := range tiles {
		p := ""
		if tl.W < 256 {
			p = fmt.Sprintf(".p/%d", tl.W)
		}
		b := r.get(fmt.Sprintf("tile/%d/%s%s", tl.L, r.nPath(tl.N), p))
		if len(b) != tl.W*32 {
			return nil, fmt.Errorf("tile %d/%d: %d bytes", tl.L, tl.N, len(b))
		}
		out[i] = bytes.Clone(b)
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}
