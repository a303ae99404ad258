package witness

import (
	"bytes"
	"context"
	"net/http"
	"testing"
)

func FuzzParseAddCheckpoint(f *testing.F) {
	l := newTestLog(f, "example.org/log")
	f.Add(l.request(f, 0, 5))
	f.Add(l.request(f, 5, 13))
	f.Add(l.request(f, 13, 13))
	f.Add([]byte("old 0\n\nexample.org/log\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\next\n\n— a AAAAAAA=\n"))
	f.Add([]byte("old 00\n\n"))
	f.Add([]byte("old 1\nAAAA\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseAddCheckpoint(body)
		if err != nil {
			return
		}
		// The encoding is canonical: a parsed body re-encodes to itself.
		if got := FormatAddCheckpoint(req.OldSize, req.Proof, req.Checkpoint); !bytes.Equal(got, body) {
			t.Fatalf("re-encoding %q gave %q", body, got)
		}
		if len(req.Proof) > MaxProofLines {
			t.Fatalf("%d proof lines accepted", len(req.Proof))
		}
		text, _, err := splitNote(req.Checkpoint)
		if err != nil {
			t.Fatalf("accepted checkpoint does not split: %v", err)
		}
		if req.Parsed.String() != string(text) {
			t.Fatalf("checkpoint text %q re-encodes as %q", text, req.Parsed.String())
		}
	})
}

func BenchmarkAddCheckpoint(b *testing.B) {
	for _, kind := range []string{"memory", "file"} {
		b.Run(kind, func(b *testing.B) {
			var store Store = NewMemoryStore()
			if kind == "file" {
				fs, err := OpenFileStore(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				store = fs
			}
			l := newTestLog(b, "example.org/log")
			w := newTestWitness(b, store, nil, l)
			// Each iteration grows the log by one leaf from size >= 1000,
			// with a consistency proof of about ten hashes.
			const base = 1000
			if rec := post(b, w, l.request(b, 0, base)); rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = l.request(b, int64(base+i), int64(base+i+1))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := w.AddCheckpoint(context.Background(), bodies[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAddCheckpointHTTP(b *testing.B) {
	l := newTestLog(b, "example.org/log")
	w := newTestWitness(b, nil, nil, l)
	if rec := post(b, w, l.request(b, 0, 1000)); rec.Code != http.StatusOK {
		b.Fatalf("status %d", rec.Code)
	}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = l.request(b, int64(1000+i), int64(1001+i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rec := post(b, w, bodies[i]); rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
