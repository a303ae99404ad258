package audit

import (
	"context"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Test hooks for the external tests (package audit_test).

// SetNoIntegrate makes the trail never integrate records into the log, as
// if it crashed right after making them durable.
func SetNoIntegrate(c *Config) { c.noIntegrate = true }

// SetBeforeMark installs a hook called between integrating records into
// the log and recording their indexes; an error simulates a crash there.
func SetBeforeMark(c *Config, f func() error) { c.beforeMark = f }

// SetTamperProof installs a hook that may alter the consistency proofs sent
// to witnesses.
func SetTamperProof(c *Config, f func([]tlog.Hash)) { c.tamperProof = f }

// LogCheckpoint returns the log's own latest signed checkpoint (before
// witnessing).
func LogCheckpoint(t *Trail) ([]byte, error) {
	return t.lg.reader.ReadCheckpoint(context.Background())
}

// SetTempMinAge sets the age from which Tessera's orphan temporary files
// are removed.
func SetTempMinAge(c *Config, d time.Duration) { c.tempMinAge = d }

// IsLogTemp exposes isLogTemp.
func IsLogTemp(dir, name string) bool { return isLogTemp(dir, name) }
