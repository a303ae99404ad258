package provider

// Remembered returns the number of exchange ids v remembers.
func Remembered(v *Verifier) int { return v.seen.len() }
