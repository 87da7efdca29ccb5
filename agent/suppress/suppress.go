// Package suppress silences static-rule noise with learned profiles: in a
// container whose namespace is in detect mode, a static rule's alert is
// dropped when every feature of its event is known to a stable (or
// detecting) category of the image's profile, unless the rule's priority
// is at or above a floor (default Critical), the rule carries the
// never_suppress tag, or configuration says otherwise for the rule.
// Every suppression is counted per profile and rule; the first one of a
// rule in a profile is logged with the features that matched.
package suppress

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// NeverTag is the rule tag that forbids suppression.
const NeverTag = "never_suppress"

// Policy says which alerts may be suppressed.
type Policy struct {
	// Disabled turns suppression off.
	Disabled bool
	// Floor: alerts of this priority or more severe are never suppressed
	// (default Critical: Critical, Alert and Emergency always pass).
	Floor event.Priority
	// FloorSet marks Floor as configured (the zero value is Emergency).
	FloorSet bool
	// Rules overrides the policy per rule name: false never suppresses
	// the rule; true lets it be suppressed whatever its priority. The
	// never_suppress tag wins over both.
	Rules map[string]bool
}

// DefaultFloor is the default priority floor.
const DefaultFloor = event.PriorityCritical

func (p Policy) floor() event.Priority {
	if p.FloorSet {
		return p.Floor
	}
	return DefaultFloor
}

// Eligible reports whether the policy lets a's rule be suppressed at all.
func (p Policy) Eligible(a *event.Alert) bool {
	if p.Disabled || a == nil || a.Source == "internal" {
		return false
	}
	for _, t := range a.Tags {
		if t == NeverTag {
			return false
		}
	}
	if v, ok := p.Rules[a.Rule]; ok {
		return v
	}
	// Priorities run from Emergency (0) to Debug (7): "at or above the
	// floor" is a value <= floor.
	return a.Priority > p.floor()
}

// Entry is one rule's suppressions in one profile.
type Entry struct {
	Profile  string `json:"profile"`
	Image    string `json:"image,omitempty"`
	Rule     string `json:"rule"`
	Priority string `json:"priority"`
	Count    uint64 `json:"count"`
	First    int64  `json:"first"` // event time, ns
	Last     int64  `json:"last"`
	// Features are the profile features (category: text) that matched
	// the first suppressed alert.
	Features []string `json:"features"`
}

type key struct{ profile, rule string }

// Suppressor decides and counts suppressions. It is safe for concurrent use.
type Suppressor struct {
	prof *profiler.Profiler
	pol  Policy
	log  *slog.Logger
	// OnSuppress, when set, is called for every suppression (metrics).
	OnSuppress func(rule string, pri event.Priority)

	mu      sync.Mutex
	entries map[key]*Entry
	total   uint64
}

// New returns a Suppressor over prof's profiles; log may be nil.
func New(prof *profiler.Profiler, pol Policy, log *slog.Logger) *Suppressor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Suppressor{prof: prof, pol: pol, log: log, entries: map[key]*Entry{}}
}

// Policy returns the suppressor's policy.
func (s *Suppressor) Policy() Policy { return s.pol }

// Suppress reports whether the static-rule alert a, raised by e in a
// container in mode, is suppressed; suppressions are counted.
func (s *Suppressor) Suppress(a *event.Alert, e *event.Enriched, mode event.Mode) bool {
	if s == nil || mode != event.ModeDetect || e == nil || e.Event == nil || !s.pol.Eligible(a) {
		return false
	}
	var (
		known   bool
		prKey   string
		image   string
		matched []string
	)
	s.prof.View(e, func(pr *profiler.Profile, feats []profiler.Feature) {
		if pr == nil || len(feats) == 0 {
			return
		}
		for i := range feats {
			f := &feats[i]
			if !pr.State(f.Cat).Ready() || pr.Feature(f.Cat, f.Hash) == nil {
				return
			}
		}
		known, prKey, image = true, pr.Key, pr.Image
		s.mu.Lock()
		_, seen := s.entries[key{pr.Key, a.Rule}]
		s.mu.Unlock()
		if !seen {
			for i := range feats {
				matched = append(matched, feats[i].Cat.String()+": "+event.Escape(feats[i].Text))
			}
		}
	})
	if !known {
		return false
	}
	s.mu.Lock()
	k := key{prKey, a.Rule}
	en := s.entries[k]
	first := en == nil
	if first {
		en = &Entry{Profile: prKey, Image: image, Rule: a.Rule, Priority: a.Priority.String(), First: e.Time, Features: matched}
		s.entries[k] = en
	}
	en.Count++
	en.Last = e.Time
	s.total++
	s.mu.Unlock()
	if first {
		s.log.Info("static rule alert suppressed by the learned profile (logged once per rule and profile)",
			"rule", a.Rule, "priority", a.Priority.String(), "profile", prKey, "features", strings.Join(matched, "; "))
	}
	if s.OnSuppress != nil {
		s.OnSuppress(a.Rule, a.Priority)
	}
	return true
}

// Total returns the number of suppressed alerts.
func (s *Suppressor) Total() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Entries returns every (profile, rule) entry, sorted by profile then rule.
func (s *Suppressor) Entries() []Entry {
	s.mu.Lock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		c := *e
		c.Features = append([]string(nil), e.Features...)
		out = append(out, c)
	}
	s.mu.Unlock()
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].Profile != es[j].Profile {
			return es[i].Profile < es[j].Profile
		}
		return es[i].Rule < es[j].Rule
	})
}

// Restore adds entries (from a previous run's file) to the counts.
func (s *Suppressor) Restore(es []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		k := key{e.Profile, e.Rule}
		if old := s.entries[k]; old != nil {
			old.Count += e.Count
			old.First = min(old.First, e.First)
			old.Last = max(old.Last, e.Last)
			continue
		}
		c := e
		s.entries[k] = &c
		s.total += e.Count
	}
}

// FileFor is the suppression file kept beside a profile store.
func FileFor(storePath string) string { return storePath + ".suppressed.json" }

type fileDoc struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// Save writes the entries to path atomically (temp file and rename).
func (s *Suppressor) Save(path string) error {
	b, err := json.MarshalIndent(fileDoc{Version: 1, Entries: s.Entries()}, "", "  ")
	if err != nil {
		return fmt.Errorf("suppressions: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("suppressions: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("suppressions: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("suppressions: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("suppressions: %w", err)
	}
	return nil
}

// Load reads a suppression file; a missing file is no entries.
func Load(path string) ([]Entry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	var d fileDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("suppressions: %s: %w", path, err)
	}
	sortEntries(d.Entries)
	return d.Entries, nil
}
