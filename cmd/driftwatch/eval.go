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
	"github.com/driftwatch/driftwatch/agent/suppress"
	"github.com/driftwatch/driftwatch/eval"
	"github.com/driftwatch/driftwatch/eval/input"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
	"github.com/driftwatch/driftwatch/rules"
)

// profileDetector adapts model.Detector to eval.Detector: learning ends
// with the profiler's offline Finalize.
type profileDetector struct{ *model.Detector }

func (d profileDetector) FinishLearning() error {
	d.Profiler().Finalize(false)
	return nil
}

func newEvalCmd() *cobra.Command {
	var (
		dataset, out, detector, format string
		withOverhead                   bool
		overheadRounds                 int
		seqN, seqWindow                int
		grace                          time.Duration
		rulePaths                      []string
		defaultRules                   bool
	)
	cmd := &cobra.Command{
		Use:   "eval --dataset DIR [--report OUT] [--detector rules|model|both|suppressed|all] [--rules PATH]...",
		Short: "Replay labelled traces through the pipeline and report precision, recall, false alarms and cost",
		Long: `Evaluates detection on a labelled dataset:
  - a driftwatch suite (DIR/manifest.json, see docs/labels.md): each scenario
    learns on its benign training traces, then its test trace is replayed through
    the agent's pipeline with static rules, the learned-profile model, both, or
    the static rules after learned suppression (suppressed);
  - a LID-DS scenario directory (training/, validation/, test/) or a directory
    of them, or an ADFA-LD root: scored with the STIDE sequence model.
Writes OUT/report.json, OUT/report.md and PNG plots (docs/eval.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataset == "" {
				return withCode(2, errors.New("eval: --dataset is required"))
			}
			opts := eval.Options{
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
				NewDetector: func() (eval.Detector, error) {
					return profileDetector{model.NewDetector(profiler.New(nil, profiler.Config{}), model.Config{})}, nil
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
	f.StringVar(&detector, "detector", eval.DetectAll, "detectors: "+strings.Join(eval.Detectors(), ", ")+" (all = rules, model, both and suppressed side by side)")
	f.StringArrayVar(&rulePaths, "rules", nil, "rules file or directory for the rule detectors (repeatable; default: the built-in rules)")
	f.BoolVar(&defaultRules, "default-rules", true, "with --rules, also load the built-in rules first")
	f.StringVar(&format, "input-format", "", "trace format of the suite's files: "+strings.Join(input.Formats(), ", ")+" (default: detect)")
	f.BoolVar(&withOverhead, "overhead", false, "also measure the sensor overhead (root, BPF) and add the table")
	f.IntVar(&overheadRounds, "overhead-rounds", 5, "interleaved pairs per overhead workload")
	f.IntVar(&seqN, "seq-n", 7, "STIDE n-gram length for LID-DS / ADFA-LD")
	f.IntVar(&seqWindow, "seq-window", 1000, "STIDE sliding window length for LID-DS / ADFA-LD")
	f.DurationVar(&grace, "grace", 0, "attribute alerts up to this long after an attack window (default 5s)")
	return cmd
}
