package eval

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/driftwatch/driftwatch/eval/labels"

	"github.com/driftwatch/driftwatch/event"
)

// modeRecorder records the modes the runner hands the model.
type modeRecorder struct {
	fakeModel
	modes map[event.Mode]int
}

func (m *modeRecorder) Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert)) {
	m.modes[mode]++
}

// With ModelMode auto the model sees training and test traces in auto mode
// (the agent's transition), never learn or detect.
func TestModelModeAuto(t *testing.T) {
	dir := tinySuite(t)
	var (
		mu   sync.Mutex // scenarios run in parallel jobs
		recs []*modeRecorder
	)
	opts := fakeOptions()
	opts.Detector = DetectModel
	opts.ModelMode = event.ModeAuto
	opts.NewDetector = func() (Detector, error) {
		r := &modeRecorder{fakeModel: fakeModel{seen: map[string]bool{}}, modes: map[event.Mode]int{}}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
		return r, nil
	}
	if _, err := Run(context.Background(), dir, opts); err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("no detector built")
	}
	for _, r := range recs {
		if r.modes[event.ModeAuto] == 0 || len(r.modes) != 1 {
			t.Errorf("modes seen %v, want only auto", r.modes)
		}
	}
	opts.ModelMode = event.ModeDetect
	if _, err := Run(context.Background(), dir, opts); err == nil {
		t.Error("model mode detect accepted")
	}
}

// The set-membership baseline runs like the model and is part of "all"
// when its constructor is given.
func TestSetMemberDetector(t *testing.T) {
	dir := tinySuite(t)
	opts := fakeOptions()
	opts.NewSetMember = func() (Detector, error) { return &fakeModel{seen: map[string]bool{}}, nil }
	rep, err := Run(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rep.Order); n == 0 || rep.Order[n-1] != DetectSetMember || rep.Detectors[DetectSetMember] == nil {
		t.Fatalf("order %v, detectors %v", rep.Order, rep.Detectors)
	}
	if a, b := rep.Detectors[DetectSetMember], rep.Detectors[DetectModel]; a.TP != b.TP || a.FP != b.FP {
		t.Errorf("same fake detector, different figures: %+v vs %+v", a, b)
	}
	opts.Detector = DetectSetMember
	opts.NewSetMember = nil
	if _, err := Run(context.Background(), dir, opts); err == nil {
		t.Error("setmember without a constructor accepted")
	}
}

// A suite whose manifest names splits gets figures per split.
func TestSplits(t *testing.T) {
	dir := tinySuite(t)
	m, err := labels.LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Scenarios[0].Split, m.Scenarios[1].Split = "held-out", "dev"
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, labels.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), dir, fakeOptions())
	if err != nil {
		t.Fatal(err)
	}
	ho, dev := rep.Splits["held-out"][DetectModel], rep.Splits["dev"][DetectModel]
	if ho == nil || dev == nil {
		t.Fatalf("splits %v", rep.Splits)
	}
	// The attack is in the held-out part; the benign false alarm in dev.
	if ho.Attacks != 1 || dev.Attacks != 0 || dev.FP == 0 || rep.Scenarios[0].Split != "held-out" {
		t.Errorf("held-out %+v, dev %+v", ho, dev)
	}
}
