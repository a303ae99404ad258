package spedemo

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/demo"
	"github.com/crossroads-hub/crossroads/hub"
	"github.com/crossroads-hub/crossroads/pki"
)

// Peer hub ids: how each hub's registers name the other.
const (
	HubA = "hub-a"
	HubB = "hub-b"
)

// PeerCert has hub b's CA issue the certificate hub a presents to it
// (participant HubA in b's registers): the pre-approved peer certificate
// of TIR-31.
func PeerCert(ctx context.Context, b *demo.Running) (tls.Certificate, error) {
	certPEM, keyPEM, rec, err := b.Hub.CA.Issue(pki.IssueRequest{Participant: HubA})
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := b.Hub.Registers.RecordCertificate(ctx, rec); err != nil {
		return tls.Certificate{}, err
	}
	return pki.LoadKeyPair(certPEM, keyPEM)
}

// PeerConfig configures hub a to reach hub b with cert.
func PeerConfig(b *demo.Running, cert tls.Certificate) func(*hub.Config) {
	return func(c *hub.Config) {
		c.SPE.Peers = map[string]hub.SPEPeer{HubB: {Roots: b.Hub.CA.Pool(), Certificate: cert}}
	}
}

// Federate sets the permit up on two hubs: on b first (naming hub a as its
// peer, hub a a participant of b's registers), then on a (naming b).
// Hospital A's data is on hub a, hospital B's on hub b.
func Federate(ctx context.Context, a, b *demo.Running) (wa, wb *World, err error) {
	wb, err = Setup(ctx, b, Options{
		Peers: []crossroads.PermitPeer{{Hub: HubA, URL: a.Base}},
		Extra: []crossroads.Participant{{ID: HubA, Name: "Peer hub A", Kind: crossroads.KindNationalBackend, Status: crossroads.StatusActive}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("hub b: %w", err)
	}
	wa, err = Setup(ctx, a, Options{Peers: []crossroads.PermitPeer{{Hub: HubB, URL: b.Base}}})
	if err != nil {
		return nil, nil, fmt.Errorf("hub a: %w", err)
	}
	return wa, wb, nil
}
