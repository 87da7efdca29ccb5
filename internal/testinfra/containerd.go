package testinfra

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"
)

// ContainerdNamespace is the containerd namespace the CRI plugin uses.
const ContainerdNamespace = "k8s.io"

// SandboxImage is the locally imported image containerd's CRI plugin uses
// for pod sandboxes (no registry is reachable).
const SandboxImage = "driftwatch.test/pause:1"

// CNIBinDir is where Debian's containernetworking-plugins installs the
// CNI plugins (bridge, host-local, loopback, ...).
const CNIBinDir = "/usr/lib/cni"

// containerdRunDir is where containerd 1.6 puts shim sockets whatever its
// configured state directory.
const containerdRunDir = "/run/containerd"

// Containerd is a private containerd daemon started for a test.
type Containerd struct {
	dir     string
	sock    string
	cmd     *exec.Cmd
	log     string
	runtime internalapi.RuntimeService
}

// StartContainerd starts containerd with the default config rewritten to
// keep root, state, the grpc socket, the opt plugin path and runc's root in
// a temporary directory, restrict_oom_score_adj = true (this machine lacks
// CAP_SYS_RESOURCE) and sandbox_image = SandboxImage, which it imports. It
// waits until the socket answers. Teardown stops it, kills its shims and
// removes the empty directories containerd leaves in /run/containerd.
func StartContainerd(t T) *Containerd {
	t.Helper()
	bin := NeedTool(t, "containerd")
	NeedTool(t, "ctr")
	// A short path: the socket's must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("/tmp", "dwctd-")
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	c := &Containerd{dir: dir, sock: filepath.Join(dir, "c.sock"), log: filepath.Join(dir, "containerd.log")}
	t.Cleanup(func() { c.stop(t) })
	def, err := exec.Command(bin, "config", "default").Output()
	if err != nil {
		t.Fatalf("testinfra: containerd config default: %v", err)
	}
	cfg, err := rewriteContainerdConfig(def, dir, c.sock)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	defer logf.Close()
	c.cmd = exec.Command(bin, "--config", cfgPath)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Its own process group, so a test's signal does not reach it first.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("testinfra: start containerd: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := run("ctr", "-a", c.sock, "version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			logData, _ := os.ReadFile(c.log)
			t.Fatalf("testinfra: containerd not ready after 15s; log:\n%s", tail(logData, 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.ImportImage(t, SandboxImage, BusyboxRootfs(t), ImageConfig{Cmd: []string{"/bin/sleep", "2147483647"}})
	return c
}

// rewriteContainerdConfig edits the output of `containerd config default`
// line by line, tracking the current TOML table.
func rewriteContainerdConfig(def []byte, dir, sock string) ([]byte, error) {
	type key struct{ table, name string }
	want := map[key]string{
		{"", "root"}:        strconv.Quote(filepath.Join(dir, "root")),
		{"", "state"}:       strconv.Quote(filepath.Join(dir, "state")),
		{"grpc", "address"}: strconv.Quote(sock),
		{`plugins."io.containerd.internal.v1.opt"`, "path"}:                              strconv.Quote(filepath.Join(dir, "opt")),
		{`plugins."io.containerd.grpc.v1.cri"`, "sandbox_image"}:                         strconv.Quote(SandboxImage),
		{`plugins."io.containerd.grpc.v1.cri"`, "restrict_oom_score_adj"}:                "true",
		{`plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options`, "Root"}: strconv.Quote(filepath.Join(dir, "runc")),
		// Pod network namespaces under the state directory, CNI
		// configuration only from this containerd's own directory (empty
		// unless a test writes one: StartCluster), plugins from Debian's
		// containernetworking-plugins.
		{`plugins."io.containerd.grpc.v1.cri"`, "netns_mounts_under_state_dir"}: "true",
		{`plugins."io.containerd.grpc.v1.cri".cni`, "conf_dir"}:                 strconv.Quote(filepath.Join(dir, "cni", "net.d")),
		{`plugins."io.containerd.grpc.v1.cri".cni`, "bin_dir"}:                  strconv.Quote(CNIBinDir),
	}
	seen := map[key]bool{}
	var out bytes.Buffer
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(def))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			table = strings.Trim(trim, "[]")
		} else if name, _, ok := strings.Cut(trim, " = "); ok {
			k := key{table, name}
			if v, ok := want[k]; ok {
				indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
				line = indent + name + " = " + v
				seen[k] = true
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("containerd config: %w", err)
	}
	for k := range want {
		if !seen[k] {
			return nil, fmt.Errorf("containerd config default: key %q not found in table [%s]", k.name, k.table)
		}
	}
	return out.Bytes(), nil
}

// Socket is the path of containerd's grpc socket.
func (c *Containerd) Socket() string { return c.sock }

// Endpoint is the CRI endpoint, unix://SOCK.
func (c *Containerd) Endpoint() string { return "unix://" + c.sock }

// Dir is containerd's temporary directory (config, root, state, log).
func (c *Containerd) Dir() string { return c.dir }

// ImportImage writes rootfs as an OCI image-layout tar named name (see
// WriteOCIImage) and imports it with `ctr -n k8s.io images import`. It
// returns the image id, the config digest "sha256:..." that CRI reports as
// imageRef.
func (c *Containerd) ImportImage(t T, name, rootfs string, cfg ImageConfig) string {
	t.Helper()
	f, err := os.CreateTemp(c.dir, "image-*.tar")
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	defer os.Remove(f.Name())
	img, err := WriteOCIImage(f, name, rootfs, cfg)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("testinfra: image %s: %v", name, err)
	}
	mustRun(t, "ctr", "-a", c.sock, "-n", ContainerdNamespace, "images", "import", f.Name())
	return img.ConfigDigest
}

// Runtime returns a CRI runtime client connected to this containerd.
func (c *Containerd) Runtime(t T) internalapi.RuntimeService {
	t.Helper()
	if c.runtime != nil {
		return c.runtime
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := criclient.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(c.Endpoint()).
		WithConnectionTimeout(10 * time.Second).
		Build(ctx)
	if err != nil {
		t.Fatalf("testinfra: CRI client for %s: %v", c.Endpoint(), err)
	}
	c.runtime = rs
	return rs
}

// PodOptions configures RunPod.
type PodOptions struct {
	Name      string   // pod and container name; default "workload"
	Namespace string   // default "default"
	PodUID    string   // default a fresh uid
	Image     string   // image reference (imported with ImportImage); required
	Command   []string // entrypoint override
	Args      []string
	Env       map[string]string
	Labels    map[string]string
}

// CRIContainer is a pod with one container run through the CRI.
type CRIContainer struct {
	ID        string // container id (64 hex)
	SandboxID string
	PodUID    string
	Pid       int    // host pid of the container's first process
	CgroupID  uint64 // inode of its cgroup v2 directory
	Cgroup    string // "/test-kubepods/pod<uid>/<id>"
}

// RunPod runs a pod sandbox (CgroupParent /test-kubepods/pod<uid>, host
// network as there is no CNI) and one container in it through the CRI, and
// returns it once started. Teardown stops and removes both and the pod's
// cgroups.
func (c *Containerd) RunPod(t T, opts PodOptions) *CRIContainer {
	t.Helper()
	if opts.Image == "" {
		t.Fatalf("testinfra: RunPod: Image is required")
	}
	if opts.Name == "" {
		opts.Name = "workload"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.PodUID == "" {
		opts.PodUID = NewPodUID()
	}
	rs := c.Runtime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logDir := filepath.Join(c.dir, "pods", opts.PodUID)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	nodeNet := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}
	sandboxCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: opts.Name, Uid: opts.PodUID, Namespace: opts.Namespace},
		LogDirectory: logDir,
		Labels:       opts.Labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    "/" + KubepodsRoot + "/pod" + opts.PodUID,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nodeNet},
		},
	}
	out := &CRIContainer{PodUID: opts.PodUID}
	t.Cleanup(func() { c.removePod(t, out) })
	var err error
	out.SandboxID, err = rs.RunPodSandbox(ctx, sandboxCfg, "")
	if err != nil {
		t.Fatalf("testinfra: RunPodSandbox: %v", err)
	}
	var envs []*runtimeapi.KeyValue
	for k, v := range opts.Env {
		envs = append(envs, &runtimeapi.KeyValue{Key: k, Value: []byte(v)})
	}
	ctrCfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: opts.Name},
		Image:    &runtimeapi.ImageSpec{Image: opts.Image},
		Command:  opts.Command,
		Args:     opts.Args,
		Envs:     envs,
		Labels:   opts.Labels,
		LogPath:  opts.Name + ".log",
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: nodeNet},
		},
	}
	out.ID, err = rs.CreateContainer(ctx, out.SandboxID, ctrCfg, sandboxCfg)
	if err != nil {
		t.Fatalf("testinfra: CreateContainer: %v", err)
	}
	if err := rs.StartContainer(ctx, out.ID); err != nil {
		t.Fatalf("testinfra: StartContainer %s: %v", out.ID, err)
	}
	st, err := rs.ContainerStatus(ctx, out.ID, true)
	if err != nil {
		t.Fatalf("testinfra: ContainerStatus %s: %v", out.ID, err)
	}
	out.Pid, err = pidFromStatusInfo(st.GetInfo())
	if err != nil {
		t.Fatalf("testinfra: ContainerStatus %s: %v", out.ID, err)
	}
	out.Cgroup = sandboxCfg.Linux.CgroupParent + "/" + out.ID
	out.CgroupID, err = inode(filepath.Join(CgroupV2Mount(t), out.Cgroup))
	if err != nil {
		t.Fatalf("testinfra: container cgroup: %v", err)
	}
	return out
}

// pidFromStatusInfo reads the pid from a verbose ContainerStatus' info
// JSON (Info["info"] = {"pid": N, ...}).
func pidFromStatusInfo(info map[string]string) (int, error) {
	raw, ok := info["info"]
	if !ok {
		return 0, errors.New(`verbose status has no "info" entry`)
	}
	var v struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return 0, fmt.Errorf(`status info: field "pid": %w`, err)
	}
	if v.Pid <= 0 {
		return 0, fmt.Errorf(`status info: field "pid" = %d, want > 0`, v.Pid)
	}
	return v.Pid, nil
}

func (c *Containerd) removePod(t T, p *CRIContainer) {
	if c.runtime != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if p.ID != "" {
			if err := c.runtime.StopContainer(ctx, p.ID, 0); err != nil {
				t.Logf("testinfra: StopContainer %s: %v", p.ID, err)
			}
			if err := c.runtime.RemoveContainer(ctx, p.ID); err != nil {
				t.Logf("testinfra: RemoveContainer %s: %v", p.ID, err)
			}
		}
		if p.SandboxID != "" {
			if err := c.runtime.StopPodSandbox(ctx, p.SandboxID); err != nil {
				t.Logf("testinfra: StopPodSandbox %s: %v", p.SandboxID, err)
			}
			if err := c.runtime.RemovePodSandbox(ctx, p.SandboxID); err != nil {
				t.Logf("testinfra: RemovePodSandbox %s: %v", p.SandboxID, err)
			}
		}
	}
	RemovePodCgroups(t, p.PodUID)
}

func (c *Containerd) stop(t T) {
	if c.runtime != nil {
		_ = c.runtime.Close(context.Background())
		c.runtime = nil
	}
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	}
	// Shims outlive containerd; they were started with -address SOCK.
	for _, pid := range pidsWithArg(c.sock) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 5*time.Second)
	}
	// Unmount anything left under our directory (snapshots, shm).
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		var targets []string
		for _, l := range strings.Split(string(mounts), "\n") {
			f := strings.Fields(l)
			if len(f) > 1 && strings.HasPrefix(unescapeMount(f[1]), c.dir+"/") {
				targets = append(targets, unescapeMount(f[1]))
			}
		}
		for i := len(targets) - 1; i >= 0; i-- {
			_ = syscall.Unmount(targets[i], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Logf("testinfra: remove %s: %v", c.dir, err)
	}
	removeEmptyDirs(containerdRunDir)
}

// pidsWithArg lists processes whose command line contains arg exactly.
func pidsWithArg(arg string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(data), "\x00") {
			if a == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// removeEmptyDirs rmdirs the empty directories of the tree at root,
// deepest first, root included when it ends up empty.
func removeEmptyDirs(root string) {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(dirs[i])
	}
}

func tail(b []byte, lines int) string {
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
