package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/driftwatch/driftwatch/agent/cluster"
	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// TestAgentPublishesClusterProfile runs the agent binary (BPF sensor) with
// cluster profile sync against a real kube-apiserver with deploy/'s CRDs:
// what it learns from a container of a pod becomes its NodeProfile slot and,
// merged by the agent itself (it wins the Lease), an ImageProfile that
// `kubectl get imageprofiles` would list, with the pod's image and node.
func TestAgentPublishesClusterProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: a kube-apiserver and several seconds of learning")
	}
	needRoot(t)
	k := testinfra.KubeAPIServer(t)
	deploy := filepath.Join("..", "..", "deploy")
	testinfra.Apply(t, k.RESTConfig(), filepath.Join(deploy, "namespace.yaml"), filepath.Join(deploy, "crd.yaml"))
	cs := k.Clientset(t)
	ctx := ctxTimeout(t, 3*time.Minute)
	const node, nsName, image = "e2e-node", "shop", "registry.test/shop/api:2.1"
	const digest = "sha256:1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: nsName, Labels: map[string]string{"driftwatch.io/mode": "learn"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	runPod(ctx, t, cs, nsName, "api", node, image, digest,
		"while true; do cat /etc/hostname >/dev/null; ls /etc >/dev/null; sleep 0.1; done", nil)

	s := newSink(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, cfg, fmt.Sprintf(`db: %s
outputs: ["http:%s"]
modes: {default: "off", host: "off"}
learning: {warm_up: 1s, min_stable: 2s, unseen_bound: 0.05}
kubernetes:
  enabled: "true"
  kubeconfig: %q
  profile_sync: {enabled: true, period: 1s, merge: true, namespace: driftwatch}
cri: {endpoint: none}
`, filepath.Join(dir, "profiles.db"), s.srv.URL, k.Kubeconfig()))
	a := startAgent(t, []string{"NODE_NAME=" + node}, "--config", cfg)
	a.waitMetric(t, 30*time.Second, "driftwatch_kubernetes_connected", func(v float64) bool { return v == 1 })
	a.waitMetric(t, 30*time.Second, `driftwatch_profile_sync_leader`, func(v float64) bool { return v == 1 })

	dyn, err := dynamic.NewForConfig(k.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	key := "registry.test/shop/api@" + digest
	var ip cluster.ImageProfile
	deadline := time.Now().Add(60 * time.Second)
	for {
		u, err := dyn.Resource(cluster.ImageProfileGVR).Get(ctx, cluster.ObjectName(key), metav1.GetOptions{})
		if err == nil {
			b, _ := u.MarshalJSON()
			ip = cluster.ImageProfile{}
			if err := json.Unmarshal(b, &ip); err != nil {
				t.Fatal(err)
			}
			if ip.Status.States.Process == "stable" && ip.Status.Features > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stable ImageProfile for %s after 60s (last: %+v, err %v)", key, ip.Status.States, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if ip.Spec.Key != key || ip.Spec.Image != image || ip.Status.Nodes != 1 || ip.Status.Observations == 0 {
		t.Errorf("ImageProfile spec %+v, nodes %d, observations %d", ip.Spec, ip.Status.Nodes, ip.Status.Observations)
	}
	np, err := dyn.Resource(cluster.NodeProfileGVR).Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the agent's NodeProfile: %v", err)
	}
	if gen, _, _ := unstructuredInt(np.Object, "spec", "generation"); gen < 1 {
		t.Errorf("NodeProfile generation %d", gen)
	}
	a.waitMetric(t, 10*time.Second, `driftwatch_profile_sync_merged_profiles`, func(v float64) bool { return v >= 1 })
	t.Logf("ImageProfile %s: %d features, %d observations, states %+v", ip.Name, ip.Status.Features, ip.Status.Observations, ip.Status.States)
}

func unstructuredInt(obj map[string]any, path ...string) (int64, bool, error) {
	cur := any(obj)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false, nil
		}
		cur = m[p]
	}
	switch v := cur.(type) {
	case int64:
		return v, true, nil
	case float64:
		return int64(v), true, nil
	}
	return 0, false, nil
}
