package testinfra

import (
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
)

// DefaultCaps are the capabilities a container runtime grants by default
// (Docker's and containerd's default set), used when RuncOptions.Caps is nil.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Mount is a bind mount into a container.
type Mount struct {
	Source      string // host path
	Destination string // path inside the container
	ReadOnly    bool
}

// RuncOptions configures NewRuncContainer. The zero value runs "sleep
// infinity" as root in a fresh busybox rootfs with its own (empty) network
// namespace.
type RuncOptions struct {
	Args     []string // process.args; default sleep 2147483647
	Env      []string // added to PATH=... and HOME=/root
	Cwd      string   // default /
	UID, GID uint32   // process user; default 0:0
	Rootfs   string   // default BusyboxRootfs(t)
	Writable bool     // root.readonly=false
	// NetNS is a network namespace path (e.g. Netns.Path()); empty gives
	// the container a new namespace with only lo.
	NetNS string
	// HostNetwork shares the host network namespace (ignored with NetNS).
	HostNetwork bool
	// Caps is the capability set (bounding, effective, permitted); nil
	// means DefaultCaps.
	Caps []string
	// NoNewPrivileges sets process.noNewPrivileges (setuid binaries then do
	// not gain privileges). Default false, as in Kubernetes.
	NoNewPrivileges bool
	Hostname        string  // default "workload"
	Mounts          []Mount // extra bind mounts
	PodUID          string  // default a fresh uid
	ID              string  // container id (64 hex); default a fresh one
	Stdout          *os.File
	Stderr          *os.File
}

// Container is a runc container started for a test.
type Container struct {
	id       string
	podUID   string
	runcRoot string
	bundle   string
	pid      int
	cgroupID uint64
	cgroup   string // "/test-kubepods/pod<uid>/<id>"
}

// NewRuncContainer creates a bundle (runc spec, then the options applied),
// starts it detached with `runc --root DIR run -d --pid-file F ID` in cgroup
// /test-kubepods/pod<uid>/<id>, and registers teardown: runc kill, runc
// delete and removal of the pod cgroup in every hierarchy.
func NewRuncContainer(t T, opts RuncOptions) *Container {
	t.Helper()
	runc := NeedTool(t, "runc")
	if opts.ID == "" {
		opts.ID = NewContainerID()
	}
	if opts.PodUID == "" {
		opts.PodUID = NewPodUID()
	}
	if opts.Rootfs == "" {
		opts.Rootfs = BusyboxRootfs(t)
	}
	tmp := t.TempDir()
	c := &Container{
		id:       opts.ID,
		podUID:   opts.PodUID,
		runcRoot: filepath.Join(tmp, "runc"),
		bundle:   filepath.Join(tmp, "bundle"),
		cgroup:   "/" + KubepodsRoot + "/pod" + opts.PodUID + "/" + opts.ID,
	}
	for _, d := range []string{c.runcRoot, c.bundle} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("testinfra: %v", err)
		}
	}
	mustRun(t, runc, "spec", "--bundle", c.bundle)
	cfgPath := filepath.Join(c.bundle, "config.json")
	if err := editSpec(cfgPath, c, opts); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	pidFile := filepath.Join(tmp, "pid")
	cmd := exec.Command(runc, "--root", c.runcRoot, "run", "-d", "--pid-file", pidFile, "--bundle", c.bundle, c.id)
	// runc -d hands its stdio to the container, so a pipe here would stay
	// open for the container's lifetime: use files.
	logFile, err := os.Create(filepath.Join(tmp, "runc-run.log"))
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if opts.Stdout != nil {
		cmd.Stdout = opts.Stdout
	}
	if opts.Stderr != nil {
		cmd.Stderr = opts.Stderr
	}
	t.Cleanup(func() { c.teardown(t) })
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(logFile.Name())
		t.Fatalf("testinfra: runc run %s: %v: %s", c.id, err, msg)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("testinfra: runc pid file: %v", err)
	}
	c.pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("testinfra: runc pid file %s: %v", pidFile, err)
	}
	c.cgroupID, err = inode(filepath.Join(CgroupV2Mount(t), c.cgroup))
	if err != nil {
		t.Fatalf("testinfra: container cgroup: %v", err)
	}
	return c
}

// editSpec applies opts to the config.json written by `runc spec`.
func editSpec(path string, c *Container, opts RuncOptions) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	proc, ok1 := spec["process"].(map[string]any)
	root, ok2 := spec["root"].(map[string]any)
	linux, ok3 := spec["linux"].(map[string]any)
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("%s: process, root or linux missing", path)
	}
	args := opts.Args
	if len(args) == 0 {
		args = []string{"sleep", "2147483647"}
	}
	proc["terminal"] = false
	proc["args"] = args
	home := "/root"
	if opts.UID != 0 {
		home = "/home/app"
	}
	proc["env"] = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home}, opts.Env...)
	if opts.Cwd != "" {
		proc["cwd"] = opts.Cwd
	}
	proc["user"] = map[string]any{"uid": opts.UID, "gid": opts.GID}
	caps := opts.Caps
	if caps == nil {
		caps = DefaultCaps
	}
	capSet := map[string]any{"bounding": caps, "effective": caps, "permitted": caps}
	if opts.UID == 0 {
		capSet["inheritable"] = caps
	}
	proc["capabilities"] = capSet
	proc["noNewPrivileges"] = opts.NoNewPrivileges
	rootfs, err := filepath.Abs(opts.Rootfs)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	root["path"] = rootfs
	root["readonly"] = !opts.Writable
	hostname := opts.Hostname
	if hostname == "" {
		hostname = "workload"
	}
	spec["hostname"] = hostname
	linux["cgroupsPath"] = c.cgroup
	nss, _ := linux["namespaces"].([]any)
	var keep []any
	for _, ns := range nss {
		m, _ := ns.(map[string]any)
		if m != nil && m["type"] == "network" {
			switch {
			case opts.NetNS != "":
				keep = append(keep, map[string]any{"type": "network", "path": opts.NetNS})
			case opts.HostNetwork:
			default:
				keep = append(keep, ns)
			}
			continue
		}
		keep = append(keep, ns)
	}
	linux["namespaces"] = keep
	mounts, _ := spec["mounts"].([]any)
	for _, m := range opts.Mounts {
		mo := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			mo = append(mo, "ro")
		}
		mounts = append(mounts, map[string]any{"destination": m.Destination, "type": "bind", "source": m.Source, "options": mo})
	}
	spec["mounts"] = mounts
	out, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// ID is the container id (64 hex digits), also its runc name.
func (c *Container) ID() string { return c.id }

// PodUID is the uid in the container's cgroup parent.
func (c *Container) PodUID() string { return c.podUID }

// Pid is the host pid of the container's first process.
func (c *Container) Pid() int { return c.pid }

// CgroupID is the inode of the container's cgroup v2 directory, equal to
// bpf_get_current_cgroup_id() for its processes.
func (c *Container) CgroupID() uint64 { return c.cgroupID }

// CgroupPath is the container's cgroup as /proc/PID/cgroup shows it.
func (c *Container) CgroupPath() string { return c.cgroup }

// Bundle is the OCI bundle directory (config.json).
func (c *Container) Bundle() string { return c.bundle }

// Command returns an unstarted `runc exec` of args in the container as
// root; set its Stdin/Stdout/Stderr as needed.
func (c *Container) Command(args ...string) *exec.Cmd {
	return c.CommandAs("", args...)
}

// CommandAs is Command running as user ("uid[:gid]"; empty for the
// container's configured user).
func (c *Container) CommandAs(user string, args ...string) *exec.Cmd {
	return c.CommandWith(ExecOptions{User: user}, args...)
}

// ExecOptions configures CommandWith.
type ExecOptions struct {
	User    string   // "uid[:gid]"; empty for the container's configured user
	PidFile string   // runc writes the exec'd process's host pid here
	Env     []string // extra KEY=VALUE
	Cwd     string
}

// CommandWith returns an unstarted `runc exec` of args with opts. With
// PidFile set, the file holds the host pid of the exec'd process once runc
// has started it: the root of the process subtree the command creates.
func (c *Container) CommandWith(opts ExecOptions, args ...string) *exec.Cmd {
	argv := []string{"--root", c.runcRoot, "exec"}
	if opts.User != "" {
		argv = append(argv, "--user", opts.User)
	}
	if opts.PidFile != "" {
		argv = append(argv, "--pid-file", opts.PidFile)
	}
	for _, e := range opts.Env {
		argv = append(argv, "--env", e)
	}
	if opts.Cwd != "" {
		argv = append(argv, "--cwd", opts.Cwd)
	}
	argv = append(argv, c.id)
	argv = append(argv, args...)
	return exec.Command("runc", argv...)
}

// Exec runs args in the container with `runc exec` and returns the
// combined output; a non-zero exit fails the test.
func (c *Container) Exec(t T, args ...string) []byte {
	t.Helper()
	cmd := c.Command(args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testinfra: runc exec %s %q: %v: %s", c.id, args, err, out)
	}
	return out
}

// Kill sends SIGKILL to the container's processes and waits until its first
// process is gone.
func (c *Container) Kill(t T) {
	t.Helper()
	if _, err := run("runc", "--root", c.runcRoot, "kill", "--all", c.id, "KILL"); err != nil {
		t.Logf("testinfra: %v", err)
	}
	waitGone(c.pid, 5*time.Second)
}

func (c *Container) teardown(t T) {
	if _, err := os.Stat(filepath.Join(c.runcRoot, c.id)); err == nil {
		_, _ = run("runc", "--root", c.runcRoot, "kill", "--all", c.id, "KILL")
		if c.pid > 0 {
			waitGone(c.pid, 5*time.Second)
		}
		if _, err := run("runc", "--root", c.runcRoot, "delete", "--force", c.id); err != nil {
			t.Logf("testinfra: %v", err)
		}
	}
	RemovePodCgroups(t, c.podUID)
}

// RemovePodCgroups removes /test-kubepods/pod<uid> (after killing anything
// left inside) in every cgroup hierarchy, and /test-kubepods when it is
// empty. Runtimes remove container cgroups but not their parents.
func RemovePodCgroups(t T, podUID string) {
	mounts, err := CgroupMounts()
	if err != nil {
		t.Logf("testinfra: %v", err)
		return
	}
	for _, m := range mounts {
		pod := filepath.Join(m.Path, KubepodsRoot, "pod"+podUID)
		if _, err := os.Stat(pod); err != nil {
			continue
		}
		if m.V2 {
			if err := killCgroup(pod); err != nil {
				t.Logf("testinfra: %v", err)
			}
		}
		removeTree(t, pod)
		// Shared by concurrent tests: only removed when empty.
		_ = syscall.Rmdir(filepath.Join(m.Path, KubepodsRoot))
	}
}

// removeTree rmdirs a cgroup directory tree deepest first.
func removeTree(t T, dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := rmdirRetry(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Logf("testinfra: %v", err)
		}
	}
}

// waitGone polls until pid no longer exists (or is a zombie not ours).
func waitGone(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(data), ')'); i > 0 && i+2 < len(data) && data[i+2] == 'Z' {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
