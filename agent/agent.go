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
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/agent/cluster"
	"github.com/driftwatch/driftwatch/agent/config"
	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/cri"
	"github.com/driftwatch/driftwatch/agent/harden"
	"github.com/driftwatch/driftwatch/agent/kube"
	"github.com/driftwatch/driftwatch/agent/metrics"
	"github.com/driftwatch/driftwatch/agent/modes"
	"github.com/driftwatch/driftwatch/agent/output"
	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/agent/proctable"
	"github.com/driftwatch/driftwatch/agent/suppress"
	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/safefile"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
	"github.com/driftwatch/driftwatch/rules"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
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
	// DefaultMode, when set (--default-mode), overrides the configuration
	// file's modes.default, at start and on every SIGHUP reload.
	DefaultMode event.Mode
	// Hardened, when set, is called with the hardening's report once it
	// is applied.
	Hardened func(harden.Report)
}

// agent is one running daemon.
type agent struct {
	// resetDedup makes the sensor deliver the next event of every
	// deduplicated key again (after a rules reload, so new rules see
	// repeats too); nil until the sensor is open.
	resetDedup func()
	cfg        config.Config
	opts       Options
	log        *slog.Logger
	hostname   string
	m          *metrics.Metrics
	outs       *output.Manager
	eng        *rules.Engine
	prof       *profiler.Profiler
	sup        *suppress.Suppressor
	det        *model.Detector
	// pdet is the pipeline's detector: det, or the cluster detector that
	// scores with the merged profiles.
	pdet    pipeline.Detector
	scores  func() []model.ContainerScore
	res     *container.Resolver
	tab     *modes.Table
	mount   string
	criProv *cri.Provider
	kw      *kube.Watcher

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

// preflight checks privileges and the environment before any side effect
// (no metrics port bound, no alert file or store created when the agent
// cannot run).
func (a *agent) preflight() error {
	cfg := a.cfg
	if ok, err := harden.Has(harden.CapBPF, harden.CapPerfmon); err != nil || !ok {
		if ok, _ := harden.Has(21); !ok { // CAP_SYS_ADMIN also loads BPF
			return &EnvError{What: "privileges", Err: bpf.ErrPermission}
		}
	}
	if ok, _ := harden.Has(harden.CapSysPtrace, harden.CapDacReadSearch); !ok {
		a.log.Warn("without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH the start-up snapshot misses other users' processes' /proc entries and new cgroups are found by walking the tree")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return &EnvError{What: "kernel BTF at /sys/kernel/btf/vmlinux", Err: bpf.ErrNoBTF}
	}
	if a.mount = cfg.CgroupMount; a.mount == "" {
		var err error
		if a.mount, err = container.CgroupV2Mount(); err != nil {
			return &EnvError{What: "cgroup v2", Err: err}
		}
	}
	for _, o := range cfg.Outputs {
		if p, ok := strings.CutPrefix(o, "file:"); ok {
			if err := safefile.CheckPath(p); err != nil {
				return &EnvError{What: "output " + o, Err: err}
			}
			if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
				return &EnvError{What: "output " + o, Err: fmt.Errorf("directory %s: %w", filepath.Dir(p), errors.Join(err, errNotDir(fi)))}
			}
		}
	}
	if err := safefile.CheckPath(cfg.DB); err != nil {
		return &EnvError{What: "profile store " + cfg.DB, Err: err}
	}
	return nil
}

func errNotDir(fi os.FileInfo) error {
	if fi != nil && !fi.IsDir() {
		return errors.New("not a directory")
	}
	return nil
}

func (a *agent) run(ctx context.Context) (err error) {
	cfg := a.cfg
	if err := a.preflight(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Every goroutine the agent starts is joined before run returns.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	a.m = metrics.New(cfg.MaxNamespaceLabels, a.opts.Version)
	// Series that exist from the start: scores of host and unnamespaced containers.
	a.m.AnomalyScore.WithLabelValues(metrics.HostNamespace)

	// Rules next: a bad rules file stops the agent before any side effect.
	a.eng, err = rules.NewEngine(cfg.Rules, rules.Options{Hostname: a.hostname, Logger: a.log, IncludeDefault: cfg.DefaultRules && len(cfg.Rules) > 0, Environ: rules.ProcEnviron("/proc")})
	if err != nil {
		return &EnvError{What: "rules", Err: err}
	}

	// Outputs, so every later problem can be reported as an alert.
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
		a.m.OutputErrors.WithLabelValues(o).Add(0)
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
		defer a.m.Wait()
		a.log.Info("serving metrics", "addr", addr.String())
	}

	a.m.RulesReloaded(a.eng.Ruleset().Len(), time.Now())
	a.log.Info("rules loaded", "rules", a.eng.Ruleset().Len(), "paths", strings.Join(rulePaths(cfg.Rules), ","))

	// Profile store, profiler and model.
	if dir := filepath.Dir(cfg.DB); dir != "" {
		if err := safefile.MkdirAll(dir, 0o750); err != nil {
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
	mcfg := model.Config{
		// Every scored event feeds the per-namespace score histogram.
		OnScore: func(e *event.Enriched, score float64) { a.m.ObserveScore(e.Container.Namespace, score) },
		// Learned suppression (below) covers every rule, tagged or not.
		NoAutoSuppress: cfg.Suppression.Enabled,
	}
	a.det = model.NewDetector(a.prof, mcfg)
	a.pdet, a.scores = a.det, a.det.ContainerScores
	a.sup = a.newSuppressor(cfg)
	a.exportProfiles()

	// Containers and their metadata.
	a.res = container.NewResolver(a.mount)
	wg.Go(func() { a.res.Run(ctx) })
	a.tab = modes.New(a.defaultMode(cfg.Modes.Default), cfg.Modes.Host, cfg.Modes.Namespaces)
	a.m.SetNamespaceModes(a.tab.Counts())
	var chain cri.Chain
	if kw, err := a.startKube(ctx, &wg); err != nil {
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

	if a.kw != nil && cfg.Kubernetes.ProfileSync.Enabled {
		if err := a.startProfileSync(ctx, mcfg); err != nil {
			return err
		}
	}

	p := pipeline.New(pipeline.Config{
		Rules: a.eng, Detector: countingDetector{Detector: a.pdet, m: a.m}, Mode: a.tab.Mode, DefaultMode: a.defaultMode(cfg.Modes.Default),
		Emit: a.emit, Hostname: a.hostname, Resolver: a.res,
		Observe:  func(e *event.Enriched) { a.m.ObserveEvent(e.Event, time.Now()) },
		Suppress: a.sup.Suppress,
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

	// Everything privileged is done: programs loaded and attached, /proc
	// read, sockets bound and files open.
	if cfg.Harden {
		rep, herr := harden.Apply()
		if herr != nil {
			return &EnvError{What: "hardening (set harden: false to run without it)", Err: herr}
		}
		if !rep.CapsDropped {
			a.log.Warn("capabilities kept: "+harden.ErrCgo.Error(), "cap_eff", fmt.Sprintf("%016x", rep.CapEff))
		}
		a.log.Info("hardened: no_new_privs set, seccomp allow-list installed", "caps_dropped", rep.CapsDropped,
			"cap_eff", fmt.Sprintf("%016x", rep.CapEff), "syscalls_allowed", rep.Syscalls)
		if a.opts.Hardened != nil {
			a.opts.Hardened(rep)
		}
		if prog := os.Getenv("DRIFTWATCH_SELFTEST_EXEC"); prog != "" {
			// Self-check (tests, operators): an exec must fail now.
			err := exec.Command(prog).Run()
			a.log.Info("self-test: exec after hardening", "program", prog, "err", fmt.Sprint(err))
		}
	}

	wg.Go(func() { a.watchRules(ctx) })
	wg.Go(func() { a.signals(ctx) })
	wg.Go(func() { a.housekeeping(ctx, sensor) })
	wg.Go(func() { a.checkpoints(ctx) })

	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx, sensor) }()
	a.m.SetReady(true)
	a.log.Info("agent running", "hostname", a.hostname, "outputs", strings.Join(a.outs.Names(), ","),
		"default_mode", a.defaultMode(cfg.Modes.Default), "host_mode", cfg.Modes.Host, "db", cfg.DB)

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
	a.saveSuppressions()
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

// defaultMode is the configuration's default mode unless --default-mode
// overrides it.
func (a *agent) defaultMode(fromConfig event.Mode) event.Mode {
	if a.opts.DefaultMode != "" {
		return a.opts.DefaultMode
	}
	return fromConfig
}

// countingDetector counts the static-rule alerts its detector suppresses
// (the model's own suppression of tagged rules, when learned suppression
// is off).
type countingDetector struct {
	pipeline.Detector
	m *metrics.Metrics
}

func (c countingDetector) Suppress(al *event.Alert, e *event.Enriched) bool {
	if c.Detector.Suppress(al, e) {
		c.m.AlertsSuppressed.WithLabelValues(al.Rule, al.Priority.String()).Inc()
		return true
	}
	return false
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
	a.emit(event.InternalAlert(rule, pri, msg, fields, a.hostname))
}

// startKube starts the Kubernetes watcher when configured or in a cluster.
func (a *agent) startKube(ctx context.Context, wg *sync.WaitGroup) (*kube.Watcher, error) {
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
	wg.Go(func() { w.Run(ctx) })
	a.log.Info("kubernetes metadata enabled", "node", node, "kubeconfig", k.Kubeconfig)
	return w, nil
}

// startProfileSync shares profiles cluster-wide (docs/cluster.md): the
// node's slot is published, the merger Lease contested, and detection
// scores with the merged profiles it watches.
func (a *agent) startProfileSync(ctx context.Context, mcfg model.Config) error {
	k := a.cfg.Kubernetes
	rc, err := kube.RESTConfig(k.Kubeconfig)
	if err != nil {
		return &EnvError{What: "kubernetes", Err: err}
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return &EnvError{What: "profile sync", Err: err}
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return &EnvError{What: "profile sync", Err: err}
	}
	ns := k.ProfileSync.Namespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	s, err := cluster.New(dyn, cs, a.prof, cluster.Config{
		Node: kube.NodeName(k.NodeName), Namespace: ns, Period: k.ProfileSync.Period.D(),
		NoMerge: !k.ProfileSync.Merge, Logger: a.log,
	})
	if err != nil {
		return &EnvError{What: "profile sync", Err: err}
	}
	if err := a.m.Registry.Register(cluster.NewCollector(s)); err != nil {
		return &EnvError{What: "profile sync metrics", Err: err}
	}
	cd := cluster.NewDetector(a.det, s, mcfg)
	a.pdet, a.scores = cd, cd.ContainerScores
	go func() { _ = s.Run(ctx) }()
	a.log.Info("cluster-wide profiles enabled", "node", kube.NodeName(k.NodeName), "period", k.ProfileSync.Period.D(), "merge", k.ProfileSync.Merge)
	return nil
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
	if !a.cfg.WatchRules || len(a.cfg.Rules) == 0 {
		return // no files to watch: SIGHUP only (signals)
	}
	if err := a.eng.Watch(ctx, a.rulesReloadFailed, a.rulesReloaded); err != nil {
		a.log.Error("rules watch stopped", "err", err)
	}
}

// reloadRules reloads the rules (SIGHUP).
func (a *agent) reloadRules() {
	if err := a.eng.Reload(); err != nil {
		a.rulesReloadFailed(err)
		return
	}
	a.rulesReloaded(nil)
}

func (a *agent) rulesReloadFailed(err error) {
	a.m.RulesReloadFailures.Inc()
	a.internal(rules.ReloadFailedRule, event.PriorityCritical, "Driftwatch internal: "+err.Error(), map[string]any{"error": err.Error()})
}

func (a *agent) rulesReloaded(*rules.Report) {
	if a.resetDedup != nil {
		a.resetDedup()
	}
	a.m.RulesReloaded(a.eng.Ruleset().Len(), time.Now())
	a.log.Info("rules reloaded", "rules", a.eng.Ruleset().Len())
}

// signals is the agent's one signal loop: SIGHUP reloads the rules and
// the modes section of the config file, SIGUSR1 reopens file outputs.
// (SIGINT and SIGTERM end ctx: the caller's signal.NotifyContext.)
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
				a.reloadRules()
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
	a.tab.SetConfig(a.defaultMode(c.Modes.Default), c.Modes.Host, c.Modes.Namespaces)
	a.m.SetNamespaceModes(a.tab.Counts())
	a.log.Info("modes reloaded", "default", a.defaultMode(c.Modes.Default), "host", c.Modes.Host, "namespaces", len(c.Modes.Namespaces))
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
			a.saveSuppressions()
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
		live[c.ID] = &c
	}
	var out []metrics.ContainerScore
	for _, s := range a.scores() {
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

// newSuppressor builds learned suppression from the configuration (nil
// when disabled: the pipeline then suppresses nothing), restoring the
// counts kept beside the store.
func (a *agent) newSuppressor(cfg config.Config) *suppress.Suppressor {
	if !cfg.Suppression.Enabled {
		return nil
	}
	floor, _ := event.ParsePriority(cfg.Suppression.PriorityFloor) // validated with the config
	s := suppress.New(a.prof, suppress.Policy{Floor: floor, FloorSet: true, Rules: cfg.Suppression.Rules, AnyRule: cfg.Suppression.AnyRule}, a.log)
	s.OnSuppress = func(rule string, pri event.Priority) {
		a.m.AlertsSuppressed.WithLabelValues(rule, pri.String()).Inc()
	}
	if err := s.LoadInto(suppress.FileFor(cfg.DB)); err != nil {
		a.log.Warn("suppression counts not restored", "err", err)
	}
	return s
}

// saveSuppressions writes the suppression counts beside the store, for
// "driftwatch profile show".
func (a *agent) saveSuppressions() {
	if a.sup == nil {
		return
	}
	if err := a.sup.Save(suppress.FileFor(a.cfg.DB)); err != nil {
		a.log.Warn("suppression counts not saved", "err", err)
	}
}
