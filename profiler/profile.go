package profiler

import (
	"sort"
	"strings"
)

// State is a category's learning lifecycle state.
type State uint8

const (
	// StateLearning: still collecting; alert thresholds carry a margin.
	StateLearning State = iota
	// StateStable: the unseen-mass estimate stayed below the bound for the
	// minimum time; ready to detect, still learning in learn mode.
	StateStable
	// StateDetecting: complete (finalised offline, or stable and scored in
	// detect mode).
	StateDetecting
	// StateUnstable: the maximum learning window ended without stabilising;
	// alert thresholds carry a margin and the state is reported.
	StateUnstable
)

var stateNames = [...]string{"learning", "stable", "detecting", "unstable"}

// String returns the state's name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// ParseState parses a state name.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// Ready reports whether the category is ready to detect (no threshold margin).
func (s State) Ready() bool { return s == StateStable || s == StateDetecting }

// FeatureStat is what a profile knows about one generalised feature.
type FeatureStat struct {
	Text  string
	Count uint64
	First int64 // ns since epoch (event time)
	Last  int64
	// Warm is true when the feature was first seen during a container's
	// warm-up (it then does not count towards stability or calibration).
	Warm bool
	// Levels are the text prefix lengths of the feature's chain nodes.
	Levels []uint16

	// Cache and CacheVer let package model memoise the feature's score
	// while the profile does not change.
	Cache    float64
	CacheVer uint64
}

// NodeStat are the counts of one back-off node (a category root, a
// directory, an executable, a peer address ...).
type NodeStat struct {
	N  uint64 // observations at or below the node
	N1 uint64 // children (direct sub-nodes or features) seen exactly once
	K  uint64 // distinct children
}

// windowBuckets is the number of buckets of the sliding Good–Turing window.
const windowBuckets = 8

type bucket struct {
	Start    int64
	Obs, New uint64
}

type catData struct {
	feats map[uint64]*FeatureStat
	nodes map[uint64]*NodeStat
	// collapsed holds the file category's collapsed directories (text
	// ending in '/') and mined name templates ("/data/temp-<id>.rdb"),
	// hash of the text → text.
	collapsed map[uint64]string
	// tmplSeen indexes the names seen per directory and template: template
	// hash → hash of the first name (built lazily from the features).
	tmplSeen map[uint64]uint64
	// collapseGen changes whenever collapsed does (extractor cache key).
	collapseGen uint64

	state      State
	learnStart int64 // first post-warm-up observation
	belowSince int64 // start of the current below-bound run, 0 when none
	stableAt   int64
	postN      uint64 // post-warm-up observations
	postStart  int64
	postEnd    int64
	window     [windowBuckets]bucket
}

func newCat() *catData {
	return &catData{feats: map[uint64]*FeatureStat{}, nodes: map[uint64]*NodeStat{RootHash: {}}}
}

// Profile is the learned behaviour of one image.
type Profile struct {
	Key           string
	Image         string
	Repo          string
	Tag           string
	Digest        string
	InheritedFrom string
	Created       int64
	Updated       int64 // last learned event time
	TooLarge      bool
	// Version changes whenever counts or states change (model caches).
	Version uint64

	cats     [NumCategories]*catData
	features int
	dirty    bool
	sweptAt  int64 // event time of the last advance of every category
}

func newProfile(key string) *Profile {
	p := &Profile{Key: key}
	for i := range p.cats {
		p.cats[i] = newCat()
	}
	return p
}

// Feature returns the stat of a feature by hash, nil when unseen.
func (p *Profile) Feature(c Category, h uint64) *FeatureStat { return p.cats[c].feats[h] }

// Node returns a back-off node's counts, nil when unseen.
func (p *Profile) Node(c Category, h uint64) *NodeStat { return p.cats[c].nodes[h] }

// Collapsed returns the file category's collapsed directories (hash → text);
// pass it to Extractor.Extract.
func (p *Profile) Collapsed() map[uint64]string { return p.cats[CatFile].collapsed }

// State returns a category's lifecycle state.
func (p *Profile) State(c Category) State { return p.cats[c].state }

// SetState changes a category's state (model marks stable categories
// detecting when first scored).
func (p *Profile) SetState(c Category, s State) {
	if p.cats[c].state != s {
		p.cats[c].state = s
		p.dirty = true
		p.Version++
	}
}

// Total returns the observations over all categories.
func (p *Profile) Total() uint64 {
	var n uint64
	for _, c := range p.cats {
		n += c.nodes[RootHash].N
	}
	return n
}

// NumFeatures returns the number of distinct features.
func (p *Profile) NumFeatures() int { return p.features }

// EachFeature calls fn for every feature of a category in text order.
func (p *Profile) EachFeature(c Category, fn func(h uint64, f *FeatureStat)) {
	cd := p.cats[c]
	keys := make([]uint64, 0, len(cd.feats))
	for h := range cd.feats {
		keys = append(keys, h)
	}
	sort.Slice(keys, func(i, j int) bool { return cd.feats[keys[i]].Text < cd.feats[keys[j]].Text })
	for _, h := range keys {
		fn(h, cd.feats[h])
	}
}

// CategoryStats summarises one category.
type CategoryStats struct {
	Category     Category
	State        State
	Observations uint64
	Distinct     int
	Singletons   uint64
	// UnseenMass is the Good–Turing estimate of the probability that the
	// next observation is new: singletons / observations (smoothed, in [0,1]).
	UnseenMass float64
	// WindowUnseen is the same estimate over the sliding window (new
	// features ÷ observations), -1 when the window is empty.
	WindowUnseen float64
	// PostObservations / PostSingletons count observations after warm-up
	// and features first seen after warm-up and seen once; PostStart and
	// PostEnd bound their event times (ns). Used for calibration.
	PostObservations uint64
	PostSingletons   uint64
	PostStart        int64
	PostEnd          int64
	LearnStart       int64
	StableAt         int64
}

// Stats returns a category's statistics.
func (p *Profile) Stats(c Category) CategoryStats {
	cd := p.cats[c]
	root := cd.nodes[RootHash]
	s := CategoryStats{
		Category: c, State: cd.state, Observations: root.N, Distinct: len(cd.feats),
		PostObservations: cd.postN, PostStart: cd.postStart, PostEnd: cd.postEnd,
		LearnStart: cd.learnStart, StableAt: cd.stableAt, WindowUnseen: -1,
	}
	for _, f := range cd.feats {
		if f.Count == 1 {
			s.Singletons++
			if !f.Warm {
				s.PostSingletons++
			}
		}
	}
	s.UnseenMass = UnseenMass(s.Singletons, s.Observations)
	var obs, nw uint64
	for _, b := range cd.window {
		obs += b.Obs
		nw += b.New
	}
	if obs > 0 {
		s.WindowUnseen = float64(nw) / float64(obs)
	}
	return s
}

// UnseenMass is the smoothed Good–Turing probability that the next
// observation is new: (n1 + ½) / (n + 1). It is always in (0, 1] because
// n1 ≤ n.
func UnseenMass(n1, n uint64) float64 {
	if n1 > n {
		n1 = n
	}
	return (float64(n1) + 0.5) / (float64(n) + 1)
}

// add adds c observations of a feature (text, levels) at time t. It creates
// the feature and its chain nodes as needed and keeps N, N1 and K of every
// node on the chain exact. It returns the stat and whether it was new.
func (cd *catData) add(text string, levels []uint16, h uint64, c uint64, first, last int64, warm bool) (*FeatureStat, bool) {
	f := cd.feats[h]
	isNew := f == nil
	if isNew {
		f = &FeatureStat{Text: text, Levels: append([]uint16(nil), levels...), First: first, Last: last, Warm: warm}
		cd.feats[h] = f
	} else {
		if first < f.First || f.First == 0 {
			f.First = first
		}
		if last > f.Last {
			f.Last = last
		}
		f.Warm = f.Warm && warm
	}
	// Walk from the leaf upwards: the child's old count decides N1/K of its parent.
	childOld := f.Count
	f.Count += c
	for i := len(levels) - 1; i >= 0; i-- {
		nh := hashString(RootHash, text[:levels[i]])
		n := cd.nodes[nh]
		if n == nil {
			n = &NodeStat{}
			cd.nodes[nh] = n
		}
		bump(n, childOld, c)
		childOld = n.N
		n.N += c
	}
	return f, isNew
}

// bump updates a parent's singleton and distinct counts for a child whose
// count goes from old to old+c.
func bump(n *NodeStat, old, c uint64) {
	if old == 0 {
		n.K++
	}
	if old == 1 {
		n.N1--
	}
	if old+c == 1 {
		n.N1++
	}
}

// addFeature is add for an extracted feature.
func (cd *catData) addFeature(f *Feature, t int64, warm bool) (*FeatureStat, bool) {
	if s := cd.feats[f.Hash]; s != nil {
		// Fast path: known feature, walk the chain by precomputed hashes.
		childOld := s.Count
		s.Count++
		if t > s.Last {
			s.Last = t
		}
		for i := f.Depth - 1; i >= 0; i-- {
			n := cd.nodes[f.Chain[i]]
			bump(n, childOld, 1)
			childOld = n.N
			n.N++
		}
		return s, false
	}
	return cd.add(string(f.Text), f.Levels[:f.Depth], f.Hash, 1, t, t, warm)
}

// rebuild re-generalises every feature of the file category with the
// current collapsed set, merging features that now coincide.
func (cd *catData) rebuild(gen *GenConfig) {
	old := cd.feats
	cd.feats = map[uint64]*FeatureStat{}
	cd.nodes = map[uint64]*NodeStat{RootHash: {}}
	x := &Extractor{gen: gen, dirfd: -1}
	for _, f := range old {
		path, access := splitFileText(f.Text)
		x.buf, x.n = x.buf[:0], 0
		nf := x.begin(CatFile)
		x.buf = gen.appendPath(x.buf, nf, &x.scratch, []byte(path), nil, cd.collapsed)
		x.buf = append(x.buf, " ["...)
		x.buf = append(x.buf, access...)
		x.buf = append(x.buf, ']')
		x.finish(nf)
		cd.add(string(nf.Text), nf.Levels[:nf.Depth], nf.Hash, f.Count, f.First, f.Last, f.Warm)
	}
}

// splitFileText splits "path [access]".
func splitFileText(s string) (path, access string) {
	if i := strings.LastIndex(s, " ["); i >= 0 && strings.HasSuffix(s, "]") {
		return s[:i], s[i+2 : len(s)-1]
	}
	return s, AccessRead
}

// mineTemplates indexes the names of a new file feature's path per
// directory and template; when a directory has received a second,
// different name of a template, the template is learned (added to
// collapsed). It reports whether a template was learned (the category must
// then be rebuilt).
func (cd *catData) mineTemplates(text string) bool {
	if cd.tmplSeen == nil {
		cd.tmplSeen = map[uint64]uint64{}
		for _, f := range cd.feats {
			if f.Text != text {
				cd.indexNames(f.Text)
			}
		}
	}
	return cd.indexNames(text)
}

func (cd *catData) indexNames(text string) bool {
	path, access := splitFileText(text)
	created := access == AccessCreate
	learned := false
	h := RootHash
	var buf [128]byte
	for i := 0; i < len(path); {
		if path[i] != '/' {
			return learned
		}
		dirH := hashString(h, "/")
		j := i + 1
		for j < len(path) && path[j] != '/' {
			j++
		}
		comp := path[i+1 : j]
		if sk, ok := AppendSkeleton(buf[:0], sbytes(comp)); ok {
			key := hashBytes(dirH, sk)
			if _, known := cd.collapsed[key]; !known {
				lit := hashString(RootHash, comp)
				// A name the container created with a number in it was
				// generated by it (a pid, a sequence number, a key): its
				// template is learned at once. Other names need a second,
				// different name of the template.
				generated := created && j == len(path)
				if first, seen := cd.tmplSeen[key]; !seen && !generated {
					cd.tmplSeen[key] = lit
				} else if generated || first != lit || string(sk) == comp {
					if cd.collapsed == nil {
						cd.collapsed = map[uint64]string{}
					}
					cd.collapsed[key] = path[:i+1] + string(sk)
					learned = true
				}
			}
		}
		h = hashString(dirH, comp)
		i = j
	}
	return learned
}

// maybeCollapse collapses directories on f's chain whose distinct children
// exceed their threshold. It reports whether the category was rebuilt.
func (cd *catData) maybeCollapse(gen *GenConfig, text string, levels []uint16) bool {
	changed := false
	for _, l := range levels {
		if l == 0 || text[l-1] != '/' {
			continue
		}
		dir := text[:l]
		h := hashString(RootHash, dir)
		n := cd.nodes[h]
		th := gen.threshold(dir)
		if n == nil || th <= 0 || n.K <= uint64(th) {
			continue
		}
		if cd.collapsed == nil {
			cd.collapsed = map[uint64]string{}
		}
		if _, ok := cd.collapsed[h]; !ok {
			cd.collapsed[h] = dir
			changed = true
		}
	}
	if changed {
		cd.collapseGen++
		cd.rebuild(gen)
	}
	return changed
}
