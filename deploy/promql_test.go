package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/runtime"
	dynfake "k8s.io/client-go/dynamic/fake"

	"github.com/driftwatch/driftwatch/agent/cluster"
	"github.com/driftwatch/driftwatch/agent/metrics"
	"github.com/driftwatch/driftwatch/profiler"
)

// exportedMetrics returns every series name the agent exports: its metrics
// registry with the cluster sync collector, histograms with their _bucket,
// _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := metrics.New(10, "test")
	reg.ObserveScore("x", 1) // vectors appear once they have a series
	reg.ContainerScore.WithLabelValues("a", "b", "c", "d").Set(1)
	reg.EventsLostTotal.WithLabelValues("file").Add(0)
	reg.OutputDropped.WithLabelValues("stdout").Add(0)
	reg.OutputErrors.WithLabelValues("stdout").Add(0)
	reg.AlertsTotal.WithLabelValues("r", "Warning", "ns").Add(0)
	reg.AlertsSuppressed.WithLabelValues("r", "Warning").Add(0)
	reg.SetProfiles(map[string]int{"learning": 1})
	s, err := cluster.New(dynfake.NewSimpleDynamicClient(runtime.NewScheme()), nil, profiler.New(nil, profiler.Config{}),
		cluster.Config{Node: "test", NoMerge: true, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	reg.Registry.MustRegister(cluster.NewCollector(s))
	fams, err := reg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range fams {
		known[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				known[f.GetName()+suf] = true
			}
		}
	}
	return known
}

// grafanaVars replaces Grafana's variables with values PromQL accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// metricNames parses expr with Prometheus' PromQL parser and returns the
// metric names of its selectors.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		t.Errorf("%s: %q: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			if name == "" {
				t.Errorf("%s: %q selects series without a metric name", where, expr)
			}
			names = append(names, name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("%s: %q names no metric", where, expr)
	}
	return names
}

func TestPrometheusRulePromQL(t *testing.T) {
	m := load(t)
	known := exportedMetrics(t)
	for _, g := range m.promRule.Spec.Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(t, "alert "+r.Alert, r.Expr) {
				if !known[n] {
					t.Errorf("alert %s uses %s, which the agent does not export", r.Alert, n)
				}
			}
		}
	}
}

type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	} `json:"panels"`
}

// TestGrafanaDashboardPromQL parses every query of the dashboard and its
// variables and checks each metric is one the agent exports, and that the
// dashboard covers what operators need.
func TestGrafanaDashboardPromQL(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard lacks uid or title")
	}
	known := exportedMetrics(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeated", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range metricNames(t, "panel "+p.Title, tg.Expr) {
				used[n] = true
				if !known[n] {
					t.Errorf("panel %q uses %s, which the agent does not export", p.Title, n)
				}
			}
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_]+)\)$`)
	for _, v := range d.Templating.List {
		q, _ := v.Query.(string)
		if v.Type != "query" {
			continue
		}
		mm := labelValues.FindStringSubmatch(q)
		if mm == nil {
			t.Errorf("variable %s: query %q is not label_values(<selector>, <label>)", v.Name, q)
			continue
		}
		for _, n := range metricNames(t, "variable "+v.Name, mm[1]) {
			if !known[n] {
				t.Errorf("variable %s uses %s, which the agent does not export", v.Name, n)
			}
		}
	}
	for _, want := range []string{"driftwatch_events_total", "driftwatch_events_lost_total", "driftwatch_alerts_total",
		"driftwatch_anomaly_score_bucket", "driftwatch_container_anomaly_score", "driftwatch_profiles",
		"driftwatch_alerts_suppressed_total", "driftwatch_profile_sync_writes_total"} {
		if !used[want] {
			t.Errorf("dashboard shows nothing of %s", want)
		}
	}
	// The checker itself must reject what the agent does not export.
	if names := metricNames(t, "self-check", `rate(driftwatch_no_such_metric_total[5m])`); slices.ContainsFunc(names, func(n string) bool { return known[n] }) {
		t.Error("unknown metric accepted")
	}
}
