package eval

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// Shard selects a deterministic part of a suite: scenario k (in manifest
// order) belongs to shard k mod Count. The zero Shard is the whole suite.
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
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("eval merge: shard %d/%d missing", i, n)
		}
	}
	rep := &report.Report{Version: report.Version, Dataset: first.Dataset, Format: first.Format, Generated: time.Now().UTC(),
		Detectors: map[string]*report.Figures{}, Curves: map[string]report.Curves{}, Order: first.Order,
		Notes: slices.Clone(first.Notes)}
	if err := assembleSuite(rep, jobs); err != nil {
		return nil, err
	}
	if got := len(rep.Scenarios); got != first.Scenarios {
		return nil, fmt.Errorf("eval merge: %d scenarios in the shards, the suite has %d", got, first.Scenarios)
	}
	return rep, nil
}
