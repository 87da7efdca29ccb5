package overhead

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/driftwatch/driftwatch/bpf"
)

// AgentOptions configures MeasureAgent.
type AgentOptions struct {
	Rounds   int           // interleaved triples per workload (default 7)
	Duration time.Duration // length of one run (default 2s)
	// Command starts the agent as a separate process, e.g. the driftwatch
	// binary with "agent --db ... --metrics-addr ''". It is started before
	// and stopped (SIGTERM) after every run with the agent.
	Command []string
	// Ready is a fragment of the line the agent writes on stderr once its
	// sensor is attached and its pipeline runs ("agent running").
	Ready string
	// Progress, when set, receives a line per run.
	Progress io.Writer
}

// AgentResult is one workload's outcome under MeasureAgent.
type AgentResult struct {
	Name                         string
	Without, Agent, Floor, Empty []float64 // ops/s per round
	// AgentRatios and FloorRatios are ops/s with the agent (with the bare
	// hooks: attached, nothing reported) ÷ without, per round; EmptyRatios
	// the same with only an empty program on sys_exit (the kernel's own
	// cost of a syscall hook). The CPU variants compare ops per CPU-second
	// of the workload.
	AgentRatios, FloorRatios, EmptyRatios          []float64
	AgentCPURatios, FloorCPURatios, EmptyCPURatios []float64
}

// MeasureAgent runs each workload in Rounds interleaved quadruples —
// without anything attached, with the agent running as its own process,
// with only the sensor's bare hooks attached (the floor: every syscall
// enters the program, which returns at once) and with only an empty
// program on sys_exit (what the kernel's syscall tracepoint costs before
// any sensor code runs) — rotating the order per round.
func MeasureAgent(workloads []Workload, opt AgentOptions) ([]AgentResult, error) {
	if opt.Rounds <= 0 {
		opt.Rounds = 7
	}
	if opt.Duration <= 0 {
		opt.Duration = 2 * time.Second
	}
	if len(opt.Command) == 0 {
		return nil, errors.New("overhead: no agent command")
	}
	floor, err := bpf.Open(bpf.Config{Syscalls: []uint16{}})
	if err != nil {
		return nil, err
	}
	defer floor.Close()
	if err := floor.Detach(); err != nil {
		return nil, err
	}
	empty, err := newEmptyHook()
	if err != nil {
		return nil, err
	}
	defer empty.Close()
	var out []AgentResult
	for _, w := range workloads {
		r := AgentResult{Name: w.Name}
		for round := 0; round < opt.Rounds; round++ {
			var wall, cpu [4]float64 // without, agent, floor, empty
			for i := 0; i < 4; i++ {
				mode := (round + i) % 4
				var stop func() error
				switch mode {
				case 1:
					stop, err = startAgent(opt.Command, opt.Ready)
				case 2:
					err = floor.Attach()
					stop = floor.Detach
				case 3:
					err = empty.Attach()
					stop = empty.Detach
				}
				if err != nil {
					return nil, err
				}
				rate, cpuRate, runErr := run(w, opt.Duration)
				if stop != nil {
					if err := stop(); err != nil {
						return nil, err
					}
				}
				if runErr != nil {
					return nil, runErr
				}
				wall[mode], cpu[mode] = rate, cpuRate
				if opt.Progress != nil {
					fmt.Fprintf(opt.Progress, "%s round %d %s: %.0f ops/s, %.0f ops/cpu-s\n", w.Name, round+1,
						[...]string{"without", "agent", "bare hooks", "empty hook"}[mode], rate, cpuRate)
				}
			}
			r.Without = append(r.Without, wall[0])
			r.Agent = append(r.Agent, wall[1])
			r.Floor = append(r.Floor, wall[2])
			r.Empty = append(r.Empty, wall[3])
			r.EmptyRatios = append(r.EmptyRatios, wall[3]/wall[0])
			r.EmptyCPURatios = append(r.EmptyCPURatios, cpu[3]/cpu[0])
			r.AgentRatios = append(r.AgentRatios, wall[1]/wall[0])
			r.FloorRatios = append(r.FloorRatios, wall[2]/wall[0])
			r.AgentCPURatios = append(r.AgentCPURatios, cpu[1]/cpu[0])
			r.FloorCPURatios = append(r.FloorCPURatios, cpu[2]/cpu[0])
		}
		out = append(out, r)
	}
	return out, nil
}

// startAgent starts the agent and returns once it reports ready; the
// returned stop sends SIGTERM and waits for it to exit.
func startAgent(argv []string, ready string) (func() error, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	up := make(chan error, 1)
	var tail strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), ready) {
				up <- nil
				signalled = true
			}
			if !signalled && tail.Len() < 4096 {
				tail.WriteString(sc.Text() + "\n")
			}
		}
		if !signalled {
			up <- fmt.Errorf("agent exited before %q:\n%s", ready, tail.String())
		}
	}()
	select {
	case err := <-up:
		if err != nil {
			cmd.Wait()
			return nil, err
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("agent not ready after 60 s")
	}
	return func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("agent: %w", err)
		}
		return err
	}, nil
}

// PrintAgent writes MeasureAgent's results as a table: the agent's ratio
// beside the bare hooks' floor.
func PrintAgent(w io.Writer, results []AgentResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tops/s without\tops/s agent\tops/s bare hooks\tagent ratio\tbare-hooks ratio\tagent cpu ratio\tbare-hooks cpu ratio\tempty-hook cpu ratio\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", r.Name, Median(r.Without), Median(r.Agent), Median(r.Floor),
			Median(r.AgentRatios), Median(r.FloorRatios), Median(r.AgentCPURatios), Median(r.FloorCPURatios), Median(r.EmptyCPURatios))
	}
	return tw.Flush()
}
