// Package overhead measures what the live sensor costs the workloads it
// watches: an exec storm (fork+exec /bin/true), an open storm (open, read
// one byte, close) and a loopback connect storm (socket, connect, accept,
// close), each run with and without the sensor attached and consuming
// events, in interleaved pairs. The figure per workload is the median over
// rounds of ops/s with ÷ ops/s without.
package overhead

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
)

// Workload is one storm. Start prepares it and returns its operation (one
// exec, one open+read+close, one connect+accept+close) and a cleanup.
type Workload struct {
	Name  string
	Start func() (op func() error, stop func(), err error)
}

// Run repeats w's operation until d has passed and returns how many ran.
func (w Workload) Run(d time.Duration) (int, error) {
	op, stop, err := w.Start()
	if err != nil {
		return 0, fmt.Errorf("%s storm: %w", w.Name, err)
	}
	defer stop()
	n := 0
	for end := time.Now().Add(d); ; {
		for i := 0; i < 16; i++ {
			if err := op(); err != nil {
				return n, fmt.Errorf("%s storm: %w", w.Name, err)
			}
			n++
		}
		if !time.Now().Before(end) {
			return n, nil
		}
	}
}

// Workloads returns the exec, open and connect storms. dir holds the file
// the open storm reads.
func Workloads(dir string) ([]Workload, error) {
	f := filepath.Join(dir, "overhead-open-storm")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		return nil, err
	}
	return []Workload{
		{Name: "exec", Start: ExecStorm},
		{Name: "open", Start: func() (func() error, func(), error) { return OpenStorm(f) }},
		{Name: "connect", Start: ConnectStorm},
	}, nil
}

// ExecStorm's operation forks and execs /bin/true and waits for it.
func ExecStorm() (func() error, func(), error) {
	attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
	argv := []string{"/bin/true"}
	op := func() error {
		pid, err := syscall.ForkExec("/bin/true", argv, attr)
		if err != nil {
			return err
		}
		var ws syscall.WaitStatus
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		return err
	}
	return op, func() {}, nil
}

// OpenStorm's operation opens path with open(2), reads one byte and closes it.
func OpenStorm(path string) (func() error, func(), error) {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return nil, nil, err
	}
	var b [1]byte
	op := func() error {
		r, _, e := syscall.RawSyscall(syscall.SYS_OPEN, uintptr(unsafe.Pointer(p)), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if e != 0 {
			return e
		}
		fd := int(r)
		_, err := syscall.Read(fd, b[:])
		syscall.Close(fd)
		return err
	}
	return op, func() {}, nil
}

// ConnectStorm's operation connects to a loopback listener, accepts and
// closes both ends.
func ConnectStorm() (func() error, func(), error) {
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	stop := func() { syscall.Close(lfd) }
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		stop()
		return nil, nil, err
	}
	if err := syscall.Listen(lfd, 128); err != nil {
		stop()
		return nil, nil, err
	}
	sa, err := syscall.Getsockname(lfd)
	if err != nil {
		stop()
		return nil, nil, err
	}
	linger := &syscall.Linger{Onoff: 1}
	op := func() error {
		cfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(cfd)
		if err := syscall.Connect(cfd, sa); err != nil {
			return err
		}
		afd, _, err := syscall.Accept4(lfd, syscall.SOCK_CLOEXEC)
		if err != nil {
			return err
		}
		// RST instead of TIME_WAIT keeps the port space from filling.
		syscall.SetsockoptLinger(cfd, syscall.SOL_SOCKET, syscall.SO_LINGER, linger)
		syscall.Close(afd)
		return nil
	}
	return op, stop, nil
}

// Options configure Measure.
type Options struct {
	Rounds   int           // interleaved pairs per workload (default 5)
	Duration time.Duration // length of one run (default 2s)
	Sensor   bpf.Config
	// Progress, when set, receives a line per run.
	Progress io.Writer
	// ProgStats enables the kernel's BPF run-time statistics and reports
	// the mean cost of each program run during the runs with the sensor.
	ProgStats bool
}

// Result is one workload's outcome.
type Result struct {
	Name          string
	Without, With []float64 // ops/s (wall clock) per round
	Ratios        []float64 // with/without per round
	MedianRatio   float64
	// CPURatios compare ops per CPU-second of the workload (its thread
	// plus the children it reaped), which other load on the machine
	// disturbs far less than wall-clock rates.
	CPURatios      []float64
	MedianCPURatio float64
	EventsPerSec   float64 // events the consumer decoded per second, median over rounds
	Lost           map[string]uint64
	// Deduplicated counts the events the kernel counted instead of
	// delivering (bpf.Config.DedupWindow) during the runs with the sensor.
	Deduplicated map[string]uint64
	// ProgNs is the mean run time in ns of each sensor program and
	// ProgRunsPerOp its runs per workload operation (Options.ProgStats).
	ProgNs, ProgRunsPerOp map[string]float64
}

// run runs w on a locked OS thread and returns ops per wall second and per
// CPU second (thread + reaped children).
func run(w Workload, d time.Duration) (wall, cpu float64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var t0, c0, t1, c1 syscall.Rusage
	syscall.Getrusage(rusageThread, &t0)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c0)
	start := time.Now()
	n, err := w.Run(d)
	el := time.Since(start).Seconds()
	syscall.Getrusage(rusageThread, &t1)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c1)
	used := cpuSeconds(&t1) - cpuSeconds(&t0) + cpuSeconds(&c1) - cpuSeconds(&c0)
	if used <= 0 {
		used = el
	}
	return float64(n) / el, float64(n) / used, err
}

const rusageThread = 1 // RUSAGE_THREAD

func cpuSeconds(r *syscall.Rusage) float64 {
	return float64(r.Utime.Sec+r.Stime.Sec) + float64(r.Utime.Usec+r.Stime.Usec)/1e6
}

// Measure runs each workload in Rounds interleaved pairs (without, then
// with the sensor attached and consuming; the order alternates per round)
// and returns the ratios. The sensor is loaded once; "without" detaches
// its programs.
func Measure(workloads []Workload, opt Options) ([]Result, error) {
	if opt.Rounds <= 0 {
		opt.Rounds = 5
	}
	if opt.Duration <= 0 {
		opt.Duration = 2 * time.Second
	}
	// The storms run in this process: report its syscalls too.
	opt.Sensor.IncludeSelf = true
	s, err := bpf.Open(opt.Sensor)
	if err != nil {
		return nil, err
	}
	defer s.Close()

	var events atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ev event.Event
		for {
			if err := s.Next(&ev); err != nil {
				return
			}
			events.Add(1)
		}
	}()
	defer wg.Wait()
	defer s.Close()

	if opt.ProgStats {
		closer, err := bpf.EnableStats()
		if err != nil {
			return nil, fmt.Errorf("enable BPF statistics: %w", err)
		}
		defer closer.Close()
	}
	if err := s.Detach(); err != nil {
		return nil, err
	}
	var out []Result
	for _, w := range workloads {
		r := Result{Name: w.Name}
		lost0, dedup0 := s.Lost(), s.Deduplicated()
		var evRates []float64
		var opsOn float64
		progRuns := map[string]uint64{}
		progTime := map[string]time.Duration{}
		for round := 0; round < opt.Rounds; round++ {
			var with, without, cpuWith, cpuWithout float64
			for _, on := range order(round) {
				if on {
					if err := s.Attach(); err != nil {
						return nil, err
					}
				}
				e0 := events.Load()
				st0 := s.ProgramStats()
				rate, cpuRate, err := run(w, opt.Duration)
				if on {
					for name, st := range s.ProgramStats() {
						progRuns[name] += st.Runs - st0[name].Runs
						progTime[name] += st.Runtime - st0[name].Runtime
					}
					opsOn += rate * opt.Duration.Seconds()
					time.Sleep(20 * time.Millisecond) // let the consumer drain
					if err := s.Detach(); err != nil {
						return nil, err
					}
					evRates = append(evRates, float64(events.Load()-e0)/opt.Duration.Seconds())
				}
				if err != nil {
					return nil, err
				}
				if on {
					with, cpuWith = rate, cpuRate
				} else {
					without, cpuWithout = rate, cpuRate
				}
				if opt.Progress != nil {
					fmt.Fprintf(opt.Progress, "%s round %d sensor=%v: %.0f ops/s, %.0f ops/cpu-s\n", w.Name, round+1, on, rate, cpuRate)
				}
			}
			r.With = append(r.With, with)
			r.Without = append(r.Without, without)
			r.Ratios = append(r.Ratios, with/without)
			r.CPURatios = append(r.CPURatios, cpuWith/cpuWithout)
		}
		r.MedianRatio = Median(r.Ratios)
		r.MedianCPURatio = Median(r.CPURatios)
		r.EventsPerSec = Median(evRates)
		if opt.ProgStats {
			r.ProgNs, r.ProgRunsPerOp = map[string]float64{}, map[string]float64{}
			for name, runs := range progRuns {
				if runs > 0 {
					r.ProgNs[name] = float64(progTime[name].Nanoseconds()) / float64(runs)
					r.ProgRunsPerOp[name] = float64(runs) / opsOn
				}
			}
		}
		r.Lost = map[string]uint64{}
		for k, v := range s.Lost() {
			if d := v - lost0[k]; d > 0 {
				r.Lost[k] = d
			}
		}
		r.Deduplicated = map[string]uint64{}
		for k, v := range s.Deduplicated() {
			if d := v - dedup0[k]; d > 0 {
				r.Deduplicated[k] = d
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// order alternates which run of a pair goes first.
func order(round int) []bool {
	if round%2 == 0 {
		return []bool{false, true}
	}
	return []bool{true, false}
}

// Median returns the median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Print writes the results as a table.
func Print(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tops/s without\tops/s with\tmedian ratio\tcpu ratio\tevents/s\tlost\tdeduplicated\t")
	for _, r := range results {
		lost, dedup := "0", "0"
		if len(r.Lost) > 0 {
			lost = fmt.Sprint(r.Lost)
		}
		if len(r.Deduplicated) > 0 {
			dedup = fmt.Sprint(r.Deduplicated)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.3f\t%.3f\t%.0f\t%s\t%s\t\n", r.Name, Median(r.Without), Median(r.With), r.MedianRatio, r.MedianCPURatio, r.EventsPerSec, lost, dedup)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if len(r.ProgNs) == 0 {
			continue
		}
		names := make([]string, 0, len(r.ProgNs))
		for name := range r.ProgNs {
			names = append(names, name)
		}
		slices.Sort(names)
		fmt.Fprintf(w, "%s: BPF programs, mean ns per run (runs per op):", r.Name)
		for _, name := range names {
			fmt.Fprintf(w, " %s %.0f (%.2f)", name, r.ProgNs[name], r.ProgRunsPerOp[name])
		}
		fmt.Fprintln(w)
	}
	return nil
}

// ErrNoWorkloads is returned when nothing was selected.
var ErrNoWorkloads = errors.New("overhead: no workloads selected")
