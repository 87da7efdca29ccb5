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
	// AnyRule drops the requirement that the rule raised an alert in a
	// container of the image while the image was being learned. With it
	// (the default) only noise the image made during learning is
	// silenced: on datasets/containers-v1 an exfiltration (tar | nc) has
	// the same profile features as the worker's nc health check, and only
	// the rule that never fired in learning ("Archive sent with network
	// tool") still reports it.
	AnyRule bool
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
	learned map[key]bool // (profile, rule) alerts seen in learn mode
	total   uint64
}

// New returns a Suppressor over prof's profiles; log may be nil.
func New(prof *profiler.Profiler, pol Policy, log *slog.Logger) *Suppressor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Suppressor{prof: prof, pol: pol, log: log, entries: map[key]*Entry{}, learned: map[key]bool{}}
}

// Policy returns the suppressor's policy.
func (s *Suppressor) Policy() Policy { return s.pol }

// Suppress reports whether the static-rule alert a, raised by e in a
// container in mode, is suppressed; suppressions are counted.
//
// In learn mode it records that the rule fired for the image (the
// learned-noise requirement, see Policy.AnyRule) and suppresses nothing;
// in auto mode it does so while the event's context is still being
// learned, and judges the alert as in detect mode once it is known.
func (s *Suppressor) Suppress(a *event.Alert, e *event.Enriched, mode event.Mode) bool {
	if s == nil || a == nil || e == nil || e.Event == nil {
		return false
	}
	if mode == event.ModeLearn && e.Container != nil && !e.Container.IsHost() {
		k := key{profiler.KeyFor(e.Container), a.Rule}
		s.mu.Lock()
		s.learned[k] = true
		s.mu.Unlock()
		return false
	}
	if mode == event.ModeAuto && e.Container != nil && !e.Container.IsHost() {
		// Auto mode learns per category: while the event's context is not
		// yet all known to stable categories the image is still learning
		// it, so the rule is noted as learned noise (as in learn mode);
		// once it is, the alert is judged as in detect mode. A detecting
		// category absorbs no novelty in auto mode, so an attacker's new
		// behaviour never becomes known context.
		if known, _, _, _ := s.knownContext(e, false); !known {
			k := key{profiler.KeyFor(e.Container), a.Rule}
			s.mu.Lock()
			s.learned[k] = true
			s.mu.Unlock()
			return false
		}
	} else if mode != event.ModeDetect {
		return false
	}
	if !s.pol.Eligible(a) {
		return false
	}
	s.mu.Lock()
	_, seen := s.entries[key{profileKeyHint(e), a.Rule}]
	learned := s.learned[key{profileKeyHint(e), a.Rule}]
	s.mu.Unlock()
	if !learned && !s.pol.AnyRule {
		return false
	}
	known, prKey, image, matched := s.knownContext(e, !seen)
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

// profileKeyHint is only used to skip collecting feature texts for the
// log once a rule was logged; a wrong hint just collects them again.
func profileKeyHint(e *event.Enriched) string {
	if e.Container == nil {
		return ""
	}
	return profiler.KeyFor(e.Container)
}

// knownContext reports whether every feature of e's context is known to a
// stable or detecting category of e's profile. The context is the event's
// own features plus those of the process that raised it and of its parent
// (when in the same container), as the profile has them for their execs
// (program, argument shape, parent edge): a rule's condition often looks
// at the process and its parent's command line (proc.pcmdline), and many
// events (dup2, for one) carry no feature of their own. collect returns
// the feature texts for the log.
func (s *Suppressor) knownContext(e *event.Enriched, collect bool) (known bool, prKey, image string, texts []string) {
	views := [3]*event.Enriched{e}
	n := 1
	if p := e.Proc; p != nil {
		// A forked child that did not exec runs its parent's program: its
		// lineage is the parent's.
		for p.Parent != nil && p.Parent.Container == p.Container && p.ExecTime == p.Parent.ExecTime && p.Exe == p.Parent.Exe {
			p = p.Parent
		}
		views[n] = execOf(p, e)
		n++
		if par := p.Parent; par != nil && par.Container == p.Container {
			views[n] = execOf(par, e)
			n++
		}
	}
	total := 0
	for _, v := range views[:n] {
		ok := false
		s.prof.View(v, func(pr *profiler.Profile, feats []profiler.Feature) {
			if pr == nil {
				return
			}
			for i := range feats {
				f := &feats[i]
				if !pr.State(f.Cat).Ready() || pr.Feature(f.Cat, f.Hash) == nil {
					return
				}
			}
			ok, prKey, image = true, pr.Key, pr.Image
			total += len(feats)
			if collect {
				for i := range feats {
					texts = append(texts, feats[i].Cat.String()+": "+event.Escape(feats[i].Text))
				}
			}
		})
		if !ok {
			return false, "", "", nil
		}
	}
	return total > 0, prKey, image, texts
}

// execOf is a synthetic exec event of p, as the profile learned it when p
// started (its exe, argv and parent), at e's time and in e's container.
func execOf(p *event.Process, e *event.Enriched) *event.Enriched {
	ev := &event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Time: e.Event.Time, Pid: p.Pid, Tid: p.Pid,
		Exe: []byte(p.Exe), Argv: []byte(strings.Join(p.Args, "\x00"))}
	return &event.Enriched{Event: ev, Proc: p, Container: e.Container, Hostname: e.Hostname}
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
	// Learned lists the rules that fired while each profile was learned.
	Learned []LearnedRule `json:"learned,omitempty"`
}

// LearnedRule is a rule that raised an alert while its image was learned.
type LearnedRule struct {
	Profile string `json:"profile"`
	Rule    string `json:"rule"`
}

// Learned returns the (profile, rule) pairs seen in learn mode, sorted.
func (s *Suppressor) Learned() []LearnedRule {
	s.mu.Lock()
	out := make([]LearnedRule, 0, len(s.learned))
	for k := range s.learned {
		out = append(out, LearnedRule{Profile: k.profile, Rule: k.rule})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Profile != out[j].Profile {
			return out[i].Profile < out[j].Profile
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// RestoreLearned adds learned (profile, rule) pairs from a previous run.
func (s *Suppressor) RestoreLearned(ls []LearnedRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range ls {
		s.learned[key{l.Profile, l.Rule}] = true
	}
}

// Save writes the entries to path atomically (temp file and rename).
func (s *Suppressor) Save(path string) error {
	b, err := json.MarshalIndent(fileDoc{Version: 1, Entries: s.Entries(), Learned: s.Learned()}, "", "  ")
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

// Load reads a suppression file's entries; a missing file is no entries.
func Load(path string) ([]Entry, error) {
	d, err := loadDoc(path)
	return d.Entries, err
}

// LoadInto restores a suppression file (entries and learned rules) into
// s; a missing file is nothing to restore.
func (s *Suppressor) LoadInto(path string) error {
	d, err := loadDoc(path)
	if err != nil {
		return err
	}
	s.Restore(d.Entries)
	s.RestoreLearned(d.Learned)
	return nil
}

func loadDoc(path string) (fileDoc, error) {
	var d fileDoc
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("suppressions: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return fileDoc{}, fmt.Errorf("suppressions: %s: %w", path, err)
	}
	sortEntries(d.Entries)
	return d, nil
}
