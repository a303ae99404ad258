package batch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/crossroads-hub/crossroads/batch"
)

// FuzzParse: the NDJSON parser never panics, refuses with a 400 or 413
// ParseError only, and what it accepts re-encodes to items it accepts
// again, unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"operation":"svc/read","parameters":{"subject":"85073100123"},"purpose":"social-aid","user":"u"}`,
		`{"service":"svc","method":"PUT","path":"/persons/1/address","purpose":"p","user":"u","body":{"city":"Gent"},"correlationId":"c-1"}`,
		`{"service":"svc","path":"/x","query":{"a":["1","2"]},"purpose":"p","user":"u"}` + "\n\n" + `{"operation":"a/b","purpose":"p","user":"u"}`,
		`{"operation":"svc/read","purpose":"p","user":"u","body":null}`,
		"{\"operation\":\"svc/read\",\"purpose\":\"p\\u0000\",\"user\":\"u\"}",
		`{"operation":"svc/read","purpose":"p","user":"u"} {}`,
		`[]`, `null`, `{`, "\xff", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := batch.Parse(bytes.NewReader(b), 50, 1<<16)
		if err != nil {
			var pe *batch.ParseError
			if !errors.As(err, &pe) || (pe.Status != http.StatusBadRequest && pe.Status != http.StatusRequestEntityTooLarge) || pe.Reason == "" {
				t.Fatalf("refusal %v", err)
			}
			if items != nil {
				t.Fatal("items with a refusal")
			}
			return
		}
		if len(items) == 0 || len(items) > 50 {
			t.Fatalf("%d items accepted", len(items))
		}
		for i := range items {
			line, err := json.Marshal(items[i])
			if err != nil {
				t.Fatal(err)
			}
			again, err := batch.ParseItem(line)
			if err != nil {
				t.Fatalf("accepted item %s does not parse again: %v", line, err)
			}
			line2, _ := json.Marshal(again)
			if !bytes.Equal(line, line2) {
				t.Fatalf("item changed on re-parse:\n%s\n%s", line, line2)
			}
			if (items[i].Operation == "") == (items[i].Service == "") {
				t.Fatalf("item names no form or both: %s", line)
			}
		}
	})
}
