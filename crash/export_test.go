package crash

// SetBeforeVerify installs a hook run on the data directory before the
// verification; the returned function removes it.
func SetBeforeVerify(f func(dataDir string) error) func() {
	beforeVerify = f
	return func() { beforeVerify = nil }
}
