package minimise

import (
	"bytes"
	"fmt"
	"strings"
)

// person appends one synthetic person record of roughly 1 KB.
func person(b *bytes.Buffer, i int) {
	fmt.Fprintf(b, `{"name":"Person %d Van den Bossche","ssn":"%011d","born":"19%02d-0%d-1%d",`, i, 85073003328+i, i%100, 1+i%9, i%10)
	fmt.Fprintf(b, `"income":%d.%02d,"active":%t,"spouse":null,`, 20000+i*7, i%100, i%2 == 0)
	fmt.Fprintf(b, `"address":{"street":"Kerkstraat %d","postcode":"9000","city":"Gent","country":"BE","geo":{"lat":51.05%d,"lon":3.72%d}},`, i%300, i%10, i%7)
	b.WriteString(`"children":[`)
	for c := 0; c < 3; c++ {
		if c > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `{"name":"Child %d.%d","born":"2010-01-0%d","school":"Sint-Barbara \"college\" \u00e9\u20ac"}`, i, c, c+1)
	}
	b.WriteString(`],"notes":"`)
	b.WriteString(strings.Repeat("Dossier ná 2019: geen opmerkingen. ", 14))
	b.WriteString(`","tags":["a","b","c",1,2.5e3,-0.25,true,false,null]}`)
}

// genResponse returns a JSON document of at least size bytes: an object
// holding an array of person records.
func genResponse(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 2048)
	b.WriteString(`{"total":0,"persons":[`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		person(&b, i)
	}
	b.WriteString(`],"next":null}`)
	return b.Bytes()
}

// genPerson returns one person record (about 1 KB).
func genPerson() []byte {
	var b bytes.Buffer
	person(&b, 7)
	return b.Bytes()
}

var (
	benchListGrants   = []string{"/persons/name", "/persons/address/city", "/persons/children/name", "/total"}
	benchPersonGrants = []string{"/name", "/address/city", "/children/name"}
)

// genWide returns a JSON array of at least size bytes of small objects,
// mostly numbers: the shape that costs a tree decoder most per byte.
func genWide(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 64)
	b.WriteByte('[')
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"a":%d,"b":[1,2.5,-3e2,true,null],"c":{"d":%d}}`, i, i%97)
	}
	b.WriteByte(']')
	return b.Bytes()
}
