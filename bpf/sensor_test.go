package bpf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// capture reads a sensor on a goroutine and keeps copies of the events of
// the cgroups a test watches.
type capture struct {
	s       *Sensor
	mu      sync.Mutex
	watched map[uint64][]*event.Event
	err     error
	done    chan struct{}
}

func startCapture(t testing.TB, cfg Config) *capture {
	t.Helper()
	testutil.NeedRoot(t)
	s, err := Open(cfg)
	if err != nil {
		var env *EnvError
		if errors.As(err, &env) {
			testutil.NeedBPF(t, err.Error())
		}
		t.Fatalf("Open: %v", err)
	}
	return newCapture(s)
}

func newCapture(s *Sensor) *capture {
	c := &capture{s: s, watched: map[uint64][]*event.Event{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var ev event.Event
		for {
			err := s.Next(&ev)
			if err != nil {
				c.mu.Lock()
				if !errors.Is(err, os.ErrClosed) {
					c.err = err
				}
				c.mu.Unlock()
				return
			}
			c.mu.Lock()
			if evs, ok := c.watched[ev.CgroupID]; ok {
				c.watched[ev.CgroupID] = append(evs, ev.Clone())
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *capture) close(t testing.TB) {
	c.s.Close()
	<-c.done
	if c.err != nil {
		t.Errorf("sensor read: %v", c.err)
	}
}

func (c *capture) watch(id uint64) {
	c.mu.Lock()
	c.watched[id] = []*event.Event{}
	c.mu.Unlock()
}

// waitFor returns the cgroup's events once match holds (or fails after 10s),
// after letting another 50 ms of records arrive.
func (c *capture) waitFor(t testing.TB, id uint64, what string, match func([]*event.Event) bool) []*event.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ok := match(c.watched[id])
		c.mu.Unlock()
		if ok {
			time.Sleep(50 * time.Millisecond)
			c.mu.Lock()
			defer c.mu.Unlock()
			return append([]*event.Event(nil), c.watched[id]...)
		}
		if time.Now().After(deadline) {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("timed out waiting for %s; cgroup %d has %d events:\n%s", what, id, len(c.watched[id]), dump(c.watched[id]))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dump(evs []*event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s\n", describe(e))
	}
	return b.String()
}

func describe(e *event.Event) string {
	return fmt.Sprintf("%s comm=%s pid=%d tid=%d ppid=%d ret=%d fd=%d fd2=%d flags=%#x mode=%#o arg3=%d path=%q path2=%q src=%v dst=%v exe=%q argv=%q fl2=%#x",
		e.Type(), e.CommString(), e.Pid, e.Tid, e.Ppid, e.Ret, e.Fd, e.Fd2, e.Flags, e.Mode, e.Arg3, e.Path, e.Path2, e.Src, e.Dst, e.Exe, e.Argv, e.Flags2)
}

var (
	shared     *capture
	sharedOnce sync.Once
	sharedSkip string
)

// sensor returns the sensor shared by the functional tests.
func sensor(t *testing.T) *capture {
	t.Helper()
	testutil.NeedRoot(t)
	sharedOnce.Do(func() {
		s, err := Open(Config{})
		if err != nil {
			sharedSkip = err.Error()
			return
		}
		shared = newCapture(s)
	})
	if shared == nil {
		testutil.NeedBPF(t, sharedSkip)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.s.Close()
		<-shared.done
	}
	os.Exit(code)
}

// cgroupV2 returns the cgroup v2 mount point from /proc/mounts.
func cgroupV2(t testing.TB) string {
	t.Helper()
	f, err := os.Open("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	testutil.NeedBPF(t, "no cgroup v2 mount in /proc/mounts")
	return ""
}

// testCgroup is a fresh cgroup v2 directory; its inode is the cgroup id.
type testCgroup struct {
	dir string
	id  uint64
	fd  int
}

func newCgroup(t testing.TB) *testCgroup {
	t.Helper()
	dir := filepath.Join(cgroupV2(t), fmt.Sprintf("driftwatch-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cg := &testCgroup{dir: dir, id: st.Ino, fd: fd}
	t.Cleanup(func() {
		unix.Close(fd)
		// Processes may linger for a moment after Wait.
		for i := 0; i < 50; i++ {
			if os.Remove(dir) == nil || errors.Is(os.Remove(dir), os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("could not remove %s", dir)
	})
	return cg
}

// command builds a command that starts directly inside cg (clone3 with
// CLONE_INTO_CGROUP).
func (cg *testCgroup) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.fd}
	return cmd
}

// run runs a command in cg and returns its stdout parsed as key=value.
func (cg *testCgroup) run(t testing.TB, name string, args ...string) (map[string]string, *exec.Cmd) {
	t.Helper()
	cmd := cg.command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out.String(), errb.String())
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(out.String()) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	return kv, cmd
}

var (
	helperOnce sync.Once
	helperPath string
	helperErr  error
)

// helper builds testdata/helper once per test binary.
func helper(t testing.TB) string {
	t.Helper()
	helperOnce.Do(func() {
		dir, err := os.MkdirTemp("", "driftwatch-helper-")
		if err != nil {
			helperErr = err
			return
		}
		helperPath = filepath.Join(dir, "helper")
		out, err := exec.Command("go", "build", "-o", helperPath, "./testdata/helper").CombinedOutput()
		if err != nil {
			helperErr = fmt.Errorf("build helper: %v\n%s", err, out)
		}
	})
	if helperErr != nil {
		t.Fatal(helperErr)
	}
	return helperPath
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("atoi %q: %v", s, err)
	}
	return n
}

func find(evs []*event.Event, pred func(*event.Event) bool) *event.Event {
	for _, e := range evs {
		if pred(e) {
			return e
		}
	}
	return nil
}

func isSys(nr uint16) func(*event.Event) bool {
	return func(e *event.Event) bool { return e.Kind == event.KindSyscall && e.Syscall == nr }
}

func hasExit(pid int) func([]*event.Event) bool {
	return func(evs []*event.Event) bool {
		return find(evs, func(e *event.Event) bool {
			return e.Kind == event.KindExit && e.Pid == uint32(pid) && e.Tid == uint32(pid)
		}) != nil
	}
}

func TestExecWithArgs(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	_, cmd := cg.run(t, "/bin/cat", "/etc/hostname")
	pid := cmd.Process.Pid
	evs := c.waitFor(t, cg.id, "cat's exit", hasExit(pid))

	ex := find(evs, func(e *event.Event) bool { return e.Kind == event.KindExec && e.Pid == uint32(pid) })
	if ex == nil {
		t.Fatalf("no exec event for pid %d:\n%s", pid, dump(evs))
	}
	wantExe, _ := filepath.EvalSymlinks("/bin/cat")
	var st unix.Stat_t
	unix.Stat(wantExe, &st)
	checks := []struct {
		name      string
		got, want any
	}{
		{"syscall", ex.Syscall, event.SysExecve},
		{"ret", ex.Ret, int64(0)},
		{"ppid", ex.Ppid, uint32(os.Getpid())},
		{"tid", ex.Tid, uint32(pid)},
		{"cgroup", ex.CgroupID, cg.id},
		{"comm", ex.CommString(), "cat"},
		{"argv", string(ex.Argv), "/bin/cat\x00/etc/hostname\x00"},
		{"path", string(ex.Path), "/bin/cat"},
		{"exe", string(ex.Exe), wantExe},
		{"exe inode", ex.ExeIno, st.Ino},
		{"exe dev", uint64(ex.ExeDev), st.Dev},
		{"exe mtime", ex.ExeMtime, st.Mtim.Nano()},
		{"exe ctime", ex.ExeCtime, st.Ctim.Nano()},
		{"uid", ex.Uid, uint32(0)},
		{"loginuid", ex.LoginUID, loginUID(t)},
		{"cwd", string(ex.Cwd), mustGetwd(t)},
		{"flags2", ex.Flags2 &^ event.FlagPathTruncated, event.FlagFileFacts},
		{"exe file type", ex.FileType, event.FDFile},
		{"exe file inode", ex.FileIno, st.Ino},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("exec %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if ex.PidNS == 0 || ex.MntNS == 0 || ex.CapEff == 0 {
		t.Errorf("exec namespaces/caps unset: pidns=%d mntns=%d capeff=%#x", ex.PidNS, ex.MntNS, ex.CapEff)
	}
	if want := nsInode(t, "pid"); ex.PidNS != want {
		t.Errorf("exec pidns = %d, want %d", ex.PidNS, want)
	}
	if want := nsInode(t, "mnt"); ex.MntNS != want {
		t.Errorf("exec mntns = %d, want %d", ex.MntNS, want)
	}
	if d := time.Since(time.Unix(0, ex.Time)); d < 0 || d > time.Minute {
		t.Errorf("exec time %v is %v from now", time.Unix(0, ex.Time), d)
	}

	op := find(evs, func(e *event.Event) bool {
		return e.Kind == event.KindSyscall && e.Syscall == event.SysOpenat && string(e.Path) == "/etc/hostname"
	})
	if op == nil {
		t.Fatalf("no openat of /etc/hostname:\n%s", dump(evs))
	}
	if op.Ret < 3 || op.Flags&unix.O_ACCMODE != unix.O_RDONLY || op.Fd != unix.AT_FDCWD || op.Pid != uint32(pid) {
		t.Errorf("openat /etc/hostname: %s", describe(op))
	}
	if string(op.RealPath) != "/etc/hostname" && !strings.HasSuffix(string(op.RealPath), "/hostname") {
		t.Errorf("openat /etc/hostname: resolved path %q", op.RealPath)
	}
	if op.Num <= ex.Num {
		t.Errorf("openat Num %d not after exec Num %d", op.Num, ex.Num)
	}
	exit := find(evs, func(e *event.Event) bool { return e.Kind == event.KindExit && e.Pid == uint32(pid) })
	if exit.Ret != 0 || exit.Flags2&event.FlagThread != 0 {
		t.Errorf("exit: %s", describe(exit))
	}
	fork := find(evs, func(e *event.Event) bool { return e.Kind == event.KindFork && e.ChildPid == uint32(pid) })
	if fork != nil {
		t.Errorf("fork event attributed to the child's cgroup: %s", describe(fork))
	}
}

func loginUID(t testing.TB) uint32 {
	b, err := os.ReadFile("/proc/self/loginuid")
	if err != nil {
		return 0xffffffff
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	return uint32(n)
}

func mustGetwd(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func nsInode(t testing.TB, ns string) uint32 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/"+ns, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

func TestExitCode(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	cmd := cg.command("/bin/sh", "-c", "exit 3")
	if err := cmd.Run(); err == nil {
		t.Fatal("sh -c 'exit 3' succeeded")
	}
	pid := cmd.Process.Pid
	evs := c.waitFor(t, cg.id, "sh's exit", hasExit(pid))
	exit := find(evs, func(e *event.Event) bool { return e.Kind == event.KindExit && e.Pid == uint32(pid) })
	if exit.Ret != 3<<8 {
		t.Errorf("exit code = %#x, want %#x (wait status)", exit.Ret, 3<<8)
	}
}

func TestFailedExec(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "execfail", "/nonexistent/driftwatch-prog")
	if out["errno"] != "ENOENT" {
		t.Fatalf("helper: %v", out)
	}
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	e := find(evs, isSys(event.SysExecve))
	if e == nil {
		t.Fatalf("no execve event:\n%s", dump(evs))
	}
	if e.Ret != -int64(unix.ENOENT) || string(e.Path) != "/nonexistent/driftwatch-prog" || e.Kind != event.KindSyscall || !e.Failed() {
		t.Errorf("failed execve: %s", describe(e))
	}
}

func TestOpenatReadWrite(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	path := filepath.Join(t.TempDir(), "written")
	out, cmd := cg.run(t, helper(t), "openw", path)
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	e := find(evs, func(e *event.Event) bool { return isSys(event.SysOpenat)(e) && string(e.Path) == path })
	if e == nil {
		t.Fatalf("no openat of %s:\n%s", path, dump(evs))
	}
	wantFlags := uint32(unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC | unix.O_CLOEXEC)
	if e.Ret != int64(atoi(t, out["fd"])) || e.Flags != wantFlags || e.Mode != 0o640 || e.Fd != unix.AT_FDCWD {
		t.Errorf("openat for write: %s; want ret=%s flags=%#x mode=0640", describe(e), out["fd"], wantFlags)
	}
	// And a read-only open by a real program.
	_, cmd = cg.run(t, "/bin/cat", path)
	evs = c.waitFor(t, cg.id, "cat's exit", hasExit(cmd.Process.Pid))
	r := find(evs, func(e *event.Event) bool {
		return isSys(event.SysOpenat)(e) && string(e.Path) == path && e.Pid == uint32(cmd.Process.Pid)
	})
	if r == nil || r.Flags&unix.O_ACCMODE != unix.O_RDONLY || r.Ret < 0 {
		t.Errorf("cat's openat for read: %v", r)
	}
}

func TestLoopbackConnectAcceptDup2(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "net")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	lport, cport := uint16(atoi(t, out["lport"])), uint16(atoi(t, out["cport"]))
	lo := netip.MustParseAddr("127.0.0.1")
	server, client := netip.AddrPortFrom(lo, lport), netip.AddrPortFrom(lo, cport)

	conn := find(evs, isSys(event.SysConnect))
	if conn == nil {
		t.Fatalf("no connect:\n%s", dump(evs))
	}
	if conn.Ret != 0 || conn.Fd != int32(atoi(t, out["cfd"])) || conn.Dst != server || conn.Src != client ||
		conn.Family != event.AFInet || conn.Proto != event.ProtoTCP || conn.SockType != unix.SOCK_STREAM {
		t.Errorf("connect: %s; want fd=%s %v -> %v tcp", describe(conn), out["cfd"], client, server)
	}
	acc := find(evs, func(e *event.Event) bool { return isSys(event.SysAccept4)(e) || isSys(event.SysAccept)(e) })
	if acc == nil {
		t.Fatalf("no accept:\n%s", dump(evs))
	}
	if acc.Ret != int64(atoi(t, out["afd"])) || acc.Fd != int32(atoi(t, out["lfd"])) || acc.Src != client || acc.Dst != server ||
		acc.Family != event.AFInet || acc.Proto != event.ProtoTCP {
		t.Errorf("accept: %s; want ret=%s fd=%s src=%v dst=%v", describe(acc), out["afd"], out["lfd"], client, server)
	}
	bind := find(evs, isSys(event.SysBind))
	if bind == nil || bind.Src.Addr() != lo || bind.Ret != 0 {
		t.Errorf("bind: %v", bind)
	}
	listen := find(evs, isSys(event.SysListen))
	if listen == nil || listen.Src != server || listen.Mode != 8 {
		t.Errorf("listen: %v", listen)
	}
	sock := find(evs, isSys(event.SysSocket))
	if sock == nil || sock.Family != event.AFInet || sock.SockType != unix.SOCK_STREAM || sock.Proto != event.ProtoTCP || sock.Ret < 3 {
		t.Errorf("socket: %v", sock)
	}
	dup := find(evs, func(e *event.Event) bool { return isSys(event.SysDup2)(e) && e.Fd2 == 0 })
	if dup == nil {
		t.Fatalf("no dup2 onto fd 0:\n%s", dump(evs))
	}
	if dup.Fd != int32(atoi(t, out["afd"])) || dup.Ret != 0 {
		t.Errorf("dup2: %s; want fd=%s", describe(dup), out["afd"])
	}
}

func TestLoopbackIPv6(t *testing.T) {
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		t.Skip("no IPv6 on this kernel")
	}
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "net6")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	lo := netip.IPv6Loopback()
	server := netip.AddrPortFrom(lo, uint16(atoi(t, out["lport"])))
	client := netip.AddrPortFrom(lo, uint16(atoi(t, out["cport"])))
	conn := find(evs, isSys(event.SysConnect))
	if conn == nil || conn.Family != event.AFInet6 || conn.Dst != server || conn.Src != client || conn.Ret != 0 {
		t.Errorf("connect over IPv6: %v\n%s", conn, dump(evs))
	}
	acc := find(evs, isSys(event.SysAccept4))
	if acc == nil || acc.Family != event.AFInet6 || acc.Src != client || acc.Dst != server {
		t.Errorf("accept over IPv6: %v", acc)
	}
}

// TestExeOverlayUpper execs a binary from an overlay's upper layer and one
// from its lower layer: only the first carries FlagExeUpperLayer.
func TestExeOverlayUpper(t *testing.T) {
	c := sensor(t)
	base, err := os.MkdirTemp("", "driftwatch-ovl-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		os.Mkdir(d, 0o755)
	}
	img, _ := os.ReadFile("/bin/true")
	os.WriteFile(filepath.Join(lower, "lowertrue"), img, 0o755)
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Skipf("cannot mount overlayfs: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(merged, "uppertrue"), img, 0o755); err != nil {
		t.Fatal(err)
	}
	cg := newCgroup(t)
	c.watch(cg.id)
	_, up := cg.run(t, filepath.Join(merged, "uppertrue"))
	_, low := cg.run(t, filepath.Join(merged, "lowertrue"))
	evs := c.waitFor(t, cg.id, "both exits", func(evs []*event.Event) bool {
		return hasExit(up.Process.Pid)(evs) && hasExit(low.Process.Pid)(evs)
	})
	for _, tc := range []struct {
		pid   int
		exe   string
		upper bool
	}{{up.Process.Pid, filepath.Join(merged, "uppertrue"), true}, {low.Process.Pid, filepath.Join(merged, "lowertrue"), false}} {
		ex := find(evs, func(e *event.Event) bool { return e.Kind == event.KindExec && e.Pid == uint32(tc.pid) })
		if ex == nil {
			t.Fatalf("no exec of %s:\n%s", tc.exe, dump(evs))
		}
		if got := ex.Flags2&event.FlagExeUpperLayer != 0; got != tc.upper || string(ex.Exe) != tc.exe {
			t.Errorf("exec %s: upper=%v exe=%q, want upper=%v", tc.exe, got, ex.Exe, tc.upper)
		}
	}
}

func TestPtraceAttach(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "ptrace")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	e := find(evs, func(e *event.Event) bool { return isSys(event.SysPtrace)(e) && e.Flags == unix.PTRACE_ATTACH })
	if e == nil {
		t.Fatalf("no ptrace attach:\n%s", dump(evs))
	}
	if e.Ret != 0 || e.Arg3 != uint64(atoi(t, out["child"])) || e.Pid != uint32(cmd.Process.Pid) {
		t.Errorf("ptrace: %s; want pid arg %s", describe(e), out["child"])
	}
}

// TestBpfUserfaultfd: bpf(2) is reported with its command (a successful
// BPF_PROG_LOAD and a failing unknown command) and userfaultfd(2) with its
// flags and the new descriptor.
func TestBpfUserfaultfd(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "bpfuffd")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	load := find(evs, func(e *event.Event) bool { return isSys(event.SysBpf)(e) && e.Raw[0] == unix.BPF_PROG_LOAD })
	if load == nil {
		t.Fatalf("no bpf(BPF_PROG_LOAD):\n%s", dump(evs))
	}
	if load.Ret != int64(atoi(t, out["progfd"])) || load.Pid != uint32(cmd.Process.Pid) {
		t.Errorf("bpf(BPF_PROG_LOAD): %s; want ret %s", describe(load), out["progfd"])
	}
	if got := load.Spec().ArgByName("cmd"); got == nil || load.SlotInt(got.From) != unix.BPF_PROG_LOAD {
		t.Errorf("bpf: the table's cmd argument does not read the command: %+v", got)
	}
	bad := find(evs, func(e *event.Event) bool { return isSys(event.SysBpf)(e) && e.Raw[0] == 9999 })
	if bad == nil || bad.Ret != -int64(atoi(t, out["badcmd_errno"])) || bad.Ret >= 0 {
		t.Errorf("bpf(9999): %v, want ret -%s", bad, out["badcmd_errno"])
	}
	uf := find(evs, isSys(event.SysUserfaultfd))
	if uf == nil {
		t.Fatalf("no userfaultfd:\n%s", dump(evs))
	}
	if uf.Ret != int64(atoi(t, out["uffd"])) || uf.Flags != unix.O_CLOEXEC|unix.O_NONBLOCK {
		t.Errorf("userfaultfd: %s; want ret %s flags %#x", describe(uf), out["uffd"], unix.O_CLOEXEC|unix.O_NONBLOCK)
	}
}

func TestSymlinkat(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	link := filepath.Join(t.TempDir(), "link")
	_, cmd := cg.run(t, helper(t), "symlinkat", "/etc/hostname", link)
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	e := find(evs, isSys(event.SysSymlinkat))
	if e == nil {
		t.Fatalf("no symlinkat:\n%s", dump(evs))
	}
	if e.Ret != 0 || string(e.Path) != "/etc/hostname" || string(e.Path2) != link || e.Fd2 != unix.AT_FDCWD {
		t.Errorf("symlinkat: %s", describe(e))
	}
}

func TestMemfdExecveat(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "memfd")
	pid := cmd.Process.Pid
	evs := c.waitFor(t, cg.id, "the memfd program's exit", hasExit(pid))
	mf := find(evs, isSys(event.SysMemfdCreate))
	if mf == nil {
		t.Fatalf("no memfd_create:\n%s", dump(evs))
	}
	if string(mf.Path) != "dwtest" || mf.Ret != int64(atoi(t, out["fd"])) || mf.Flags != unix.MFD_CLOEXEC {
		t.Errorf("memfd_create: %s", describe(mf))
	}
	ex := find(evs, func(e *event.Event) bool {
		return e.Kind == event.KindExec && e.Pid == uint32(pid) && e.Syscall == event.SysExecveat
	})
	if ex == nil {
		t.Fatalf("no execveat of the memfd:\n%s", dump(evs))
	}
	if ex.Flags2&event.FlagExeMemfd == 0 || string(ex.Argv) != "dwtest-memfd\x00" ||
		!strings.HasPrefix(string(ex.Exe), "/memfd:dwtest") || ex.Flags2&event.FlagExeUpperLayer != 0 {
		t.Errorf("memfd exec: %s", describe(ex))
	}
}

func TestSetuid(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	_, cmd := cg.run(t, helper(t), "setuid", "65534")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	e := find(evs, isSys(event.SysSetuid))
	if e == nil {
		t.Fatalf("no setuid:\n%s", dump(evs))
	}
	if e.Ret != 0 || e.Mode != 65534 || e.Uid != 65534 || e.Euid != 65534 {
		t.Errorf("setuid: %s", describe(e))
	}
}

func TestUnlink(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	path := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(path, nil, 0o644)
	_, cmd := cg.run(t, helper(t), "unlink", path)
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	e := find(evs, isSys(event.SysUnlink))
	if e == nil || e.Ret != 0 || string(e.Path) != path {
		t.Fatalf("unlink: %v\n%s", e, dump(evs))
	}
}

// TestFlood: threads open files flat out into a deliberately tiny syscall
// ring while a shell execs /bin/true in a loop; every exec and exit must
// arrive and the file-event losses must be counted.
func TestFlood(t *testing.T) {
	const execs = 150
	// Without deduplication: the flood is the same open over and over.
	c := startCapture(t, Config{RingSizeSyscall: 4 * os.Getpagesize(), PollInterval: 20 * time.Millisecond, DedupWindow: -1})
	defer c.close(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o644)

	var floods []*exec.Cmd
	for i := 0; i < 2; i++ {
		cmd := cg.command(helper(t), "openflood", file, "3s")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		floods = append(floods, cmd)
	}
	loop := cg.command("/bin/sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do /bin/true; i=$((i+1)); done", execs))
	if err := loop.Run(); err != nil {
		t.Fatal(err)
	}
	for _, f := range floods {
		f.Wait()
	}
	evs := c.waitFor(t, cg.id, "the loop's exit", hasExit(loop.Process.Pid))
	var nexec, nexit, nopen int
	for _, e := range evs {
		switch {
		case e.Kind == event.KindExec && string(e.Path) == "/bin/true":
			nexec++
		case e.Kind == event.KindExit && e.CommString() == "true":
			nexit++
		case e.Kind == event.KindSyscall && e.Syscall == event.SysOpen:
			nopen++
		}
	}
	lost := c.s.Lost()
	t.Logf("execs %d exits %d opens delivered %d lost %v", nexec, nexit, nopen, lost)
	if nexec != execs || nexit != execs {
		t.Errorf("saw %d execs and %d exits of /bin/true, want %d each", nexec, nexit, execs)
	}
	for _, k := range []string{"exec", "fork", "exit"} {
		if lost[k] != 0 {
			t.Errorf("lost %d %s events", lost[k], k)
		}
	}
	if lost["file"] == 0 {
		t.Errorf("no file-event losses counted with a %d-byte ring: %v", 4*os.Getpagesize(), lost)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(Config{KernelBTF: "/nonexistent/btf"})
	var env *EnvError
	if !errors.As(err, &env) || !errors.Is(err, ErrNoBTF) || !strings.Contains(err.Error(), "/nonexistent/btf") {
		t.Errorf("missing BTF: %v", err)
	}
	if _, err := os.Stat(DefaultBTFPath); err != nil {
		t.Skipf("no kernel BTF here: %v", err)
	}
	old := hookTarget
	hookTarget = func(h hook) string {
		if h.prog == "dw_fork" {
			return "sched_process_fork_nonexistent"
		}
		return h.target
	}
	defer func() { hookTarget = old }()
	_, err = Open(Config{})
	if !errors.As(err, &env) || !errors.Is(err, ErrMissingHook) || !strings.Contains(err.Error(), "sched_process_fork_nonexistent") {
		t.Errorf("missing tracepoint: %v", err)
	}
	_, err = Open(Config{Syscalls: []uint16{event.SysRead}})
	if !errors.Is(err, ErrUnsupportedSyscall) {
		t.Errorf("unsupported syscall: %v", err)
	}
	hookTarget = old
	if _, err := Open(Config{RingSizeSyscall: 3000}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("ring size 3000: %v", err)
	}

	// An optional hook that is missing: a warning and the feature off.
	testutil.NeedRoot(t)
	oldHooks := slices.Clone(hooks)
	defer func() { hooks = oldHooks; hookTarget = old }()
	for i := range hooks {
		if hooks[i].prog == "dw_fork" {
			hooks[i].optional = true
		}
	}
	hookTarget = func(h hook) string {
		if h.prog == "dw_fork" {
			return "sched_process_fork_nonexistent"
		}
		return h.target
	}
	s, err := Open(Config{})
	if err != nil {
		var env *EnvError
		if errors.As(err, &env) && errors.Is(err, ErrPermission) {
			testutil.NeedBPF(t, err.Error())
		}
		t.Fatalf("Open with a missing optional hook: %v", err)
	}
	defer s.Close()
	if f := s.Features(); f["fork"] || !f["exec"] || !f["syscalls"] {
		t.Errorf("features with fork missing: %v", f)
	}
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "sched_process_fork_nonexistent") {
		t.Errorf("warnings: %q", w)
	}
	if len(s.links) != len(hooks)-1 {
		t.Errorf("%d programs attached, want %d", len(s.links), len(hooks)-1)
	}
}

// TestUnprivileged runs Open as nobody in a child process.
func TestUnprivileged(t *testing.T) {
	if os.Getenv("DRIFTWATCH_UNPRIV_CHILD") == "1" {
		_, err := Open(Config{})
		fmt.Printf("err=%v\n", err)
		if !errors.Is(err, ErrPermission) {
			os.Exit(3)
		}
		os.Exit(0)
	}
	testutil.NeedRoot(t)
	dir, err := os.MkdirTemp("", "driftwatch-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "bpf.test")
	var data []byte
	data, err = os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUnprivileged$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DRIFTWATCH_UNPRIV_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "privileges") {
		t.Errorf("unprivileged Open: %v\n%s", err, out)
	}
}

// TestChdir: chdir and fchdir are reported (the process table follows the
// cwd with them, so later relative opens resolve).
func TestChdir(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	dir := t.TempDir()
	_, cmd := cg.run(t, "/bin/sh", "-c", "cd "+dir+" && cd / && exec true")
	evs := c.waitFor(t, cg.id, "shell's exit", hasExit(cmd.Process.Pid))
	var got []string
	for _, e := range evs {
		if e.Kind == event.KindSyscall && e.Syscall == event.SysChdir && e.Ret == 0 {
			got = append(got, string(e.Path))
		}
	}
	if len(got) != 2 || got[0] != dir || got[1] != "/" {
		t.Fatalf("chdir paths %q, want [%s /]\n%s", got, dir, dump(evs))
	}
}

// TestOnlyTgid: a sensor with OnlyTgid reports that process's syscalls and
// no other's, while lifecycle events stay machine-wide.
func TestOnlyTgid(t *testing.T) {
	testutil.NeedRoot(t)
	s, err := Open(Config{IncludeSelf: true, OnlyTgid: uint32(os.Getpid()), DedupWindow: -1})
	if err != nil {
		testutil.NeedBPF(t, err.Error())
	}
	defer s.Close()
	dir := t.TempDir()
	own, other := filepath.Join(dir, "own"), filepath.Join(dir, "other")
	for _, p := range []string{own, other} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/cat", other)
	if err := cmd.Run(); err != nil {
		t.Fatalf("cat: %v", err)
	}
	f, err := os.Open(own)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	var sawOwn, sawOther, sawCatExec bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ev event.Event
		for !sawOwn || !sawCatExec {
			if err := s.Next(&ev); err != nil {
				return
			}
			switch {
			case ev.Kind == event.KindSyscall && string(ev.Path) == own:
				sawOwn = true
			case ev.Kind == event.KindSyscall && ev.Pid != uint32(os.Getpid()):
				sawOther = true // cat's open of other, or anything else's
				t.Logf("another process's syscall: %s", describe(&ev))
			case ev.Kind == event.KindExec && ev.Pid == uint32(cmd.Process.Pid):
				sawCatExec = true
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.Close()
		<-done
	}
	if !sawOwn || !sawCatExec || sawOther {
		t.Errorf("own open seen %v (want true), cat's exec seen %v (want true), another process's syscall seen %v (want false)", sawOwn, sawCatExec, sawOther)
	}
}
