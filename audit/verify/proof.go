package verify

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ProofHeader is the first line of a C2SP tlog-proof.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// Proof is a C2SP tlog-proof: an entry index, an inclusion proof and the
// signed checkpoint it is relative to, plus optional opaque extra data.
type Proof struct {
	Extra      []byte // nil when absent
	Index      int64
	Hashes     tlog.RecordProof
	Checkpoint []byte // signed note
}

// Marshal formats the proof.
func (p *Proof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(ProofHeader + "\n")
	if p.Extra != nil {
		fmt.Fprintf(&b, "extra %s\n", base64.StdEncoding.EncodeToString(p.Extra))
	}
	fmt.Fprintf(&b, "index %d\n", p.Index)
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ParseProof parses a C2SP tlog-proof.
func ParseProof(raw []byte) (*Proof, error) {
	r := bufio.NewReader(bytes.NewReader(raw))
	line := func() (string, error) {
		s, err := r.ReadString('\n')
		if err != nil {
			return "", errors.New("tlog-proof: truncated")
		}
		return strings.TrimSuffix(s, "\n"), nil
	}
	l, err := line()
	if err != nil {
		return nil, err
	}
	if l != ProofHeader {
		return nil, errors.New("tlog-proof: not a c2sp.org/tlog-proof@v1")
	}
	p := &Proof{}
	if l, err = line(); err != nil {
		return nil, err
	}
	if e, ok := strings.CutPrefix(l, "extra "); ok {
		if p.Extra, err = base64.StdEncoding.DecodeString(e); err != nil {
			return nil, fmt.Errorf("tlog-proof: extra: %w", err)
		}
		if l, err = line(); err != nil {
			return nil, err
		}
	}
	is, ok := strings.CutPrefix(l, "index ")
	if !ok {
		return nil, errors.New("tlog-proof: missing index")
	}
	if p.Index, err = strconv.ParseInt(is, 10, 64); err != nil || p.Index < 0 || strconv.FormatInt(p.Index, 10) != is {
		return nil, errors.New("tlog-proof: malformed index")
	}
	for {
		if l, err = line(); err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return nil, errors.New("tlog-proof: malformed hash")
		}
		p.Hashes = append(p.Hashes, tlog.Hash(h))
	}
	p.Checkpoint = raw[len(raw)-r.Buffered():]
	return p, nil
}

// CheckProof verifies the checkpoint's signature with v and the inclusion
// of the leaf whose RFC 6962 hash is leafHash at the proof's index, and
// returns the checkpoint.
func CheckProof(p *Proof, v note.Verifier, leafHash tlog.Hash) (Checkpoint, error) {
	c, err := OpenCheckpoint(p.Checkpoint, v)
	if err != nil {
		return c, err
	}
	if p.Index >= c.N {
		return c, fmt.Errorf("index %d outside tree of size %d", p.Index, c.N)
	}
	if err := tlog.CheckRecord(p.Hashes, c.N, c.Hash, p.Index, leafHash); err != nil {
		return c, fmt.Errorf("inclusion proof: %w", err)
	}
	return c, nil
}
