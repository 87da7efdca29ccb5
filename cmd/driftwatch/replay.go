package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/proctable"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/format"
	"github.com/driftwatch/driftwatch/event/trace"
)

func newReplayCmd() *cobra.Command {
	var outFormat string
	cmd := &cobra.Command{
		Use:   "replay [--format text|json] FILE",
		Short: "Print the events of a trace, enriched with process, fd and container context",
		Long: `Replay reads a trace written by 'driftwatch record', rebuilds the process
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
			src, closeSrc, err := openReplaySource(args[0])
			if err != nil {
				return withCode(1, err)
			}
			defer closeSrc()
			return runReplay(cmd.OutOrStdout(), src, outFormat)
		},
	}
	cmd.Flags().StringVar(&outFormat, "format", "text", "output format: text or json")
	return cmd
}

// openReplaySource opens the input of a replay. It is the single place that
// decides the input format (today: driftwatch traces only; other readers
// plug in here).
func openReplaySource(path string) (event.SnapshotSource, func() error, error) {
	r, err := trace.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return r, r.Close, nil
}

// runReplay streams src through the process table and container resolver
// and prints each event to w.
func runReplay(w io.Writer, src event.SnapshotSource, outFormat string) error {
	snap := src.Snapshot()
	if snap == nil {
		snap = &event.Snapshot{}
	}
	res := container.NewStaticResolver(snap.Cgroups)
	for _, ci := range snap.Containers {
		res.AddContainer(ci)
	}
	if un, ok := src.(event.UpdateNotifier); ok {
		un.SetUpdateHandlers(res.AddCgroup, func(ci event.ContainerInfo) { res.AddContainer(ci) })
	}
	procs := proctable.New(proctable.Options{Containers: res})
	procs.LoadSnapshot(snap)

	bw := bufio.NewWriterSize(w, 64<<10)
	var ev event.Event
	var line []byte
	for {
		err := src.Next(&ev)
		if err != nil {
			if ferr := bw.Flush(); ferr != nil {
				return withCode(1, fmt.Errorf("replay: write: %w", ferr))
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			var ce *trace.CorruptError
			if errors.As(err, &ce) {
				return withCode(1, fmt.Errorf("error at byte offset %d: %w", ce.Offset, ce.Err))
			}
			return withCode(1, fmt.Errorf("replay: %w", err))
		}
		c := res.Resolve(ev.CgroupID)
		proc, fd := procs.Apply(&ev, c)
		if outFormat == "json" {
			line = format.AppendJSON(line[:0], &ev, proc, fd, c)
		} else {
			line = format.AppendText(line[:0], &ev, proc, fd, c)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return withCode(1, fmt.Errorf("replay: write: %w", err))
		}
	}
}
