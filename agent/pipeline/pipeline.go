// Package pipeline is driftwatch's one event pipeline: enrichment (process
// table, container attribution) followed by static rules and the learned
// profile detector, ending in alerts. The live agent and every offline
// command (detect, learn, eval) feed events into the same Pipeline, so
// figures measured on replayed traces hold for production.
package pipeline

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/proctable"
	"github.com/driftwatch/driftwatch/event"
)

// Rules is what the pipeline needs from the rules engine.
type Rules interface {
	Eval(e *event.Enriched, emit func(*event.Alert))
}

// Detector is what the pipeline needs from the profiler and model: it
// learns or scores each event according to the container's mode.
type Detector interface {
	Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert))
	// Suppress reports whether a static-rule alert should be suppressed
	// because the behaviour is already in the stable profile.
	Suppress(a *event.Alert, e *event.Enriched) bool
}

// Config wires a Pipeline.
type Config struct {
	// Rules evaluates static rules; nil runs none (see SetRules).
	Rules Rules
	// Detector learns and scores; nil runs no profiles.
	Detector Detector
	// Mode returns a container's mode; nil means DefaultMode for all.
	Mode func(c *event.Container) event.Mode
	// DefaultMode applies where Mode is nil or returns "".
	DefaultMode event.Mode
	// Emit receives every alert, synchronously.
	Emit func(*event.Alert)
	// Hostname is put on every enriched event.
	Hostname string
	// Resolver attributes cgroup ids to containers; nil builds a static
	// resolver from the snapshot given to LoadSnapshot.
	Resolver *container.Resolver
	// Procs is the process table; nil creates one with default options.
	Procs *proctable.Table
	// Observe, when set, sees every enriched event after rules and
	// detector ran (metrics, eval scoring).
	Observe func(e *event.Enriched)
	// Suppress, when set, decides learned suppression of static-rule
	// alerts (agent/suppress) given the container's mode; suppressed
	// alerts are counted in Stats.Suppressed and not emitted.
	Suppress func(a *event.Alert, e *event.Enriched, mode event.Mode) bool
}

// Stats are the pipeline's counters.
type Stats struct {
	Events     [event.KindCount]uint64
	Alerts     uint64
	Suppressed uint64
}

// Pipeline enriches events and runs the detectors. Handle is not safe for
// concurrent use: one goroutine drives it; SetRules may be called from any
// goroutine.
type Pipeline struct {
	cfg      Config
	rules    atomic.Pointer[rulesBox]
	procs    *proctable.Table
	resolver *container.Resolver
	enriched event.Enriched
	stats    Stats
	// emitRule is cfg.Emit wrapped with auto-suppression; built once so
	// Handle allocates nothing per event.
	emitRule func(*event.Alert)
	// emitAnomalyFn is the method value p.emitAnomaly, built once: taking
	// it per event allocated a closure for every event the detector saw.
	emitAnomalyFn func(*event.Alert)
}

type rulesBox struct{ r Rules }

// New builds a pipeline.
func New(cfg Config) *Pipeline {
	if cfg.DefaultMode == "" {
		cfg.DefaultMode = event.ModeOff
	}
	if cfg.Emit == nil {
		cfg.Emit = func(*event.Alert) {}
	}
	p := &Pipeline{cfg: cfg, procs: cfg.Procs, resolver: cfg.Resolver}
	if p.resolver == nil {
		p.resolver = container.NewStaticResolver(nil)
	}
	if p.procs == nil {
		p.procs = proctable.New(proctable.Options{Containers: p.resolver})
	}
	p.SetRules(cfg.Rules)
	p.emitAnomalyFn = p.emitAnomaly
	p.emitRule = func(a *event.Alert) {
		if p.cfg.Suppress != nil && p.cfg.Suppress(a, &p.enriched, p.mode(p.enriched.Container)) {
			p.stats.Suppressed++
			return
		}
		if p.cfg.Detector != nil && p.cfg.Detector.Suppress(a, &p.enriched) {
			p.stats.Suppressed++
			return
		}
		p.stats.Alerts++
		p.cfg.Emit(a)
	}
	p.enriched.Hostname = cfg.Hostname
	return p
}

// LoadSnapshot seeds the process table and the cgroup map from a capture's
// start-up snapshot.
func (p *Pipeline) LoadSnapshot(s *event.Snapshot) {
	if s == nil {
		return
	}
	for id, path := range s.Cgroups {
		p.resolver.AddCgroup(id, path)
	}
	for _, ci := range s.Containers {
		p.resolver.AddContainer(ci)
	}
	p.procs.LoadSnapshot(s)
	if p.enriched.Hostname == "" {
		p.enriched.Hostname = s.Hostname
	}
}

// SetRules swaps the rule set atomically; nil disables static rules.
func (p *Pipeline) SetRules(r Rules) {
	if r == nil {
		p.rules.Store(nil)
		return
	}
	p.rules.Store(&rulesBox{r: r})
}

// Procs returns the process table.
func (p *Pipeline) Procs() *proctable.Table { return p.procs }

// Resolver returns the container resolver.
func (p *Pipeline) Resolver() *container.Resolver { return p.resolver }

// Stats returns the counters so far.
func (p *Pipeline) Stats() Stats { return p.stats }

// Handle runs one event through enrichment, rules and the detector.
func (p *Pipeline) Handle(ev *event.Event) {
	if int(ev.Kind) < len(p.stats.Events) {
		p.stats.Events[ev.Kind]++
	}
	c := p.resolver.Resolve(ev.CgroupID)
	proc, fd := p.procs.Apply(ev, c)
	e := &p.enriched
	e.Event = ev
	e.Proc = proc
	e.Container = c
	e.FD = fd
	if rb := p.rules.Load(); rb != nil {
		rb.r.Eval(e, p.emitRule)
	}
	if p.cfg.Detector != nil {
		mode := p.mode(c)
		if mode != event.ModeOff {
			p.cfg.Detector.Handle(e, mode, p.emitAnomalyFn)
		}
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe(e)
	}
}

func (p *Pipeline) emitAnomaly(a *event.Alert) {
	p.stats.Alerts++
	p.cfg.Emit(a)
}

func (p *Pipeline) mode(c *event.Container) event.Mode {
	if p.cfg.Mode != nil {
		if m := p.cfg.Mode(c); m != "" {
			return m
		}
	}
	if c != nil && c.Mode != "" {
		return c.Mode
	}
	return p.cfg.DefaultMode
}

// Run feeds every event of src through Handle until src ends (nil), ctx is
// done (ctx.Err()) or src fails (its error).
func (p *Pipeline) Run(ctx context.Context, src event.Source) error {
	if ss, ok := src.(event.SnapshotSource); ok {
		p.LoadSnapshot(ss.Snapshot())
	}
	if un, ok := src.(event.UpdateNotifier); ok {
		un.SetUpdateHandlers(p.resolver.AddCgroup, func(ci event.ContainerInfo) { p.resolver.AddContainer(ci) })
	}
	var ev event.Event
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := src.Next(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		p.Handle(&ev)
	}
}
