// Package labels defines the ground truth of the eval harness: the suite
// manifest (which traces train and test each scenario) and the versioned
// labels sidecar of a test trace (attack windows in trace time and the
// attack's process subtree), plus the attribution rule that decides whether
// an alert or event belongs to an attack. docs/labels.md documents the
// format; this package is its reference implementation.
package labels

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// Version is the labels and manifest format version this package writes and
// the highest it reads.
const Version = 1

// DefaultGrace is how long after an attack window's end an alert is still
// attributed to it (alerts of slow detectors, processes lingering).
const DefaultGrace = 5 * time.Second

// Attack is one labelled attack in a trace.
type Attack struct {
	// Name says what the attack is ("reverse shell").
	Name string `json:"name"`
	// StartNs and EndNs bound the attack window, ns since the Unix epoch in
	// trace time (event.Event.Time).
	StartNs int64 `json:"start_ns"`
	EndNs   int64 `json:"end_ns"`
	// ContainerID is the container the attack ran in: a container id, "host",
	// or empty for "any container".
	ContainerID string `json:"container_id,omitempty"`
	// Pids are the root pids of the attack's process subtrees. Empty means
	// every process in ContainerID during the window is part of the attack.
	Pids []uint32 `json:"pids,omitempty"`
}

// Labels is the sidecar of one test trace.
type Labels struct {
	Version int `json:"version"`
	// Trace is the trace file the labels describe, relative to the sidecar.
	Trace   string   `json:"trace"`
	Attacks []Attack `json:"attacks"`
}

// Load reads and validates a labels sidecar.
func Load(path string) (*Labels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse decodes and validates a labels sidecar; name is used in errors.
func Parse(r io.Reader, name string) (*Labels, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var l Labels
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("labels %s: %w", name, err)
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("labels %s: %w", name, err)
	}
	return &l, nil
}

// Validate checks the version and every attack window.
func (l *Labels) Validate() error {
	if l.Version < 1 || l.Version > Version {
		return fmt.Errorf("field version: unsupported version %d (this build reads 1..%d)", l.Version, Version)
	}
	for i, a := range l.Attacks {
		if a.StartNs <= 0 {
			return fmt.Errorf("attacks[%d] (%q): field start_ns must be > 0, got %d", i, a.Name, a.StartNs)
		}
		if a.EndNs < a.StartNs {
			return fmt.Errorf("attacks[%d] (%q): field end_ns %d is before start_ns %d", i, a.Name, a.EndNs, a.StartNs)
		}
	}
	return nil
}

// Write stores l as indented JSON at path.
func (l *Labels) Write(path string) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// AttackTime reports whether t falls inside any attack window extended by
// grace; it ignores processes (LID-DS-style labelling by time).
func (l *Labels) AttackTime(t int64, grace time.Duration) bool {
	if l == nil {
		return false
	}
	for _, a := range l.Attacks {
		if t >= a.StartNs && t <= a.EndNs+int64(grace) {
			return true
		}
	}
	return false
}

// Attribute returns the index of the attack an event or alert belongs to, or
// -1. t is the event time, containerID its container ("host" for the host),
// pid its process and proc the enriched process record (nil when unknown;
// its Parent chain is walked to find an attack root pid). An attack matches
// when t is inside [StartNs, EndNs+grace], its ContainerID is empty or
// equal, and either its Pids is empty or pid / an ancestor is listed.
func (l *Labels) Attribute(t int64, containerID string, pid uint32, proc *event.Process, grace time.Duration) int {
	if l == nil {
		return -1
	}
	for i, a := range l.Attacks {
		if t < a.StartNs || t > a.EndNs+int64(grace) {
			continue
		}
		if a.ContainerID != "" && containerID != "" && a.ContainerID != containerID {
			continue
		}
		if len(a.Pids) == 0 || inSubtree(a.Pids, pid, proc) {
			return i
		}
	}
	return -1
}

// inSubtree reports whether pid, or any ancestor of proc, is one of roots.
func inSubtree(roots []uint32, pid uint32, proc *event.Process) bool {
	if slices.Contains(roots, pid) {
		return true
	}
	// Bound the walk: a corrupt table must not loop forever.
	for p, n := proc, 0; p != nil && n < 4096; p, n = p.Parent, n+1 {
		if slices.Contains(roots, p.Pid) {
			return true
		}
	}
	return false
}

// Scenario kinds.
const (
	KindAttack = "attack"
	KindBenign = "benign"
)

// Scenario is one entry of a suite manifest. Paths are relative to the
// suite directory.
type Scenario struct {
	Name     string   `json:"name"`
	Workload string   `json:"workload"`
	Kind     string   `json:"kind"`
	Train    []string `json:"train"`
	Test     string   `json:"test"`
	Labels   string   `json:"labels,omitempty"`
	// Split is "dev" (generalisation, thresholds and rules may be tuned on
	// it) or "held-out" (only reported); empty for suites without a split.
	Split string `json:"split,omitempty"`
}

// Manifest is a suite's manifest.json.
type Manifest struct {
	Version   int        `json:"version"`
	Name      string     `json:"name"`
	Scenarios []Scenario `json:"scenarios"`
	// Dir is the suite directory (not serialised); paths resolve against it.
	Dir string `json:"-"`
}

// ManifestFile is the manifest's file name inside a suite directory.
const ManifestFile = "manifest.json"

// LoadManifest reads and validates dir/manifest.json.
func LoadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	m.Dir = dir
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return &m, nil
}

// Validate checks version, names, kinds and that paths stay inside the suite.
func (m *Manifest) Validate() error {
	if m.Version < 1 || m.Version > Version {
		return fmt.Errorf("field version: unsupported version %d (this build reads 1..%d)", m.Version, Version)
	}
	if len(m.Scenarios) == 0 {
		return errors.New("field scenarios: empty")
	}
	seen := map[string]bool{}
	for i, s := range m.Scenarios {
		where := fmt.Sprintf("scenarios[%d] (%q)", i, s.Name)
		if s.Name == "" {
			return fmt.Errorf("%s: field name is empty", where)
		}
		if seen[s.Name] {
			return fmt.Errorf("%s: duplicate name", where)
		}
		seen[s.Name] = true
		if s.Kind != KindAttack && s.Kind != KindBenign {
			return fmt.Errorf("%s: field kind must be %q or %q, got %q", where, KindAttack, KindBenign, s.Kind)
		}
		if s.Test == "" {
			return fmt.Errorf("%s: field test is empty", where)
		}
		if s.Kind == KindAttack && s.Labels == "" {
			return fmt.Errorf("%s: field labels is required for an attack scenario", where)
		}
		for _, p := range append([]string{s.Test, s.Labels}, s.Train...) {
			if p != "" && !filepath.IsLocal(p) {
				return fmt.Errorf("%s: path %q must be relative and stay inside the suite", where, p)
			}
		}
	}
	return nil
}

// Path resolves a manifest-relative path.
func (m *Manifest) Path(rel string) string { return filepath.Join(m.Dir, filepath.FromSlash(rel)) }

// LoadLabels loads the scenario's labels; a benign scenario without a labels
// file gets empty labels. An attack scenario whose labels list no attack is
// an error.
func (m *Manifest) LoadLabels(s Scenario) (*Labels, error) {
	if s.Labels == "" {
		return &Labels{Version: Version, Trace: s.Test}, nil
	}
	l, err := Load(m.Path(s.Labels))
	if err != nil {
		return nil, err
	}
	if s.Kind == KindAttack && len(l.Attacks) == 0 {
		return nil, fmt.Errorf("scenario %q: labels %s list no attack", s.Name, s.Labels)
	}
	if s.Kind == KindBenign && len(l.Attacks) != 0 {
		return nil, fmt.Errorf("scenario %q: benign but labels %s list %d attacks", s.Name, s.Labels, len(l.Attacks))
	}
	return l, nil
}

// IsManifestDir reports whether dir holds a manifest.json.
func IsManifestDir(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, ManifestFile))
	return err == nil && !st.IsDir()
}

// String summarises the labels for logs.
func (l *Labels) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "labels v%d %s:", l.Version, event.EscapeString(l.Trace))
	for _, a := range l.Attacks {
		fmt.Fprintf(&b, " [%s %d..%d]", event.EscapeString(a.Name), a.StartNs, a.EndNs)
	}
	return b.String()
}
