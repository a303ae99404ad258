package main

import (
	"runtime"
	"testing"
)

func TestTuneProcsRaisesOneToTwo(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	tuneProcs()
	if n := runtime.GOMAXPROCS(0); n != minProcs {
		t.Fatalf("GOMAXPROCS %d after tuneProcs from 1, want %d", n, minProcs)
	}
}

func TestTuneProcsKeepsTheOperatorsChoice(t *testing.T) {
	t.Setenv("GOMAXPROCS", "1")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	tuneProcs()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("GOMAXPROCS %d with GOMAXPROCS=1 set, want 1", n)
	}
}
