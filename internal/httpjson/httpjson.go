// Package httpjson writes the hub's JSON answers: one encoding, never
// cached, a newline at the end. Errors go through package problem.
package httpjson

import (
	"encoding/json"
	"net/http"

	"github.com/crossroads-hub/crossroads/problem"
)

// Write answers status with v as JSON (Cache-Control: no-store). A value
// that cannot be encoded is a 500 problem, with nothing of it sent.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, "internal-error", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
