package testinfra

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

func TestScanCgroupMounts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []CgroupMount
		wantErr bool
	}{
		{
			name: "hybrid",
			in: "sysfs /sys sysfs rw 0 0\n" +
				"tmpfs /sys/fs/cgroup tmpfs ro 0 0\n" +
				"cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0\n" +
				"cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n",
			want: []CgroupMount{{Path: "/sys/fs/cgroup/unified", V2: true}, {Path: "/sys/fs/cgroup/cpu,cpuacct"}},
		},
		{
			name: "escaped space",
			in:   "cgroup2 /mnt/my\\040cg cgroup2 rw 0 0\n",
			want: []CgroupMount{{Path: "/mnt/my cg", V2: true}},
		},
		{name: "none", in: "proc /proc proc rw 0 0\n"},
		{name: "short line", in: "cgroup2 /x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanCgroupMounts(strings.NewReader(tt.in), "mounts")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewIDs(t *testing.T) {
	id := NewContainerID()
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("container id %q: want 64 hex digits", id)
	}
	if NewContainerID() == id {
		t.Errorf("two container ids are equal")
	}
	uid := NewPodUID()
	if parts := strings.Split(uid, "-"); len(parts) != 5 || len(uid) != 36 {
		t.Errorf("pod uid %q is not UUID-shaped", uid)
	}
}

func TestScopeRunAndClose(t *testing.T) {
	s := NewScope(nil)
	var order []int
	dir := s.TempDir()
	s.Cleanup(func() { order = append(order, 1) })
	s.Cleanup(func() { order = append(order, 2) })
	err := s.Run(func() { s.Fatalf("boom %d", 7) })
	if err == nil || err.Error() != "boom 7" {
		t.Fatalf("Run error = %v, want boom 7", err)
	}
	s.Close()
	if fmt.Sprint(order) != "[2 1]" {
		t.Errorf("cleanup order %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still exists after Close (err %v)", dir, err)
	}
}

// procCgroup returns the v2 entry ("0::/path") of /proc/PID/cgroup.
func procCgroup(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "0::") {
			return strings.TrimPrefix(l, "0::")
		}
	}
	t.Fatalf("no v2 entry in /proc/%d/cgroup: %s", pid, data)
	return ""
}

func TestCgroup(t *testing.T) {
	testutil.NeedRoot(t)
	var dir string
	t.Run("lifecycle", func(t *testing.T) {
		cg, id := NewContainerCgroup(t)
		dir = cg.Path()
		if !strings.HasSuffix(cg.Rel(), "/"+id) || !strings.HasPrefix(cg.Rel(), "/"+KubepodsRoot+"/pod") {
			t.Errorf("Rel() = %q, want /%s/pod<uid>/%s", cg.Rel(), KubepodsRoot, id)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(cg.Path(), &st); err != nil {
			t.Fatal(err)
		}
		if cg.ID() != st.Ino || cg.ID() == 0 {
			t.Errorf("ID() = %d, inode %d", cg.ID(), st.Ino)
		}
		out := cg.Run(t, "/bin/sh", "-c", "cat /proc/self/cgroup")
		if !strings.Contains(string(out), "0::"+cg.Rel()+"\n") {
			t.Errorf("child's /proc/self/cgroup = %q, want 0::%s", out, cg.Rel())
		}
		// A leftover process (child of a started shell) must not block
		// cleanup.
		cmd := cg.Start(t, "/bin/sh", "-c", "sleep 600 & wait")
		if got := procCgroup(t, cmd.Process.Pid); got != cg.Rel() {
			t.Errorf("started process in %q, want %q", got, cg.Rel())
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			pids, err := cg.Pids()
			if err != nil {
				t.Fatal(err)
			}
			if len(pids) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cgroup.procs = %v, want the shell and its sleep", pids)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s not removed at cleanup (err %v)", dir, err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Errorf("pod cgroup %s not removed at cleanup (err %v)", filepath.Dir(dir), err)
	}
}

func TestBusyboxRootfs(t *testing.T) {
	testutil.NeedRoot(t)
	dir := BusyboxRootfs(t)
	tests := []struct {
		path string
		mode os.FileMode
	}{
		{"bin/busybox", 0o755},
		{"etc/shadow", 0o600},
		{"root/.ssh/id_rsa", 0o600},
		{"tmp", os.ModeDir | os.ModeSticky | 0o777},
	}
	for _, tt := range tests {
		fi, err := os.Stat(filepath.Join(dir, tt.path))
		if err != nil {
			t.Errorf("%s: %v", tt.path, err)
			continue
		}
		if fi.Mode() != tt.mode {
			t.Errorf("%s: mode %v, want %v", tt.path, fi.Mode(), tt.mode)
		}
	}
	for _, applet := range []string{"sh", "sleep", "cat", "nc", "wget", "httpd", "tar", "gzip", "sed", "id"} {
		if target, err := os.Readlink(filepath.Join(dir, "bin", applet)); err != nil || target != "busybox" {
			t.Errorf("bin/%s -> %q (%v), want busybox", applet, target, err)
		}
	}
	out := mustRun(t, "chroot", dir, "/bin/sh", "-c", "id -un; cat /etc/shadow | cut -d: -f1 | head -1")
	if string(out) != "root\nroot\n" {
		t.Errorf("chroot output %q, want root twice", out)
	}
}

func TestNetnsPair(t *testing.T) {
	testutil.NeedRoot(t)
	a, b := NewNetnsPair(t)
	if a.PeerIP() != b.IP() || b.PeerIP() != a.IP() {
		t.Fatalf("addresses: a %s (peer %s), b %s (peer %s)", a.IP(), a.PeerIP(), b.IP(), b.PeerIP())
	}
	// A TCP server in b, a client in a.
	srv := b.Start(t, "busybox", "nc", "-l", "-p", "7001", "-e", "/bin/echo", "hello-from-b")
	var out []byte
	deadline := time.Now().Add(3 * time.Second)
	for {
		o, err := a.Command("busybox", "nc", "-w", "2", b.IP(), "7001").CombinedOutput()
		if err == nil && strings.Contains(string(o), "hello-from-b") {
			out = o
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TCP answer from %s:7001 in netns %s: %v: %s", b.IP(), b.Name(), err, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = srv.Wait()
	if !strings.Contains(string(out), "hello-from-b") {
		t.Errorf("client got %q", out)
	}
	// The veth ends live only inside the namespaces, not on the host.
	if _, err := run("ip", "link", "show", "dev", a.dev); err == nil {
		t.Errorf("veth %s is visible on the host", a.dev)
	}
	if out := a.Run(t, "ip", "-o", "addr", "show", "dev", a.dev); !strings.Contains(string(out), a.IP()+"/24") {
		t.Errorf("netns %s: addr %q, want %s/24", a.Name(), out, a.IP())
	}
}

func TestRuncContainer(t *testing.T) {
	testutil.NeedRoot(t)
	a, b := NewNetnsPair(t)
	var podDirs []string
	t.Run("run", func(t *testing.T) {
		c := NewRuncContainer(t, RuncOptions{NetNS: b.Path(), Writable: true})
		mount := CgroupV2Mount(t)
		podDirs = append(podDirs, filepath.Join(mount, KubepodsRoot, "pod"+c.PodUID()))
		if len(c.ID()) != 64 {
			t.Errorf("ID() = %q", c.ID())
		}
		if got, want := procCgroup(t, c.Pid()), c.CgroupPath(); got != want {
			t.Errorf("container pid %d in cgroup %q, want %q", c.Pid(), got, want)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(mount, c.CgroupPath()), &st); err != nil {
			t.Fatal(err)
		}
		if st.Ino != c.CgroupID() {
			t.Errorf("CgroupID() = %d, directory inode %d", c.CgroupID(), st.Ino)
		}
		// An exec'd process joins the same cgroup and sees the rootfs.
		out := c.Exec(t, "sh", "-c", "cat /proc/self/cgroup; cat /etc/hostname; echo x > /tmp/w && cat /tmp/w")
		if !strings.Contains(string(out), c.CgroupPath()) || !strings.Contains(string(out), "workload\nx\n") {
			t.Errorf("exec output %q", out)
		}
		// The container is on test host b: it reaches a server in a.
		srv := a.Start(t, "busybox", "nc", "-l", "-p", "7002", "-e", "/bin/echo", "pong")
		deadline := time.Now().Add(3 * time.Second)
		for {
			o, err := c.Command("nc", "-w", "2", a.IP(), "7002").CombinedOutput()
			if err == nil && strings.Contains(string(o), "pong") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("container could not reach %s:7002: %v: %s", a.IP(), err, o)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = srv.Wait()
		// The pid file names the exec'd process, inside the container's cgroup.
		pidFile := filepath.Join(t.TempDir(), "pid")
		cmd := c.CommandWith(ExecOptions{PidFile: pidFile}, "sh", "-c", "echo $$; sleep 0.3")
		o, err := cmd.Output()
		if err != nil {
			t.Fatalf("exec with pid file: %v", err)
		}
		pidData, err := os.ReadFile(pidFile)
		if err != nil || strings.TrimSpace(string(pidData)) == "" {
			t.Fatalf("pid file: %q (%v)", pidData, err)
		}
		if strings.TrimSpace(string(o)) == strings.TrimSpace(string(pidData)) {
			t.Errorf("pid file holds %s, the in-namespace pid; want the host pid", pidData)
		}
		// A non-root exec gets uid 1000.
		o, err = c.CommandAs("1000:1000", "id", "-u").CombinedOutput()
		if err != nil || strings.TrimSpace(string(o)) != "1000" {
			t.Errorf("id -u as 1000 = %q (%v)", o, err)
		}
	})
	t.Run("readonly", func(t *testing.T) {
		c := NewRuncContainer(t, RuncOptions{})
		podDirs = append(podDirs, filepath.Join(CgroupV2Mount(t), KubepodsRoot, "pod"+c.PodUID()))
		if out, err := c.Command("sh", "-c", "echo x > /etc/x").CombinedOutput(); err == nil {
			t.Errorf("write to read-only rootfs succeeded: %s", out)
		}
	})
	for _, d := range podDirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("pod cgroup %s left after teardown (err %v)", d, err)
		}
	}
}

func TestWriteOCIImageDeterministic(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	var b1, b2 strings.Builder
	img1, err := WriteOCIImage(&b1, "driftwatch.test/a:1", dir, ImageConfig{Cmd: []string{"/f"}})
	if err != nil {
		t.Fatal(err)
	}
	img2, err := WriteOCIImage(&b2, "driftwatch.test/a:1", dir, ImageConfig{Cmd: []string{"/f"}})
	if err != nil {
		t.Fatal(err)
	}
	if img1 != img2 || b1.String() != b2.String() {
		t.Errorf("two writes differ: %+v vs %+v", img1, img2)
	}
	img3, err := WriteOCIImage(&strings.Builder{}, "driftwatch.test/a:1", dir, ImageConfig{Cmd: []string{"/g"}})
	if err != nil {
		t.Fatal(err)
	}
	if img3.ConfigDigest == img1.ConfigDigest || img3.LayerDiffID != img1.LayerDiffID {
		t.Errorf("changing Cmd: config %s vs %s, layer %s vs %s", img3.ConfigDigest, img1.ConfigDigest, img3.LayerDiffID, img1.LayerDiffID)
	}
	if !strings.Contains(b1.String(), `"io.containerd.image.name":"driftwatch.test/a:1"`) {
		t.Errorf("index.json lacks the io.containerd.image.name annotation")
	}
}

func TestRewriteContainerdConfig(t *testing.T) {
	def := "root = \"/var/lib/containerd\"\nstate = \"/run/containerd\"\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n" +
		"[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    restrict_oom_score_adj = false\n    sandbox_image = \"registry.k8s.io/pause:3.6\"\n" +
		"    netns_mounts_under_state_dir = false\n" +
		"    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/opt/cni/bin\"\n      conf_dir = \"/etc/cni/net.d\"\n" +
		"    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n      Root = \"\"\n" +
		"  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/opt/containerd\"\n"
	got, err := rewriteContainerdConfig([]byte(def), "/tmp/d", "/tmp/d/c.sock")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"root = \"/tmp/d/root\"\n", "state = \"/tmp/d/state\"\n", "  address = \"/tmp/d/c.sock\"\n",
		"    restrict_oom_score_adj = true\n", "    sandbox_image = \"" + SandboxImage + "\"\n",
		"      Root = \"/tmp/d/runc\"\n", "    path = \"/tmp/d/opt\"\n",
		"    netns_mounts_under_state_dir = true\n", "      bin_dir = \"" + CNIBinDir + "\"\n", "      conf_dir = \"/tmp/d/cni/net.d\"\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rewritten config lacks %q:\n%s", want, got)
		}
	}
	if _, err := rewriteContainerdConfig([]byte("root = \"x\"\n"), "/tmp/d", "/tmp/d/c.sock"); err == nil {
		t.Errorf("config without the grpc table: no error")
	}
}

func TestContainerdCRI(t *testing.T) {
	testutil.NeedRoot(t)
	if testing.Short() {
		t.Skip("starts containerd (a few seconds)")
	}
	_, statErr := os.Stat(containerdRunDir)
	existedBefore := statErr == nil
	var podDir string
	t.Run("pod", func(t *testing.T) {
		ctd := StartContainerd(t)
		rootfs := BusyboxRootfs(t)
		imageID := ctd.ImportImage(t, "driftwatch.test/app:1", rootfs, ImageConfig{Cmd: []string{"/bin/sleep", "600"}})
		if !strings.HasPrefix(imageID, "sha256:") || len(imageID) != 71 {
			t.Errorf("image id %q", imageID)
		}
		p := ctd.RunPod(t, PodOptions{Image: "driftwatch.test/app:1"})
		podDir = filepath.Join(CgroupV2Mount(t), KubepodsRoot, "pod"+p.PodUID)
		if got := procCgroup(t, p.Pid); got != p.Cgroup {
			t.Errorf("container pid %d in cgroup %q, want %q", p.Pid, got, p.Cgroup)
		}
		if !strings.HasSuffix(p.Cgroup, "/"+p.ID) || len(p.ID) != 64 {
			t.Errorf("cgroup %q for container %q", p.Cgroup, p.ID)
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid))
		if err != nil || string(cmdline) != "/bin/sleep\x00600\x00" {
			t.Errorf("container cmdline %q (%v)", cmdline, err)
		}
		ctrs, err := ctd.Runtime(t).ListContainers(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ctrs) != 1 || ctrs[0].Id != p.ID || ctrs[0].ImageRef != imageID {
			t.Errorf("ListContainers = %v, want %s with imageRef %s", ctrs, p.ID, imageID)
		}
	})
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod cgroup %s left after teardown (err %v)", podDir, err)
	}
	if _, err := os.Stat(containerdRunDir); !existedBefore && !os.IsNotExist(err) {
		t.Errorf("%s left after teardown", containerdRunDir)
	}
}
