package efgs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA-1 signatures are accepted as the reference accepts them (docs/efgs.md)
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/smallstep/pkcs7"
)

// KeyBytesToVerify is what a batch signature covers of one key: the
// base64 of each field, each followed by '.': keyData,
// rollingStartIntervalNumber, rollingPeriod, transmissionRiskLevel (each
// integer as 4 bytes big-endian), visitedCountries joined by ',', origin,
// reportType and days_since_onset_of_symptoms — the reference's layout,
// checked against its cross-language vectors (CSharpTestdata.txt).
func KeyBytesToVerify(k *DiagnosisKey) []byte {
	return appendKeyBytes(make([]byte, 0, 128), k)
}

func appendKeyBytes(b []byte, k *DiagnosisKey) []byte {
	field := func(v []byte) {
		b = base64.StdEncoding.AppendEncode(b, v)
		b = append(b, '.')
	}
	i32 := func(v uint32) {
		var w [4]byte
		binary.BigEndian.PutUint32(w[:], v)
		field(w[:])
	}
	field(k.KeyData)
	i32(k.RollingStartIntervalNumber)
	i32(k.RollingPeriod)
	i32(uint32(k.TransmissionRiskLevel))
	// visitedCountries joined by ',' without building the string.
	var joined [128]byte
	j := joined[:0]
	for n, c := range k.VisitedCountries {
		if n > 0 {
			j = append(j, ',')
		}
		j = append(j, c...)
	}
	field(j)
	field([]byte(k.Origin))
	i32(uint32(k.ReportType))
	i32(uint32(k.DaysSinceOnsetOfSymptoms))
	return b
}

// BatchBytesToVerify is what a batch signature covers: every key's
// KeyBytesToVerify, ordered by their base64 encodings, concatenated. The
// keys' strings and their base64 share two buffers (no allocation per key).
func BatchBytesToVerify(bt *DiagnosisKeyBatch) []byte {
	type span struct{ raw0, raw1, b0, b1 int }
	spans := make([]span, len(bt.Keys))
	raw := make([]byte, 0, len(bt.Keys)*112)
	for i := range bt.Keys {
		start := len(raw)
		raw = appendKeyBytes(raw, &bt.Keys[i])
		spans[i].raw0, spans[i].raw1 = start, len(raw)
	}
	enc := make([]byte, 0, base64.StdEncoding.EncodedLen(len(raw))+len(bt.Keys)*2)
	for i := range spans {
		start := len(enc)
		enc = base64.StdEncoding.AppendEncode(enc, raw[spans[i].raw0:spans[i].raw1])
		spans[i].b0, spans[i].b1 = start, len(enc)
	}
	slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(enc[a.b0:a.b1], enc[b.b0:b.b1]) })
	out := make([]byte, 0, len(raw))
	for _, sp := range spans {
		out = append(out, raw[sp.raw0:sp.raw1]...)
	}
	return out
}

// Thumbprint is the SHA-256 of a certificate's DER in lower-case hex, as
// the reference names certificates.
func Thumbprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// NormaliseThumbprint lower-cases a thumbprint and drops ':' separators (a
// load balancer's header may carry either form).
func NormaliseThumbprint(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
}

// Errors of VerifyBatchSignature.
var (
	ErrSignatureMissing   = errors.New("efgs: batch signature missing")
	ErrSignatureMalformed = errors.New("efgs: batch signature is not a base64 CMS SignedData")
	ErrSignatureInvalid   = errors.New("efgs: batch signature does not verify")
)

// ParseSignature decodes a batchSignature header: base64 (standard, with
// or without padding) of a DER/BER CMS SignedData with exactly one signer
// whose certificate it carries.
func ParseSignature(header string) (*pkcs7.PKCS7, *x509.Certificate, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, nil, ErrSignatureMissing
	}
	der, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		if der, err = base64.RawStdEncoding.DecodeString(header); err != nil {
			return nil, nil, ErrSignatureMalformed
		}
	}
	p7, err := parsePKCS7(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSignatureMalformed, err)
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, nil, fmt.Errorf("%w: not exactly one signer with its certificate", ErrSignatureMalformed)
	}
	return p7, signer, nil
}

// parsePKCS7 is pkcs7.Parse, its panics on hostile input turned into errors.
func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if v := recover(); v != nil {
			p7, err = nil, fmt.Errorf("unparsable CMS")
		}
	}()
	return pkcs7.Parse(der)
}

// VerifyDetached checks p7 as the detached signature of content. Digest
// and signature algorithms are those real national backends use:
// SHA-256/384/512 with RSA (PKCS #1 v1.5) or ECDSA, and SHA-1 with RSA or
// ECDSA, which the reference (BouncyCastle) accepts and Go's x509 no
// longer does — for those the last step, the public-key check over the
// signed attributes, is done here with crypto/rsa or crypto/ecdsa after
// the library has checked the message digest.
func VerifyDetached(p7 *pkcs7.PKCS7, content []byte) (err error) {
	defer func() {
		if v := recover(); v != nil { // hostile input must not take the gateway down
			err = fmt.Errorf("%w: unverifiable CMS", ErrSignatureInvalid)
		}
	}()
	if len(p7.Content) > 0 && !bytes.Equal(p7.Content, content) {
		return fmt.Errorf("%w: the signature carries other content", ErrSignatureInvalid)
	}
	p7.Content = content
	err = p7.Verify()
	if err == nil {
		return nil
	}
	var insecure x509.InsecureAlgorithmError
	if !errors.As(err, &insecure) {
		return fmt.Errorf("%w: %v", ErrSignatureInvalid, err)
	}
	alg := x509.SignatureAlgorithm(insecure)
	if alg != x509.SHA1WithRSA && alg != x509.ECDSAWithSHA1 {
		return fmt.Errorf("%w: %v", ErrSignatureInvalid, err)
	}
	si := p7.Signers[0]
	signed := content
	if len(si.AuthenticatedAttributes) > 0 {
		// Verify has checked the messageDigest attribute against content;
		// the signature covers the DER SET OF the attributes.
		type attr struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue `asn1:"set"`
		}
		as := make([]attr, len(si.AuthenticatedAttributes))
		for i, a := range si.AuthenticatedAttributes {
			as[i] = attr{a.Type, a.Value}
		}
		enc, err := asn1.Marshal(struct {
			A []attr `asn1:"set"`
		}{as})
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSignatureInvalid, err)
		}
		var raw asn1.RawValue
		if _, err := asn1.Unmarshal(enc, &raw); err != nil {
			return fmt.Errorf("%w: %v", ErrSignatureInvalid, err)
		}
		signed = raw.Bytes
	}
	sum := sha1.Sum(signed) //nolint:gosec // see above
	signer := p7.GetOnlySigner()
	switch pub := signer.PublicKey.(type) {
	case *rsa.PublicKey:
		if alg == x509.SHA1WithRSA && rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], si.EncryptedDigest) == nil {
			return nil
		}
	case *ecdsa.PublicKey:
		if alg == x509.ECDSAWithSHA1 && ecdsa.VerifyASN1(pub, sum[:], si.EncryptedDigest) {
			return nil
		}
	}
	return fmt.Errorf("%w: SHA-1 signature does not verify", ErrSignatureInvalid)
}
