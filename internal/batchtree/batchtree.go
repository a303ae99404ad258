// Package batchtree builds the small RFC 6962 Merkle tree over the items
// signed together once — the receipts of an audit group commit, the seals
// of its exchanges — and every item's inclusion proof, so that one
// signature over the root serves each item on its own.
package batchtree

import "github.com/transparency-dev/merkle/rfc6962"

// Root returns the RFC 6962 tree hash of leaf hashes and appends to
// paths[i] the inclusion proof of leaf i (§2.1.1), in one pass: every
// subtree hash is computed once, so the whole batch costs O(n log n).
// paths must have len(leaves) elements.
func Root(leaves [][]byte, paths [][][]byte) []byte {
	switch len(leaves) {
	case 0:
		return rfc6962.DefaultHasher.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := 1 // the largest power of two smaller than len(leaves)
	for k<<1 < len(leaves) {
		k <<= 1
	}
	left := Root(leaves[:k], paths[:k])
	right := Root(leaves[k:], paths[k:])
	for i := range paths[:k] {
		paths[i] = append(paths[i], right)
	}
	for i := range paths[k:] {
		paths[k+i] = append(paths[k+i], left)
	}
	return rfc6962.DefaultHasher.HashChildren(left, right)
}

// PathLen is the longest inclusion path in a tree of n leaves: ⌈log2 n⌉.
func PathLen(n int) int {
	d := 0
	for 1<<d < n {
		d++
	}
	return d
}
