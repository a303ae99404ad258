package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

var testPassphrase = []byte("correct horse battery staple")

// initTestCA creates an encrypted CA on disk once per test binary run and
// returns its directory (each InitCA/LoadCA costs 600,000 PBKDF2 rounds).
func initTestCA(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := InitCA(dir, testPassphrase, "Crossroads Root CA"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInitAndLoadCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := InitCA(dir, testPassphrase, "Crossroads Root CA")
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Certificate()
	if !c.IsCA || c.Subject.CommonName != "Crossroads Root CA" || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("unexpected CA certificate: CA=%v CN=%q alg=%v", c.IsCA, c.Subject.CommonName, c.PublicKeyAlgorithm)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < CAValidity || got > CAValidity+time.Hour {
		t.Errorf("CA validity %v, want about %v", got, CAValidity)
	}
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	certFile, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certFile, ca.CertPEM()) {
		t.Error("ca.crt differs from CertPEM")
	}
	// The key is not stored in the clear.
	keyData, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := x509.MarshalPKCS8PrivateKey(ca.key)
	if bytes.Contains(keyData, plain) || bytes.Contains(keyData, mustBytes(t, ca.key)) || bytes.Contains(keyData, []byte("PRIVATE KEY")) {
		t.Fatal("key file holds the private key in the clear")
	}
	var kf keyFile
	if err := json.Unmarshal(keyData, &kf); err != nil {
		t.Fatal(err)
	}
	if kf.Version != 1 || kf.Iterations < 600_000 || len(kf.Salt) < 16 || kf.KDF != "pbkdf2-sha256" || kf.Cipher != "aes-256-gcm" {
		t.Errorf("key file header %+v", kf)
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2", len(entries))
	}

	loaded, err := LoadCA(dir, testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Certificate().Equal(c) || !loaded.key.Equal(ca.key) {
		t.Fatal("loaded CA differs")
	}

	// Refuses to overwrite.
	if _, err := InitCA(dir, testPassphrase, "again"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("InitCA over an existing CA: %v, want ErrExist", err)
	}
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(dir, testPassphrase, "again"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("InitCA over an existing key: %v, want ErrExist", err)
	}
}

func TestInitCARejects(t *testing.T) {
	if _, err := InitCA(t.TempDir(), []byte("short"), "CA"); err == nil {
		t.Error("short passphrase accepted")
	}
	if _, err := InitCA(t.TempDir(), testPassphrase, "  "); err == nil {
		t.Error("empty common name accepted")
	}
}

func TestLoadCAWrongPassphrase(t *testing.T) {
	dir := initTestCA(t)
	_, err := LoadCA(dir, []byte("correct horse battery stapl3"))
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("LoadCA with wrong passphrase: %v, want ErrWrongPassphrase", err)
	}
	if !strings.Contains(err.Error(), "wrong CA passphrase") {
		t.Errorf("error %q is not clear", err)
	}
	if _, err := LoadCA(dir, nil); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("LoadCA with empty passphrase: %v", err)
	}
}

func TestLoadCATampered(t *testing.T) {
	dir := initTestCA(t)
	keyPath := filepath.Join(dir, CAKeyFile)
	orig, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var kf keyFile
	if err := json.Unmarshal(orig, &kf); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(k *keyFile)) []byte {
		k := kf
		k.Ciphertext = bytes.Clone(kf.Ciphertext)
		k.Nonce = bytes.Clone(kf.Nonce)
		f(&k)
		b, err := json.Marshal(&k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
		want []error // any of
	}{
		{"flipped ciphertext bit", edit(func(k *keyFile) { k.Ciphertext[5] ^= 1 }), []error{ErrCorruptKeyFile}},
		{"flipped tag bit", edit(func(k *keyFile) { k.Ciphertext[len(k.Ciphertext)-1] ^= 0x80 }), []error{ErrCorruptKeyFile}},
		{"changed nonce", edit(func(k *keyFile) { k.Nonce[0] ^= 1 }), []error{ErrCorruptKeyFile}},
		{"truncated ciphertext", edit(func(k *keyFile) { k.Ciphertext = k.Ciphertext[:10] }), []error{ErrCorruptKeyFile}},
		{"changed iterations", edit(func(k *keyFile) { k.Iterations++ }), []error{ErrWrongPassphrase, ErrCorruptKeyFile}},
		{"huge iterations", edit(func(k *keyFile) { k.Iterations = 1 << 40 }), []error{ErrCorruptKeyFile}},
		{"low iterations", edit(func(k *keyFile) { k.Iterations = 1000 }), []error{ErrCorruptKeyFile}},
		{"other version", edit(func(k *keyFile) { k.Version = 2 }), []error{ErrCorruptKeyFile}},
		{"garbage", []byte("not json at all"), []error{ErrCorruptKeyFile}},
		{"unknown field", append(bytes.TrimSuffix(bytes.TrimSpace(orig), []byte("}")), []byte(`,"extra":1}`)...), []error{ErrCorruptKeyFile}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(keyPath, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCA(dir, testPassphrase)
			if err == nil || !slices.ContainsFunc(c.want, func(w error) bool { return errors.Is(err, w) }) {
				t.Fatalf("LoadCA: %v, want one of %v", err, c.want)
			}
		})
	}

	// A valid key file of another CA (same passphrase) does not match ca.crt.
	t.Run("key of another CA", func(t *testing.T) {
		other := initTestCA(t)
		b, err := os.ReadFile(filepath.Join(other, CAKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCA(dir, testPassphrase); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("LoadCA with a foreign key: %v", err)
		}
	})
	t.Run("missing certificate", func(t *testing.T) {
		if _, err := LoadCA(t.TempDir(), testPassphrase); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LoadCA of an empty directory: %v", err)
		}
	})
}

func TestPassphrase(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pass")
	if err := os.WriteFile(file, []byte("from the file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PKI_TEST_PASS", "from the env")
	if p, err := Passphrase("PKI_TEST_PASS", file); err != nil || string(p) != "from the env" {
		t.Errorf("env: %q, %v", p, err)
	}
	t.Setenv("PKI_TEST_PASS", "")
	if p, err := Passphrase("PKI_TEST_PASS", file); err != nil || string(p) != "from the file" {
		t.Errorf("file: %q, %v", p, err)
	}
	if _, err := Passphrase("PKI_TEST_PASS", ""); err == nil || !strings.Contains(err.Error(), "PKI_TEST_PASS") {
		t.Errorf("neither: %v", err)
	}
	if _, err := Passphrase("", ""); err == nil {
		t.Error("no sources: no error")
	}
	if _, err := Passphrase("", filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Passphrase("", empty); err == nil {
		t.Error("empty file: no error")
	}
}

func TestIssue(t *testing.T) {
	ca := testCA(t)
	for _, server := range []bool{false, true} {
		certPEM, keyPEM, rec, err := ca.Issue(IssueRequest{
			Participant: "rsz.example",
			DNSNames:    []string{"rsz.example"},
			IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)},
			Server:      server,
		})
		if err != nil {
			t.Fatal(err)
		}
		kp, err := LoadKeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c := kp.Leaf
		if c == nil {
			t.Fatal("Leaf not set")
		}
		if k, ok := kp.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
			t.Fatalf("key %T, want ECDSA P-256", kp.PrivateKey)
		}
		id, err := ParticipantID(c)
		if err != nil || id != "rsz.example" || c.Subject.CommonName != "rsz.example" {
			t.Fatalf("participant %q (%v), CN %q", id, err, c.Subject.CommonName)
		}
		wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if server {
			wantEKU = append(wantEKU, x509.ExtKeyUsageServerAuth)
		}
		if !slices.Equal(c.ExtKeyUsage, wantEKU) || c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("server=%v: EKU %v IsCA %v KU %v", server, c.ExtKeyUsage, c.IsCA, c.KeyUsage)
		}
		if d := time.Until(c.NotAfter); d < DefaultCertValidity-time.Hour || d > DefaultCertValidity {
			t.Errorf("validity left %v, want about a year", d)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("does not chain to the CA: %v", err)
		}
		if server {
			if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "rsz.example"}); err != nil {
				t.Errorf("server cert: %v", err)
			}
		}
		if rec.Serial != SerialHex(c) || rec.Participant != "rsz.example" || !rec.NotAfter.Equal(c.NotAfter) ||
			!rec.NotBefore.Equal(c.NotBefore) || rec.PEM != string(certPEM) || !rec.RevokedAt.IsZero() {
			t.Errorf("record %+v does not describe the certificate", rec)
		}
	}
}

func TestIssueValidity(t *testing.T) {
	ca := testCA(t)
	certPEM, _, _, err := ca.Issue(IssueRequest{Participant: "a", Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEMCert(t, certPEM)
	if d := time.Until(c.NotAfter); d > 48*time.Hour || d < 47*time.Hour {
		t.Errorf("validity %v, want 48h", d)
	}
	// Never beyond the CA.
	certPEM, _, _, err = ca.Issue(IssueRequest{Participant: "a", Validity: 20 * CAValidity})
	if err != nil {
		t.Fatal(err)
	}
	if c := parsePEMCert(t, certPEM); c.NotAfter.After(ca.Certificate().NotAfter) {
		t.Errorf("certificate outlives the CA: %v > %v", c.NotAfter, ca.Certificate().NotAfter)
	}
	if _, _, _, err := ca.Issue(IssueRequest{Participant: "a", Validity: -time.Hour}); err == nil {
		t.Error("negative validity accepted")
	}
	// Serials differ.
	a, _, _, _ := ca.Issue(IssueRequest{Participant: "a"})
	b, _, _, _ := ca.Issue(IssueRequest{Participant: "a"})
	if SerialHex(parsePEMCert(t, a)) == SerialHex(parsePEMCert(t, b)) {
		t.Error("two certificates share a serial")
	}
}

func parsePEMCert(t testing.TB, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParticipantIDValidation(t *testing.T) {
	valid := []string{"a", "0", "hub", "rsz.example", "a-b.c-d", "x1", strings.Repeat("a", 63), "a."}
	invalid := []string{"", "Hub", "-a", ".a", "a_b", "a b", "a/b", "a:b", "é", strings.Repeat("a", 64), "a\x00", "ab\n"}
	ca := testCA(t)
	for _, id := range valid {
		if err := ValidateParticipantID(id); err != nil {
			t.Errorf("%q rejected: %v", id, err)
		}
	}
	for _, id := range invalid {
		if err := ValidateParticipantID(id); !errors.Is(err, ErrInvalidParticipant) {
			t.Errorf("%q accepted (%v)", id, err)
		}
		if _, _, _, err := ca.Issue(IssueRequest{Participant: id}); !errors.Is(err, ErrInvalidParticipant) {
			t.Errorf("Issue(%q): %v", id, err)
		}
		if _, _, err := ca.SignCSR(makeCSR(t, mustP256(t), nil), id, 0); !errors.Is(err, ErrInvalidParticipant) {
			t.Errorf("SignCSR(%q): %v", id, err)
		}
	}
}

// rawCert signs an arbitrary template with the test CA.
func rawCert(t *testing.T, ca *CA, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key := mustP256(t)
	tmpl.SerialNumber = big.NewInt(42)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParticipantIDFromCertificate(t *testing.T) {
	ca := testCA(t)
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name string
		uris []*url.URL
		cn   string
		want string
	}{
		{"ok", []*url.URL{u("https://x.example"), u("urn:crossroads:participant:alice")}, "alice", "alice"},
		{"CN only", nil, "alice", ""},
		{"other URN", []*url.URL{u("urn:example:participant:alice")}, "alice", ""},
		{"two ids", []*url.URL{u("urn:crossroads:participant:alice"), u("urn:crossroads:participant:bob")}, "alice", ""},
		{"invalid id", []*url.URL{u("urn:crossroads:participant:Alice")}, "Alice", ""},
		{"empty id", []*url.URL{u("urn:crossroads:participant:")}, "", ""},
		{"query", []*url.URL{u("urn:crossroads:participant:alice?x=1")}, "alice", ""},
		{"fragment", []*url.URL{u("urn:crossroads:participant:alice#x")}, "alice", ""},
		{"other scheme", []*url.URL{u("urx:crossroads:participant:alice")}, "alice", ""},
	}
	for _, c := range cases {
		cert := rawCert(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: c.cn}, URIs: c.uris})
		got, err := ParticipantID(cert)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: got %q, want error", c.name, got)
			}
		} else if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := ParticipantID(nil); err == nil {
		t.Error("nil certificate accepted")
	}
}

func TestSerialHex(t *testing.T) {
	c := &x509.Certificate{SerialNumber: new(big.Int).SetBytes([]byte{0x00, 0xAB, 0x0C, 0xDE})}
	if got := SerialHex(c); got != "ab0cde" {
		t.Errorf("SerialHex = %q, want ab0cde", got)
	}
}

func mustP256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeCSR(t testing.TB, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE REQUEST", der)
}

func TestSignCSR(t *testing.T) {
	ca := testCA(t)
	evil, _ := url.Parse("urn:crossroads:participant:hub")
	sneaky := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "hub"},
		URIs:     []*url.URL{evil},
		DNSNames: []string{"hub.example"},
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]any{"p256": mustP256(t), "ed25519": edKey} {
		t.Run(name, func(t *testing.T) {
			certPEM, rec, err := ca.SignCSR(makeCSR(t, key, sneaky), "onem.example", 30*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			c := parsePEMCert(t, certPEM)
			if id, err := ParticipantID(c); err != nil || id != "onem.example" || c.Subject.CommonName != "onem.example" {
				t.Fatalf("participant %q (%v), CN %q: the CSR's subject must be ignored", id, err, c.Subject.CommonName)
			}
			if len(c.URIs) != 1 || len(c.DNSNames) != 0 {
				t.Errorf("CSR SANs leaked into the certificate: %v %v", c.URIs, c.DNSNames)
			}
			if slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
				t.Error("client CSR got serverAuth")
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Error(err)
			}
			if rec.Serial != SerialHex(c) || rec.Participant != "onem.example" {
				t.Errorf("record %+v", rec)
			}
			if !c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.(crypto.Signer).Public()) {
				t.Error("certificate does not certify the CSR's key")
			}
		})
	}
	t.Run("server request", func(t *testing.T) {
		certPEM, _, err := ca.SignCSRRequest(makeCSR(t, mustP256(t), sneaky), IssueRequest{Participant: "src", DNSNames: []string{"src.example"}, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		c := parsePEMCert(t, certPEM)
		if !slices.Equal(c.DNSNames, []string{"src.example"}) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
			t.Errorf("names %v EKU %v", c.DNSNames, c.ExtKeyUsage)
		}
	})

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	good := makeCSR(t, mustP256(t), nil)
	block, _ := pem.Decode(good)
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-3] ^= 0x01 // inside the signature
	resigned := func() []byte {
		// A CSR whose body was changed after signing: swap in another key.
		csr, _ := x509.ParseCertificateRequest(block.Bytes)
		other := makeCSR(t, mustP256(t), nil)
		ob, _ := pem.Decode(other)
		oc, _ := x509.ParseCertificateRequest(ob.Bytes)
		// body of "other" with the signature of "good"
		return pemBlock("CERTIFICATE REQUEST", spliceCSR(t, oc.RawTBSCertificateRequest, csr))
	}()
	bad := map[string][]byte{
		"rsa key":            makeCSR(t, rsaKey, nil),
		"p384 key":           makeCSR(t, p384, nil),
		"bad signature":      pemBlock("CERTIFICATE REQUEST", tampered),
		"swapped public key": resigned,
		"not PEM":            []byte("hello"),
		"certificate":        ca.CertPEM(),
		"garbage DER":        pemBlock("CERTIFICATE REQUEST", []byte{0x30, 0x03, 0x01, 0x01, 0xff}),
	}
	for name, csr := range bad {
		if _, _, err := ca.SignCSR(csr, "onem.example", 0); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "rsa key" || name == "p384 key" {
			if !errors.Is(err, ErrUnsupportedKey) {
				t.Errorf("%s: %v, want ErrUnsupportedKey", name, err)
			}
		}
	}
}

// spliceCSR builds a CSR DER from tbs and the signature algorithm and
// signature of sigFrom.
func spliceCSR(t *testing.T, tbs []byte, sigFrom *x509.CertificateRequest) []byte {
	t.Helper()
	var outer struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(sigFrom.Raw, &outer); err != nil {
		t.Fatal(err)
	}
	outer.TBS = asn1.RawValue{FullBytes: tbs}
	der, err := asn1.Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func mustBytes(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
