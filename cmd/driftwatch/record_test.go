package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// buildTool builds a main package into dir.
func buildTool(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// TestRecordLive is the end-to-end check: record while cat, a
// loopback connect and ln -s run in a test cgroup, then read the trace.
func TestRecordLive(t *testing.T) {
	testutil.NeedRoot(t)
	mount, err := container.CgroupV2Mount()
	if err != nil {
		testutil.NeedBPF(t, err.Error())
	}
	dir := t.TempDir()
	bin := buildTool(t, dir, "driftwatch", ".")
	helper := buildTool(t, dir, "helper", "../../bpf/testdata/helper")
	out := filepath.Join(dir, "live.trace")

	// Other packages' tests may flood open(2) and loopback connects
	// meanwhile: leave open(2) out and give the syscall ring room.
	rec := exec.Command(bin, "record", "--out", out, "--duration", "60s",
		"--syscalls", "openat,connect,symlink,symlinkat,execve", "--ring-syscall", fmt.Sprint(32<<20))
	stderr, _ := rec.StderrPipe()
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	defer rec.Process.Kill()
	sc := bufio.NewScanner(stderr)
	var errLines []string
	ready := false
	for sc.Scan() {
		errLines = append(errLines, sc.Text())
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		rec.Wait()
		msg := strings.Join(errLines, "\n")
		if code := rec.ProcessState.ExitCode(); code == 2 {
			testutil.NeedBPF(t, msg)
		}
		t.Fatalf("record never printed ready:\n%s", msg)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderr); rest <- string(b) }()

	cgDir := filepath.Join(mount, fmt.Sprintf("driftwatch-record-test-%d", os.Getpid()))
	if err := os.Mkdir(cgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cgDir)
	var st syscall.Stat_t
	syscall.Stat(cgDir, &st)
	cgID := st.Ino
	cgFD, err := syscall.Open(cgDir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(cgFD)
	run := func(name string, args ...string) (string, int) {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgFD}
		var o bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &o
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, o.String())
		}
		return o.String(), cmd.Process.Pid
	}
	_, catPid := run("/bin/cat", "/etc/hostname")
	netOut, _ := run(helper, "net")
	link := filepath.Join(dir, "hostname-link")
	run("/bin/ln", "-s", "/etc/hostname", link)
	var lport int
	for _, f := range strings.Fields(netOut) {
		if v, ok := strings.CutPrefix(f, "lport="); ok {
			lport, _ = strconv.Atoi(v)
		}
	}

	time.Sleep(100 * time.Millisecond) // let the last records reach the rings
	rec.Process.Signal(os.Interrupt)
	err = rec.Wait()
	summary := <-rest
	if err != nil {
		t.Fatalf("record exited with %v:\n%s", err, summary)
	}
	if !strings.Contains(summary, "recorded ") || !strings.Contains(summary, "lost ") {
		t.Errorf("no summary on stderr:\n%s", summary)
	}

	r, err := trace.Open(out)
	if err != nil {
		t.Fatalf("open trace: %v", err)
	}
	defer r.Close()
	if r.Snapshot() == nil || len(r.Snapshot().Processes) == 0 {
		t.Errorf("trace has no process snapshot")
	}
	var sawExec, sawOpen, sawConnect, sawSymlink bool
	var ev event.Event
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read trace: %v", err)
		}
		if ev.CgroupID != cgID {
			continue
		}
		switch {
		case ev.Kind == event.KindExec && ev.Pid == uint32(catPid) && string(ev.Argv) == "/bin/cat\x00/etc/hostname\x00":
			sawExec = true
		case ev.Kind == event.KindSyscall && ev.Syscall == event.SysOpenat && string(ev.Path) == "/etc/hostname" && ev.Ret >= 0:
			sawOpen = true
		case ev.Kind == event.KindSyscall && ev.Syscall == event.SysConnect && int(ev.Dst.Port()) == lport && ev.Ret == 0:
			sawConnect = true
		case ev.Kind == event.KindSyscall && (ev.Syscall == event.SysSymlinkat || ev.Syscall == event.SysSymlink) &&
			string(ev.Path) == "/etc/hostname" && string(ev.Path2) == link:
			sawSymlink = true
		}
	}
	if !sawExec || !sawOpen || !sawConnect || !sawSymlink {
		t.Errorf("trace of cgroup %d: exec of cat %v, openat /etc/hostname %v, connect to port %d %v, symlink %v",
			cgID, sawExec, sawOpen, lport, sawConnect, sawSymlink)
	}
}

// TestRecordUnprivileged: without privileges record exits 2 naming what is missing.
func TestRecordUnprivileged(t *testing.T) {
	testutil.NeedRoot(t)
	dir, err := os.MkdirTemp("", "driftwatch-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := buildTool(t, dir, "driftwatch", ".")
	cmd := exec.Command(bin, "record", "--out", filepath.Join(dir, "x.trace"), "--duration", "1s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "privileges") {
		t.Errorf("unprivileged record: %v\n%s", err, out)
	}
	if strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("want one error line, got:\n%s", out)
	}
}

func TestParseSyscalls(t *testing.T) {
	nrs, err := parseSyscalls("openat, connect")
	if err != nil || len(nrs) != 2 || nrs[0] != event.SysOpenat || nrs[1] != event.SysConnect {
		t.Errorf("parseSyscalls = %v, %v", nrs, err)
	}
	if _, err := parseSyscalls("read"); err == nil {
		t.Error("read accepted")
	}
	if _, err := parseSyscalls("nosuchcall"); err == nil {
		t.Error("unknown name accepted")
	}
}
