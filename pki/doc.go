// Package pki runs the network's own certificate authority and everything
// that hangs off it: participant certificates, live revocation (refusing new
// handshakes and closing open connections without a restart), the TLS 1.3
// configurations of the hub, and the hub's signatures (the Crossroads-Seal on
// released responses and the Crossroads-Hub-Signature on forwarded requests).
//
// Identity. A participant is named by the URI SAN
// "urn:crossroads:participant:<id>" of its certificate (the subject CN carries
// the same id, for humans). ParticipantID is the only way to read it.
//
// CA key at rest. The CA private key (ECDSA P-256, PKCS #8) is encrypted with
// AES-256-GCM under a key derived from the passphrase with PBKDF2-HMAC-SHA-256
// (600,000 iterations, 16-byte random salt). The key file is a small
// versioned JSON document; every header field is bound to the ciphertext as
// additional data, and a separate check value tells a wrong passphrase apart
// from a tampered file.
//
// Hot paths. Revocations.IsRevoked is a lock-free map lookup. Verify caches,
// per byte-identical protected header, the certificate chain it has already
// validated, so repeat verifications of one signer cost one ECDSA
// verification plus JSON decoding.
//
// Nothing in this package logs key material or passphrases, and error
// messages about signed requests name the mismatching field, never its value
// (values may be personal data).
package pki
