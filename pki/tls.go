package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ServerTLSConfig returns the hub's TLS 1.3 server configuration: it presents
// hub, asks for a client certificate (not required: some routes are public)
// and verifies any it gets against pool. Its VerifyConnection refuses, on
// every full or resumed handshake, a client certificate that is revoked in
// revs (may be nil), outside its validity period or without a participant
// id. Handlers must still authenticate each request with CheckPeer.
func ServerTLSConfig(pool *x509.CertPool, hub tls.Certificate, revs *Revocations) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{hub},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil // anonymous client: public routes only
			}
			if len(cs.VerifiedChains) == 0 {
				return ErrNoClientCertificate
			}
			leaf := cs.VerifiedChains[0][0]
			if err := checkLeaf(leaf, revs, time.Now()); err != nil {
				return err
			}
			if _, err := ParticipantID(leaf); err != nil {
				return err
			}
			return nil
		},
	}
}

// ClientTLSConfig returns a TLS 1.3 client configuration that presents cert
// and trusts only pool. The server name is checked as usual (the transport
// sets ServerName from the URL).
func ClientTLSConfig(pool *x509.CertPool, cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
	}
}

// LoadKeyPair parses a PEM certificate (chain) and private key into a
// tls.Certificate with Leaf set.
func LoadKeyPair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: load key pair: %w", err)
	}
	if len(c.Certificate) == 0 {
		return tls.Certificate{}, errors.New("pki: load key pair: no certificate")
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("pki: load key pair: %w", err)
		}
	}
	return c, nil
}
