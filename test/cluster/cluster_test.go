// Package cluster holds the single-node Kubernetes cluster test: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet on
// containerd, built from the Go module proxy (test/e2e/build-kube.sh
// cluster); `kubectl apply -k` of deploy/ (through a test overlay) runs the
// agent DaemonSet from the image `make image-load` imports.
//
// It runs only when DRIFTWATCH_CLUSTER_TEST=1 (`make test-cluster` sets
// it): the first run builds the kube binaries (minutes), and every run
// needs root, BPF and about a minute. Without the variable it skips; with
// it, a missing prerequisite fails the test under DRIFTWATCH_REQUIRE_BPF=1.
package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftwatch/driftwatch/agent/cluster"
	"github.com/driftwatch/driftwatch/internal/testinfra"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// agentImage is the image deploy/daemonset.yaml runs, which `make image` tags.
const agentImage = "ghcr.io/driftwatch/driftwatch:local"

// modeLabel is the namespace label that sets a namespace's mode (docs/agent.md).
const modeLabel = "driftwatch.io/mode"

// TestClusterDaemonSet is issue 11's end-to-end check: the agent, deployed
// by `kubectl apply -k` of deploy/ as a DaemonSet pod from the image `make
// image-load` imported, learns a pod's behaviour in a namespace labelled
// learn, publishes it (an ImageProfile `kubectl get imageprofiles` lists),
// and once the namespace is relabelled detect raises an anomaly for a new
// binary in that pod, which reaches an HTTP sink with the pod's metadata.
func TestClusterDaemonSet(t *testing.T) {
	if os.Getenv("DRIFTWATCH_CLUSTER_TEST") != "1" {
		t.Skip("single-node cluster test: run it with `make test-cluster` (DRIFTWATCH_CLUSTER_TEST=1)")
	}
	testutil.NeedRoot(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		testutil.NeedBPF(t, "no kernel BTF")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := testinfra.StartCluster(t)
	t.Logf("cluster up in %v (node %s, kubelet root %s)", time.Since(start).Round(time.Millisecond), c.Node, c.RootDir)
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"kubelet", "kube-controller-manager", "kube-scheduler", "containerd"} {
				t.Logf("--- %s log tail:\n%s", name, c.LogTail(name, 25))
			}
			t.Logf("--- agent log tail:\n%s", agentLog(c, 40))
		}
	})

	// The agent's image, as an operator would load it.
	mk := exec.Command("make", "-C", repo, "image-load")
	mk.Env = append(os.Environ(), "CONTAINERD_ADDRESS="+c.Containerd.Socket())
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make image-load: %v\n%s", err, out)
	}
	// The workload's image: busybox, written by testinfra's OCI writer.
	const workloadImage = "driftwatch.test/shop/web:1"
	c.Containerd.ImportImage(t, workloadImage, testinfra.BusyboxRootfs(t), testinfra.ImageConfig{Cmd: []string{"/bin/sh"}})

	s := newSink(t)
	metricsPort := freePort(t)
	overlay := writeOverlay(t, repo, c, metricsPort, s.url)
	if out, err := c.Kubectl("apply", "-k", overlay); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("kubectl apply -k:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cs := c.Clientset(t)
	agentPod := waitDaemonSetPod(ctx, t, c)
	t.Logf("agent pod %s running (image %s)", agentPod.Name, agentPod.Status.ContainerStatuses[0].ImageID)
	// deploy/'s image reference, untouched by the overlay, resolved from
	// what `make image-load` imported (no registry is reachable).
	if got := agentPod.Spec.Containers[0].Image; got != agentImage {
		t.Errorf("agent pod runs image %q, want deploy/'s %q", got, agentImage)
	}
	if got := agentPod.Spec.Containers[0].ImagePullPolicy; got == corev1.PullAlways {
		t.Errorf("agent pod image pull policy %s: it would pull from a registry", got)
	}
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	waitMetric(ctx, t, c, metrics, "driftwatch_kubernetes_connected", func(v float64) bool { return v == 1 })
	waitMetric(ctx, t, c, metrics, "driftwatch_profile_sync_leader", func(v float64) bool { return v == 1 })

	const nsName, podName = "shop", "web"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: nsName, Labels: map[string]string{modeLabel: "learn"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitMetric(ctx, t, c, metrics, `driftwatch_namespaces{mode="learn"}`, func(v float64) bool { return v >= 1 })
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: nsName, Labels: map[string]string{"app": podName}},
		Spec: corev1.PodSpec{
			// Its own network namespace on the test bridge.
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever,
				// Benign: cat, ls and sleep in a loop. /tmp/miner appears only
				// when the test drops it in, after learning.
				Command: []string{"/bin/sh", "-c", "while true; do cat /etc/hostname >/dev/null; ls /etc >/dev/null; " +
					"if [ -x /tmp/miner ]; then /tmp/miner true; fi; sleep 0.2; done"},
			}},
		},
	}
	// The ServiceAccount admission plugin refuses pods until the
	// controller-manager has made the namespace's default ServiceAccount.
	for {
		_, err := cs.CoreV1().Pods(nsName).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			break
		}
		if ctx.Err() != nil || !strings.Contains(err.Error(), "serviceaccount") {
			t.Fatalf("create pod: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	running := c.PodRunning(t, nsName, podName, 2*time.Minute)
	if running.Spec.HostNetwork || running.Status.PodIP == "" || running.Status.PodIP == running.Status.HostIP {
		t.Errorf("pod %s/%s: pod IP %q (host %q): want its own address on the test bridge", nsName, podName, running.Status.PodIP, running.Status.HostIP)
	}
	t.Logf("pod %s/%s running, IP %s on bridge %s", nsName, podName, running.Status.PodIP, c.Bridge)
	ctrID := strings.TrimPrefix(running.Status.ContainerStatuses[0].ContainerID, "containerd://")

	// Learned and merged: an ImageProfile for the workload image, process stable.
	var ip cluster.ImageProfile
	for {
		ip = findImageProfile(t, c, "driftwatch.test/shop/web")
		if ip.Status.States.Process == "stable" && ip.Status.Features > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no ImageProfile for %s with a stable process category (last: %+v)", workloadImage, ip.Status)
		}
		time.Sleep(time.Second)
	}
	table, err := c.Kubectl("get", "imageprofiles")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get imageprofiles:\n%s", table)
	if !strings.Contains(string(table), "driftwatch.test/shop/web") {
		t.Errorf("kubectl get imageprofiles does not list the workload image:\n%s", table)
	}
	if ip.Status.Nodes != 1 {
		t.Errorf("ImageProfile %s: %d nodes contributing, want 1 (this node)", ip.Name, ip.Status.Nodes)
	}
	learnedAt := time.Now()

	// Detect: relabel the namespace; then the pod runs a binary it never ran.
	if out, err := c.Kubectl("label", "namespace", nsName, modeLabel+"=detect", "--overwrite"); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("%s", out)
	}
	waitMetric(ctx, t, c, metrics, `driftwatch_namespaces{mode="detect"}`, func(v float64) bool { return v >= 1 })
	// The learned loop keeps running in detect mode: no anomaly for it.
	time.Sleep(3 * time.Second)
	if bad := s.find(func(a alert) bool { return a.has("anomaly") && a.field("k8s.ns.name") == nsName }); bad != nil {
		t.Errorf("anomaly in %s before anything new ran: %s", nsName, bad.raw)
	}
	pid, err := c.ContainerPid(t, nsName, podName, "app")
	if err != nil {
		t.Fatal(err)
	}
	if err := testinfra.CopyFile("/bin/busybox", filepath.Join(fmt.Sprintf("/proc/%d/root", pid), "tmp", "miner"), 0o755); err != nil {
		t.Fatal(err)
	}
	an := s.wait(ctx, t, c, "an anomaly for /tmp/miner in pod shop/web", func(a alert) bool {
		return a.has("anomaly") && strings.HasPrefix(a.rule(), "Unexpected process") && a.field("k8s.ns.name") == nsName
	})
	t.Logf("anomaly %.1fs after the namespace left learn: %s", time.Since(learnedAt).Seconds(), an.raw)
	for field, want := range map[string]string{
		"k8s.pod.name":    podName,
		"k8s.ns.name":     nsName,
		"container.image": workloadImage,
	} {
		if got := an.field(field); got != want {
			t.Errorf("anomaly %s = %q, want %q", field, got, want)
		}
	}
	if id := an.field("container.id"); id == "" || !strings.HasPrefix(ctrID, id) {
		t.Errorf("anomaly container.id = %q, want a prefix of the pod's container %s", id, ctrID)
	}
	if !strings.Contains(string(an.raw), "miner") {
		t.Errorf("anomaly does not name the new binary: %s", an.raw)
	}

	// deploy/'s readiness probe (/healthz, here on 127.0.0.1) passes.
	for {
		p, err := cs.CoreV1().Pods("driftwatch").Get(ctx, agentPod.Name, metav1.GetOptions{})
		if err == nil && podReady(p) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("agent pod %s never ready (readiness probe): %v", agentPod.Name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if node, err := cs.CoreV1().Nodes().Get(ctx, c.Node, metav1.GetOptions{}); err == nil {
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				t.Logf("node %s Ready=%s (%s: %s)", c.Node, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// writeOverlay writes a kustomization that takes deploy/ as its base and
// fits it to this test cluster: no PrometheusRule (no Prometheus Operator
// here); the DaemonSet on the host network (no CNI; the API server is on
// 127.0.0.1), its probes on 127.0.0.1, its store and CRI socket on this
// test's paths; the agent's configuration with the test's metrics port,
// sink and fast learning. The image and everything else stay deploy/'s.
func writeOverlay(t *testing.T, repo string, c *testinfra.Cluster, metricsPort int, sinkURL string) string {
	t.Helper()
	dir := t.TempDir()
	apiPort := c.Host()[strings.LastIndexByte(c.Host(), ':')+1:]
	cgroupMount := "/host" + testinfra.CgroupV2Mount(t)
	store := filepath.Join(c.Dir(), "driftwatch-store")
	// The agent's seccomp profile where deploy/daemonset.yaml expects it.
	seccomp := filepath.Join(c.RootDir, "seccomp", "driftwatch", "agent.json")
	if err := os.MkdirAll(filepath.Dir(seccomp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := testinfra.CopyFile(filepath.Join(repo, "deploy", "seccomp", "driftwatch-agent.json"), seccomp, 0o644); err != nil {
		t.Fatal(err)
	}
	agentYAML := fmt.Sprintf(`db: /var/lib/driftwatch/driftwatch.db
default_rules: true
rules: [/etc/driftwatch/rules.d]
metrics_addr: 127.0.0.1:%d
outputs: ["http:%s"]
modes: {default: "off", host: "off"}
learning: {warm_up: 1s, min_stable: 2s, unseen_bound: 0.05}
kubernetes:
  enabled: "true"
  profile_sync: {enabled: true, period: 2s, merge: true}
cri: {endpoint: unix:///host/run/containerd/containerd.sock}
proc_root: /host/proc
cgroup_mount: %s
log_format: json
`, metricsPort, sinkURL, cgroupMount)
	ops := []map[string]any{
		{"op": "add", "path": "/spec/template/spec/hostNetwork", "value": true},
		{"op": "add", "path": "/spec/template/spec/dnsPolicy", "value": "ClusterFirstWithHostNet"},
		// In-cluster config: the API server is on loopback, not behind a Service.
		{"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}},
		{"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": apiPort}},
		{"op": "test", "path": "/spec/template/spec/containers/0/ports/0/name", "value": "metrics"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/ports/0/containerPort", "value": metricsPort},
		{"op": "add", "path": "/spec/template/spec/containers/0/readinessProbe/httpGet/host", "value": "127.0.0.1"},
		{"op": "add", "path": "/spec/template/spec/containers/0/livenessProbe/httpGet/host", "value": "127.0.0.1"},
		{"op": "test", "path": "/spec/template/spec/volumes/2/name", "value": "store"},
		{"op": "replace", "path": "/spec/template/spec/volumes/2/hostPath/path", "value": store},
		{"op": "test", "path": "/spec/template/spec/volumes/6/name", "value": "containerd"},
		{"op": "replace", "path": "/spec/template/spec/volumes/6/hostPath/path", "value": c.Containerd.Socket()},
	}
	opsJSON, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "driftwatch", "namespace": "driftwatch"},
		"data":     map[string]any{"agent.yaml": agentYAML},
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := filepath.Rel(dir, filepath.Join(repo, "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	// JSON is YAML: the patches are embedded as JSON strings.
	kust := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
patches:
  - patch: |
      $patch: delete
      apiVersion: monitoring.coreos.com/v1
      kind: PrometheusRule
      metadata: {name: driftwatch, namespace: driftwatch}
  - target: {group: apps, version: v1, kind: DaemonSet, name: driftwatch}
    patch: %q
  - patch: %q
`, base, opsJSON, cm)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitDaemonSetPod waits for the driftwatch DaemonSet's pod on the node to run.
func waitDaemonSetPod(ctx context.Context, t *testing.T, c *testinfra.Cluster) *corev1.Pod {
	t.Helper()
	cs := c.Clientset(t)
	var last string
	for ctx.Err() == nil {
		pods, err := cs.CoreV1().Pods("driftwatch").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=driftwatch"})
		if err == nil && len(pods.Items) == 1 {
			p := pods.Items[0]
			if p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil {
				return &p
			}
			b, _ := json.Marshal(p.Status)
			last = string(b)
		} else if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d pods", len(pods.Items))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the driftwatch DaemonSet pod is not running (last: %s)", last)
	return nil
}

// agentLog returns the tail of the agent container's log files.
func agentLog(c *testinfra.Cluster, lines int) string {
	files, _ := filepath.Glob(filepath.Join(c.PodLogsDir(), "driftwatch_*", "agent", "*.log"))
	var all []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// findImageProfile returns the ImageProfile whose image starts with repo,
// read with kubectl (zero value when none).
func findImageProfile(t *testing.T, c *testinfra.Cluster, repo string) cluster.ImageProfile {
	t.Helper()
	out, err := c.Kubectl("get", "imageprofiles", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []cluster.ImageProfile `json:"items"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("kubectl get imageprofiles -o json: %v", err)
	}
	for _, ip := range list.Items {
		if strings.HasPrefix(ip.Spec.Image, repo) {
			return ip
		}
	}
	return cluster.ImageProfile{}
}

// waitMetric polls the agent's /metrics until the sample named (with its
// labels, as exposed) satisfies ok.
func waitMetric(ctx context.Context, t *testing.T, c *testinfra.Cluster, url, sample string, ok func(float64) bool) {
	t.Helper()
	last := "no scrape"
	for ctx.Err() == nil {
		v, err := scrape(url, sample)
		if err == nil && ok(v) {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = strconv.FormatFloat(v, 'g', -1, 64)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("metric %s not as wanted (last: %s); agent log:\n%s", sample, last, agentLog(c, 30))
}

func scrape(url, sample string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, val, found := strings.Cut(sc.Text(), " ")
		if found && name == sample {
			return strconv.ParseFloat(strings.Fields(val)[0], 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no sample %s", url, sample)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// alert is one Falco-format alert the sink received.
type alert struct {
	raw []byte
	m   map[string]any
}

func (a alert) rule() string { s, _ := a.m["rule"].(string); return s }

// has reports whether the alert carries tag.
func (a alert) has(tag string) bool {
	tags, _ := a.m["tags"].([]any)
	for _, x := range tags {
		if x == tag {
			return true
		}
	}
	return false
}

func (a alert) field(k string) string {
	f, _ := a.m["output_fields"].(map[string]any)
	if v, ok := f[k]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

// sink is an HTTP alert receiver on loopback (the agent's http output).
type sink struct {
	url    string
	mu     sync.Mutex
	alerts []alert
}

func newSink(t *testing.T) *sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{url: "http://" + l.Addr().String() + "/"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.alerts = append(s.alerts, alert{raw: b, m: m})
		s.mu.Unlock()
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *sink) find(match func(alert) bool) *alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.alerts {
		if match(s.alerts[i]) {
			return &s.alerts[i]
		}
	}
	return nil
}

func (s *sink) wait(ctx context.Context, t *testing.T, c *testinfra.Cluster, what string, match func(alert) bool) alert {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if a := s.find(match); a != nil {
			return *a
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.mu.Lock()
	n := len(s.alerts)
	s.mu.Unlock()
	t.Fatalf("no alert: %s (%d other alerts received); agent log:\n%s", what, n, agentLog(c, 30))
	return alert{}
}
