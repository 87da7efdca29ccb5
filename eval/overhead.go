package eval

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/bpf/overhead"
)

// Overhead is the sensor-overhead table added to a report with --overhead,
// measured by bpf/overhead (exec, open and connect storms with and without
// the sensor, interleaved pairs, median ratio).
type Overhead struct {
	Rounds   int               `json:"rounds"`
	Duration string            `json:"run_duration"`
	Results  []overhead.Result `json:"results"`
}

// MeasureOverhead runs the storms (needs root and BPF).
func MeasureOverhead(rounds int, d time.Duration) (*Overhead, error) {
	dir, err := os.MkdirTemp("", "driftwatch-eval-overhead-")
	if err != nil {
		return nil, fmt.Errorf("eval: overhead: %w", err)
	}
	defer os.RemoveAll(dir)
	ws, err := overhead.Workloads(dir)
	if err != nil {
		return nil, fmt.Errorf("eval: overhead: %w", err)
	}
	res, err := overhead.Measure(ws, overhead.Options{Rounds: rounds, Duration: d})
	if err != nil {
		return nil, fmt.Errorf("eval: overhead: %w", err)
	}
	return &Overhead{Rounds: rounds, Duration: d.String(), Results: res}, nil
}

// Markdown renders the table for report.md.
func (o *Overhead) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d interleaved pairs of %s runs per workload; ratio = ops/s with the sensor ÷ ops/s without (1.00 = no cost).\n\n", o.Rounds, o.Duration)
	b.WriteString("| workload | ops/s without | ops/s with | median ratio | sensor events/s |\n|---|---:|---:|---:|---:|\n")
	for _, r := range o.Results {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.3f | %.0f |\n", r.Name, overhead.Median(r.Without), overhead.Median(r.With), r.MedianRatio, r.EventsPerSec)
	}
	return b.String()
}
