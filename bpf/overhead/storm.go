package overhead

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
)

// StormOptions configures Storm.
type StormOptions struct {
	// Rates are the target open rates (events/s, all workers together),
	// one step each; 0 means flat out.
	Rates []int
	// Duration of one step; 0 means 3 s.
	Duration time.Duration
	// OnlySelf reports this process's syscalls only (bpf.Config.OnlyTgid),
	// so that other programs on the machine cannot fill the syscall ring
	// (tests); the bench leaves it off: the agent shares its ring with
	// the whole machine.
	OnlySelf bool
	// Workers is the number of threads opening distinct files; 0 means 4.
	Workers int
	// Files each worker cycles through; 0 means 2048.
	Files int
	// Execs runs an exec loop (fork+exec /bin/true) beside the opens.
	Execs bool
	// Sensor configures the sensor; IncludeSelf is forced (the workers run
	// in this process) and deduplication is turned off unless DedupWindow
	// is set (the files repeat).
	Sensor bpf.Config
	// Consume, when set, is called by the reader for every event (e.g. a
	// pipeline's Handle) so its cost is part of the measurement.
	Consume func(*event.Event)
	// Progress, when set, receives one line per step.
	Progress io.Writer
}

// StormPoint is one step of the loss-against-rate curve.
type StormPoint struct {
	Target    int     // target opens/s (0: flat out)
	Offered   float64 // opens/s the workers made
	Made      uint64  // opens the workers made
	Delivered uint64  // of those, events the reader received
	Lost      uint64  // kernel's failed reservations (file) during the step, all processes
	Execs     uint64  // execs made in the step
	ExecsSeen uint64  // exec events received for them
	LostLife  uint64  // lifecycle losses (exec, fork, exit) during the step
}

// LossFraction is the share of the workers' opens not delivered.
func (p StormPoint) LossFraction() float64 {
	if p.Made == 0 {
		return 0
	}
	return float64(p.Made-min(p.Delivered, p.Made)) / float64(p.Made)
}

// Storm measures the loss of syscall events against the rate of a storm of
// opens of distinct files from several threads of this process (plus an
// optional exec loop), one step per target rate, with one sensor reading
// and counting as the agent's reader does. The workers' own opens are
// recognised by their directory, so other programs' events do not count.
func Storm(opt StormOptions) ([]StormPoint, error) {
	if opt.Duration <= 0 {
		opt.Duration = 3 * time.Second
	}
	if opt.Workers <= 0 {
		opt.Workers = 4
	}
	if opt.Files <= 0 {
		opt.Files = 2048
	}
	if len(opt.Rates) == 0 {
		return nil, fmt.Errorf("storm: no rates")
	}
	dir, err := os.MkdirTemp("", "driftwatch-storm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	paths := make([][]*byte, opt.Workers)
	for w := range paths {
		for i := 0; i < opt.Files; i++ {
			p := filepath.Join(dir, "w"+strconv.Itoa(w)+"-"+strconv.Itoa(i))
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return nil, err
			}
			b, _ := syscall.BytePtrFromString(p)
			paths[w] = append(paths[w], b)
		}
	}

	// The workers hold their Ps inside raw syscalls: give the reader and
	// the exec loop Ps of their own, so that, as with separate processes,
	// only the kernel's scheduler decides who runs.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(opt.Workers + 2))

	cfg := opt.Sensor
	cfg.IncludeSelf = true
	if opt.OnlySelf {
		cfg.OnlyTgid = uint32(os.Getpid())
	}
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = -1
	}
	s, err := bpf.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()

	prefix := []byte(dir + "/")
	// Only the exec loop's own children count: other processes on the
	// machine may run /bin/true too.
	self := uint32(os.Getpid())
	var delivered, execsSeen atomic.Uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ev event.Event
		for {
			if err := s.Next(&ev); err != nil {
				return
			}
			if ev.Kind == event.KindSyscall && ev.Syscall == event.SysOpen && hasPrefix(ev.Path, prefix) {
				delivered.Add(1)
			} else if ev.Kind == event.KindExec && ev.Ppid == self && string(ev.Exe) == trueExe {
				execsSeen.Add(1)
			}
			if opt.Consume != nil {
				opt.Consume(&ev)
			}
		}
	}()
	defer wg.Wait()
	defer s.Close()

	var out []StormPoint
	for _, rate := range opt.Rates {
		lost0 := s.Lost()
		d0, e0 := delivered.Load(), execsSeen.Load()
		made, execs, el := stormStep(paths, rate, opt.Duration, opt.Execs)
		// let the reader drain what is in the rings: until nothing more
		// of the storm's arrives for 200 ms (at most 20 s)
		for i, last := 0, ^uint64(0); i < 100; i++ {
			now := delivered.Load() + execsSeen.Load()
			if now == last {
				break
			}
			last = now
			time.Sleep(200 * time.Millisecond)
		}
		lost1 := s.Lost()
		p := StormPoint{
			Target: rate, Offered: float64(made) / el, Made: made, Delivered: delivered.Load() - d0,
			Lost: lost1["file"] - lost0["file"], Execs: execs, ExecsSeen: execsSeen.Load() - e0,
			LostLife: lost1["exec"] - lost0["exec"] + lost1["fork"] - lost0["fork"] + lost1["exit"] - lost0["exit"],
		}
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "storm: target %d/s: offered %.0f/s, delivered %d of %d (%.2f%% lost)\n",
				rate, p.Offered, p.Delivered, p.Made, 100*p.LossFraction())
		}
		out = append(out, p)
	}
	return out, nil
}

var trueExe = func() string {
	if p, err := filepath.EvalSymlinks("/bin/true"); err == nil {
		return p
	}
	return "/bin/true"
}()

func hasPrefix(b, p []byte) bool { return len(b) >= len(p) && string(b[:len(p)]) == string(p) }

// stormStep runs the workers at rate (0: flat out) for d and returns the
// opens made, the execs made and the elapsed seconds.
func stormStep(paths [][]*byte, rate int, d time.Duration, execs bool) (uint64, uint64, float64) {
	var made, nexec atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	per := float64(rate) / float64(len(paths)) // opens/s per worker
	for w := range paths {
		wg.Add(1)
		go func(files []*byte) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var n uint64
			i := 0
			for {
				now := time.Now()
				if !now.Before(end) {
					break
				}
				batch := 64
				if rate > 0 {
					// open what the rate allows by now, at most a batch
					due := int(per*now.Sub(start).Seconds()) - int(n)
					if due <= 0 {
						time.Sleep(200 * time.Microsecond)
						continue
					}
					batch = min(due, 64)
				}
				for j := 0; j < batch; j++ {
					fd, _, e := syscall.RawSyscall(syscall.SYS_OPEN, uintptr(unsafe.Pointer(files[i])), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
					if e == 0 {
						syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
					}
					i++
					if i == len(files) {
						i = 0
					}
				}
				n += uint64(batch)
			}
			made.Add(n)
		}(paths[w])
	}
	if execs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if exec.Command("/bin/true").Run() == nil {
					nexec.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return made.Load(), nexec.Load(), time.Since(start).Seconds()
}

// PrintStorm writes the curve as a table.
func PrintStorm(w io.Writer, pts []StormPoint) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target/s\toffered/s\tmade\tdelivered\tlost %\tring losses\texecs seen\tlifecycle lost\t")
	for _, p := range pts {
		target := "max"
		if p.Target > 0 {
			target = strconv.Itoa(p.Target)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%.2f\t%d\t%d/%d\t%d\t\n", target, p.Offered, p.Made, p.Delivered,
			100*p.LossFraction(), p.Lost, p.ExecsSeen, p.Execs, p.LostLife)
	}
	return tw.Flush()
}
