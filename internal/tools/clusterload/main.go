// Command clusterload runs the real cluster profile sync (agent/cluster)
// for N simulated nodes against a real kube-apiserver and etcd (the e2e
// cache, started here on loopback) and reports API writes per second while
// learning and at steady state, conflict retries, object sizes, the time a
// new feature takes to reach the watching agents, and the API server's and
// etcd's CPU and memory. See docs/cluster.md for the results.
//
// Each simulated node has its own in-memory profiler and Syncer and learns
// synthetic streams for its images: every image has a pool of features
// shaped like the suite's profiles (mostly file paths, some executables,
// peers, listening ports and privilege changes); each node running the
// image sees the image's common core and a node-specific share of the rest,
// revealed over the learning periods. All nodes publish their slots; the
// first -watchers nodes also watch the merged profiles and stand for the
// merger Lease (watching costs every agent the same, so a few stand in for
// all: the fan-out is reported, not simulated).
//
//	go run ./internal/tools/clusterload -nodes 100 -images 300 -per-node 30
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"

	"github.com/driftwatch/driftwatch/agent/cluster"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testinfra"
	"github.com/driftwatch/driftwatch/profiler"
)

type params struct {
	Nodes, Images, PerNode, Features, Pool, Watchers int
	Period                                           time.Duration
	LearnPeriods, SteadyPeriods, Probes              int
	Deploy                                           string
}

// Result is what one run measured.
type Result struct {
	Params              params
	LearnSeconds        float64
	LearnSlotWrites     uint64
	LearnImageWrites    uint64
	SteadySeconds       float64
	SteadySlotWrites    uint64
	SteadyImageWrites   uint64
	Conflicts, Errors   uint64
	MaxSlotBytes        int
	MeanSlotBytes       int
	MaxImageBytes       int
	MeanImageBytes      int
	ImageProfiles       int
	NodeProfiles        int
	ConvergenceSeconds  []float64
	APIServerCPUCores   map[string]float64 // phase → cores
	EtcdCPUCores        map[string]float64
	APIServerMaxRSSMB   float64
	EtcdMaxRSSMB        float64
	LoadProgramMaxRSSMB float64
}

func main() {
	var p params
	flag.IntVar(&p.Nodes, "nodes", 100, "simulated nodes")
	flag.IntVar(&p.Images, "images", 300, "distinct images")
	flag.IntVar(&p.PerNode, "per-node", 30, "images per node")
	flag.IntVar(&p.Features, "features", 40, "features one node learns per image")
	flag.IntVar(&p.Pool, "pool", 120, "features per image over all nodes")
	flag.IntVar(&p.Watchers, "watchers", 3, "nodes that watch merged profiles and stand for the merger Lease")
	flag.DurationVar(&p.Period, "period", 15*time.Second, "sync period")
	flag.IntVar(&p.LearnPeriods, "learn-periods", 4, "periods of learning (features revealed evenly)")
	flag.IntVar(&p.SteadyPeriods, "steady-periods", 3, "periods of steady state measured")
	flag.IntVar(&p.Probes, "probes", 3, "convergence probes")
	flag.StringVar(&p.Deploy, "deploy", "deploy", "directory of the manifests (crd.yaml, namespace.yaml, rbac.yaml)")
	jsonOut := flag.String("json", "", "also write the result as JSON here")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	scope := testinfra.NewScope(log)
	var res Result
	err := scope.Run(func() { res = run(scope, p, log) })
	scope.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "clusterload: %v\n", err)
		os.Exit(1)
	}
	report(os.Stdout, res)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "clusterload: %v\n", err)
			os.Exit(1)
		}
	}
}

type node struct {
	name  string
	prof  *profiler.Profiler
	sync  *cluster.Syncer
	imgs  []int
	ctrs  map[int]*event.Container
	feats map[int][]int // image → its feature indexes in reveal order
}

var shP = &event.Process{Pid: 1, Exe: "/bin/sh", Args: []string{"sh"}}

// featureEvent returns the event of feature f of image i.
func featureEvent(c *event.Container, i, f int, t int64) *event.Enriched {
	app := &event.Process{Pid: 3, Exe: "/usr/bin/app", Args: []string{"app"}, Parent: shP, Container: c}
	sys := func(nr uint16, mod func(*event.Event)) *event.Enriched {
		ev := &event.Event{Kind: event.KindSyscall, Syscall: nr, Time: t, Ret: 3}
		mod(ev)
		return &event.Enriched{Event: ev, Proc: app, Container: c}
	}
	switch f % 20 {
	case 0, 1: // executables with their argv shape
		exe := fmt.Sprintf("/usr/bin/tool%d", f)
		p := &event.Process{Pid: 2, Exe: exe, Args: []string{exe, "--run"}, Parent: shP, Container: c}
		return &event.Enriched{Event: &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(exe), Argv: []byte(exe + "\x00--run")}, Proc: p, Container: c}
	case 2, 3, 4: // peers
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(f)}), 5432)
		return sys(event.SysConnect, func(e *event.Event) { e.Family, e.Proto, e.Dst = event.AFInet, event.ProtoTCP, dst })
	case 5: // a listening port
		return sys(event.SysBind, func(e *event.Event) {
			e.Family, e.Proto, e.Src = event.AFInet, event.ProtoTCP, netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(8000+f))
		})
	case 6: // logs written
		return sys(event.SysOpenat, func(e *event.Event) { e.Path, e.Flags = []byte(fmt.Sprintf("/var/log/app/part%d.log", f)), 0x441 })
	default: // files read, a few per directory
		return sys(event.SysOpenat, func(e *event.Event) { e.Path = []byte(fmt.Sprintf("/srv/app/d%d/file%d.dat", f%9, f)) })
	}
}

func hash(parts ...int) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(p) + "/"))
	}
	return h.Sum64()
}

func run(scope *testinfra.Scope, p params, log *slog.Logger) Result {
	res := Result{Params: p, APIServerCPUCores: map[string]float64{}, EtcdCPUCores: map[string]float64{}}
	k := testinfra.KubeAPIServer(scope)
	testinfra.Apply(scope, k.RESTConfig(), filepath.Join(p.Deploy, "namespace.yaml"), filepath.Join(p.Deploy, "crd.yaml"), filepath.Join(p.Deploy, "rbac.yaml"))
	cfg := k.RESTConfig()
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		scope.Fatalf("%v", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		scope.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// Node objects (the merger retires slots of nodes without one).
	names := make([]string, p.Nodes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for n := range names {
		names[n] = fmt.Sprintf("sim-node-%04d", n)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: names[n]}}, metav1.CreateOptions{}); err != nil {
				log.Error("create node", "err", err)
			}
		}()
	}
	wg.Wait()

	nodes := make([]*node, p.Nodes)
	for n := range nodes {
		nd := &node{name: names[n], prof: profiler.New(nil, profiler.Config{Logger: quiet}), ctrs: map[int]*event.Container{}, feats: map[int][]int{}}
		for j := 0; j < p.PerNode; j++ {
			img := (n*p.PerNode + j) % p.Images
			nd.imgs = append(nd.imgs, img)
			nd.ctrs[img] = &event.Container{ContainerInfo: event.ContainerInfo{
				ID: fmt.Sprintf("%s-c%d", names[n], img), Image: fmt.Sprintf("registry.example/team%d/svc%d:1.0", img%17, img),
				ImageRepo: fmt.Sprintf("registry.example/team%d/svc%d", img%17, img), ImageTag: "1.0",
				ImageDigest: fmt.Sprintf("sha256:%064x", hash(img)), StartTime: 1}}
			// The image's common core first, then a node-specific share.
			core := p.Features / 2
			fs := make([]int, 0, p.Features)
			for f := 0; f < core; f++ {
				fs = append(fs, f)
			}
			r := rand.New(rand.NewPCG(hash(n, img), 1))
			for _, f := range r.Perm(p.Pool - core)[:p.Features-core] {
				fs = append(fs, core+f)
			}
			nd.feats[img] = fs
		}
		watcher := n < p.Watchers
		nd.sync, err = cluster.New(dyn, kube, nd.prof, cluster.Config{
			Node: names[n], Period: p.Period, Refresh: 2 * p.Period, NoMerge: !watcher, NoWatch: !watcher, Logger: log.With("sim", names[n]),
			RetireGrace: time.Hour,
		})
		if err != nil {
			scope.Fatalf("%v", err)
		}
		nodes[n] = nd
	}

	// Resource sampling.
	apiPID, etcdPID := k.PIDs()
	var rssMu sync.Mutex
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			a, e, s := rssMB(apiPID), rssMB(etcdPID), rssMB(os.Getpid())
			rssMu.Lock()
			res.APIServerMaxRSSMB = max(res.APIServerMaxRSSMB, a)
			res.EtcdMaxRSSMB = max(res.EtcdMaxRSSMB, e)
			res.LoadProgramMaxRSSMB = max(res.LoadProgramMaxRSSMB, s)
			rssMu.Unlock()
		}
	}()
	type mark struct {
		t          time.Time
		api, etcd  float64
		slot, imgw uint64
	}
	totals := func() (slot, img, conf, errs uint64) {
		for _, nd := range nodes {
			st := nd.sync.Stats()
			slot += st.SlotWrites
			img += st.ImageWrites
			conf += st.Conflicts
			errs += st.Errors
		}
		return
	}
	at := func() mark {
		s, i, _, _ := totals()
		return mark{t: time.Now(), api: cpuSeconds(apiPID), etcd: cpuSeconds(etcdPID), slot: s, imgw: i}
	}
	cores := func(a, b mark) (float64, float64) {
		d := b.t.Sub(a.t).Seconds()
		return (b.api - a.api) / d, (b.etcd - a.etcd) / d
	}

	for _, nd := range nodes {
		go func() { _ = nd.sync.Run(ctx) }()
	}
	for _, nd := range nodes[:p.Watchers] {
		nd.sync.WaitForCacheSync(ctx)
	}
	idle0 := at()
	time.Sleep(p.Period)
	idle1 := at()
	res.APIServerCPUCores["idle"], res.EtcdCPUCores["idle"] = cores(idle0, idle1)

	// Learning: each period reveals a share of every node's features and
	// repeats the ones already revealed.
	log.Info("learning", "nodes", p.Nodes, "images", p.Images, "per_node", p.PerNode, "periods", p.LearnPeriods)
	l0 := at()
	for period := 0; period < p.LearnPeriods; period++ {
		start := time.Now()
		reveal := (period + 1) * p.Features / p.LearnPeriods
		for _, nd := range nodes {
			now := time.Now().UnixNano()
			for _, img := range nd.imgs {
				for _, f := range nd.feats[img][:reveal] {
					nd.prof.Learn(featureEvent(nd.ctrs[img], img, f, now))
					nd.prof.Learn(featureEvent(nd.ctrs[img], img, f, now+1))
				}
			}
		}
		log.Info("learning period fed", "period", period, "feed_seconds", time.Since(start).Seconds())
		if d := p.Period - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	// Let the last learning be published (material now, minor counts at
	// the refresh, 2 periods) and merged.
	time.Sleep(3 * p.Period)
	l1 := at()
	res.LearnSeconds = l1.t.Sub(l0.t).Seconds()
	res.LearnSlotWrites, res.LearnImageWrites = l1.slot-l0.slot, l1.imgw-l0.imgw
	res.APIServerCPUCores["learning"], res.EtcdCPUCores["learning"] = cores(l0, l1)

	log.Info("steady state")
	s0 := at()
	time.Sleep(time.Duration(p.SteadyPeriods) * p.Period)
	s1 := at()
	res.SteadySeconds = s1.t.Sub(s0.t).Seconds()
	res.SteadySlotWrites, res.SteadyImageWrites = s1.slot-s0.slot, s1.imgw-s0.imgw
	res.APIServerCPUCores["steady"], res.EtcdCPUCores["steady"] = cores(s0, s1)

	// Convergence: a new feature on a node that does not watch, until every
	// watcher scores with it.
	r := rand.New(rand.NewPCG(42, 7))
	for probe := 0; probe < p.Probes; probe++ {
		nd := nodes[p.Watchers+r.IntN(p.Nodes-p.Watchers)]
		img := nd.imgs[r.IntN(len(nd.imgs))]
		c := nd.ctrs[img]
		f := p.Pool + 100 + probe // never in any pool
		ev := featureEvent(c, img, f, time.Now().UnixNano())
		key := profiler.KeyFor(c)
		text := ""
		nd.prof.Learn(ev)
		for _, pj := range nd.prof.Snapshot(key) {
			for _, cj := range pj.Categories {
				for _, ft := range cj.Features {
					if ft.Count == 1 && strings.Contains(ft.Feature, fmt.Sprint(f)) {
						text = ft.Feature
					}
				}
			}
		}
		t0 := time.Now()
		deadline := t0.Add(6 * p.Period)
		for _, w := range nodes[:p.Watchers] {
			for !hasFeature(w.sync.Merged(), key, text) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
		}
		d := time.Since(t0)
		if time.Now().After(deadline) {
			log.Warn("probe did not converge", "probe", probe, "after", d)
			d = -1
		}
		res.ConvergenceSeconds = append(res.ConvergenceSeconds, d.Seconds())
		log.Info("probe", "node", nd.name, "key", key, "feature", text, "seconds", d.Seconds())
	}
	_, _, res.Conflicts, res.Errors = totals()

	// Object sizes as stored.
	for _, gvr := range []struct {
		name string
		max  *int
		mean *int
		n    *int
	}{{"imageprofiles", &res.MaxImageBytes, &res.MeanImageBytes, &res.ImageProfiles}, {"nodeprofiles", &res.MaxSlotBytes, &res.MeanSlotBytes, &res.NodeProfiles}} {
		g := cluster.ImageProfileGVR
		if gvr.name == "nodeprofiles" {
			g = cluster.NodeProfileGVR
		}
		list, err := dyn.Resource(g).List(ctx, metav1.ListOptions{})
		if err != nil {
			scope.Fatalf("list %s: %v", gvr.name, err)
		}
		total := 0
		for _, it := range list.Items {
			b, _ := it.MarshalJSON()
			total += len(b)
			*gvr.max = max(*gvr.max, len(b))
		}
		*gvr.n = len(list.Items)
		if len(list.Items) > 0 {
			*gvr.mean = total / len(list.Items)
		}
	}
	return res
}

func hasFeature(p *profiler.Profiler, key, text string) bool {
	found := false
	p.WithProfile(key, func(pr *profiler.Profile) {
		if pr == nil {
			return
		}
		for c := profiler.Category(0); c < profiler.NumCategories; c++ {
			pr.EachFeature(c, func(_ uint64, f *profiler.FeatureStat) {
				if f.Text == text {
					found = true
				}
			})
		}
	})
	return found
}

// cpuSeconds is a process's user+system CPU time.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rssMB is a process's resident set size.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func report(w io.Writer, r Result) {
	p := r.Params
	fmt.Fprintf(w, "clusterload: %d nodes × %d images per node (%d images), %d features per node-image (pool %d), period %v, %d watchers, GOMAXPROCS %d\n",
		p.Nodes, p.PerNode, p.Images, p.Features, p.Pool, p.Period, p.Watchers, runtime.GOMAXPROCS(0))
	perMin := func(n uint64, secs float64) float64 { return float64(n) / secs * 60 / float64(p.Nodes) }
	periods := r.LearnSeconds / p.Period.Seconds()
	fmt.Fprintf(w, "learning %.0fs (%.1f periods): %d slot writes (%.2f/s, %.2f per node per minute, %.2f per node per period), %d ImageProfile writes (%.2f/s)\n",
		r.LearnSeconds, periods, r.LearnSlotWrites, float64(r.LearnSlotWrites)/r.LearnSeconds, perMin(r.LearnSlotWrites, r.LearnSeconds),
		float64(r.LearnSlotWrites)/float64(p.Nodes)/periods, r.LearnImageWrites, float64(r.LearnImageWrites)/r.LearnSeconds)
	fmt.Fprintf(w, "steady %.0fs: %d slot writes, %d ImageProfile writes\n", r.SteadySeconds, r.SteadySlotWrites, r.SteadyImageWrites)
	fmt.Fprintf(w, "conflicts retried %d, errors %d\n", r.Conflicts, r.Errors)
	fmt.Fprintf(w, "objects: %d NodeProfiles max %d B mean %d B; %d ImageProfiles max %d B mean %d B\n",
		r.NodeProfiles, r.MaxSlotBytes, r.MeanSlotBytes, r.ImageProfiles, r.MaxImageBytes, r.MeanImageBytes)
	conv := append([]float64(nil), r.ConvergenceSeconds...)
	sort.Float64s(conv)
	fmt.Fprintf(w, "convergence (new feature → all watchers): %v s (bound 2 periods = %.0f s)\n", conv, 2*p.Period.Seconds())
	fmt.Fprintf(w, "kube-apiserver CPU cores idle %.2f learning %.2f steady %.2f, max RSS %.0f MB\n",
		r.APIServerCPUCores["idle"], r.APIServerCPUCores["learning"], r.APIServerCPUCores["steady"], r.APIServerMaxRSSMB)
	fmt.Fprintf(w, "etcd CPU cores idle %.2f learning %.2f steady %.2f, max RSS %.0f MB; load program max RSS %.0f MB\n",
		r.EtcdCPUCores["idle"], r.EtcdCPUCores["learning"], r.EtcdCPUCores["steady"], r.EtcdMaxRSSMB, r.LoadProgramMaxRSSMB)
}
