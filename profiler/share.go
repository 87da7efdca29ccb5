package profiler

import "sort"

// This file holds the small API that cluster-wide profile sharing
// (agent/cluster) needs: snapshots of the local profiles as JSON, building
// and merging detached profiles, and installing a profile built elsewhere
// into a profiler that scores with it.

// JSON returns the profile as its export document entry (features in text
// order, so equal profiles give equal documents).
func (pr *Profile) JSON() ProfileJSON { return pr.toJSON() }

// ProfileFromJSON builds a detached profile from an export entry,
// validating it like ImportJSON does.
func ProfileFromJSON(pj ProfileJSON) (*Profile, error) { return fromJSON(pj) }

// NewDetachedProfile returns an empty profile of key that belongs to no
// profiler (a merge target).
func NewDetachedProfile(key string) *Profile { return newProfile(key) }

// Merge adds src's counts into pr the way ImportJSON merges (counts add,
// first/last times widen, collapsed directories union and the file
// category is re-generalised with them). States are left unchanged.
func (pr *Profile) Merge(src *Profile, gen GenConfig) {
	gen.fill()
	pr.merge(src, &gen)
}

// Snapshot returns the JSON form of every profile (or of keys), sorted by
// key, taken under the profiler's lock.
func (p *Profiler) Snapshot(keys ...string) []ProfileJSON {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(keys) == 0 {
		for k := range p.profiles {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]ProfileJSON, 0, len(keys))
	for _, k := range keys {
		if pr := p.profiles[k]; pr != nil {
			out = append(out, pr.toJSON())
		}
	}
	return out
}

// Install replaces (or adds) the profile of pr.Key with pr's content; pr
// must be detached (built by ProfileFromJSON) and is not used afterwards.
// An existing profile is updated in place with a higher Version, so
// whatever holds it (containers bound to it, the model's per-profile
// calibration) stays bounded and sees the change. It is meant for
// profilers without a store that only score (the cluster-wide merged
// profiles).
func (p *Profiler) Install(pr *Profile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr.recount()
	old := p.profiles[pr.Key]
	if old == nil {
		p.profiles[pr.Key] = pr
		return
	}
	pr.Version = old.Version + 1
	*old = *pr
	p.ex.clearCache() // cached paths depend on the collapsed directories
}

// Has reports whether a profile of key exists.
func (p *Profiler) Has(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.profiles[key] != nil
}

// Meta returns a metadata value kept in the store beside the profiles
// ("" when unset).
func (p *Profiler) Meta(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.metaDirty[key]; ok {
		return v
	}
	return p.meta[key]
}

// SetMeta sets a metadata value; the next Checkpoint writes it in the same
// transaction as the profiles changed before it, so both survive a crash
// together or not at all.
func (p *Profiler) SetMeta(key, val string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.meta == nil {
		p.meta = map[string]string{}
	}
	if p.metaDirty == nil {
		p.metaDirty = map[string]string{}
	}
	p.meta[key] = val
	p.metaDirty[key] = val
}
