package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
	"github.com/driftwatch/driftwatch/rules"
)

func newDetectCmd() *cobra.Command {
	var (
		rulePaths   []string
		db          string
		format      string
		inputFormat string
		noRules     bool
	)
	cmd := &cobra.Command{
		Use:   "detect [--db FILE] [--rules PATH]... [--format text|json] TRACE...",
		Short: "Run the detection pipeline (static rules, and learned profiles with --db) over recorded traces",
		Long: `detect replays traces through the same pipeline as the agent and prints alerts:
static-rule alerts as they fire (the default rules unless --rules is given), then, with --db,
anomaly alerts scored against the learned profiles, highest score first within each container.
With --format json each alert is one line of Falco's JSON alert shape.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return withCode(2, fmt.Errorf("--format: want text or json, got %q", format))
			}
			out := cmd.OutOrStdout()
			var writeErr error
			emit := func(a *event.Alert) {
				if writeErr != nil {
					return
				}
				if format == "json" {
					b, err := event.AppendAlertJSON(nil, a)
					if err != nil {
						writeErr = err
						return
					}
					_, writeErr = out.Write(append(b, '\n'))
					return
				}
				_, writeErr = out.Write(append(event.AppendAlertText(nil, a), '\n'))
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))

			cfg := pipeline.Config{Emit: emit, DefaultMode: event.ModeDetect}
			if !noRules {
				opts := rules.Options{Logger: logger}
				var (
					rs  *rules.Ruleset
					err error
				)
				if len(rulePaths) == 0 {
					rs, _, err = rules.LoadDefault(opts)
				} else {
					rs, _, err = rules.Load(rulePaths, opts)
				}
				if err != nil {
					return withCode(exitData, err)
				}
				cfg.Rules = rs
			}
			var det *model.Detector
			if db != "" {
				store, prof, err := openProfiles(db, profiler.Config{Logger: logger}, true)
				if err != nil {
					return err
				}
				defer store.Close()
				det = model.NewDetector(prof, model.Config{Batch: true})
				cfg.Detector = det
			}
			for _, path := range args {
				if err := detectOne(cmd.Context(), cfg, path, inputFormat); err != nil {
					return err
				}
				if det != nil {
					det.Flush(emit)
				}
				if writeErr != nil {
					return writeErr
				}
			}
			return writeErr
		},
	}
	cmd.Flags().StringArrayVar(&rulePaths, "rules", nil, "rules file or directory (repeatable; default: the built-in rules)")
	cmd.Flags().BoolVar(&noRules, "no-rules", false, "run no static rules (profiles only)")
	cmd.Flags().StringVar(&db, "db", "", "profile store (bbolt) to score against; without it only static rules run")
	cmd.Flags().StringVar(&format, "format", "text", "alert format: text or json")
	cmd.Flags().StringVar(&inputFormat, "input-format", "auto", inputFormatHelp)
	return cmd
}

// detectOne runs one trace through a fresh pipeline (each trace has its
// own process table and snapshot).
func detectOne(ctx context.Context, cfg pipeline.Config, path, inputFormat string) error {
	src, err := openInput(path, inputFormat)
	if err != nil {
		return withCode(exitData, err)
	}
	defer src.Close()
	p := pipeline.New(cfg)
	if err := p.Run(ctx, src); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return withCode(exitData, fmt.Errorf("%s: %w", path, err))
	}
	return nil
}
