package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/format"
	"github.com/driftwatch/driftwatch/event/trace"
)

func newReplayCmd() *cobra.Command {
	var outFormat, inputFormat string
	cmd := &cobra.Command{
		Use:   "replay [--format text|json] FILE",
		Short: "Print the events of a trace, enriched with process, fd and container context",
		Long: `Replay reads a trace written by 'driftwatch record' (or a LID-DS or ADFA-LD
recording), rebuilds the process
table and container attribution from the trace's start-up snapshot and
prints every event: one human line each (--format text), or one JSON object
per line keyed by Falco field names (--format json). On a damaged trace it
prints the events before the damage, then the error with its byte offset,
and exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if outFormat != "text" && outFormat != "json" {
				return withCode(2, fmt.Errorf("--format %q: want text or json", outFormat))
			}
			src, closeSrc, err := openReplaySource(args[0], inputFormat)
			if err != nil {
				return withCode(1, err)
			}
			defer closeSrc()
			return runReplay(cmd.OutOrStdout(), src, outFormat)
		},
	}
	cmd.Flags().StringVar(&outFormat, "format", "text", "output format: text or json")
	cmd.Flags().StringVar(&inputFormat, "input-format", "auto", inputFormatHelp)
	return cmd
}

// openReplaySource opens the input of a replay in the given input format
// (driftwatch traces, LID-DS recordings, ADFA-LD traces; auto-detected by
// default).
func openReplaySource(path, inputFormat string) (event.SnapshotSource, func() error, error) {
	src, err := openInput(path, inputFormat)
	if err != nil {
		return nil, nil, err
	}
	return src, src.Close, nil
}

// runReplay streams src through the agent's pipeline (enrichment only: no
// rules, no profiles) and prints each enriched event to w.
func runReplay(w io.Writer, src event.SnapshotSource, outFormat string) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	var writeErr error
	p := pipeline.New(pipeline.Config{
		Observe: func(e *event.Enriched) {
			if writeErr != nil {
				return
			}
			if outFormat == "json" {
				line = format.AppendJSON(line[:0], e.Event, e.Proc, e.FD, e.Container)
			} else {
				line = format.AppendText(line[:0], e.Event, e.Proc, e.FD, e.Container)
			}
			line = append(line, '\n')
			_, writeErr = bw.Write(line)
		},
	})
	err := p.Run(context.Background(), src)
	if ferr := bw.Flush(); ferr != nil && writeErr == nil {
		writeErr = ferr
	}
	if writeErr != nil {
		return withCode(1, fmt.Errorf("replay: write: %w", writeErr))
	}
	if err == nil {
		return nil
	}
	var ce *trace.CorruptError
	if errors.As(err, &ce) {
		return withCode(1, fmt.Errorf("error at byte offset %d: %w", ce.Offset, ce.Err))
	}
	return withCode(1, fmt.Errorf("replay: %w", err))
}
