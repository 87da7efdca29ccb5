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
	"runtime"
	"slices"
	"strings"
	"sync"
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
	DetectAll   = "all"
	// DetectSuppressed is the static rules after learned suppression: the
	// scenario's training traces are learned into profiles, and a rule's
	// alert is dropped when the profile knows every feature of its event
	// (agent/suppress with its default policy). Only rule alerts count.
	DetectSuppressed = "suppressed"
	// DetectBothRaw is the model with the static rules without learned
	// suppression. DetectBoth is what the agent runs by default (its
	// default configuration has suppression.enabled: true): the model and
	// the rules after learned suppression (when Options.NewSuppressor is
	// set; without it both is both-raw).
	DetectBothRaw = "both-raw"
	// DetectStide is the STIDE baseline of sequence datasets.
	DetectStide = report.Stide
	// DetectSetMember is the set-membership baseline (model/setmember).
	DetectSetMember = "setmember"
	// DetectBaselineRules is a second static rule set alone, loaded by
	// Options.NewBaselineRules (the CLI's --baseline-rules files, e.g.
	// Falco's three rule files), scored like rules: a rule set to compare
	// with in the same report.
	DetectBaselineRules = "baseline-rules"
)

// ErrOptions is wrapped by errors that come from the options rather than
// the data: an unknown detector, a detector the dataset cannot run, a bad
// shard, job or fold count (the CLI exits 2 for them).
var ErrOptions = errors.New("invalid options")

// ADFAStideN is STIDE's n-gram length on ADFA-LD unless configured: the
// length of the published trace-level reference figures.
const ADFAStideN = 6

// Detectors returns the accepted --detector values.
func Detectors() []string {
	return []string{DetectRules, DetectModel, DetectBoth, DetectBothRaw, DetectSuppressed, DetectBaselineRules, DetectSetMember, DetectAll, DetectStide}
}

// needsRules and needsModel say what a detector selection runs.
func needsRules(d string) bool {
	return d == DetectRules || d == DetectBoth || d == DetectBothRaw || d == DetectSuppressed
}
func needsModel(d string) bool {
	return d == DetectModel || d == DetectBoth || d == DetectBothRaw || d == DetectSuppressed
}

// suppresses says whether a detector learns which rules are the image's
// noise and drops their alerts the profile explains.
func suppresses(d string, o *Options) bool {
	return d == DetectSuppressed || (d == DetectBoth && o.NewSuppressor != nil)
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
	// Detector is rules, model, both, suppressed or all (default all: the
	// four side by side).
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
	// NewSuppressor returns the learned-suppression decision over a trained
	// profile detector (required for suppressed on a suite; the CLI uses
	// agent/suppress with its default policy).
	NewSuppressor func(d Detector) (func(a *event.Alert, e *event.Enriched, mode event.Mode) bool, error)
	// NewSetMember returns a fresh set-membership baseline detector
	// (required for setmember; all includes it when set). It learns and
	// scores exactly as the profile detector does.
	NewSetMember func() (Detector, error)
	// NewBaselineRules returns a fresh static rule set to compare with
	// (required for baseline-rules; all includes it when set).
	NewBaselineRules func() (pipeline.Rules, error)
	// ModelMode is how the profile model learns and detects on a suite:
	// "" or learn: the training traces in learn mode, FinishLearning, the
	// test trace in detect mode; auto: training and test traces in auto
	// mode (each category detects once the profiler's lifecycle finds it
	// stable, as the agent's auto mode does; FinishLearning is still called).
	ModelMode event.Mode
	// Seq configures STIDE for LID-DS and ADFA-LD datasets; N = 0 takes
	// the dataset's default (ADFA-LD 6, LID-DS 7).
	Seq seq.Config
	// TargetFPR is the benign dev false-positive rate the trace-level
	// threshold is set at (default DefaultTargetFPR).
	TargetFPR float64
	// MarkovOrders are the candidate orders of the sequence model (default
	// DefaultMarkovOrders); Folds the cross-validation folds (default 5).
	MarkovOrders []int
	Folds        int
	// Progress, when set, is told about every finished step (calls are
	// serialised; done counts the finished steps).
	Progress func(done, total int, step string)
	// Shard selects part of a suite (zero: all of it).
	Shard Shard
	// Jobs is the number of scenarios evaluated in parallel (default:
	// GOMAXPROCS). Figures do not depend on it; throughput and CPU per
	// event are then measured per OS thread.
	Jobs int
	// Log receives progress messages (default slog.Default()).
	Log *slog.Logger

	prog *progressState
}

// progressState is shared by every copy of an Options.
type progressState struct {
	mu   sync.Mutex
	done int
}

func (o *Options) defaults() error {
	if o.Detector == "" {
		o.Detector = DetectAll
	}
	if !slices.Contains(Detectors(), o.Detector) {
		return fmt.Errorf("eval: unknown detector %q (want one of %s): %w", o.Detector, strings.Join(Detectors(), ", "), ErrOptions)
	}
	if o.ModelMode != "" && o.ModelMode != event.ModeLearn && o.ModelMode != event.ModeAuto {
		return fmt.Errorf("eval: model mode %q (want learn or auto): %w", o.ModelMode, ErrOptions)
	}
	if o.Grace == 0 {
		o.Grace = labels.DefaultGrace
	}
	if o.Seq == (seq.Config{}) {
		o.Seq = seq.DefaultConfig()
		o.Seq.N = 0
	}
	if o.TargetFPR == 0 {
		o.TargetFPR = DefaultTargetFPR
	}
	if o.TargetFPR < 0 || o.TargetFPR >= 1 {
		return fmt.Errorf("eval: target false-positive rate must be in (0, 1), got %g: %w", o.TargetFPR, ErrOptions)
	}
	if len(o.MarkovOrders) == 0 {
		o.MarkovOrders = DefaultMarkovOrders()
	}
	if o.Folds == 0 {
		o.Folds = DefaultFolds
	}
	if o.Folds < 2 {
		return fmt.Errorf("eval: cross-validation needs ≥ 2 folds, got %d: %w", o.Folds, ErrOptions)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Jobs == 0 {
		o.Jobs = runtime.GOMAXPROCS(0)
	}
	if o.Jobs < 0 {
		return fmt.Errorf("eval: jobs must be ≥ 1, got %d: %w", o.Jobs, ErrOptions)
	}
	o.prog = &progressState{}
	return nil
}

func (o *Options) selected() []string {
	if o.Detector == DetectAll {
		out := []string{DetectRules, DetectModel, DetectBoth, DetectBothRaw, DetectSuppressed}
		if o.NewBaselineRules != nil {
			out = append(out, DetectBaselineRules)
		}
		if o.NewSetMember != nil {
			out = append(out, DetectSetMember)
		}
		return out
	}
	return []string{o.Detector}
}

// progress reports one finished step; done < 0 means "one more than
// before". Safe for concurrent use.
func (o *Options) progress(done, total int, step string) {
	o.prog.mu.Lock()
	defer o.prog.mu.Unlock()
	if done < 0 {
		o.prog.done++
		done = o.prog.done
	} else {
		o.prog.done = done
	}
	if o.Progress != nil {
		o.Progress(done, total, step)
	}
	o.Log.Debug("eval step", "done", done, "total", total, "step", step)
}

// Run evaluates the dataset at path: a suite directory with manifest.json,
// a LID-DS scenario directory (training/, validation/, test/) or a directory
// of such scenarios, or an ADFA-LD root.
func Run(ctx context.Context, path string, opts Options) (*report.Report, error) {
	rep, _, err := RunPartial(ctx, path, opts)
	return rep, err
}

// RunPartial is Run that also returns the raw results a later Merge needs
// (opts.Shard selects part of the dataset, see Shard).
func RunPartial(ctx context.Context, path string, opts Options) (*report.Report, *Partial, error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	if labels.IsManifestDir(path) {
		return runSuite(ctx, path, opts)
	}
	rep, part, err := runOther(ctx, path, opts)
	if part != nil {
		part.TargetFPR = opts.TargetFPR
	}
	return rep, part, err
}

func runOther(ctx context.Context, path string, opts Options) (*report.Report, *Partial, error) {
	switch {
	case isLIDDSDataset(path):
		if opts.Seq.N == 0 {
			opts.Seq.N = seq.DefaultConfig().N
		}
		return runLIDDS(ctx, path, opts)
	case isADFARoot(path):
		if opts.Seq.N == 0 {
			opts.Seq.N = ADFAStideN
		}
		return runADFA(ctx, path, opts)
	}
	return nil, nil, fmt.Errorf("eval: %s: not a dataset (want a suite directory with %s, a LID-DS scenario directory with training/validation/test, or an ADFA-LD root)", path, labels.ManifestFile)
}

func newReport(path, format string, order []string) *report.Report {
	return &report.Report{
		Version: report.Version, Dataset: filepath.Base(filepath.Clean(path)), Format: format, Generated: time.Now().UTC(),
		Detectors: map[string]*report.Figures{}, Curves: map[string]report.Curves{}, Order: order,
	}
}

// runSuite evaluates our own labelled suite (the scenarios of opts.Shard).
func runSuite(ctx context.Context, dir string, opts Options) (*report.Report, *Partial, error) {
	m, err := labels.LoadManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	order := opts.selected()
	for _, d := range order {
		if d == DetectStide {
			return nil, nil, fmt.Errorf("eval: detector %s runs on sequence datasets (LID-DS, ADFA-LD) only: %w", d, ErrOptions)
		}
		if needsRules(d) && opts.NewRules == nil {
			return nil, nil, fmt.Errorf("eval: detector %s needs rules but no rules constructor was given", d)
		}
		if d == DetectSuppressed && opts.NewSuppressor == nil {
			return nil, nil, fmt.Errorf("eval: detector %s needs a suppressor constructor", d)
		}
		if needsModel(d) && opts.NewDetector == nil {
			return nil, nil, fmt.Errorf("eval: detector %s needs the profile model but no detector constructor was given", d)
		}
		if d == DetectBaselineRules && opts.NewBaselineRules == nil {
			return nil, nil, fmt.Errorf("eval: detector %s needs baseline rule files (--baseline-rules): %w", d, ErrOptions)
		}
		if d == DetectSetMember && opts.NewSetMember == nil {
			return nil, nil, fmt.Errorf("eval: detector %s needs the set-membership baseline but no constructor was given", d)
		}
	}
	rep := newReport(dir, "suite", order)
	if m.Name != "" {
		rep.Dataset = m.Name
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("alert attribution grace %s after each attack window", opts.Grace))
	part := &Partial{Version: PartialVersion, Dataset: rep.Dataset, Format: rep.Format, Order: order,
		Notes: slices.Clone(rep.Notes), Shard: opts.Shard, Scenarios: len(m.Scenarios)}
	if opts.Shard.Count > 1 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("shard %s: scenarios k with k mod %d = %d only; merge the shards with 'driftwatch eval merge'", opts.Shard, opts.Shard.Count, opts.Shard.Index))
	}
	// Every (scenario, detector) pair is independent: a fresh pipeline,
	// rule set and detector. Jobs run them in parallel; results land in
	// their slot, so the report does not depend on Jobs.
	type job struct {
		sc  int
		det string
	}
	var jobs []job
	labs := make([]*labels.Labels, len(m.Scenarios))
	for i, sc := range m.Scenarios {
		if !opts.Shard.has(i) {
			continue
		}
		lab, err := m.LoadLabels(sc)
		if err != nil {
			return nil, nil, err
		}
		labs[i] = lab
		for _, det := range order {
			jobs = append(jobs, job{i, det})
		}
	}
	part.Jobs = make([]PartJob, len(jobs))
	err = runJobs(ctx, len(jobs), opts.Jobs, func(k int) error {
		j := jobs[k]
		sc := m.Scenarios[j.sc]
		c, t0, err := runScenario(ctx, m, sc, labs[j.sc], j.det, opts)
		if err != nil {
			return fmt.Errorf("eval: scenario %q, detector %s: %w", sc.Name, j.det, err)
		}
		pj := PartJob{Scenario: j.sc, Name: sc.Name, Workload: sc.Workload, Kind: sc.Kind, Split: sc.Split, Detector: j.det, State: c.export()}
		for _, a := range labs[j.sc].Attacks {
			pj.Attacks = append(pj.Attacks, report.Window{Start: float64(a.StartNs-t0) / 1e9, End: float64(a.EndNs-t0) / 1e9})
		}
		part.Jobs[k] = pj
		opts.progress(-1, len(jobs), sc.Name+"/"+j.det)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := assembleSuite(rep, part.Jobs); err != nil {
		return nil, nil, err
	}
	return rep, part, nil
}

// runJobs runs fn(0..n-1) on up to jobs goroutines (each locked to its OS
// thread, so per-thread CPU accounting is the job's own) and returns the
// first error; after an error no new job starts.
func runJobs(ctx context.Context, n, jobs int, fn func(int) error) error {
	if jobs < 1 {
		jobs = 1
	}
	jobs = min(jobs, n)
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for {
				mu.Lock()
				if first != nil || next >= n {
					mu.Unlock()
					return
				}
				k := next
				next++
				mu.Unlock()
				err := ctx.Err()
				if err == nil {
					err = fn(k)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
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
	var suppressFn func(*event.Alert, *event.Enriched, event.Mode) bool
	if needsRules(det) || det == DetectBaselineRules {
		newRules := opts.NewRules
		if det == DetectBaselineRules {
			newRules = opts.NewBaselineRules
		}
		r, err := newRules()
		if err != nil {
			return nil, 0, fmt.Errorf("rules: %w", err)
		}
		rules = newTaggedRules(r)
	}
	if needsModel(det) || det == DetectSetMember {
		newDet := opts.NewDetector
		if det == DetectSetMember {
			newDet = opts.NewSetMember
		}
		d, err := newDet()
		if err != nil {
			return nil, 0, fmt.Errorf("detector: %w", err)
		}
		var sup func(*event.Alert, *event.Enriched, event.Mode) bool
		if suppresses(det, &opts) {
			// The suppressor sees the rules' alerts while learning (which
			// rules are the image's normal noise), then decides in detect.
			if sup, err = opts.NewSuppressor(d); err != nil {
				return nil, 0, fmt.Errorf("suppressor: %w", err)
			}
		}
		for _, tr := range sc.Train {
			var lerr error
			if sup != nil {
				lerr = learnTraceWithRules(ctx, m.Path(tr), opts.InputFormat, d, rules.r, sup)
			} else {
				lerr = learnTrace(ctx, m.Path(tr), opts.InputFormat, d, opts.learnMode())
			}
			if lerr != nil {
				return nil, 0, fmt.Errorf("learning %s: %w", tr, lerr)
			}
		}
		if err := d.FinishLearning(); err != nil {
			return nil, 0, fmt.Errorf("finishing learning: %w", err)
		}
		model = d
		suppressFn = sup
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
	if model != nil && det != DetectSuppressed {
		cfg.Detector = model
	}
	cfg.Suppress = suppressFn
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
		case DetectRules, DetectSuppressed, DetectBaselineRules:
			score = b2f(ruleHit)
		case DetectBoth, DetectBothRaw:
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
	c.cost.PerThread = true // runScenario runs on a locked worker thread (runJobs)
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

// learnTraceWithRules is learnTrace with the static rules running and
// their alerts passed to suppress in learn mode (the suppressed detector).
func learnTraceWithRules(ctx context.Context, path, format string, d Detector, r pipeline.Rules, suppress func(*event.Alert, *event.Enriched, event.Mode) bool) error {
	src, err := input.Open(path, format)
	if err != nil {
		return err
	}
	defer src.Close()
	p := pipeline.New(pipeline.Config{Detector: d, Rules: r, Suppress: suppress, DefaultMode: event.ModeLearn})
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
