package load

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"
)

// EphemeralPKI is a throw-away CA with a server certificate for 127.0.0.1
// and localhost and one client certificate: enough for mutual TLS on the
// loopback interface in tests and self-benchmarks.
type EphemeralPKI struct {
	Pool   *x509.CertPool
	Server tls.Certificate
	Client tls.Certificate
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// NewEphemeralPKI generates the CA and certificates (ECDSA P-256).
func NewEphemeralPKI() (*EphemeralPKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("load: pki: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "load test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("load: pki: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("load: pki: %w", err)
	}
	p := &EphemeralPKI{Pool: x509.NewCertPool(), ca: ca, caKey: key}
	p.Pool.AddCert(ca)
	if p.Server, err = p.Issue("127.0.0.1", x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if p.Client, err = p.Issue("load client", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
}

// Issue signs a certificate for name with the given usage; server
// certificates also cover 127.0.0.1, ::1 and localhost.
func (p *EphemeralPKI) Issue(name string, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load: pki: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load: pki: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load: pki: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load: pki: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerTLS is a TLS 1.3 server configuration requiring a client
// certificate from the CA, offering HTTP/2 and HTTP/1.1.
func (p *EphemeralPKI) ServerTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.Server},
		ClientCAs:    p.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// ClientTLS is a TLS 1.3 client configuration with the client certificate.
func (p *EphemeralPKI) ClientTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.Client},
		RootCAs:      p.Pool,
		MinVersion:   tls.VersionTLS13,
	}
}

// TrivialServer serves 200 {"ok":true} to any request over mutual TLS on
// 127.0.0.1 (a random port). It returns the base URL and a function that
// stops the server.
func TrivialServer(serverTLS *tls.Config) (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("load: trivial server: %w", err)
	}
	body := []byte(`{"ok":true}` + "\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // the client reports failures
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, serverTLS)) // ends with ErrServerClosed
	}()
	return "https://" + ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

// SelfBench measures the generator's own ceiling: it runs cfg against a
// trivial mutual-TLS server on 127.0.0.1 in the same process (so both share
// the machine). Target, TLS and, if empty, Requests are filled in.
func SelfBench(ctx context.Context, cfg Config) (*Report, error) {
	p, err := NewEphemeralPKI()
	if err != nil {
		return nil, err
	}
	base, stop, err := TrivialServer(p.ServerTLS())
	if err != nil {
		return nil, err
	}
	defer stop()
	cfg.Target, cfg.TLS = base, p.ClientTLS()
	if len(cfg.Requests) == 0 {
		cfg.Requests = []Request{{Method: http.MethodGet, Path: "/ping", Expect: http.StatusOK}}
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		return rep, fmt.Errorf("load: self-bench: %w", err)
	}
	if rep.Responses == 0 {
		return rep, errors.New("load: self-bench: no responses")
	}
	return rep, nil
}
