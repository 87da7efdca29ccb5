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
	// Method: "floor", "empirical", "exponential-tail", "max+tail" or
	// "max+margin".
	Method string
	// Stratum is the kind of file the calibration is for (the file
	// category is calibrated per stratum; other categories have one,
	// StratumData).
	Stratum profiler.Stratum
}

// minHeldOutHours floors the held-out duration so that a burst of
// post-warm-up events at one instant does not imply an infinite rate.
const minHeldOutHours = 1.0 / 60

// calibrate computes the thresholds of one category, per stratum (the
// file category's data, code and kernel files; one for the others): the
// benign novelty surprise distribution of a stratum is sampled by the
// leave-one-out first-sight surprises of its post-warm-up singletons, the
// benign novelty rate ν is the category's episodes per held-out hour
// (summed over its strata), and a stratum's threshold is the (1 − R/ν)
// quantile of its own sample, so that the expected benign alerts per hour
// are Σ ν_s·R/ν = R (the category's share of the target). A stratum
// without benign novelty (Good–Turing: its next novelty is not expected)
// sits at the floor. Too few samples for the quantile: an exponential tail
// fitted to the excesses over the median (≥ 10 samples), else beyond the
// sample maximum. Never below MinThreshold.
func (d *Detector) calibrate(pr *profiler.Profile, c profiler.Category) [profiler.NumStrata]Calibration {
	var samples [profiler.NumStrata][]float64
	d.episodeSample(pr, c, &samples)
	n := 0
	for _, ss := range samples {
		n += len(ss)
	}
	st := pr.Stats(c)
	hours := float64(st.PostEnd-st.PostStart) / 3.6e12
	if hours < minHeldOutHours {
		hours = minHeldOutHours
	}
	nu := float64(n) / hours
	var out [profiler.NumStrata]Calibration
	for s := range out {
		out[s] = d.calibrateSample(pr, samples[s], nu)
		out[s].Stratum = profiler.Stratum(s)
	}
	return out
}

// calibrateSample is the threshold of one stratum's sample at the
// category's benign novelty rate nu.
func (d *Detector) calibrateSample(pr *profiler.Profile, sample []float64, nu float64) Calibration {
	cal := Calibration{Target: d.cfg.TargetFalseAlarmsPerHour / float64(profiler.NumCategories), NoveltyRate: nu, Samples: len(sample)}
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
			// Too few samples to fit a tail: an exponential tail beyond
			// the sample maximum, which stands at its plotting position
			// P(S > max) = 1/(n+1), with the decay rate fitted to the
			// profile's pooled first-sight surprises (all categories),
			// else ln 2 per bit. One benign
			// singleton no longer leaves the threshold at its surprise
			// plus one bit (often the 4-bit floor).
			lambda := d.pooledRate(pr)
			top := sample[len(sample)-1]
			th = top + math.Log((1/(n+1))/(1-q))/lambda
			if th < top+d.cfg.BackoffBits {
				th = top + d.cfg.BackoffBits
			}
			cal.Method = "max+tail"
		}
		if th < d.cfg.MinThreshold {
			th = d.cfg.MinThreshold
		}
	}
	cal.Threshold = th
	return cal
}

// defaultTailRate is the exponential tail's decay per bit when the pooled
// sample is too small: ln 2, the density halves with every bit — the tail a
// calibrated model predicts (an event of surprise s has probability 2^−s).
const defaultTailRate = math.Ln2

// pooledRate fits the exponential decay rate (per bit) of the excesses over
// the median of the profile's first-sight surprises pooled over all
// categories (at least 10 samples), else defaultTailRate.
func (d *Detector) pooledRate(pr *profiler.Profile) float64 {
	var sample []float64
	var buf []uint64
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		pr.EachFeature(c, func(_ uint64, f *profiler.FeatureStat) {
			if f.Count == 1 && !f.Warm {
				buf = chainOf(buf, f)
				sample = append(sample, surprise(pr, c, buf, 1, 1, d.cfg.BackoffBits))
			}
		})
	}
	if len(sample) < 10 {
		return defaultTailRate
	}
	sort.Float64s(sample)
	u := stat.Quantile(0.5, stat.Empirical, sample, nil)
	var ex []float64
	for _, s := range sample {
		if s > u {
			ex = append(ex, s-u)
		}
	}
	if len(ex) < 5 {
		return defaultTailRate
	}
	var e distuv.Exponential
	e.Fit(ex, nil)
	if !(e.Rate > 0) || math.IsInf(e.Rate, 0) {
		return defaultTailRate
	}
	// Cap the rate at twice the default (the density quartering per
	// bit): a pooled tail steeper than that would put the threshold just
	// above the one sample.
	return math.Min(e.Rate, defaultTailRate*2)
}

// episodeSample appends to out[s], per novelty episode of a category's
// stratum s, the highest leave-one-out surprise of its post-warm-up
// singletons. Singletons of a stratum first seen within EpisodeGap of each
// other are one episode: a new code path (an error handler importing a
// dozen modules) is one benign novelty, and in detection one alert
// (Detector folds an episode's anomalies), so the novelty rate and the
// sample count episodes, not features.
func (d *Detector) episodeSample(pr *profiler.Profile, c profiler.Category, out *[profiler.NumStrata][]float64) {
	type sing struct {
		first int64
		s     float64
	}
	var ss [profiler.NumStrata][]sing
	var buf []uint64
	pr.EachFeature(c, func(_ uint64, f *profiler.FeatureStat) {
		if f.Count == 1 && !f.Warm {
			buf = chainOf(buf, f)
			k := profiler.FileStratum(c, f.Text)
			ss[k] = append(ss[k], sing{f.First, surprise(pr, c, buf, f.Count, f.Count, d.cfg.BackoffBits)})
		}
	})
	for k := range ss {
		sort.Slice(ss[k], func(i, j int) bool { return ss[k][i].first < ss[k][j].first })
		last := int64(0)
		for i, x := range ss[k] {
			if i > 0 && x.first-last <= int64(d.cfg.EpisodeGap) {
				out[k][len(out[k])-1] = math.Max(out[k][len(out[k])-1], x.s)
			} else {
				out[k] = append(out[k], x.s)
			}
			last = x.first
		}
	}
}
