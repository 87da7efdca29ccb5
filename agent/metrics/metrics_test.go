package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/driftwatch/driftwatch/event"
)

func TestEventsAndLatency(t *testing.T) {
	m := New(10, "test")
	now := time.Now()
	for _, k := range []event.Kind{event.KindSyscall, event.KindSyscall, event.KindExec} {
		m.ObserveEvent(&event.Event{Kind: k, Time: now.Add(-2 * time.Millisecond).UnixNano()}, now)
	}
	if v := value(t, m.EventsTotal.WithLabelValues("syscall")); v != 2 {
		t.Errorf("syscall events = %v", v)
	}
	if v := value(t, m.EventsTotal.WithLabelValues("exec")); v != 1 {
		t.Errorf("exec events = %v", v)
	}
	if n := count(t, m.PipelineLatency); n != 1 {
		t.Errorf("latency series = %d", n)
	}
}

func TestLostDeltas(t *testing.T) {
	m := New(10, "test")
	cases := []struct {
		cum  map[string]uint64
		want map[string]uint64
		tot  float64
	}{
		{map[string]uint64{"syscall": 5, "exec": 0}, map[string]uint64{"syscall": 5}, 5},
		{map[string]uint64{"syscall": 5, "exec": 0}, map[string]uint64{}, 5},
		{map[string]uint64{"syscall": 12, "exec": 1}, map[string]uint64{"syscall": 7, "exec": 1}, 12},
	}
	for i, tc := range cases {
		got := m.SetLost(tc.cum)
		if len(got) != len(tc.want) {
			t.Errorf("step %d: delta %v, want %v", i, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("step %d: delta[%s] = %d, want %d", i, k, got[k], v)
			}
		}
		if v := value(t, m.EventsLostTotal.WithLabelValues("syscall")); v != tc.tot {
			t.Errorf("step %d: lost total = %v, want %v", i, v, tc.tot)
		}
	}
}

func TestNamespaceCap(t *testing.T) {
	m := New(2, "test")
	got := []string{m.Namespace("a"), m.Namespace("b"), m.Namespace("c"), m.Namespace("a")}
	want := []string{"a", "b", OtherNamespace, "a"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Namespace #%d = %q, want %q", i, got[i], want[i])
		}
	}
	for i := 0; i < 50; i++ {
		m.ObserveAlert(&event.Alert{Rule: "r", Priority: event.PriorityWarning, Namespace: strings.Repeat("x", i+1)})
	}
	if n := count(t, m.AlertsTotal); n != 1 {
		t.Errorf("alerts series with a cap of 2 (both used) = %d, want 1 (_other)", n)
	}
}

func TestContainerScoresRemoved(t *testing.T) {
	m := New(10, "test")
	m.SetContainerScores([]ContainerScore{
		{ID: "c1", Namespace: "ns", Pod: "p1", Container: "app", Image: "img:1", Score: 3},
		{ID: "c2", Namespace: "ns", Pod: "p2", Container: "app", Image: "img:1", Score: 9},
	})
	if n := count(t, m.ContainerScore); n != 2 {
		t.Fatalf("series = %d, want 2", n)
	}
	m.SetContainerScores([]ContainerScore{{ID: "c2", Namespace: "ns", Pod: "p2", Container: "app", Image: "img:1", Score: 4}})
	if n := count(t, m.ContainerScore); n != 1 {
		t.Errorf("after c1 went: series = %d, want 1", n)
	}
	if v := value(t, m.ContainerScore.WithLabelValues("ns", "p2", "app", "img:1")); v != 4 {
		t.Errorf("c2 score = %v", v)
	}
	m.RemoveContainer("c2")
	if n := count(t, m.ContainerScore); n != 0 {
		t.Errorf("after RemoveContainer: series = %d", n)
	}
}

func TestProfilesStateGoesToZero(t *testing.T) {
	m := New(10, "test")
	m.SetProfiles(map[string]int{"learning": 3})
	m.SetProfiles(map[string]int{"stable": 3})
	if v := value(t, m.Profiles.WithLabelValues("learning")); v != 0 {
		t.Errorf("learning = %v, want 0", v)
	}
	if v := value(t, m.Profiles.WithLabelValues("stable")); v != 3 {
		t.Errorf("stable = %v", v)
	}
}

func TestServe(t *testing.T) {
	m := New(10, "test")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("healthz before ready = %d", code)
	}
	m.SetReady(true)
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("healthz when ready = %d", code)
	}
	m.ObserveEvent(&event.Event{Kind: event.KindExec}, time.Now())
	m.ObserveScore("prod", 7)
	m.SetNamespaceModes(map[event.Mode]int{event.ModeDetect: 2})
	_, body := get("/metrics")
	for _, want := range []string{
		`driftwatch_events_total{kind="exec"} 1`,
		`driftwatch_anomaly_score_bucket{namespace="prod",le="8"} 1`,
		`driftwatch_namespaces{mode="detect"} 2`,
		`driftwatch_namespaces{mode="learn"} 0`,
		`driftwatch_build_info{`,
		`driftwatch_kubernetes_connected 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, err := m.Serve(ctx, addr.String()); err == nil {
		t.Error("second Serve on a used address succeeded")
	}
}

// value reads a single-series collector's value.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	var pb dto.Metric
	n := 0
	for m := range ch {
		n++
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Fatalf("collector has %d series, want 1", n)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge")
	return 0
}

// count returns how many series a collector has.
func count(t *testing.T, c prometheus.Collector) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	c.Collect(ch)
	close(ch)
	n := 0
	for range ch {
		n++
	}
	return n
}

func BenchmarkObserveEvent(b *testing.B) {
	m := New(10, "bench")
	ev := &event.Event{Kind: event.KindSyscall, Time: time.Now().UnixNano()}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.ObserveEvent(ev, now)
	}
}

func BenchmarkObserveAlert(b *testing.B) {
	m := New(10, "bench")
	a := &event.Alert{Rule: "Credential file read", Priority: event.PriorityWarning, Namespace: "team"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.ObserveAlert(a)
	}
}
