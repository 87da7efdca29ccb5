package seq

import (
	"math"
	"math/rand/v2"
	"testing"
)

// probOf returns P(x | the stream so far) by the model's own key walk.
func probOf(m *Markov, history []uint16, x uint32) float64 {
	st := m.newStream(make([]uint32, 0, m.order))
	for _, c := range history {
		st.push(uint32(c))
	}
	ck := make([]uint64, m.order+1)
	ek := make([]uint64, m.order+1)
	st.keys(x, ck, ek)
	return m.prob(ck, ek)
}

func TestMarkovNormalised(t *testing.T) {
	m, err := NewMarkov(3)
	if err != nil {
		t.Fatal(err)
	}
	m.LearnStream([]uint16{1, 2, 3, 1, 2, 4, 1, 2, 3, 5, 5, 5, 1, 2})
	m.LearnStream([]uint16{2, 3, 1, 2, 3})
	m.Finish()
	for _, hist := range [][]uint16{nil, {1}, {1, 2}, {5, 1, 2}, {9, 9, 9}, {3, 1, 2}} {
		sum := 0.0
		for x := uint32(0); x < Alphabet; x++ {
			sum += probOf(m, hist, x)
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("history %v: probabilities sum to %.12f, want 1", hist, sum)
		}
	}
	// After 1 2 the model has seen 3 (twice), 4 and 3 again: 3 is the most likely.
	if p3, p4 := probOf(m, []uint16{1, 2}, 3), probOf(m, []uint16{1, 2}, 4); p3 <= p4 || p4 <= probOf(m, []uint16{1, 2}, 7) {
		t.Errorf("P(3|1 2)=%g P(4|1 2)=%g P(7|1 2)=%g: want 3 > 4 > unseen", p3, p4, probOf(m, []uint16{1, 2}, 7))
	}
	for k := 0; k <= 3; k++ {
		if d := m.Discount(k); d <= 0 || d >= 1 {
			t.Errorf("discount %d = %g", k, d)
		}
	}
}

func TestMarkovScoresNovelty(t *testing.T) {
	// Benign streams follow a cycle with a little noise; an unseen pattern
	// must cost more surprise per call than a held-out benign stream.
	rng := rand.New(rand.NewPCG(1, 2))
	cycle := []uint16{3, 4, 5, 6, 7, 8}
	gen := func(n int) []uint16 {
		out := make([]uint16, 0, n)
		for i := 0; len(out) < n; i++ {
			out = append(out, cycle[i%len(cycle)])
			if rng.IntN(10) == 0 {
				out = append(out, 9)
			}
		}
		return out
	}
	for _, order := range []int{0, 2, 5} {
		m, _ := NewMarkov(order)
		for i := 0; i < 20; i++ {
			m.LearnStream(gen(200))
		}
		m.Finish()
		benign := m.MeanSurprise([][]uint16{gen(200)})
		odd := append(gen(100), 11, 102, 11, 102, 59, 11, 102, 11)
		attack := m.MeanSurprise([][]uint16{odd})
		if !(attack > benign) || math.IsInf(attack, 0) || math.IsNaN(attack) {
			t.Errorf("order %d: attack %.3f benign %.3f", order, attack, benign)
		}
		if order > 0 {
			// Longer contexts predict the cycle better than call frequencies alone.
			m0, _ := NewMarkov(0)
			for i := 0; i < 20; i++ {
				m0.LearnStream(gen(200))
			}
			m0.Finish()
			if b0 := m0.MeanSurprise([][]uint16{gen(200)}); benign >= b0 {
				t.Errorf("order %d benign %.3f not below order 0's %.3f", order, benign, b0)
			}
		}
	}
	m, _ := NewMarkov(2)
	m.Finish()
	if s := m.MeanSurprise(nil); s != 0 {
		t.Errorf("empty trace score %g", s)
	}
	if s := m.MeanSurprise([][]uint16{{1, 2}}); math.Abs(s-math.Log(Alphabet)) > 1e-9 {
		t.Errorf("untrained model: %g nats per call, want ln %d", s, Alphabet)
	}
	if _, err := NewMarkov(-1); err == nil {
		t.Error("order -1 accepted")
	}
}

func TestMarkovExcessSurprise(t *testing.T) {
	// Exact values on an untrained model: every call costs ln Alphabet.
	m, _ := NewMarkov(2)
	m.Finish()
	if s := m.TraceScore(nil); s != 0 {
		t.Errorf("empty trace: %g", s)
	}
	rep := func(k int, calls ...uint16) []uint16 {
		var out []uint16
		for i := 0; i < k; i++ {
			out = append(out, calls...)
		}
		return out
	}
	excess := math.Log(Alphabet) - math.Log(2) // the trace's own mix {1, 2} costs ln 2 per call
	for _, tc := range []struct {
		k    int
		want float64
	}{
		{1, excess * math.Sqrt(2)},
		{50, excess * 10},                           // L = 100
		{250, excess * math.Sqrt(ExcessLengthCap)},  // L = 500, the cap
		{2000, excess * math.Sqrt(ExcessLengthCap)}, // beyond the cap: no more weight
	} {
		if s := m.TraceScore([][]uint16{rep(tc.k, 1, 2)}); math.Abs(s-tc.want) > 1e-9 {
			t.Errorf("%d×{1 2}: score %.12g, want %.12g", tc.k, s, tc.want)
		}
	}
	// Streams of a trace pool into one mix: {1 1} and {2 2} together are
	// the same mix as {1 2 1 2}.
	if a, b := m.TraceScore([][]uint16{{1, 1}, {2, 2}}), m.TraceScore([][]uint16{{1, 2, 1, 2}}); math.Abs(a-b) > 1e-9 {
		t.Errorf("pooled streams %g, one stream %g", a, b)
	}

	// A benign kind of trace that is busy by nature (calls drawn at random
	// from 1000 known ones) has a high mean surprise; a foreign pattern of
	// two known calls a lower one. The excess surprise ranks the foreign
	// pattern above every busy benign trace, the mean surprise does not.
	rng := rand.New(rand.NewPCG(7, 8))
	busy := func(n int) []uint16 {
		out := make([]uint16, n)
		for i := range out {
			out[i] = uint16(100 + rng.IntN(1000))
		}
		return out
	}
	cycle := func(n int) []uint16 {
		out := make([]uint16, n)
		for i := range out {
			out[i] = uint16(3 + i%6)
		}
		return out
	}
	m, _ = NewMarkov(3)
	for i := 0; i < 30; i++ {
		m.LearnStream(busy(300))
		m.LearnStream(cycle(300))
	}
	m.Finish()
	foreign := [][]uint16{rep(100, 3, 4, 5)} // known calls; 5 is never followed by 3 in the cycle
	var maxMean, maxExcess float64
	for i := 0; i < 20; i++ {
		b := [][]uint16{busy(400)}
		maxMean = max(maxMean, m.MeanSurprise(b))
		maxExcess = max(maxExcess, m.TraceScore(b))
		if c := m.TraceScore([][]uint16{cycle(400)}); c >= m.TraceScore(foreign) {
			t.Errorf("benign cycle trace %.3f ≥ foreign %.3f", c, m.TraceScore(foreign))
		}
	}
	if fm := m.MeanSurprise(foreign); fm >= maxMean {
		t.Fatalf("test premise: foreign mean surprise %.3f should be below the busy traces' %.3f", fm, maxMean)
	}
	// Bit-identical on every call (the trace's mix is summed in a fixed
	// order, not the map's): eval reports must not differ between runs.
	b := [][]uint16{busy(400)}
	first := m.TraceScore(b)
	for i := 0; i < 50; i++ {
		if s := m.TraceScore(b); s != first {
			t.Fatalf("score %v then %v for the same trace", first, s)
		}
	}
	if fe := m.TraceScore(foreign); fe <= maxExcess {
		t.Errorf("foreign excess surprise %.3f not above the busy benign traces' highest %.3f", fe, maxExcess)
	}
}

func TestStideTraceScore(t *testing.T) {
	m, _ := New(Config{N: 3, Window: 10})
	m.LearnStream([]uint16{1, 2, 3, 4, 1, 2})
	// Learned: 123 234 341 412. Trace streams: {1 2 3 4 9} → 123 234 349
	// (1 unseen of 3); {4 1 2 3} → 412 123 (0 of 2); {7} → none.
	streams := [][]uint16{{1, 2, 3, 4, 9}, {4, 1, 2, 3}, {7}}
	if u, n := m.UnseenNgrams(streams); u != 1 || n != 5 {
		t.Fatalf("unseen %d of %d, want 1 of 5", u, n)
	}
	if s := m.TraceScore(streams); s != 0.2 {
		t.Fatalf("score %v, want 0.2", s)
	}
	if s := m.TraceScore([][]uint16{{1, 2}}); s != 0 {
		t.Fatalf("trace without n-gram: %v", s)
	}
}

// TestRobustSurprise: a learned call's robust surprise is its surprise
// under the model contaminated by SurpriseFloor — never above the plain
// surprise, never above −ln SurpriseFloor (3 nats), close to it for likely
// calls — and a call never learned keeps its full surprise.
func TestRobustSurprise(t *testing.T) {
	m, _ := NewMarkov(2)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20; i++ {
		s := make([]uint16, 200)
		for j := range s {
			s[j] = uint16(1 + j%5)
			if rng.IntN(10) == 0 {
				s[j] = uint16(6 + rng.IntN(3))
			}
		}
		m.LearnStream(s)
	}
	m.Finish()
	if r := m.RobustSurprise(nil); r != 0 {
		t.Errorf("empty trace: %g", r)
	}
	bound := -math.Log(SurpriseFloor)
	for _, tc := range []struct {
		name           string
		trace          []uint16
		minGap, maxGap float64 // mean surprise − robust surprise
		bounded        bool
	}{
		{"known cycle", []uint16{1, 2, 3, 4, 5, 1, 2, 3, 4, 5}, 0, 0.2, true},
		{"known calls, contexts never seen", []uint16{5, 3, 1, 4, 2, 5, 3, 1, 4, 2}, 1, 20, true},
		{"calls never learned", []uint16{900, 901, 902, 903, 904, 905}, 0, 0, false},
	} {
		tr := [][]uint16{tc.trace}
		mean, rob := m.MeanSurprise(tr), m.RobustSurprise(tr)
		if tc.bounded && rob > bound || rob > mean || mean-rob < tc.minGap || mean-rob > tc.maxGap {
			t.Errorf("%s: mean surprise %.3f, robust %.3f (bound %.3f), want a gap in [%g, %g]", tc.name, mean, rob, bound, tc.minGap, tc.maxGap)
		}
	}
}
