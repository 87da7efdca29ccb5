// Package metrics holds the agent's Prometheus metrics on their own registry
// (never the global default) and serves /metrics and /healthz. Label values
// are bounded: event kinds and rule names come from fixed sets, namespaces
// are capped (further ones become "_other"), and per-container series are
// deleted when the container goes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/driftwatch/driftwatch/event"
)

// OtherNamespace is the label value for namespaces beyond the cap.
const OtherNamespace = "_other"

// HostNamespace is the namespace label value for host processes and
// containers outside Kubernetes.
const HostNamespace = ""

// Metrics is the agent's set of collectors.
type Metrics struct {
	serving sync.WaitGroup // Serve's goroutines

	Registry *prometheus.Registry

	EventsTotal         *prometheus.CounterVec // kind
	EventsLostTotal     *prometheus.CounterVec // kind
	AlertsTotal         *prometheus.CounterVec // rule, priority, namespace
	AlertsSuppressed    *prometheus.CounterVec // rule, priority
	AnomalyScore        *prometheus.HistogramVec
	ContainerScore      *prometheus.GaugeVec // namespace, pod, container, image
	Profiles            *prometheus.GaugeVec // state
	ProfileCategories   *prometheus.GaugeVec // category, state: what auto mode decided
	Namespaces          *prometheus.GaugeVec // mode
	RulesLoaded         prometheus.Gauge
	RulesLastReload     prometheus.Gauge
	RulesReloadFailures prometheus.Counter
	PipelineLatency     prometheus.Histogram
	OutputDropped       *prometheus.CounterVec // output
	OutputErrors        *prometheus.CounterVec // output
	KubeConnected       prometheus.Gauge
	StoreErrors         prometheus.Counter

	eventKinds [event.KindCount]prometheus.Counter
	lostSeen   sync.Map // kind → uint64 last cumulative value

	nsMu    sync.Mutex
	nsSeen  map[string]bool
	maxNS   int
	ready   atomic.Bool
	ctrMu   sync.Mutex
	ctrKeys map[string][]string // container id → label values of its score series
	states  map[string]bool     // profile states seen
}

// New registers every metric on a fresh registry. maxNamespaces caps the
// distinct namespace label values (at least 1).
func New(maxNamespaces int, version string) *Metrics {
	if maxNamespaces < 1 {
		maxNamespaces = 1
	}
	r := prometheus.NewRegistry()
	m := &Metrics{Registry: r, nsSeen: map[string]bool{}, maxNS: maxNamespaces, ctrKeys: map[string][]string{}}
	m.EventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftwatch_events_total", Help: "Kernel events processed, by event kind.",
	}, []string{"kind"})
	m.EventsLostTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftwatch_events_lost_total", Help: "Kernel events lost to a full ring buffer, by event kind.",
	}, []string{"kind"})
	m.AlertsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftwatch_alerts_total", Help: "Alerts raised, by rule, priority and namespace.",
	}, []string{"rule", "priority", "namespace"})
	m.AlertsSuppressed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftwatch_alerts_suppressed_total", Help: "Static-rule alerts suppressed because the learned profile knows every feature of the event, by rule and priority.",
	}, []string{"rule", "priority"})
	m.AnomalyScore = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "driftwatch_anomaly_score",
		Help:    "Anomaly scores (surprise in bits) of events scored in detect mode, by namespace.",
		Buckets: []float64{0.5, 1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32},
	}, []string{"namespace"})
	m.ContainerScore = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "driftwatch_container_anomaly_score", Help: "Current decayed anomaly score of a running container.",
	}, []string{"namespace", "pod", "container", "image"})
	m.Profiles = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "driftwatch_profiles", Help: "Learned profiles by state.",
	}, []string{"state"})
	m.ProfileCategories = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "driftwatch_profile_categories", Help: "Learned profile categories by category and lifecycle state (auto mode detects in stable and detecting ones).",
	}, []string{"category", "state"})
	m.Namespaces = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "driftwatch_namespaces", Help: "Namespaces by rollout mode (off, learn, detect, auto).",
	}, []string{"mode"})
	m.RulesLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "driftwatch_rules_loaded", Help: "Rules in the loaded rule set.",
	})
	m.RulesLastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "driftwatch_rules_last_reload_timestamp_seconds", Help: "Unix time of the last successful rules load.",
	})
	m.RulesReloadFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "driftwatch_rules_reload_failures_total", Help: "Rule reloads that failed (the previous rule set stays).",
	})
	m.PipelineLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "driftwatch_pipeline_latency_seconds",
		Help:    "Time from the kernel event to the end of its processing in the pipeline.",
		Buckets: []float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1},
	})
	m.OutputDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftwatch_output_dropped_total", Help: "Alerts dropped because an output's queue was full.",
	}, []string{"output"})
	m.OutputErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "driftwatch_output_errors_total", Help: "Alerts an output failed to deliver.",
	}, []string{"output"})
	m.KubeConnected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "driftwatch_kubernetes_connected", Help: "1 when the Kubernetes API is reachable and informers are synced, else 0.",
	})
	m.StoreErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "driftwatch_store_errors_total", Help: "Profile store operations that failed.",
	})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "driftwatch_build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion()},
	})
	build.Set(1)
	r.MustRegister(m.EventsTotal, m.EventsLostTotal, m.AlertsTotal, m.AlertsSuppressed, m.AnomalyScore, m.ContainerScore,
		m.Profiles, m.ProfileCategories, m.Namespaces, m.RulesLoaded, m.RulesLastReload, m.RulesReloadFailures,
		m.PipelineLatency, m.OutputDropped, m.OutputErrors, m.KubeConnected, m.StoreErrors, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for k := event.Kind(0); k < event.KindCount; k++ {
		m.eventKinds[k] = m.EventsTotal.WithLabelValues(k.String())
	}
	for _, mode := range event.Modes {
		m.Namespaces.WithLabelValues(string(mode)).Set(0)
	}
	return m
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

// Namespace maps a namespace to its label value, admitting at most the cap
// of distinct values; later ones become OtherNamespace.
func (m *Metrics) Namespace(ns string) string {
	m.nsMu.Lock()
	defer m.nsMu.Unlock()
	if m.nsSeen[ns] {
		return ns
	}
	if len(m.nsSeen) >= m.maxNS {
		return OtherNamespace
	}
	m.nsSeen[ns] = true
	return ns
}

// ObserveEvent counts one processed event and its latency (now − event time).
func (m *Metrics) ObserveEvent(e *event.Event, now time.Time) {
	if int(e.Kind) < len(m.eventKinds) {
		m.eventKinds[e.Kind].Inc()
	}
	if e.Time > 0 {
		if d := now.UnixNano() - e.Time; d >= 0 && d < int64(time.Hour) {
			m.PipelineLatency.Observe(float64(d) / 1e9)
		}
	}
}

// ObserveAlert counts an alert (and its score for anomaly alerts).
func (m *Metrics) ObserveAlert(a *event.Alert) {
	m.AlertsTotal.WithLabelValues(a.Rule, a.Priority.String(), m.Namespace(a.Namespace)).Inc()
}

// ObserveScore records one event score in the namespace's histogram.
func (m *Metrics) ObserveScore(namespace string, score float64) {
	m.AnomalyScore.WithLabelValues(m.Namespace(namespace)).Observe(score)
}

// SetLost brings driftwatch_events_lost_total up to the sensor's cumulative
// per-kind counts and returns the increase per kind since the last call.
func (m *Metrics) SetLost(cumulative map[string]uint64) map[string]uint64 {
	delta := map[string]uint64{}
	for kind, v := range cumulative {
		prev := uint64(0)
		if p, ok := m.lostSeen.Load(kind); ok {
			prev = p.(uint64)
		}
		if v > prev {
			m.EventsLostTotal.WithLabelValues(kind).Add(float64(v - prev))
			delta[kind] = v - prev
			m.lostSeen.Store(kind, v)
		} else if _, ok := m.lostSeen.Load(kind); !ok {
			m.EventsLostTotal.WithLabelValues(kind).Add(0)
			m.lostSeen.Store(kind, v)
		}
	}
	return delta
}

// ContainerScore is one running container's current score.
type ContainerScore struct {
	ID, Namespace, Pod, Container, Image string
	Score                                float64
}

// SetContainerScores replaces the per-container gauge: containers absent
// from scores lose their series.
func (m *Metrics) SetContainerScores(scores []ContainerScore) {
	m.ctrMu.Lock()
	defer m.ctrMu.Unlock()
	live := make(map[string]bool, len(scores))
	for _, s := range scores {
		lv := []string{m.Namespace(s.Namespace), s.Pod, s.Container, s.Image}
		if old, ok := m.ctrKeys[s.ID]; ok && !equal(old, lv) {
			m.ContainerScore.DeleteLabelValues(old...)
		}
		m.ctrKeys[s.ID] = lv
		m.ContainerScore.WithLabelValues(lv...).Set(s.Score)
		live[s.ID] = true
	}
	for id, lv := range m.ctrKeys {
		if !live[id] {
			m.ContainerScore.DeleteLabelValues(lv...)
			delete(m.ctrKeys, id)
		}
	}
}

// RemoveContainer deletes a container's score series (it exited).
func (m *Metrics) RemoveContainer(id string) {
	m.ctrMu.Lock()
	defer m.ctrMu.Unlock()
	if lv, ok := m.ctrKeys[id]; ok {
		m.ContainerScore.DeleteLabelValues(lv...)
		delete(m.ctrKeys, id)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SetNamespaceModes sets driftwatch_namespaces{mode} from counts per mode.
func (m *Metrics) SetNamespaceModes(counts map[event.Mode]int) {
	for _, mode := range event.Modes {
		m.Namespaces.WithLabelValues(string(mode)).Set(float64(counts[mode]))
	}
}

// SetProfiles sets driftwatch_profiles{state} from counts per state; states
// absent from counts are set to 0 when known from earlier calls.
func (m *Metrics) SetProfiles(counts map[string]int) {
	m.ctrMu.Lock()
	defer m.ctrMu.Unlock()
	if m.states == nil {
		m.states = map[string]bool{}
	}
	for state := range m.states {
		if _, ok := counts[state]; !ok {
			m.Profiles.WithLabelValues(state).Set(0)
		}
	}
	for state, n := range counts {
		m.states[state] = true
		m.Profiles.WithLabelValues(state).Set(float64(n))
	}
}

// SetProfileCategories sets driftwatch_profile_categories{category,state}
// from counts[category][state]; every pair not in counts is 0.
func (m *Metrics) SetProfileCategories(categories, states []string, counts map[string]map[string]int) {
	for _, c := range categories {
		for _, s := range states {
			m.ProfileCategories.WithLabelValues(c, s).Set(float64(counts[c][s]))
		}
	}
}

// RulesReloaded records a successful load of n rules.
func (m *Metrics) RulesReloaded(n int, at time.Time) {
	m.RulesLoaded.Set(float64(n))
	m.RulesLastReload.Set(float64(at.UnixNano()) / 1e9)
}

// SetReady makes /healthz answer 200 (the pipeline runs) or 503.
func (m *Metrics) SetReady(ok bool) { m.ready.Store(ok) }

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !m.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Wait waits for the servers Serve started to stop (after its ctx ended).
func (m *Metrics) Wait() { m.serving.Wait() }

// Serve listens on addr and serves Handler until ctx ends. It returns once
// listening (errors binding are returned at once) and shuts down in the
// background (see Wait).

func (m *Metrics) Serve(ctx context.Context, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	m.serving.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server stopped", "addr", addr, "err", err)
		}
	})
	m.serving.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return ln.Addr(), nil
}
