package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/bpf/overhead"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks that need the live system (see `bench overhead`)",
	}
	cmd.AddCommand(newBenchOverheadCmd())
	return cmd
}

func newBenchOverheadCmd() *cobra.Command {
	var (
		rounds    int
		duration  time.Duration
		workloads string
		verbose   bool
		progStats bool
		ringSys   int
		syscalls  string
		dedup     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "overhead",
		Short: "Measure the sensor's cost on exec, open and connect storms (root)",
		Long: `Runs an exec storm (fork+exec /bin/true), an open storm (open, read 1 byte,
close) and a loopback connect storm, each with and without the sensor attached
and consuming events, in interleaved pairs, and prints per workload the median
ratio ops/s with ÷ ops/s without (1.00 = no cost), and the same ratio over the
CPU time the workload used (its thread and reaped children), which other load
on the machine disturbs much less.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "driftwatch-bench-")
			if err != nil {
				return withCode(exitUsage, err)
			}
			defer os.RemoveAll(dir)
			all, err := overhead.Workloads(dir)
			if err != nil {
				return withCode(exitUsage, err)
			}
			var sel []overhead.Workload
			for _, w := range all {
				if workloads == "" || containsName(workloads, w.Name) {
					sel = append(sel, w)
				}
			}
			if len(sel) == 0 {
				return withCode(2, fmt.Errorf("%w: %q (want exec, open, connect)", overhead.ErrNoWorkloads, workloads))
			}
			opt := overhead.Options{Rounds: rounds, Duration: duration, ProgStats: progStats,
				Sensor: bpf.Config{RingSizeSyscall: ringSys, DedupWindow: dedupWindow(dedup)}}
			if cmd.Flags().Changed("syscalls") {
				nrs, err := parseSyscalls(syscalls)
				if err != nil {
					return withCode(2, err)
				}
				opt.Sensor.Syscalls = nrs // "" = hooks attached, no syscall reported: the floor
			}
			if verbose {
				opt.Progress = cmd.ErrOrStderr()
			}
			res, err := overhead.Measure(sel, opt)
			if err != nil {
				var env *bpf.EnvError
				if errors.As(err, &env) || errors.Is(err, bpf.ErrBadConfig) {
					return withCode(2, err)
				}
				return withCode(exitUsage, err) // a measurement that could not run
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sensor overhead: %d interleaved pairs of %s per workload\n", rounds, duration)
			return overhead.Print(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().IntVar(&rounds, "rounds", 5, "interleaved with/without pairs per workload")
	cmd.Flags().DurationVar(&duration, "duration", 2*time.Second, "length of one run")
	cmd.Flags().StringVar(&workloads, "workloads", "", "comma-separated subset of exec,open,connect (default all)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every run's rate on stderr")
	cmd.Flags().StringVar(&syscalls, "syscalls", "", "report only these syscalls (comma-separated; an empty list measures the bare hooks)")
	cmd.Flags().IntVar(&ringSys, "ring-syscall", 0, "syscall ring buffer bytes, a power of two (default 2 MiB)")
	cmd.Flags().DurationVar(&dedup, "dedup-window", bpf.DefaultDedupWindow, "in-kernel deduplication window (0 = deliver every event)")
	cmd.Flags().BoolVar(&progStats, "prog-stats", false, "also report each BPF program's mean run time (enables kernel BPF statistics, which add a little cost)")
	return cmd
}

func containsName(list, name string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}
