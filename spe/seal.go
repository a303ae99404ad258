package spe

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Files in a workspace are sealed in segments: up to SegmentSize bytes of
// plaintext (shorter where an upload was interrupted or a chunk ended) are
// sealed with AES-256-GCM under the
// workspace key and written as a 4-byte big-endian length, a 12-byte
// random nonce and the ciphertext with its tag. The additional data binds
// every segment to its workspace, its file and its position, so that no
// segment can be moved, reordered or spliced from another file or another
// workspace without failing to open (SDR-3, SDR-4, TIR-8); the plaintext
// size, recorded beside the file, catches a file cut after a segment.
const (
	SegmentSize  = 64 << 10
	maxSealedLen = SegmentSize + 12 + 16
)

// ErrCorrupt reports a sealed file that does not open.
var ErrCorrupt = errors.New("spe: sealed file corrupt or not of this workspace")

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("spe: workspace key of %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func segmentAAD(permit, file string, index uint64) []byte {
	b := fmt.Appendf(nil, "crossroads-spe:%s:%s:", permit, file)
	return binary.BigEndian.AppendUint64(b, index)
}

// sealSegment appends the sealed form of plain, segment index of file, to dst.
func sealSegment(dst []byte, aead cipher.AEAD, permit, file string, index uint64, plain []byte) []byte {
	n := 12 + len(plain) + aead.Overhead()
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	nonce := make([]byte, 12)
	rand.Read(nonce)
	dst = append(dst, nonce...)
	return aead.Seal(dst, nonce, plain, segmentAAD(permit, file, index))
}

// opener reads a sealed file's plaintext.
type opener struct {
	r            *bufio.Reader
	aead         cipher.AEAD
	permit, file string
	index        uint64
	buf, plain   []byte
	remaining    int64 // plaintext bytes still expected
	check        func() error
}

// newOpener reads size bytes of plaintext from the sealed stream r; check,
// called before each segment, stops the read when it returns an error (a
// halt, an expiry).
func newOpener(r io.Reader, key []byte, permit, file string, size int64, check func() error) (*opener, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &opener{r: bufio.NewReaderSize(r, maxSealedLen+4), aead: aead, permit: permit, file: file, remaining: size, check: check}, nil
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.remaining == 0 {
			return 0, io.EOF
		}
		if o.check != nil {
			if err := o.check(); err != nil {
				return 0, err
			}
		}
		var hdr [4]byte
		if _, err := io.ReadFull(o.r, hdr[:]); err != nil {
			return 0, fmt.Errorf("%w: truncated", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n < 12+uint32(o.aead.Overhead()) || n > maxSealedLen {
			return 0, fmt.Errorf("%w: bad segment length", ErrCorrupt)
		}
		if cap(o.buf) < int(n) {
			o.buf = make([]byte, n)
		}
		b := o.buf[:n]
		if _, err := io.ReadFull(o.r, b); err != nil {
			return 0, fmt.Errorf("%w: truncated", ErrCorrupt)
		}
		plain, err := o.aead.Open(b[12:12], b[:12], b[12:], segmentAAD(o.permit, o.file, o.index))
		if err != nil {
			return 0, fmt.Errorf("%w: segment %d", ErrCorrupt, o.index)
		}
		if int64(len(plain)) > o.remaining {
			return 0, fmt.Errorf("%w: segment %d of unexpected length", ErrCorrupt, o.index)
		}
		o.index++
		o.remaining -= int64(len(plain))
		o.plain = plain
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}
