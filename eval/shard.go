package eval

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/driftwatch/driftwatch/eval/metrics"
	"github.com/driftwatch/driftwatch/eval/report"
)

// Shard selects a deterministic part of a dataset. Of a suite, scenario k
// (in manifest order) belongs to shard k mod Count; of a sequence dataset
// (LID-DS, ADFA-LD), each scenario's test traces are cut into Count
// contiguous blocks (block), so that the merged shards list every trace in
// the order of one run. The zero Shard is the whole dataset.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ParseShard parses "i/N" (0 ≤ i < N).
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("eval: shard %q: want i/N with 0 ≤ i < N", s)
	}
	return Shard{Index: i, Count: n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// has reports whether scenario k belongs to the shard.
func (s Shard) has(k int) bool { return s.Count <= 1 || k%s.Count == s.Index }

// block returns the test traces [lo, hi) of n that belong to the shard:
// block Index of Count contiguous blocks of near-equal size.
func (s Shard) block(n int) (lo, hi int) {
	if s.Count <= 1 {
		return 0, n
	}
	return s.Index * n / s.Count, (s.Index + 1) * n / s.Count
}

// PartialFile is the file a sharded run writes beside its report.
const PartialFile = "partial.json.zst"

// PartialVersion is the version of the partial-result layout.
const PartialVersion = 1

// Partial is what a (sharded) suite run keeps to be merged: the raw
// per-(scenario, detector) results, from which Merge recomputes every
// pooled figure exactly as a single run does.
type Partial struct {
	Version   int       `json:"version"`
	Dataset   string    `json:"dataset"`
	Format    string    `json:"format"`
	Order     []string  `json:"order"`
	Notes     []string  `json:"notes"`
	Shard     Shard     `json:"shard"`
	Scenarios int       `json:"scenarios"`
	Jobs      []PartJob `json:"jobs"`
	// Seq holds a sequence dataset's results, per scenario (its shard's
	// block of test traces); TargetFPR is the dev threshold's target.
	Seq       []*SeqPart `json:"seq,omitempty"`
	TargetFPR float64    `json:"target_fpr,omitempty"`
}

// SeqPart is one sequence-dataset scenario's results over a block of its
// test traces (all of them in a single run).
type SeqPart struct {
	Name string `json:"name"`
	// Tests is the scenario's number of test traces; First the index of
	// the block's first one.
	Tests int `json:"tests"`
	First int `json:"first"`
	// Attack (0/1) and Calls per test trace of the block.
	Attack []byte  `json:"attack"`
	Calls  []int64 `json:"calls"`
	// Parts are named subsets of the test traces (ADFA-LD: dev,
	// held-out); PartIn[k] marks the block's traces in Parts[k] (0/1).
	Parts  []string `json:"parts,omitempty"`
	PartIn [][]byte `json:"part_in,omitempty"`
	// Calib marks the block's test traces whose benign ones calibrate the
	// thresholds (when neither validation nor cross-validation does).
	Calib     []byte `json:"calib,omitempty"`
	CalibName string `json:"calib_name,omitempty"`
	// PerEvent is STIDE's per-event collector over the block (LID-DS),
	// PerEventWindows the attack shading of its timeline.
	PerEvent        *collectorState `json:"per_event,omitempty"`
	PerEventWindows []report.Window `json:"per_event_windows,omitempty"`
	Detectors       []*SeqDet       `json:"detectors"`
	Notes           []string        `json:"notes,omitempty"`
}

// SeqDet is one trace-level detector's scores over a block.
type SeqDet struct {
	Name  string `json:"name"`
	Score string `json:"score"` // the score's definition
	// Ceiling is the highest score the detector can give (nil: unbounded).
	Ceiling  *float64  `json:"ceiling,omitempty"`
	Describe string    `json:"describe,omitempty"`
	Scores   []float64 `json:"scores"`
	// Dev are the benign dev scores the threshold is calibrated on when
	// they come from validation traces or cross-validation (the same in
	// every shard), DevHow says which; empty when the dev part's benign
	// test traces (Calib) calibrate it.
	Dev    []float64 `json:"dev,omitempty"`
	DevHow string    `json:"dev_how,omitempty"`
}

// bools encodes flags as 0/1 bytes.
func bools(in []bool) []byte {
	out := make([]byte, len(in))
	for i, v := range in {
		if v {
			out[i] = 1
		}
	}
	return out
}

// mergeSeq joins the shards' blocks of each scenario in order, checking
// that they tile its test traces.
func mergeSeq(parts []*Partial) ([]*SeqPart, error) {
	slices.SortFunc(parts, func(a, b *Partial) int { return cmp.Compare(a.Shard.Index, b.Shard.Index) })
	var out []*SeqPart
	for k := range parts[0].Seq {
		var m *SeqPart
		var cs []*collector
		for _, p := range parts {
			if len(p.Seq) != len(parts[0].Seq) {
				return nil, fmt.Errorf("eval merge: shard %s has %d scenarios, shard %s %d", p.Shard, len(p.Seq), parts[0].Shard, len(parts[0].Seq))
			}
			b := p.Seq[k]
			if m == nil {
				c := *b
				c.Attack, c.Calls, c.Calib = slices.Clone(b.Attack), slices.Clone(b.Calls), slices.Clone(b.Calib)
				c.PartIn = nil
				for _, in := range b.PartIn {
					c.PartIn = append(c.PartIn, slices.Clone(in))
				}
				c.Detectors = nil
				for _, d := range b.Detectors {
					dc := *d
					dc.Scores = slices.Clone(d.Scores)
					c.Detectors = append(c.Detectors, &dc)
				}
				m = &c
			} else {
				if b.Name != m.Name || b.Tests != m.Tests || len(b.Detectors) != len(m.Detectors) || len(b.PartIn) != len(m.PartIn) || (b.PerEvent == nil) != (m.PerEvent == nil) {
					return nil, fmt.Errorf("eval merge: scenario %d differs between shards (%q, %d test traces in shard %s; %q, %d in shard %s)", k, b.Name, b.Tests, p.Shard, m.Name, m.Tests, parts[0].Shard)
				}
				if b.First != len(m.Attack) {
					return nil, fmt.Errorf("eval merge: scenario %q: shard %s starts at test trace %d, want %d", b.Name, p.Shard, b.First, len(m.Attack))
				}
				m.Attack = append(m.Attack, b.Attack...)
				m.Calls = append(m.Calls, b.Calls...)
				m.Calib = append(m.Calib, b.Calib...)
				for i := range m.PartIn {
					m.PartIn[i] = append(m.PartIn[i], b.PartIn[i]...)
				}
				for i, d := range b.Detectors {
					if d.Name != m.Detectors[i].Name {
						return nil, fmt.Errorf("eval merge: scenario %q: detector %s in shard %s where shard %s has %s", b.Name, d.Name, p.Shard, parts[0].Shard, m.Detectors[i].Name)
					}
					m.Detectors[i].Scores = append(m.Detectors[i].Scores, d.Scores...)
				}
				if len(m.PerEventWindows) == 0 {
					m.PerEventWindows = b.PerEventWindows
				}
			}
			if b.PerEvent != nil {
				c, err := b.PerEvent.collector()
				if err != nil {
					return nil, fmt.Errorf("eval merge: scenario %q, shard %s: %w", b.Name, p.Shard, err)
				}
				cs = append(cs, c)
			}
		}
		if len(m.Attack) != m.Tests {
			return nil, fmt.Errorf("eval merge: scenario %q: the shards hold %d of %d test traces", m.Name, len(m.Attack), m.Tests)
		}
		if len(cs) > 0 {
			st := joinCollectors(cs).export()
			m.PerEvent = &st
		}
		out = append(out, m)
	}
	return out, nil
}

// joinCollectors appends collectors of consecutive blocks of one
// scenario's recordings into the collector one run over all of them gives.
func joinCollectors(cs []*collector) *collector {
	j := newCollector()
	for _, c := range cs {
		j.attacks = append(j.attacks, c.attacks...)
		j.alerts += c.alerts
		j.tp += c.tp
		j.fp += c.fp
		j.samples = append(j.samples, c.samples...)
		j.lid.Merge(c.lid)
		for k, v := range c.spans {
			j.spans[k] = v // keys name the recording: blocks never share one
		}
		j.events += c.events
		j.cost.Events += c.cost.Events
		j.cost.Wall += c.cost.Wall
		j.cost.CPU += c.cost.CPU
		if len(j.timeline) == 0 {
			j.timeline = c.timeline
		}
		if j.threshold == nil {
			j.threshold, j.clamped = c.threshold, c.clamped
		}
	}
	return j
}

// PartJob is one (scenario, detector) result.
type PartJob struct {
	Scenario int             `json:"scenario"`
	Name     string          `json:"name"`
	Workload string          `json:"workload,omitempty"`
	Kind     string          `json:"kind"`
	Split    string          `json:"split,omitempty"`
	Detector string          `json:"detector"`
	Attacks  []report.Window `json:"attack_windows"`
	State    collectorState  `json:"state"`
}

// collectorState is a collector's exported form.
type collectorState struct {
	Attacks    [][2]int64          `json:"attacks"` // start, first alert (0: none)
	Alerts     int                 `json:"alerts"`
	TP         int                 `json:"tp"`
	FP         int                 `json:"fp"`
	Scores     []float64           `json:"scores"`
	Attack     []byte              `json:"attack"` // one 0/1 per score
	LID        metrics.LIDDS       `json:"lid"`
	Spans      map[string][2]int64 `json:"spans"`
	Events     int64               `json:"events"`
	CostEvents int64               `json:"cost_events"`
	CostWall   time.Duration       `json:"cost_wall_ns"`
	CostCPU    time.Duration       `json:"cost_cpu_ns"`
	Timeline   []report.Point      `json:"timeline"`
	Threshold  *float64            `json:"threshold,omitempty"`
	Clamped    bool                `json:"clamped,omitempty"`
}

func (c *collector) export() collectorState {
	s := collectorState{Alerts: c.alerts, TP: c.tp, FP: c.fp, LID: c.lid, Spans: c.spans, Events: c.events,
		CostEvents: c.cost.Events, CostWall: c.cost.Wall, CostCPU: c.cost.CPU, Timeline: c.timeline,
		Threshold: c.threshold, Clamped: c.clamped}
	for _, a := range c.attacks {
		s.Attacks = append(s.Attacks, [2]int64{a.start, a.first})
	}
	s.Scores = make([]float64, len(c.samples))
	s.Attack = make([]byte, len(c.samples))
	for i, x := range c.samples {
		s.Scores[i] = x.Score
		if x.Attack {
			s.Attack[i] = 1
		}
	}
	return s
}

func (s collectorState) collector() (*collector, error) {
	if len(s.Scores) != len(s.Attack) {
		return nil, fmt.Errorf("%d scores but %d labels", len(s.Scores), len(s.Attack))
	}
	c := newCollector()
	c.alerts, c.tp, c.fp, c.lid, c.events = s.Alerts, s.TP, s.FP, s.LID, s.Events
	if s.Spans != nil {
		c.spans = s.Spans
	}
	c.cost.Events, c.cost.Wall, c.cost.CPU = s.CostEvents, s.CostWall, s.CostCPU
	c.timeline, c.threshold, c.clamped = s.Timeline, s.Threshold, s.Clamped
	for _, a := range s.Attacks {
		c.attacks = append(c.attacks, attackState{start: a[0], first: a[1]})
	}
	c.samples = make([]metrics.Sample, len(s.Scores))
	for i := range s.Scores {
		c.samples[i] = metrics.Sample{Score: s.Scores[i], Attack: s.Attack[i] == 1}
	}
	return c, nil
}

// assembleSuite builds the report's scenarios and pooled figures from the
// jobs' results, in scenario then detector order. A single run and Merge
// both use it, so their figures are the same.
func assembleSuite(rep *report.Report, jobs []PartJob) error {
	rank := map[string]int{}
	for i, d := range rep.Order {
		rank[d] = i
	}
	jobs = slices.Clone(jobs)
	slices.SortStableFunc(jobs, func(a, b PartJob) int {
		return cmp.Or(cmp.Compare(a.Scenario, b.Scenario), cmp.Compare(rank[a.Detector], rank[b.Detector]))
	})
	byDet := map[string][]*collector{}
	bySplit := map[string]map[string][]*collector{}
	for k, j := range jobs {
		c, err := j.State.collector()
		if err != nil {
			return fmt.Errorf("eval: scenario %q, detector %s: %w", j.Name, j.Detector, err)
		}
		if k == 0 || jobs[k-1].Scenario != j.Scenario {
			rep.Scenarios = append(rep.Scenarios, &report.Scenario{Name: j.Name, Workload: j.Workload, Kind: j.Kind, Split: j.Split,
				Detectors: map[string]*report.Figures{}, Timeline: map[string][]report.Point{}, Attacks: j.Attacks})
		}
		res := rep.Scenarios[len(rep.Scenarios)-1]
		res.Detectors[j.Detector] = c.figures()
		res.Timeline[j.Detector] = downsample(c.timeline)
		byDet[j.Detector] = append(byDet[j.Detector], c)
		if j.Split != "" {
			if bySplit[j.Split] == nil {
				bySplit[j.Split] = map[string][]*collector{}
			}
			bySplit[j.Split][j.Detector] = append(bySplit[j.Split][j.Detector], c)
		}
	}
	for _, det := range rep.Order {
		rep.Detectors[det] = figuresOf(byDet[det])
		rep.Curves[det] = curvesOf(byDet[det])
	}
	// Each split (dev, held-out) gets its own figures per detector.
	for sp, m := range bySplit {
		if rep.Splits == nil {
			rep.Splits = map[string]map[string]*report.Figures{}
		}
		rep.Splits[sp] = map[string]*report.Figures{}
		for det, cs := range m {
			rep.Splits[sp][det] = figuresOf(cs)
		}
	}
	return nil
}

// WritePartial stores p (zstd-compressed JSON) as dir/PartialFile.
func WritePartial(dir string, p *Partial) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("eval: %w", err)
	}
	path := filepath.Join(dir, PartialFile)
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("eval: %w", err)
	}
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Close()
		return "", fmt.Errorf("eval: %w", err)
	}
	err = json.NewEncoder(zw).Encode(p)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("eval: write %s: %w", path, err)
	}
	return path, nil
}

// ReadPartial reads a partial result: path is the file or a report
// directory holding PartialFile.
func ReadPartial(path string) (*Partial, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, PartialFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	defer zr.Close()
	var p Partial
	dec := json.NewDecoder(zr)
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("eval: %s: not a partial eval result: %w", path, err)
	}
	if p.Version != PartialVersion {
		return nil, fmt.Errorf("eval: %s: partial version %d, this build reads %d", path, p.Version, PartialVersion)
	}
	return &p, nil
}

// Merge combines the partial results of every shard of one run into the
// report a single run over the whole suite gives (the same figures; only
// the generation time differs). Every shard 0..N-1 must be given once.
func Merge(parts []*Partial) (*report.Report, error) {
	if len(parts) == 0 {
		return nil, errors.New("eval merge: no partial results")
	}
	first := parts[0]
	n := max(first.Shard.Count, 1)
	seen := make([]bool, n)
	var jobs []PartJob
	for _, p := range parts {
		if p.Dataset != first.Dataset || p.Format != first.Format || !slices.Equal(p.Order, first.Order) ||
			p.Scenarios != first.Scenarios || max(p.Shard.Count, 1) != n {
			return nil, fmt.Errorf("eval merge: shard %s is of another run (dataset %q, detectors %v, %d scenarios, %d shards) than shard %s (dataset %q, detectors %v, %d scenarios, %d shards)",
				p.Shard, p.Dataset, p.Order, p.Scenarios, p.Shard.Count, first.Shard, first.Dataset, first.Order, first.Scenarios, first.Shard.Count)
		}
		i := p.Shard.Index
		if i < 0 || i >= n || seen[i] {
			return nil, fmt.Errorf("eval merge: shard %s given twice or out of range", p.Shard)
		}
		seen[i] = true
		jobs = append(jobs, p.Jobs...)
		if p.TargetFPR != first.TargetFPR {
			return nil, fmt.Errorf("eval merge: shard %s has target FPR %g, shard %s %g", p.Shard, p.TargetFPR, first.Shard, first.TargetFPR)
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("eval merge: shard %d/%d missing", i, n)
		}
	}
	rep := &report.Report{Version: report.Version, Dataset: first.Dataset, Format: first.Format, Generated: time.Now().UTC(),
		Detectors: map[string]*report.Figures{}, Curves: map[string]report.Curves{}, Order: first.Order,
		Notes: slices.Clone(first.Notes)}
	if first.Format != "suite" {
		sps, err := mergeSeq(slices.Clone(parts))
		if err != nil {
			return nil, err
		}
		if len(sps) != first.Scenarios {
			return nil, fmt.Errorf("eval merge: %d scenarios in the shards, the dataset has %d", len(sps), first.Scenarios)
		}
		rep.CurvesPerTrace = true
		if err := assembleSeq(rep, sps, first.TargetFPR, slog.Default()); err != nil {
			return nil, err
		}
		return rep, nil
	}
	if err := assembleSuite(rep, jobs); err != nil {
		return nil, err
	}
	if got := len(rep.Scenarios); got != first.Scenarios {
		return nil, fmt.Errorf("eval merge: %d scenarios in the shards, the suite has %d", got, first.Scenarios)
	}
	return rep, nil
}
