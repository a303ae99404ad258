package spedemo_test

import (
	"net/http"
	"testing"

	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	spedemo "github.com/crossroads-hub/crossroads/demo/spe"
)

// BenchmarkTusUpload measures tus upload throughput through the hub over
// mTLS: creation, one PATCH of the whole file (sealed segment by segment
// as it arrives, with Upload-Checksum), the whole-file check and digest,
// the audit record. bytes/s is the figure of docs/performance.md.
func BenchmarkTusUpload(b *testing.B) {
	r := demotest.Start(b, demo.Options{People: 2})
	w, err := spedemo.Setup(ctx, r, spedemo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	data := spedemo.Admissions(1, 1_000_000, false, false) // ~21 MB
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, st, err := w.Upload(ctx, spedemo.HolderA, spedemo.DatasetA, data); err != nil || st != http.StatusNoContent {
			b.Fatalf("upload: %d %v", st, err)
		}
	}
}
