package spe

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

func key(t testing.TB) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func seal(t testing.TB, k []byte, permit, file string, parts ...[]byte) []byte {
	t.Helper()
	a, err := newAEAD(k)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i, p := range parts {
		out = sealSegment(out, a, permit, file, uint64(i), p)
	}
	return out
}

func open(k []byte, permit, file string, size int64, b []byte) ([]byte, error) {
	o, err := newOpener(bytes.NewReader(b), k, permit, file, size, nil)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(o)
}

func TestSealRoundTripShortSegments(t *testing.T) {
	k := key(t)
	parts := [][]byte{[]byte("region,n\n"), bytes.Repeat([]byte("East,1\n"), 9000), []byte("West,2\n")}
	b := seal(t, k, "p1", "f1", parts...)
	got, err := open(k, "p1", "f1", int64(len(bytes.Join(parts, nil))), b)
	if err != nil || !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestSealRefusesWhatIsNotItsOwn(t *testing.T) {
	k := key(t)
	a, b := []byte("first segment"), []byte("second segment")
	sealed := seal(t, k, "p1", "f1", a, b)
	size := int64(len(a) + len(b))
	for name, tc := range map[string]struct {
		k            []byte
		permit, file string
		size         int64
		b            []byte
	}{
		"another workspace's key": {key(t), "p1", "f1", size, sealed},
		"another permit":          {k, "p2", "f1", size, sealed},
		"another file":            {k, "p1", "f2", size, sealed},
		"cut after a segment":     {k, "p1", "f1", size, sealed[:4+12+len(a)+16]},
		"cut inside a segment":    {k, "p1", "f1", size, sealed[:len(sealed)-3]},
		"reordered":               {k, "p1", "f1", size, append(seal(t, k, "p1", "f1", b)[0:0:0], append(sealed[4+12+len(a)+16:], sealed[:4+12+len(a)+16]...)...)},
		"flipped bit":             {k, "p1", "f1", size, flip(sealed, 20)},
		"size too small":          {k, "p1", "f1", size - 1, sealed},
		"bad length":              {k, "p1", "f1", size, append([]byte{0xff, 0xff, 0xff, 0xff}, sealed[4:]...)},
	} {
		if _, err := open(tc.k, tc.permit, tc.file, tc.size, tc.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestOpenerStopsWhenHalted(t *testing.T) {
	k := key(t)
	sealed := seal(t, k, "p", "f", make([]byte, SegmentSize), make([]byte, 10))
	calls := 0
	o, _ := newOpener(bytes.NewReader(sealed), k, "p", "f", SegmentSize+10, func() error {
		calls++
		if calls > 1 {
			return ErrHalted
		}
		return nil
	})
	if _, err := io.ReadAll(o); !errors.Is(err, ErrHalted) {
		t.Fatalf("read after a halt: %v", err)
	}
}

func BenchmarkSeal(b *testing.B) {
	k := key(b)
	a, _ := newAEAD(k)
	plain := make([]byte, SegmentSize)
	var out []byte
	b.SetBytes(SegmentSize)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		out = sealSegment(out[:0], a, "permit", "file", uint64(i), plain)
	}
}

func BenchmarkOpen(b *testing.B) {
	k := key(b)
	const segs = 16
	parts := make([][]byte, segs)
	for i := range parts {
		parts[i] = make([]byte, SegmentSize)
	}
	sealed := seal(b, k, "p", "f", parts...)
	b.SetBytes(segs * SegmentSize)
	b.ReportAllocs()
	for b.Loop() {
		o, _ := newOpener(bytes.NewReader(sealed), k, "p", "f", segs*SegmentSize, nil)
		if _, err := io.Copy(io.Discard, o); err != nil {
			b.Fatal(err)
		}
	}
}
