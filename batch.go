package crossroads

import (
	"encoding/json"
	"time"
)

// Batch consultation (seed 001: the batch service of every information
// server; issue 10 item 4). A participant submits many exchanges at once
// as NDJSON (POST /v1/batches); the hub stores them durably, answers 202,
// and runs each item through the same pipeline as an interactive call.
// See docs/batch.md.

// Reasons of the batch API's problem details.
const (
	ReasonBatchEmpty       Reason = "batch-empty"        // 400: the submission holds no item
	ReasonBatchTooLarge    Reason = "batch-too-large"    // 413: more items or bytes than the hub accepts in one batch
	ReasonBatchInvalidItem Reason = "batch-invalid-item" // 400: a line is not a valid item (problems name the lines)
	ReasonBatchNotFound    Reason = "batch-not-found"    // 404: no such batch, or not the caller's
	ReasonBatchExpired     Reason = "batch-expired"      // 410: the batch's results were erased after the retention period
	ReasonBatchUnavailable Reason = "batch-unavailable"  // 503: the batch store cannot be read or written; nothing was accepted
)

// Batch states.
const (
	BatchHeld    = "held"    // stored, its submission not yet recorded: never run, never shown
	BatchRunning = "running" // accepted: items are being run
	BatchDone    = "done"    // every item has its result
	BatchExpired = "expired" // results erased after the retention period
)

// BatchItem is one line of a submission: an exchange to run as the
// submitter. The operation is named either as "serviceId/operationId"
// (Operation, with the path parameters in Parameters, "subject" among
// them) or by its path (Service, Method, Path relative to the service).
type BatchItem struct {
	Operation  string            `json:"operation,omitempty"`
	Service    string            `json:"service,omitempty"`
	Method     string            `json:"method,omitempty"`
	Path       string            `json:"path,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// Query holds the query parameters (each one value or several).
	Query         map[string][]string `json:"query,omitempty"`
	Purpose       string              `json:"purpose"`
	User          string              `json:"user"`
	Body          json.RawMessage     `json:"body,omitempty"` // sent as application/json
	CorrelationID string              `json:"correlationId,omitempty"`
}

// Batch is a submitted batch with its progress.
type Batch struct {
	ID          string        `json:"id"`
	Participant string        `json:"participant"`
	User        string        `json:"user,omitempty"` // Crossroads-User of the submission
	Serial      string        `json:"-"`              // the submitter certificate's serial
	Certificate []byte        `json:"-"`              // its DER, to run the items as the submitter
	State       string        `json:"state"`
	Created     time.Time     `json:"created"`
	Finished    time.Time     `json:"finished,omitzero"`
	Expires     time.Time     `json:"expires,omitzero"` // results erased then (set when done)
	Retention   time.Duration `json:"-"`
	Total       int           `json:"total"`
	Done        int           `json:"done"`
	Allowed     int           `json:"allowed"`
	Denied      int           `json:"denied"`
	Failed      int           `json:"failed"`
}

// BatchResult is the outcome of one item: a line of the results.
type BatchResult struct {
	Seq           int    `json:"seq"` // 1-based line of the submission
	CorrelationID string `json:"correlationId,omitempty"`
	Outcome       string `json:"outcome"` // OutcomeAllowed, -Denied, -Failed
	Status        int    `json:"status"`
	Reason        Reason `json:"reason"`
	ExchangeID    string `json:"exchangeId,omitempty"`
	Seal          string `json:"seal,omitempty"`    // the hub's seal over the released body (allowed only)
	Receipt       string `json:"receipt,omitempty"` // the audit receipt of the item's record
	ContentType   string `json:"contentType,omitempty"`
	// Released is what the pipeline released for the item (the sealed body
	// or the problem details); on the wire it is Body when it is compact
	// JSON, BodyBase64 otherwise, so that the seal verifies over the bytes.
	Released   []byte          `json:"-"`
	Body       json.RawMessage `json:"body,omitempty"`
	BodyBase64 []byte          `json:"bodyBase64,omitempty"`
	Attempts   int             `json:"attempts,omitempty"`
	Completed  time.Time       `json:"completed"`
}

// BatchClaim is a leased batch item (the batch store's claim).
type BatchClaim struct {
	Batch       string
	Seq         int
	Participant string
	Token       string // the lease's token: completing or retrying needs it
	Attempts    int    // including this one
	Item        []byte // the item as stored (JSON of BatchItem)
}
