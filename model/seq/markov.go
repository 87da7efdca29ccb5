package seq

import (
	"fmt"
	"math"
	"slices"
)

// Markov is driftwatch's own sequence model: a variable-order Markov model
// of syscall streams (an n-gram language model with contexts of 0..Order
// preceding calls) whose probabilities back off from long to short contexts
// through a smoothed unseen mass, the same Good–Turing idea the behaviour
// profiles use for "how likely is something never seen".
//
// For a context c of length k (the k calls before x) the model keeps count
// N(c) of the calls that followed c and T(c) of the distinct ones, and
//
//	P_k(x | c) = max(C_k(c x) − D_k, 0) / N(c) + U(c) · P_{k−1}(x | c′)
//	U(c)       = D_k · T(c) / N(c)          (the unseen mass of c)
//	P_{−1}(x)  = 1 / Alphabet
//
// where c′ drops c's oldest call. The discount D_k = n1 / (n1 + 2·n2) is
// the Good–Turing estimate from the order's count of counts (n1 entries
// seen once, n2 seen twice), so a context with many singletons passes more
// mass to its shorter context. The top order counts occurrences; shorter
// orders count distinct left extensions (a call's "continuation" count, as
// in Kneser–Ney smoothing), which estimates how likely a call is in a
// context never seen before rather than how frequent it is. A context never
// seen in training contributes nothing and the next shorter one is used.
// Every stream starts with Order begin-of-stream markers, so its first
// calls are predicted from "start of stream" contexts.
//
// A stream's surprise is −ln P(x | context) summed over its calls;
// MeanSurprise is a trace's mean surprise per call in nats (the model's
// likelihood), RobustSurprise its floored form and TraceScore the
// length-weighted robust excess surprise that eval uses (see TraceScore).
//
// Contexts and (context, call) pairs are hashed to 64 bits (FNV-1a). Learn
// and score are not safe for concurrent use with each other; once Finish
// returned, scoring methods only read and may run concurrently.
type Markov struct {
	order int
	// entries[k] maps the hash of (context of length k, call) to its entry.
	entries []map[uint64]*markovEntry
	// ctx[k] maps the hash of a context of length k to its totals (after Finish).
	ctx      []map[uint64]ctxStat
	discount []float64
	finished bool
	calls    uint64
}

type markovEntry struct {
	count  uint32 // occurrences (top order) or continuation count (shorter orders)
	suffix uint64 // key of the same call after the context's oldest call is dropped
	ctx    uint64 // hash of the context
}

type ctxStat struct{ n, t uint32 }

// Alphabet is the size of the base distribution: every 16-bit call number
// plus the begin-of-stream marker.
const Alphabet = 1<<16 + 1

// bos is the begin-of-stream marker (outside the 16-bit call numbers).
const bos = 1 << 16

// MaxOrder bounds the context length.
const MaxOrder = 32

// NewMarkov returns an empty model with contexts of up to order calls.
func NewMarkov(order int) (*Markov, error) {
	if order < 0 || order > MaxOrder {
		return nil, fmt.Errorf("seq: Markov order must be in 0..%d, got %d", MaxOrder, order)
	}
	m := &Markov{order: order, entries: make([]map[uint64]*markovEntry, order+1)}
	for k := range m.entries {
		m.entries[k] = map[uint64]*markovEntry{}
	}
	return m, nil
}

// Order returns the longest context length.
func (m *Markov) Order() int { return m.order }

// Calls returns the number of calls learned.
func (m *Markov) Calls() uint64 { return m.calls }

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func mix(h uint64, v uint32) uint64 {
	for i := 0; i < 3; i++ {
		h ^= uint64(v & 0xff)
		h *= fnvPrime
		v >>= 8
	}
	return h
}

// stream walks a call sequence keeping the last order calls.
type stream struct {
	hist []uint32 // hist[0] is the call just before the current one
}

func (m *Markov) newStream(buf []uint32) stream {
	buf = buf[:0]
	for i := 0; i < m.order; i++ {
		buf = append(buf, bos)
	}
	return stream{hist: buf}
}

// keys fills ctxKeys[k] and entryKeys[k] (k = 0..order) for call x.
func (s *stream) keys(x uint32, ctxKeys, entryKeys []uint64) {
	h := uint64(fnvOffset)
	for k := 0; k < len(ctxKeys); k++ {
		if k > 0 {
			h = mix(h, s.hist[k-1])
		}
		ctxKeys[k] = h
		entryKeys[k] = mix(h^0x9e3779b97f4a7c15, x)
	}
}

func (s *stream) push(x uint32) {
	if len(s.hist) == 0 {
		return
	}
	copy(s.hist[1:], s.hist[:len(s.hist)-1])
	s.hist[0] = x
}

// LearnStream adds one stream of calls (one thread or one trace). It
// panics after Finish.
func (m *Markov) LearnStream(calls []uint16) {
	if m.finished {
		panic("seq: Markov.LearnStream after Finish")
	}
	st := m.newStream(make([]uint32, 0, m.order))
	ck := make([]uint64, m.order+1)
	ek := make([]uint64, m.order+1)
	for _, c := range calls {
		x := uint32(c)
		st.keys(x, ck, ek)
		for k := m.order; k >= 0; k-- {
			e := m.entries[k][ek[k]]
			if e == nil {
				e = &markovEntry{ctx: ck[k]}
				if k > 0 {
					e.suffix = ek[k-1]
				}
				m.entries[k][ek[k]] = e
			}
			if k == m.order {
				e.count++
			}
		}
		st.push(x)
		m.calls++
	}
}

// Finish derives the shorter orders' continuation counts, the context
// totals and the Good–Turing discounts. Scoring needs it; learning ends.
func (m *Markov) Finish() {
	if m.finished {
		return
	}
	m.finished = true
	for k := m.order; k >= 1; k-- {
		for _, e := range m.entries[k] {
			if e.count > 0 {
				m.entries[k-1][e.suffix].count++
			}
		}
	}
	m.ctx = make([]map[uint64]ctxStat, m.order+1)
	m.discount = make([]float64, m.order+1)
	for k := 0; k <= m.order; k++ {
		m.ctx[k] = make(map[uint64]ctxStat, len(m.entries[k])/4)
		var n1, n2 float64
		for _, e := range m.entries[k] {
			s := m.ctx[k][e.ctx]
			s.n += e.count
			s.t++
			m.ctx[k][e.ctx] = s
			switch e.count {
			case 1:
				n1++
			case 2:
				n2++
			}
		}
		d := 0.5
		if n1+n2 > 0 {
			d = n1 / (n1 + 2*n2)
		}
		// Keep some unseen mass even when every entry repeats, and never
		// discount a whole single count away.
		m.discount[k] = math.Min(math.Max(d, 0.05), 0.95)
	}
}

// Discount returns the Good–Turing discount of order k (after Finish).
func (m *Markov) Discount(k int) float64 { return m.discount[k] }

// prob returns P(x | context) from the keys of x's position.
func (m *Markov) prob(ctxKeys, entryKeys []uint64) float64 {
	p := 1.0 / Alphabet
	for k := 0; k <= m.order; k++ {
		s, ok := m.ctx[k][ctxKeys[k]]
		if !ok || s.n == 0 {
			break
		}
		var c float64
		if e := m.entries[k][entryKeys[k]]; e != nil {
			c = float64(e.count)
		}
		d, n := m.discount[k], float64(s.n)
		p = math.Max(c-d, 0)/n + d*float64(s.t)/n*p
	}
	return p
}

// StreamSurprise returns the summed surprise −ln P of a stream's calls and
// the number of calls. It panics before Finish.
func (m *Markov) StreamSurprise(calls []uint16) (sum float64, n int) {
	m.eachSurprise(calls, func(s float64) { sum += s })
	return sum, len(calls)
}

// Surprises appends the surprise −ln P(x | context) of each of a stream's
// calls to out and returns it. It panics before Finish.
func (m *Markov) Surprises(calls []uint16, out []float64) []float64 {
	m.eachSurprise(calls, func(s float64) { out = append(out, s) })
	return out
}

// eachSurprise calls fn with the surprise −ln P(x | context) of each of a
// stream's calls in order. It panics before Finish.
func (m *Markov) eachSurprise(calls []uint16, fn func(float64)) {
	m.eachCall(calls, func(s float64, _ bool) { fn(s) })
}

// eachCall calls fn with the surprise −ln P(x | context) of each of a
// stream's calls in order and whether the call was learned at all (in any
// context). It panics before Finish.
func (m *Markov) eachCall(calls []uint16, fn func(surprise float64, known bool)) {
	if !m.finished {
		panic("seq: Markov scored before Finish")
	}
	st := m.newStream(make([]uint32, 0, m.order))
	ck := make([]uint64, m.order+1)
	ek := make([]uint64, m.order+1)
	for _, c := range calls {
		x := uint32(c)
		st.keys(x, ck, ek)
		fn(-math.Log(m.prob(ck, ek)), m.entries[0][ek[0]] != nil)
		st.push(x)
	}
}

// SurpriseFloor is the probability TraceScore adds to the model's
// probability of every learned call: e^−3, so the robust surprise
// −ln(P + SurpriseFloor) of a call seen in training is below 3 nats
// however unlikely its context makes it (chosen on ADFA-LD's dev split,
// docs/eval.md).
const SurpriseFloor = 0.049787068367863944

// RobustSurprise is a trace's mean robust surprise per call in nats over
// all its streams: for a call seen in training −ln(P(x | context) +
// SurpriseFloor), the surprise under the model contaminated by a floor
// (Huber's ε-contamination), and for a call never seen in training its
// full surprise. A known call in an unlikely context counts about 3 nats
// whether P is 10⁻² or 10⁻⁶, so a trace is judged by how many of its calls
// are out of context more than by how extreme the rarest contexts are;
// a call the training traces never make keeps its full weight. 0 for a
// trace without calls.
func (m *Markov) RobustSurprise(streams [][]uint16) float64 {
	var sum float64
	var n int
	for _, s := range streams {
		m.eachCall(s, func(v float64, known bool) {
			if known {
				v = -math.Log(math.Exp(-v) + SurpriseFloor)
			}
			sum += v
		})
		n += len(s)
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// MeanSurprise is a trace's mean surprise per call in nats over all its
// streams (0 for a trace without calls): the trace's negative
// log-likelihood under the model divided by its length.
func (m *Markov) MeanSurprise(streams [][]uint16) float64 {
	var sum float64
	var n int
	for _, s := range streams {
		a, b := m.StreamSurprise(s)
		sum += a
		n += b
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// ExcessLengthCap is the trace length at which TraceScore stops weighting
// by length (chosen on ADFA-LD's dev split, docs/eval.md).
const ExcessLengthCap = 500

// TraceScore is a trace's length-weighted robust excess surprise:
//
//	(H_robust − H_self) · √min(L, ExcessLengthCap)
//
// where H_robust is the mean robust surprise per call under the model
// (RobustSurprise), H_self the entropy in nats of the trace's own call
// frequencies (how well the trace's bag of calls predicts it, with no
// order and nothing learned) and L the trace's number of calls; 0 for a
// trace without calls. H_robust − H_self estimates how much worse the
// benign model predicts the trace than its own call mix does: a trace
// that is busy by nature (many different calls, high H_self) is not held
// against it, one whose order and mix the model finds foreign is. The
// length weight is the √L of a z statistic — evidence from a mean over
// more calls is firmer — capped so that long traces do not win on length
// alone.
func (m *Markov) TraceScore(streams [][]uint16) float64 {
	var n int
	counts := map[uint16]int{}
	for _, s := range streams {
		n += len(s)
		for _, c := range s {
			counts[c]++
		}
	}
	if n == 0 {
		return 0
	}
	return (m.RobustSurprise(streams) - UnigramEntropy(counts, n)) * math.Sqrt(float64(min(n, ExcessLengthCap)))
}

// UnigramEntropy is −Σ (c/n) ln(c/n) over the counts (summing to n), in
// nats. The terms are summed in a fixed order (by count), so equal inputs
// give bit-identical results whatever the map's iteration order.
func UnigramEntropy(counts map[uint16]int, n int) float64 {
	cs := make([]int, 0, len(counts))
	for _, c := range counts {
		if c > 0 {
			cs = append(cs, c)
		}
	}
	slices.Sort(cs)
	var h float64
	for _, c := range cs {
		p := float64(c) / float64(n)
		h -= p * math.Log(p)
	}
	return h
}
