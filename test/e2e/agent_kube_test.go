package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// TestAgentKubernetes runs the agent against a real kube-apiserver and etcd:
// pod metadata from the node's pod informer shows up on alerts, and
// relabelling the namespace flips it from learn to detect without a
// restart, after which a new binary in the pod raises an anomaly.
func TestAgentKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: a kube-apiserver and several seconds of learning")
	}
	needRoot(t)
	k := testinfra.KubeAPIServer(t)
	cs := k.Clientset(t)
	ctx := ctxTimeout(t, 3*time.Minute)
	const node, nsName, image = "e2e-node", "team", "registry.test/team/web:1.0"
	const digest = "sha256:5d5c0e4fd9d7d1f6e0f0e7c1c3a0a7b1e9d4c2b8a6f3e1d0c9b8a7f6e5d4c3b2"

	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: nsName, Labels: map[string]string{"driftwatch.io/mode": "learn"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A runc container in this pod's cgroup stands in for the kubelet's.
	ctr := runPod(ctx, t, cs, nsName, "web", node, image, digest,
		"while true; do cat /etc/hostname >/dev/null; ls /var/www >/dev/null; sleep 0.1; done", map[string]string{"app": "web"})

	s := newSink(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, cfg, fmt.Sprintf(`db: %s
outputs: ["http:%s"]
modes: {default: "off", host: "off"}
learning: {warm_up: 1s, min_stable: 2s, unseen_bound: 0.05}
kubernetes: {enabled: "true", kubeconfig: %q}
cri: {endpoint: none}
`, filepath.Join(dir, "profiles.db"), s.srv.URL, k.Kubeconfig()))
	a := startAgent(t, []string{"NODE_NAME=" + node}, "--config", cfg)
	a.waitMetric(t, 30*time.Second, "driftwatch_kubernetes_connected", func(v float64) bool { return v == 1 })
	a.waitMetric(t, 10*time.Second, `driftwatch_namespaces{mode="learn"}`, func(v float64) bool { return v >= 1 })

	// Pod metadata on a rule alert.
	ctr.Exec(t, "cat", "/etc/shadow")
	r := s.wait(t, 5*time.Second, "for cat /etc/shadow in the pod", func(r received) bool {
		return r.rule() == shadowRule && strings.HasPrefix(ctr.ID(), r.field("container.id")) && r.field("container.id") != ""
	})
	for field, want := range map[string]string{"k8s.pod.name": "web", "k8s.ns.name": nsName, "container.image.repository": "registry.test/team/web"} {
		if got := r.field(field); got != want {
			t.Errorf("%s = %q, want %q: %s", field, got, want, r.Raw)
		}
	}

	// Learn, then flip the namespace to detect by relabelling it.
	a.waitLog(t, 30*time.Second, "category stable\" profile=registry.test/team/web@"+digest+" category=process")
	a.waitMetric(t, 20*time.Second, `driftwatch_profiles{state="stable"}`, func(v float64) bool { return v >= 1 })
	ns, err := cs.CoreV1().Namespaces().Get(ctx, nsName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels["driftwatch.io/mode"] = "detect"
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.waitMetric(t, 10*time.Second, `driftwatch_namespaces{mode="detect"}`, func(v float64) bool { return v >= 1 })

	if err := testinfra.CopyFile("/bin/busybox", filepath.Join(fmt.Sprintf("/proc/%d/root", ctr.Pid()), "tmp", "miner"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = ctr.Command("/tmp/miner", "true").Run()
	an := s.wait(t, 10*time.Second, "anomaly for the new binary", func(r received) bool {
		return strings.HasPrefix(r.rule(), "Unexpected process") && strings.HasPrefix(ctr.ID(), r.field("container.id")) && r.field("container.id") != ""
	})
	if got := an.field("k8s.ns.name"); got != nsName {
		t.Errorf("anomaly k8s.ns.name = %q: %s", got, an.Raw)
	}
	if got := an.field("k8s.pod.name"); got != "web" {
		t.Errorf("anomaly k8s.pod.name = %q: %s", got, an.Raw)
	}
	a.waitMetric(t, 10*time.Second, `driftwatch_container_anomaly_score{container="app",image="`+image+`",namespace="team",pod="web"}`, func(v float64) bool { return v > 0 })
	if v := metric(a.scrape(t), `driftwatch_anomaly_score_count{namespace="team"}`); v < 1 {
		t.Errorf("driftwatch_anomaly_score_count{namespace=\"team\"} = %v", v)
	}
}
