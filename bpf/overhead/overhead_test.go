package overhead

import (
	"errors"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/bpf"
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
