package efgs_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/efgs"
)

// vectorFiles are the reference's cross-language signature vectors: a
// head of them kept in testdata, the whole file where the shared reference
// data lies beside the checkout.
func vectorFiles(t *testing.T) []string {
	files := []string{"testdata/CSharpTestdata-head.txt"}
	for _, p := range []string{"../../shared/reference/efgs/CSharpTestdata.txt", "../../../shared/reference/efgs/CSharpTestdata.txt"} {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
			break
		}
	}
	return files
}

// byteList parses "[1,2,3]" (a C# byte array) or "[DE,FR]" (a string list).
func list(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func byteList(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for _, v := range list(s) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			t.Fatalf("byte %q", v)
		}
		out = append(out, byte(n))
	}
	return out
}

// The per-key bytes a batch signature covers are the reference's: each of
// the 5,000 C# vectors is rebuilt from its raw field bytes (not from the
// expected base64) and must give the same string.
func TestKeyBytesToVerifyCSharpVectors(t *testing.T) {
	for _, file := range vectorFiles(t) {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		for sc.Scan() {
			col := strings.Split(sc.Text(), "|")
			if len(col) != 17 {
				t.Fatalf("%s:%d: %d columns", file, n+1, len(col))
			}
			be := func(i int) uint32 { return binary.BigEndian.Uint32(byteList(t, col[i])) }
			k := efgs.DiagnosisKey{
				KeyData:                    byteList(t, col[0]),
				RollingStartIntervalNumber: be(2),
				RollingPeriod:              be(4),
				TransmissionRiskLevel:      int32(be(6)),
				VisitedCountries:           list(col[8]),
				Origin:                     strings.Join(list(col[10]), ""),
				ReportType:                 efgs.ReportType(int32(be(12))),
				DaysSinceOnsetOfSymptoms:   int32(be(14)),
			}
			got := efgs.KeyBytesToVerify(&k)
			want, err := base64.StdEncoding.DecodeString(col[16])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s:%d: got %q, want %q", file, n+1, got, want)
			}
			// And each field's base64 as the vector spells it.
			parts := strings.Split(strings.TrimSuffix(string(got), "."), ".")
			for i, p := range parts {
				if p != col[2*i+1] {
					t.Fatalf("%s:%d: field %d: %q, want %q", file, n+1, i, p, col[2*i+1])
				}
			}
			// The key survives a protobuf and a JSON round trip unchanged
			// (visitedCountries in order, negative values, enum numbers).
			bt := &efgs.DiagnosisKeyBatch{Keys: []efgs.DiagnosisKey{k}}
			back, err := efgs.UnmarshalBatch(bt.MarshalProto(), 0)
			if err != nil || !bytes.Equal(efgs.KeyBytesToVerify(&back.Keys[0]), got) {
				t.Fatalf("%s:%d: protobuf round trip: %v", file, n+1, err)
			}
			j, _ := bt.MarshalJSON()
			back, err = efgs.UnmarshalJSONBatch(j, 0)
			if err != nil || !bytes.Equal(efgs.KeyBytesToVerify(&back.Keys[0]), got) {
				t.Fatalf("%s:%d: JSON round trip of %s: %v", file, n+1, j, err)
			}
			n++
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if n < 300 {
			t.Fatalf("%s: only %d vectors", file, n)
		}
		t.Logf("%s: %d vectors", filepath.Base(file), n)
	}
}

// The reference's protobuf fixtures decode to the values its own tests
// expect, and re-encode to the same bytes.
func TestProtobufFixtures(t *testing.T) {
	for file, want := range map[string]efgs.DiagnosisKey{
		"diagnosisKeyBatchSmallInt.bin":   {KeyData: []byte("123"), RollingStartIntervalNumber: 5, RollingPeriod: 5, TransmissionRiskLevel: -22, VisitedCountries: []string{"UK", "NL", "FR"}, Origin: "DE", ReportType: efgs.ReportConfirmedTest},
		"diagnosisKeyBatchMaxValInt.bin":  {KeyData: []byte("123"), RollingStartIntervalNumber: 1<<31 - 1, RollingPeriod: 1<<31 - 1, TransmissionRiskLevel: -22, VisitedCountries: []string{"UK", "NL", "FR"}, Origin: "DE", ReportType: efgs.ReportConfirmedTest},
		"diagnosisKeyBatchMaxValUint.bin": {KeyData: []byte("123"), RollingStartIntervalNumber: 1<<32 - 1, RollingPeriod: 1<<32 - 1, TransmissionRiskLevel: -22, VisitedCountries: []string{"UK", "NL", "FR"}, Origin: "DE", ReportType: efgs.ReportConfirmedTest},
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		bt, err := efgs.UnmarshalBatch(raw, 5000)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(bt.Keys) != 1 {
			t.Fatalf("%s: %d keys", file, len(bt.Keys))
		}
		if got := bt.Keys[0]; !bytes.Equal(efgs.KeyBytesToVerify(&got), efgs.KeyBytesToVerify(&want)) {
			t.Errorf("%s: decoded %+v, want %+v", file, got, want)
		}
		if !bytes.Equal(bt.MarshalProto(), raw) {
			t.Errorf("%s: re-encoding differs:\n%x\n%x", file, bt.MarshalProto(), raw)
		}
	}
}

func TestUnmarshalBatchLimits(t *testing.T) {
	k := efgs.DiagnosisKey{KeyData: make([]byte, 16), Origin: "DE"}
	bt := &efgs.DiagnosisKeyBatch{Keys: []efgs.DiagnosisKey{k, k, k}}
	if _, err := efgs.UnmarshalBatch(bt.MarshalProto(), 2); err != efgs.ErrTooManyKeys {
		t.Errorf("protobuf beyond the limit: %v", err)
	}
	j, _ := bt.MarshalJSON()
	if _, err := efgs.UnmarshalJSONBatch(j, 2); err != efgs.ErrTooManyKeys {
		t.Errorf("JSON beyond the limit: %v", err)
	}
	for name, body := range map[string][]byte{
		"truncated varint": {0x0a, 0x02, 0x10, 0xff},
		"length overflow":  {0x0a, 0x7f},
		"bad utf-8 origin": {0x0a, 0x03, 0x32, 0x01, 0xff},
		"group":            {0x0b},
	} {
		if _, err := efgs.UnmarshalBatch(body, 0); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	for name, body := range map[string]string{
		"unknown field":  `{"keys":[{"keyDta":"AA=="}]}`,
		"bad base64":     `{"keys":[{"keyData":"!!"}]}`,
		"negative uint":  `{"keys":[{"rollingPeriod":-1}]}`,
		"unknown enum":   `{"keys":[{"reportType":"MAYBE"}]}`,
		"trailing data":  `{"keys":[]} x`,
		"not an object":  `[]`,
		"uint too large": `{"keys":[{"rollingStartIntervalNumber":4294967296}]}`,
	} {
		if _, err := efgs.UnmarshalJSONBatch([]byte(body), 0); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// The JSON form on download is the reference's: field names as in the
// .proto (days_since_onset_of_symptoms in snake_case), enum names, defaults
// left out, visitedCountries in the order received.
func TestJSONForm(t *testing.T) {
	bt := &efgs.DiagnosisKeyBatch{Keys: []efgs.DiagnosisKey{{
		KeyData: []byte{1, 2}, RollingStartIntervalNumber: 2700000, RollingPeriod: 144, TransmissionRiskLevel: 3,
		VisitedCountries: []string{"NL", "BE", "DE"}, Origin: "FR", ReportType: efgs.ReportConfirmedTest, DaysSinceOnsetOfSymptoms: -2,
	}, {KeyData: []byte{3}, Origin: "FR"}}}
	j, _ := bt.MarshalJSON()
	want := `{"keys":[{"keyData":"AQI=","rollingStartIntervalNumber":2700000,"rollingPeriod":144,"transmissionRiskLevel":3,"visitedCountries":["NL","BE","DE"],"origin":"FR","reportType":"CONFIRMED_TEST","days_since_onset_of_symptoms":-2},{"keyData":"Aw==","origin":"FR"}]}`
	if string(j) != want {
		t.Errorf("JSON\n%s\nwant\n%s", j, want)
	}
	back, err := efgs.UnmarshalJSONBatch([]byte(`{"keys":[{"daysSinceOnsetOfSymptoms":7,"reportType":2}]}`), 0)
	if err != nil || back.Keys[0].DaysSinceOnsetOfSymptoms != 7 || back.Keys[0].ReportType != efgs.ReportConfirmedClinicalDiagnosis {
		t.Errorf("camelCase and enum number: %+v %v", back, err)
	}
	if j, _ := (&efgs.DiagnosisKeyBatch{}).MarshalJSON(); string(j) != "{}" {
		t.Errorf("empty batch: %s", j)
	}
}
