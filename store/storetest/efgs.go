package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
)

// EFGSStore is the federation gateway's store (efgs.Store, without Close).
type EFGSStore interface {
	PutCertificate(_ context.Context, c crossroads.EFGSCertificate) error
	RevokeCertificate(_ context.Context, thumbprint string, at time.Time) error
	Certificate(_ context.Context, thumbprint string) (crossroads.EFGSCertificate, error)
	Certificates(_ context.Context) ([]crossroads.EFGSCertificate, error)
	Upload(_ context.Context, u crossroads.EFGSUpload) (crossroads.EFGSBatch, error)
	UploadExists(_ context.Context, tag string) (bool, error)
	FirstBatch(_ context.Context, day string) (string, error)
	Batch(_ context.Context, tag string) (crossroads.EFGSBatch, error)
	BatchKeys(_ context.Context, tag, exclude string) ([]crossroads.EFGSKey, error)
	Erase(_ context.Context, day string) (batches, keys int64, err error)
	PutCallback(_ context.Context, c crossroads.EFGSCallback) error
	Callbacks(_ context.Context, country string) ([]crossroads.EFGSCallback, error)
	DeleteCallback(_ context.Context, country, id string) error
	DueCallbacks(_ context.Context, now time.Time, limit int) ([]crossroads.EFGSCallbackTask, error)
	CallbackDelivered(_ context.Context, task int64) error
	CallbackFailed(_ context.Context, task int64, retryAt time.Time, maxFailures int) (bool, error)
}

// Times of microsecond precision (PostgreSQL's).
var (
	e1 = time.Date(2025, 3, 15, 9, 30, 1, 123456000, time.UTC)
	e2 = time.Date(2027, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

func efgsKey(origin string, n int) crossroads.EFGSKey {
	h := sha256.Sum256(fmt.Appendf(nil, "%s-%d", origin, n))
	return crossroads.EFGSKey{Hash: h[:], Origin: origin, Proto: fmt.Appendf(nil, "proto %s %d", origin, n)}
}

func efgsUpload(tag, country string, at time.Time, keys ...crossroads.EFGSKey) crossroads.EFGSUpload {
	return crossroads.EFGSUpload{Tag: tag, Country: country, UploaderThumbprint: "auth-" + country, SigningThumbprint: "sign-" + country,
		Signature: "sig-" + tag, ContentType: "application/protobuf; version=1.0", At: at, Keys: keys}
}

// TestEFGSStore checks an efgs.Store. The contract: certificates by
// thumbprint, revocation keeping the first time; each upload one download
// batch tagged yyyyMMdd-N (N from 1 per UTC day), linked from the day's
// previous one; an upload tag used twice is ErrConflict; a key hash stored
// already or repeated makes the whole upload EFGSDuplicateKeys and stores
// nothing; keys come back in order less the excluded origin; callbacks are
// queued for every subscription, retried, removed after maxFailures
// consecutive failures; Erase drops days before the given one.
func TestEFGSStore(t *testing.T, open func(t *testing.T) EFGSStore) {
	t.Run("certificates", func(t *testing.T) {
		s := open(t)
		c := crossroads.EFGSCertificate{Thumbprint: "ab12", Country: "DE", Type: crossroads.EFGSCertSigning, PEM: "pem", Signature: "ta", CreatedAt: e1}
		if err := s.PutCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCertificate(ctx, crossroads.EFGSCertificate{Thumbprint: "cd34", Country: "DE", Type: crossroads.EFGSCertCallback, PEM: "pem2", Host: "cb.example.de", CreatedAt: e1}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Certificate(ctx, "ab12")
		if err != nil || got.Country != "DE" || got.Type != crossroads.EFGSCertSigning || got.Signature != "ta" || !got.RevokedAt.IsZero() || !got.CreatedAt.Equal(e1) {
			t.Fatalf("Certificate = %+v, %v", got, err)
		}
		if _, err := s.Certificate(ctx, "nope"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Errorf("unknown certificate: %v", err)
		}
		if err := s.RevokeCertificate(ctx, "ab12", e2); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeCertificate(ctx, "ab12", e2.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Certificate(ctx, "ab12"); !got.RevokedAt.Equal(e2) {
			t.Errorf("revoked at %v, want %v (the first time)", got.RevokedAt, e2)
		}
		if err := s.RevokeCertificate(ctx, "nope", e2); !errors.Is(err, crossroads.ErrNotFound) {
			t.Errorf("revoke unknown: %v", err)
		}
		all, err := s.Certificates(ctx)
		if err != nil || len(all) != 2 || all[0].Type != crossroads.EFGSCertCallback || all[0].Host != "cb.example.de" {
			t.Errorf("Certificates = %+v, %v", all, err)
		}
		if err := s.PutCertificate(ctx, c); err != nil { // re-registration lifts the revocation
			t.Fatal(err)
		}
		if got, _ := s.Certificate(ctx, "ab12"); !got.RevokedAt.IsZero() {
			t.Errorf("re-registered certificate still revoked")
		}
	})
	t.Run("batches", func(t *testing.T) {
		s := open(t)
		day := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		b1, err := s.Upload(ctx, efgsUpload("de-1", "DE", day, efgsKey("DE", 1), efgsKey("DE", 2)))
		if err != nil {
			t.Fatal(err)
		}
		if b1.Tag != "20261130-1" || b1.Seq != 1 || b1.Day != "2026-11-30" || b1.Amount != 2 {
			t.Fatalf("first batch %+v", b1)
		}
		b2, err := s.Upload(ctx, efgsUpload("fr-1", "FR", day.Add(time.Hour), efgsKey("FR", 1)))
		if err != nil || b2.Tag != "20261130-2" {
			t.Fatalf("second batch %+v, %v", b2, err)
		}
		b3, err := s.Upload(ctx, efgsUpload("fr-2", "FR", day.Add(24*time.Hour), efgsKey("FR", 2)))
		if err != nil || b3.Tag != "20261201-1" {
			t.Fatalf("next day's batch %+v, %v", b3, err)
		}
		if got, _ := s.Batch(ctx, b1.Tag); got.Next != b2.Tag || got.UploadTag != "de-1" || got.Country != "DE" ||
			got.SigningThumbprint != "sign-DE" || got.UploaderThumbprint != "auth-DE" || got.Signature != "sig-de-1" || !got.CreatedAt.Equal(day) {
			t.Errorf("batch 1 = %+v", got)
		}
		if got, _ := s.Batch(ctx, b2.Tag); got.Next != "" {
			t.Errorf("the day's last batch links to %q", got.Next)
		}
		if _, err := s.Batch(ctx, "20261130-9"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Errorf("unknown batch: %v", err)
		}
		if tag, err := s.FirstBatch(ctx, "2026-11-30"); err != nil || tag != b1.Tag {
			t.Errorf("FirstBatch = %q, %v", tag, err)
		}
		if _, err := s.FirstBatch(ctx, "2026-11-29"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Errorf("FirstBatch of an empty day: %v", err)
		}
		if _, err := s.Upload(ctx, efgsUpload("de-1", "DE", day, efgsKey("DE", 3))); !errors.Is(err, crossroads.ErrConflict) {
			t.Errorf("tag reused: %v", err)
		}
		if ok, _ := s.UploadExists(ctx, "de-1"); !ok {
			t.Errorf("UploadExists(de-1) = false")
		}
		if ok, _ := s.UploadExists(ctx, "de-9"); ok {
			t.Errorf("UploadExists(de-9) = true")
		}
		_, err = s.Upload(ctx, efgsUpload("de-2", "DE", day, efgsKey("DE", 4), efgsKey("DE", 1), efgsKey("DE", 5), efgsKey("DE", 5)))
		var dup *crossroads.EFGSDuplicateKeys
		if !errors.As(err, &dup) || fmt.Sprint(dup.Fresh) != "[0 2]" || fmt.Sprint(dup.Duplicate) != "[1 3]" {
			t.Fatalf("duplicate keys: %v %+v", err, dup)
		}
		if ok, _ := s.UploadExists(ctx, "de-2"); ok {
			t.Errorf("an upload with duplicates was stored")
		}
		if _, err := s.Upload(ctx, efgsUpload("de-3", "DE", day, efgsKey("DE", 4))); err != nil {
			t.Errorf("the fresh key of a refused upload cannot be uploaded: %v", err)
		}
		keys, err := s.BatchKeys(ctx, b1.Tag, "FR")
		if err != nil || len(keys) != 2 || string(keys[0].Proto) != "proto DE 1" || string(keys[1].Proto) != "proto DE 2" || keys[0].Origin != "DE" {
			t.Errorf("BatchKeys = %+v, %v", keys, err)
		}
		if keys, _ := s.BatchKeys(ctx, b1.Tag, "DE"); len(keys) != 0 {
			t.Errorf("own keys not excluded: %d", len(keys))
		}
		nb, nk, err := s.Erase(ctx, "2026-12-01")
		if err != nil || nb != 3 || nk != 4 {
			t.Errorf("Erase = %d, %d, %v", nb, nk, err)
		}
		if _, err := s.Batch(ctx, b1.Tag); !errors.Is(err, crossroads.ErrNotFound) {
			t.Errorf("erased batch: %v", err)
		}
		if _, err := s.Batch(ctx, b3.Tag); err != nil {
			t.Errorf("batch of the kept day: %v", err)
		}
	})
	t.Run("callbacks", func(t *testing.T) {
		s := open(t)
		if cs, err := s.Callbacks(ctx, "DE"); err != nil || cs == nil || len(cs) != 0 {
			t.Fatalf("no callbacks: %#v, %v", cs, err)
		}
		for _, c := range []crossroads.EFGSCallback{{Country: "DE", ID: "b", URL: "https://x.de/b"}, {Country: "DE", ID: "a", URL: "https://x.de/a"}, {Country: "FR", ID: "a", URL: "https://x.fr/a"}} {
			if err := s.PutCallback(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutCallback(ctx, crossroads.EFGSCallback{Country: "DE", ID: "a", URL: "https://x.de/a2"}); err != nil {
			t.Fatal(err)
		}
		cs, err := s.Callbacks(ctx, "DE")
		if err != nil || len(cs) != 2 || cs[0].ID != "a" || cs[0].URL != "https://x.de/a2" {
			t.Fatalf("Callbacks = %+v, %v", cs, err)
		}
		b, err := s.Upload(ctx, efgsUpload("e1", "DE", e1, efgsKey("DE", 1)))
		if err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueCallbacks(ctx, e1.Add(-time.Second), 10); len(due) != 0 {
			t.Errorf("tasks due before the batch: %d", len(due))
		}
		due, err := s.DueCallbacks(ctx, e1, 10)
		if err != nil || len(due) != 3 {
			t.Fatalf("DueCallbacks = %+v, %v", due, err)
		}
		for _, d := range due {
			if d.BatchTag != b.Tag || d.Day != b.Day || d.URL == "" {
				t.Errorf("task %+v", d)
			}
		}
		var fr crossroads.EFGSCallbackTask
		for _, d := range due {
			switch {
			case d.Country == "FR":
				fr = d
			case d.CallbackID == "a":
				if err := s.CallbackDelivered(ctx, d.ID); err != nil {
					t.Fatal(err)
				}
			default:
				if err := s.DeleteCallback(ctx, "DE", "b"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.DeleteCallback(ctx, "DE", "b"); !errors.Is(err, crossroads.ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		// FR's fails 3 times: retried later; the 3rd removes it at max 3.
		for i := 1; i <= 3; i++ {
			retry := e1.Add(time.Duration(i) * time.Minute)
			removed, err := s.CallbackFailed(ctx, fr.ID, retry, 3)
			if err != nil || removed != (i == 3) {
				t.Fatalf("failure %d: removed %v, %v", i, removed, err)
			}
			if i < 3 {
				due, _ := s.DueCallbacks(ctx, retry, 10)
				if len(due) != 1 || due[0].ID != fr.ID || due[0].Retries != i {
					t.Fatalf("after failure %d: %+v", i, due)
				}
				if due, _ := s.DueCallbacks(ctx, retry.Add(-time.Second), 10); len(due) != 0 {
					t.Fatalf("retried before its time: %+v", due)
				}
			}
		}
		if cs, _ := s.Callbacks(ctx, "FR"); len(cs) != 0 {
			t.Errorf("subscription kept after max failures: %+v", cs)
		}
		if due, _ := s.DueCallbacks(ctx, e2.Add(time.Hour), 10); len(due) != 0 {
			t.Errorf("tasks left: %+v", due)
		}
		// A delivery resets the consecutive failures.
		b2, _ := s.Upload(ctx, efgsUpload("e2", "DE", e2, efgsKey("DE", 2)))
		b3, _ := s.Upload(ctx, efgsUpload("t3", "DE", e2, efgsKey("DE", 3)))
		due, _ = s.DueCallbacks(ctx, e2, 10)
		if len(due) != 2 || due[0].BatchTag != b2.Tag || due[1].BatchTag != b3.Tag {
			t.Fatalf("due = %+v", due)
		}
		if removed, err := s.CallbackFailed(ctx, due[0].ID, e2, 2); removed || err != nil {
			t.Fatalf("first failure: %v %v", removed, err)
		}
		if err := s.CallbackDelivered(ctx, due[1].ID); err != nil {
			t.Fatal(err)
		}
		if removed, err := s.CallbackFailed(ctx, due[0].ID, e2, 2); removed || err != nil {
			t.Errorf("failure after a delivery removed the subscription: %v %v", removed, err)
		}
		if _, err := s.CallbackFailed(ctx, 1<<40, e2, 2); !errors.Is(err, crossroads.ErrNotFound) {
			t.Errorf("unknown task: %v", err)
		}
	})
}
