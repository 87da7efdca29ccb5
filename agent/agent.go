// Package agent is the driftwatch daemon: it wires the eBPF sensor, the
// process table and container resolver (with Kubernetes and CRI metadata),
// static rules, learned profiles and the anomaly model into one live
// pipeline, and hands alerts to the outputs and figures to Prometheus. It
// holds no detection logic of its own.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/agent/config"
	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/cri"
	"github.com/driftwatch/driftwatch/agent/kube"
	"github.com/driftwatch/driftwatch/agent/metrics"
	"github.com/driftwatch/driftwatch/agent/modes"
	"github.com/driftwatch/driftwatch/agent/output"
	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/agent/proctable"
	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
	"github.com/driftwatch/driftwatch/rules"
)

// Internal alert rule names.
const (
	RuleEventLoss    = "Driftwatch internal: kernel event loss"
	RuleStoreProblem = "Driftwatch internal: profile store problem"
	RuleKubeDown     = "Driftwatch internal: Kubernetes API unreachable"
)

// EnvError is a problem with the configuration or the environment (missing
// privileges, BTF, cgroup v2, an unusable address or path): the CLI exits 2.
type EnvError struct {
	What string
	Err  error
}

func (e *EnvError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

// Options are what Run needs besides the configuration.
type Options struct {
	// ConfigPath is re-read on SIGHUP for the modes section ("" = none).
	ConfigPath string
	// Version is reported in driftwatch_build_info.
	Version string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Stdout receives the stdout outputs; nil means os.Stdout.
	Stdout io.Writer
	// Housekeeping is the period of loss polling, score export and
	// container reaping (default 2s).
	Housekeeping time.Duration
}

// agent is one running daemon.
type agent struct {
	// resetDedup makes the sensor deliver the next event of every
	// deduplicated key again (after a rules reload, so new rules see
	// repeats too); nil until the sensor is open.
	resetDedup func()
	cfg      config.Config
	opts     Options
	log      *slog.Logger
	hostname string
	m        *metrics.Metrics
	outs     *output.Manager
	eng      *rules.Engine
	prof     *profiler.Profiler
	det      *model.Detector
	res      *container.Resolver
	tab      *modes.Table
	mount    string
	criProv  *cri.Provider
	kw       *kube.Watcher

	wasEmpty map[string]bool // containers whose cgroup was unpopulated at the last reap

	lossMu      sync.Mutex
	lossPending map[string]uint64
	lossLast    time.Time
}

// Run starts the agent and blocks until ctx ends (SIGTERM), then flushes
// the outputs and checkpoints the profiles. SIGHUP reloads the rules (and
// the modes section of ConfigPath); SIGUSR1 reopens file outputs.
func Run(ctx context.Context, cfg config.Config, opts Options) error {
	if err := cfg.Validate(); err != nil {
		return &EnvError{What: "configuration", Err: err}
	}
	a := &agent{cfg: cfg, opts: opts, log: opts.Logger, lossPending: map[string]uint64{}}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.opts.Housekeeping <= 0 {
		a.opts.Housekeeping = 2 * time.Second
	}
	a.hostname = cfg.Hostname
	if a.hostname == "" {
		a.hostname, _ = os.Hostname()
	}
	return a.run(ctx)
}

func (a *agent) run(ctx context.Context) (err error) {
	cfg := a.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.m = metrics.New(cfg.MaxNamespaceLabels, a.opts.Version)
	// Series that exist from the start: scores of host and unnamespaced containers.
	a.m.AnomalyScore.WithLabelValues(metrics.HostNamespace)

	// Outputs first, so every later problem can be reported as an alert.
	a.outs, err = output.New(cfg.Outputs, output.Options{
		QueueLen: cfg.OutputQueue, HTTPTimeout: cfg.OutputTimeout.D(), DropAlertInterval: cfg.LossAlertInterval.D(),
		Hostname: a.hostname, Stdout: a.opts.Stdout, Logger: a.log,
		OnDrop:  func(o string) { a.m.OutputDropped.WithLabelValues(o).Inc() },
		OnError: func(o string, _ error) { a.m.OutputErrors.WithLabelValues(o).Inc() },
	})
	if err != nil {
		return &EnvError{What: "outputs", Err: err}
	}
	for _, o := range a.outs.Names() {
		a.m.OutputDropped.WithLabelValues(o).Add(0)
	}
	a.outs.Start()
	defer func() {
		fctx, fcancel := context.WithTimeout(context.Background(), cfg.FlushTimeout.D())
		defer fcancel()
		if ferr := a.outs.Close(fctx); ferr != nil {
			a.log.Warn("outputs not fully flushed", "err", ferr)
		}
	}()

	if cfg.MetricsAddr != "" {
		addr, err := a.m.Serve(ctx, cfg.MetricsAddr)
		if err != nil {
			return &EnvError{What: "metrics address", Err: err}
		}
		a.log.Info("serving metrics", "addr", addr.String())
	}

	// Rules.
	a.eng, err = rules.NewEngine(cfg.Rules, rules.Options{Hostname: a.hostname, Logger: a.log, IncludeDefault: cfg.DefaultRules && len(cfg.Rules) > 0})
	if err != nil {
		return &EnvError{What: "rules", Err: err}
	}
	a.m.RulesReloaded(a.eng.Ruleset().Len(), time.Now())
	a.log.Info("rules loaded", "rules", a.eng.Ruleset().Len(), "paths", strings.Join(rulePaths(cfg.Rules), ","))

	// Profile store, profiler and model.
	if dir := filepath.Dir(cfg.DB); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return &EnvError{What: "profile store " + cfg.DB, Err: err}
		}
	}
	st, err := profiler.OpenStore(cfg.DB, profiler.StoreOptions{Logger: a.log})
	var sa *profiler.SetAsideError
	if errors.As(err, &sa) {
		a.m.StoreErrors.Inc()
		a.internal(RuleStoreProblem, event.PriorityError, sa.Error(), map[string]any{"store": cfg.DB, "moved_to": sa.MovedTo})
	} else if err != nil {
		return &EnvError{What: "profile store " + cfg.DB, Err: err}
	}
	defer st.Close()
	a.prof = profiler.New(st, profiler.Config{
		WarmUp: cfg.Learning.WarmUp.D(), MinStable: cfg.Learning.MinStable.D(), MaxLearn: cfg.Learning.MaxLearn.D(),
		UnseenBound: cfg.Learning.UnseenBound, CheckpointInterval: cfg.CheckpointInterval.D(), Logger: a.log,
	})
	a.det = model.NewDetector(a.prof, model.Config{
		// Every scored event feeds the per-namespace score histogram.
		OnScore: func(e *event.Enriched, score float64) { a.m.ObserveScore(e.Container.Namespace, score) },
	})
	a.exportProfiles()

	// Containers and their metadata.
	a.mount = cfg.CgroupMount
	if a.mount == "" {
		if a.mount, err = container.CgroupV2Mount(); err != nil {
			return &EnvError{What: "cgroup v2", Err: err}
		}
	}
	a.res = container.NewResolver(a.mount)
	a.tab = modes.New(cfg.Modes.Default, cfg.Modes.Host, cfg.Modes.Namespaces)
	a.m.SetNamespaceModes(a.tab.Counts())
	var chain cri.Chain
	if kw, err := a.startKube(ctx); err != nil {
		return err
	} else if kw != nil {
		a.kw = kw
		chain = append(chain, kw)
	}
	if p := a.startCRI(ctx); p != nil {
		a.criProv = p
		defer p.Close()
		chain = append(chain, p)
	}

	p := pipeline.New(pipeline.Config{
		Rules: a.eng, Detector: a.det, Mode: a.tab.Mode, DefaultMode: cfg.Modes.Default,
		Emit: a.emit, Hostname: a.hostname, Resolver: a.res,
		Observe: func(e *event.Enriched) { a.m.ObserveEvent(e.Event, time.Now()) },
	})

	// The sensor, then the /proc snapshot, so no process falls in between.
	sensor, err := bpf.Open(bpf.Config{})
	if err != nil {
		return &EnvError{What: "sensor", Err: err}
	}
	defer sensor.Close()
	a.resetDedup = func() {
		if err := sensor.ResetDedup(); err != nil {
			a.log.Warn("sensor deduplication reset failed", "err", err)
		}
	}
	if snap, err := proctable.TakeSnapshot(cfg.ProcRoot, a.mount); err != nil {
		a.log.Warn("process snapshot incomplete", "proc", cfg.ProcRoot, "err", err)
		p.LoadSnapshot(snap)
	} else {
		p.LoadSnapshot(snap)
	}
	// After the snapshot: SetProvider queues every known container for a
	// metadata lookup, including those the snapshot added.
	if len(chain) > 0 {
		a.res.SetProvider(chain)
	}

	var wg sync.WaitGroup
	// Rules reload: file changes and SIGHUP.
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.watchRules(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.signals(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.housekeeping(ctx, sensor)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.checkpoints(ctx)
	}()

	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx, sensor) }()
	a.m.SetReady(true)
	a.log.Info("agent running", "hostname", a.hostname, "outputs", strings.Join(a.outs.Names(), ","),
		"default_mode", cfg.Modes.Default, "host_mode", cfg.Modes.Host, "db", cfg.DB)

	select {
	case <-ctx.Done():
		sensor.Close() // unblocks Next
		<-runErr
	case err = <-runErr:
		if err != nil && !errors.Is(err, os.ErrClosed) {
			err = fmt.Errorf("pipeline: %w", err)
		}
	}
	a.m.SetReady(false)
	cancel()
	wg.Wait()
	a.m.SetLost(sensor.Lost())
	if cerr := a.prof.Checkpoint(); cerr != nil {
		a.m.StoreErrors.Inc()
		a.log.Error("final profile checkpoint failed", "db", cfg.DB, "err", cerr)
	} else {
		a.log.Info("profiles checkpointed", "db", cfg.DB, "profiles", len(a.prof.Keys()))
	}
	if errors.Is(err, os.ErrClosed) || errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func rulePaths(p []string) []string {
	if len(p) == 0 {
		return []string{"<default>"}
	}
	return p
}

// emit counts an alert and queues it for the outputs.
func (a *agent) emit(al *event.Alert) {
	a.m.ObserveAlert(al)
	a.outs.Emit(al)
}

// internal raises an internal alert about the agent itself.
func (a *agent) internal(rule string, pri event.Priority, msg string, fields map[string]any) {
	a.log.Warn(msg, "rule", rule)
	a.emit(rules.InternalAlert(rule, pri, msg, fields, a.hostname))
}

// startKube starts the Kubernetes watcher when configured or in a cluster.
func (a *agent) startKube(ctx context.Context) (*kube.Watcher, error) {
	k := a.cfg.Kubernetes
	want := k.Enabled == "true" || (k.Enabled == "auto" && (k.Kubeconfig != "" || kube.InCluster()))
	if !want {
		a.log.Info("kubernetes metadata disabled: no kubeconfig and not in a cluster")
		return nil, nil
	}
	cs, err := kube.NewClientset(k.Kubeconfig)
	if err != nil {
		return nil, &EnvError{What: "kubernetes", Err: err}
	}
	node := kube.NodeName(k.NodeName)
	w := kube.New(cs, kube.Options{
		NodeName: node, ModeLabel: k.ModeLabel, Resync: k.Resync.D(), Logger: a.log,
		OnConnected: func(ok bool) {
			if ok {
				a.m.KubeConnected.Set(1)
				return
			}
			a.m.KubeConnected.Set(0)
			a.internal(RuleKubeDown, event.PriorityWarning,
				"Driftwatch internal: Kubernetes API unreachable: alerts lack pod names and namespace modes fall back to the configuration until it answers (retrying)",
				map[string]any{"node": node})
		},
		OnModes: func(ns map[string]event.Mode) {
			a.tab.SetCluster(ns)
			a.m.SetNamespaceModes(a.tab.Counts())
		},
	})
	go w.Run(ctx)
	a.log.Info("kubernetes metadata enabled", "node", node, "kubeconfig", k.Kubeconfig)
	return w, nil
}

// startCRI connects to the container runtime, or returns nil.
func (a *agent) startCRI(ctx context.Context) *cri.Provider {
	ep := a.cfg.CRI.Endpoint
	if ep == "none" {
		return nil
	}
	if ep == "" {
		if ep = cri.FindEndpoint(); ep == "" {
			a.log.Info("no CRI socket found: containers outside Kubernetes carry their id only")
			return nil
		}
	}
	p, err := cri.Dial(ctx, ep, a.cfg.CRI.Timeout.D())
	if err != nil {
		a.log.Warn("CRI unavailable", "endpoint", ep, "err", err)
		return nil
	}
	v, err := p.Version(ctx)
	if err != nil {
		a.log.Warn("CRI not answering; not used", "endpoint", ep, "err", err)
		p.Close()
		return nil
	}
	a.log.Info("CRI metadata enabled", "endpoint", ep, "runtime", v)
	return p
}

func (a *agent) watchRules(ctx context.Context) {
	onErr := func(err error) {
		a.m.RulesReloadFailures.Inc()
		a.internal(rules.ReloadFailedRule, event.PriorityCritical, "Driftwatch internal: "+err.Error(), map[string]any{"error": err.Error()})
	}
	onReload := func(*rules.Report) {
		if a.resetDedup != nil {
			a.resetDedup()
		}
		a.m.RulesReloaded(a.eng.Ruleset().Len(), time.Now())
		a.log.Info("rules reloaded", "rules", a.eng.Ruleset().Len())
	}
	if !a.cfg.WatchRules || len(a.cfg.Rules) == 0 {
		// No files to watch: SIGHUP only.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := a.eng.Reload(); err != nil {
					onErr(err)
				} else {
					onReload(nil)
				}
			}
		}
	}
	if err := a.eng.Watch(ctx, onErr, onReload); err != nil {
		a.log.Error("rules watch stopped", "err", err)
	}
}

// signals handles SIGHUP (modes section of the config file) and SIGUSR1
// (reopen file outputs).
func (a *agent) signals(ctx context.Context) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			switch s {
			case syscall.SIGUSR1:
				a.log.Info("reopening file outputs")
				a.outs.Reopen()
			case syscall.SIGHUP:
				a.reloadModes()
			}
		}
	}
}

// reloadModes re-reads the modes section of the configuration file.
func (a *agent) reloadModes() {
	if a.opts.ConfigPath == "" {
		return
	}
	c, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		a.internal("Driftwatch internal: configuration reload failed", event.PriorityError,
			"Driftwatch internal: configuration reload failed, keeping the running modes: "+err.Error(), map[string]any{"error": err.Error()})
		return
	}
	a.tab.SetConfig(c.Modes.Default, c.Modes.Host, c.Modes.Namespaces)
	a.m.SetNamespaceModes(a.tab.Counts())
	a.log.Info("modes reloaded", "default", c.Modes.Default, "host", c.Modes.Host, "namespaces", len(c.Modes.Namespaces))
}

// checkpoints writes the profiles periodically, reporting store failures.
func (a *agent) checkpoints(ctx context.Context) {
	t := time.NewTicker(a.cfg.CheckpointInterval.D())
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.prof.Checkpoint(); err != nil {
				a.m.StoreErrors.Inc()
				if !failing {
					a.internal(RuleStoreProblem, event.PriorityError, "Driftwatch internal: profile checkpoint failed: "+err.Error(),
						map[string]any{"store": a.cfg.DB, "error": err.Error()})
				}
				failing = true
			} else {
				failing = false
			}
		}
	}
}

// housekeeping polls kernel loss counters, exports container scores and
// profile states, and forgets containers whose cgroup is gone.
func (a *agent) housekeeping(ctx context.Context, sensor *bpf.Sensor) {
	t := time.NewTicker(a.opts.Housekeeping)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.lost(sensor.Lost(), now)
			a.reap()
			a.exportScores()
			a.exportProfiles()
		}
	}
}

// lost updates the loss counters and raises the rate-limited loss alert.
func (a *agent) lost(cumulative map[string]uint64, now time.Time) {
	delta := a.m.SetLost(cumulative)
	a.lossMu.Lock()
	for k, v := range delta {
		a.lossPending[k] += v
	}
	if len(a.lossPending) == 0 || now.Sub(a.lossLast) < a.cfg.LossAlertInterval.D() {
		a.lossMu.Unlock()
		return
	}
	pending := a.lossPending
	a.lossPending = map[string]uint64{}
	since := now.Sub(a.lossLast)
	if a.lossLast.IsZero() {
		since = a.opts.Housekeeping
	}
	a.lossLast = now
	a.lossMu.Unlock()
	a.internal(RuleEventLoss, event.PriorityCritical, LossMessage(pending, since), LossFields(pending))
}

// LossMessage describes lost events per kind, as Falco's syscall drop alert does.
func LossMessage(perKind map[string]uint64, since time.Duration) string {
	var total uint64
	kinds := slices.Sorted(maps.Keys(perKind))
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		total += perKind[k]
		parts = append(parts, fmt.Sprintf("%s=%d", k, perKind[k]))
	}
	return fmt.Sprintf("Driftwatch internal: kernel event loss. %d events lost in the last %s (%s): the ring buffer was full; detections may be missing",
		total, since.Round(time.Second), strings.Join(parts, " "))
}

// LossFields are the loss alert's output fields: n_drops and n_drops_<kind>.
func LossFields(perKind map[string]uint64) map[string]any {
	f := map[string]any{}
	var total uint64
	for k, v := range perKind {
		f["n_drops_"+k] = v
		total += v
	}
	f["n_drops"] = total
	return f
}

// reap forgets containers whose cgroup directory is gone, or whose cgroup
// was unpopulated (no process left) on two passes in a row.
func (a *agent) reap() {
	empty := map[string]bool{}
	for _, c := range a.res.Containers() {
		if c.IsHost() || c.CgroupPath == "" {
			continue
		}
		dir := filepath.Join(a.mount, c.CgroupPath)
		gone := false
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			gone = true
		} else if b, err := os.ReadFile(filepath.Join(dir, "cgroup.events")); err == nil && strings.Contains(string(b), "populated 0") {
			empty[c.ID] = true
			gone = a.wasEmpty[c.ID]
		}
		if gone {
			a.res.Forget(c.ID)
			a.m.RemoveContainer(c.ID)
			if a.criProv != nil {
				a.criProv.Forget(c.ID)
			}
			delete(empty, c.ID)
		}
	}
	a.wasEmpty = empty
}

// exportScores sets the per-container gauge for running containers only.
func (a *agent) exportScores() {
	live := map[string]*event.Container{}
	for _, c := range a.res.Containers() {
		live[c.ID] = c
	}
	var out []metrics.ContainerScore
	for _, s := range a.det.ContainerScores() {
		c, ok := live[s.ContainerID]
		if !ok || c.IsHost() {
			continue
		}
		image := c.Image
		if image == "" {
			image = s.Image
		}
		out = append(out, metrics.ContainerScore{ID: s.ContainerID, Namespace: c.Namespace, Pod: c.PodName,
			Container: containerName(c), Image: image, Score: s.Score})
	}
	a.m.SetContainerScores(out)
}

func containerName(c *event.Container) string {
	if c.Name != "" {
		return c.Name
	}
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

// exportProfiles sets driftwatch_profiles{state}.
func (a *agent) exportProfiles() {
	counts := map[string]int{"learning": 0, "stable": 0, "detecting": 0, "unstable": 0, "too_large": 0}
	cats := map[string]map[string]int{}
	var catNames, stateNames []string
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		catNames = append(catNames, c.String())
		cats[c.String()] = map[string]int{}
	}
	for _, st := range []profiler.State{profiler.StateLearning, profiler.StateStable, profiler.StateDetecting, profiler.StateUnstable} {
		stateNames = append(stateNames, st.String())
	}
	for _, s := range a.prof.Profiles() {
		counts[ProfileState(s)]++
		for _, c := range s.Categories {
			cats[c.Category.String()][c.State.String()]++
		}
	}
	a.m.SetProfiles(counts)
	a.m.SetProfileCategories(catNames, stateNames, cats)
}

// minStateObs is the fewest observations after the warm-up for a category
// to count in a profile's summary state: a category that saw almost
// nothing (a rare privilege change), or only the container's start-up
// (runc's mounts and capability changes, learned during the warm-up), does
// not hold the whole profile in learning.
const minStateObs = 20

// ProfileState summarises a profile's categories in one state: too_large;
// else, over the categories with at least minStateObs observations after
// the warm-up,
// learning while any of them learns, unstable when one ended unstable,
// detecting when all detect, else stable. A profile with no such category
// is learning.
func ProfileState(s profiler.ProfileSummary) string {
	if s.TooLarge {
		return "too_large"
	}
	var learning, unstable, stable, counted int
	for _, c := range s.Categories {
		if c.PostObservations < minStateObs {
			continue
		}
		counted++
		switch c.State {
		case profiler.StateLearning:
			learning++
		case profiler.StateUnstable:
			unstable++
		case profiler.StateStable:
			stable++
		}
	}
	switch {
	case counted == 0 || learning > 0:
		return "learning"
	case unstable > 0:
		return "unstable"
	case stable > 0:
		return "stable"
	}
	return "detecting"
}
