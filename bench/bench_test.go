package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crossroads-hub/crossroads/internal/testbin"
)

// TestBenchSmoke runs a very short benchmark (the CI smoke of the load
// harness): all three targets answer, the hub's answers are the expected
// ones, and the report compares them. It asserts counts, never speed.
func TestBenchSmoke(t *testing.T) {
	res, err := Run(context.Background(), Options{
		Duration: 700 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Concurrency: 4, Rate: 100, People: 50, Subjects: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cmp  interface{ Markdown() string }
	}{{"closed", res.Closed}, {"open", res.Open}} {
		md := c.cmp.Markdown()
		for _, target := range []string{"hub", "bare-proxy", "direct"} {
			if !strings.Contains(md, "| "+target+" |") {
				t.Errorf("%s loop: no row for %s:\n%s", c.name, target, md)
			}
		}
	}
	hub := res.Closed.Results["hub"]
	if hub == nil || hub.Requests == 0 {
		t.Fatalf("the hub answered nothing: %+v", hub)
	}
	if hub.Unexpected != 0 || hub.ErrorCount() != 0 {
		t.Fatalf("hub: %d unexpected answers, %d errors", hub.Unexpected, hub.ErrorCount())
	}
	if Allowed(hub) == 0 {
		t.Fatal("no allowed exchange")
	}
}

func TestOptionsRejectNonsense(t *testing.T) {
	for _, o := range []Options{
		{Concurrency: -1}, {Rate: -5}, {People: 2}, {Denied: 1}, {SkipOpen: true, SkipClosed: true},
		{Duration: 2 * time.Minute},
	} {
		if err := o.defaults(); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// TestBenchSeparateSmoke runs the hub as a process of its own (the
// crossroads binary's bench --hub-child): the three targets answer, the
// hub's answers are the expected ones, and the hub process's CPU is
// reported. It asserts counts, never speed.
func TestBenchSeparateSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the crossroads binary")
	}
	res, err := Run(context.Background(), Options{
		Duration: 700 * time.Millisecond, Warmup: 300 * time.Millisecond,
		Concurrency: 4, People: 50, Subjects: 20, SkipOpen: true,
		Separate: true, HubCommand: []string{testbin.Build(t), "bench"},
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := res.Closed.Results["hub"]
	if hub == nil || hub.Requests == 0 || hub.Unexpected != 0 || hub.ErrorCount() != 0 || Allowed(hub) == 0 {
		t.Fatalf("hub: %+v", hub)
	}
	for _, target := range []string{"bare-proxy", "direct"} {
		if r := res.Closed.Results[target]; r == nil || r.Requests == 0 || r.Unexpected != 0 {
			t.Fatalf("%s: %+v", target, r)
		}
	}
	if res.HubCPUPerRequest["closed"]["hub"] <= 0 {
		t.Errorf("no CPU figure for the hub process: %v", res.HubCPUPerRequest)
	}
	if md := res.Markdown(); !strings.Contains(md, "--separate") || !strings.Contains(md, "CPU of the hub process alone") {
		t.Errorf("markdown does not describe the separate setup:\n%s", md)
	}
}
