package crossroads

import (
	"fmt"
	"time"
)

// Federation gateway (issue 11, seed 004): the reasons of its refusals.
// The reference gateway's clients look at status codes only; the reasons
// are for operators and the audit trail.
const (
	ReasonEFGSNotMember          Reason = "efgs-not-member"          // 403: no national backend with a country, or off-boarded
	ReasonEFGSUnknownCertificate Reason = "efgs-unknown-certificate" // 403: the connection's certificate is no registered AUTHENTICATION certificate of the country
	ReasonEFGSBatchTooLarge      Reason = "efgs-batch-too-large"     // 413: more keys than the batch limit
	ReasonEFGSDuplicateTag       Reason = "efgs-duplicate-batch-tag" // 409: the upload's batchTag was used before
	ReasonEFGSBadSignature       Reason = "efgs-bad-signature"       // 400: batchSignature missing, not CMS, or not by a SIGNING certificate of the uploader
	ReasonEFGSWrongOrigin        Reason = "efgs-wrong-origin"        // 400: a key's origin is not the uploader's country
	ReasonEFGSInvalidBatch       Reason = "efgs-invalid-batch"       // 400: the body does not parse, or a key fails the field checks
	ReasonEFGSMediaType          Reason = "efgs-media-type"          // 406/415: not application/protobuf or application/json with a compatible version
	ReasonEFGSGone               Reason = "efgs-date-expired"        // 410: the date is beyond the download window
	ReasonEFGSNoBatch            Reason = "efgs-batch-not-found"     // 404: no batch of that tag (or none on that day)
	ReasonEFGSDateMismatch       Reason = "efgs-date-mismatch"       // 400: the batch is not of the date asked
	ReasonEFGSInvalidCallback    Reason = "efgs-invalid-callback"    // 400: callback id or URL refused
	ReasonEFGSNoCallback         Reason = "efgs-callback-not-found"  // 404: no such callback subscription
	ReasonEFGSStoreFailed        Reason = "efgs-store-failed"        // 500: could not write; retry
)

// Federation gateway record actions (AuditRecord.Action of
// RecordFederation records).
const (
	FederationUpload         = "upload"
	FederationDownload       = "download"
	FederationAuditDownload  = "audit-download"
	FederationCallbackPut    = "callback-put"
	FederationCallbackDelete = "callback-delete"
	FederationCallbackList   = "callback-list"
	FederationCallbackSent   = "callback-sent"
	FederationCallbackFailed = "callback-failed"
	FederationCallbackDrop   = "callback-removed"
	FederationMember         = "member-change"
	FederationErase          = "erase"
)

// Federation gateway certificate types (the reference's).
const (
	EFGSCertAuthentication = "AUTHENTICATION" // the national backend's TLS client certificate
	EFGSCertSigning        = "SIGNING"        // signs its batches (CMS)
	EFGSCertCallback       = "CALLBACK"       // the TLS server certificate of its callback host
)

// EFGSCertificate is a national backend's certificate registered with the
// federation gateway, by thumbprint (SHA-256 of the DER, lower-case hex),
// with the trust anchor's signature over it as the reference stores it.
type EFGSCertificate struct {
	Thumbprint string    `json:"thumbprint" yaml:"thumbprint"`
	Country    string    `json:"country" yaml:"country"`
	Type       string    `json:"type" yaml:"type"`
	PEM        string    `json:"pem" yaml:"pem"`
	Host       string    `json:"host,omitempty" yaml:"host,omitempty"`           // CALLBACK: the host it serves
	Signature  string    `json:"signature,omitempty" yaml:"signature,omitempty"` // trust anchor's, base64
	CreatedAt  time.Time `json:"createdAt" yaml:"-"`
	RevokedAt  time.Time `json:"revokedAt,omitzero" yaml:"-"`
}

// EFGSKey is one uploaded key as stored: its protobuf encoding, its origin
// (downloads leave out the downloader's own) and the hash that makes it
// unique across all batches (SHA-256 of the bytes its signature covers).
type EFGSKey struct {
	Hash   []byte
	Origin string
	Proto  []byte
}

// EFGSUpload is an accepted upload, stored as one download batch.
type EFGSUpload struct {
	Tag                string // the uploader's batchTag (unique)
	Country            string
	UploaderThumbprint string // AUTHENTICATION certificate of the connection
	SigningThumbprint  string
	Signature          string // the batchSignature header as received
	ContentType        string
	At                 time.Time
	Keys               []EFGSKey
}

// EFGSBatch is a download batch: tag yyyyMMdd-N, N counting from 1 each
// UTC day, Next the tag of the day's next batch ("" at the end), with the
// audit information of the upload it holds.
type EFGSBatch struct {
	Tag                string
	Day                string // YYYY-MM-DD
	Seq                int
	Next               string
	CreatedAt          time.Time
	UploadTag          string
	Country            string
	UploaderThumbprint string
	SigningThumbprint  string
	Signature          string
	Amount             int
}

// EFGSDuplicateKeys reports an upload some of whose keys exist already
// (or twice in the batch): nothing was stored. Fresh and Duplicate are
// indexes into the upload's keys (the reference's 207 "201" and "409").
type EFGSDuplicateKeys struct {
	Fresh, Duplicate []int
}

func (e *EFGSDuplicateKeys) Error() string {
	return fmt.Sprintf("%d of %d keys exist already", len(e.Duplicate), len(e.Fresh)+len(e.Duplicate))
}

// EFGSCallback is a callback subscription of a country.
type EFGSCallback struct {
	Country  string `json:"-"`
	ID       string `json:"callbackId"`
	URL      string `json:"url"`
	Failures int    `json:"-"` // consecutive failed deliveries
}

// EFGSCallbackTask is one batch to announce to one subscription.
type EFGSCallbackTask struct {
	ID         int64
	Country    string
	CallbackID string
	URL        string
	BatchTag   string
	Day        string
	Retries    int
}
