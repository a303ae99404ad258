package efgs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/crossroads-hub/crossroads/efgs"
)

func fixtureSeeds(f *testing.F) {
	for _, name := range []string{"diagnosisKeyBatchSmallInt.bin", "diagnosisKeyBatchMaxValInt.bin", "diagnosisKeyBatchMaxValUint.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func sameKeys(t *testing.T, a, b *efgs.DiagnosisKeyBatch) {
	t.Helper()
	if len(a.Keys) != len(b.Keys) {
		t.Fatalf("%d keys, then %d", len(a.Keys), len(b.Keys))
	}
	for i := range a.Keys {
		if !bytes.Equal(efgs.KeyBytesToVerify(&a.Keys[i]), efgs.KeyBytesToVerify(&b.Keys[i])) {
			t.Fatalf("key %d changed in a round trip", i)
		}
	}
}

// FuzzUnmarshalBatch: the protobuf decoder never panics, and what it
// decodes survives its re-encoding unchanged.
func FuzzUnmarshalBatch(f *testing.F) {
	fixtureSeeds(f)
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x02, 0x40, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, err := efgs.UnmarshalBatch(b, 100)
		if err != nil {
			return
		}
		again, err := efgs.UnmarshalBatch(bt.MarshalProto(), 100)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		sameKeys(t, bt, again)
		efgs.BatchBytesToVerify(bt)
	})
}

// FuzzUnmarshalJSONBatch: the JSON decoder never panics; what it decodes
// survives the download JSON form.
func FuzzUnmarshalJSONBatch(f *testing.F) {
	f.Add([]byte(`{"keys":[{"keyData":"AAECAwQFBgcICQoLDA0ODw==","rollingStartIntervalNumber":2700000,"rollingPeriod":144,"transmissionRiskLevel":2,"visitedCountries":["DE","FR"],"origin":"NL","reportType":"CONFIRMED_TEST","days_since_onset_of_symptoms":-3}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"keys":[{"reportType":5,"daysSinceOnsetOfSymptoms":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, err := efgs.UnmarshalJSONBatch(b, 100)
		if err != nil {
			return
		}
		again, err := efgs.UnmarshalJSONBatch(bt.AppendJSON(nil), 100)
		if err != nil {
			t.Fatalf("the JSON form does not decode: %v: %s", err, bt.AppendJSON(nil))
		}
		sameKeys(t, bt, again)
	})
}

// FuzzParseSignature: the CMS path (base64, BER/DER, signer lookup,
// verification) never panics on hostile signatures.
func FuzzParseSignature(f *testing.F) {
	s := newSigner(f, "rsa", "DE")
	content := []byte("content")
	f.Add(s.sign(f, content, nil))
	f.Add(newSigner(f, "ecdsa", "DE").sign(f, content, nil))
	f.Add("MIAGCSqGSIb3DQEHAqCAMIACAQExADCABgkqhkiG9w0BBwEAAKCAMIIB")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		p7, _, err := efgs.ParseSignature(header)
		if err != nil {
			return
		}
		efgs.VerifyDetached(p7, content)
	})
}
