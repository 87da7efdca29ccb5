package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/proctable"
	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

func newRecordCmd() *cobra.Command {
	var (
		out      string
		duration time.Duration
		syscalls string
		ringSys  int
		ringLife int
		procRoot string
		dedup    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "record --out FILE [--duration D]",
		Short: "Capture live kernel events into a trace file (root)",
		Long: `Loads the eBPF sensor, takes a snapshot of the running processes and cgroups,
prints "ready" on stderr once every program is attached, and writes every
event to FILE until the duration ends or SIGINT/SIGTERM arrives; then it closes
the file cleanly and prints the event count, the sensor's loss counters and
how many repeated identical events the kernel deduplicated (--dedup-window:
an identical open, socket, connect or accept by the same process within the
window is counted instead of recorded; 0 records every event).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withCode(2, errors.New("record: --out FILE is required"))
			}
			cfg := bpf.Config{RingSizeSyscall: ringSys, RingSizeLifecycle: ringLife, DedupWindow: dedupWindow(dedup)}
			if syscalls != "" {
				nrs, err := parseSyscalls(syscalls)
				if err != nil {
					return withCode(2, err)
				}
				cfg.Syscalls = nrs
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			return record(ctx, cfg, out, procRoot, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "trace file to write")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (default: until SIGINT/SIGTERM)")
	cmd.Flags().StringVar(&syscalls, "syscalls", "", "comma-separated syscall names to capture (default: all the sensor supports)")
	cmd.Flags().IntVar(&ringSys, "ring-syscall", 0, "syscall ring buffer bytes, a power of two (default 8 MiB)")
	cmd.Flags().IntVar(&ringLife, "ring-lifecycle", 0, "lifecycle ring buffer bytes, a power of two (default 4 MiB)")
	cmd.Flags().StringVar(&procRoot, "proc", "/proc", "procfs to snapshot")
	cmd.Flags().DurationVar(&dedup, "dedup-window", bpf.DefaultDedupWindow,
		"in-kernel deduplication: an open, socket, connect or accept identical to one the same process made within this window is counted, not recorded (0 = record every event)")
	return cmd
}

// dedupWindow maps the --dedup-window flag to bpf.Config.DedupWindow
// (where 0 means the default and a negative value turns it off).
func dedupWindow(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// parseSyscalls turns "openat,connect" into syscall numbers the sensor supports.
func parseSyscalls(list string) ([]uint16, error) {
	supported := map[uint16]bool{}
	for _, nr := range bpf.SupportedSyscalls() {
		supported[nr] = true
	}
	nrs := []uint16{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		nr, ok := event.SyscallNumber(name)
		if !ok {
			return nil, fmt.Errorf("record: unknown syscall %q", name)
		}
		if !supported[nr] {
			return nil, fmt.Errorf("record: syscall %q is not captured by the sensor (supported: %s)", name, supportedNames())
		}
		nrs = append(nrs, nr)
	}
	return nrs, nil
}

func supportedNames() string {
	var names []string
	for _, nr := range bpf.SupportedSyscalls() {
		if name := event.SyscallName(nr); name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func record(ctx context.Context, cfg bpf.Config, out, procRoot string, stderr io.Writer) error {
	s, err := bpf.Open(cfg)
	if err != nil {
		var env *bpf.EnvError
		if errors.As(err, &env) || errors.Is(err, bpf.ErrBadConfig) {
			return withCode(2, err)
		}
		return withCode(exitUsage, err)
	}
	defer s.Close()
	for _, w := range s.Warnings() {
		fmt.Fprintf(stderr, "driftwatch: warning: %s\n", w)
	}
	var off []string
	for name, on := range s.Features() {
		if !on {
			off = append(off, name)
		}
	}
	if len(off) > 0 {
		sort.Strings(off)
		fmt.Fprintf(stderr, "driftwatch: warning: sensor features off on this kernel: %s\n", strings.Join(off, ", "))
	}

	cgMount, err := container.CgroupV2Mount()
	if err != nil {
		fmt.Fprintf(stderr, "driftwatch: warning: %v: cgroup paths will not be recorded\n", err)
		cgMount = ""
	}
	snap, err := proctable.TakeSnapshot(procRoot, cgMount)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("record: snapshot: %w", err))
	}
	w, err := trace.Create(out, snap)
	if err != nil {
		return withCode(2, fmt.Errorf("record: %w", err))
	}
	fmt.Fprintln(stderr, "ready")

	// Close the sensor when the context ends: Next then returns os.ErrClosed.
	go func() {
		<-ctx.Done()
		s.Close()
	}()

	cg := newCgroupTracker(cgMount, snap.Cgroups)
	start := time.Now()
	lastFlush := start
	var ev event.Event
	var werr error
	for {
		if err := s.Next(&ev); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				werr = fmt.Errorf("record: sensor: %w", err)
			}
			break
		}
		if path, ok := cg.resolve(ev.CgroupID); ok {
			if err := w.WriteCgroup(ev.CgroupID, path); err != nil {
				werr = err
				break
			}
		}
		if err := w.Write(&ev); err != nil {
			werr = err
			break
		}
		// Push complete compressed blocks out about once a second, so a
		// capture killed later still leaves everything before them readable.
		if w.Events()%1024 == 0 && time.Since(lastFlush) >= time.Second {
			if err := w.Flush(); err != nil {
				werr = err
				break
			}
			lastFlush = time.Now()
		}
	}
	s.Close()
	lost := s.Lost()
	cerr := w.Close()

	var parts []string
	var total uint64
	for _, k := range bpf.LostKinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, lost[k]))
		total += lost[k]
	}
	dedup := s.Deduplicated()
	var dparts []string
	var dtotal uint64
	for _, k := range []string{"file", "net"} {
		dparts = append(dparts, fmt.Sprintf("%s %d", k, dedup[k])) // not "k=N": that is the loss counters' form
		dtotal += dedup[k]
	}
	dsum := "deduplication off"
	if win := s.DedupWindow(); win > 0 {
		dsum = fmt.Sprintf("deduplicated %d within %s (%s)", dtotal, win, strings.Join(dparts, ", "))
	}
	fmt.Fprintf(stderr, "recorded %d events to %s in %s; lost %d (%s); %s\n",
		w.Events(), out, time.Since(start).Round(time.Millisecond), total, strings.Join(parts, " "), dsum)
	// Sensor, write and close failures are the environment's (exitUsage).
	if werr != nil {
		return withCode(exitUsage, werr)
	}
	if cerr != nil {
		return withCode(exitUsage, fmt.Errorf("record: %w", cerr))
	}
	return nil
}

// cgroupTracker finds the paths of cgroups created after the snapshot, so
// a replay can attribute their events: an unknown id triggers one rescan
// of the cgroup v2 tree (at most once per id).
type cgroupTracker struct {
	mount string
	known map[uint64]bool
	paths map[uint64]string
}

func newCgroupTracker(mount string, snap map[uint64]string) *cgroupTracker {
	t := &cgroupTracker{mount: mount, known: map[uint64]bool{}}
	for id := range snap {
		t.known[id] = true
	}
	return t
}

// resolve returns the path of a cgroup id seen for the first time.
func (t *cgroupTracker) resolve(id uint64) (string, bool) {
	if t.known[id] || t.mount == "" {
		return "", false
	}
	t.known[id] = true
	if p, ok := t.paths[id]; ok {
		return p, true
	}
	t.paths, _ = container.WalkCgroups(t.mount) // a partial map is still useful
	p, ok := t.paths[id]
	return p, ok
}
