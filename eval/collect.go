package eval

import (
	"math"
	"slices"
	"time"

	"github.com/driftwatch/driftwatch/eval/metrics"
	"github.com/driftwatch/driftwatch/eval/report"
)

// attackState tracks one labelled attack during scoring.
type attackState struct {
	start int64
	first int64 // event time of the first attributed alert; 0 when none
}

// collector accumulates one detector's results over one scenario.
type collector struct {
	attacks  []attackState
	alerts   int
	tp, fp   int
	samples  []metrics.Sample
	lid      metrics.LIDDS
	spans    map[string][2]int64
	events   int64
	cost     metrics.Cost
	timeline []report.Point
	// timelineT0 is the trace time of the timeline's x = 0; timeline
	// points are recorded while recordTimeline is set.
	timelineT0     int64
	recordTimeline bool
	threshold      *float64
	// clamped says the threshold was lowered because it could not be exceeded.
	clamped bool
}

func newCollector() *collector { return &collector{spans: map[string][2]int64{}} }

// addAttack registers an attack starting at start and returns its index.
func (c *collector) addAttack(start int64) int {
	c.attacks = append(c.attacks, attackState{start: start})
	return len(c.attacks) - 1
}

// alert counts one alert; idx is the attack it is attributed to, or -1.
func (c *collector) alert(t int64, idx int) {
	c.alerts++
	if idx < 0 {
		c.fp++
		return
	}
	c.tp++
	a := &c.attacks[idx]
	if a.first == 0 || t < a.first {
		a.first = t
	}
}

// event counts one scored event. span is the key whose first-to-last time
// makes up container-hours (container id, per recording).
func (c *collector) event(t int64, span string, attack bool, score float64, alarmed bool) {
	c.samples = append(c.samples, metrics.Sample{Score: score, Attack: attack})
	c.lid.Add(alarmed, attack)
	c.unscored(t, span)
	if c.recordTimeline {
		c.timeline = append(c.timeline, report.Point{X: float64(t-c.timelineT0) / 1e9, Y: score})
	}
}

// unscored counts an event the detector gave no score (a sequence model's
// first n−1 calls of a thread): it adds to events and container time but
// is no sample and, as in the LID-DS framework, no syscall of the LID-DS
// counts (so it neither ends nor extends a run of false alarms).
func (c *collector) unscored(t int64, span string) {
	c.events++
	s, ok := c.spans[span]
	if !ok {
		s = [2]int64{t, t}
	}
	s[0], s[1] = min(s[0], t), max(s[1], t)
	c.spans[span] = s
}

func (c *collector) containerTime() time.Duration {
	var d time.Duration
	for _, s := range c.spans {
		d += time.Duration(s[1] - s[0])
	}
	return d
}

func (c *collector) latencies() []float64 {
	var out []float64
	for _, a := range c.attacks {
		if a.first != 0 {
			out = append(out, float64(a.first-a.start)/1e9)
		}
	}
	return out
}

// figures computes the collector's figures.
func (c *collector) figures() *report.Figures {
	return figuresOf([]*collector{c})
}

// figuresOf pools several collectors (scenarios) into one set of figures.
func figuresOf(cs []*collector) *report.Figures {
	f := &report.Figures{}
	var samples []metrics.Sample
	var lat []float64
	var lid metrics.LIDDS
	var cost metrics.Cost
	var span time.Duration
	for _, c := range cs {
		f.Events += c.events
		f.Alerts += c.alerts
		f.TP += c.tp
		f.FP += c.fp
		f.Attacks += len(c.attacks)
		for _, a := range c.attacks {
			if a.first != 0 {
				f.Detected++
			}
		}
		samples = append(samples, c.samples...)
		lat = append(lat, c.latencies()...)
		lid.Merge(c.lid)
		cost.Events += c.cost.Events
		cost.Wall += c.cost.Wall
		cost.CPU += c.cost.CPU
		span += c.containerTime()
		if c.threshold != nil && len(cs) == 1 {
			f.Threshold = c.threshold
		}
	}
	f.FN = f.Attacks - f.Detected
	f.Precision, f.Recall, f.F1 = metrics.PRF(f.TP, f.FP, f.Detected, f.Attacks)
	f.ContainerHours = span.Hours()
	f.FalseAlarmsPerHour = metrics.PerHour(f.FP, span)
	f.DetectionLatencyS = report.Float(metrics.Mean(lat))
	if roc := metrics.ROC(samples); roc.OK {
		f.ROCAUC = report.Float(roc.AUC)
	}
	if pr := metrics.PR(samples); pr.OK {
		f.PRAUC = report.Float(pr.AUC)
	}
	if f.Attacks > 0 {
		f.DetectionRate = float64(f.Detected) / float64(f.Attacks)
	}
	f.FalseAlarms = lid.FalseAlarms
	f.ConsecutiveFalseAlarms = lid.CFA
	f.EventsPerSec = cost.EventsPerSec()
	f.CPUPerEventUs = float64(cost.CPUPerEvent()) / float64(time.Microsecond)
	return f
}

// curvesOf pools samples into plot curves (downsampled to at most maxPoints).
func curvesOf(cs []*collector) report.Curves {
	var samples []metrics.Sample
	for _, c := range cs {
		samples = append(samples, c.samples...)
	}
	var out report.Curves
	if roc := metrics.ROC(samples); roc.OK {
		out.ROC = thin(roc.X, roc.Y)
	}
	if pr := metrics.PR(samples); pr.OK {
		out.PR = thin(pr.X, pr.Y)
	}
	return out
}

const maxPoints = 2000

func thin(x, y []float64) []report.Point {
	step := max(1, len(x)/maxPoints)
	var out []report.Point
	for i := 0; i < len(x); i += step {
		out = append(out, report.Point{X: x[i], Y: y[i]})
	}
	if n := len(x); n > 0 && (n-1)%step != 0 {
		out = append(out, report.Point{X: x[n-1], Y: y[n-1]})
	}
	return out
}

// downsample keeps at most maxPoints timeline points: the maximum score of
// each time bucket, so short spikes stay visible.
func downsample(pts []report.Point) []report.Point {
	if len(pts) <= maxPoints {
		return pts
	}
	lo, hi := pts[0].X, pts[0].X
	for _, p := range pts {
		lo, hi = math.Min(lo, p.X), math.Max(hi, p.X)
	}
	width := (hi - lo) / maxPoints
	if width <= 0 {
		return pts[:maxPoints]
	}
	buckets := make([]report.Point, maxPoints)
	seen := make([]bool, maxPoints)
	for _, p := range pts {
		i := min(int((p.X-lo)/width), maxPoints-1)
		if !seen[i] || p.Y > buckets[i].Y {
			buckets[i] = report.Point{X: lo + (float64(i)+0.5)*width, Y: p.Y}
			seen[i] = true
		}
	}
	out := buckets[:0]
	for i, b := range buckets {
		if seen[i] {
			out = append(out, b)
		}
	}
	return slices.Clip(out)
}
