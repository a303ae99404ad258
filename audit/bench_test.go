package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/audit/verify"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkCommitParallel: durable commits with many concurrent callers
// (group commit); reports records/s and bytes on disk per record.
func BenchmarkCommitParallel(b *testing.B) {
	dir := b.TempDir()
	e := open(b, dir)
	var n atomic.Int64
	b.SetParallelism(128) // 128 × GOMAXPROCS concurrent exchanges: group commit needs callers in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.trail.Commit(context.Background(), testRecord(int(n.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	waitSize(b, e.trail, n.Load())
	e.close()
	var size int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	b.ReportMetric(float64(size)/float64(n.Load()), "disk-bytes/record")
}

// BenchmarkIntegration: time from a batch of 1,000 durable records to a
// published checkpoint covering them.
func BenchmarkIntegration(b *testing.B) {
	e := open(b, b.TempDir())
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		commitParallel(b, e.trail, i*1000, 1000)
		b.StartTimer()
		waitSize(b, e.trail, int64((i+1)*1000))
	}
}

func BenchmarkProof(b *testing.B) {
	e := open(b, b.TempDir())
	commitParallel(b, e.trail, 0, 5000)
	waitSize(b, e.trail, 5000)
	ctx := context.Background()
	v := mustVerifier(b, e.trail.VerifierKey())
	b.Run("generate", func(b *testing.B) {
		for i := range b.N {
			if _, err := e.trail.Proof(ctx, testRecord(i%5000).ExchangeID); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, err := e.trail.Proof(ctx, testRecord(1234).ExchangeID)
	if err != nil {
		b.Fatal(err)
	}
	raw := p.Marshal()
	b.Run("verify", func(b *testing.B) {
		for range b.N {
			pr, err := verify.ParseProof(raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := verify.CheckProof(pr, v, tlog.RecordHash(pr.Extra)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSubjectPage: one page of 50 entries of a subject's own view,
// each with its inclusion proof (the citizen's "who looked at my data").
func BenchmarkSubjectPage(b *testing.B) {
	e := open(b, b.TempDir())
	commitParallel(b, e.trail, 0, 10000) // 100 records per subject
	waitSize(b, e.trail, 10000)
	q := audit.SubjectQuery{Subject: testRecord(7).Subject, Records: audit.ExchangeKinds, Limit: 50}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := e.trail.SubjectPage(context.Background(), q)
		if err != nil || len(p.Entries) != 50 || p.NextPageToken == "" || p.Entries[0].Proof == "" {
			b.Fatalf("page: %v", err)
		}
	}
}
