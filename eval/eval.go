// Package eval is driftwatch's evaluation harness: it replays labelled
// traces through the agent's own pipeline (agent/pipeline: enrichment →
// rules → profile detector), learns on each scenario's benign training
// traces, scores its test trace, attributes every alert to a labelled attack
// or counts it false, and reports the figures (eval/metrics, eval/report).
// Syscall-only datasets (LID-DS, ADFA-LD) are evaluated with the STIDE
// sequence model (model/seq) and the LID-DS metrics.
//
// The runner knows the rules engine and the profile detector only through
// agent/pipeline's interfaces and the constructor functions in Options, so
// cmd/driftwatch wires the real packages and tests wire fakes.
package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/eval/input"
	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/eval/report"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model/seq"
)

// Detector selections.
const (
	DetectRules = report.Rules
	DetectModel = report.Model
	DetectBoth  = report.Both
	// DetectSetMember is the set-membership baseline (model/setmember).
	DetectSetMember = "setmember"
	DetectAll       = "all"
)

// Detectors returns the accepted --detector values.
func Detectors() []string {
	return []string{DetectRules, DetectModel, DetectBoth, DetectSetMember, DetectAll}
}

// Detector is a learned-profile detector the runner can train: the
// pipeline's interface plus the end of learning.
type Detector interface {
	pipeline.Detector
	// FinishLearning closes learning (finalises profiles, calibrates the
	// threshold on held-out learning data); scoring follows.
	FinishLearning() error
}

// Scorer is optionally implemented by a Detector that exposes the score
// of the event it handled last; without it the event score is the highest
// Score of the anomaly alerts the event raised.
type Scorer interface {
	LastScore() float64
}

// Options configure a run.
type Options struct {
	// Detector is rules, model, both or all (default all: the three side by side).
	Detector string
	// InputFormat forces the trace format of a suite's files ("" detects).
	InputFormat string
	// Grace extends attack windows for alert attribution (default labels.DefaultGrace).
	Grace time.Duration
	// NewRules returns a fresh static rule set (required for rules/both).
	NewRules func() (pipeline.Rules, error)
	// NewDetector returns a fresh, untrained profile detector (required for
	// model/both on a suite).
	NewDetector func() (Detector, error)
	// NewSetMember returns a fresh set-membership baseline detector
	// (required for setmember; all includes it when set). It learns and
	// scores exactly as the profile detector does.
	NewSetMember func() (Detector, error)
	// ModelMode is how the profile model learns and detects on a suite:
	// "" or learn: the training traces in learn mode, FinishLearning, the
	// test trace in detect mode; auto: training and test traces in auto
	// mode (each category detects once the profiler's lifecycle finds it
	// stable, as the agent's auto mode does; FinishLearning is still called).
	ModelMode event.Mode
	// Seq configures the sequence model for LID-DS and ADFA-LD datasets.
	Seq seq.Config
	// Progress, when set, is told about every finished step.
	Progress func(done, total int, step string)
	// Log receives progress messages (default slog.Default()).
	Log *slog.Logger
}

func (o *Options) defaults() error {
	if o.Detector == "" {
		o.Detector = DetectAll
	}
	if !slices.Contains(Detectors(), o.Detector) {
		return fmt.Errorf("eval: unknown detector %q (want one of rules, model, both, setmember, all)", o.Detector)
	}
	if o.ModelMode != "" && o.ModelMode != event.ModeLearn && o.ModelMode != event.ModeAuto {
		return fmt.Errorf("eval: model mode %q (want learn or auto)", o.ModelMode)
	}
	if o.Grace == 0 {
		o.Grace = labels.DefaultGrace
	}
	if o.Seq.N == 0 {
		o.Seq = seq.DefaultConfig()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return nil
}

func (o *Options) selected() []string {
	if o.Detector == DetectAll {
		if o.NewSetMember != nil {
			return []string{DetectRules, DetectModel, DetectBoth, DetectSetMember}
		}
		return []string{DetectRules, DetectModel, DetectBoth}
	}
	return []string{o.Detector}
}

func (o *Options) progress(done, total int, step string) {
	if o.Progress != nil {
		o.Progress(done, total, step)
	}
	o.Log.Debug("eval step", "done", done, "total", total, "step", step)
}

// Run evaluates the dataset at path: a suite directory with manifest.json,
// a LID-DS scenario directory (training/, validation/, test/) or a directory
// of such scenarios, or an ADFA-LD root.
func Run(ctx context.Context, path string, opts Options) (*report.Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	switch {
	case labels.IsManifestDir(path):
		return runSuite(ctx, path, opts)
	case isLIDDSDataset(path):
		return runLIDDS(ctx, path, opts)
	case isADFARoot(path):
		return runADFA(ctx, path, opts)
	}
	return nil, fmt.Errorf("eval: %s: not a dataset (want a suite directory with %s, a LID-DS scenario directory with training/validation/test, or an ADFA-LD root)", path, labels.ManifestFile)
}

func newReport(path, format string, order []string) *report.Report {
	return &report.Report{
		Version: report.Version, Dataset: filepath.Base(filepath.Clean(path)), Format: format, Generated: time.Now().UTC(),
		Detectors: map[string]*report.Figures{}, Curves: map[string]report.Curves{}, Order: order,
	}
}

// runSuite evaluates our own labelled suite.
func runSuite(ctx context.Context, dir string, opts Options) (*report.Report, error) {
	m, err := labels.LoadManifest(dir)
	if err != nil {
		return nil, err
	}
	order := opts.selected()
	for _, d := range order {
		if (d == DetectRules || d == DetectBoth) && opts.NewRules == nil {
			return nil, fmt.Errorf("eval: detector %s needs rules but no rules constructor was given", d)
		}
		if (d == DetectModel || d == DetectBoth) && opts.NewDetector == nil {
			return nil, fmt.Errorf("eval: detector %s needs the profile model but no detector constructor was given", d)
		}
		if d == DetectSetMember && opts.NewSetMember == nil {
			return nil, fmt.Errorf("eval: detector %s needs the set-membership baseline but no constructor was given", d)
		}
	}
	rep := newReport(dir, "suite", order)
	if m.Name != "" {
		rep.Dataset = m.Name
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("alert attribution grace %s after each attack window", opts.Grace))
	byDet := map[string][]*collector{}
	bySplit := map[string]map[string][]*collector{}
	total, done := len(m.Scenarios)*len(order), 0
	for _, sc := range m.Scenarios {
		lab, err := m.LoadLabels(sc)
		if err != nil {
			return nil, err
		}
		res := &report.Scenario{Name: sc.Name, Workload: sc.Workload, Kind: sc.Kind, Split: sc.Split,
			Detectors: map[string]*report.Figures{}, Timeline: map[string][]report.Point{}}
		for _, det := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			c, t0, err := runScenario(ctx, m, sc, lab, det, opts)
			if err != nil {
				return nil, fmt.Errorf("eval: scenario %q, detector %s: %w", sc.Name, det, err)
			}
			res.Detectors[det] = c.figures()
			res.Timeline[det] = downsample(c.timeline)
			if res.Attacks == nil {
				for _, a := range lab.Attacks {
					res.Attacks = append(res.Attacks, report.Window{Start: float64(a.StartNs-t0) / 1e9, End: float64(a.EndNs-t0) / 1e9})
				}
			}
			byDet[det] = append(byDet[det], c)
			if sc.Split != "" {
				if bySplit[sc.Split] == nil {
					bySplit[sc.Split] = map[string][]*collector{}
				}
				bySplit[sc.Split][det] = append(bySplit[sc.Split][det], c)
			}
			done++
			opts.progress(done, total, sc.Name+"/"+det)
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	for _, det := range order {
		rep.Detectors[det] = figuresOf(byDet[det])
		rep.Curves[det] = curvesOf(byDet[det])
	}
	for sp, m := range bySplit {
		if rep.Splits == nil {
			rep.Splits = map[string]map[string]*report.Figures{}
		}
		rep.Splits[sp] = map[string]*report.Figures{}
		for det, cs := range m {
			rep.Splits[sp][det] = figuresOf(cs)
		}
	}
	return rep, nil
}

// taggedRules passes rule alerts through, remembering them so the runner
// can tell rule alerts from anomaly alerts.
type taggedRules struct {
	r    pipeline.Rules
	mine []*event.Alert
	emit func(*event.Alert)
	wrap func(*event.Alert)
}

func newTaggedRules(r pipeline.Rules) *taggedRules {
	t := &taggedRules{r: r}
	t.wrap = func(a *event.Alert) {
		t.mine = append(t.mine, a)
		t.emit(a)
	}
	return t
}

func (t *taggedRules) Eval(e *event.Enriched, emit func(*event.Alert)) {
	t.emit = emit
	t.r.Eval(e, t.wrap)
}

func containerOf(e *event.Enriched) string {
	if e.Container == nil || e.Container.ID == "" {
		return event.HostContainerID
	}
	return e.Container.ID
}

// runScenario learns (for model/both) and scores one scenario with one
// detector selection. It returns the collector and the trace's first event
// time (the timeline's origin).
func runScenario(ctx context.Context, m *labels.Manifest, sc labels.Scenario, lab *labels.Labels, det string, opts Options) (*collector, int64, error) {
	var rules *taggedRules
	var model Detector
	if det == DetectRules || det == DetectBoth {
		r, err := opts.NewRules()
		if err != nil {
			return nil, 0, fmt.Errorf("rules: %w", err)
		}
		rules = newTaggedRules(r)
	}
	if det == DetectModel || det == DetectBoth || det == DetectSetMember {
		newDet := opts.NewDetector
		if det == DetectSetMember {
			newDet = opts.NewSetMember
		}
		d, err := newDet()
		if err != nil {
			return nil, 0, fmt.Errorf("detector: %w", err)
		}
		for _, tr := range sc.Train {
			if err := learnTrace(ctx, m.Path(tr), opts.InputFormat, d, opts.learnMode()); err != nil {
				return nil, 0, fmt.Errorf("learning %s: %w", tr, err)
			}
		}
		if err := d.FinishLearning(); err != nil {
			return nil, 0, fmt.Errorf("finishing learning: %w", err)
		}
		model = d
	}
	src, err := input.Open(m.Path(sc.Test), opts.InputFormat)
	if err != nil {
		return nil, 0, err
	}
	defer src.Close()

	c := newCollector()
	for _, a := range lab.Attacks {
		c.addAttack(a.StartNs)
	}
	c.recordTimeline = true
	var pending []*event.Alert
	cfg := pipeline.Config{
		DefaultMode: opts.detectMode(),
		Emit:        func(a *event.Alert) { pending = append(pending, a) },
	}
	if rules != nil {
		cfg.Rules = rules
	}
	if model != nil {
		cfg.Detector = model
	}
	scorer, _ := model.(Scorer)
	first := true
	cfg.Observe = func(e *event.Enriched) {
		if first {
			c.timelineT0, first = e.Time, false
		}
		cid := containerOf(e)
		ruleHit, modelScore := false, 0.0
		for _, a := range pending {
			t := a.EventTime
			if t == 0 {
				t = e.Time
			}
			c.alert(t, lab.Attribute(t, cid, e.Pid, e.Proc, opts.Grace))
			if rules != nil && slices.Contains(rules.mine, a) {
				ruleHit = true
			} else {
				modelScore = max(modelScore, a.Score)
			}
		}
		if scorer != nil {
			modelScore = scorer.LastScore()
		}
		score := modelScore
		switch det {
		case DetectRules:
			score = b2f(ruleHit)
		case DetectBoth:
			// A rule alert ranks above every model score.
			score = modelScore + ruleBoost*b2f(ruleHit)
		}
		attack := lab.Attribute(e.Time, cid, e.Pid, e.Proc, 0) >= 0
		c.event(e.Time, cid, attack, score, len(pending) > 0)
		pending = pending[:0]
		if rules != nil {
			rules.mine = rules.mine[:0]
		}
	}
	p := pipeline.New(cfg)
	p.LoadSnapshot(src.Snapshot())
	c.lid.StartRecording(len(lab.Attacks) > 0)
	var ev event.Event
	c.cost.Start()
	n, err := drive(ctx, src, &ev, p.Handle)
	c.cost.Stop(n)
	c.lid.EndRecording()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", sc.Test, err)
	}
	return c, c.timelineT0, nil
}

// ruleBoost lifts events with a rule alert above any anomaly score in the
// "both" ranking (docs/eval.md).
const ruleBoost = 1000

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// drive feeds src's events to handle until EOF, checking ctx every 1024.
func drive(ctx context.Context, src event.Source, ev *event.Event, handle func(*event.Event)) (int64, error) {
	var n int64
	for {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		if err := src.Next(ev); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		handle(ev)
		n++
	}
}

func (o *Options) learnMode() event.Mode {
	if o.ModelMode == event.ModeAuto {
		return event.ModeAuto
	}
	return event.ModeLearn
}

func (o *Options) detectMode() event.Mode {
	if o.ModelMode == event.ModeAuto {
		return event.ModeAuto
	}
	return event.ModeDetect
}

// learnTrace replays a training trace through a learning pipeline.
func learnTrace(ctx context.Context, path, format string, d Detector, mode event.Mode) error {
	src, err := input.Open(path, format)
	if err != nil {
		return err
	}
	defer src.Close()
	p := pipeline.New(pipeline.Config{Detector: d, DefaultMode: mode})
	return p.Run(ctx, src)
}

func isADFARoot(path string) bool {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return false
	}
	for _, d := range []string{"Training_Data_Master", "Attack_Data_Master"} {
		if s, err := os.Stat(filepath.Join(path, d)); err != nil || !s.IsDir() {
			return false
		}
	}
	return true
}
