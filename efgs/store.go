package efgs

import (
	"context"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// Store keeps the gateway's state: registered certificates, download
// batches with their keys and upload audit information, callback
// subscriptions and their pending deliveries. Every method is atomic.
// Implementations: store/sqlite and store/postgres (efgs.go in each),
// checked by store/storetest.EFGS.
type Store interface {
	// PutCertificate inserts or replaces the certificate with c's thumbprint
	// (a replaced one is no longer revoked).
	PutCertificate(ctx context.Context, c crossroads.EFGSCertificate) error
	// RevokeCertificate marks it revoked (ErrNotFound if unknown; revoking
	// twice keeps the first time).
	RevokeCertificate(ctx context.Context, thumbprint string, at time.Time) error
	// Certificate returns the certificate with that thumbprint (ErrNotFound).
	Certificate(ctx context.Context, thumbprint string) (crossroads.EFGSCertificate, error)
	// Certificates lists every certificate, by country, type and thumbprint.
	Certificates(ctx context.Context) ([]crossroads.EFGSCertificate, error)

	// Upload stores u as the next download batch of u.At's UTC day, links
	// the day's previous batch to it and queues its announcement to every
	// callback subscription, in one transaction. It fails with
	// crossroads.ErrConflict if u.Tag was uploaded before, and with
	// *crossroads.EFGSDuplicateKeys, storing nothing, if any key's hash
	// exists already or repeats in u.
	Upload(ctx context.Context, u crossroads.EFGSUpload) (crossroads.EFGSBatch, error)
	// UploadExists reports whether an upload used the tag.
	UploadExists(ctx context.Context, tag string) (bool, error)
	// FirstBatch is the tag of the day's first batch (ErrNotFound).
	FirstBatch(ctx context.Context, day string) (string, error)
	// Batch returns the download batch of that tag (ErrNotFound).
	Batch(ctx context.Context, tag string) (crossroads.EFGSBatch, error)
	// BatchKeys returns the batch's keys in upload order, less those of
	// origin exclude.
	BatchKeys(ctx context.Context, tag, exclude string) ([]crossroads.EFGSKey, error)
	// Erase deletes the batches of days before day (YYYY-MM-DD), their keys
	// and pending announcements, and returns how many batches and keys.
	Erase(ctx context.Context, day string) (batches, keys int64, err error)

	// PutCallback inserts or replaces (URL) a subscription; failures reset.
	PutCallback(ctx context.Context, c crossroads.EFGSCallback) error
	// Callbacks lists a country's subscriptions by id.
	Callbacks(ctx context.Context, country string) ([]crossroads.EFGSCallback, error)
	// DeleteCallback removes a subscription and its pending tasks (ErrNotFound).
	DeleteCallback(ctx context.Context, country, id string) error
	// DueCallbacks returns up to limit tasks whose time has come, oldest first.
	DueCallbacks(ctx context.Context, now time.Time, limit int) ([]crossroads.EFGSCallbackTask, error)
	// CallbackDelivered removes the task and resets its subscription's
	// consecutive failures.
	CallbackDelivered(ctx context.Context, task int64) error
	// CallbackFailed counts a failure of the task's subscription; at
	// maxFailures consecutive ones the subscription and its tasks are
	// removed (removed true), otherwise the task is retried at retryAt.
	CallbackFailed(ctx context.Context, task int64, retryAt time.Time, maxFailures int) (removed bool, err error)

	Close() error
}
