package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/audit"
)

func benchRows(n, from int) []*audit.Row {
	rows := make([]*audit.Row, n)
	now := time.Now().UTC()
	for i := range rows {
		ct := make([]byte, 600)
		rand.Read(ct)
		nonce := make([]byte, 32)
		rand.Read(nonce)
		idx := make([]byte, 32)
		rand.Read(idx)
		rows[i] = &audit.Row{
			ExchangeID: fmt.Sprintf("019a%028d", from+i), Time: now, Requester: "ocmw-gent", Provider: "population-register",
			Service: "person-identity", Purpose: "social-aid", Outcome: "allowed", Reason: "allowed",
			SubjectIndex: idx, Period: now.Format(time.DateOnly), Nonce: nonce, Ciphertext: ct, Leaf: make([]byte, 41),
		}
	}
	return rows
}

// BenchmarkAuditInsertBatch measures group-commit transactions of 1 to 128
// records (the audit trail's write per batch), reported per record.
func BenchmarkAuditInsertBatch(b *testing.B) {
	for _, n := range []int{1, 4, 16, 128} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchInsert(b, n) })
	}
}

func benchInsert(b *testing.B, batch int) {
	s, err := OpenAudit(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		rows := benchRows(batch, i*batch)
		b.StartTimer()
		if err := s.InsertBatch(context.Background(), rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/record")
}

// BenchmarkAuditMarkIntegrated measures recording log indexes, per record.
func BenchmarkAuditMarkIntegrated(b *testing.B) {
	s, err := OpenAudit(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 128
	var next int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		rows := benchRows(batch, i*batch)
		if err := s.InsertBatch(context.Background(), rows); err != nil {
			b.Fatal(err)
		}
		marks := make([]audit.Mark, batch)
		for j, r := range rows {
			marks[j] = audit.Mark{Seq: r.Seq, Index: next}
			next++
		}
		b.StartTimer()
		if err := s.MarkIntegrated(context.Background(), marks); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/record")
}
