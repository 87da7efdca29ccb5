package model

import (
	"math"

	"github.com/driftwatch/driftwatch/profiler"
)

// nodeCounts returns a node's counts (zeros when unseen).
func nodeCounts(pr *profiler.Profile, c profiler.Category, h uint64) (n, n1 uint64) {
	if s := pr.Node(c, h); s != nil {
		return s.N, s.N1
	}
	return 0, 0
}

// surprise is the back-off surprise in bits of a feature whose chain is
// chain (chain[0] the category root) and whose own count is leaf, with
// remove observations of the feature taken out first (remove = leaf gives
// the leave-one-out "first sight" surprise used for calibration).
//
// At every level i the child on the path has count x among the node's N
// observations, N1 of the node's children having been seen once:
//
//	seen child:   p_i = max(x/N, (N1 − [x=1] + ½)/(D − x + 1))
//	unseen child: p   = (N1 + ½)/(D + 1), then backoff bits per deeper level
//
// where D = N below the root and, at the category root, D = T, the
// profile's observations over all categories: the root's unseen estimate is
// Good–Turing over the whole profile — the probability that the profile's
// next event is a new feature of this category. A sparse category (a daemon
// that never runs programs: 4 process observations among 100,000) thus
// finds its first novelty very surprising instead of hardly (N1 + ½)/(N + 1);
// a busy one (N ≈ T) is unchanged. An empty category is the case N1 = 0.
func surprise(pr *profiler.Profile, c profiler.Category, chain []uint64, leaf, remove uint64, backoff float64) float64 {
	s := 0.0
	depth := len(chain)
	n, n1 := nodeCounts(pr, c, chain[0])
	total := pr.Total()
	if total >= remove {
		total -= remove
	} else {
		total = 0
	}
	for i := 0; i < depth; i++ {
		var x, xn1 uint64
		if i+1 < depth {
			x, xn1 = nodeCounts(pr, c, chain[i+1])
		} else {
			x = leaf
		}
		if remove > 0 {
			old := x
			if x >= remove {
				x -= remove
			} else {
				x = 0
			}
			if i == 0 { // deeper nodes were adjusted as the previous level's child
				if n >= remove {
					n -= remove
				} else {
					n = 0
				}
			}
			if old == 1 && n1 > 0 {
				n1--
			}
			if x == 1 && old != 1 {
				n1++
			}
		}
		d := n
		if i == 0 && total > d {
			d = total
		}
		if x == 0 {
			p := profiler.UnseenMass(n1, d)
			return s - math.Log2(p) + backoff*float64(depth-1-i)
		}
		p := float64(x) / float64(n)
		o := n1
		if x == 1 && o > 0 {
			o--
		}
		if q := profiler.UnseenMass(o, d-x); q > p {
			p = q
		}
		s -= math.Log2(p)
		n, n1 = x, xn1
	}
	return s
}

// chainOf rebuilds a stored feature's chain hashes into buf.
func chainOf(buf []uint64, f *profiler.FeatureStat) []uint64 {
	buf = buf[:0]
	for _, l := range f.Levels {
		buf = append(buf, profiler.HashString(f.Text[:l]))
	}
	return buf
}
