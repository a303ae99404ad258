package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// sealsFor returns n distinct claim sets over body.
func sealsFor(n int, body []byte) []SealClaims {
	cs := make([]SealClaims, n)
	for i := range cs {
		c := sampleSeal()
		c.ExchangeID = fmt.Sprintf("ex-%04d", i)
		c.ResponseDigest = Digest(body)
		cs[i] = c
	}
	return cs
}

// hold makes q behave as if a signature were in progress: callers queue.
func hold(q *SealSigner) {
	q.mu.Lock()
	q.busy = true
	q.mu.Unlock()
}

func queued(q *SealSigner) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// sealTogether seals claims while q is held, so that they queue, then ends
// the pretended signature: they are signed in batches of MaxSealBatch.
func sealTogether(t testing.TB, q *SealSigner, claims []SealClaims) []string {
	t.Helper()
	hold(q)
	toks := make([]string, len(claims))
	errs := make([]error, len(claims))
	var wg sync.WaitGroup
	for i := range claims {
		wg.Go(func() { toks[i], errs[i] = q.Seal(context.Background(), claims[i]) })
	}
	waitFor(t, "seals to queue", func() bool { return queued(q) == len(claims) })
	q.handOff(nil)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return toks
}

// sealParts splits a v2 seal and decodes its JWS payload, claims and proof.
type parsedSeal struct {
	jws, claims64, proof64 string
	batch                  sealBatchClaims
	claims                 []byte
	proof                  sealProof
}

func parseSeal(t testing.TB, tok string) parsedSeal {
	t.Helper()
	parts := strings.Split(tok, SealSeparator)
	if len(parts) != 3 {
		t.Fatalf("seal of %d parts", len(parts))
	}
	p := parsedSeal{jws: parts[0], claims64: parts[1], proof64: parts[2]}
	if err := json.Unmarshal(decodeSegment(t, p.jws, 1), &p.batch); err != nil {
		t.Fatal(err)
	}
	var err error
	if p.claims, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
		t.Fatal(err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pb, &p.proof); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p parsedSeal) with(jws string, claims []byte, pr sealProof) string {
	pb, _ := json.Marshal(pr)
	return jws + "~" + encodeSegment(claims) + "~" + encodeSegment(pb)
}

func TestSealV2RoundTrip(t *testing.T) {
	ca := testCA(t)
	q := NewSealSigner(testSigner(t, ca, HubParticipant))
	body := []byte(`{"name":"x"}`)
	in := sealsFor(1, body)[0]
	tok, err := q.Seal(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := VerifySeal(tok, body, ca.Pool(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if out.ExchangeID != in.ExchangeID || out.Requester != in.Requester || out.ResponseDigest != in.ResponseDigest || !out.Time.Equal(in.Time.Truncate(time.Millisecond)) {
		t.Fatalf("claims %+v, want %+v", out, in)
	}
	p := parseSeal(t, tok)
	var hdr struct {
		Alg, Typ string
		X5c      []string
	}
	if err := json.Unmarshal(decodeSegment(t, p.jws, 0), &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr.Alg != "ES256" || hdr.Typ != TypeSealBatch || len(hdr.X5c) != 1 {
		t.Fatalf("header %+v", hdr)
	}
	// A batch of one: empty path, root = leaf hash of the claims part.
	want, _ := json.Marshal(in)
	if string(p.claims) != string(want) {
		t.Fatalf("claims part %s, want %s", p.claims, want)
	}
	if p.batch.Version != 2 || p.batch.Size != 1 || p.proof.Index != 0 || p.proof.Size != 1 || len(p.proof.Path) != 0 ||
		string(p.batch.Root) != string(rfc6962.DefaultHasher.HashLeaf(p.claims)) {
		t.Fatalf("batch %+v proof %+v", p.batch, p.proof)
	}
	if s, n := q.Counts(); s != 1 || n != 1 {
		t.Fatalf("counts %d seals, %d signatures", s, n)
	}
	if _, err := VerifySeal(tok, []byte(`{"name":"y"}`), ca.Pool(), time.Now()); !errors.Is(err, ErrClaimsMismatch) {
		t.Fatalf("other body: %v", err)
	}
}

// TestSealBatchShared: seals that queue while a signature is made share
// the next one (at most MaxSealBatch each), and each verifies on its own.
func TestSealBatchShared(t *testing.T) {
	ca := testCA(t)
	q := NewSealSigner(testSigner(t, ca, HubParticipant))
	body := []byte(`{"name":"x"}`)
	n := MaxSealBatch + 44
	claims := sealsFor(n, body)
	toks := sealTogether(t, q, claims)
	sigs := map[string]int{}
	indices := map[string]map[uint64]bool{}
	for i, tok := range toks {
		c, err := VerifySeal(tok, body, ca.Pool(), time.Now())
		if err != nil {
			t.Fatalf("seal %d: %v", i, err)
		}
		if c.ExchangeID != claims[i].ExchangeID {
			t.Fatalf("seal %d names %s", i, c.ExchangeID)
		}
		p := parseSeal(t, tok)
		sigs[p.jws]++
		if indices[p.jws] == nil {
			indices[p.jws] = map[uint64]bool{}
		}
		if indices[p.jws][p.proof.Index] || p.proof.Size != p.batch.Size {
			t.Fatalf("seal %d: index %d of %d repeated", i, p.proof.Index, p.proof.Size)
		}
		indices[p.jws][p.proof.Index] = true
	}
	if len(sigs) != 2 {
		t.Fatalf("%d seals made with %d signatures, want 2", n, len(sigs))
	}
	for _, tok := range toks {
		p := parseSeal(t, tok)
		if k := sigs[p.jws]; (k != MaxSealBatch && k != n-MaxSealBatch) || p.batch.Size != uint64(k) {
			t.Fatalf("batch of %d seals says size %d", k, p.batch.Size)
		}
	}
	if s, g := q.Counts(); s != uint64(n) || g != 2 {
		t.Fatalf("counts %d seals, %d signatures", s, g)
	}
}

// TestSealConcurrent: free-running concurrent callers all get valid seals,
// fewer signatures than seals once they overlap.
func TestSealConcurrent(t *testing.T) {
	ca := testCA(t)
	q := NewSealSigner(testSigner(t, ca, HubParticipant))
	body := []byte(`{"name":"x"}`)
	const workers, each = 32, 20
	claims := sealsFor(workers*each, body)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	sigs := sync.Map{}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c := claims[w*each+i]
				tok, err := q.Seal(context.Background(), c)
				if err == nil {
					var out SealClaims
					if out, err = VerifySeal(tok, body, ca.Pool(), time.Now()); err == nil && out.ExchangeID != c.ExchangeID {
						err = fmt.Errorf("seal of %s names %s", c.ExchangeID, out.ExchangeID)
					}
					jws, _, _ := strings.Cut(tok, SealSeparator)
					sigs.Store(jws, true)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	sigs.Range(func(any, any) bool { n++; return true })
	s, g := q.Counts()
	if s != workers*each || g != uint64(n) {
		t.Fatalf("counts %d seals, %d signatures; %d distinct JWS", s, g, n)
	}
	t.Logf("%d seals, %d signatures (GOMAXPROCS %d)", s, g, runtime.GOMAXPROCS(0))
}

func TestSealRejects(t *testing.T) {
	ca := testCA(t)
	pool := ca.Pool()
	hub := testSigner(t, ca, HubParticipant)
	q := NewSealSigner(hub)
	body := []byte(`{"name":"x"}`)
	toks := sealTogether(t, q, sealsFor(5, body))
	// All five share one JWS; order them by index.
	var ps [5]parsedSeal
	for _, tok := range toks {
		p := parseSeal(t, tok)
		ps[p.proof.Index] = p
	}
	if ps[0].jws != ps[4].jws || ps[0].batch.Size != 5 {
		t.Fatal("not one batch")
	}
	a, b := ps[1], ps[3]
	jws := a.jws
	valid := a.with(jws, a.claims, a.proof)
	if _, err := VerifySeal(valid, body, pool, time.Now()); err != nil {
		t.Fatalf("re-encoded seal: %v", err)
	}
	one, err := q.Seal(context.Background(), sealsFor(1, body)[0])
	if err != nil {
		t.Fatal(err)
	}
	single := parseSeal(t, one)
	// Another batch of the same size (of other claims).
	others := sealsFor(5, body)
	for i := range others {
		others[i].ExchangeID += "-other"
	}
	other := parseSeal(t, sealTogether(t, q, others)[0])
	if other.jws == jws || other.batch.Size != 5 {
		t.Fatal("not another batch of five")
	}

	var claims map[string]any
	_ = json.Unmarshal(a.claims, &claims)
	claims["requester"] = "evil.example"
	forged, _ := json.Marshal(claims)
	bent := a.proof
	bent.Path = append([][]byte(nil), a.proof.Path...)
	bent.Path[0] = append([]byte(nil), bent.Path[0]...)
	bent.Path[0][0] ^= 1
	idx, size, grow, shrink := a.proof, a.proof, a.proof, a.proof
	idx.Index = 0
	size.Size = 8
	grow.Path = append(append([][]byte(nil), a.proof.Path...), a.proof.Path[0])
	shrink.Path = a.proof.Path[:len(a.proof.Path)-1]
	outOfRange := a.proof
	outOfRange.Index = 5
	// A JWS over another root (the signature then fails), and a JWS of
	// another batch for these claims.
	otherRoot := strings.Split(jws, ".")
	otherRoot[1] = encodeSegment([]byte(`{"v":2,"size":5,"root":"` + base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(forged)) + `"}`))
	// An interior node of the tree offered as claims (second preimage): the
	// tree of five is ((0 1)(2 3)) 4, of the same shape as a tree of three
	// whose first leaf would be (0 1).
	interior := append(append([]byte(nil), rfc6962.DefaultHasher.HashLeaf(ps[0].claims)...), ps[0].proof.Path[0]...)
	// The v1 seal of the same claims, with a proof appended.
	var c SealClaims
	_ = json.Unmarshal(a.claims, &c)
	v1, _ := hub.Sign(c)
	// A request signature of the hub with a proof appended.
	req, _ := hub.Sign(RequestClaims{ExchangeID: c.ExchangeID, IssuedAt: time.Now()})
	// An untyped token of the hub whose payload looks like a batch.
	untyped, _ := hub.Sign(map[string]any{"v": 2, "size": 1, "root": single.batch.Root})

	cases := map[string]string{
		"tampered claims":        a.with(jws, forged, a.proof),
		"tampered path":          a.with(jws, a.claims, bent),
		"other index":            a.with(jws, a.claims, idx),
		"index out of range":     a.with(jws, a.claims, outOfRange),
		"other size":             a.with(jws, a.claims, size),
		"longer path":            a.with(jws, a.claims, grow),
		"shorter path":           a.with(jws, a.claims, shrink),
		"no path":                a.with(jws, a.claims, sealProof{Index: a.proof.Index, Size: 5, Path: [][]byte{}}),
		"tampered root":          a.with(strings.Join(otherRoot, "."), forged, a.proof),
		"claims of another seal": a.with(jws, b.claims, a.proof),
		"proof of another seal":  a.with(jws, a.claims, b.proof),
		"another batch's JWS":    a.with(other.jws, a.claims, a.proof),
		"smaller batch's JWS":    a.with(single.jws, a.claims, a.proof),
		"single with a path":     single.with(single.jws, single.claims, sealProof{Size: 1, Path: a.proof.Path[:1]}),
		"interior node":          a.with(jws, interior, sealProof{Index: 0, Size: 3, Path: ps[0].proof.Path[1:]}),
		"batch JWS as v1 seal":   jws,
		"v1 JWS as batch":        single.with(v1, a.claims, single.proof),
		"request JWS as batch":   single.with(req, a.claims, single.proof),
		"untyped JWS as batch":   single.with(untyped, single.claims, single.proof),
		"two parts":              jws + "~" + a.claims64,
		"four parts":             valid + "~",
		"empty claims":           jws + "~~" + a.proof64,
		"padded claims":          jws + "~" + base64.URLEncoding.EncodeToString(a.claims) + "~" + a.proof64,
		"proof with garbage":     valid + "!",
		"claims with garbage":    jws + "~" + a.claims64 + "=~" + a.proof64,
		"proof not JSON":         jws + "~" + a.claims64 + "~" + encodeSegment([]byte("[1]")),
		"leading space":          " " + valid,
		"too long":               valid + strings.Repeat("A", MaxTokenLen),
		"empty":                  "~~",
	}
	for name, bad := range cases {
		if _, err := VerifySeal(bad, body, pool, time.Now()); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("%s: %v does not wrap ErrInvalidSignature", name, err)
		}
	}
	// The batch JWS is neither a v1 seal nor a request signature.
	if _, err := Verify(jws, pool, time.Now(), &SealClaims{}); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("batch JWS verified as a v1 seal: %v", err)
	}
	if _, err := Verify(jws, pool, time.Now(), &RequestClaims{}); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("batch JWS verified as a request signature: %v", err)
	}
	r, _ := http.NewRequest(http.MethodGet, "https://provider.example/persons/1", nil)
	r.Header.Set(HeaderHubSignature, jws)
	if _, err := VerifyHubRequest(r, nil, pool, time.Now(), 0); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("batch JWS accepted as the hub's request signature: %v", err)
	}
	r.Header.Set(HeaderHubSignature, valid)
	if _, err := VerifyHubRequest(r, nil, pool, time.Now(), 0); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("v2 seal accepted as the hub's request signature: %v", err)
	}
	// A v1 seal still verifies.
	if got, err := VerifySeal(v1, body, pool, time.Now()); err != nil || got.ExchangeID != c.ExchangeID {
		t.Errorf("v1 seal: %+v %v", got, err)
	}
}

func TestSealSignerAndValidity(t *testing.T) {
	ca := testCA(t)
	body := []byte(`{"name":"x"}`)
	claims := sealsFor(1, body)[0]
	now := time.Now()
	seal := func(s *Signer) string {
		t.Helper()
		tok, err := NewSealSigner(s).Seal(context.Background(), claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Another CA's "hub".
	if _, err := VerifySeal(seal(testSigner(t, otherCA(t), HubParticipant)), body, ca.Pool(), now); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("other CA: %v", err)
	}
	// A participant of the network other than the hub.
	if _, err := VerifySeal(seal(testSigner(t, ca, "alice")), body, ca.Pool(), now); !errors.Is(err, ErrUnexpectedSigner) {
		t.Errorf("alice's seal: %v", err)
	}
	// The hub's certificate valid for two hours: fine within, not after
	// nor before.
	s, err := NewSigner(issueTLSAt(t, ca, HubParticipant, now.Add(-time.Hour), now.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	tok := seal(s)
	for _, pass := range []string{"cold", "warm"} {
		if pass == "cold" {
			resetVerifyCache()
		}
		if _, err := VerifySeal(tok, body, ca.Pool(), now); err != nil {
			t.Fatalf("%s: %v", pass, err)
		}
		for name, at := range map[string]time.Time{"expired": now.Add(2 * time.Hour), "not yet valid": now.Add(-2 * time.Hour)} {
			if _, err := VerifySeal(tok, body, ca.Pool(), at); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("%s (%s): %v", name, pass, err)
			}
		}
	}
}

// TestSealRotate: a seal made after Rotate carries the renewed certificate.
func TestSealRotate(t *testing.T) {
	ca := testCA(t)
	s, err := NewSigner(hubServerCert(t, ca))
	if err != nil {
		t.Fatal(err)
	}
	q := NewSealSigner(s)
	body := []byte(`{"name":"x"}`)
	claims := sealsFor(2, body)
	before, err := q.Seal(context.Background(), claims[0])
	if err != nil {
		t.Fatal(err)
	}
	renewed := hubServerCert(t, ca)
	if err := s.Rotate(renewed); err != nil {
		t.Fatal(err)
	}
	after, err := q.Seal(context.Background(), claims[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{before, after} {
		if _, err := VerifySeal(tok, body, ca.Pool(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var hdr struct{ X5c [][]byte }
	_ = json.Unmarshal(decodeSegment(t, parseSeal(t, after).jws, 0), &hdr)
	if len(hdr.X5c) == 0 || string(hdr.X5c[0]) != string(renewed.Certificate[0]) {
		t.Fatal("the seal after Rotate is not signed with the renewed certificate")
	}
}

// TestSealCancel: a waiter whose ctx is cancelled leaves the queue without
// harm to the others; one cancelled once its batch is taken still signs
// for the others.
func TestSealCancel(t *testing.T) {
	ca := testCA(t)
	q := NewSealSigner(testSigner(t, ca, HubParticipant))
	body := []byte(`{"name":"x"}`)
	claims := sealsFor(4, body)

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Seal(done, claims[0]); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}

	hold(q)
	type result struct {
		tok string
		err error
	}
	results := make([]chan result, 3)
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	for i := range results {
		results[i] = make(chan result, 1)
		ctx := context.Background()
		if i == 1 {
			ctx = ctx1
		}
		go func() {
			tok, err := q.Seal(ctx, claims[i])
			results[i] <- result{tok, err}
		}()
		waitFor(t, "queued", func() bool { return queued(q) == i+1 })
	}
	cancel1()
	if r := <-results[1]; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", r.err)
	}
	if queued(q) != 2 {
		t.Fatalf("%d queued after a cancellation, want 2", queued(q))
	}
	q.handOff(nil)
	for _, i := range []int{0, 2} {
		r := <-results[i]
		if r.err != nil {
			t.Fatal(r.err)
		}
		if c, err := VerifySeal(r.tok, body, ca.Pool(), time.Now()); err != nil || c.ExchangeID != claims[i].ExchangeID {
			t.Fatalf("waiter %d: %+v %v", i, c, err)
		}
	}

	// Cancelled after its batch was taken (it is to sign): it signs for
	// the other waiter all the same.
	hold(q)
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	first, second := make(chan result, 1), make(chan result, 1)
	go func() { tok, err := q.Seal(ctx3, claims[3]); first <- result{tok, err} }()
	waitFor(t, "queued", func() bool { return queued(q) == 1 })
	go func() { tok, err := q.Seal(context.Background(), claims[2]); second <- result{tok, err} }()
	waitFor(t, "queued", func() bool { return queued(q) == 2 })
	q.mu.Lock()
	batch := append([]*sealReq(nil), q.queue...)
	q.queue = q.queue[:0]
	q.mu.Unlock()
	cancel3()
	time.Sleep(20 * time.Millisecond) // the cancelled caller finds itself taken
	batch[0].batch = batch
	close(batch[0].done)
	for _, ch := range []chan result{first, second} {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		if _, err := VerifySeal(r.tok, body, ca.Pool(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// The signer is free again: the next caller signs at once.
	if _, err := q.Seal(context.Background(), claims[0]); err != nil {
		t.Fatal(err)
	}
	if q.mu.Lock(); q.busy || len(q.queue) != 0 {
		t.Fatal("signer not released")
	}
	q.mu.Unlock()
}

// TestSealInterop: a v2 seal checks with go-jose and the network CA alone,
// and its claims with RFC 6962 hashing done by hand and with
// transparency-dev/merkle.
func TestSealInterop(t *testing.T) {
	ca := testCA(t)
	q := NewSealSigner(testSigner(t, ca, HubParticipant))
	body := []byte(`{"name":"x"}`)
	for _, tok := range sealTogether(t, q, sealsFor(3, body)) {
		p := parseSeal(t, tok)
		obj, err := jose.ParseSignedCompact(p.jws, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		h := obj.Signatures[0].Protected
		if h.ExtraHeaders[jose.HeaderType] != TypeSealBatch {
			t.Fatalf("typ %v", h.ExtraHeaders[jose.HeaderType])
		}
		chains, err := h.Certificates(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := obj.Verify(chains[0][0].PublicKey.(*ecdsa.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			V    int    `json:"v"`
			Size uint64 `json:"size"`
			Root []byte `json:"root"`
		}
		if err := json.Unmarshal(payload, &b); err != nil || b.V != 2 || b.Size != 3 {
			t.Fatalf("payload %s: %v", payload, err)
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(p.claims)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.proof.Index, p.proof.Size, leaf, p.proof.Path, b.Root); err != nil {
			t.Fatal(err)
		}
		// By hand: RFC 6962 §2.1, a tree of three leaves is ((0 1) 2).
		sum := func(prefix byte, parts ...[]byte) []byte {
			h := sha256.New()
			h.Write([]byte{prefix})
			for _, p := range parts {
				h.Write(p)
			}
			return h.Sum(nil)
		}
		node := sum(0, p.claims)
		switch p.proof.Index {
		case 0:
			node = sum(1, sum(1, node, p.proof.Path[0]), p.proof.Path[1])
		case 1:
			node = sum(1, sum(1, p.proof.Path[0], node), p.proof.Path[1])
		case 2:
			node = sum(1, p.proof.Path[0], node)
		}
		if string(node) != string(b.Root) {
			t.Fatalf("index %d: root by hand differs", p.proof.Index)
		}
	}
}

func FuzzVerifySeal(f *testing.F) {
	ca := testCA(f)
	pool := ca.Pool()
	hub := testSigner(f, ca, HubParticipant)
	q := NewSealSigner(hub)
	body := []byte(`{"name":"x"}`)
	claims := sealsFor(4, body)
	known := map[string]string{} // exchange id → claims JSON
	for _, c := range claims {
		b, _ := json.Marshal(c)
		known[c.ExchangeID] = string(b)
	}
	v1, err := hub.Sign(claims[0])
	if err != nil {
		f.Fatal(err)
	}
	single, err := q.Seal(context.Background(), claims[1])
	if err != nil {
		f.Fatal(err)
	}
	batch := sealTogether(f, q, claims[2:])
	parts := strings.Split(batch[0], SealSeparator)
	for _, seed := range []string{
		v1, single, batch[0], batch[1], "", "~", "~~", "~~~", "a.b.c~d~e", parts[0], parts[0] + "~~",
		parts[0] + "~" + parts[1] + "~", parts[0] + "~" + parts[1] + "~e30", v1 + "~" + parts[1] + "~" + parts[2],
	} {
		f.Add(seed)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, token string) {
		c, err := VerifySeal(token, body, pool, now)
		if err != nil {
			return
		}
		if _, ok := known[c.ExchangeID]; !ok {
			t.Fatalf("accepted %q with claims %+v", token, c)
		}
		if p := strings.Split(token, SealSeparator); len(p) == 3 {
			// The claims part is one the hub sealed, byte for byte.
			if b, _ := base64.RawURLEncoding.DecodeString(p[1]); string(b) != known[c.ExchangeID] {
				t.Fatalf("accepted claims %s, sealed %s", b, known[c.ExchangeID])
			}
		}
	})
}

// BenchmarkSeal: one caller at a time, so every seal is a batch of one
// (compare BenchmarkSign: the cost of the tree and the v2 format).
func BenchmarkSeal(b *testing.B) {
	q := NewSealSigner(testSigner(b, testCA(b), HubParticipant))
	claims := sampleSeal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Seal(context.Background(), claims); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignParallel: v1 seals (one signature each) from concurrent
// callers: the cost BenchmarkSealParallel is compared with.
func BenchmarkSignParallel(b *testing.B) {
	hub := testSigner(b, testCA(b), HubParticipant)
	claims := sampleSeal()
	for _, g := range []int{2, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := hub.Sign(claims); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSealParallel: v2 seals from concurrent callers through one
// SealSigner; sigs/seal is the signatures made per seal.
func BenchmarkSealParallel(b *testing.B) {
	hub := testSigner(b, testCA(b), HubParticipant)
	claims := sampleSeal()
	for _, g := range []int{2, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			q := NewSealSigner(hub)
			b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := q.Seal(context.Background(), claims); err != nil {
						b.Error(err)
						return
					}
				}
			})
			seals, sigs := q.Counts()
			b.ReportMetric(float64(sigs)/float64(seals), "sigs/seal")
		})
	}
}

// BenchmarkSealMixed: 64 concurrent callers that each do about 250 µs of
// other CPU work between seals (as an exchange does around its seal), so
// that the signer competes for the CPU as in the hub: sigs/seal is what
// the combining saves there, without any waiting on purpose.
func BenchmarkSealMixed(b *testing.B) {
	hub := testSigner(b, testCA(b), HubParticipant)
	claims := sampleSeal()
	work := func() {
		// ~250 µs of hashing (calibrated below).
		var h [32]byte
		for range workRounds {
			h = sha256.Sum256(h[:])
		}
		workSink = h[0]
	}
	calibrateWork()
	for _, mode := range []string{"v1", "v2"} {
		b.Run(mode, func(b *testing.B) {
			q := NewSealSigner(hub)
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					work()
					var err error
					if mode == "v1" {
						_, err = hub.Sign(claims)
					} else {
						_, err = q.Seal(context.Background(), claims)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			if seals, sigs := q.Counts(); seals > 0 {
				b.ReportMetric(float64(sigs)/float64(seals), "sigs/seal")
			}
		})
	}
}

var (
	workRounds    int
	workSink      byte
	calibrateOnce sync.Once
)

func calibrateWork() {
	calibrateOnce.Do(func() {
		const n = 20000
		var h [32]byte
		start := time.Now()
		for range n {
			h = sha256.Sum256(h[:])
		}
		workSink = h[0]
		workRounds = int(float64(n) * float64(250*time.Microsecond) / float64(time.Since(start)))
	})
}

func TestSealGroupOneSignature(t *testing.T) {
	ca := testCA(t)
	q := NewSealSigner(testSigner(t, ca, HubParticipant))
	roots := ca.Pool()
	claims := make([]*SealClaims, 12)
	bodies := make([][]byte, len(claims))
	for i := range claims {
		bodies[i] = []byte(fmt.Sprintf(`{"n":%d}`, i))
		c := sealsFor(i+1, bodies[i])[i]
		claims[i] = &c
	}
	seals, err := q.SealGroup(claims)
	if err != nil {
		t.Fatal(err)
	}
	if _, sigs := q.Counts(); sigs != 1 {
		t.Errorf("%d signatures for a group of %d, want 1", sigs, len(claims))
	}
	jws := map[string]bool{}
	for i, tok := range seals {
		c, err := VerifySeal(tok, bodies[i], roots, time.Now())
		if err != nil {
			t.Fatalf("seal %d: %v", i, err)
		}
		if c.ExchangeID != claims[i].ExchangeID {
			t.Errorf("seal %d names exchange %s, want %s", i, c.ExchangeID, claims[i].ExchangeID)
		}
		jws[strings.Split(tok, SealSeparator)[0]] = true
		if _, err := VerifySeal(tok, bodies[(i+1)%len(bodies)], roots, time.Now()); err == nil {
			t.Errorf("seal %d verifies over another response", i)
		}
	}
	if len(jws) != 1 {
		t.Errorf("%d distinct signatures in the group", len(jws))
	}
}
