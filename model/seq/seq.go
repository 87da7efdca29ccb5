// Package seq is driftwatch's sequence model for syscall-only data (LID-DS,
// ADFA-LD): STIDE, the "sequence time-delay embedding" of Forrest et al.,
// in the form the LID-DS framework uses as its baseline.
//
// Learning collects the set of distinct n-grams (n consecutive syscall
// numbers of one stream) seen in benign training recordings. Scoring keeps,
// per recording, a sliding window of the last Window n-grams and returns the
// fraction of them that were never seen in training: mismatches in the
// window divided by the window length (LID-DS divides by the full length
// even while the window fills, so a recording's first n-grams score low).
// The alarm threshold is the maximum score over benign validation
// recordings, as LID-DS does; a score strictly above it alarms.
//
// Streams. N-grams are formed per thread (ThreadAware, the default, as the
// LID-DS "thread aware" n-gram) or over the recording's whole syscall order;
// the sliding window is shared by all threads of a recording. ADFA-LD traces
// are one process each, so both choices coincide there.
//
// N-grams are hashed to 64 bits (FNV-1a over the n syscall numbers); the
// learned set stores hashes, and scoring allocates nothing once a thread's
// state exists.
package seq

import (
	"fmt"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// Config parametrises the model.
type Config struct {
	// N is the n-gram length (default 7).
	N int
	// Window is the sliding window length in n-grams (default 1000).
	Window int
	// ThreadAware forms n-grams per thread id instead of over the
	// recording's interleaved order.
	ThreadAware bool
}

// DefaultConfig returns n = 7, window = 1000, per-thread n-grams.
func DefaultConfig() Config { return Config{N: 7, Window: 1000, ThreadAware: true} }

func (c Config) validate() error {
	if c.N < 1 || c.N > 64 {
		return fmt.Errorf("seq: n-gram length N must be in 1..64, got %d", c.N)
	}
	if c.Window < 1 {
		return fmt.Errorf("seq: window length must be ≥ 1, got %d", c.Window)
	}
	return nil
}

// ngrams builds hashed n-grams per stream.
type ngrams struct {
	n       int
	threads bool
	streams map[uint32]*ring
}

// ring holds a stream's last n syscalls.
type ring struct {
	buf  []uint16
	next int
	full bool
}

func newNgrams(c Config) ngrams {
	return ngrams{n: c.N, threads: c.ThreadAware, streams: map[uint32]*ring{}}
}

// push appends nr to tid's stream and returns the hash of the n-gram ending
// at it, or false while the stream holds fewer than n calls.
func (g *ngrams) push(tid uint32, nr uint16) (uint64, bool) {
	if !g.threads {
		tid = 0
	}
	r := g.streams[tid]
	if r == nil {
		r = &ring{buf: make([]uint16, g.n)}
		g.streams[tid] = r
	}
	r.buf[r.next] = nr
	r.next++
	if r.next == g.n {
		r.next = 0
		r.full = true
	}
	if !r.full {
		return 0, false
	}
	// FNV-1a over the n-gram in order, oldest first.
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < g.n; i++ {
		v := r.buf[(r.next+i)%g.n]
		h ^= uint64(v & 0xff)
		h *= prime
		h ^= uint64(v >> 8)
		h *= prime
	}
	return h, true
}

func (g *ngrams) reset() { clear(g.streams) }

// Model is a learned n-gram set with its alarm threshold.
type Model struct {
	cfg       Config
	normal    map[uint64]struct{}
	learn     ngrams
	threshold float64
	// Trained counts the n-grams learned (with repeats).
	trained uint64
}

// New returns an empty model.
func New(cfg Config) (*Model, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Model{cfg: cfg, normal: map[uint64]struct{}{}, learn: newNgrams(cfg)}, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Learn adds the n-gram ending at syscall nr of thread tid.
func (m *Model) Learn(tid uint32, nr uint16) {
	if h, ok := m.learn.push(tid, nr); ok {
		m.normal[h] = struct{}{}
		m.trained++
	}
}

// EndRecording forgets the learning streams: the next Learn starts a new
// recording whose first n-grams do not span the previous one.
func (m *Model) EndRecording() { m.learn.reset() }

// Size returns the number of distinct n-grams learned.
func (m *Model) Size() int { return len(m.normal) }

// Trained returns the number of n-grams learned, repeats included.
func (m *Model) Trained() uint64 { return m.trained }

// Threshold returns the alarm threshold (0 until calibrated).
func (m *Model) Threshold() float64 { return m.threshold }

// SetThreshold sets the alarm threshold.
func (m *Model) SetThreshold(t float64) { m.threshold = t }

// Alarm reports whether a score exceeds the threshold.
func (m *Model) Alarm(score float64) bool { return score > m.threshold }

// Scorer scores one recording at a time against a model. It is not safe for
// concurrent use; create one per goroutine.
type Scorer struct {
	m        *Model
	g        ngrams
	window   []bool
	next     int
	mismatch int
	// Max is the highest score since the last Reset.
	Max float64
}

// NewScorer returns a scorer at the start of a recording.
func (m *Model) NewScorer() *Scorer {
	return &Scorer{m: m, g: newNgrams(m.cfg), window: make([]bool, m.cfg.Window)}
}

// Score pushes syscall nr of thread tid and returns the window's score. ok
// is false while the thread has fewer than N calls (no n-gram yet; the
// window is unchanged).
func (s *Scorer) Score(tid uint32, nr uint16) (score float64, ok bool) {
	h, ok := s.g.push(tid, nr)
	if !ok {
		return 0, false
	}
	_, known := s.m.normal[h]
	if s.window[s.next] {
		s.mismatch--
	}
	s.window[s.next] = !known
	if !known {
		s.mismatch++
	}
	s.next++
	if s.next == len(s.window) {
		s.next = 0
	}
	score = float64(s.mismatch) / float64(len(s.window))
	if score > s.Max {
		s.Max = score
	}
	return score, true
}

// Reset starts a new recording: streams and window are cleared.
func (s *Scorer) Reset() {
	s.g.reset()
	clear(s.window)
	s.next, s.mismatch, s.Max = 0, 0, 0
}

// Detector adapts a trained Model to the pipeline's detector interface
// (agent/pipeline.Detector): in learn mode it adds syscall events' n-grams,
// in detect mode it scores them and emits one alert per syscall whose window
// score exceeds the threshold (LID-DS counts alarms per syscall). It handles
// KindSyscall events only; lifecycle events carry no syscall sequence.
type Detector struct {
	M *Model
	s *Scorer
	// last is the score of the last scored event (0 when none).
	last float64
	// scored says Handle scored the last event (it held a complete n-gram).
	scored bool
}

// NewDetector wraps m.
func NewDetector(m *Model) *Detector { return &Detector{M: m, s: m.NewScorer()} }

// RuleName is the rule name of sequence-model alerts.
const RuleName = "Unseen syscall sequence (STIDE)"

// Handle learns or scores e.
func (d *Detector) Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert)) {
	d.last, d.scored = 0, false
	if e.Event == nil || e.Kind != event.KindSyscall {
		return
	}
	switch mode {
	case event.ModeLearn:
		d.M.Learn(e.Tid, e.Syscall)
	case event.ModeDetect:
		score, ok := d.s.Score(e.Tid, e.Syscall)
		if !ok {
			return
		}
		d.last, d.scored = score, true
		if !d.M.Alarm(score) {
			return
		}
		comm := e.CommString()
		name := e.Type()
		emit(&event.Alert{
			Time:     time.Unix(0, e.Time).UTC(),
			Rule:     RuleName,
			Priority: event.PriorityWarning,
			Source:   "syscall",
			Tags:     []string{"anomaly", "sequence"},
			Hostname: e.Hostname,
			Output: fmt.Sprintf("Unseen syscall sequence (score=%.4f threshold=%.4f syscall=%s proc.name=%s proc.pid=%d thread.tid=%d)",
				score, d.M.threshold, event.EscapeString(name), event.EscapeString(comm), e.Pid, e.Tid),
			OutputFields: map[string]any{
				"evt.type": name, "proc.name": comm, "proc.pid": e.Pid, "thread.tid": e.Tid,
				"anomaly.score": score, "anomaly.threshold": d.M.threshold,
			},
			ContainerID: containerID(e),
			Pid:         e.Pid,
			Score:       score,
			EventNum:    e.Num,
			EventTime:   e.Time,
		})
	}
}

func containerID(e *event.Enriched) string {
	if e.Container == nil {
		return event.HostContainerID
	}
	return e.Container.ID
}

// Suppress never suppresses: the sequence model keeps no per-rule profile.
func (d *Detector) Suppress(*event.Alert, *event.Enriched) bool { return false }

// LastScore returns the window score of the last event Handle scored, 0
// when it scored none.
func (d *Detector) LastScore() float64 { return d.last }

// Scored reports whether Handle scored the last event: a syscall in detect
// mode that completed an n-gram of its stream.
func (d *Detector) Scored() bool { return d.scored }

// NewRecording resets the scoring window and streams (and the learning
// streams) at a recording boundary.
func (d *Detector) NewRecording() {
	d.s.Reset()
	d.M.EndRecording()
}

// MaxScore returns the highest score since the last NewRecording.
func (d *Detector) MaxScore() float64 { return d.s.Max }

// LearnStream adds the n-grams of one stream of calls (a thread or a whole
// trace) as one recording.
func (m *Model) LearnStream(calls []uint16) {
	m.learn.reset()
	for _, c := range calls {
		if h, ok := m.learn.push(0, c); ok {
			m.normal[h] = struct{}{}
			m.trained++
		}
	}
	m.learn.reset()
}

// TraceScore is STIDE's per-trace score: the fraction of the trace's
// n-grams (over all its streams) never seen in training, in [0, 1]; 0 for
// a trace with no complete n-gram. UnseenNgrams returns the two counts.
func (m *Model) TraceScore(streams [][]uint16) float64 {
	unseen, total := m.UnseenNgrams(streams)
	if total == 0 {
		return 0
	}
	return float64(unseen) / float64(total)
}

// UnseenNgrams counts a trace's n-grams never seen in training and all its
// n-grams. It only reads the model and may run concurrently with itself.
func (m *Model) UnseenNgrams(streams [][]uint16) (unseen, total int) {
	g := newNgrams(Config{N: m.cfg.N})
	for _, s := range streams {
		g.reset()
		for _, c := range s {
			h, ok := g.push(0, c)
			if !ok {
				continue
			}
			total++
			if _, known := m.normal[h]; !known {
				unseen++
			}
		}
	}
	return unseen, total
}
