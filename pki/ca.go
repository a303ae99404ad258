package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crossroads-hub/crossroads"
	"github.com/crossroads-hub/crossroads/atomicfile"
)

// File names inside a CA directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key.enc"
)

// Validity periods.
const (
	CAValidity          = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// backdate is subtracted from NotBefore to absorb clock skew between
	// the hub and participants.
	backdate = 5 * time.Minute
)

// HubParticipant is the participant id of the hub itself: the only signer
// VerifyHubRequest and VerifySeal accept.
const HubParticipant = "hub"

// ParticipantURIPrefix prefixes the participant id in a certificate's URI SAN.
const ParticipantURIPrefix = "urn:" + participantURNPrefix

const participantURNPrefix = "crossroads:participant:"

// MinPassphraseLen is the shortest passphrase InitCA accepts.
const MinPassphraseLen = 12

// Errors of the CA. Wrapped; test with errors.Is.
var (
	// ErrWrongPassphrase: the passphrase does not open the CA key file.
	ErrWrongPassphrase = errors.New("pki: wrong CA passphrase")
	// ErrCorruptKeyFile: the key file is malformed or has been tampered with.
	ErrCorruptKeyFile = errors.New("pki: CA key file corrupt or tampered with")
	// ErrInvalidParticipant: a participant id does not match ^[a-z0-9][a-z0-9.-]{0,62}$.
	ErrInvalidParticipant = errors.New("pki: invalid participant id")
	// ErrNoParticipant: a certificate carries no (or more than one) participant URI.
	ErrNoParticipant = errors.New("pki: certificate names no single participant")
	// ErrUnsupportedKey: a key type the network does not accept.
	ErrUnsupportedKey = errors.New("pki: unsupported key type")
)

// CA is the network certificate authority. It is immutable once loaded and
// safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// InitCA creates a new CA in dir (created 0700 if missing): a self-signed
// ECDSA P-256 certificate valid 10 years in dir/ca.crt and its private key,
// encrypted under passphrase, in dir/ca.key.enc (mode 0600). It refuses to
// overwrite an existing CA. The passphrase must be at least
// MinPassphraseLen bytes.
func InitCA(dir string, passphrase []byte, commonName string) (*CA, error) {
	if len(passphrase) < MinPassphraseLen {
		return nil, fmt.Errorf("pki: init CA: passphrase shorter than %d bytes", MinPassphraseLen)
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("pki: init CA: %s already exists: %w", p, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pki: init CA: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: init CA: create directory: %w", err)
	}
	ca, err := newCA(commonName, time.Now())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: init CA: marshal key: %w", err)
	}
	enc, err := encryptKey(der, passphrase)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("pki: init CA: %w", err)
	}
	// Key first: a crash in between leaves a key without a certificate,
	// which LoadCA reports and InitCA refuses to overwrite.
	if err := atomicfile.Write(keyPath, enc, 0o600); err != nil {
		return nil, fmt.Errorf("pki: init CA: write key: %w", err)
	}
	if err := atomicfile.Write(certPath, ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("pki: init CA: write certificate: %w", err)
	}
	return ca, nil
}

// newCA generates a CA key and self-signed certificate in memory.
func newCA(commonName string, now time.Time) (*CA, error) {
	commonName = strings.TrimSpace(commonName)
	if commonName == "" {
		return nil, errors.New("pki: init CA: empty common name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: init CA: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("pki: init CA: %w", err)
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("pki: init CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate).UTC().Truncate(time.Second),
		NotAfter:              now.Add(CAValidity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: init CA: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: init CA: parse certificate: %w", err)
	}
	return &CA{cert: cert, certPEM: pemCert(der), key: key}, nil
}

// LoadCA opens the CA in dir. A wrong passphrase yields ErrWrongPassphrase;
// a damaged or tampered key file ErrCorruptKeyFile; a key that does not
// belong to the certificate an error as well.
func LoadCA(dir string, passphrase []byte) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("pki: load CA certificate: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: load CA certificate: %s holds no PEM certificate", CACertFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA certificate: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, errors.New("pki: load CA certificate: not a CA certificate")
	}
	enc, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: load CA key: %w", err)
	}
	der, err := decryptKey(enc, passphrase)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA key: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA key: %w: %w", ErrCorruptKeyFile, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pki: load CA key: %w: not an ECDSA P-256 key", ErrUnsupportedKey)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: load CA: %s does not match the key in %s", CACertFile, CAKeyFile)
	}
	return &CA{cert: cert, certPEM: pemCert(cert.Raw), key: key}, nil
}

// Certificate returns the CA certificate. Do not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM form (a copy).
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Pool returns a new pool holding the CA certificate. Build it once and reuse
// it: Verify caches validated chains per pool.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// IssueRequest asks the CA for a participant certificate and key.
type IssueRequest struct {
	Participant string
	DNSNames    []string
	IPAddresses []net.IP
	// Validity defaults to DefaultCertValidity; it is cut at the CA's own
	// expiry.
	Validity time.Duration
	// Server adds the serverAuth extended key usage (authentic sources and
	// the hub); clientAuth is always present.
	Server bool
}

// Issue generates an ECDSA P-256 key and a certificate for it. It returns
// both in PEM form (the key as PKCS #8) and the record to store.
func (ca *CA) Issue(req IssueRequest) (certPEM, keyPEM []byte, rec crossroads.Certificate, err error) {
	if err := ValidateParticipantID(req.Participant); err != nil {
		return nil, nil, rec, fmt.Errorf("pki: issue: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, rec, fmt.Errorf("pki: issue: generate key: %w", err)
	}
	certPEM, rec, err = ca.issue(&key.PublicKey, req, time.Now())
	if err != nil {
		return nil, nil, rec, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, crossroads.Certificate{}, fmt.Errorf("pki: issue: marshal key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	return certPEM, keyPEM, rec, nil
}

// SignCSR certifies a key that never leaves the institution: a client
// certificate for participant, valid for validity (0: the default). See
// SignCSRRequest.
func (ca *CA) SignCSR(csrPEM []byte, participant string, validity time.Duration) (certPEM []byte, rec crossroads.Certificate, err error) {
	return ca.SignCSRRequest(csrPEM, IssueRequest{Participant: participant, Validity: validity})
}

// SignCSRRequest certifies the public key of a PEM certificate signing
// request. It checks the CSR's self-signature and accepts ECDSA P-256 and
// Ed25519 keys only. Everything else in the CSR (subject, SANs, extensions)
// is ignored: the participant id, names, addresses, validity and usage all
// come from req, which the operator vouches for.
func (ca *CA) SignCSRRequest(csrPEM []byte, req IssueRequest) (certPEM []byte, rec crossroads.Certificate, err error) {
	if err := ValidateParticipantID(req.Participant); err != nil {
		return nil, rec, fmt.Errorf("pki: sign CSR: %w", err)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") {
		return nil, rec, errors.New("pki: sign CSR: no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, rec, fmt.Errorf("pki: sign CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, rec, fmt.Errorf("pki: sign CSR: bad signature: %w", err)
	}
	switch pub := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, rec, fmt.Errorf("pki: sign CSR: %w: ECDSA on %s (want P-256)", ErrUnsupportedKey, pub.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, rec, fmt.Errorf("pki: sign CSR: %w: %T (want ECDSA P-256 or Ed25519)", ErrUnsupportedKey, pub)
	}
	return ca.issue(csr.PublicKey, req, time.Now())
}

// issue signs a certificate for pub valid from now (backdated) for
// req.Validity.
func (ca *CA) issue(pub crypto.PublicKey, req IssueRequest, now time.Time) ([]byte, crossroads.Certificate, error) {
	validity := req.Validity
	switch {
	case validity == 0:
		validity = DefaultCertValidity
	case validity < 0:
		return nil, crossroads.Certificate{}, errors.New("pki: issue: negative validity")
	}
	notBefore := now.Add(-backdate)
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	return ca.sign(pub, req, notBefore, notAfter)
}

// sign creates the participant certificate with explicit validity bounds.
func (ca *CA) sign(pub crypto.PublicKey, req IssueRequest, notBefore, notAfter time.Time) ([]byte, crossroads.Certificate, error) {
	var rec crossroads.Certificate
	if err := ValidateParticipantID(req.Participant); err != nil {
		return nil, rec, fmt.Errorf("pki: issue: %w", err)
	}
	notBefore, notAfter = notBefore.UTC().Truncate(time.Second), notAfter.UTC().Truncate(time.Second)
	if !notAfter.After(notBefore) {
		return nil, rec, errors.New("pki: issue: empty validity period")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, rec, fmt.Errorf("pki: issue: %w", err)
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, rec, fmt.Errorf("pki: issue: %w", err)
	}
	uri, err := url.Parse(ParticipantURIPrefix + req.Participant)
	if err != nil {
		return nil, rec, fmt.Errorf("pki: issue: %w", err)
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if req.Server {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.Participant},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		URIs:                  []*url.URL{uri},
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, rec, fmt.Errorf("pki: issue: create certificate: %w", err)
	}
	certPEM := pemCert(der)
	rec = crossroads.Certificate{
		Serial:      serialText(serial),
		Participant: req.Participant,
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		PEM:         string(certPEM),
	}
	return certPEM, rec, nil
}

// ValidateParticipantID checks id against ^[a-z0-9][a-z0-9.-]{0,62}$.
func ValidateParticipantID(id string) error {
	if len(id) == 0 || len(id) > 63 {
		return fmt.Errorf("%w: length %d (want 1–63)", ErrInvalidParticipant, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: %q", ErrInvalidParticipant, id)
		}
	}
	return nil
}

// ParticipantID returns the participant id a certificate carries in its
// single "urn:crossroads:participant:<id>" URI SAN.
func ParticipantID(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", ErrNoParticipant
	}
	id, found := "", false
	for _, u := range cert.URIs {
		if u.Scheme != "urn" {
			continue
		}
		s, ok := strings.CutPrefix(u.Opaque, participantURNPrefix)
		if !ok {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: several participant URIs", ErrNoParticipant)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil || u.Host != "" {
			return "", fmt.Errorf("%w: malformed participant URI", ErrInvalidParticipant)
		}
		id, found = s, true
	}
	if !found {
		return "", ErrNoParticipant
	}
	if err := ValidateParticipantID(id); err != nil {
		return "", err
	}
	return id, nil
}

// SerialHex returns the certificate's serial number in lowercase hex without
// separators or leading zeros: the form crossroads.Certificate.Serial uses.
func SerialHex(cert *x509.Certificate) string {
	return serialText(cert.SerialNumber)
}

func serialText(n *big.Int) string { return n.Text(16) }

// randomSerial returns a positive 128-bit random serial number.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("serial number: %w", err)
		}
		b[0] &= 0x7f
		n := new(big.Int).SetBytes(b)
		if n.BitLen() > 64 { // keep the number long: never a short, guessable serial
			return n, nil
		}
	}
}

// subjectKeyID is the SHA-256 of the subject public key, cut to 20 bytes
// (RFC 7093 method 1).
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("subject key id: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("subject key id: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
