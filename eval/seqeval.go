package eval

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/eval/adfa"
	"github.com/driftwatch/driftwatch/eval/input"
	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/eval/lidds"
	"github.com/driftwatch/driftwatch/eval/report"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model/seq"
)

// seqScenario is a syscall-only scenario: training, validation (threshold)
// and test recordings, each opened with format.
type seqScenario struct {
	name, format            string
	train, validation, test []string
	// perEvent adds STIDE's per-event (sliding-window) figures and the
	// LID-DS metrics; without it only trace-level figures are computed.
	perEvent bool
	// parts are named subsets of the test traces (in[i] for test[i])
	// reported as extra scenarios with the same fitted detectors and
	// thresholds (ADFA-LD: dev and held-out).
	parts []testPart
	// calib, when set and there are no validation traces, marks the test
	// traces whose benign ones calibrate the threshold (calibName says
	// which); else it is calibrated by cross-validation over training.
	calib     []bool
	calibName string
}

type testPart struct {
	name string
	in   []bool
}

// LID-DS 2021 scenario layout.
const (
	liddsTraining   = "training"
	liddsValidation = "validation"
	liddsTest       = "test"
)

func globAll(dir string, patterns ...string) []string {
	var out []string
	for _, p := range patterns {
		m, _ := filepath.Glob(filepath.Join(dir, p))
		out = append(out, m...)
	}
	slices.Sort(out)
	return out
}

func liddsScenario(dir string) (seqScenario, bool) {
	if s, ok := lidds2019Scenario(dir); ok {
		return s, true
	}
	s := seqScenario{name: filepath.Base(filepath.Clean(dir)), format: input.LIDDS, perEvent: true}
	s.train = globAll(filepath.Join(dir, liddsTraining), "*.zip")
	s.validation = globAll(filepath.Join(dir, liddsValidation), "*.zip")
	s.test = globAll(filepath.Join(dir, liddsTest), "*.zip", "*/*.zip")
	return s, len(s.train) > 0 && len(s.test) > 0
}

// LID-DS 2019 split, as the LID-DS framework's 2019 data loader makes it:
// the scenario's normal recordings in runs.csv order, the first 200 for
// training, the next 50 for validation, the rest and every exploit
// recording for test.
const (
	lidds2019Training   = 200
	lidds2019Validation = 50
)

// lidds2019Scenario is a LID-DS 2019 scenario directory: runs.csv and one
// <scenario_name>.txt per row.
func lidds2019Scenario(dir string) (seqScenario, bool) {
	s := seqScenario{name: filepath.Base(filepath.Clean(dir)), format: input.LIDDS, perEvent: true}
	runs, err := lidds.Runs2019(filepath.Join(dir, "runs.csv"))
	if err != nil {
		return s, false
	}
	normal := 0
	for _, r := range runs {
		path := filepath.Join(dir, r.Name+".txt")
		if _, err := os.Stat(path); err != nil {
			continue // a row without its recording (partial download)
		}
		switch {
		case r.Exploit:
			s.test = append(s.test, path)
		case normal < lidds2019Training:
			s.train = append(s.train, path)
			normal++
		case normal < lidds2019Training+lidds2019Validation:
			s.validation = append(s.validation, path)
			normal++
		default:
			s.test = append(s.test, path)
			normal++
		}
	}
	return s, len(s.train) > 0 && len(s.test) > 0
}

// isLIDDSDataset reports whether dir is a LID-DS scenario or a directory
// of scenarios.
func isLIDDSDataset(dir string) bool {
	if _, ok := liddsScenario(dir); ok {
		return true
	}
	subs, _ := os.ReadDir(dir)
	for _, s := range subs {
		if _, ok := liddsScenario(filepath.Join(dir, s.Name())); s.IsDir() && ok {
			return true
		}
	}
	return false
}

func runLIDDS(ctx context.Context, dir string, opts Options) (*report.Report, *Partial, error) {
	var scs []seqScenario
	if s, ok := liddsScenario(dir); ok {
		scs = append(scs, s)
	} else {
		subs, _ := os.ReadDir(dir)
		for _, d := range subs {
			if s, ok := liddsScenario(filepath.Join(dir, d.Name())); d.IsDir() && ok {
				scs = append(scs, s)
			}
		}
	}
	rep := newReport(dir, "lid-ds", nil)
	for _, sc := range scs {
		if len(sc.train) > 0 && strings.HasSuffix(sc.train[0], ".txt") {
			rep.Notes = append(rep.Notes, fmt.Sprintf("LID-DS 2019 scenario %s: normal recordings in runs.csv order, the first %d training, the next %d validation, the rest test, with every exploit recording (the LID-DS framework's 2019 split)", sc.name, lidds2019Training, lidds2019Validation))
		}
	}
	rep.Notes = append(rep.Notes, seqNote(opts.Seq),
		"LID-DS labels: a syscall is attack iff its recording has exploit=true and it is at/after time.exploit[0].absolute; one attack per exploit recording",
		"static rules are not run on LID-DS: recordings lack container and process-lifecycle context")
	return runSeq(ctx, rep, scs, opts)
}

func runADFA(ctx context.Context, root string, opts Options) (*report.Report, *Partial, error) {
	traces, err := adfa.Scan(root)
	if err != nil {
		return nil, nil, err
	}
	s := seqScenario{name: "ADFA-LD", format: input.ADFA}
	var attacks []string
	var devBenign, devAttack []bool
	for _, t := range traces {
		switch t.Split {
		case adfa.SplitTraining:
			s.train = append(s.train, t.Path)
		case adfa.SplitValidation:
			s.test = append(s.test, t.Path)
			devBenign = append(devBenign, adfa.Dev(t))
		case adfa.SplitAttack:
			attacks = append(attacks, t.Path)
			devAttack = append(devAttack, adfa.Dev(t))
		}
	}
	s.test = append(s.test, attacks...)
	dev := append(devBenign, devAttack...)
	held := make([]bool, len(dev))
	for i, d := range dev {
		held[i] = !d
	}
	s.parts = []testPart{{"dev", dev}, {"held-out", held}}
	s.calib, s.calibName = dev, "validation traces whose file name hashes even"
	if len(s.train) == 0 || len(attacks) == 0 {
		return nil, nil, fmt.Errorf("eval: %s: ADFA-LD needs training and attack traces", root)
	}
	rep := newReport(root, "adfa-ld", nil)
	rep.Notes = append(rep.Notes,
		"ADFA-LD: every Validation_Data_Master trace is a benign test trace and every Attack_Data_Master trace an attack trace, the protocol of the published trace-level figures; the detectors learn Training_Data_Master (the model's order by cross-validation over it) and the thresholds are calibrated on the benign traces of the dev part",
		fmt.Sprintf("ADFA-LD: scenarios \"ADFA-LD dev\" and \"ADFA-LD held-out\" score the same test traces split in two (same models and thresholds): dev = attack types %s and the validation traces whose file name hashes (FNV-1a 32) even; held-out = the other attack types and validation traces. driftwatch's model variant was chosen on training + dev only", strings.Join(adfa.DevAttackFamilies, ", ")),
		"ADFA-LD: figures are per trace (alerts, tp, fp count flagged traces); traces carry no time, so per-event figures are not computed",
		"static rules are not run on ADFA-LD: traces hold syscall numbers only")
	return runSeq(ctx, rep, []seqScenario{s}, opts)
}

func seqNote(c seq.Config) string {
	return fmt.Sprintf("per-event stide: n=%d, window=%d, thread-aware=%v; threshold = max window score over validation recordings", c.N, c.Window, c.ThreadAware)
}

func runSeq(ctx context.Context, rep *report.Report, scs []seqScenario, opts Options) (*report.Report, *Partial, error) {
	dets, err := seqDetectors(opts)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range dets {
		rep.Order = append(rep.Order, d.name)
	}
	rep.CurvesPerTrace = true
	part := &Partial{Version: PartialVersion, Dataset: rep.Dataset, Format: rep.Format, Order: rep.Order,
		Notes: slices.Clone(rep.Notes), Shard: opts.Shard, Scenarios: len(scs)}
	total := 0
	for _, s := range scs {
		lo, hi := opts.Shard.block(len(s.test))
		n := len(s.train) + len(s.validation) + hi - lo
		total += n
		if s.perEvent && slices.Contains(rep.Order, DetectStide) {
			total += n
		}
	}
	done := 0
	step := func(what string) {
		done++
		opts.progress(done, total, what)
	}
	for _, s := range scs {
		// The shard's block of test traces; training and validation are
		// read whole by every shard (they fit the detectors).
		lo, hi := opts.Shard.block(len(s.test))
		sp := &SeqPart{Name: s.name, Tests: len(s.test), First: lo, CalibName: s.calibName}
		for _, p := range s.parts {
			sp.Parts = append(sp.Parts, p.name)
			sp.PartIn = append(sp.PartIn, bools(p.in[lo:hi]))
		}
		if s.calib != nil {
			sp.Calib = bools(s.calib[lo:hi])
		}
		block := s
		block.test = s.test[lo:hi]
		if s.perEvent && slices.Contains(rep.Order, DetectStide) {
			res := &report.Scenario{Detectors: map[string]*report.Figures{}, Timeline: map[string][]report.Point{}}
			c, err := runSeqScenario(ctx, block, opts, res, step)
			if err != nil {
				return nil, nil, fmt.Errorf("eval: scenario %s: %w", s.name, err)
			}
			st := c.export()
			sp.PerEvent, sp.PerEventWindows = &st, res.Attacks
		}
		if err := scoreTraces(ctx, s, lo, hi, dets, opts, sp, step); err != nil {
			return nil, nil, fmt.Errorf("eval: scenario %s: %w", s.name, err)
		}
		part.Seq = append(part.Seq, sp)
	}
	if opts.Shard.Count > 1 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("shard %s: the test traces of block %d of %d of each scenario only; merge the shards with 'driftwatch eval merge'", opts.Shard, opts.Shard.Index, opts.Shard.Count))
	}
	if err := assembleSeq(rep, part.Seq, opts.TargetFPR, opts.Log); err != nil {
		return nil, nil, err
	}
	return rep, part, nil
}

// runSeqScenario computes STIDE's per-event figures (sliding window,
// LID-DS metrics) of one scenario into res.Detectors["stide"].
func runSeqScenario(ctx context.Context, s seqScenario, opts Options, res *report.Scenario, step func(string)) (*collector, error) {
	m, err := seq.New(opts.Seq)
	if err != nil {
		return nil, err
	}
	d := seq.NewDetector(m)
	replay := func(path string, mode event.Mode, observe func(src input.Source, e *event.Enriched), emit func(*event.Alert)) (input.Source, int64, error) {
		src, err := input.Open(path, s.format)
		if err != nil {
			return nil, 0, err
		}
		d.NewRecording()
		p := pipeline.New(pipeline.Config{Detector: d, DefaultMode: mode, Emit: emit,
			Observe: func(e *event.Enriched) {
				if observe != nil {
					observe(src, e)
				}
			}})
		p.LoadSnapshot(src.Snapshot())
		var ev event.Event
		n, err := drive(ctx, src, &ev, p.Handle)
		src.Close()
		if err != nil {
			return nil, n, fmt.Errorf("%s: %w", path, err)
		}
		return src, n, nil
	}
	for _, path := range s.train {
		if _, _, err := replay(path, event.ModeLearn, nil, nil); err != nil {
			return nil, err
		}
		step(filepath.Base(path))
	}
	// Threshold: the highest window score over validation recordings.
	m.SetThreshold(math.Inf(1))
	threshold, clamped := 0.0, false
	for _, path := range s.validation {
		if _, _, err := replay(path, event.ModeDetect, nil, nil); err != nil {
			return nil, err
		}
		threshold = max(threshold, d.MaxScore())
		step(filepath.Base(path))
	}
	// A window score cannot exceed 1: a threshold of 1 would never alarm.
	if ceiling := 1 - 1/float64(opts.Seq.Window); threshold > ceiling {
		opts.Log.Warn("eval: per-event STIDE threshold cannot be exceeded; clamped", "scenario", s.name, "threshold", threshold, "clamped", ceiling)
		threshold = ceiling
		clamped = true
	}
	m.SetThreshold(threshold)

	c := newCollector()
	c.threshold = report.Float(threshold)
	c.clamped = clamped
	var pending []*event.Alert
	timelineDone := false
	for _, path := range s.test {
		src, err := input.Open(path, s.format)
		if err != nil {
			return nil, err
		}
		var lab *labels.Labels
		if l, ok := src.(input.Labelled); ok {
			lab = l.Labels()
		}
		src.Close()
		base := len(c.attacks)
		for _, a := range lab.Attacks {
			c.addAttack(a.StartNs)
		}
		attackRec := len(lab.Attacks) > 0
		c.recordTimeline = attackRec && !timelineDone
		first := true
		c.lid.StartRecording(attackRec)
		c.cost.Start()
		_, n, err := replay(path, event.ModeDetect, func(_ input.Source, e *event.Enriched) {
			if first {
				first = false
				if c.recordTimeline {
					c.timelineT0 = e.Time
					for _, a := range lab.Attacks {
						end := a.EndNs
						if end > e.Time+int64(1e15) { // open-ended (LID-DS): shade to the last event
							end = math.MaxInt64
						}
						res.Attacks = append(res.Attacks, report.Window{Start: float64(a.StartNs-e.Time) / 1e9, End: float64(end-e.Time) / 1e9})
					}
				}
			}
			cid := containerOf(e)
			for _, a := range pending {
				idx := lab.Attribute(a.EventTime, cid, e.Pid, e.Proc, opts.Grace)
				if idx >= 0 {
					idx += base
				}
				c.alert(a.EventTime, idx)
			}
			attack := lab.Attribute(e.Time, cid, e.Pid, e.Proc, 0) >= 0
			if d.Scored() {
				c.event(e.Time, path+"\x00"+cid, attack, d.LastScore(), len(pending) > 0)
			} else {
				c.unscored(e.Time, path+"\x00"+cid)
			}
			pending = pending[:0]
		}, func(a *event.Alert) { pending = append(pending, a) })
		c.cost.Stop(n)
		if err != nil {
			return nil, err
		}
		if c.recordTimeline {
			timelineDone = true
			c.recordTimeline = false
			// Clamp an open-ended window to the recording's last event.
			if len(c.timeline) > 0 {
				last := c.timeline[len(c.timeline)-1].X
				for i := range res.Attacks {
					res.Attacks[i].End = math.Min(res.Attacks[i].End, last)
				}
			}
		}
		step(filepath.Base(path))
	}
	res.Detectors[DetectStide] = c.figures()
	res.Timeline[DetectStide] = downsample(c.timeline)
	return c, nil
}
