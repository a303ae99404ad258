package spe

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// Content types a workspace recognises, by content, never by name (TIR-5).
const (
	TypeCSV     = "csv"
	TypeParquet = "parquet"
	TypeJSON    = "json"
	TypeText    = "text"
)

// Sniff classifies the first bytes of a file (at most 4 KiB are looked at):
// parquet by its magic number, JSON by its first non-space byte, CSV when
// the lines are UTF-8 text with the same number of fields (comma or
// semicolon separated, at least two), text when it is UTF-8 without NUL
// bytes. Anything else is "" (refused). final is true when head is the
// whole file (the last line need not be cut).
func Sniff(head []byte, final bool) string {
	if len(head) > 4096 {
		head, final = head[:4096], false
	}
	if bytes.HasPrefix(head, []byte("PAR1")) {
		return TypeParquet
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return ""
	}
	body := head
	if !final {
		// Drop the last, possibly cut line (and a cut rune with it).
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			body = body[:i+1]
		}
	}
	if !utf8.Valid(body) {
		return ""
	}
	t := bytes.TrimLeft(body, " \t\r\n\ufeff")
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return TypeJSON
	}
	if isCSV(body) {
		return TypeCSV
	}
	return TypeText
}

func isCSV(b []byte) bool {
	for _, sep := range []rune{',', ';'} {
		r := csv.NewReader(bytes.NewReader(b))
		r.Comma = sep
		r.ReuseRecord = true
		lines, fields := 0, 0
		ok := true
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				ok = false
				break
			}
			lines++
			if lines == 1 {
				fields = len(rec)
			}
		}
		if ok && lines >= 1 && fields >= 2 {
			return true
		}
	}
	return false
}

// checkWhole verifies a complete file of type typ: a CSV file must parse
// to the end with the same number of fields on every line, a JSON file
// must be one JSON value, a parquet file must end with its magic number.
func checkWhole(r io.Reader, typ string, size int64) error {
	switch typ {
	case TypeCSV:
		head := make([]byte, 4096)
		n, _ := io.ReadFull(r, head)
		sep := ','
		if !isCSVSep(head[:n], ',') {
			sep = ';'
		}
		cr := csv.NewReader(io.MultiReader(bytes.NewReader(head[:n]), r))
		cr.Comma = sep
		cr.ReuseRecord = true
		for {
			if _, err := cr.Read(); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
		}
	case TypeJSON:
		dec := json.NewDecoder(r)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return errors.New("more than one JSON value")
		}
		return nil
	case TypeParquet:
		if size < 12 {
			return errors.New("too short for parquet")
		}
		if _, err := io.CopyN(io.Discard, r, size-4); err != nil {
			return err
		}
		tail := make([]byte, 4)
		if _, err := io.ReadFull(r, tail); err != nil || string(tail) != "PAR1" {
			return errors.New("no parquet footer")
		}
		return nil
	default:
		_, err := io.Copy(io.Discard, r)
		return err
	}
}

func isCSVSep(b []byte, sep rune) bool {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.Comma = sep
	rec, err := r.Read()
	return err == nil && len(rec) >= 2
}
