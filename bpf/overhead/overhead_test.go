package overhead

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

func TestWorkloadsRun(t *testing.T) {
	ws, err := Workloads(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		n, err := w.Run(50 * time.Millisecond)
		if err != nil || n == 0 {
			t.Errorf("%s: %d ops, %v", w.Name, n, err)
		}
	}
}

// TestMeasure runs one short interleaved pair per workload with the sensor.
func TestMeasure(t *testing.T) {
	testutil.NeedRoot(t)
	ws, err := Workloads(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Measure(ws, Options{Rounds: 1, Duration: 200 * time.Millisecond})
	var env *bpf.EnvError
	if errors.As(err, &env) {
		testutil.NeedBPF(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.MedianRatio <= 0 || r.EventsPerSec <= 0 {
			t.Errorf("%s: ratio %.3f, %.0f events/s", r.Name, r.MedianRatio, r.EventsPerSec)
		}
		t.Logf("%s: ratio %.3f (%.0f/%.0f ops/s), %.0f events/s, lost %v", r.Name, r.MedianRatio, Median(r.With), Median(r.Without), r.EventsPerSec, r.Lost)
	}
}

func TestMedian(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := Median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
}

// BenchmarkOverhead runs each storm's operation with the sensor detached
// and attached (and consuming): compare the sensor=off and sensor=on ns/op.
// Needs root; make bench-overhead prints the interleaved-pairs ratios.
func BenchmarkOverhead(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	ws, err := Workloads(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s, err := bpf.Open(bpf.Config{IncludeSelf: true})
	if err != nil {
		b.Skipf("sensor unavailable: %v", err)
	}
	defer s.Close()
	go func() {
		var ev event.Event
		for s.Next(&ev) == nil {
		}
	}()
	for _, w := range ws {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/sensor=%v", w.Name, on), func(b *testing.B) {
				if on {
					s.Attach()
				} else {
					s.Detach()
				}
				op, stop, err := w.Start()
				if err != nil {
					b.Fatal(err)
				}
				defer stop()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := op(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestStorm runs a short low-rate step and a flat-out step: at 5000 opens/s
// every open of the workers arrives and every exec is seen; flat out, what
// is not delivered is accounted for by the ring-loss counter.
func TestStorm(t *testing.T) {
	testutil.NeedRoot(t)
	// OnlySelf: other programs' syscalls (a build, another test) would
	// share the ring and could crowd out the workers' opens.
	pts, err := Storm(StormOptions{Rates: []int{5000, 0}, Duration: 500 * time.Millisecond, Files: 256, Execs: true, OnlySelf: true})
	var env *bpf.EnvError
	if errors.As(err, &env) {
		testutil.NeedBPF(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	PrintStorm(&b, pts)
	t.Logf("\n%s", b.String())
	low, max := pts[0], pts[1]
	if low.Made < 1000 || low.Delivered != low.Made {
		t.Errorf("at 5000/s: delivered %d of %d opens", low.Delivered, low.Made)
	}
	if low.ExecsSeen != low.Execs || low.Execs == 0 || low.LostLife != 0 {
		t.Errorf("at 5000/s: %d of %d execs seen, %d lifecycle losses", low.ExecsSeen, low.Execs, low.LostLife)
	}
	if max.Delivered > max.Made || max.Made-max.Delivered > max.Lost {
		t.Errorf("flat out: %d of %d delivered but only %d ring losses counted", max.Delivered, max.Made, max.Lost)
	}
}
