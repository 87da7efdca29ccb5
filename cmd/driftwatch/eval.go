package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/agent/suppress"
	"github.com/driftwatch/driftwatch/eval"
	"github.com/driftwatch/driftwatch/eval/input"
	"github.com/driftwatch/driftwatch/eval/report"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/model/setmember"
	"github.com/driftwatch/driftwatch/profiler"
	"github.com/driftwatch/driftwatch/rules"
)

// profileDetector adapts model.Detector to eval.Detector: learning ends
// with the profiler's offline Finalize, or, in auto mode, nothing changes:
// the online lifecycle decides when each category detects.
type profileDetector struct {
	*model.Detector
	auto bool
}

func (d profileDetector) FinishLearning() error {
	if !d.auto {
		d.Profiler().Finalize(false)
	}
	return nil
}

func newEvalCmd() *cobra.Command {
	var (
		dataset, out, detector, format string
		withOverhead                   bool
		overheadRounds                 int
		seqN, seqWindow                int
		targetFPR                      float64
		jobs                           int
		shard                          string
		grace                          time.Duration
		rulePaths, baselinePaths       []string
		defaultRules                   bool
		modelMode                      string
		minStable, learnWindow         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "eval --dataset DIR [--report OUT] [--detector rules|model|both|both-raw|suppressed|baseline-rules|setmember|all] [--rules PATH]... [--baseline-rules PATH]...",
		Short: "Replay labelled traces through the pipeline and report precision, recall, false alarms and cost",
		Long: `Evaluates detection on a labelled dataset:
  - a driftwatch suite (DIR/manifest.json, see docs/labels.md): each scenario
    learns on its benign training traces, then its test trace is replayed through
    the agent's pipeline with static rules, the learned-profile model, both, or
    the static rules after learned suppression (suppressed), and baselines: the
    set-membership learner (setmember) and, with --baseline-rules, other rule
    files alone (baseline-rules, e.g. Falco's three files);
  - a LID-DS scenario directory (training/, validation/, test/) or a directory
    of them, or an ADFA-LD root: each trace scored by the STIDE baseline
    (detector stide) and driftwatch's sequence model (detector model).
Writes OUT/report.json, OUT/report.md and PNG plots (docs/eval.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataset == "" {
				return withCode(2, errors.New("eval: --dataset is required"))
			}
			if jobs < 1 {
				return withCode(exitUsage, fmt.Errorf("eval: --jobs must be ≥ 1, got %d", jobs))
			}
			mm, err := event.ParseMode(modelMode)
			if err != nil || (mm != event.ModeLearn && mm != event.ModeAuto) {
				return withCode(exitUsage, fmt.Errorf("eval: --model-mode %q: want learn or auto", modelMode))
			}
			pcfg := profiler.Config{MinStable: minStable, Window: learnWindow}
			opts := eval.Options{
				ModelMode:   mm,
				Detector:    detector,
				InputFormat: format,
				Grace:       grace,
				NewRules: func() (pipeline.Rules, error) {
					ropts := rules.Options{UnknownFieldsAsWarnings: true}
					if len(rulePaths) == 0 {
						rs, _, err := rules.LoadDefault(ropts)
						return rs, err
					}
					ropts.IncludeDefault = defaultRules
					rs, _, err := rules.Load(rulePaths, ropts)
					return rs, err
				},
				NewSetMember: func() (eval.Detector, error) { return setmember.New(setmember.Config{}), nil },

				NewDetector: func() (eval.Detector, error) {
					return profileDetector{model.NewDetector(profiler.New(nil, pcfg), model.Config{}), mm == event.ModeAuto}, nil
				},
				NewSuppressor: func(d eval.Detector) (func(*event.Alert, *event.Enriched, event.Mode) bool, error) {
					pd, ok := d.(profileDetector)
					if !ok {
						return nil, fmt.Errorf("detector %T has no profiles", d)
					}
					return suppress.New(pd.Profiler(), suppress.Policy{}, nil).Suppress, nil
				},
				Log: slog.Default(),
			}
			if len(baselinePaths) > 0 {
				// Checked once here: a bad file is a usage error, not a
				// failure of every scenario.
				if _, _, err := rules.Load(baselinePaths, rules.Options{UnknownFieldsAsWarnings: true}); err != nil {
					return withCode(exitUsage, fmt.Errorf("eval: --baseline-rules: %w", err))
				}
				opts.NewBaselineRules = func() (pipeline.Rules, error) {
					rs, _, err := rules.Load(baselinePaths, rules.Options{UnknownFieldsAsWarnings: true})
					return rs, err
				}
			}
			opts.Seq.N, opts.Seq.Window, opts.Seq.ThreadAware = seqN, seqWindow, true
			opts.TargetFPR = targetFPR
			opts.Jobs = jobs
			if term.IsTerminal(int(os.Stderr.Fd())) {
				var bar *progressbar.ProgressBar
				opts.Progress = func(done, total int, step string) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
							progressbar.OptionSetDescription("eval"), progressbar.OptionShowCount(),
							progressbar.OptionClearOnFinish())
					}
					bar.Describe(fmt.Sprintf("eval %-32.32s", step))
					bar.Set(done)
				}
			}
			if shard != "" {
				sh, err := eval.ParseShard(shard)
				if err != nil {
					return withCode(exitUsage, err)
				}
				opts.Shard = sh
			}
			rep, part, err := eval.RunPartial(cmd.Context(), dataset, opts)
			if errors.Is(err, eval.ErrOptions) {
				return withCode(exitUsage, err)
			}
			if err != nil {
				return withCode(exitData, err)
			}
			if withOverhead {
				o, err := eval.MeasureOverhead(overheadRounds, 2*time.Second)
				if err != nil {
					return fmt.Errorf("eval: --overhead: %w", err)
				}
				rep.Overhead = o
			}
			if opts.Shard.Count > 1 {
				if _, err := eval.WritePartial(out, part); err != nil {
					return withCode(exitUsage, err)
				}
			}
			return writeEvalReport(cmd.OutOrStdout(), rep, out)
		},
	}
	var mergeOut string
	merge := &cobra.Command{
		Use:   "merge --report OUT SHARD-DIR...",
		Short: "Combine the reports of 'eval --shard i/N' runs into the report of one run",
		Long: `Each 'driftwatch eval --shard i/N --report DIR' writes DIR/` + eval.PartialFile + ` beside its
report: the raw per-scenario results (of a LID-DS or ADFA-LD dataset, per test trace). merge reads every shard 0..N-1 of one run and writes
OUT/report.json, report.md and the plots with the same figures a single run gives.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var parts []*eval.Partial
			for _, a := range args {
				p, err := eval.ReadPartial(a)
				if err != nil {
					return withCode(exitData, err)
				}
				parts = append(parts, p)
			}
			rep, err := eval.Merge(parts)
			if err != nil {
				return withCode(exitData, err)
			}
			return writeEvalReport(cmd.OutOrStdout(), rep, mergeOut)
		},
	}
	merge.Flags().StringVar(&mergeOut, "report", "eval-report", "output directory for the merged report")
	cmd.AddCommand(merge)
	f := cmd.Flags()
	f.StringVar(&dataset, "dataset", "", "dataset directory (suite with manifest.json, LID-DS scenario(s) or ADFA-LD root)")
	f.StringVar(&out, "report", "eval-report", "output directory for report.json, report.md and plots")
	f.StringVar(&detector, "detector", eval.DetectAll, "detectors: "+strings.Join(eval.Detectors(), ", ")+" (both = the model and the rules after learned suppression, as the agent runs by default; both-raw = the model and the rules without it; all = rules, model, both, both-raw, suppressed, baseline-rules with --baseline-rules, and the setmember baseline side by side)")
	f.StringArrayVar(&rulePaths, "rules", nil, "rules file or directory for the rule detectors (repeatable; default: the built-in rules)")
	f.BoolVar(&defaultRules, "default-rules", true, "with --rules, also load the built-in rules first")
	f.StringArrayVar(&baselinePaths, "baseline-rules", nil, "rules files or directories of the baseline-rules detector, loaded alone (repeatable; e.g. Falco's three rule files); all includes it when given")
	f.StringVar(&format, "input-format", "", "trace format of the suite's files: "+strings.Join(input.Formats(), ", ")+" (default: detect)")
	f.BoolVar(&withOverhead, "overhead", false, "also measure the sensor overhead (root, BPF) and add the table")
	f.IntVar(&overheadRounds, "overhead-rounds", 5, "interleaved pairs per overhead workload")
	f.IntVar(&seqN, "seq-n", 0, "STIDE n-gram length for LID-DS / ADFA-LD (default: 7 on LID-DS, 6 on ADFA-LD)")
	f.StringVar(&shard, "shard", "", "evaluate part i/N of a dataset (suite: scenario k when k mod N = i; LID-DS, ADFA-LD: block i of N contiguous blocks of each scenario's test traces) and write "+eval.PartialFile+" for 'eval merge'")
	f.IntVar(&jobs, "jobs", runtime.GOMAXPROCS(0), "scenarios evaluated in parallel (default: all cores)")
	f.Float64Var(&targetFPR, "target-fpr", eval.DefaultTargetFPR, "sequence datasets: benign dev false-positive rate the trace-level threshold is set at")
	f.IntVar(&seqWindow, "seq-window", 1000, "STIDE sliding window length for LID-DS / ADFA-LD")
	f.DurationVar(&grace, "grace", 0, "attribute alerts up to this long after an attack window (default 5s)")
	f.StringVar(&modelMode, "model-mode", "learn", "how the profile model learns on a suite: learn (training traces learned, profiles finalised offline, test trace detected) or auto (training and test traces in auto mode: each category detects once the online lifecycle finds it stable)")
	f.DurationVar(&minStable, "min-stable", 0, "learning.min_stable of the model's profiler (default 30m; shorten for short training traces with --model-mode auto)")
	f.DurationVar(&learnWindow, "learn-window", 0, "the profiler's sliding Good–Turing window (default 10m)")
	return cmd
}

// writeEvalReport writes rep to out and prints the headline figures.
func writeEvalReport(w io.Writer, rep *report.Report, out string) error {
	files, err := rep.Write(out)
	if err != nil {
		return withCode(exitUsage, err)
	}
	for _, name := range rep.Order {
		f := rep.Detectors[name]
		fmt.Fprintf(w, "%-6s precision %.3f recall %.3f F1 %.3f false alarms/container-h %.2f detected %d/%d\n",
			name, f.Precision, f.Recall, f.F1, f.FalseAlarmsPerHour, f.Detected, f.Attacks)
		if t := f.TraceFigures; t != nil {
			at := func(k string) string {
				if v, ok := t.DetectionRateAtFPR[k]; ok {
					return fmt.Sprintf("%.3f", v)
				}
				return "–" // a class is missing among the test traces
			}
			fmt.Fprintf(w, "%-6s trace ROC AUC %s PR AUC %s detection at 1%%/5%%/10%% FPR %s/%s/%s; at threshold %s: detection %.3f FPR %.3f\n",
				name, fmtFloat(t.TraceROCAUC), fmtFloat(t.TracePRAUC), at("0.01"), at("0.05"), at("0.1"),
				fmtFloat(t.TraceThreshold), t.TraceDetectionRate, t.TraceFalsePositiveRate)
		}
	}
	fmt.Fprintf(w, "wrote %d files to %s\n", len(files), out)
	return nil
}

func fmtFloat(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.4g", *v)
}
