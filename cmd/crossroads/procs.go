package main

import (
	"os"
	"runtime"
)

// minProcs is the least GOMAXPROCS the hub's process runs with.
//
// The audit trail's group commit blocks in fsync (and SQLite's writes are
// system calls too). Go gives a P held by a goroutine in a system call to
// another thread only when sysmon notices, so with GOMAXPROCS=1 (a process
// confined to one core: a container with one CPU, or taskset) the whole
// hub stops for each fsync, nothing new reaches the group commit meanwhile,
// and every commit carries one record. Measured with `crossroads bench
// --separate` (hub pinned to one core): 1,023 exchanges/s, 1.1 records per
// commit and 699 µs of CPU per exchange with one P; 2,495/s, 26.7 per
// commit and 380 µs with two (docs/performance.md). A second P costs
// nothing when there is nothing to run.
const minProcs = 2

// tuneProcs raises GOMAXPROCS to minProcs unless the GOMAXPROCS variable
// sets it.
func tuneProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}
