package metrics

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPRF(t *testing.T) {
	tests := []struct {
		tp, fp, det, att int
		p, r, f          float64
	}{
		{8, 2, 3, 4, 0.8, 0.75, 2 * 0.8 * 0.75 / 1.55},
		{0, 0, 0, 4, 0, 0, 0},
		{5, 0, 0, 0, 1, 0, 0},
		{1, 3, 1, 1, 0.25, 1, 0.4},
	}
	for _, tc := range tests {
		p, r, f := PRF(tc.tp, tc.fp, tc.det, tc.att)
		if !near(p, tc.p) || !near(r, tc.r) || !near(f, tc.f) {
			t.Errorf("PRF(%d,%d,%d,%d) = %v %v %v, want %v %v %v", tc.tp, tc.fp, tc.det, tc.att, p, r, f, tc.p, tc.r, tc.f)
		}
	}
}

func TestPerHour(t *testing.T) {
	if got := PerHour(3, 30*time.Minute); got != 6 {
		t.Fatalf("PerHour = %v", got)
	}
	if PerHour(3, 0) != 0 {
		t.Fatal("empty span")
	}
}

func TestROC(t *testing.T) {
	// The classic 4-point case: negatives 0.1 and 0.4, positives 0.35 and
	// 0.8. Of the 4 (pos, neg) pairs, 3 are ordered correctly → AUC 0.75.
	s := []Sample{{0.1, false}, {0.4, false}, {0.35, true}, {0.8, true}}
	c := ROC(s)
	if !c.OK || !near(c.AUC, 0.75) {
		t.Fatalf("AUC %v ok %v, want 0.75", c.AUC, c.OK)
	}
	// Perfect separation, inverted, and a tie between classes (counts half).
	cases := []struct {
		s    []Sample
		want float64
	}{
		{[]Sample{{0, false}, {0.2, false}, {0.5, true}, {0.9, true}}, 1},
		{[]Sample{{0.9, false}, {0.5, false}, {0.2, true}, {0.1, true}}, 0},
		{[]Sample{{0.5, false}, {0.5, true}}, 0.5},
	}
	for i, tc := range cases {
		if c := ROC(tc.s); !c.OK || !near(c.AUC, tc.want) {
			t.Errorf("case %d: AUC %v, want %v", i, c.AUC, tc.want)
		}
	}
	if ROC([]Sample{{1, true}}).OK || PR([]Sample{{1, false}}).OK {
		t.Fatal("one-class curve reported OK")
	}
}

func TestPR(t *testing.T) {
	// Scores descending: 0.9 pos, 0.8 neg, 0.7 pos, 0.1 neg.
	// Thresholds: R=1/2 P=1; R=1/2 P=1/2; R=1 P=2/3; R=1 P=1/2.
	// AP = 0.5*1 + 0 + 0.5*2/3 + 0 = 5/6.
	c := PR([]Sample{{0.1, false}, {0.9, true}, {0.7, true}, {0.8, false}})
	if !c.OK || !near(c.AUC, 5.0/6) {
		t.Fatalf("AP %v, want 5/6", c.AUC)
	}
	wantX := []float64{0.5, 0.5, 1, 1}
	wantY := []float64{1, 0.5, 2.0 / 3, 0.5}
	for i := range wantX {
		if !near(c.X[i], wantX[i]) || !near(c.Y[i], wantY[i]) {
			t.Fatalf("point %d = (%v,%v), want (%v,%v)", i, c.X[i], c.Y[i], wantX[i], wantY[i])
		}
	}
}

func TestLIDDS(t *testing.T) {
	var l LIDDS
	// Normal recording: alarms on events 2,3 (one run) and 5 (another run).
	l.StartRecording(false)
	for _, a := range []bool{false, true, true, false, true} {
		l.Add(a, false)
	}
	// Attack recording: false alarm before the exploit, then detection.
	l.StartRecording(true)
	l.Add(true, false)
	l.Add(false, true)
	l.Add(true, true)
	l.Add(true, true)
	// Attack recording never detected.
	l.StartRecording(true)
	l.Add(false, true)
	l.EndRecording()
	want := LIDDS{Recordings: 3, AttackRecordings: 2, Detected: 1, FalseAlarms: 4, CFA: 3, NormalEvents: 6, AttackEvents: 4}
	got := l
	got.inRecording, got.isAttack, got.detected, got.lastFalse = false, false, false, false
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if l.DetectionRate() != 0.5 {
		t.Fatalf("DR %v", l.DetectionRate())
	}
	var m LIDDS
	m.Merge(want)
	m.Merge(want)
	if m.CFA != 6 || m.Detected != 2 {
		t.Fatalf("merge %+v", m)
	}
}

func TestCost(t *testing.T) {
	var c Cost
	c.Start()
	x := 0
	for i := range 2_000_000 {
		x += i % 7
	}
	c.Stop(1000)
	_ = x
	if c.Events != 1000 || c.Wall <= 0 || c.EventsPerSec() <= 0 {
		t.Fatalf("cost %+v", c)
	}
	if c.CPUPerEvent() != c.CPU/1000 {
		t.Fatal("CPU per event")
	}
	if !math.IsNaN(Mean(nil)) || Mean([]float64{1, 2, 6}) != 3 {
		t.Fatal("Mean")
	}
}

func TestThresholdAndDetectionAtFPR(t *testing.T) {
	benign := []float64{0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.0}
	for _, tc := range []struct {
		fpr, want float64
	}{{0, 0.9}, {0.05, 0.9}, {0.1, 0.8}, {0.25, 0.7}, {1, 0.0}} {
		if got := ThresholdAtFPR(benign, tc.fpr); got != tc.want {
			t.Errorf("ThresholdAtFPR(%g) = %g, want %g", tc.fpr, got, tc.want)
		}
	}
	if !math.IsNaN(ThresholdAtFPR(nil, 0.1)) {
		t.Error("no benign scores gave a threshold")
	}
	var s []Sample
	for _, b := range benign {
		s = append(s, Sample{Score: b})
	}
	for _, a := range []float64{0.95, 0.85, 0.75, 0.05} {
		s = append(s, Sample{Score: a, Attack: true})
	}
	// At 10% FPR the threshold is 0.8: 0.95 and 0.85 detected (2 of 4),
	// one benign score (0.9) above it.
	if d := DetectionAtFPR(s, 0.1); d != 0.5 {
		t.Errorf("detection at 10%% FPR %g, want 0.5", d)
	}
	if d, f := Rates(s, 0.8); d != 0.5 || f != 0.1 {
		t.Errorf("rates at 0.8: %g %g", d, f)
	}
	// Ties at the threshold do not alarm: every score equal gives 0.
	tied := []Sample{{Score: 1}, {Score: 1}, {Score: 1, Attack: true}}
	if d := DetectionAtFPR(tied, 0.5); d != 0 {
		t.Errorf("tied detection %g", d)
	}
}
