package profiler

// FNV-1a 64: stable across processes (profiles are persisted as text and
// re-hashed on load, but stability keeps tests and exports reproducible) and
// cheap enough to compute incrementally while a feature is generalised.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

// RootHash is the hash of the empty prefix: the node for a whole category.
const RootHash = fnvOffset

func hashBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// HashString returns the hash of a feature or node text as used as map key.
func HashString(s string) uint64 { return hashString(RootHash, s) }
