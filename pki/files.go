package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// LoadPool reads PEM certificates (e.g. the network CA's ca.crt) into a
// pool.
func LoadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("pki: CA certificate %s: no PEM certificate", file)
	}
	return pool, nil
}

// LoadClientTLS is ClientTLSConfig from files: a participant's certificate
// and key, and the network CA to trust.
func LoadClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: client certificate: %w", err)
	}
	pool, err := LoadPool(caFile)
	if err != nil {
		return nil, err
	}
	return ClientTLSConfig(pool, pair), nil
}
