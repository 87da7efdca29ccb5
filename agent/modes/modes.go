// Package modes decides, per container, whether learned profiles are off,
// learning or detecting. The decision combines the host mode, namespace
// labels from the cluster, namespace modes from the configuration and the
// default mode. Lookups are lock-free (one atomic pointer load and a map
// read), so the pipeline can ask on every event and a change applies at once.
package modes

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/driftwatch/driftwatch/event"
)

// Table holds the current modes. The zero value is not usable; use New.
type Table struct {
	mu  sync.Mutex // serialises writers
	cur atomic.Pointer[state]
}

type state struct {
	def, host event.Mode
	config    map[string]event.Mode // from the configuration file
	cluster   map[string]event.Mode // from namespace labels ("" = unlabelled)
}

// New returns a table with the default and host modes and the configured
// namespace modes.
func New(def, host event.Mode, config map[string]event.Mode) *Table {
	t := &Table{}
	t.cur.Store(&state{def: def, host: host, config: maps.Clone(config), cluster: map[string]event.Mode{}})
	return t
}

// Mode returns the container's mode: the host mode for host processes; for
// containers the namespace label, else the configured namespace mode, else
// the default.
func (t *Table) Mode(c *event.Container) event.Mode {
	s := t.cur.Load()
	if c.IsHost() {
		return s.host
	}
	return s.forNamespace(c.Namespace)
}

func (s *state) forNamespace(ns string) event.Mode {
	if m := s.cluster[ns]; m != "" {
		return m
	}
	if m, ok := s.config[ns]; ok {
		return m
	}
	return s.def
}

// NamespaceMode returns the mode of containers in namespace ns.
func (t *Table) NamespaceMode(ns string) event.Mode { return t.cur.Load().forNamespace(ns) }

// SetConfig replaces the configured default, host and namespace modes (a
// configuration reload).
func (t *Table) SetConfig(def, host event.Mode, config map[string]event.Mode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Load()
	t.cur.Store(&state{def: def, host: host, config: maps.Clone(config), cluster: old.cluster})
}

// SetCluster replaces the namespaces known from the cluster: every namespace
// with its label's mode, "" when unlabelled (or the label is invalid).
func (t *Table) SetCluster(namespaces map[string]event.Mode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Load()
	t.cur.Store(&state{def: old.def, host: old.host, config: old.config, cluster: maps.Clone(namespaces)})
}

// Default returns the default mode.
func (t *Table) Default() event.Mode { return t.cur.Load().def }

// Counts returns how many namespaces are in each mode: every namespace known
// from the cluster or the configuration.
func (t *Table) Counts() map[event.Mode]int {
	s := t.cur.Load()
	out := map[event.Mode]int{}
	seen := map[string]bool{}
	for ns := range s.cluster {
		seen[ns] = true
		out[s.forNamespace(ns)]++
	}
	for ns := range s.config {
		if !seen[ns] {
			out[s.forNamespace(ns)]++
		}
	}
	return out
}
