package minimise

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkStream10MB: a 10 MB list of person records through Stream, the
// exchange pipeline's path (read from an io.Reader, written to an
// io.Writer).
func BenchmarkStream10MB(b *testing.B) {
	persons, wide := genResponse(10<<20), genWide(10<<20)
	for _, bc := range []struct {
		name string
		doc  []byte
		ptrs []string
	}{{"fields", persons, benchListGrants}, {"whole", persons, []string{""}}, {"wide", wide, []string{"/a", "/c/d"}}} {
		doc := bc.doc
		b.Run(bc.name, func(b *testing.B) {
			g := mustCompile(b, bc.ptrs...)
			r := bytes.NewReader(doc)
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(doc)
				if err := g.Stream(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJSON10MB: the same through the []byte wrapper.
func BenchmarkJSON10MB(b *testing.B) {
	doc := genResponse(10 << 20)
	g := mustCompile(b, benchListGrants...)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.JSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSON1KB: one person record of about 1 KB, the common case.
func BenchmarkJSON1KB(b *testing.B) {
	doc := genPerson()
	g := mustCompile(b, benchPersonGrants...)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.JSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream1KB: the same record through Stream.
func BenchmarkStream1KB(b *testing.B) {
	doc := genPerson()
	g := mustCompile(b, benchPersonGrants...)
	r := bytes.NewReader(doc)
	var out bytes.Buffer
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(doc)
		out.Reset()
		if err := g.Stream(&out, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntersect: an authorisation's grant ∩ an operation's fields.
func BenchmarkIntersect(b *testing.B) {
	auth := mustCompile(b, "/name", "/address", "/children/name", "/children/born", "/income", "/employer/name")
	op := mustCompile(b, "/name", "/address/city", "/address/street", "/children", "/ssn", "/employer")
	b.ReportAllocs()
	for b.Loop() {
		if Intersect(auth, op).Empty() {
			b.Fatal("empty")
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	doc := genPerson()
	r := bytes.NewReader(doc)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(doc)
		if err := Validate(r, 0); err != nil {
			b.Fatal(err)
		}
	}
}
