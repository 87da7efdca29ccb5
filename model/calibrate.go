package model

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/driftwatch/driftwatch/profiler"
)

// Calibration is the alert threshold of one profile category and how it
// was obtained.
type Calibration struct {
	Threshold float64 // bits
	// NoveltyRate is the benign novelty rate ν per hour: post-warm-up
	// singletons ÷ post-warm-up hours (Good–Turing: singletons stand for
	// the novelties to come).
	NoveltyRate float64
	// Target is this category's share of the false-alarm budget per hour.
	Target float64
	// Quantile is the level 1 − Target/ν read from the sample (0 when the
	// budget covers every novelty and the floor applies).
	Quantile float64
	// Samples is the number of held-out first-sight surprises.
	Samples int
	// Method: "floor", "empirical", "exponential-tail" or "max+margin".
	Method string
}

// minHeldOutHours floors the held-out duration so that a burst of
// post-warm-up events at one instant does not imply an infinite rate.
const minHeldOutHours = 1.0 / 60

// calibrate computes the threshold of one category: the benign novelty
// surprise distribution is sampled by the leave-one-out first-sight
// surprises of the post-warm-up singletons, the benign novelty rate is
// their count per held-out hour, and the threshold is the (1 − R/ν)
// quantile of the sample, so that the expected benign alerts per hour are R
// (the category's share of the target). Too few samples for that quantile:
// an exponential tail fitted to the excesses over the median (≥ 10
// samples), else the sample maximum plus one back-off step. Never below
// MinThreshold.
func (d *Detector) calibrate(pr *profiler.Profile, c profiler.Category) Calibration {
	st := pr.Stats(c)
	cal := Calibration{Target: d.cfg.TargetFalseAlarmsPerHour / float64(profiler.NumCategories)}
	var sample []float64
	var buf []uint64
	pr.EachFeature(c, func(_ uint64, f *profiler.FeatureStat) {
		if f.Count == 1 && !f.Warm {
			buf = chainOf(buf, f)
			sample = append(sample, surprise(pr, c, buf, f.Count, f.Count, d.cfg.BackoffBits))
		}
	})
	cal.Samples = len(sample)
	hours := float64(st.PostEnd-st.PostStart) / 3.6e12
	if hours < minHeldOutHours {
		hours = minHeldOutHours
	}
	cal.NoveltyRate = float64(len(sample)) / hours
	th := d.cfg.MinThreshold
	cal.Method = "floor"
	if cal.NoveltyRate > cal.Target && len(sample) > 0 {
		sort.Float64s(sample)
		q := 1 - cal.Target/cal.NoveltyRate
		cal.Quantile = q
		n := float64(len(sample))
		switch {
		case n*(1-q) >= 1:
			th, cal.Method = stat.Quantile(q, stat.Empirical, sample, nil), "empirical"
		case len(sample) >= 10:
			u := stat.Quantile(0.5, stat.Empirical, sample, nil)
			var ex []float64
			for _, s := range sample {
				if s > u {
					ex = append(ex, s-u)
				}
			}
			if len(ex) == 0 {
				th, cal.Method = sample[len(sample)-1]+d.cfg.BackoffBits, "max+margin"
				break
			}
			var e distuv.Exponential
			e.Fit(ex, nil)
			pu := float64(len(ex)) / n
			// P(S > t) = pu · exp(−rate (t − u)) = 1 − q
			th, cal.Method = u+math.Log(pu/(1-q))/e.Rate, "exponential-tail"
		default:
			th, cal.Method = sample[len(sample)-1]+d.cfg.BackoffBits, "max+margin"
		}
		if th < d.cfg.MinThreshold {
			th = d.cfg.MinThreshold
		}
	}
	cal.Threshold = th
	return cal
}
