// Package metrics computes the eval harness's figures from attributed alerts
// and scored events: alert-level precision/recall/F1, false alarms per
// container-hour, detection latency, ROC and precision-recall curves with
// their areas, the LID-DS detection rate / false alarms / consecutive false
// alarms, and throughput and CPU time per event.
//
// Definitions (docs/eval.md repeats them for readers of a report):
//   - TP: alerts attributed to a labelled attack; FP: all other alerts;
//     FN: attacks with no attributed alert.
//   - precision = TP / (TP + FP) (alert level); recall = detected attacks /
//     attacks (attack level); F1 = their harmonic mean.
//   - false alarms per container-hour = FP / the summed trace-time span of
//     every container seen in the test traces.
//   - detection latency = first attributed alert's event time − attack start,
//     averaged over detected attacks.
package metrics

import (
	"cmp"
	"math"
	"slices"
	"syscall"
	"time"

	"gonum.org/v1/gonum/integrate"
	"gonum.org/v1/gonum/stat"
)

// PRF returns precision = tp/(tp+fp), recall = detected/attacks and their
// harmonic mean. An undefined ratio (no alerts, no attacks) is 0, and so is
// F1 when both are 0.
func PRF(tp, fp, detected, attacks int) (precision, recall, f1 float64) {
	if tp+fp > 0 {
		precision = float64(tp) / float64(tp+fp)
	}
	if attacks > 0 {
		recall = float64(detected) / float64(attacks)
	}
	if precision+recall > 0 {
		f1 = 2 * precision * recall / (precision + recall)
	}
	return precision, recall, f1
}

// PerHour returns n per hour of span (0 for an empty span).
func PerHour(n int, span time.Duration) float64 {
	if span <= 0 {
		return 0
	}
	return float64(n) / span.Hours()
}

// Sample is one scored event with its ground truth.
type Sample struct {
	Score  float64
	Attack bool
}

// Curve is a ROC or PR curve: X/Y points and the area under it.
type Curve struct {
	X, Y []float64
	// AUC is the area; valid only when OK.
	AUC float64
	// OK is false when a class is missing and the curve is undefined.
	OK bool
}

func classes(samples []Sample) (pos, neg int) {
	for _, s := range samples {
		if s.Attack {
			pos++
		} else {
			neg++
		}
	}
	return pos, neg
}

// ROC returns the ROC curve (X = false-positive rate, Y = true-positive rate)
// over every distinct score and its area by the trapezoidal rule (gonum's
// stat.ROC and integrate.Trapezoidal). Ties count half, as in the Mann-Whitney
// reading of the AUC.
func ROC(samples []Sample) Curve {
	pos, neg := classes(samples)
	if pos == 0 || neg == 0 {
		return Curve{}
	}
	s := slices.Clone(samples)
	slices.SortFunc(s, func(a, b Sample) int { return cmp.Compare(a.Score, b.Score) })
	y := make([]float64, len(s))
	c := make([]bool, len(s))
	for i, x := range s {
		y[i], c[i] = x.Score, x.Attack
	}
	tpr, fpr, _ := stat.ROC(nil, y, c, nil)
	return Curve{X: fpr, Y: tpr, AUC: integrate.Trapezoidal(fpr, tpr), OK: true}
}

// PR returns the precision-recall curve (X = recall, Y = precision), one
// point per distinct score threshold from the highest down, and the average
// precision (the step-wise area: Σ (R_k − R_{k−1}) P_k).
func PR(samples []Sample) Curve {
	pos, neg := classes(samples)
	if pos == 0 || neg == 0 {
		return Curve{}
	}
	s := slices.Clone(samples)
	slices.SortFunc(s, func(a, b Sample) int { return cmp.Compare(b.Score, a.Score) })
	var cur Curve
	cur.OK = true
	tp, fp := 0, 0
	prevR := 0.0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j].Score == s[i].Score {
			if s[j].Attack {
				tp++
			} else {
				fp++
			}
			j++
		}
		r := float64(tp) / float64(pos)
		p := float64(tp) / float64(tp+fp)
		cur.X = append(cur.X, r)
		cur.Y = append(cur.Y, p)
		cur.AUC += (r - prevR) * p
		prevR = r
		i = j
	}
	return cur
}

// LIDDS counts alarms the way the LID-DS framework does, syscall by
// syscall: an alarm on an attack syscall detects its recording; an alarm on
// a normal syscall is a false alarm, and a run of consecutive false alarms
// counts once as a CFA.
type LIDDS struct {
	Recordings       int `json:"recordings"`
	AttackRecordings int `json:"attack_recordings"`
	Detected         int `json:"detected"`
	FalseAlarms      int `json:"false_alarms"`
	CFA              int `json:"consecutive_false_alarms"`
	NormalEvents     int `json:"normal_events"`
	AttackEvents     int `json:"attack_events"`

	inRecording, isAttack, detected, lastFalse bool
}

// StartRecording begins a recording; attack says whether it contains an exploit.
func (l *LIDDS) StartRecording(attack bool) {
	l.EndRecording()
	l.inRecording, l.isAttack, l.detected, l.lastFalse = true, attack, false, false
	l.Recordings++
	if attack {
		l.AttackRecordings++
	}
}

// Add records one syscall: whether it alarmed and whether it is labelled attack.
func (l *LIDDS) Add(alarm, attack bool) {
	if attack {
		l.AttackEvents++
	} else {
		l.NormalEvents++
	}
	switch {
	case alarm && attack:
		if !l.detected {
			l.detected = true
			l.Detected++
		}
		l.lastFalse = false
	case alarm:
		l.FalseAlarms++
		if !l.lastFalse {
			l.CFA++
		}
		l.lastFalse = true
	default:
		l.lastFalse = false
	}
}

// EndRecording closes the current recording (called by StartRecording too).
func (l *LIDDS) EndRecording() { l.inRecording = false }

// DetectionRate returns detected / attack recordings (0 when none).
func (l *LIDDS) DetectionRate() float64 {
	if l.AttackRecordings == 0 {
		return 0
	}
	return float64(l.Detected) / float64(l.AttackRecordings)
}

// Merge adds o's counts into l.
func (l *LIDDS) Merge(o LIDDS) {
	l.Recordings += o.Recordings
	l.AttackRecordings += o.AttackRecordings
	l.Detected += o.Detected
	l.FalseAlarms += o.FalseAlarms
	l.CFA += o.CFA
	l.NormalEvents += o.NormalEvents
	l.AttackEvents += o.AttackEvents
}

// CPUTime returns the process's user+system CPU time so far (getrusage).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ThreadCPUTime returns the calling OS thread's user+system CPU time
// (getrusage RUSAGE_THREAD); meaningful for a goroutine locked to its
// thread (runtime.LockOSThread).
func ThreadCPUTime() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Cost measures throughput and CPU per event over a stretch of work.
type Cost struct {
	// PerThread measures the CPU time of the calling OS thread instead of
	// the whole process (for work running in parallel on locked threads;
	// the runtime's background GC work is then not counted).
	PerThread bool
	wall0     time.Time
	cpu0      time.Duration
	// Events processed, Wall and CPU spent; filled by Stop.
	Events int64
	Wall   time.Duration
	CPU    time.Duration
}

// Start begins measuring.
func (c *Cost) Start() { c.wall0, c.cpu0 = time.Now(), c.cpuNow() }

func (c *Cost) cpuNow() time.Duration {
	if c.PerThread {
		return ThreadCPUTime()
	}
	return CPUTime()
}

// Stop ends measuring, adding events and the time spent since Start.
func (c *Cost) Stop(events int64) {
	c.Events += events
	c.Wall += time.Since(c.wall0)
	c.CPU += c.cpuNow() - c.cpu0
}

// EventsPerSec returns events per wall-clock second.
func (c *Cost) EventsPerSec() float64 {
	if c.Wall <= 0 {
		return 0
	}
	return float64(c.Events) / c.Wall.Seconds()
}

// CPUPerEvent returns CPU time per event.
func (c *Cost) CPUPerEvent() time.Duration {
	if c.Events == 0 {
		return 0
	}
	return c.CPU / time.Duration(c.Events)
}

// Mean returns the mean of xs, NaN when empty.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return stat.Mean(xs, nil)
}

// ThresholdAtFPR returns the threshold that lets at most a fraction fpr of
// the benign scores exceed it (a score alarms when strictly above): the
// (⌊fpr·n⌋+1)-th highest benign score. It returns NaN for no scores.
func ThresholdAtFPR(benign []float64, fpr float64) float64 {
	if len(benign) == 0 {
		return math.NaN()
	}
	s := slices.Clone(benign)
	slices.SortFunc(s, func(a, b float64) int { return cmp.Compare(b, a) })
	k := int(math.Floor(fpr*float64(len(s)) + 1e-9))
	if k >= len(s) {
		k = len(s) - 1
	}
	return s[k]
}

// Rates returns the fraction of attack samples (detection rate) and of
// benign samples (false-positive rate) scoring strictly above threshold; a
// class without samples gives 0.
func Rates(samples []Sample, threshold float64) (detection, falsePositive float64) {
	var tp, fp, pos, neg int
	for _, s := range samples {
		if s.Attack {
			pos++
			if s.Score > threshold {
				tp++
			}
		} else {
			neg++
			if s.Score > threshold {
				fp++
			}
		}
	}
	if pos > 0 {
		detection = float64(tp) / float64(pos)
	}
	if neg > 0 {
		falsePositive = float64(fp) / float64(neg)
	}
	return detection, falsePositive
}

// DetectionAtFPR returns the detection rate at a fixed false-positive
// rate: the fraction of attack samples above the threshold that at most
// a fraction fpr of the benign samples exceed (ThresholdAtFPR). Ties at
// the threshold do not alarm, so the achieved rate may be below fpr.
func DetectionAtFPR(samples []Sample, fpr float64) float64 {
	var benign []float64
	for _, s := range samples {
		if !s.Attack {
			benign = append(benign, s.Score)
		}
	}
	t := ThresholdAtFPR(benign, fpr)
	if math.IsNaN(t) {
		return 0
	}
	d, _ := Rates(samples, t)
	return d
}
