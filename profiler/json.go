package profiler

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// ExportFormat identifies driftwatch profile exports.
const ExportFormat = "driftwatch-profiles/v1"

// Export is the JSON document of `driftwatch profile export`.
type Export struct {
	Format   string        `json:"format"`
	Profiles []ProfileJSON `json:"profiles"`
}

// ProfileJSON is one profile in JSON.
type ProfileJSON struct {
	Key           string                  `json:"key"`
	Image         string                  `json:"image,omitempty"`
	Repo          string                  `json:"repo,omitempty"`
	Tag           string                  `json:"tag,omitempty"`
	Digest        string                  `json:"digest,omitempty"`
	InheritedFrom string                  `json:"inherited_from,omitempty"`
	Created       int64                   `json:"created"`
	Updated       int64                   `json:"updated"`
	TooLarge      bool                    `json:"too_large,omitempty"`
	Categories    map[string]CategoryJSON `json:"categories"`
}

// CategoryJSON is one category of a profile in JSON.
type CategoryJSON struct {
	State string `json:"state"`
	// Post-warm-up observations and their time range (calibration input).
	PostObservations uint64        `json:"post_observations,omitempty"`
	PostStart        int64         `json:"post_start,omitempty"`
	PostEnd          int64         `json:"post_end,omitempty"`
	Collapsed        []string      `json:"collapsed,omitempty"`
	Features         []FeatureJSON `json:"features"`
}

// FeatureJSON is one feature in JSON. Levels are the byte lengths of the
// feature text's back-off prefixes (the first is always 0: the category).
type FeatureJSON struct {
	Feature string   `json:"feature"`
	Levels  []uint16 `json:"levels"`
	Count   uint64   `json:"count"`
	First   int64    `json:"first"`
	Last    int64    `json:"last"`
	Warm    bool     `json:"warm,omitempty"`
}

func (pr *Profile) toJSON() ProfileJSON {
	j := ProfileJSON{Key: pr.Key, Image: pr.Image, Repo: pr.Repo, Tag: pr.Tag, Digest: pr.Digest,
		InheritedFrom: pr.InheritedFrom, Created: pr.Created, Updated: pr.Updated, TooLarge: pr.TooLarge,
		Categories: map[string]CategoryJSON{}}
	for c, cd := range pr.cats {
		cj := CategoryJSON{State: cd.state.String(), Features: []FeatureJSON{},
			PostObservations: cd.postN, PostStart: cd.postStart, PostEnd: cd.postEnd}
		for _, d := range cd.collapsed {
			cj.Collapsed = append(cj.Collapsed, d)
		}
		sort.Strings(cj.Collapsed)
		pr.EachFeature(Category(c), func(_ uint64, f *FeatureStat) {
			cj.Features = append(cj.Features, FeatureJSON{Feature: f.Text, Levels: f.Levels, Count: f.Count, First: f.First, Last: f.Last, Warm: f.Warm})
		})
		j.Categories[Category(c).String()] = cj
	}
	return j
}

// ExportJSON writes the profiles of keys (all when none) as JSON.
func (p *Profiler) ExportJSON(w io.Writer, keys ...string) error {
	p.mu.Lock()
	doc := Export{Format: ExportFormat}
	if len(keys) == 0 {
		for k := range p.profiles {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	for _, k := range keys {
		pr := p.profiles[k]
		if pr == nil {
			p.mu.Unlock()
			return fmt.Errorf("export: no profile %q", k)
		}
		doc.Profiles = append(doc.Profiles, pr.toJSON())
	}
	p.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// ImportJSON reads an export document and merges every profile into the
// profiler: counts add, first/last times widen, collapsed directories
// union; a profile that does not exist yet is created with the imported
// states. It returns the keys imported. Bad input is reported with the
// profile, category and feature index.
func (p *Profiler) ImportJSON(r io.Reader) ([]string, error) {
	var doc Export
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if doc.Format != ExportFormat {
		return nil, fmt.Errorf("import: format %q, want %q", doc.Format, ExportFormat)
	}
	// Validate everything before changing anything.
	built := make([]*Profile, 0, len(doc.Profiles))
	for i, pj := range doc.Profiles {
		pr, err := fromJSON(pj)
		if err != nil {
			return nil, fmt.Errorf("import: profiles[%d] (%q): %w", i, pj.Key, err)
		}
		built = append(built, pr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(built))
	for _, src := range built {
		if dst := p.profiles[src.Key]; dst != nil {
			dst.merge(src, &p.cfg.Gen)
		} else {
			src.dirty = true
			p.profiles[src.Key] = src
			delete(p.deleted, src.Key)
		}
		keys = append(keys, src.Key)
	}
	return keys, nil
}

func fromJSON(pj ProfileJSON) (*Profile, error) {
	if pj.Key == "" {
		return nil, fmt.Errorf("empty key")
	}
	pr := newProfile(pj.Key)
	pr.Image, pr.Repo, pr.Tag, pr.Digest, pr.InheritedFrom = pj.Image, pj.Repo, pj.Tag, pj.Digest, pj.InheritedFrom
	pr.Created, pr.Updated, pr.TooLarge = pj.Created, pj.Updated, pj.TooLarge
	for name, cj := range pj.Categories {
		c, ok := ParseCategory(name)
		if !ok {
			return nil, fmt.Errorf("unknown category %q", name)
		}
		cd := pr.cats[c]
		st, ok := ParseState(cj.State)
		if !ok {
			return nil, fmt.Errorf("category %s: unknown state %q", name, cj.State)
		}
		cd.state = st
		cd.postN, cd.postStart, cd.postEnd = cj.PostObservations, cj.PostStart, cj.PostEnd
		for _, d := range cj.Collapsed {
			if cd.collapsed == nil {
				cd.collapsed = map[uint64]string{}
			}
			cd.collapsed[hashString(RootHash, d)] = d
		}
		for i, f := range cj.Features {
			if err := checkLevels(f.Feature, f.Levels); err != nil || f.Count == 0 {
				if err == nil {
					err = fmt.Errorf("zero count")
				}
				return nil, fmt.Errorf("category %s: features[%d] (%q): %w", name, i, f.Feature, err)
			}
			cd.add(f.Feature, f.Levels, hashString(RootHash, f.Feature), f.Count, f.First, f.Last, f.Warm)
		}
	}
	pr.recount()
	return pr, nil
}

func checkLevels(text string, levels []uint16) error {
	if len(levels) == 0 || levels[0] != 0 {
		return fmt.Errorf("levels must start with 0")
	}
	if len(levels) > MaxLevels {
		return fmt.Errorf("%d levels exceed %d", len(levels), MaxLevels)
	}
	for i, l := range levels {
		if int(l) > len(text) || (i > 0 && l < levels[i-1]) {
			return fmt.Errorf("level %d out of order or beyond the text", l)
		}
	}
	return nil
}

// merge adds src's counts into pr (both profiles of the same image).
func (pr *Profile) merge(src *Profile, gen *GenConfig) {
	for c, sc := range src.cats {
		cd := pr.cats[c]
		newDirs := false
		for h, d := range sc.collapsed {
			if cd.collapsed == nil {
				cd.collapsed = map[uint64]string{}
			}
			if _, ok := cd.collapsed[h]; !ok {
				cd.collapsed[h] = d
				newDirs = true
			}
		}
		for h, f := range sc.feats {
			cd.add(f.Text, f.Levels, h, f.Count, f.First, f.Last, f.Warm)
		}
		if newDirs && Category(c) == CatFile {
			cd.collapseGen++
			cd.rebuild(gen)
		}
		if sc.postN > 0 {
			cd.postN += sc.postN
			if cd.postStart == 0 || sc.postStart < cd.postStart {
				cd.postStart = sc.postStart
			}
			if sc.postEnd > cd.postEnd {
				cd.postEnd = sc.postEnd
			}
		}
	}
	if src.Created != 0 && (pr.Created == 0 || src.Created < pr.Created) {
		pr.Created = src.Created
	}
	if src.Updated > pr.Updated {
		pr.Updated = src.Updated
	}
	pr.recount()
}
