package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors returned (wrapped) by Witness.AddCheckpoint and Client.AddCheckpoint.
var (
	ErrUnknownLog   = errors.New("witness: unknown log")                             // 404
	ErrBadSignature = errors.New("witness: no valid checkpoint signature")           // 403
	ErrConflict     = errors.New("witness: old size does not match")                 // 409 with a size
	ErrFork         = errors.New("witness: same size but different root hash")       // 409, size == old size
	ErrInconsistent = errors.New("witness: consistency proof does not verify")       // 422
	ErrRejected     = errors.New("witness: request rejected with an unknown status") // anything else
)

// maxResponseSize bounds an add-checkpoint response body.
const maxResponseSize = 64 << 10

// ConflictError is returned by Client.AddCheckpoint when the witness answers
// 409 Conflict with its latest cosigned size. If Size differs from the old
// size sent, retry with a consistency proof from Size. If it equals it, the
// witness cosigned another root hash at this size: a fork (errors.Is(err,
// ErrFork)).
type ConflictError struct {
	Size uint64
	Fork bool
}

func (e *ConflictError) Error() string {
	if e.Fork {
		return fmt.Sprintf("witness: conflict: witness cosigned another root hash at size %d", e.Size)
	}
	return fmt.Sprintf("witness: conflict: witness's latest cosigned size is %d", e.Size)
}

// Is makes errors.Is(err, ErrConflict) (and ErrFork for forks) hold.
func (e *ConflictError) Is(target error) bool {
	return target == ErrConflict || e.Fork && target == ErrFork
}

// StatusError is returned by Client.AddCheckpoint for non-200 answers other
// than a 409 with a size. It unwraps to the matching sentinel error.
type StatusError struct {
	StatusCode int
	Body       string // first bytes of the response body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness: add-checkpoint: %s: %s", http.StatusText(e.StatusCode), e.Body)
}

func (e *StatusError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusNotFound:
		return ErrUnknownLog
	case http.StatusForbidden:
		return ErrBadSignature
	case http.StatusBadRequest:
		return ErrMalformed
	case http.StatusConflict:
		return ErrConflict
	case http.StatusUnprocessableEntity:
		return ErrInconsistent
	}
	return ErrRejected
}

// Client submits checkpoints to a tlog-witness.
type Client struct {
	// URL is the witness's submission prefix; requests go to URL + "/add-checkpoint".
	URL string
	// HTTP defaults to http.DefaultClient.
	HTTP *http.Client
	// Verifier, if set, is the witness's cosignature verifier: returned
	// signatures from other keys are dropped, and AddCheckpoint fails unless
	// one from Verifier is valid.
	Verifier note.Verifier
}

// AddCheckpoint submits a signed checkpoint with a consistency proof from
// oldSize and returns the witness's cosignatures, ready for MergeSignatures.
// On 409 Conflict it returns a *ConflictError with the witness's size.
func (c *Client) AddCheckpoint(ctx context.Context, oldSize uint64, proof []tlog.Hash, signedCheckpoint []byte) ([]note.Signature, error) {
	text, _, err := splitNote(signedCheckpoint)
	if err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	body := FormatAddCheckpoint(oldSize, proof, signedCheckpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint: %w", err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint: reading response: %w", err)
	}
	if len(respBody) > maxResponseSize {
		return nil, fmt.Errorf("witness: add-checkpoint: response larger than %d bytes", maxResponseSize)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == SizeContentType {
			s, ok := strings.CutSuffix(string(respBody), "\n")
			size, err := parseSize(s)
			if ok && err == nil {
				return nil, &ConflictError{Size: size, Fork: size == oldSize}
			}
		}
		fallthrough
	default:
		b := respBody
		if len(b) > 512 {
			b = b[:512]
		}
		return nil, &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	sigs, err := ParseSignatureLines(respBody)
	if err != nil {
		return nil, fmt.Errorf("witness: add-checkpoint response: %w", err)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w witness response: no signatures", ErrMalformed)
	}
	if c.Verifier == nil {
		return sigs, nil
	}
	// Keep only valid signatures from the configured witness key, ignoring
	// unknown ones as the protocol requires.
	n, err := note.Open(append(append(bytes.Clone(text), '\n'), respBody...), note.VerifierList(c.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w from %s: %w", ErrNotCosigned, c.Verifier.Name(), err)
	}
	return n.Sigs, nil
}
