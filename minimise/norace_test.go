//go:build !race

package minimise

// hostileSize is larger than the memory bound: what is checked is that
// memory does not follow the input.
const hostileSize = 40 << 20
