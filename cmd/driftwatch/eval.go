package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/eval"
	"github.com/driftwatch/driftwatch/eval/input"
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
		grace                          time.Duration
		modelMode                      string
		minStable, learnWindow         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "eval --dataset DIR [--report OUT] [--detector rules|model|both|all]",
		Short: "Replay labelled traces through the pipeline and report precision, recall, false alarms and cost",
		Long: `Evaluates detection on a labelled dataset:
  - a driftwatch suite (DIR/manifest.json, see docs/labels.md): each scenario
    learns on its benign training traces, then its test trace is replayed through
    the agent's pipeline with static rules, the learned-profile model, or both;
  - a LID-DS scenario directory (training/, validation/, test/) or a directory
    of them, or an ADFA-LD root: scored with the STIDE sequence model.
Writes OUT/report.json, OUT/report.md and PNG plots (docs/eval.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataset == "" {
				return withCode(2, errors.New("eval: --dataset is required"))
			}
			mm, err := event.ParseMode(modelMode)
			if err != nil || (mm != event.ModeLearn && mm != event.ModeAuto) {
				return withCode(2, fmt.Errorf("eval: --model-mode %q: want learn or auto", modelMode))
			}
			pcfg := profiler.Config{MinStable: minStable, Window: learnWindow}
			opts := eval.Options{
				ModelMode:   mm,
				Detector:    detector,
				InputFormat: format,
				Grace:       grace,
				NewRules: func() (pipeline.Rules, error) {
					rs, rep, err := rules.LoadDefault(rules.Options{UnknownFieldsAsWarnings: true})
					if err != nil {
						return nil, err
					}
					_ = rep
					return rs, nil
				},
				NewSetMember: func() (eval.Detector, error) { return setmember.New(setmember.Config{}), nil },
				NewDetector: func() (eval.Detector, error) {
					return profileDetector{model.NewDetector(profiler.New(nil, pcfg), model.Config{}), mm == event.ModeAuto}, nil
				},
				Log: slog.Default(),
			}
			opts.Seq.N, opts.Seq.Window, opts.Seq.ThreadAware = seqN, seqWindow, true
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
			rep, err := eval.Run(cmd.Context(), dataset, opts)
			if err != nil {
				return err
			}
			if withOverhead {
				o, err := eval.MeasureOverhead(overheadRounds, 2*time.Second)
				if err != nil {
					return fmt.Errorf("eval: --overhead: %w", err)
				}
				rep.Overhead = o
			}
			files, err := rep.Write(out)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, name := range rep.Order {
				f := rep.Detectors[name]
				fmt.Fprintf(w, "%-6s precision %.3f recall %.3f F1 %.3f false alarms/container-h %.2f detected %d/%d\n",
					name, f.Precision, f.Recall, f.F1, f.FalseAlarmsPerHour, f.Detected, f.Attacks)
			}
			fmt.Fprintf(w, "wrote %d files to %s\n", len(files), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataset, "dataset", "", "dataset directory (suite with manifest.json, LID-DS scenario(s) or ADFA-LD root)")
	f.StringVar(&out, "report", "eval-report", "output directory for report.json, report.md and plots")
	f.StringVar(&detector, "detector", eval.DetectAll, "detectors: "+strings.Join(eval.Detectors(), ", ")+" (all = rules, model, both and the setmember baseline side by side)")
	f.StringVar(&format, "input-format", "", "trace format of the suite's files: "+strings.Join(input.Formats(), ", ")+" (default: detect)")
	f.BoolVar(&withOverhead, "overhead", false, "also measure the sensor overhead (root, BPF) and add the table")
	f.IntVar(&overheadRounds, "overhead-rounds", 5, "interleaved pairs per overhead workload")
	f.IntVar(&seqN, "seq-n", 7, "STIDE n-gram length for LID-DS / ADFA-LD")
	f.IntVar(&seqWindow, "seq-window", 1000, "STIDE sliding window length for LID-DS / ADFA-LD")
	f.DurationVar(&grace, "grace", 0, "attribute alerts up to this long after an attack window (default 5s)")
	f.StringVar(&modelMode, "model-mode", "learn", "how the profile model learns on a suite: learn (training traces learned, profiles finalised offline, test trace detected) or auto (training and test traces in auto mode: each category detects once the online lifecycle finds it stable)")
	f.DurationVar(&minStable, "min-stable", 0, "learning.min_stable of the model's profiler (default 30m; shorten for short training traces with --model-mode auto)")
	f.DurationVar(&learnWindow, "learn-window", 0, "the profiler's sliding Good–Turing window (default 10m)")
	return cmd
}
