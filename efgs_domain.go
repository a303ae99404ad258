package crossroads

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
