package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/driftwatch/driftwatch/event"
)

// Engine holds the running Ruleset behind an atomic pointer so reloads
// swap whole sets: an event is evaluated entirely against the old set or
// entirely against the new one.
type Engine struct {
	paths []string
	opts  Options
	cur   atomic.Pointer[Ruleset]
	mu    sync.Mutex // serialises reloads
	last  atomic.Pointer[Report]
}

// NewEngine loads paths (defaults when empty) and returns an engine.
func NewEngine(paths []string, opts Options) (*Engine, error) {
	e := &Engine{paths: append([]string(nil), paths...), opts: opts}
	rs, rep, err := e.load()
	if err != nil {
		return nil, err
	}
	e.cur.Store(rs)
	e.last.Store(rep)
	return e, nil
}

func (e *Engine) load() (*Ruleset, *Report, error) {
	if len(e.paths) == 0 {
		return LoadDefault(e.opts)
	}
	return Load(e.paths, e.opts)
}

// Ruleset returns the current rule set.
func (e *Engine) Ruleset() *Ruleset { return e.cur.Load() }

// Report returns the report of the last successful load.
func (e *Engine) Report() *Report { return e.last.Load() }

// Eval evaluates the event against the current rule set.
func (e *Engine) Eval(ev *event.Enriched, emit func(*event.Alert)) { e.cur.Load().Eval(ev, emit) }

// Reload loads and validates the rules again and swaps them in; on
// failure the running set is kept and the error returned.
func (e *Engine) Reload() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs, rep, err := e.load()
	if err != nil {
		return fmt.Errorf("rules reload failed, keeping the running rule set: %w", err)
	}
	e.cur.Store(rs)
	e.last.Store(rep)
	return nil
}

// ReloadFailedRule is the rule name of the internal alert raised when a
// reload fails.
const ReloadFailedRule = "Rules reload failed"

// Watch reloads on changes to the rules files and directories (fsnotify,
// debounced), until ctx ends. Signals are the caller's: the agent's one
// signal loop calls Reload on SIGHUP. onErr receives
// reload errors (the running set is kept; callers raise an
// internal alert named ReloadFailedRule); onReload receives the report of each successful reload.
func (e *Engine) Watch(ctx context.Context, onErr func(error), onReload func(*Report)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("rules watch: %w", err)
	}
	defer w.Close()
	// Watch parent directories of files too, so editors that replace a
	// file (rename over it) are seen.
	watched := map[string]bool{}
	for _, p := range e.paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("rules watch %s: %w", p, err)
		}
		dir := abs
		if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
			dir = filepath.Dir(abs)
		}
		if !watched[dir] {
			if err := w.Add(dir); err != nil {
				return fmt.Errorf("rules watch %s: %w", dir, err)
			}
			watched[dir] = true
		}
	}
	var timer *time.Timer
	var timerC <-chan time.Time
	reload := func() {
		if err := e.Reload(); err != nil {
			if onErr != nil {
				onErr(err)
			}
			return
		}
		if onReload != nil {
			onReload(e.Report())
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !e.relevant(ev.Name) {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(200 * time.Millisecond)
			} else {
				timer.Reset(200 * time.Millisecond)
			}
			timerC = timer.C
		case <-timerC:
			timerC = nil
			reload()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if onErr != nil {
				onErr(fmt.Errorf("rules watch: %w", err))
			}
		}
	}
}

// relevant reports whether a changed path is one of the rules inputs.
func (e *Engine) relevant(name string) bool {
	ext := filepath.Ext(name)
	for _, p := range e.paths {
		abs, _ := filepath.Abs(p)
		if abs == name {
			return true
		}
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() && filepath.Dir(name) == abs && (ext == ".yaml" || ext == ".yml") {
			return true
		}
	}
	return false
}
