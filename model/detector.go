package model

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// Config controls scoring. Zero fields take the documented defaults.
type Config struct {
	// TargetFalseAlarmsPerHour per container, split evenly over the
	// categories (default 1).
	TargetFalseAlarmsPerHour float64
	// MinThreshold is the lowest alert threshold in bits (default 4: an
	// unseen feature must be rarer than 1 in 16 under the profile).
	MinThreshold float64
	// BackoffBits is added per chain level below the deepest known node
	// (default 1).
	BackoffBits float64
	// LearningMargin is added to the threshold of a category that is still
	// learning or unstable (default 1 bit: an alert there must be half as
	// probable as in a stable category). The score itself is never damped:
	// a margin keeps the calibrated threshold reachable, where halving the
	// score made it unreachable for a category calibrated above 2× the floor.
	LearningMargin float64
	// DedupWindow: a (container, category, feature) alerts once per window;
	// repeats are counted (default 10m of event time).
	DedupWindow time.Duration
	// HalfLife of the container score (default 5m of event time).
	HalfLife time.Duration
	// Batch holds anomaly alerts until Flush, which emits them per
	// container, highest score first (offline detection). Otherwise
	// alerts are emitted from Handle as they happen.
	Batch bool
	// AutoSuppressTag marks static rules whose alerts may be suppressed
	// when the behaviour is in the stable profile (default
	// "allow_autosuppression").
	AutoSuppressTag string
	// NoAutoSuppress disables auto-suppression.
	NoAutoSuppress bool
	// OnScore, when set, receives every event scored in detect mode with
	// its score: the highest surprise (bits) over the event's features,
	// known or not (the agent's per-namespace score histogram). It is
	// called from Handle and must be cheap.
	OnScore func(e *event.Enriched, score float64)
	// Recalibrate bounds how often (event time) a changing profile's
	// thresholds are recomputed (default 1m).
	Recalibrate time.Duration
	// EpisodeGap groups novelties: features of one category first seen
	// within this gap of each other (event time) are one novelty episode
	// (a new code path loading a dozen modules at once) — one benign
	// novelty for calibration, one alert in detection (default 1s).
	EpisodeGap time.Duration
}

func (c *Config) fill() {
	if c.TargetFalseAlarmsPerHour == 0 {
		c.TargetFalseAlarmsPerHour = 1
	}
	if c.MinThreshold == 0 {
		c.MinThreshold = 4
	}
	if c.BackoffBits == 0 {
		c.BackoffBits = 1
	}
	if c.LearningMargin == 0 {
		c.LearningMargin = 1
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = 10 * time.Minute
	}
	if c.HalfLife == 0 {
		c.HalfLife = 5 * time.Minute
	}
	if c.AutoSuppressTag == "" {
		c.AutoSuppressTag = "allow_autosuppression"
	}
	if c.Recalibrate == 0 {
		c.Recalibrate = time.Minute
	}
	if c.EpisodeGap == 0 {
		c.EpisodeGap = time.Second
	}
}

// Rule names of anomaly alerts, per category.
var RuleNames = [profiler.NumCategories]string{
	profiler.CatProcess:   "Unexpected process in container",
	profiler.CatEdge:      "Unexpected process tree edge in container",
	profiler.CatFile:      "Unexpected file access in container",
	profiler.CatNetwork:   "Unexpected outbound connection in container",
	profiler.CatListen:    "Unexpected listening port in container",
	profiler.CatPrivilege: "Unexpected privilege change in container",
}

var categoryTags = [profiler.NumCategories]string{"process", "process", "filesystem", "network", "network", "privilege"}

// Stats are the detector's counters.
type Stats struct {
	Learned      uint64 // events learned
	Scored       uint64 // events scored
	Features     uint64 // features scored
	Anomalies    uint64 // anomaly alerts raised (before batching)
	Deduplicated uint64 // anomalies not re-alerted within the window
	Folded       uint64 // anomalies folded into their episode's alert
	Suppressed   uint64 // static-rule alerts auto-suppressed
	NoProfile    uint64 // events in detect mode without a profile
	PerCategory  [profiler.NumCategories]CategoryStats
	// ToDetecting counts, per category, profile categories that turned
	// from stable to detecting when first scored (in auto mode: the end
	// of their learning window).
	ToDetecting [profiler.NumCategories]uint64
}

// CategoryStats are per-category counters.
type CategoryStats struct {
	Scored    uint64
	Anomalies uint64
}

// ContainerScore is one container's current decayed score.
type ContainerScore struct {
	ContainerID string
	Namespace   string
	Pod         string
	Image       string
	Profile     string
	Score       float64
	Time        int64 // event time of the last update, ns
}

type dedupKey struct {
	cat  profiler.Category
	hash uint64
}

type pendingAlert struct {
	alert *event.Alert
	count uint64
	first int64
}

// episode is a category's open novelty episode in one container.
type episode struct {
	last int64 // event time of its latest anomaly
	p    *pendingAlert
}

// maxRelated bounds the features listed in an episode's alert.
const maxRelated = 10

type ctrScore struct {
	episodes [profiler.NumCategories]episode
	info     ContainerScore
	score    float64
	last     int64
	alerted  map[dedupKey]*pendingAlert
	order    []*pendingAlert // batch mode: pending, unsorted
}

type calKey struct {
	pr *profiler.Profile
	c  profiler.Category
}

type calVal struct {
	strata  [profiler.NumStrata]Calibration
	version uint64
	at      int64
}

// Detector learns (ModeLearn) or scores (ModeDetect) events against the
// profiles of a Profiler. Safe for concurrent use.
type Detector struct {
	prof *profiler.Profiler
	cfg  Config

	mu    sync.Mutex
	mode  event.Mode // the mode of the event being scored (alerts show it)
	cals  map[calKey]*calVal
	ctrs  map[string]*ctrScore
	stats Stats
	chain []uint64
}

// NewDetector returns a detector over p.
func NewDetector(p *profiler.Profiler, cfg Config) *Detector {
	cfg.fill()
	return &Detector{prof: p, cfg: cfg, cals: map[calKey]*calVal{}, ctrs: map[string]*ctrScore{}, chain: make([]uint64, 0, profiler.MaxLevels)}
}

// Profiler returns the detector's profiler.
func (d *Detector) Profiler() *profiler.Profiler { return d.prof }

// Handle learns e in ModeLearn, scores it in ModeDetect (emitting anomaly
// alerts unless Batch), does both per category in ModeAuto (learning
// categories learn, stable ones are scored and become detecting) and
// ignores it in ModeOff.
func (d *Detector) Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert)) {
	switch mode {
	case event.ModeLearn:
		d.prof.Learn(e)
		d.mu.Lock()
		d.stats.Learned++
		d.mu.Unlock()
	case event.ModeDetect:
		d.mu.Lock()
		defer d.mu.Unlock()
		d.mode = mode
		d.prof.View(e, func(pr *profiler.Profile, feats []profiler.Feature) {
			d.score(e, pr, feats, emit)
		})
	case event.ModeAuto:
		d.mu.Lock()
		defer d.mu.Unlock()
		d.mode = mode
		if d.prof.Auto(e, func(pr *profiler.Profile, ready []profiler.Feature) {
			d.score(e, pr, ready, emit)
		}) > 0 {
			d.stats.Learned++
		}
	}
}

func (d *Detector) score(e *event.Enriched, pr *profiler.Profile, feats []profiler.Feature, emit func(*event.Alert)) {
	if pr == nil {
		d.stats.NoProfile++
		return
	}
	if len(feats) == 0 {
		return
	}
	d.stats.Scored++
	maxScore := 0.0
	if d.cfg.OnScore != nil {
		defer func() { d.cfg.OnScore(e, maxScore) }()
	}
	for i := range feats {
		f := &feats[i]
		d.stats.Features++
		d.stats.PerCategory[f.Cat].Scored++
		st := pr.State(f.Cat)
		if st == profiler.StateStable {
			pr.SetState(f.Cat, profiler.StateDetecting)
			st = profiler.StateDetecting
			d.stats.ToDetecting[f.Cat]++
		}
		if fs := pr.Feature(f.Cat, f.Hash); fs != nil {
			// Known features never alert on their own; their score is
			// memoised while the profile does not change.
			if fs.CacheVer != pr.Version+1 {
				fs.Cache = surprise(pr, f.Cat, f.Chain[:f.Depth], fs.Count, 0, d.cfg.BackoffBits)
				fs.CacheVer = pr.Version + 1
			}
			maxScore = max(maxScore, fs.Cache)
			continue
		}
		s := surprise(pr, f.Cat, f.Chain[:f.Depth], 0, 0, d.cfg.BackoffBits)
		maxScore = max(maxScore, s)
		cal := d.calibration(pr, f.Cat, profiler.FileStratum(f.Cat, string(f.Text)), e.Time)
		th := cal.Threshold
		if !st.Ready() {
			th += d.cfg.LearningMargin
		}
		if s < th {
			continue
		}
		if th != cal.Threshold {
			eff := *cal
			eff.Threshold = th
			cal = &eff
		}
		d.anomaly(e, pr, f, st, s, cal, emit)
	}
}

func (d *Detector) calibration(pr *profiler.Profile, c profiler.Category, s profiler.Stratum, t int64) *Calibration {
	k := calKey{pr, c}
	v := d.cals[k]
	if v == nil || (v.version != pr.Version && t-v.at >= int64(d.cfg.Recalibrate)) {
		if v == nil {
			v = &calVal{}
			d.cals[k] = v
		}
		v.strata = d.calibrate(pr, c)
		v.version, v.at = pr.Version, t
	}
	return &v.strata[s]
}

// Calibrations returns the current calibration of every category of a
// profile; for the file category, that of its data stratum (configuration,
// data, secrets: StratumCalibrations has the others).
func (d *Detector) Calibrations(key string) (out [profiler.NumCategories]Calibration, ok bool) {
	d.prof.WithProfile(key, func(pr *profiler.Profile) {
		if pr == nil {
			return
		}
		ok = true
		for c := profiler.Category(0); c < profiler.NumCategories; c++ {
			out[c] = d.calibrate(pr, c)[profiler.StratumData]
		}
	})
	return out, ok
}

// StratumCalibrations returns the current calibration of each stratum of a
// profile's category (only the file category has more than one).
func (d *Detector) StratumCalibrations(key string, c profiler.Category) (out [profiler.NumStrata]Calibration, ok bool) {
	d.prof.WithProfile(key, func(pr *profiler.Profile) {
		if pr == nil {
			return
		}
		ok = true
		out = d.calibrate(pr, c)
	})
	return out, ok
}

func (d *Detector) ctr(e *event.Enriched, pr *profiler.Profile) *ctrScore {
	id := event.HostContainerID
	if e.Container != nil {
		id = e.Container.ID
	}
	cs := d.ctrs[id]
	if cs == nil {
		if len(d.ctrs) >= maxScoredContainers {
			d.prune(e.Time)
		}
		cs = &ctrScore{alerted: map[dedupKey]*pendingAlert{}}
		cs.info.ContainerID, cs.info.Profile = id, pr.Key
		if c := e.Container; c != nil {
			cs.info.Namespace, cs.info.Pod, cs.info.Image = c.Namespace, c.PodName, c.Image
		}
		d.ctrs[id] = cs
	}
	return cs
}

// maxScoredContainers bounds the per-container state; beyond it, containers
// without pending alerts and quiet for a dedup window are forgotten.
const maxScoredContainers = 4096

func (d *Detector) prune(now int64) {
	for id, cs := range d.ctrs {
		if len(cs.order) == 0 && now-cs.last >= int64(d.cfg.DedupWindow) {
			delete(d.ctrs, id)
		}
	}
}

func (d *Detector) decay(cs *ctrScore, t int64) {
	if cs.last != 0 && t > cs.last {
		cs.score *= math.Exp2(-float64(t-cs.last) / float64(d.cfg.HalfLife))
	}
	if t > cs.last {
		cs.last = t
	}
}

func (d *Detector) anomaly(e *event.Enriched, pr *profiler.Profile, f *profiler.Feature, st profiler.State, s float64, cal *Calibration, emit func(*event.Alert)) {
	cs := d.ctr(e, pr)
	d.decay(cs, e.Time)
	cs.score += s - cal.Threshold
	cs.info.Score, cs.info.Time = cs.score, cs.last
	k := dedupKey{f.Cat, f.Hash}
	if p := cs.alerted[k]; p != nil && e.Time-p.first < int64(d.cfg.DedupWindow) {
		p.count++
		p.alert.OutputFields["anomaly.count"] = p.count
		d.stats.Deduplicated++
		return
	}
	if ep := &cs.episodes[f.Cat]; ep.p != nil && e.Time-ep.last <= int64(d.cfg.EpisodeGap) && e.Time >= ep.last {
		// Part of the open episode: one alert lists the episode's features.
		ep.last = e.Time
		ep.p.count++
		ep.p.alert.OutputFields["anomaly.count"] = ep.p.count
		if rel, _ := ep.p.alert.OutputFields["anomaly.related"].([]string); len(rel) < maxRelated {
			ep.p.alert.OutputFields["anomaly.related"] = append(rel, event.Escape(f.Text))
		}
		cs.alerted[k] = ep.p
		d.stats.Folded++
		return
	}
	a := d.buildAlert(e, pr, f, st, s, cal)
	p := &pendingAlert{alert: a, count: 1, first: e.Time}
	cs.alerted[k] = p
	cs.episodes[f.Cat] = episode{last: e.Time, p: p}
	d.stats.Anomalies++
	d.stats.PerCategory[f.Cat].Anomalies++
	if d.cfg.Batch {
		cs.order = append(cs.order, p)
		return
	}
	if emit != nil {
		emit(a)
	}
}

// Priority maps a score's excess over its threshold to a Falco priority:
// each bit of excess halves the model probability, so an excess of 8 bits
// (256 times rarer than the threshold) is Critical, 4 bits Error, 1 bit
// Warning, less Notice.
func Priority(score, threshold float64) event.Priority {
	switch x := score - threshold; {
	case x >= 8:
		return event.PriorityCritical
	case x >= 4:
		return event.PriorityError
	case x >= 1:
		return event.PriorityWarning
	}
	return event.PriorityNotice
}

// Flush emits pending batched alerts: containers in id order, each
// container's alerts highest score first.
func (d *Detector) Flush(emit func(*event.Alert)) {
	d.mu.Lock()
	ids := make([]string, 0, len(d.ctrs))
	for id := range d.ctrs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []*event.Alert
	for _, id := range ids {
		cs := d.ctrs[id]
		sort.SliceStable(cs.order, func(i, j int) bool { return cs.order[i].alert.Score > cs.order[j].alert.Score })
		for _, p := range cs.order {
			out = append(out, p.alert)
		}
		cs.order = nil
	}
	d.mu.Unlock()
	for _, a := range out {
		if emit != nil {
			emit(a)
		}
	}
}

// Suppress reports whether a static-rule alert tagged AutoSuppressTag
// concerns behaviour already in a stable (or detecting) profile category:
// every feature of the event must be known. Suppressions are counted.
func (d *Detector) Suppress(a *event.Alert, e *event.Enriched) bool {
	if d.cfg.NoAutoSuppress || a == nil || e == nil {
		return false
	}
	tagged := false
	for _, t := range a.Tags {
		if t == d.cfg.AutoSuppressTag {
			tagged = true
			break
		}
	}
	if !tagged {
		return false
	}
	known := false
	d.prof.View(e, func(pr *profiler.Profile, feats []profiler.Feature) {
		if pr == nil || len(feats) == 0 {
			return
		}
		for i := range feats {
			f := &feats[i]
			if !pr.State(f.Cat).Ready() || pr.Feature(f.Cat, f.Hash) == nil {
				return
			}
		}
		known = true
	})
	if known {
		d.mu.Lock()
		d.stats.Suppressed++
		d.mu.Unlock()
	}
	return known
}

// ContainerScores returns every scored container's score decayed to the
// latest event time seen, sorted by container id.
func (d *Detector) ContainerScores() []ContainerScore {
	d.mu.Lock()
	defer d.mu.Unlock()
	var now int64
	for _, cs := range d.ctrs {
		if cs.last > now {
			now = cs.last
		}
	}
	out := make([]ContainerScore, 0, len(d.ctrs))
	for _, cs := range d.ctrs {
		v := cs.info
		v.Score = cs.score * math.Exp2(-float64(now-cs.last)/float64(d.cfg.HalfLife))
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out
}

// Stats returns a copy of the counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}
