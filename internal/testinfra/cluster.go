package testinfra

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Cluster is a single-node Kubernetes cluster on this machine: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler on loopback,
// and a kubelet running pods on a private containerd (StartContainerd).
// Every server listens on 127.0.0.1 only. Pods get their own network
// namespace on a test-made bridge without an address (Debian's bridge and
// host-local CNI plugins): pods reach each other, nothing else, and the
// host's routes, forwarding and firewall are untouched. Host-network pods
// are the host's loopback, where the API server is.
type Cluster struct {
	*Kube
	// Containerd is the runtime the kubelet uses.
	Containerd *Containerd
	// Node is the node's name.
	Node string
	// RootDir is the kubelet's --root-dir (volumes, seccomp profiles).
	RootDir string
	// CgroupRoot is the kubelet's cgroupRoot, e.g. "/dwk-1a2b3c"; pods
	// live in CgroupRoot/kubepods in every hierarchy.
	CgroupRoot string
	// Bridge is the pods' network bridge (no address on the host).
	Bridge string

	dir     string
	bin     string
	kubelet *proc
}

// kubeletSysctls are the kernel tunables the kubelet sets at start
// (overcommit always, panic on oops ...). The kubelet runs in its own mount
// namespace where these files are bind-mounted copies holding the values
// it wants, so it does not change the shared host's kernel settings.
var kubeletSysctls = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// StartCluster builds the binaries when needed (ClusterBinDir), starts the
// cluster and returns it once its node is Ready.
//
// Host footprint: files under a /tmp/dwk-* directory, cgroups under
// CgroupRoot in each hierarchy, the pods' bridge, the containerd of
// StartContainerd. The kubelet's kernel tunables and its hard-coded
// /var/log/containers symlinks stay in its private mount namespace; its
// root directory is a shared bind mount, so the volumes it mounts reach
// containerd. Teardown deletes every pod through the API (the kubelet
// stops them), stops the servers, removes what is left through the CRI and
// then removes all of it.
func StartCluster(t T) *Cluster {
	t.Helper()
	bin := ClusterBinDir(t)
	NeedTool(t, "unshare")
	NeedTool(t, "mount")
	ctd := StartContainerd(t)
	c := &Cluster{Containerd: ctd, bin: bin, Node: "dw-node-" + randHex(3)}
	// A short path: kubelet sockets live below it (sun_path is 108 bytes).
	dir, err := os.MkdirTemp("/tmp", "dwk-")
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	c.dir = dir
	c.RootDir = filepath.Join(dir, "kubelet")
	c.CgroupRoot = "/" + filepath.Base(dir)
	// Cleanups run last-registered first: the kubelet stops, then pods are
	// removed through the CRI, the bridge, mounts and cgroups go, then
	// containerd (registered by StartContainerd) stops.
	t.Cleanup(func() { c.removeCgroupRoot(t) })
	c.writeCNIConfig(t)
	t.Cleanup(func() {
		unmountBelow(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("testinfra: %v", err)
		}
	})
	t.Cleanup(func() { c.removeAllPods(t) })

	c.Kube = startKube(t, bin, true)
	c.startControlPlane(t)
	c.startKubelet(t)
	return c
}

func (c *Cluster) startControlPlane(t T) {
	t.Helper()
	kc := c.Kubeconfig()
	ca := filepath.Join(c.Kube.dir, "certs", "apiserver.crt")
	for _, comp := range []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--root-ca-file", ca,
			"--service-account-private-key-file", filepath.Join(c.Kube.dir, "sa.key"),
			"--use-service-account-credentials=false",
		}},
		{"kube-scheduler", nil},
	} {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testinfra: %v", err)
		}
		args := append([]string{
			"--kubeconfig", kc,
			"--authentication-kubeconfig", kc,
			"--authorization-kubeconfig", kc,
			"--bind-address", "127.0.0.1",
			"--secure-port", strconv.Itoa(port),
			"--leader-elect=false",
			"--cert-dir", filepath.Join(c.dir, comp.name),
		}, comp.args...)
		startLogged(t, c.dir, comp.name, filepath.Join(c.bin, comp.name), args...)
		waitHTTP(t, c.dir, comp.name, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), "", 60*time.Second)
	}
}

func (c *Cluster) startKubelet(t T) {
	t.Helper()
	port, err1 := freePort()
	healthz, err2 := freePort()
	for _, err := range []error{err1, err2} {
		if err != nil {
			t.Fatalf("testinfra: %v", err)
		}
	}
	for _, d := range []string{c.RootDir, filepath.Join(c.dir, "pod-logs"), filepath.Join(c.dir, "var-log"), filepath.Join(c.dir, "sysctl")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("testinfra: %v", err)
		}
	}
	c.makeCgroupRoot(t)
	// Mounts the kubelet makes below its root directory (projected token
	// volumes, ...) must reach containerd in the host's mount namespace.
	if err := syscall.Mount(c.RootDir, c.RootDir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("testinfra: bind %s: %v", c.RootDir, err)
	}
	if err := syscall.Mount("", c.RootDir, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatalf("testinfra: make-shared %s: %v", c.RootDir, err)
	}
	cfg := filepath.Join(c.dir, "kubelet.yaml")
	writeOrFatal(t, cfg, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
# This machine mounts cgroup v1 controllers at /sys/fs/cgroup (cgroup2 only
# at /sys/fs/cgroup/unified), so the kubelet and runc use v1, cgroupfs.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: %s
failSwapOn: false
containerRuntimeEndpoint: %s
imageServiceEndpoint: %s
podLogsDir: %s
# Images are imported, never pulled: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
serializeImagePulls: false
resolvConf: /etc/resolv.conf
`, port, healthz, c.CgroupRoot, c.Containerd.Endpoint(), c.Containerd.Endpoint(), filepath.Join(c.dir, "pod-logs")))
	var binds []string
	for name, v := range kubeletSysctls {
		f := filepath.Join(c.dir, "sysctl", strings.ReplaceAll(name, "/", "."))
		writeOrFatal(t, f, v+"\n")
		binds = append(binds, fmt.Sprintf("mount --bind %s /proc/sys/%s", f, name))
	}
	script := "set -e\n" + strings.Join(binds, "\n") +
		"\nmount --bind " + filepath.Join(c.dir, "var-log") + " /var/log\nexec \"$@\"\n"
	c.kubelet = startLogged(t, c.dir, "kubelet", "unshare",
		"--mount", "--propagation", "unchanged", "--",
		"/bin/sh", "-c", script, "kubelet",
		filepath.Join(c.bin, "kubelet"),
		"--config", cfg,
		"--kubeconfig", c.Kubeconfig(),
		"--root-dir", c.RootDir,
		"--hostname-override", c.Node,
		"--v=2",
	)
	waitHTTP(t, c.dir, "kubelet", fmt.Sprintf("http://127.0.0.1:%d/healthz", healthz), "", 90*time.Second)
	cs := c.Clientset(t)
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := cs.CoreV1().Nodes().Get(context.Background(), c.Node, metav1.GetOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			logData, _ := os.ReadFile(filepath.Join(c.dir, "kubelet.log"))
			t.Fatalf("testinfra: node %s not registered after 90s (%v); kubelet log:\n%s", c.Node, err, tail(logData, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Before the kubelet stops: delete every pod so it tears them down
	// (volumes unmounted, containers stopped) itself.
	t.Cleanup(func() { c.drain(t) })
	// containerd reports its network ready once it loaded the CNI
	// configuration; then the kubelet marks the node Ready.
	for {
		n, err := cs.CoreV1().Nodes().Get(context.Background(), c.Node, metav1.GetOptions{})
		if err == nil && nodeReady(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testinfra: node %s not Ready after 90s (%s); kubelet log:\n%s", c.Node, nodeReadyMessage(n), c.LogTail("kubelet", 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeReadyMessage(n *corev1.Node) string {
	if n == nil {
		return "no node"
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return fmt.Sprintf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
		}
	}
	return "no Ready condition"
}

// writeCNIConfig gives pods a network: a bridge named dwbr<hex> without an
// address (isGateway false: no route, no ip_forward; ipMasq false: no
// firewall rules) and host-local addresses from a 10.252.X.0/24 kept in
// the test directory. Teardown deletes the bridge.
func (c *Cluster) writeCNIConfig(t T) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			t.Fatalf("testinfra: CNI plugin %s missing in %s (apt-get install containernetworking-plugins; test/install-tools.sh): %v", p, CNIBinDir, err)
		}
	}
	NeedTool(t, "ip")
	c.Bridge = "dwbr" + randHex(3)
	subnet := fmt.Sprintf("10.252.%d.0/24", randByte())
	// libcni caches results under /var/lib/cni (containerd 1.6 offers no
	// setting); remove what it leaves empty when it was not there before.
	const cniCache = "/var/lib/cni"
	if _, err := os.Stat(cniCache); errors.Is(err, os.ErrNotExist) {
		t.Cleanup(func() { removeEmptyDirs(cniCache) })
	}
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join("/sys/class/net", c.Bridge)); err == nil {
			if _, err := run("ip", "link", "del", c.Bridge); err != nil {
				t.Logf("testinfra: %v", err)
			}
		}
	})
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "driftwatch-test",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": false,
    "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}
  }]
}
`, c.Bridge, subnet, filepath.Join(c.dir, "cni-ipam"))
	dir := filepath.Join(c.Containerd.Dir(), "cni", "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	writeOrFatal(t, filepath.Join(dir, "10-driftwatch-test.conflist"), conf)
}

func writeOrFatal(t T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
}

// Dir is the cluster's temporary directory; the logs of its servers are
// there (kubelet.log, kube-controller-manager.log, kube-scheduler.log).
func (c *Cluster) Dir() string { return c.dir }

// PodLogsDir is where containerd writes the pods' container logs
// (<namespace>_<pod>_<uid>/<container>/<n>.log).
func (c *Cluster) PodLogsDir() string { return filepath.Join(c.dir, "pod-logs") }

// LogTail returns the last lines of a server's log (kubelet,
// kube-controller-manager, kube-scheduler, kube-apiserver, etcd) or of
// containerd.
func (c *Cluster) LogTail(name string, lines int) string {
	dir := c.dir
	switch name {
	case "kube-apiserver", "etcd":
		dir = c.Kube.dir
	case "containerd":
		b, _ := os.ReadFile(c.Containerd.log)
		return tail(b, lines)
	}
	b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	return tail(b, lines)
}

// Kubectl runs the cluster's kubectl with the admin kubeconfig and returns
// its standard output; the error carries standard error.
func (c *Cluster) Kubectl(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ContainerPid returns the host pid of the running container named
// container of pod namespace/pod, asking containerd through the CRI.
func (c *Cluster) ContainerPid(t T, namespace, pod, container string) (int, error) {
	t.Helper()
	rs := c.Containerd.Runtime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{
			"io.kubernetes.pod.namespace":  namespace,
			"io.kubernetes.pod.name":       pod,
			"io.kubernetes.container.name": container,
		},
	})
	if err != nil {
		return 0, fmt.Errorf("CRI ListContainers: %w", err)
	}
	if len(list) != 1 {
		return 0, fmt.Errorf("%d running containers %s of pod %s/%s, want 1", len(list), container, namespace, pod)
	}
	st, err := rs.ContainerStatus(ctx, list[0].Id, true)
	if err != nil {
		return 0, fmt.Errorf("CRI ContainerStatus %s: %w", list[0].Id, err)
	}
	return pidFromStatusInfo(st.GetInfo())
}

// drain deletes every pod (grace period 0) and waits up to 60 s until the
// kubelet has stopped their sandboxes.
func (c *Cluster) drain(t T) {
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Logf("testinfra: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// DaemonSets would recreate their pods.
	dss, err := cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, ds := range dss.Items {
			_ = cs.AppsV1().DaemonSets(ds.Namespace).Delete(ctx, ds.Name, metav1.DeleteOptions{})
		}
	}
	zero := int64(0)
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("testinfra: list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}
	rs := c.Containerd.Runtime(t)
	for ctx.Err() == nil {
		sbs, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
			State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		})
		if err == nil && len(sbs) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("testinfra: pods still running 90s after deletion; removing them through the CRI")
}

// removeAllPods stops and removes every sandbox left in containerd (after
// the kubelet stopped), so no container outlives the test.
func (c *Cluster) removeAllPods(t T) {
	rs := c.Containerd.Runtime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sbs, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Logf("testinfra: CRI ListPodSandbox: %v", err)
		return
	}
	for _, sb := range sbs {
		if err := rs.StopPodSandbox(ctx, sb.Id); err != nil {
			t.Logf("testinfra: StopPodSandbox %s: %v", sb.Id, err)
		}
		if err := rs.RemovePodSandbox(ctx, sb.Id); err != nil {
			t.Logf("testinfra: RemovePodSandbox %s: %v", sb.Id, err)
		}
	}
}

// makeCgroupRoot creates CgroupRoot in every cgroup hierarchy (the kubelet
// requires it to exist).
func (c *Cluster) makeCgroupRoot(t T) {
	t.Helper()
	mounts, err := CgroupMounts()
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	for _, m := range mounts {
		if err := os.Mkdir(filepath.Join(m.Path, c.CgroupRoot), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatalf("testinfra: cgroup root: %v", err)
		}
	}
}

// removeCgroupRoot kills what is left in CgroupRoot and removes its tree in
// every hierarchy.
func (c *Cluster) removeCgroupRoot(t T) {
	mounts, err := CgroupMounts()
	if err != nil {
		t.Logf("testinfra: %v", err)
		return
	}
	for _, m := range mounts {
		root := filepath.Join(m.Path, c.CgroupRoot)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		if m.V2 {
			if err := killCgroup(root); err != nil {
				t.Logf("testinfra: %v", err)
			}
		}
		removeTree(t, root)
	}
}

// unmountBelow detaches every mount at or below dir, deepest first.
func unmountBelow(dir string) {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var targets []string
	for _, l := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 {
			if p := unescapeMount(f[1]); p == dir || strings.HasPrefix(p, dir+"/") {
				targets = append(targets, p)
			}
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		_ = syscall.Unmount(targets[i], syscall.MNT_DETACH)
	}
}

// PodRunning waits until pod namespace/name is Running with every container
// ready or started, failing with the kubelet's log tail after timeout.
func (c *Cluster) PodRunning(t T, namespace, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	cs := c.Clientset(t)
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		p, err := cs.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
		if err != nil {
			last = err.Error()
		} else {
			last = podSummary(p)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("testinfra: pod %s/%s not running after %v (last: %s); kubelet log:\n%s", namespace, name, timeout, last, c.LogTail("kubelet", 40))
	return nil
}

// podSummary is a pod's phase, conditions and container states on one line.
func podSummary(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s", p.Status.Phase)
	for _, cond := range p.Status.Conditions {
		fmt.Fprintf(&b, "; %s=%s %s", cond.Type, cond.Status, cond.Message)
	}
	for _, s := range p.Status.ContainerStatuses {
		switch {
		case s.State.Waiting != nil:
			fmt.Fprintf(&b, "; %s waiting: %s %s", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message)
		case s.State.Terminated != nil:
			fmt.Fprintf(&b, "; %s terminated: %s exit %d", s.Name, s.State.Terminated.Reason, s.State.Terminated.ExitCode)
		}
	}
	return b.String()
}

// randByte is a random byte (for a test subnet's third octet).
func randByte() byte {
	b, _ := hex.DecodeString(randHex(1))
	return b[0]
}
