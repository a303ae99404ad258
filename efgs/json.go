package efgs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// The JSON form is the reference's (protobuf-java-format JsonFormat with
// base64 bytes): field names as the .proto spells them (camelCase, and
// days_since_onset_of_symptoms in snake_case), enums by name, fields at
// their default value left out. On input the lowerCamelCase spelling
// daysSinceOnsetOfSymptoms and enum numbers are accepted as well.

type jsonKey struct {
	KeyData                    *string         `json:"keyData"`
	RollingStartIntervalNumber *uint32         `json:"rollingStartIntervalNumber"`
	RollingPeriod              *uint32         `json:"rollingPeriod"`
	TransmissionRiskLevel      *int32          `json:"transmissionRiskLevel"`
	VisitedCountries           []string        `json:"visitedCountries"`
	Origin                     *string         `json:"origin"`
	ReportType                 json.RawMessage `json:"reportType"`
	DaysSinceOnset             *int32          `json:"days_since_onset_of_symptoms"`
	DaysSinceOnsetCamel        *int32          `json:"daysSinceOnsetOfSymptoms"`
}

type jsonBatch struct {
	Keys []json.RawMessage `json:"keys"`
}

// UnmarshalJSONBatch decodes the JSON form of a batch, refusing unknown
// fields, and stopping beyond maxKeys keys (ErrTooManyKeys; <= 0: no limit).
func UnmarshalJSONBatch(b []byte, maxKeys int) (*DiagnosisKeyBatch, error) {
	var jb jsonBatch
	if err := strictJSON(b, &jb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if maxKeys > 0 && len(jb.Keys) > maxKeys {
		return nil, ErrTooManyKeys
	}
	bt := &DiagnosisKeyBatch{Keys: make([]DiagnosisKey, len(jb.Keys))}
	for i, raw := range jb.Keys {
		var jk jsonKey
		if err := strictJSON(raw, &jk); err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrMalformed, i, err)
		}
		k := &bt.Keys[i]
		if jk.KeyData != nil {
			v, err := base64.StdEncoding.DecodeString(*jk.KeyData)
			if err != nil {
				return nil, fmt.Errorf("%w: key %d: keyData is not base64", ErrMalformed, i)
			}
			k.KeyData = v
		}
		if jk.RollingStartIntervalNumber != nil {
			k.RollingStartIntervalNumber = *jk.RollingStartIntervalNumber
		}
		if jk.RollingPeriod != nil {
			k.RollingPeriod = *jk.RollingPeriod
		}
		if jk.TransmissionRiskLevel != nil {
			k.TransmissionRiskLevel = *jk.TransmissionRiskLevel
		}
		k.VisitedCountries = jk.VisitedCountries
		if jk.Origin != nil {
			k.Origin = *jk.Origin
		}
		if len(jk.ReportType) > 0 && string(jk.ReportType) != "null" {
			rt, err := parseReportType(jk.ReportType)
			if err != nil {
				return nil, fmt.Errorf("%w: key %d: %v", ErrMalformed, i, err)
			}
			k.ReportType = rt
		}
		switch {
		case jk.DaysSinceOnset != nil:
			k.DaysSinceOnsetOfSymptoms = *jk.DaysSinceOnset
		case jk.DaysSinceOnsetCamel != nil:
			k.DaysSinceOnsetOfSymptoms = *jk.DaysSinceOnsetCamel
		}
	}
	return bt, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

func parseReportType(raw json.RawMessage) (ReportType, error) {
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		for i, n := range reportNames {
			if n == name {
				return ReportType(i), nil
			}
		}
		return 0, fmt.Errorf("reportType %q is not a ReportType", name)
	}
	var num int32
	if err := json.Unmarshal(raw, &num); err != nil {
		return 0, fmt.Errorf("reportType must be a name or a number")
	}
	return ReportType(num), nil
}

// MarshalJSON is the reference's JSON form of the batch.
func (bt *DiagnosisKeyBatch) MarshalJSON() ([]byte, error) {
	return bt.AppendJSON(nil), nil
}

// AppendJSON appends the batch's JSON form to b.
func (bt *DiagnosisKeyBatch) AppendJSON(b []byte) []byte {
	if len(bt.Keys) == 0 {
		return append(b, "{}"...)
	}
	b = append(b, `{"keys":[`...)
	for i := range bt.Keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = bt.Keys[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

func (k *DiagnosisKey) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if len(k.KeyData) > 0 {
		field("keyData")
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, k.KeyData)
		b = append(b, '"')
	}
	if k.RollingStartIntervalNumber != 0 {
		field("rollingStartIntervalNumber")
		b = strconv.AppendUint(b, uint64(k.RollingStartIntervalNumber), 10)
	}
	if k.RollingPeriod != 0 {
		field("rollingPeriod")
		b = strconv.AppendUint(b, uint64(k.RollingPeriod), 10)
	}
	if k.TransmissionRiskLevel != 0 {
		field("transmissionRiskLevel")
		b = strconv.AppendInt(b, int64(k.TransmissionRiskLevel), 10)
	}
	if len(k.VisitedCountries) > 0 {
		field("visitedCountries")
		b = append(b, '[')
		for i, c := range k.VisitedCountries {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c)
		}
		b = append(b, ']')
	}
	if k.Origin != "" {
		field("origin")
		b = appendJSONString(b, k.Origin)
	}
	if k.ReportType != 0 {
		field("reportType")
		if k.ReportType > 0 && int(k.ReportType) < len(reportNames) {
			b = appendJSONString(b, reportNames[k.ReportType])
		} else {
			b = strconv.AppendInt(b, int64(k.ReportType), 10)
		}
	}
	if k.DaysSinceOnsetOfSymptoms != 0 {
		field("days_since_onset_of_symptoms")
		b = strconv.AppendInt(b, int64(k.DaysSinceOnsetOfSymptoms), 10)
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // strings always marshal
	return append(b, q...)
}
