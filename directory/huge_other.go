//go:build !linux

package directory

func newSlots(n int) []slot { return make([]slot, n) }
