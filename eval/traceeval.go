package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/driftwatch/driftwatch/eval/input"
	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/eval/metrics"
	"github.com/driftwatch/driftwatch/eval/report"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model/seq"
)

// Trace-level evaluation of sequence datasets: every trace (an ADFA-LD file,
// a LID-DS recording) is read into its syscall streams (one per thread when
// thread-aware, else one) and gets one score per detector; an attack trace
// is one with a labelled attack. Learning, the Markov model's order and the
// threshold use dev data only: the training traces, and the validation
// traces when the dataset has them; else (ADFA-LD) the threshold comes from
// the benign test traces of the dev part (seqScenario.calib), or from
// cross-validation over training when that part has none.

// Defaults of the trace-level evaluation.
const (
	// DefaultTargetFPR is the false-positive rate the dev threshold aims at.
	DefaultTargetFPR = 0.05
	// DefaultFolds is the number of cross-validation folds over training.
	DefaultFolds = 5
)

// DefaultMarkovOrder is the order used when the training traces are too
// few to cross-validate (fewer than two).
const DefaultMarkovOrder = 6

// DefaultMarkovOrders are the context lengths the model's order is chosen
// from (by cross-validated likelihood on training traces).
func DefaultMarkovOrders() []int { return []int{1, 2, 3, 4, 6, 8, 10} }

// seqTrace is one trace's syscall streams and label.
type seqTrace struct {
	path    string
	streams [][]uint16
	attack  bool
	calls   int64
}

// readTrace reads path's syscall events into streams (per thread when
// threads is set); the trace is an attack when its labels hold an attack.
func readTrace(ctx context.Context, path, format string, threads bool) (seqTrace, error) {
	t := seqTrace{path: path}
	src, err := input.Open(path, format)
	if err != nil {
		return t, err
	}
	defer src.Close()
	if l, ok := src.(input.Labelled); ok && l.Labels() != nil {
		t.attack = len(l.Labels().Attacks) > 0
	}
	idx := map[uint32]int{}
	var ev event.Event
	for {
		if t.calls&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return t, err
			}
		}
		if err := src.Next(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return t, nil
			}
			return t, fmt.Errorf("%s: %w", path, err)
		}
		if ev.Kind != event.KindSyscall {
			continue
		}
		key := uint32(0)
		if threads {
			key = ev.Tid
		}
		i, ok := idx[key]
		if !ok {
			i = len(t.streams)
			idx[key] = i
			t.streams = append(t.streams, nil)
		}
		t.streams[i] = append(t.streams[i], ev.Syscall)
		t.calls++
	}
}

// traceScorer scores traces with a fitted detector; it must be safe for
// concurrent use.
type traceScorer func(seqTrace) float64

// traceDetector is a trace-level detector: how to fit it on training
// traces, what its score is, and the highest score it can give.
type traceDetector struct {
	name, score string
	// maxScore is the highest attainable score (+Inf when unbounded); a
	// threshold at or above it can never be exceeded.
	maxScore float64
	fit      func(train []seqTrace) (traceScorer, error)
	// describe adds fitted parameters to the calibration text.
	describe string
}

func seqDetectors(opts Options) ([]*traceDetector, error) {
	var names []string
	switch opts.Detector {
	case DetectAll:
		names = []string{DetectStide, DetectModel}
	case DetectStide, DetectModel:
		names = []string{opts.Detector}
	default:
		return nil, fmt.Errorf("eval: detector %q is not available on sequence datasets (want stide, model or all): %w", opts.Detector, ErrOptions)
	}
	var out []*traceDetector
	for _, n := range names {
		switch n {
		case DetectStide:
			cfg := opts.Seq
			out = append(out, &traceDetector{
				name:     DetectStide,
				score:    fmt.Sprintf("fraction of the trace's %d-grams never seen in training (STIDE)", cfg.N),
				maxScore: 1,
				fit: func(train []seqTrace) (traceScorer, error) {
					m, err := seq.New(cfg)
					if err != nil {
						return nil, err
					}
					for _, t := range train {
						for _, s := range t.streams {
							m.LearnStream(s)
						}
					}
					return func(t seqTrace) float64 { return m.TraceScore(t.streams) }, nil
				},
			})
		case DetectModel:
			out = append(out, &traceDetector{
				name:     DetectModel,
				score:    fmt.Sprintf("length-weighted robust excess surprise: (mean robust surprise per syscall in nats − entropy of the trace's own syscall mix) × √min(calls, %d); a syscall's robust surprise is −ln(P + e^−3) when training made that syscall, else −ln P, P its probability under the variable-order Markov model with Good–Turing back-off (model/seq.Markov.TraceScore)", seq.ExcessLengthCap),
				maxScore: math.Inf(1),
			})
		}
	}
	return out, nil
}

func fitMarkov(order int) func([]seqTrace) (traceScorer, error) {
	return func(train []seqTrace) (traceScorer, error) {
		m, err := seq.NewMarkov(order)
		if err != nil {
			return nil, err
		}
		for _, t := range train {
			for _, s := range t.streams {
				m.LearnStream(s)
			}
		}
		m.Finish()
		return func(t seqTrace) float64 { return m.TraceScore(t.streams) }, nil
	}
}

// folds splits traces into k folds by index (trace i goes to fold i mod k).
func foldsOf(traces []seqTrace, k int) (train, held [][]seqTrace) {
	train, held = make([][]seqTrace, k), make([][]seqTrace, k)
	for i, t := range traces {
		for f := 0; f < k; f++ {
			if i%k == f {
				held[f] = append(held[f], t)
			} else {
				train[f] = append(train[f], t)
			}
		}
	}
	return train, held
}

// crossScores returns every training trace's score from the fold model
// that did not learn it.
func crossScores(traces []seqTrace, k int, fit func([]seqTrace) (traceScorer, error)) ([]float64, error) {
	trn, held := foldsOf(traces, k)
	var out []float64
	for f := 0; f < k; f++ {
		if len(held[f]) == 0 || len(trn[f]) == 0 {
			continue
		}
		sc, err := fit(trn[f])
		if err != nil {
			return nil, err
		}
		for _, t := range held[f] {
			out = append(out, sc(t))
		}
	}
	return out, nil
}

// chooseOrder picks the Markov order with the lowest held-out mean
// surprise per call (likelihood: no attack and no test trace is looked
// at). With validation traces the model learns the training traces and
// the validation traces are held out; without, k-fold cross-validation
// over the training traces. It returns the order and a note with the table.
func chooseOrder(train, val []seqTrace, orders []int, k int) (int, string, error) {
	type split struct{ learn, held []seqTrace }
	var splits []split
	how := fmt.Sprintf("%d-fold cross-validated mean surprise per call on training traces", k)
	if len(val) > 0 {
		splits = []split{{train, val}}
		how = "mean surprise per call on the validation traces, learned on the training traces"
	} else {
		trn, held := foldsOf(train, k)
		for f := range trn {
			if len(held[f]) > 0 && len(trn[f]) > 0 {
				splits = append(splits, split{trn[f], held[f]})
			}
		}
	}
	if len(splits) == 0 {
		return DefaultMarkovOrder, fmt.Sprintf("model order %d (default): fewer than 2 training traces and no validation traces, nothing to hold out", DefaultMarkovOrder), nil
	}
	best, bestNLL := -1, math.Inf(1)
	var parts []string
	for _, o := range orders {
		var sum float64
		var n int
		for _, sp := range splits {
			m, err := seq.NewMarkov(o)
			if err != nil {
				return 0, "", err
			}
			for _, t := range sp.learn {
				for _, s := range t.streams {
					m.LearnStream(s)
				}
			}
			m.Finish()
			for _, t := range sp.held {
				for _, s := range t.streams {
					a, b := m.StreamSurprise(s)
					sum, n = sum+a, n+b
				}
			}
		}
		if n == 0 {
			return DefaultMarkovOrder, fmt.Sprintf("model order %d (default): the held-out traces hold no call", DefaultMarkovOrder), nil
		}
		nll := sum / float64(n)
		parts = append(parts, fmt.Sprintf("%d: %.4f", o, nll))
		if nll < bestNLL {
			best, bestNLL = o, nll
		}
	}
	return best, fmt.Sprintf("model order %d chosen by %s (order: nats/call — %s)", best, how, strings.Join(parts, ", ")), nil
}

// traceResult is one detector's trace-level results over one or more
// scenarios.
type traceResult struct {
	score       string
	samples     []metrics.Sample
	flagged     []bool
	traceCalls  []int64 // per sample
	calls       int64
	threshold   float64
	calibration string
}

func (r *traceResult) merge(o *traceResult) {
	r.samples = append(r.samples, o.samples...)
	r.flagged = append(r.flagged, o.flagged...)
	r.traceCalls = append(r.traceCalls, o.traceCalls...)
	r.calls += o.calls
}

// subset returns the results of the samples i with in[i], same threshold.
func (r *traceResult) subset(in []bool) *traceResult {
	o := &traceResult{score: r.score, threshold: r.threshold, calibration: r.calibration}
	for i, ok := range in {
		if ok {
			o.samples = append(o.samples, r.samples[i])
			o.flagged = append(o.flagged, r.flagged[i])
			o.traceCalls = append(o.traceCalls, r.traceCalls[i])
			o.calls += r.traceCalls[i]
		}
	}
	return o
}

// figures are the report's main figures at trace level: an alert is a
// flagged trace, an attack an attack trace.
func (r *traceResult) figures() *report.Figures {
	f := &report.Figures{Events: r.calls}
	for i, s := range r.samples {
		if s.Attack {
			f.Attacks++
		}
		if !r.flagged[i] {
			continue
		}
		f.Alerts++
		if s.Attack {
			f.TP++
		} else {
			f.FP++
		}
	}
	f.Detected = f.TP
	f.FN = f.Attacks - f.Detected
	f.Precision, f.Recall, f.F1 = metrics.PRF(f.TP, f.FP, f.Detected, f.Attacks)
	f.DetectionRate = f.Recall
	return f
}

func (r *traceResult) traceFigures() *report.TraceFigures {
	t := &report.TraceFigures{TraceScore: r.score, Traces: len(r.samples),
		TraceThreshold: report.Float(r.threshold), Calibration: r.calibration,
		DetectionRateAtFPR: map[string]float64{}}
	var benign, attacks, fp, tp int
	for i, s := range r.samples {
		if s.Attack {
			attacks++
			if r.flagged[i] {
				tp++
			}
		} else {
			benign++
			if r.flagged[i] {
				fp++
			}
		}
	}
	t.AttackTraces = attacks
	if attacks > 0 {
		t.TraceDetectionRate = float64(tp) / float64(attacks)
	}
	if benign > 0 {
		t.TraceFalsePositiveRate = float64(fp) / float64(benign)
	}
	if roc := metrics.ROC(r.samples); roc.OK {
		t.TraceROCAUC = report.Float(roc.AUC)
	}
	if pr := metrics.PR(r.samples); pr.OK {
		t.TracePRAUC = report.Float(pr.AUC)
	}
	if attacks > 0 && benign > 0 {
		for _, k := range report.FPRKeys {
			var fpr float64
			fmt.Sscan(k, &fpr)
			t.DetectionRateAtFPR[k] = metrics.DetectionAtFPR(r.samples, fpr)
		}
	}
	return t
}

func (r *traceResult) curves() report.Curves {
	var out report.Curves
	if roc := metrics.ROC(r.samples); roc.OK {
		out.ROC = thin(roc.X, roc.Y)
	}
	if pr := metrics.PR(r.samples); pr.OK {
		out.PR = thin(pr.X, pr.Y)
	}
	return out
}

// calibrate returns the threshold letting at most targetFPR of the dev
// benign scores exceed it. A threshold a detector's score can never exceed
// is clamped to the highest dev score below the ceiling, with a warning
// (returned); with no such score it is an error.
func calibrate(dev []float64, targetFPR, ceiling float64) (float64, string, error) {
	t := metrics.ThresholdAtFPR(dev, targetFPR)
	if math.IsNaN(t) {
		return 0, "", errors.New("no dev scores to calibrate the threshold on")
	}
	if t < ceiling {
		return t, "", nil
	}
	below := math.Inf(-1)
	for _, v := range dev {
		if v < ceiling && v > below {
			below = v
		}
	}
	if math.IsInf(below, -1) {
		return 0, "", fmt.Errorf("threshold %.4g cannot be exceeded (every dev score is at the ceiling %.4g)", t, ceiling)
	}
	return below, fmt.Sprintf("threshold %.4g at %.0f%% dev FPR cannot be exceeded (score ceiling %.4g); clamped to the highest dev score below it, %.4g", t, 100*targetFPR, ceiling, below), nil
}

// scoreTraces scores the test traces lo..hi−1 of scenario s with every
// detector into sp: the raw scores, labels and lengths, and the dev scores
// a threshold is calibrated on when they come from the validation traces
// or from cross-validation over training (every shard computes the same);
// when they come from the dev part's benign test traces (s.calib) the
// threshold is left to assembleSeq, which sees every shard's traces.
func scoreTraces(ctx context.Context, s seqScenario, lo, hi int, dets []*traceDetector, opts Options, sp *SeqPart, step func(string)) error {
	read := func(paths []string) ([]seqTrace, error) {
		out := make([]seqTrace, 0, len(paths))
		for _, p := range paths {
			t, err := readTrace(ctx, p, s.format, opts.Seq.ThreadAware)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
			step(filepath.Base(p))
		}
		return out, nil
	}
	train, err := read(s.train)
	if err != nil {
		return err
	}
	val, err := read(s.validation)
	if err != nil {
		return err
	}
	test, err := read(s.test[lo:hi])
	if err != nil {
		return err
	}
	sp.Attack = make([]byte, len(test))
	sp.Calls = make([]int64, len(test))
	for i, t := range test {
		if t.attack {
			sp.Attack[i] = 1
		}
		sp.Calls[i] = t.calls
	}
	calibTests := slices.Contains(s.calib, true)
	for _, d := range dets {
		fit := d.fit
		sd := &SeqDet{Name: d.name, Score: d.score}
		if !math.IsInf(d.maxScore, 1) {
			sd.Ceiling = report.Float(d.maxScore)
		}
		if d.name == DetectModel {
			order, note, err := chooseOrder(train, val, opts.MarkovOrders, opts.Folds)
			if err != nil {
				return err
			}
			sp.Notes = append(sp.Notes, s.name+": "+note)
			fit = fitMarkov(order)
			sd.Describe = fmt.Sprintf("order %d; ", order)
		}
		sc, err := fit(train)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		// Fitted scorers only read: score the test traces in parallel.
		sd.Scores = make([]float64, len(test))
		if err := runJobs(ctx, len(test), opts.Jobs, func(i int) error {
			sd.Scores[i] = sc(test[i])
			return nil
		}); err != nil {
			return err
		}
		switch {
		case len(val) > 0:
			sd.Dev = make([]float64, 0, len(val))
			for _, t := range val {
				sd.Dev = append(sd.Dev, sc(t))
			}
			sd.DevHow = fmt.Sprintf("validation traces (%d)", len(val))
		case calibTests:
			// the dev part's benign test traces, at assembly
		default:
			if sd.Dev, err = crossScores(train, opts.Folds, fit); err != nil {
				return fmt.Errorf("%s: %w", d.name, err)
			}
			sd.DevHow = fmt.Sprintf("%d-fold cross-validation over the training traces (%d held-out scores)", opts.Folds, len(sd.Dev))
		}
		sp.Detectors = append(sp.Detectors, sd)
	}
	return nil
}

// result calibrates d's threshold and returns its trace-level results
// over the scenario's test traces; warn is set when the threshold was
// clamped.
func (d *SeqDet) result(sp *SeqPart, targetFPR float64) (r *traceResult, warn string, err error) {
	dev, how := d.Dev, d.DevHow
	if how == "" {
		for i, ok := range sp.Calib {
			if ok == 1 && sp.Attack[i] == 0 {
				dev = append(dev, d.Scores[i])
			}
		}
		if len(dev) == 0 {
			return nil, "", fmt.Errorf("%s: no benign test trace of the dev part (%s) to calibrate the threshold on", d.Name, sp.CalibName)
		}
		how = fmt.Sprintf("the %d benign test traces of the dev part (%s)", len(dev), sp.CalibName)
	}
	ceiling := math.Inf(1)
	if d.Ceiling != nil {
		ceiling = *d.Ceiling
	}
	th, warn, err := calibrate(dev, targetFPR, ceiling)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", d.Name, err)
	}
	r = &traceResult{score: d.Score, threshold: th,
		calibration: fmt.Sprintf("%sthe score exceeded by at most %g of the benign dev scores, from %s", d.Describe, targetFPR, how)}
	if warn != "" {
		r.calibration += "; " + warn
	}
	r.samples = make([]metrics.Sample, len(d.Scores))
	r.flagged = make([]bool, len(d.Scores))
	r.traceCalls = slices.Clone(sp.Calls)
	for i, v := range d.Scores {
		r.samples[i] = metrics.Sample{Score: v, Attack: sp.Attack[i] == 1}
		r.flagged[i] = v > th
		r.calls += sp.Calls[i]
	}
	return r, warn, nil
}

// assembleSeq builds the report of a sequence dataset from each
// scenario's results (one run, or every shard's merged): per-event STIDE
// figures, thresholds, trace-level figures per scenario and part, and the
// pooled figures. A single run and Merge both use it.
func assembleSeq(rep *report.Report, sps []*SeqPart, targetFPR float64, log *slog.Logger) error {
	var perEvent []*collector
	pooled := map[string]*traceResult{}
	for _, sp := range sps {
		res := &report.Scenario{Name: sp.Name, Kind: labels.KindAttack, Detectors: map[string]*report.Figures{}, Timeline: map[string][]report.Point{}}
		if sp.PerEvent != nil {
			c, err := sp.PerEvent.collector()
			if err != nil {
				return fmt.Errorf("eval: scenario %s: %w", sp.Name, err)
			}
			perEvent = append(perEvent, c)
			res.Detectors[DetectStide] = c.figures()
			res.Timeline[DetectStide] = downsample(c.timeline)
			res.Attacks = sp.PerEventWindows
			if c.clamped {
				rep.Notes = append(rep.Notes, fmt.Sprintf("WARNING: scenario %s: the per-event stide threshold (max validation window score) was 1, which no window can exceed; clamped to %.4f", sp.Name, *c.threshold))
			}
		}
		rep.Notes = append(rep.Notes, sp.Notes...)
		trs := map[string]*traceResult{}
		for _, d := range sp.Detectors {
			tr, warn, err := d.result(sp, targetFPR)
			if err != nil {
				return fmt.Errorf("eval: scenario %s: %w", sp.Name, err)
			}
			if warn != "" {
				log.Warn("eval: "+warn, "scenario", sp.Name, "detector", d.Name)
				rep.Notes = append(rep.Notes, fmt.Sprintf("WARNING: %s, %s: %s", sp.Name, d.Name, warn))
			}
			trs[d.Name] = tr
			f := res.Detectors[d.Name]
			if f == nil {
				f = tr.figures()
				res.Detectors[d.Name] = f
			}
			f.TraceFigures = tr.traceFigures()
			if p := pooled[d.Name]; p != nil {
				p.merge(tr)
			} else {
				pooled[d.Name] = &traceResult{score: tr.score, threshold: tr.threshold, calibration: tr.calibration}
				pooled[d.Name].merge(tr)
			}
		}
		if !slices.Contains(sp.Attack, 1) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: no attack trace among the test traces", sp.Name))
		}
		rep.Scenarios = append(rep.Scenarios, res)
		for k, name := range sp.Parts {
			in := make([]bool, len(sp.PartIn[k]))
			for i, v := range sp.PartIn[k] {
				in[i] = v == 1
			}
			sub := &report.Scenario{Name: sp.Name + " " + name, Kind: labels.KindAttack, Detectors: map[string]*report.Figures{}, Timeline: map[string][]report.Point{}}
			for _, d := range sp.Detectors {
				tr := trs[d.Name].subset(in)
				f := tr.figures()
				f.TraceFigures = tr.traceFigures()
				sub.Detectors[d.Name] = f
			}
			rep.Scenarios = append(rep.Scenarios, sub)
		}
	}
	for _, name := range rep.Order {
		tr := pooled[name]
		if tr == nil {
			continue
		}
		var f *report.Figures
		if name == DetectStide && len(perEvent) > 0 {
			f = figuresOf(perEvent)
		} else {
			f = tr.figures()
		}
		f.TraceFigures = tr.traceFigures()
		if len(sps) > 1 {
			f.TraceThreshold = nil
			f.Calibration = "per scenario (see scenarios)"
		}
		rep.Detectors[name] = f
		rep.Curves[name] = tr.curves()
	}
	return nil
}
