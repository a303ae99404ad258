package spedemo_test

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/crossroads-hub/crossroads/demo"
	spedemo "github.com/crossroads-hub/crossroads/demo/spe"
)

// TestDemoScenario runs `crossroads demo --profile spe --scenario-only`.
func TestDemoScenario(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out bytes.Buffer
	err = spedemo.Run(ctx, demo.Options{DataDir: t.TempDir(), Listen: addr, People: 5, ScenarioOnly: true, Out: &out})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "federated count") {
		t.Fatal("scenario output")
	}
}
