package batchtree

import (
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

func TestRootAndPaths(t *testing.T) {
	for n := 1; n <= 17; n++ {
		leaves := make([][]byte, n)
		for i := range leaves {
			leaves[i] = rfc6962.DefaultHasher.HashLeaf([]byte{byte(i)})
		}
		paths := make([][][]byte, n)
		root := Root(leaves, paths)
		for i := range leaves {
			if len(paths[i]) > PathLen(n) {
				t.Fatalf("n=%d: path of %d longer than %d", n, len(paths[i]), PathLen(n))
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(n), leaves[i], paths[i], root); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
		}
	}
}
