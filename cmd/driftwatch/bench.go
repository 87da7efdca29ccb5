package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/bpf/overhead"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/rules"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks that need the live system (see `bench overhead`)",
	}
	cmd.AddCommand(newBenchOverheadCmd(), newBenchStormCmd())
	return cmd
}

func newBenchStormCmd() *cobra.Command {
	var (
		rates    []int
		duration time.Duration
		workers  int
		execs    bool
		withPipe bool
		ringSys  int
	)
	cmd := &cobra.Command{
		Use:   "storm",
		Short: "Measure lost syscall events against the event rate (root)",
		Long: `Runs threads opening distinct files (open(2), deduplication off) at each
target rate in turn (0 = flat out), optionally with an exec loop, while one
reader drains the sensor as the agent does, and prints per step the opens
made and delivered, the share lost, the kernel's ring-loss counter and the
execs seen. --pipeline makes the reader also run every event through the
agent's pipeline (process table, container resolver, default rules; no
profiles), so its cost is part of the curve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt := overhead.StormOptions{Rates: rates, Duration: duration, Workers: workers, Execs: execs,
				Sensor: bpf.Config{RingSizeSyscall: ringSys}, Progress: cmd.ErrOrStderr()}
			if withPipe {
				rs, _, err := rules.LoadDefault(rules.Options{})
				if err != nil {
					return err
				}
				p := pipeline.New(pipeline.Config{Rules: rs, Resolver: container.NewResolver(""), DefaultMode: event.ModeOff})
				opt.Consume = p.Handle
			}
			pts, err := overhead.Storm(opt)
			if err != nil {
				var env *bpf.EnvError
				if errors.As(err, &env) || errors.Is(err, bpf.ErrBadConfig) {
					return withCode(2, err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "event storm: %d workers, %s per step, pipeline %v\n", workers, duration, withPipe)
			return overhead.PrintStorm(cmd.OutOrStdout(), pts)
		},
	}
	cmd.Flags().IntSliceVar(&rates, "rates", []int{25000, 50000, 100000, 150000, 200000, 0}, "target open rates per second, one step each (0 = flat out)")
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "length of one step")
	cmd.Flags().IntVar(&workers, "workers", 4, "threads opening files")
	cmd.Flags().BoolVar(&execs, "execs", true, "run an exec loop beside the opens")
	cmd.Flags().BoolVar(&withPipe, "pipeline", false, "run every event through the pipeline (process table, default rules)")
	cmd.Flags().IntVar(&ringSys, "ring-syscall", 0, "syscall ring buffer bytes, a power of two (default 8 MiB)")
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
		withAgent bool
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
			if withAgent {
				self, err := os.Executable()
				if err != nil {
					return err
				}
				argv := []string{self, "agent", "--db", filepath.Join(dir, "agent.db"), "--metrics-addr", "", "--cri-endpoint", "none"}
				aopt := overhead.AgentOptions{Rounds: rounds, Duration: duration, Command: argv, Ready: "agent running"}
				if verbose {
					aopt.Progress = cmd.ErrOrStderr()
				}
				res, err := overhead.MeasureAgent(sel, aopt)
				if err != nil {
					var env *bpf.EnvError
					if errors.As(err, &env) {
						return withCode(2, err)
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "agent overhead: %d interleaved runs of %s per workload (without, agent, bare hooks, empty hook)\n", rounds, duration)
				return overhead.PrintAgent(cmd.OutOrStdout(), res)
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
	cmd.Flags().IntVar(&ringSys, "ring-syscall", 0, "syscall ring buffer bytes, a power of two (default 8 MiB)")
	cmd.Flags().DurationVar(&dedup, "dedup-window", bpf.DefaultDedupWindow, "in-kernel deduplication window (0 = deliver every event)")
	cmd.Flags().BoolVar(&withAgent, "agent", false, "measure the agent (`driftwatch agent`, default configuration, its own process) instead of the sensor alone, beside the bare hooks")
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
