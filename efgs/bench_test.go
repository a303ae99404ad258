package efgs_test

import (
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/efgs"
)

func benchBatch(b *testing.B, n int) (*efgs.DiagnosisKeyBatch, []byte) {
	now := time.Now()
	bt := &efgs.DiagnosisKeyBatch{}
	for i := 0; i < n; i++ {
		bt.Keys = append(bt.Keys, efgs.DiagnosisKey{KeyData: make([]byte, 16), RollingStartIntervalNumber: uint32(now.Unix()/600) - uint32(i%144),
			RollingPeriod: 144, TransmissionRiskLevel: 3, VisitedCountries: []string{"DE", "FR", "NL", "BE"}, Origin: "DE", ReportType: 1, DaysSinceOnsetOfSymptoms: -2})
		bt.Keys[i].KeyData[0], bt.Keys[i].KeyData[1] = byte(i), byte(i>>8)
	}
	return bt, bt.MarshalProto()
}

// A full batch (5,000 keys): decode, bytes to verify, verify an ECDSA
// CMS signature, encode for download.
func BenchmarkUnmarshalBatch5000(b *testing.B) {
	_, raw := benchBatch(b, 5000)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := efgs.UnmarshalBatch(raw, 5000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBatchBytesToVerify5000(b *testing.B) {
	bt, _ := benchBatch(b, 5000)
	b.ReportAllocs()
	for b.Loop() {
		efgs.BatchBytesToVerify(bt)
	}
}

func BenchmarkVerifySignature5000(b *testing.B) {
	bt, _ := benchBatch(b, 5000)
	content := efgs.BatchBytesToVerify(bt)
	s := newSigner(b, "ecdsa", "DE")
	sig := s.sign(b, content, nil)
	b.ReportAllocs()
	for b.Loop() {
		p7, _, err := efgs.ParseSignature(sig)
		if err != nil {
			b.Fatal(err)
		}
		if err := efgs.VerifyDetached(p7, content); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalBatch5000(b *testing.B) {
	bt, _ := benchBatch(b, 5000)
	b.ReportAllocs()
	for b.Loop() {
		bt.MarshalProto()
	}
}
