package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxProofLines is the largest number of consistency proof lines a client may
// send in an add-checkpoint request (c2sp.org/tlog-witness).
const MaxProofLines = 63

// ErrMalformed is returned (wrapped) for request bodies, checkpoints and
// notes that do not follow the C2SP formats.
var ErrMalformed = errors.New("witness: malformed")

// Checkpoint is the parsed note text of a C2SP tlog-checkpoint.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       tlog.Hash
	Extensions []string // extension lines, without newlines
}

// String returns the checkpoint's note text (newline terminated).
func (c Checkpoint) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseCheckpoint parses a checkpoint note text (the part of the note before
// the blank line that precedes the signatures, including its final newline).
func ParseCheckpoint(text string) (Checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: text does not end in a newline", ErrMalformed)
	}
	lines := strings.Split(text[:len(text)-1], "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: %d lines, want at least 3", ErrMalformed, len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return Checkpoint{}, fmt.Errorf("%w checkpoint: line %d is empty", ErrMalformed, i+1)
		}
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: tree size: %w", ErrMalformed, err)
	}
	root, err := parseHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: root hash: %w", ErrMalformed, err)
	}
	c := Checkpoint{Origin: lines[0], Size: size, Root: root}
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	return c, nil
}

// AddCheckpointRequest is the body of a tlog-witness add-checkpoint request.
type AddCheckpointRequest struct {
	OldSize uint64
	Proof   []tlog.Hash
	// Checkpoint is the signed checkpoint note as sent (text, blank line,
	// signature lines).
	Checkpoint []byte
	// Parsed is the checkpoint's note text, parsed. Its signatures have not
	// been verified.
	Parsed Checkpoint
}

// ParseAddCheckpoint parses an add-checkpoint request body: an old size line,
// up to 63 consistency proof lines, an empty line and a signed checkpoint.
// It checks the syntax of the signed note but does not verify signatures.
func ParseAddCheckpoint(body []byte) (*AddCheckpointRequest, error) {
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w request: no old size line", ErrMalformed)
	}
	sizeStr, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return nil, fmt.Errorf("%w request: first line is not an old size line", ErrMalformed)
	}
	oldSize, err := parseSize(string(sizeStr))
	if err != nil {
		return nil, fmt.Errorf("%w request: old size: %w", ErrMalformed, err)
	}
	req := &AddCheckpointRequest{OldSize: oldSize}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("%w request: no empty line before the checkpoint", ErrMalformed)
		}
		if len(line) == 0 {
			break
		}
		if len(req.Proof) == MaxProofLines {
			return nil, fmt.Errorf("%w request: more than %d consistency proof lines", ErrMalformed, MaxProofLines)
		}
		h, err := parseHash(string(line))
		if err != nil {
			return nil, fmt.Errorf("%w request: consistency proof line %d: %w", ErrMalformed, len(req.Proof)+1, err)
		}
		req.Proof = append(req.Proof, h)
	}
	text, _, err := splitNote(rest)
	if err != nil {
		return nil, err
	}
	if req.Parsed, err = ParseCheckpoint(string(text)); err != nil {
		return nil, err
	}
	req.Checkpoint = rest
	return req, nil
}

// FormatAddCheckpoint returns an add-checkpoint request body.
func FormatAddCheckpoint(oldSize uint64, proof []tlog.Hash, signedCheckpoint []byte) []byte {
	var b bytes.Buffer
	b.Grow(len("old 18446744073709551615\n") + len(proof)*45 + 1 + len(signedCheckpoint))
	fmt.Fprintf(&b, "old %d\n", oldSize)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(signedCheckpoint)
	return b.Bytes()
}

// splitNote splits a signed note into its text (ending in a newline) and its
// signature block (one or more newline-terminated lines), checking the
// signature lines' syntax.
func splitNote(msg []byte) (text, sigs []byte, err error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil, nil, fmt.Errorf("%w note: no blank line before the signatures", ErrMalformed)
	}
	text, sigs = msg[:i+1], msg[i+2:]
	if len(sigs) == 0 || sigs[len(sigs)-1] != '\n' {
		return nil, nil, fmt.Errorf("%w note: missing signatures or final newline", ErrMalformed)
	}
	if _, err := ParseSignatureLines(sigs); err != nil {
		return nil, nil, err
	}
	return text, sigs, nil
}

// parseSize parses an ASCII decimal with no leading zeroes that fits in an
// int64 (the range golang.org/x/mod/sumdb/tlog handles).
func parseSize(s string) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q is not a canonical decimal", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a canonical decimal", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxInt64 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n, nil
}

// parseHash decodes a canonical standard base64 SHA-256 hash.
func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	if len(s) != base64.StdEncoding.EncodedLen(tlog.HashSize) {
		return h, fmt.Errorf("hash %q has the wrong length", s)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return h, fmt.Errorf("hash %q is not canonical base64", s)
	}
	copy(h[:], b)
	return h, nil
}
