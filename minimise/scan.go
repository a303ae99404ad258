package minimise

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sync"
	"unicode/utf8"
)

const (
	readSize  = 32 << 10 // input buffer of Stream and Validate
	flushSize = 32 << 10 // Stream writes its output in pieces of about this size
	keepCap   = 64 << 10 // larger scratch buffers are not kept for the next call
	smallSet  = 16       // names of an object compared one by one
)

// Stream reads one JSON document from src and writes to dst only what g
// grants. Kept members keep their order, arrays their order (elements of
// which nothing is kept are left out, as are objects and arrays of which
// nothing is kept, except the document's own: it stays, possibly empty; a
// document that is a bare scalar gives {}); kept values are copied
// verbatim, without the whitespace between tokens.
//
// On error, dst has received a prefix of the output that must be discarded:
// an HTTP handler should abort the response rather than send it. Errors
// about the input wrap ErrNotJSON (via *SyntaxError); read and write errors
// are returned wrapped.
func (g *Grants) Stream(dst io.Writer, src io.Reader) error {
	s := getScanner(g.MaxDepth())
	defer s.release()
	if s.rbuf == nil {
		s.rbuf = make([]byte, readSize)
	}
	if s.obuf == nil {
		// Output is flushed at flushSize when input is read, at most
		// readSize at a time: this is enough, whatever is kept.
		s.obuf = make([]byte, 0, flushSize+readSize+4096)
	}
	s.r, s.w = src, dst
	s.buf, s.eof = s.rbuf[:0], false
	s.out = s.obuf[:0]
	err := s.run(g.rootNode())
	s.obuf = s.out[:0]
	return err
}

// JSON returns body reduced to what g grants, as Stream would write it.
// With a whole grant, a well-formed body is returned as it is.
func (g *Grants) JSON(body []byte) ([]byte, error) {
	if g.Whole() {
		s := getScanner(g.MaxDepth())
		defer s.release()
		s.buf, s.eof = body, true
		if err := s.validate(); err != nil {
			return nil, err
		}
		return body, nil
	}
	if len(body) > readSize {
		// Large: stream into a buffer that grows by doubling.
		var out bytes.Buffer
		if err := g.Stream(&out, bytes.NewReader(body)); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	s := getScanner(g.MaxDepth())
	defer s.release()
	s.buf, s.eof = body, true
	s.out = make([]byte, 0, min(len(body), 1024))
	err := s.run(g.rootNode())
	out := s.out
	s.out = nil
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Validate checks that r holds one well-formed JSON value nested at most
// maxDepth deep (0 or less: DefaultMaxDepth) with no object repeating a
// member name, as for a request body. Errors about the input wrap
// ErrNotJSON; read errors are returned wrapped.
func Validate(r io.Reader, maxDepth int) error {
	s := getScanner(clampDepth(maxDepth))
	defer s.release()
	if s.rbuf == nil {
		s.rbuf = make([]byte, readSize)
	}
	s.r = r
	s.buf, s.eof = s.rbuf[:0], false
	return s.validate()
}

// emptyNode grants nothing.
var emptyNode = &node{}

func (g *Grants) rootNode() *node {
	if g == nil || g.root == nil {
		return emptyNode
	}
	return g.root
}

// frame is an array or object of the output whose content is filtered.
type frame struct {
	close     byte // '}' or ']'
	emitted   int  // children written so far
	pendStart int  // where its prefix starts in pend, while not yet open
}

type scanner struct {
	// input: buf[pos:] is unread; buf[0] is byte base of the input
	r     io.Reader
	buf   []byte
	pos   int
	base  int64
	eof   bool
	rbuf  []byte
	ioErr error

	// output
	w    io.Writer
	out  []byte
	obuf []byte
	// Filtered containers, outermost first; frames[:open] are written, the
	// prefixes of the others wait in pend until something in them is kept.
	frames []frame
	open   int
	pend   []byte

	seen   []int    // granted members met (ids), per open filtered object
	hashes []uint64 // names met, per open kept object
	name   []byte   // the last member name, unescaped
	long   bool     // the last name was longer than asked to gather
	hash   maphash.Hash

	depth, maxDepth int
}

var scanners = sync.Pool{New: func() any {
	s := &scanner{}
	s.hash.SetSeed(maphash.MakeSeed())
	return s
}}

func getScanner(maxDepth int) *scanner {
	s := scanners.Get().(*scanner)
	s.maxDepth = maxDepth
	return s
}

func (s *scanner) release() {
	s.r, s.w, s.buf, s.out, s.ioErr = nil, nil, nil, nil, nil
	s.pos, s.base, s.depth, s.open = 0, 0, 0, 0
	s.frames, s.pend, s.seen, s.hashes = s.frames[:0], s.pend[:0], s.seen[:0], s.hashes[:0]
	s.name = s.name[:0]
	if cap(s.obuf) > 2*(flushSize+readSize) {
		s.obuf = nil
	}
	if cap(s.name) > keepCap {
		s.name = nil
	}
	if cap(s.pend) > keepCap {
		s.pend = nil
	}
	if cap(s.hashes) > keepCap/8 {
		s.hashes = nil
	}
	if cap(s.seen) > keepCap/8 {
		s.seen = nil
	}
	scanners.Put(s)
}

// run filters the document at the input with grant root.
func (s *scanner) run(root *node) error {
	c, ok := s.skipWS()
	if !ok {
		return s.syntax("no JSON value")
	}
	var err error
	switch {
	case root == allNode:
		err = s.value(true, true)
	case c == '{' || c == '[':
		cl := byte('}')
		if c == '[' {
			cl = ']'
		}
		s.frames = append(s.frames, frame{close: cl})
		s.pend = append(s.pend, c)
		s.materialise()
		err = s.filter(root, c)
	default:
		// A bare scalar: nothing in it can be granted but the whole.
		if err = s.value(false, false); err == nil {
			s.out = append(s.out, "{}"...)
		}
	}
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if s.w != nil && len(s.out) > 0 {
		if _, err := s.w.Write(s.out); err != nil {
			return fmt.Errorf("minimise: write: %w", err)
		}
		s.out = s.out[:0]
	}
	return nil
}

func (s *scanner) validate() error {
	if err := s.value(false, true); err != nil {
		return err
	}
	return s.end()
}

// end checks that nothing but whitespace follows the value.
func (s *scanner) end() error {
	if _, ok := s.skipWS(); ok {
		return s.syntax("data after the JSON value")
	}
	if s.ioErr != nil {
		return s.ioErr
	}
	return nil
}

func (s *scanner) syntax(msg string) error {
	if s.ioErr != nil {
		return s.ioErr
	}
	return &SyntaxError{Offset: s.base + int64(s.pos), Msg: msg, err: ErrNotJSON}
}

func (s *scanner) fail(err error) error {
	if s.ioErr != nil {
		return s.ioErr
	}
	return &SyntaxError{Offset: s.base + int64(s.pos), err: err}
}

// more reads input, keeping buf[pos:]; false at the end of the input or on
// an error. It is the only place that moves the buffer: callers copy what
// they keep of buf[:pos] before calling it. It also flushes the output.
func (s *scanner) more() bool {
	if s.eof {
		return false
	}
	if s.w != nil && len(s.out) >= flushSize {
		if _, err := s.w.Write(s.out); err != nil {
			s.ioErr, s.eof = fmt.Errorf("minimise: write: %w", err), true
			return false
		}
		s.out = s.out[:0]
	}
	n := copy(s.rbuf, s.buf[s.pos:])
	s.base += int64(s.pos)
	s.pos = 0
	for tries := 0; ; tries++ {
		m, err := s.r.Read(s.rbuf[n:])
		n += m
		s.buf = s.rbuf[:n]
		if err != nil {
			s.eof = true
			if !errors.Is(err, io.EOF) {
				s.ioErr = fmt.Errorf("minimise: read: %w", err)
				return false
			}
			return m > 0
		}
		if m > 0 {
			return true
		}
		if tries == 100 {
			s.ioErr, s.eof = fmt.Errorf("minimise: read: %w", io.ErrNoProgress), true
			return false
		}
	}
}

// ensure makes n bytes available at pos if the input has them.
func (s *scanner) ensure(n int) int {
	for len(s.buf)-s.pos < n && s.more() {
	}
	return len(s.buf) - s.pos
}

// skipWS skips whitespace and returns the next byte, unread.
func (s *scanner) skipWS() (byte, bool) {
	for {
		for s.pos < len(s.buf) {
			c := s.buf[s.pos]
			if c == ' ' || c == '\n' || c == '\r' || c == '\t' {
				s.pos++
				continue
			}
			return c, true
		}
		if !s.more() {
			return 0, false
		}
	}
}

func (s *scanner) peek() (byte, bool) {
	if s.pos < len(s.buf) || s.more() {
		return s.buf[s.pos], true
	}
	return 0, false
}

// take consumes one byte, copying it if emit.
func (s *scanner) take(emit bool) {
	if emit {
		s.out = append(s.out, s.buf[s.pos])
	}
	s.pos++
}

func (s *scanner) push() error {
	s.depth++
	if s.depth > s.maxDepth {
		return s.fail(ErrTooDeep)
	}
	return nil
}

// value checks the value at the input, copying it if emit and refusing
// repeated member names if dups.
func (s *scanner) value(emit, dups bool) error {
	c, ok := s.skipWS()
	if !ok {
		return s.syntax("unexpected end of input")
	}
	switch {
	case c == '{':
		return s.object(emit, dups)
	case c == '[':
		return s.array(emit, dups)
	case c == '"':
		s.take(emit)
		return s.str(emit, skipName)
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(emit)
	case c == 't':
		return s.literal("true", emit)
	case c == 'f':
		return s.literal("false", emit)
	case c == 'n':
		return s.literal("null", emit)
	}
	return s.syntax("unexpected character looking for a value")
}

func (s *scanner) object(emit, dups bool) error {
	if err := s.push(); err != nil {
		return err
	}
	s.take(emit) // {
	start := len(s.hashes)
	c, ok := s.skipWS()
	if ok && c == '}' {
		s.take(emit)
		s.depth--
		return nil
	}
	collect := skipName
	if dups {
		collect = hashName
	}
	for {
		if !ok || c != '"' {
			return s.syntax("expected a member name")
		}
		s.take(emit)
		if err := s.str(emit, collect); err != nil {
			return err
		}
		if dups {
			// Names are remembered as seeded hashes, 8 bytes each; a
			// collision refuses a good document with odds of 2⁻⁶⁴ per pair
			// that nobody can steer without the seed. A few are compared as
			// they come, more are sorted when the object ends.
			h := s.hash.Sum64()
			if len(s.hashes)-start < smallSet {
				for _, x := range s.hashes[start:] {
					if x == h {
						return s.fail(ErrDuplicateName)
					}
				}
			}
			if len(s.hashes) == cap(s.hashes) {
				s.hashes = slices.Grow(s.hashes, len(s.hashes)+64) // double: less garbage than append's 1.25
			}
			s.hashes = append(s.hashes, h)
		}
		if c, ok = s.skipWS(); !ok || c != ':' {
			return s.syntax("expected ':' after a member name")
		}
		s.take(emit)
		if err := s.value(emit, dups); err != nil {
			return err
		}
		c, ok = s.skipWS()
		if ok && c == ',' {
			s.take(emit)
			c, ok = s.skipWS()
			continue
		}
		if ok && c == '}' {
			s.take(emit)
			break
		}
		return s.syntax("expected ',' or '}' in an object")
	}
	if names := s.hashes[start:]; len(names) > smallSet {
		slices.Sort(names)
		for i := 1; i < len(names); i++ {
			if names[i] == names[i-1] {
				return s.fail(ErrDuplicateName)
			}
		}
	}
	s.hashes = s.hashes[:start]
	s.depth--
	return nil
}

func (s *scanner) array(emit, dups bool) error {
	if err := s.push(); err != nil {
		return err
	}
	s.take(emit) // [
	c, ok := s.skipWS()
	if ok && c == ']' {
		s.take(emit)
		s.depth--
		return nil
	}
	for {
		if err := s.value(emit, dups); err != nil {
			return err
		}
		c, ok = s.skipWS()
		if ok && c == ',' {
			s.take(emit)
			continue
		}
		if ok && c == ']' {
			s.take(emit)
			break
		}
		return s.syntax("expected ',' or ']' in an array")
	}
	s.depth--
	return nil
}

// filter applies n (not nil, not whole) to the array or object at the
// input, whose frame is on top of the stack; c is its first byte.
func (s *scanner) filter(n *node, c byte) error {
	if err := s.push(); err != nil {
		return err
	}
	s.pos++
	var err error
	if c == '{' {
		err = s.filterObject(n)
	} else {
		err = s.filterArray(n)
	}
	if err != nil {
		return err
	}
	s.depth--
	last := len(s.frames) - 1
	if last < s.open {
		s.out = append(s.out, s.frames[last].close)
		s.open = last
	} else {
		s.pend = s.pend[:s.frames[last].pendStart]
	}
	s.frames = s.frames[:last]
	return nil
}

func (s *scanner) filterObject(n *node) error {
	seen := len(s.seen)
	c, ok := s.skipWS()
	if ok && c == '}' {
		s.pos++
		return nil
	}
	for {
		if !ok || c != '"' {
			return s.syntax("expected a member name")
		}
		s.pos++
		if err := s.str(false, n.maxName); err != nil {
			return err
		}
		var child *node
		if !s.long {
			m := n.members[string(s.name)]
			if child = m.n; child != nil {
				for _, x := range s.seen[seen:] {
					if x == m.id {
						return s.fail(ErrDuplicateName)
					}
				}
				s.seen = append(s.seen, m.id)
			}
		}
		if c, ok = s.skipWS(); !ok || c != ':' {
			return s.syntax("expected ':' after a member name")
		}
		s.pos++
		var err error
		if child == nil {
			err = s.value(false, false)
		} else {
			err = s.sub(child, true)
		}
		if err != nil {
			return err
		}
		c, ok = s.skipWS()
		if ok && c == ',' {
			s.pos++
			c, ok = s.skipWS()
			continue
		}
		if ok && c == '}' {
			s.pos++
			break
		}
		return s.syntax("expected ',' or '}' in an object")
	}
	s.seen = s.seen[:seen]
	return nil
}

func (s *scanner) filterArray(n *node) error {
	c, ok := s.skipWS()
	if ok && c == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		e := n.wild
		if n.elems != nil {
			if x, ok := n.elems[i]; ok {
				e = x
			}
		}
		var err error
		if e == nil {
			err = s.value(false, false)
		} else {
			err = s.sub(e, false)
		}
		if err != nil {
			return err
		}
		c, ok = s.skipWS()
		if ok && c == ',' {
			s.pos++
			continue
		}
		if ok && c == ']' {
			s.pos++
			break
		}
		return s.syntax("expected ',' or ']' in an array")
	}
	return nil
}

// sub applies grant n to a member value (named s.name if member) or an
// array element of the filtered container on top of the stack.
func (s *scanner) sub(n *node, member bool) error {
	if n.all {
		s.materialise()
		top := &s.frames[len(s.frames)-1]
		if top.emitted > 0 {
			s.out = append(s.out, ',')
		}
		top.emitted++
		if member {
			s.out = appendName(s.out, s.name)
		}
		return s.value(true, true)
	}
	c, ok := s.skipWS()
	if !ok {
		return s.syntax("unexpected end of input")
	}
	if c != '{' && c != '[' {
		return s.value(false, false) // a scalar where the grant goes deeper
	}
	f := frame{close: '}', pendStart: len(s.pend)}
	if c == '[' {
		f.close = ']'
	}
	if s.frames[len(s.frames)-1].emitted > 0 {
		s.pend = append(s.pend, ',')
	}
	if member {
		s.pend = appendName(s.pend, s.name)
	}
	s.pend = append(s.pend, c)
	s.frames = append(s.frames, f)
	return s.filter(n, c)
}

// materialise writes the prefixes of the frames not yet open: something
// is about to be kept in the innermost.
func (s *scanner) materialise() {
	if s.open == len(s.frames) {
		return
	}
	s.out = append(s.out, s.pend...)
	s.pend = s.pend[:0]
	for i := s.open; i < len(s.frames); i++ {
		if i > 0 {
			s.frames[i-1].emitted++
		}
	}
	s.open = len(s.frames)
}

// appendName writes a member name and its colon.
func appendName(b, name []byte) []byte {
	b = append(b, '"')
	for _, c := range name {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"', ':')
}

const hex = "0123456789abcdef"

// plain marks the ASCII bytes that stand for themselves in a string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// What str does with the unescaped value of a string, besides checking
// it: nothing, hash it into s.hash, or (collect ≥ 0) gather it in s.name.
const (
	skipName = -1
	hashName = -2
)

// str reads the rest of a string whose opening quote is consumed, copying
// it if emit. With collect ≥ 0 it gathers the unescaped value in s.name,
// up to collect bytes (s.long says it was longer); with hashName it hashes
// it into s.hash, in constant memory.
func (s *scanner) str(emit bool, collect int) error {
	switch {
	case collect >= 0:
		s.name, s.long = s.name[:0], false
	case collect == hashName:
		s.hash.Reset()
	}
	for {
		b := s.buf
		i := s.pos
		start := i
		for i < len(b) {
			// Eight plain ASCII bytes at a time.
			for i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:])) {
				i += 8
			}
			if i == len(b) {
				break
			}
			c := b[i]
			if c < utf8.RuneSelf {
				if plain[c] {
					i++
					continue
				}
				break
			}
			if !utf8.FullRune(b[i:]) {
				break
			}
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				s.pos = i
				return s.syntax("invalid UTF-8 in a string")
			}
			i += size
		}
		if emit {
			s.out = append(s.out, b[start:i]...)
		}
		switch {
		case collect >= 0:
			s.gather(b[start:i], collect)
		case collect == hashName:
			s.hash.Write(b[start:i])
		}
		s.pos = i
		if i == len(b) {
			if !s.more() {
				return s.syntax("unterminated string")
			}
			continue
		}
		switch c := b[i]; {
		case c == '"':
			s.take(emit)
			return nil
		case c == '\\':
			if err := s.escape(emit, collect); err != nil {
				return err
			}
		case c < 0x20:
			return s.syntax("control character in a string")
		default: // a UTF-8 sequence cut by the end of the buffer
			s.ensure(utf8.UTFMax)
			if !utf8.FullRune(s.buf[s.pos:]) {
				return s.syntax("invalid UTF-8 in a string")
			}
		}
	}
}

// plain8 reports whether the eight bytes of x are all plain: no byte
// below 0x20 or above 0x7f, no '"', no '\\'.
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (x&highs)|zero(x^(ones*'"'))|zero(x^(ones*'\\'))|((x-ones*0x20) & ^x & highs) == 0
}

func (s *scanner) gather(p []byte, limit int) {
	if s.long {
		return
	}
	if len(s.name)+len(p) > limit {
		s.long = true
		return
	}
	s.name = append(s.name, p...)
}

// escape reads the escape sequence at the input.
func (s *scanner) escape(emit bool, collect int) error {
	avail := s.ensure(2)
	if avail < 2 {
		return s.syntax("unterminated string")
	}
	b := s.buf[s.pos:]
	var dec [4]byte
	var d []byte
	n := 2
	switch b[1] {
	case '"', '\\', '/':
		dec[0] = b[1]
		d = dec[:1]
	case 'b':
		dec[0], d = '\b', dec[:1]
	case 'f':
		dec[0], d = '\f', dec[:1]
	case 'n':
		dec[0], d = '\n', dec[:1]
	case 'r':
		dec[0], d = '\r', dec[:1]
	case 't':
		dec[0], d = '\t', dec[:1]
	case 'u':
		avail = s.ensure(12)
		b = s.buf[s.pos:]
		r, ok := hex4(b[2:min(avail, 6)])
		if !ok {
			return s.syntax("bad \\u escape")
		}
		n = 6
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return s.syntax("lone surrogate escape")
		case r >= 0xd800 && r < 0xdc00:
			if avail < 12 || b[6] != '\\' || b[7] != 'u' {
				return s.syntax("lone surrogate escape")
			}
			r2, ok := hex4(b[8:12])
			if !ok || r2 < 0xdc00 || r2 > 0xdfff {
				return s.syntax("lone surrogate escape")
			}
			r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
			n = 12
		}
		d = dec[:utf8.EncodeRune(dec[:], r)]
	default:
		return s.syntax("bad escape in a string")
	}
	if emit {
		s.out = append(s.out, b[:n]...)
	}
	switch {
	case collect >= 0:
		s.gather(d, collect)
	case collect == hashName:
		s.hash.Write(d)
	}
	s.pos += n
	return nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a number (RFC 8259 §6), copying it if emit.
func (s *scanner) number(emit bool) error {
	if s.buf[s.pos] == '-' {
		s.take(emit)
	}
	c, ok := s.peek()
	switch {
	case !ok || c < '0' || c > '9':
		return s.syntax("bad number")
	case c == '0':
		s.take(emit)
		if c, ok := s.peek(); ok && c >= '0' && c <= '9' {
			return s.syntax("number with a leading zero")
		}
	default:
		s.digits(emit)
	}
	if c, ok := s.peek(); ok && c == '.' {
		s.take(emit)
		if s.digits(emit) == 0 {
			return s.syntax("bad number")
		}
	}
	if c, ok := s.peek(); ok && (c == 'e' || c == 'E') {
		s.take(emit)
		if c, ok := s.peek(); ok && (c == '+' || c == '-') {
			s.take(emit)
		}
		if s.digits(emit) == 0 {
			return s.syntax("bad number")
		}
	}
	return nil
}

// digits reads a run of decimal digits and says how many.
func (s *scanner) digits(emit bool) int {
	n := 0
	for {
		b := s.buf
		i := s.pos
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if emit {
			s.out = append(s.out, b[s.pos:i]...)
		}
		n += i - s.pos
		s.pos = i
		if i < len(b) || !s.more() {
			return n
		}
	}
}

func (s *scanner) literal(lit string, emit bool) error {
	if s.ensure(len(lit)) < len(lit) || string(s.buf[s.pos:s.pos+len(lit)]) != lit {
		return s.syntax("unexpected character looking for a value")
	}
	if emit {
		s.out = append(s.out, lit...)
	}
	s.pos += len(lit)
	return nil
}
