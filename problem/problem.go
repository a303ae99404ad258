// Package problem writes RFC 9457 problem details: the one error format of
// every HTTP answer the hub gives. Details never carry internals (no Go
// errors, paths or stack traces); those go to the log.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/crossroads-hub/crossroads"
)

// ContentType is the media type of problem details.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem object with Crossroads' extension members.
type Details struct {
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Status     int               `json:"status"`
	Detail     string            `json:"detail,omitempty"`
	Instance   string            `json:"instance,omitempty"`
	Reason     crossroads.Reason `json:"reason,omitempty"`
	ExchangeID string            `json:"exchangeId,omitempty"`
	// Problems lists every validation problem, when there are several.
	Problems []Item `json:"problems,omitempty"`
}

// Item is one validation problem.
type Item struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// TypeURI names the problem type of a reason.
func TypeURI(r crossroads.Reason) string {
	if r == "" {
		return "about:blank"
	}
	return "urn:crossroads:problem:" + string(r)
}

// New builds problem details for status and reason.
func New(status int, reason crossroads.Reason, detail string) *Details {
	return &Details{Type: TypeURI(reason), Title: Title(status, reason), Status: status, Detail: detail, Reason: reason}
}

// Write sends p.
func Write(w http.ResponseWriter, p *Details) {
	b, err := json.Marshal(p)
	if err != nil { // cannot happen with these field types
		b = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	w.Write(b)
}

// Error writes a problem for status and reason with a detail message.
func Error(w http.ResponseWriter, status int, reason crossroads.Reason, detail string) {
	Write(w, New(status, reason, detail))
}

var titles = map[crossroads.Reason]string{
	crossroads.ReasonUnknownService:         "Unknown service",
	crossroads.ReasonNoAuthorisation:        "No authorisation covers this exchange",
	crossroads.ReasonPurposeNotCovered:      "Purpose not covered by the authorisation",
	crossroads.ReasonAuthorisationNotActive: "Authorisation not active",
	crossroads.ReasonNoIntegration:          "No file on this person",
	crossroads.ReasonCapacityNotCovered:     "Capacity not covered by the authorisation",
	crossroads.ReasonParticipantSuspended:   "Participant suspended",
	crossroads.ReasonProviderSuspended:      "Provider suspended",
	crossroads.ReasonUnknownParticipant:     "Unknown participant",
	crossroads.ReasonInvalidSubject:         "Invalid subject identifier",
	crossroads.ReasonMissingSubject:         "Missing Crossroads-Subject header",
	crossroads.ReasonMissingPurpose:         "Missing Crossroads-Purpose header",
	crossroads.ReasonMissingUser:            "Missing Crossroads-User header",
	crossroads.ReasonInvalidHeader:          "Invalid header",
	crossroads.ReasonInvalidPath:            "Invalid path",
	crossroads.ReasonBodyTooLarge:           "Request body too large",
	crossroads.ReasonInvalidBody:            "Invalid request body",
	crossroads.ReasonCertificateError:       "Client certificate required",
	crossroads.ReasonProviderError:          "Provider error",
	crossroads.ReasonProviderTimeout:        "Provider timeout",
	crossroads.ReasonProviderUnreachable:    "Provider unreachable",
	crossroads.ReasonResponseNotGranted:     "Response not covered by the authorisation",
	crossroads.ReasonAuditUnavailable:       "Audit trail unavailable",
	crossroads.ReasonRateLimited:            "Too many requests",
	crossroads.ReasonOverloaded:             "Hub overloaded",
	crossroads.ReasonUnknownOperation:       "No such operation",
	crossroads.ReasonMethodNotAllowed:       "Method not allowed",
	crossroads.ReasonUnknownParameter:       "Undeclared query parameter",
	crossroads.ReasonInvalidParameter:       "Invalid parameter",
	crossroads.ReasonSubjectMismatch:        "Subject mismatch",
	crossroads.ReasonUnsupportedMedia:       "Unsupported media type",
	crossroads.ReasonOperationNotCovered:    "Operation not covered by the authorisation",
	crossroads.ReasonNotFoundAtProvider:     "Not found at the provider",
	crossroads.ReasonProviderConflict:       "Conflict at the provider",
	crossroads.ReasonProviderUnprocessable:  "Unprocessable at the provider",

	// Mutation push (subscription.go).
	crossroads.ReasonUnknownSubscription: "Unknown subscription",
	crossroads.ReasonNotSubscriber:       "Not the subscriber",
	crossroads.ReasonInvalidSubscription: "Invalid subscription",
	crossroads.ReasonNotPublisher:        "Not the publisher of this mutation",
	crossroads.ReasonUnknownMutation:     "Unknown mutation",
	crossroads.ReasonInvalidMutation:     "Invalid mutation",
	crossroads.ReasonDuplicateMutation:   "Idempotency key used for another mutation",
	crossroads.ReasonInvalidCursor:       "Invalid feed cursor",
	crossroads.ReasonNotPull:             "Not a pull subscription",
	// Batch consultation (batch.go).
	crossroads.ReasonBatchEmpty:       "Empty batch",
	crossroads.ReasonBatchTooLarge:    "Batch too large",
	crossroads.ReasonBatchInvalidItem: "Invalid batch item",
	crossroads.ReasonBatchNotFound:    "Unknown batch",
	crossroads.ReasonBatchExpired:     "Batch results expired",
	crossroads.ReasonBatchUnavailable: "Batch store unavailable",
	// The federation gateway (efgs_domain.go).
	crossroads.ReasonEFGSNotMember:          "Not a member of the federation",
	crossroads.ReasonEFGSUnknownCertificate: "Unregistered authentication certificate",
	crossroads.ReasonEFGSBatchTooLarge:      "Too many keys in the batch",
	crossroads.ReasonEFGSDuplicateTag:       "Batch tag used before",
	crossroads.ReasonEFGSBadSignature:       "Invalid batch signature",
	crossroads.ReasonEFGSWrongOrigin:        "Key origin is not the uploader's country",
	crossroads.ReasonEFGSInvalidBatch:       "Invalid batch",
	crossroads.ReasonEFGSMediaType:          "Unsupported media type or version",
	crossroads.ReasonEFGSGone:               "Date beyond the download window",
	crossroads.ReasonEFGSNoBatch:            "No such batch",
	crossroads.ReasonEFGSDateMismatch:       "Batch not of that date",
	crossroads.ReasonEFGSInvalidCallback:    "Invalid callback",
	crossroads.ReasonEFGSNoCallback:         "No such callback",
	crossroads.ReasonEFGSStoreFailed:        "Gateway store failed",
	// Secure processing (permit.go).
	crossroads.ReasonNoPermit:         "No such data permit",
	crossroads.ReasonPermitNotActive:  "Data permit not active",
	crossroads.ReasonWorkspaceHalted:  "Workspace halted",
	crossroads.ReasonRoleNotPermitted: "Role not permitted",
	crossroads.ReasonFileType:         "File type refused",
	crossroads.ReasonChecksumMismatch: "Checksum mismatch",
	crossroads.ReasonUnknownDataset:   "Unknown dataset",
	crossroads.ReasonInvalidQuery:     "Invalid query",
	crossroads.ReasonNotReleased:      "Result not released",
	crossroads.ReasonBudgetExhausted:  "Privacy budget exhausted",
	crossroads.ReasonReviewConflict:   "Review conflict",
	crossroads.ReasonPeerRefused:      "Peer hub refused",
	crossroads.ReasonNoSuchRelease:    "No such release",
	crossroads.ReasonSPEUnavailable:   "Secure processing unavailable",
	// The console (console.go).
	crossroads.ReasonConsoleCSRF:    "Form token missing or wrong",
	crossroads.ReasonConsoleSession: "Session expired or missing",
	crossroads.ReasonConsoleLogin:   "Login failed",
	crossroads.ReasonConsoleRole:    "Role not allowed here",
}

// Title is the short, fixed summary of a problem type.
func Title(status int, r crossroads.Reason) string {
	if t, ok := titles[r]; ok {
		return t
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// Reasons lists every documented reason (for the OpenAPI document and tests).
func Reasons() []crossroads.Reason {
	out := make([]crossroads.Reason, 0, len(titles))
	for r := range titles {
		out = append(out, r)
	}
	return out
}
