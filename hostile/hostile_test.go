package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/audit"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/demo/demotest"
	"github.com/crossroads-hub/crossroads/hostile"
	"github.com/crossroads-hub/crossroads/pki"
)

// issue makes a certificate of the network CA for participant.
func issue(t *testing.T, r *demo.Running, participant string, validity time.Duration) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, rec, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: participant, Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Hub.Registers.RecordCertificate(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	c, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// expiredAndRevoked returns a certificate that has expired and one that
// has been revoked, both of the network CA for participant.
func expiredAndRevoked(t *testing.T, r *demo.Running, participant string) (expired, revoked tls.Certificate) {
	t.Helper()
	// pki issues no certificate valid in the past; one valid for a second
	// is expired soon enough.
	expired = issue(t, r, participant, time.Second)
	revoked = issue(t, r, participant, 0)
	serial := pki.SerialHex(revoked.Leaf)
	if err := r.Hub.Registers.RevokeCertificate(context.Background(), serial, time.Now(), "hostile test"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && !r.Hub.Revs.IsRevoked(serial); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !r.Hub.Revs.IsRevoked(serial) {
		t.Fatal("the hub did not learn of the revocation")
	}
	for i := 0; i < 60 && !time.Now().After(expired.Leaf.NotAfter.Add(100*time.Millisecond)); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	return expired, revoked
}

func target(t *testing.T, r *demo.Running) hostile.Target {
	t.Helper()
	p := r.People[0]
	svc, ok := r.Hub.Directory.Service(demo.ServicePerson)
	if !ok {
		t.Fatal("no person service")
	}
	return hostile.Target{
		Base: r.Base, Roots: r.Hub.CA.Pool(), Client: r.Certs[demo.OCMW],
		Service: demo.ServicePerson, Path: "persons/" + p.INSZ, Purpose: "social-aid", Subject: p.INSZ,
		OtherSubject: r.People[1].INSZ, WritePath: "persons/" + p.INSZ + "/address",
		Provider: svc.BaseURL, ProviderPath: "/persons/" + p.INSZ,
		SlowClients: 10,
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestRun runs every attack against a live demo hub and its provider.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("slowloris waits for the hub's header timeout")
	}
	r := demotest.Start(t, demo.Options{})
	ctx := context.Background()
	tg := target(t, r)
	expired, revoked := expiredAndRevoked(t, r, demo.OCMW)
	tg.Expired, tg.Revoked = &expired, &revoked
	tg.Impostor = impostor(t, r)

	heap0 := heapInuse()
	rep, err := hostile.Run(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Table())
	for _, f := range rep.Failed() {
		t.Errorf("%s: want %s, got %s (%s)", f.Name, f.Want, f.Got, f.Detail)
	}
	// The whole process (hub, providers and attacker) stays bounded.
	if heap1 := heapInuse(); heap1 > heap0+64<<20 {
		t.Errorf("heap in use grew from %d to %d MiB", heap0>>20, heap1>>20)
	}

	// Every attempt that reached the pipeline with a certificate is in the
	// audit trail.
	audited := 0
	for _, x := range rep.Results {
		if x.Audited {
			audited++
		}
	}
	var records int
	q := audit.Query{Participant: demo.OCMW, Limit: 1000}
	for range 10 {
		page, err := r.Hub.Trail.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		records += len(page.Records)
		if page.NextPageToken == "" {
			break
		}
		q.PageToken = page.NextPageToken
	}
	if records < audited {
		t.Errorf("%d audit records for %d audited attempts", records, audited)
	}
	if rep.UnauthenticatedCounted < 1 {
		t.Errorf("the anonymous exchange attempt was not counted")
	}
}

// TestHostileProviderResponses: a provider answering JSON bombs, deep
// nesting or too much cannot make the hub blow up: each is a 502 without
// internals, and memory stays bounded.
func TestHostileProviderResponses(t *testing.T) {
	r := demotest.Start(t, demo.Options{})
	p := r.People[0]
	bodies := map[string]func(w io.Writer){
		"deep10k":  func(w io.Writer) { w.Write(nested(10_000)) }, // beyond minimise.DefaultMaxDepth (64): refused
		"deep1m":   func(w io.Writer) { w.Write(nested(1_000_000)) },
		"deepobj":  func(w io.Writer) { w.Write([]byte(strings.Repeat(`{"a":`, 9_000) + "1" + strings.Repeat("}", 9_000))) },
		"huge":     func(w io.Writer) { w.Write(bytes.Repeat([]byte(" "), 11<<20)) },
		"wide":     func(w io.Writer) { w.Write([]byte("[" + strings.Repeat(`{"a":1},`, 1<<17) + "{}]")) },
		"keys":     func(w io.Writer) { writeKeys(w, 400_000) },
		"trailing": func(w io.Writer) { w.Write([]byte(`{"a":1} {"a":2}`)) },
		"invalid":  func(w io.Writer) { w.Write([]byte(`{"a":`)) },
	}
	want := map[string]int{"deep10k": 502, "deep1m": 502, "deepobj": 502, "huge": 502, "wide": 200, "keys": 200, "trailing": 502, "invalid": 502}
	for id, body := range bodies {
		demotest.AddProvider(t, r, "bomb-"+id, []string{"/a"}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			body(w)
		}))
	}
	heap0 := heapInuse()
	for id := range bodies {
		resp, b, err := r.Clients.Exchange(context.Background(), demo.OCMW, "bomb-"+id, "x/"+p.INSZ, "social-aid", p.INSZ)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if resp.StatusCode != want[id] {
			t.Errorf("%s: status %d, want %d: %.200s", id, resp.StatusCode, want[id], b)
		}
		if l := hostile.Leak(b); l != "" {
			t.Errorf("%s: leaks %q: %.200s", id, l, b)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Crossroads-Receipt") == "" {
			t.Errorf("%s: failure not audited", id)
		}
		t.Logf("%s: %d %.100s", id, resp.StatusCode, b)
	}
	if heap1 := heapInuse(); heap1 > heap0+64<<20 {
		t.Errorf("heap in use grew from %d to %d MiB", heap0>>20, heap1>>20)
	}
	if resp, _, err := r.Clients.Exchange(context.Background(), demo.OCMW, demo.ServicePerson, "persons/"+p.INSZ, "social-aid", p.INSZ); err != nil || resp.StatusCode != 200 {
		t.Fatalf("hub unwell after hostile providers: %v", err)
	}
}

func writeKeys(w io.Writer, n int) {
	bw := bufio.NewWriter(w)
	bw.WriteString("{")
	for i := range n {
		fmt.Fprintf(bw, `"k%d":%d,`, i, i)
	}
	bw.WriteString(`"a":1}`)
	bw.Flush()
}

func nested(depth int) []byte {
	return append(bytes.Repeat([]byte("["), depth), bytes.Repeat([]byte("]"), depth)...)
}

// TestReplayTowardProvider: a hub request captured on its way to a
// provider is served once; replayed within the freshness window, it is
// refused (the demo sources remember exchange ids).
func TestReplayTowardProvider(t *testing.T) {
	r := demotest.Start(t, demo.Options{})
	p := r.People[0]
	captured := make(chan http.Header, 1)
	url := demotest.Serve(t, r, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case captured <- req.Header.Clone():
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	// The same path as the population register's, so the capture can be
	// delivered there.
	demotest.RegisterService(t, r, crossroads.Service{ID: "capture", Provider: demo.PopulationRegister, BaseURL: url, Classification: 1, Fields: []string{""},
		Subject: crossroads.SubjectPerson, Operations: []crossroads.Operation{{ID: "read", Method: "GET", Path: "/persons/{subject}"}}}, []string{""}, nil)
	resp, b, err := r.Clients.Exchange(context.Background(), demo.OCMW, "capture", "persons/"+p.INSZ, "social-aid", p.INSZ)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("capture exchange: %v %s", err, b)
	}
	hdr := <-captured
	if hdr.Get(pki.HeaderHubSignature) == "" {
		t.Fatal("no hub signature captured")
	}
	svc, _ := r.Hub.Directory.Service(demo.ServicePerson)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: pki.ClientTLSConfig(r.Hub.CA.Pool(), r.Certs[demo.OCMW])}}
	send := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, svc.BaseURL+"/persons/"+p.INSZ, nil)
		for _, k := range []string{pki.HeaderHubSignature, "Crossroads-Exchange-Id", "Crossroads-Requester", "Crossroads-User", "Crossroads-Purpose", "Crossroads-Subject", "Crossroads-Authorisation"} {
			req.Header[k] = hdr[k]
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The first delivery (as if the capture had been a transparent proxy).
	if st, b := send(); st != 200 {
		t.Fatalf("first delivery: %d %s", st, b)
	}
	if st, b := send(); st != http.StatusUnauthorized || !strings.Contains(b, "replayed-request") {
		t.Fatalf("replay: %d %s", st, b)
	}
	// Tampering with any bound header breaks the signature.
	hdr.Set("Crossroads-Purpose", "marketing")
	if st, b := send(); st != http.StatusUnauthorized || !strings.Contains(b, "invalid-hub-signature") {
		t.Fatalf("tampered: %d %s", st, b)
	}
}

// impostor registers a service of the population register at a local
// address and returns the impostor cases for it: the population register's
// certificates (right, expired, revoked, to be revoked) and the employment
// register's (another participant's).
func impostor(t *testing.T, r *demo.Running) *hostile.Impostor {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	demotest.Register(t, r, "impostor-check", "https://"+ln.Addr().String(), []string{""})
	for i := 0; i < 100; i++ { // the hub rereads the registers every second
		if _, ok := r.Hub.Directory.Service("impostor-check"); ok {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	server := func(validity time.Duration) tls.Certificate {
		return issueServer(t, r, demo.PopulationRegister, validity)
	}
	expired := server(time.Second)
	revoked := server(0)
	if err := revoke(context.Background(), r, revoked.Leaf); err != nil {
		t.Fatal(err)
	}
	toRevoke := server(0)
	for time.Now().Before(expired.Leaf.NotAfter.Add(100 * time.Millisecond)) {
		time.Sleep(50 * time.Millisecond)
	}
	other := r.Certs[demo.EmploymentRegister]
	return &hostile.Impostor{
		Listener: ln, Service: "impostor-check", Path: "x/" + r.People[0].INSZ, Subject: r.People[0].INSZ,
		Right: r.Certs[demo.PopulationRegister], Other: &other, Expired: &expired, Revoked: &revoked,
		ToRevoke: &toRevoke, Revoke: func(ctx context.Context, c *x509.Certificate) error { return revoke(ctx, r, c) },
	}
}

// issueServer makes a server certificate of the network CA for
// participant at 127.0.0.1.
func issueServer(t *testing.T, r *demo.Running, participant string, validity time.Duration) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, rec, err := r.Hub.CA.Issue(pki.IssueRequest{Participant: participant, Validity: validity, Server: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Hub.Registers.RecordCertificate(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	c, err := pki.LoadKeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// revoke revokes c in the registers and waits until the hub has learnt it
// (its watcher then closes the connections).
func revoke(ctx context.Context, r *demo.Running, c *x509.Certificate) error {
	serial := pki.SerialHex(c)
	if err := r.Hub.Registers.RevokeCertificate(ctx, serial, time.Now(), "hostile test"); err != nil {
		return err
	}
	for i := 0; i < 100 && !r.Hub.Revs.IsRevoked(serial); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !r.Hub.Revs.IsRevoked(serial) {
		return fmt.Errorf("the hub did not learn of the revocation of %s", serial)
	}
	return nil
}

// TestProviderImpostor: the hub forwards only to the registered
// provider's own valid certificate: another participant's, a look-alike
// CA's, a self-signed, an expired or a revoked one is refused (502
// provider-unreachable, audited, nothing sent), and revoking the
// provider's certificate closes the hub's open connection to it.
func TestProviderImpostor(t *testing.T) {
	r := demotest.Start(t, demo.Options{})
	tg := target(t, r)
	tg.Impostor = impostor(t, r)
	rep, err := hostile.CheckProviders(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Table())
	for _, f := range rep.Failed() {
		t.Errorf("%s: want %s, got %s (%s)", f.Name, f.Want, f.Got, f.Detail)
	}
	if len(rep.Results) < 9 {
		t.Errorf("%d cases run, want 9", len(rep.Results))
	}
}
