package profiler

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// Config controls learning. Zero fields take the documented defaults.
type Config struct {
	Gen GenConfig
	// UnseenBound: a category is stable once its windowed unseen-mass
	// estimate stays at or below this bound for MinStable (default 0.01).
	UnseenBound float64
	// Window is the sliding Good–Turing window (default 10m).
	Window time.Duration
	// MinWindowObs is the fewest observations in the window for its
	// estimate to count (default 20).
	MinWindowObs uint64
	// MinStable is how long the estimate must stay below the bound (default 30m).
	MinStable time.Duration
	// MaxLearn ends learning: a category not stable by then is unstable (default 24h).
	MaxLearn time.Duration
	// WarmUp after a container's start is learned but does not count
	// towards stability or calibration (default 10s). It ends early after
	// WarmUpEvents events of the container (default 300), so that short
	// recordings keep most of their events for stability and calibration.
	WarmUp       time.Duration
	WarmUpEvents uint64
	// MaxFeatures caps a profile's distinct features; beyond it the
	// profile is "too large" and stops adding features (default 20000).
	MaxFeatures int
	// NoExecSessions learns and scores exec sessions (processes the
	// runtime started in a running container: probes, kubectl exec) in the
	// image's profile with its init tree, as before they had a profile of
	// their own (SessionKey).
	NoExecSessions bool
	// InheritDiscount multiplies inherited counts (default 0.5).
	InheritDiscount float64
	// CheckpointInterval between checkpoints in Run (default 30s).
	CheckpointInterval time.Duration
	// Logger for checkpoint failures and state changes (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) fill() {
	c.Gen.fill()
	if c.UnseenBound == 0 {
		c.UnseenBound = 0.01
	}
	if c.Window == 0 {
		c.Window = 10 * time.Minute
	}
	if c.MinWindowObs == 0 {
		c.MinWindowObs = 20
	}
	if c.MinStable == 0 {
		c.MinStable = 30 * time.Minute
	}
	if c.MaxLearn == 0 {
		c.MaxLearn = 24 * time.Hour
	}
	if c.WarmUp == 0 {
		c.WarmUp = 10 * time.Second
	}
	if c.WarmUpEvents == 0 {
		c.WarmUpEvents = 300
	}
	if c.MaxFeatures == 0 {
		c.MaxFeatures = 20000
	}
	if c.InheritDiscount == 0 {
		c.InheritDiscount = 0.5
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// ctrState is the learning context of one container's session (its init
// tree, or its exec sessions: see SessionKey).
type ctrState struct {
	prof   *Profile
	start  int64
	events uint64
	// info is the container's, shared by its sessions: the files it
	// created (learn and detect alike) and its init.
	info *ctrInfo
	// exec: the context of the container's exec sessions, whose image
	// profile is imageKey.
	exec     bool
	imageKey string
}

// Profiler owns the profiles of one store. All methods are safe for
// concurrent use; the hot paths (Learn, View) take one mutex.
type Profiler struct {
	mu sync.Mutex
	// ckMu serialises checkpoints: when Checkpoint returns, everything
	// changed before it was called is committed, even if another
	// checkpoint had collected those changes.
	ckMu     sync.Mutex
	store    *Store
	cfg      Config
	profiles map[string]*Profile
	// infos holds per running container its sessions' contexts.
	infos   map[*event.Container]*ctrInfo
	ex      *Extractor
	deleted map[string]bool
	// meta is the store's user metadata; metaDirty what the next
	// checkpoint writes (Meta, SetMeta).
	meta      map[string]string
	metaDirty map[string]string
	// Counters.
	tooLargeDrops uint64
	loadErrors    int
}

// maxContainers bounds the per-container context map; it is cleared when full.
const maxContainers = 16384

// New returns a profiler over store (nil: in-memory only), loading every
// stored profile. Records that fail to decode are skipped and logged.
func New(store *Store, cfg Config) *Profiler {
	cfg.fill()
	p := &Profiler{store: store, cfg: cfg, profiles: map[string]*Profile{}, infos: map[*event.Container]*ctrInfo{}, deleted: map[string]bool{}}
	p.ex = NewExtractor(cfg.Gen)
	if store != nil {
		n, errs := store.load(func(pr *Profile) { p.profiles[pr.Key] = pr })
		for _, err := range errs {
			cfg.Logger.Warn("profile record skipped", "db", store.path, "err", err)
		}
		p.loadErrors = len(errs)
		if m, err := store.loadMeta(); err != nil {
			cfg.Logger.Warn("profile store metadata unreadable", "db", store.path, "err", err)
		} else {
			p.meta = m
		}
		if n > 0 {
			cfg.Logger.Debug("profiles loaded", "db", store.path, "count", n)
		}
	}
	return p
}

// Config returns the effective configuration (defaults filled in).
func (p *Profiler) Config() Config { return p.cfg }

// KeyFor returns the profile key of a container: the image digest when
// known (as repo@sha256:…), else repository:tag, else the container id;
// host processes share the "host" profile.
func KeyFor(c *event.Container) string {
	switch {
	case c == nil || c.IsHost():
		return event.HostContainerID
	case c.ImageDigest != "":
		if c.ImageRepo != "" {
			return c.ImageRepo + "@" + c.ImageDigest
		}
		return c.ImageDigest
	case c.ImageRepo != "" && c.ImageTag != "":
		return c.ImageRepo + ":" + c.ImageTag
	case c.Image != "":
		return c.Image
	}
	return c.ID
}

func repoOf(c *event.Container) string {
	if c == nil || c.IsHost() {
		return ""
	}
	if c.ImageRepo != "" {
		return c.ImageRepo
	}
	img := c.Image
	if i := lastIndexAny(img, "@"); i >= 0 {
		img = img[:i]
	}
	if i := lastIndexAny(img, ":"); i >= 0 && lastIndexAny(img[i:], "/") < 0 {
		img = img[:i]
	}
	return img
}

func lastIndexAny(s, chars string) int {
	for i := len(s) - 1; i >= 0; i-- {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return i
			}
		}
	}
	return -1
}

// Session context lookups: how an exec session without a profile of its own is handled.
const (
	ctxView  = iota // score only: never create a profile
	ctxLearn        // learn mode: create the session's profile
	ctxAuto         // auto mode: create it while the image is still learning
)

// ctx returns the context of e's container and session (init tree or
// exec session), creating its profile as how says. Learn mode learns exec
// sessions into the exec-session profile; detect mode scores with it once
// it is established (see established), before with the image's profile
// (as before the split). Auto mode uses it once it exists (its categories
// learn until stable, as any), and starts it only while a category of the
// image's profile is still learning: an image that had no exec session
// while it learned treats the next one as the service's own behaviour,
// which its detecting categories score, instead of learning it into a new
// profile.
func (p *Profiler) ctx(e *event.Enriched, how int) *ctrState {
	c := e.Container
	ci := p.infos[c]
	if ci == nil {
		if len(p.infos) >= maxContainers {
			clear(p.infos)
		}
		ci = &ctrInfo{}
		p.infos[c] = ci
	}
	if !p.cfg.NoExecSessions && ci.isExec(e.Proc, c, e.Time) {
		if how == ctxLearn {
			return p.ctr(c, ci, true, e.Time, true)
		}
		pr := p.profiles[SessionKey(c, true)]
		if pr != nil && (how == ctxAuto || p.established(pr)) {
			// Auto mode: an exec-session profile started while the image
			// learned goes on learning (its own categories decide) until
			// it detects by itself.
			return p.ctr(c, ci, true, e.Time, false)
		}
		if how == ctxAuto {
			svc := p.profiles[SessionKey(c, false)]
			learning := svc == nil
			for cat := Category(0); svc != nil && cat < NumCategories; cat++ {
				learning = learning || !svc.State(cat).Ready()
			}
			if learning {
				return p.ctr(c, ci, true, e.Time, true)
			}
		}
	}
	return p.ctr(c, ci, false, e.Time, how != ctxView)
}

// established reports whether an exec-session profile has seen enough
// exec sessions to score them: at least MinWindowObs programs run (an
// exec probe every 20 s gives that in minutes). One kubectl exec while the
// image learned is no yardstick for the next: until then exec sessions are
// scored with the image's profile, as before the split.
func (p *Profiler) established(pr *Profile) bool {
	n := pr.Node(CatProcess, RootHash)
	return n != nil && n.N >= p.cfg.MinWindowObs
}

// imageProfile returns the image's profile of an exec-session context (nil
// for the init tree's): a file the image's containers create is the
// container's own whichever session handles it (nginx -s reload reading
// the pid file nginx wrote at start).
func (p *Profiler) imageProfile(cs *ctrState) *Profile {
	if !cs.exec {
		return nil
	}
	return p.profiles[cs.imageKey]
}

// ctr returns a container session's context, creating its profile when create.
func (p *Profiler) ctr(c *event.Container, ci *ctrInfo, exec bool, t int64, create bool) *ctrState {
	k := 0
	if exec {
		k = 1
	}
	if cs := ci.sessions[k]; cs != nil {
		return cs
	}
	key := SessionKey(c, exec)
	pr := p.profiles[key]
	if pr == nil {
		if !create {
			return nil
		}
		pr = p.createProfile(key, c, t)
	}
	start := t
	if c != nil && c.StartTime > 0 && c.StartTime <= t {
		start = c.StartTime
	}
	cs := &ctrState{prof: pr, start: start, info: ci, exec: exec}
	if exec {
		cs.imageKey = SessionKey(c, false)
	}
	ci.sessions[k] = cs
	return cs
}

func (p *Profiler) createProfile(key string, c *event.Container, t int64) *Profile {
	pr := newProfile(key)
	pr.Created, pr.Updated, pr.dirty = t, t, true
	if c != nil && !c.IsHost() {
		pr.Image, pr.Repo, pr.Tag, pr.Digest = c.Image, repoOf(c), c.ImageTag, c.ImageDigest
	}
	delete(p.deleted, key)
	if pr.Repo != "" {
		var parent *Profile
		for _, o := range p.profiles {
			if o.Repo == pr.Repo && IsExecKey(o.Key) == IsExecKey(key) && (parent == nil || o.Updated > parent.Updated) {
				parent = o
			}
		}
		if parent != nil {
			pr.inherit(parent, p.cfg.InheritDiscount)
			p.cfg.Logger.Info("profile inherits", "profile", key, "from", parent.Key, "discount", p.cfg.InheritDiscount)
		}
	}
	p.profiles[key] = pr
	return pr
}

// inherit copies parent's features with discounted counts (at least 1);
// every category restarts learning.
func (pr *Profile) inherit(parent *Profile, discount float64) {
	pr.InheritedFrom = parent.Key
	for c, pc := range parent.cats {
		cd := pr.cats[c]
		for h, v := range pc.collapsed {
			if cd.collapsed == nil {
				cd.collapsed = map[uint64]string{}
			}
			cd.collapsed[h] = v
		}
		for h, f := range pc.feats {
			n := uint64(float64(f.Count)*discount + 0.5)
			if n == 0 {
				n = 1
			}
			cd.add(f.Text, f.Levels, h, n, f.First, f.Last, true)
		}
	}
	pr.recount()
}

func (pr *Profile) recount() {
	pr.features = 0
	for _, cd := range pr.cats {
		pr.features += len(cd.feats)
	}
	pr.Version++
	pr.dirty = true
}

// extract returns e's features against cs's profile, with the
// container's own files and the image's profile in view. Under p.mu; the
// slice is the extractor's and valid until the next call.
func (p *Profiler) extract(e *event.Enriched, cs *ctrState) []Feature {
	p.ex.own, p.ex.imageProf = &cs.info.own, p.imageProfile(cs)
	feats := p.ex.extractFor(e, cs.prof)
	p.ex.own, p.ex.imageProf = nil, nil
	return feats
}

// counted counts an event of cs at time t and reports whether it falls in
// the container's warm-up (learned, not counted towards stability).
func (p *Profiler) counted(cs *ctrState, t int64) bool {
	cs.events++
	return cs.events <= p.cfg.WarmUpEvents && t-cs.start < int64(p.cfg.WarmUp)
}

// Learn adds e's features to its image's profile.
func (p *Profiler) Learn(e *event.Enriched) {
	if e == nil || e.Event == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := e.Time
	cs := p.ctx(e, ctxLearn)
	pr := cs.prof
	warm := p.counted(cs, t)
	feats := p.extract(e, cs)
	for i := range feats {
		p.learnFeature(pr, &feats[i], t, warm)
	}
}

func (p *Profiler) learnFeature(pr *Profile, f *Feature, t int64, warm bool) {
	cd := pr.cats[f.Cat]
	if pr.TooLarge && cd.feats[f.Hash] == nil {
		p.tooLargeDrops++
		return
	}
	s, isNew := cd.addFeature(f, t, warm)
	pr.Version++
	pr.dirty = true
	if t > pr.Updated {
		pr.Updated = t
	}
	if isNew {
		pr.features++
		if f.Cat == CatFile {
			rebuilt := cd.maybeCollapse(&p.cfg.Gen, string(f.Text), f.Levels[:f.Depth])
			if !p.cfg.Gen.NoTemplates && cd.mineTemplates(s.Text) {
				cd.collapseGen++
				cd.rebuild(&p.cfg.Gen)
				rebuilt = true
			}
			if rebuilt {
				pr.recount()
			}
		}
		if pr.features > p.cfg.MaxFeatures && !pr.TooLarge {
			pr.TooLarge = true
			p.cfg.Logger.Warn("profile too large: no new features are learned", "profile", pr.Key, "features", pr.features, "cap", p.cfg.MaxFeatures)
		}
	}
	if !warm {
		p.lifecycle(pr, cd, t, isNew)
	}
}

// lifecycle advances a category's sliding window and state, and (once per
// window bucket of event time) the states of the profile's other learning
// categories: a sparse category stabilises by the profile's activity, not
// only by its own events.
func (p *Profiler) lifecycle(pr *Profile, cd *catData, t int64, isNew bool) {
	if cd.postN == 0 {
		cd.postStart, cd.learnStart = t, t
	}
	cd.postN++
	if t > cd.postEnd {
		cd.postEnd = t
	}
	width := int64(p.cfg.Window) / windowBuckets
	if width <= 0 {
		width = 1
	}
	slot := (t / width) % windowBuckets
	b := &cd.window[slot]
	if bs := t - t%width; b.Start != bs {
		*b = bucket{Start: bs}
	}
	b.Obs++
	if isNew {
		b.New++
	}
	p.advance(pr, cd, t)
	if t-pr.sweptAt >= width {
		pr.sweptAt = t
		for _, o := range pr.cats {
			if o != cd {
				p.advance(pr, o, t)
			}
		}
	}
}

// windowCounts sums a category's window buckets younger than the window.
func (p *Profiler) windowCounts(cd *catData, t int64) (obs, nw uint64) {
	for _, w := range cd.window {
		if t-w.Start < int64(p.cfg.Window) {
			obs += w.Obs
			nw += w.New
		}
	}
	return obs, nw
}

// advance moves a learning category to stable or unstable at time t. The
// windowed unseen-mass estimate is below the bound when (a) the category
// had at least MinWindowObs observations in the window and new ÷
// observations ≤ UnseenBound, or (b) it had fewer (a sparse category: a
// daemon that never runs programs) and nothing new, while the profile had
// at least MinWindowObs observations in the window. Stable once below for
// MinStable; unstable when MaxLearn ends first.
func (p *Profiler) advance(pr *Profile, cd *catData, t int64) {
	if cd.state != StateLearning {
		return
	}
	if cd.learnStart == 0 {
		cd.learnStart = t
	}
	obs, nw := p.windowCounts(cd, t)
	below := false
	if obs >= p.cfg.MinWindowObs {
		below = float64(nw)/float64(obs) <= p.cfg.UnseenBound
	} else if nw == 0 {
		var all uint64
		for _, o := range pr.cats {
			n, _ := p.windowCounts(o, t)
			all += n
		}
		below = all >= p.cfg.MinWindowObs
	}
	if below {
		if cd.belowSince == 0 {
			cd.belowSince = t
		}
		if t-cd.belowSince >= int64(p.cfg.MinStable) {
			cd.state, cd.stableAt = StateStable, t
			pr.Version++
			pr.dirty = true
			p.cfg.Logger.Info("category stable", "profile", pr.Key, "category", categoryOf(pr, cd))
		}
	} else {
		cd.belowSince = 0
	}
	if cd.state == StateLearning && t-cd.learnStart >= int64(p.cfg.MaxLearn) {
		cd.state = StateUnstable
		pr.Version++
		pr.dirty = true
		p.cfg.Logger.Warn("category did not stabilise: marked unstable", "profile", pr.Key, "category", categoryOf(pr, cd))
	}
}

func categoryOf(pr *Profile, cd *catData) string {
	for i, c := range pr.cats {
		if c == cd {
			return Category(i).String()
		}
	}
	return "?"
}

// Finalize ends offline learning: every category of every profile whose
// post-warm-up unseen-mass estimate (singletons first seen after warm-up ÷
// observations after warm-up) is at or below the bound becomes detecting,
// the others unstable. Empty categories become detecting (anything there is
// new). With keepLearning nothing changes.
func (p *Profiler) Finalize(keepLearning bool) {
	if keepLearning {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.profiles {
		for c := range pr.cats {
			pr.SetState(Category(c), p.finalState(pr, Category(c)))
		}
	}
}

// finalState is the state Finalize gives a category: detecting when its
// post-warm-up singletons ÷ post-warm-up observations are within the
// bound; for a sparse category (fewer than MinWindowObs post-warm-up
// observations) when nothing it saw after warm-up was new and the profile
// had at least MinWindowObs post-warm-up observations (the offline form of
// advance's rule); unstable otherwise. Empty categories are detecting.
func (p *Profiler) finalState(pr *Profile, c Category) State {
	st := pr.Stats(c)
	if st.Observations == 0 {
		return StateDetecting
	}
	if st.PostObservations < p.cfg.MinWindowObs {
		var all uint64
		for _, cd := range pr.cats {
			all += cd.postN
		}
		if st.PostSingletons == 0 && all >= p.cfg.MinWindowObs {
			return StateDetecting
		}
		if st.PostObservations == 0 {
			if float64(st.Singletons)/float64(st.Observations) > p.cfg.UnseenBound {
				return StateUnstable
			}
			return StateDetecting
		}
	}
	if float64(st.PostSingletons)/float64(st.PostObservations) > p.cfg.UnseenBound {
		return StateUnstable
	}
	return StateDetecting
}

// Auto is auto mode's step: it learns e's features of the categories that
// are not ready (learning or unstable; the image's profile is created when
// absent) and calls fn under the lock with the profile and the features of
// ready categories (stable or detecting), to be scored. A ready category
// absorbs nothing: an attacker's novelty is not learned. It returns how
// many features were learned. fn must not retain ready.
func (p *Profiler) Auto(e *event.Enriched, fn func(pr *Profile, ready []Feature)) int {
	if e == nil || e.Event == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := e.Time
	cs := p.ctx(e, ctxAuto)
	pr := cs.prof
	warm := p.counted(cs, t)
	feats := p.extract(e, cs)
	n, learned := 0, 0
	for i := range feats {
		if pr.State(feats[i].Cat).Ready() {
			feats[n], feats[i] = feats[i], feats[n]
			n++
			continue
		}
		p.learnFeature(pr, &feats[i], t, warm)
		learned++
	}
	fn(pr, feats[:n])
	return learned
}

// View resolves e's profile (without creating one), extracts e's features
// against it and calls fn under the profiler's lock; pr is nil when the
// image has no profile. fn must not retain feats.
func (p *Profiler) View(e *event.Enriched, fn func(pr *Profile, feats []Feature)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.ctx(e, ctxView)
	if cs == nil {
		fn(nil, nil)
		return
	}
	feats := p.extract(e, cs)
	fn(cs.prof, feats)
}

// WithProfile calls fn with the profile of key (nil when absent) under the lock.
func (p *Profiler) WithProfile(key string, fn func(pr *Profile)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.profiles[key])
}

// ProfileSummary describes one profile for listings and the CLI.
type ProfileSummary struct {
	Key           string          `json:"key"`
	Image         string          `json:"image,omitempty"`
	Repo          string          `json:"repo,omitempty"`
	InheritedFrom string          `json:"inherited_from,omitempty"`
	TooLarge      bool            `json:"too_large"`
	Features      int             `json:"features"`
	Observations  uint64          `json:"observations"`
	SizeBytes     int             `json:"size_bytes"`
	Created       int64           `json:"created"`
	Updated       int64           `json:"updated"`
	Categories    []CategoryStats `json:"categories"`
}

// Profiles returns a summary of every profile, sorted by key.
func (p *Profiler) Profiles() []ProfileSummary {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProfileSummary, 0, len(p.profiles))
	for _, pr := range p.profiles {
		s := ProfileSummary{Key: pr.Key, Image: pr.Image, Repo: pr.Repo, InheritedFrom: pr.InheritedFrom,
			TooLarge: pr.TooLarge, Features: pr.features, Observations: pr.Total(),
			SizeBytes: len(encodeProfile(nil, pr)), Created: pr.Created, Updated: pr.Updated}
		for c := Category(0); c < NumCategories; c++ {
			s.Categories = append(s.Categories, pr.Stats(c))
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Keys returns the profile keys, sorted.
func (p *Profiler) Keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.profiles))
	for k := range p.profiles {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Reset forgets a profile (removed from the store at the next checkpoint).
// It reports whether the profile existed.
func (p *Profiler) Reset(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.profiles[key]; !ok {
		return false
	}
	delete(p.profiles, key)
	p.ex.clearCache() // cached paths are keyed by profile pointer
	for _, ci := range p.infos {
		for i, cs := range ci.sessions {
			if cs != nil && cs.prof.Key == key {
				ci.sessions[i] = nil
			}
		}
	}
	p.deleted[key] = true
	return true
}

// Dropped returns how many new features were not learned because their
// profile was too large.
func (p *Profiler) Dropped() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tooLargeDrops
}

// Checkpoint writes every changed profile (and deletions) to the store in
// one transaction. Profiles are encoded under the lock and written outside it.
func (p *Profiler) Checkpoint() error {
	if p.store == nil {
		return nil
	}
	p.ckMu.Lock()
	defer p.ckMu.Unlock()
	p.mu.Lock()
	var recs []record
	var dirty []*Profile
	for _, pr := range p.profiles {
		if pr.dirty {
			recs = append(recs, record{key: pr.Key, val: encodeProfile(nil, pr)})
			dirty = append(dirty, pr)
		}
	}
	var dels []string
	for k := range p.deleted {
		dels = append(dels, k)
	}
	for _, pr := range dirty {
		pr.dirty = false
	}
	clear(p.deleted)
	meta := p.metaDirty
	p.metaDirty = nil
	p.mu.Unlock()
	if len(recs) == 0 && len(dels) == 0 && len(meta) == 0 {
		return nil
	}
	if err := p.store.write(recs, dels, meta); err != nil {
		p.mu.Lock()
		for k, v := range meta {
			if _, newer := p.metaDirty[k]; !newer {
				if p.metaDirty == nil {
					p.metaDirty = map[string]string{}
				}
				p.metaDirty[k] = v
			}
		}
		for _, pr := range dirty {
			pr.dirty = true
		}
		for _, k := range dels {
			if p.profiles[k] == nil {
				p.deleted[k] = true
			}
		}
		p.mu.Unlock()
		return err
	}
	return nil
}

// Run checkpoints every CheckpointInterval until ctx is done, then once more.
func (p *Profiler) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := p.Checkpoint(); err != nil {
				p.cfg.Logger.Error("final profile checkpoint failed", "err", err)
			}
			return
		case <-t.C:
			if err := p.Checkpoint(); err != nil {
				p.cfg.Logger.Error("profile checkpoint failed", "err", err)
			}
		}
	}
}
