// Package efgs is Crossroads' federation-gateway profile: wire-compatible
// with the European Federation Gateway Service (EFGS, seed 004). National
// backends upload signed batches of diagnosis keys and download each
// other's batches; every act is a record of the verifiable audit trail.
//
// The wire schema (protobuf package eu.interop) is encoded and decoded by
// hand with protowire: it has two messages and one enum, a generated file
// would add reflection and a protoc step to the build for nothing, and the
// hand decoder enforces exactly what the reference's Java decoder does
// (last value of a scalar wins, unknown fields skipped, strings UTF-8).
package efgs

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// ReportType is the eu.interop.ReportType enum.
type ReportType int32

// Report types.
const (
	ReportUnknown                    ReportType = 0
	ReportConfirmedTest              ReportType = 1
	ReportConfirmedClinicalDiagnosis ReportType = 2
	ReportSelfReport                 ReportType = 3
	ReportRecursive                  ReportType = 4
	ReportRevoked                    ReportType = 5
)

var reportNames = []string{"UNKNOWN", "CONFIRMED_TEST", "CONFIRMED_CLINICAL_DIAGNOSIS", "SELF_REPORT", "RECURSIVE", "REVOKED"}

// String is the enum value's protobuf name (its number if it has none).
func (r ReportType) String() string {
	if r >= 0 && int(r) < len(reportNames) {
		return reportNames[r]
	}
	return fmt.Sprint(int32(r))
}

// DiagnosisKey is the eu.interop.DiagnosisKey message.
type DiagnosisKey struct {
	KeyData                    []byte     // field 1
	RollingStartIntervalNumber uint32     // field 2
	RollingPeriod              uint32     // field 3
	TransmissionRiskLevel      int32      // field 4
	VisitedCountries           []string   // field 5, order kept as received
	Origin                     string     // field 6
	ReportType                 ReportType // field 7
	DaysSinceOnsetOfSymptoms   int32      // field 8 (sint32)
}

// DiagnosisKeyBatch is the eu.interop.DiagnosisKeyBatch message.
type DiagnosisKeyBatch struct {
	Keys []DiagnosisKey // field 1
}

// ErrMalformed is returned for a body that does not decode.
var ErrMalformed = errors.New("efgs: malformed batch")

// AppendProto appends k's protobuf encoding (proto3: default values omitted).
func (k *DiagnosisKey) AppendProto(b []byte) []byte {
	if len(k.KeyData) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, k.KeyData)
	}
	if k.RollingStartIntervalNumber != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k.RollingStartIntervalNumber))
	}
	if k.RollingPeriod != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k.RollingPeriod))
	}
	if k.TransmissionRiskLevel != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(k.TransmissionRiskLevel))) // int32: sign-extended
	}
	for _, c := range k.VisitedCountries {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendString(b, c)
	}
	if k.Origin != "" {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, k.Origin)
	}
	if k.ReportType != 0 {
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(k.ReportType)))
	}
	if k.DaysSinceOnsetOfSymptoms != 0 {
		b = protowire.AppendTag(b, 8, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(k.DaysSinceOnsetOfSymptoms)))
	}
	return b
}

// MarshalProto is the batch's protobuf encoding.
func (bt *DiagnosisKeyBatch) MarshalProto() []byte {
	var b, kb []byte
	for i := range bt.Keys {
		kb = bt.Keys[i].AppendProto(kb[:0])
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, kb)
	}
	return b
}

// UnmarshalBatch decodes a DiagnosisKeyBatch. It stops with an error once
// the batch holds more than maxKeys keys (maxKeys <= 0: no limit), so that
// an oversized body costs no more than maxKeys keys' decoding; the error is
// then ErrTooManyKeys.
func UnmarshalBatch(b []byte, maxKeys int) (*DiagnosisKeyBatch, error) {
	bt := &DiagnosisKeyBatch{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("%w: key: %v", ErrMalformed, protowire.ParseError(n))
			}
			b = b[n:]
			if maxKeys > 0 && len(bt.Keys) >= maxKeys {
				return nil, ErrTooManyKeys
			}
			var k DiagnosisKey
			if err := k.UnmarshalProto(v); err != nil {
				return nil, fmt.Errorf("key %d: %w", len(bt.Keys), err)
			}
			bt.Keys = append(bt.Keys, k)
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return bt, nil
}

// ErrTooManyKeys: the batch holds more keys than allowed.
var ErrTooManyKeys = errors.New("efgs: too many keys in the batch")

// UnmarshalProto decodes one DiagnosisKey message into k (proto3 rules:
// a repeated scalar's last value wins; a known field of another wire type
// is an unknown field, as for the reference's decoder).
func (k *DiagnosisKey) UnmarshalProto(b []byte) error {
	*k = DiagnosisKey{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num >= 2 && num <= 4 || typ == protowire.VarintType && (num == 7 || num == 8):
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 2:
				k.RollingStartIntervalNumber = uint32(v)
			case 3:
				k.RollingPeriod = uint32(v)
			case 4:
				k.TransmissionRiskLevel = int32(v)
			case 7:
				k.ReportType = ReportType(int32(v))
			case 8:
				k.DaysSinceOnsetOfSymptoms = int32(protowire.DecodeZigZag(v & 0xffffffff))
			}
		case typ == protowire.BytesType && (num == 1 || num == 5 || num == 6):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				k.KeyData = append([]byte(nil), v...)
			case 5, 6:
				if !utf8.Valid(v) {
					return fmt.Errorf("%w: field %d: invalid UTF-8", ErrMalformed, num)
				}
				if num == 5 {
					k.VisitedCountries = append(k.VisitedCountries, intern(v))
				} else {
					k.Origin = intern(v)
				}
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return nil
}

// countryCodes holds every two-upper-case-letter string, so that decoding
// the country codes of 5,000 keys allocates none.
var countryCodes = func() (t [26 * 26]string) {
	for i := range t {
		t[i] = string([]byte{'A' + byte(i/26), 'A' + byte(i%26)})
	}
	return t
}()

func intern(v []byte) string {
	if len(v) == 2 && v[0] >= 'A' && v[0] <= 'Z' && v[1] >= 'A' && v[1] <= 'Z' {
		return countryCodes[int(v[0]-'A')*26+int(v[1]-'A')]
	}
	return string(v)
}
