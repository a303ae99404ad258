package directory

import (
	"syscall"
	"unsafe"
)

// hugeMin is the table size from which its memory is advised for huge
// pages: below, the 2 MiB pages would not be filled.
const hugeMin = 4 << 20

// newSlots allocates a table's slots. A national directory's tables are
// gigabytes read at random, one slot per decision: with 4 KiB pages nearly
// every lookup also misses the TLB and walks the page tables (more cache
// misses), so large tables are advised for transparent huge pages
// (MADV_HUGEPAGE; the kernel's default, "madvise", honours it). The
// advice is best effort: it changes where the bytes live, never what they
// are.
func newSlots(n int) []slot {
	s := make([]slot, n)
	size := uintptr(n) * unsafe.Sizeof(slot{})
	if size < hugeMin {
		return s
	}
	const huge = 2 << 20
	p := unsafe.Pointer(unsafe.SliceData(s))
	start := uintptr(p)
	lo := (start + huge - 1) &^ (huge - 1)
	hi := (start + size) &^ (huge - 1)
	if hi > lo {
		_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, lo-start)), hi-lo), 14 /* MADV_HUGEPAGE */)
	}
	return s
}
