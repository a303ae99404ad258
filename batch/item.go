package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/problem"
)

// Limits of a submission.
const (
	DefaultMaxItems = 10_000   // items in one batch
	DefaultMaxBytes = 32 << 20 // bytes of one submission
	MaxLine         = 1 << 20  // bytes of one line (an item's body included)
	maxProblems     = 20       // lines reported in one 400
	maxParams       = 16
	maxQueryNames   = 16
	maxQueryValues  = 16
	maxText         = 128 // purpose, user, correlation id, parameter values (the exchange headers' bound)
	maxPath         = 2048
)

// ParseError is a refused submission: the status (400 or 413), the reason
// and, for invalid lines, the problems naming them ("line 3").
type ParseError struct {
	Status   int
	Reason   crossroads.Reason
	Detail   string
	Problems []problem.Item
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("batch: %s: %s", e.Reason, e.Detail)
}

// Problem returns the problem details of the refusal.
func (e *ParseError) Problem() *problem.Details {
	d := problem.New(e.Status, e.Reason, e.Detail)
	d.Problems = e.Problems
	return d
}

// Parse reads a submission: one JSON object per line (NDJSON; blank lines
// are skipped), at most maxItems items and maxBytes bytes. Every line is
// checked (strict JSON, no unknown members, one of the two operation
// forms, bounded texts); a submission with any invalid line is refused
// whole, naming up to 20 lines. The items come back in line order; item i
// of the slice is item i+1 of the batch.
func Parse(r io.Reader, maxItems int, maxBytes int64) ([]crossroads.BatchItem, error) {
	if maxItems <= 0 {
		maxItems = DefaultMaxItems
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	var items []crossroads.BatchItem
	var probs []problem.Item
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(items) >= maxItems {
			return nil, &ParseError{Status: http.StatusRequestEntityTooLarge, Reason: crossroads.ReasonBatchTooLarge,
				Detail: fmt.Sprintf("a batch holds at most %d items", maxItems)}
		}
		it, err := ParseItem(b)
		if err != nil {
			if len(probs) < maxProblems {
				probs = append(probs, problem.Item{Path: fmt.Sprintf("line %d", line), Message: err.Error()})
			}
			items = append(items, crossroads.BatchItem{}) // counted against the limit
			continue
		}
		items = append(items, it)
	}
	if lr.N <= 0 {
		return nil, &ParseError{Status: http.StatusRequestEntityTooLarge, Reason: crossroads.ReasonBatchTooLarge,
			Detail: fmt.Sprintf("a batch is at most %d bytes", maxBytes)}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Status: http.StatusRequestEntityTooLarge, Reason: crossroads.ReasonBatchTooLarge,
				Detail: fmt.Sprintf("line %d is longer than %d bytes", line+1, MaxLine)}
		}
		return nil, &ParseError{Status: http.StatusBadRequest, Reason: crossroads.ReasonBatchInvalidItem, Detail: "the submission could not be read"}
	}
	if len(probs) > 0 {
		return nil, &ParseError{Status: http.StatusBadRequest, Reason: crossroads.ReasonBatchInvalidItem,
			Detail: "invalid lines: nothing was stored", Problems: probs}
	}
	if len(items) == 0 {
		return nil, &ParseError{Status: http.StatusBadRequest, Reason: crossroads.ReasonBatchEmpty, Detail: "the submission holds no item"}
	}
	return items, nil
}

var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// ParseItem parses and checks one line.
func ParseItem(b []byte) (crossroads.BatchItem, error) {
	var it crossroads.BatchItem
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return it, errors.New("not a JSON object of the item's members")
	}
	if dec.More() {
		return it, errors.New("more than one JSON value on the line")
	}
	if err := checkItem(&it); err != nil {
		return crossroads.BatchItem{}, err
	}
	return it, nil
}

func checkItem(it *crossroads.BatchItem) error {
	switch {
	case it.Operation != "" && (it.Service != "" || it.Path != "" || it.Method != ""):
		return errors.New("name the operation either by operation or by service, method and path, not both")
	case it.Operation != "":
		svc, op, ok := strings.Cut(it.Operation, "/")
		if !ok || !validID(svc) || !validID(op) {
			return errors.New(`operation must be "serviceId/operationId"`)
		}
	case it.Service != "":
		if !validID(it.Service) {
			return errors.New("service is not a service id")
		}
		if it.Method == "" {
			it.Method = http.MethodGet
		}
		if !methods[it.Method] {
			return errors.New("method must be GET, HEAD, POST, PUT, PATCH or DELETE")
		}
		if it.Path != "" && (it.Path[0] != '/' || len(it.Path) > maxPath || hasControl(it.Path)) {
			return errors.New("path must start with / and be at most 2048 characters without control characters")
		}
		if len(it.Parameters) > 0 {
			return errors.New("parameters belong to the operation form; the path form has them in the path")
		}
	default:
		return errors.New("operation (serviceId/operationId) or service and path are required")
	}
	if !validText(it.Purpose) {
		return errors.New("purpose is required (at most 128 characters, no control characters)")
	}
	if !validText(it.User) {
		return errors.New("user is required (at most 128 characters, no control characters)")
	}
	if it.CorrelationID != "" && !validText(it.CorrelationID) {
		return errors.New("correlationId must be at most 128 characters without control characters")
	}
	if len(it.Parameters) > maxParams {
		return fmt.Errorf("at most %d parameters", maxParams)
	}
	for k, v := range it.Parameters {
		if k == "" || len(k) > 32 || hasControl(k) || !validText(v) {
			return fmt.Errorf("parameter %q: name and value must be 1–128 characters without control characters", trunc(k))
		}
	}
	if len(it.Query) > maxQueryNames {
		return fmt.Errorf("at most %d query parameters", maxQueryNames)
	}
	for k, vs := range it.Query {
		if k == "" || len(k) > 64 || hasControl(k) || len(vs) == 0 || len(vs) > maxQueryValues {
			return fmt.Errorf("query parameter %q: a name of 1–64 characters with 1–%d values", trunc(k), maxQueryValues)
		}
		for _, v := range vs {
			if len(v) > maxText || hasControl(v) {
				return fmt.Errorf("query parameter %q: values of at most 128 characters without control characters", trunc(k))
			}
		}
	}
	if len(it.Body) > 0 && bytes.Equal(bytes.TrimSpace(it.Body), []byte("null")) {
		it.Body = nil
	}
	return nil
}

func validID(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '.' || c == '_' || c == '-'))) {
			return false
		}
	}
	return true
}

func validText(s string) bool { return s != "" && len(s) <= maxText && !hasControl(s) }

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func trunc(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
