//go:build race

package minimise

// Under the race detector, the large hostile documents are smaller (the
// memory bound is still checked; it no longer exceeds the input size).
const hostileSize = 4 << 20
