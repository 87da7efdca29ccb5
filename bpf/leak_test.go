package bpf

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/event"
)

// TestNoLeakedBytes fills both rings with records whose strings are all
// the marker byte 0xA5, then checks that no field of the events of an
// ordinary process carries four marker bytes in a row: every field of
// every record is written on every event. It also checks that a process
// without a terminal reports tty 0 on every event.
func TestNoLeakedBytes(t *testing.T) {
	// Small rings: the fill wraps them many times over.
	c := startCapture(t, Config{RingSizeSyscall: 64 << 10, RingSizeLifecycle: 64 << 10, DedupWindow: -1})
	defer c.close(t)

	fill := newCgroup(t)
	c.watch(fill.id)
	cmd := fill.command(helper(t), "markfill", "400")
	cmd.SysProcAttr.Setsid = true
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("markfill: %v\n%s", err, out)
	}
	fevs := c.waitFor(t, fill.id, "the fill's exit", hasExit(cmd.Process.Pid))
	mark := bytes.Repeat([]byte{0xA5}, 4)
	// Marker bytes that went through each ring: more than twice its size
	// means every byte of it held the marker at some point.
	var sysBytes, lifeBytes int
	for _, e := range fevs {
		n := bytes.Count(e.Path, mark[:1]) + bytes.Count(e.Path2, mark[:1]) + bytes.Count(e.UnixPath, mark[:1]) + bytes.Count(e.Argv, mark[:1])
		if e.Kind == event.KindSyscall {
			sysBytes += n
		} else {
			lifeBytes += n
		}
	}
	if sysBytes < 2*64<<10 || lifeBytes < 2*64<<10 {
		t.Fatalf("the fill delivered %d syscall and %d lifecycle marker bytes, want more than twice each ring's 64 KiB", sysBytes, lifeBytes)
	}

	cg := newCgroup(t)
	c.watch(cg.id)
	mix := cg.command(helper(t), "mix")
	mix.SysProcAttr.Setsid = true // no controlling terminal
	if out, err := mix.CombinedOutput(); err != nil {
		t.Fatalf("mix: %v\n%s", err, out)
	}
	evs := c.waitFor(t, cg.id, "mix's exit", hasExit(mix.Process.Pid))
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Type()]++
		if raw := EncodeRecord(e, Clock{}); bytes.Contains(raw, mark) {
			t.Errorf("event carries marker bytes at %d: %s", bytes.Index(raw, mark), describe(e))
		}
		if e.Tty != 0 {
			t.Errorf("tty %d (%#x) for a process without a terminal: %s", e.Tty, e.Tty, describe(e))
		}
	}
	for _, k := range []string{"openat", "dup2", "connect", "accept4", "socket", "renameat", "symlinkat", "unlinkat", "mkdirat", "setuid", "execve", "clone", "procexit"} {
		if kinds[k] == 0 {
			t.Errorf("mix produced no %s event (got %v)", k, kinds)
		}
	}
	if lost := c.s.Lost(); t.Failed() {
		t.Logf("lost during the test (the fill overruns the small rings on purpose): %v", lost)
	}
}

// TestTTY: a process whose controlling terminal is a pseudo-terminal
// reports that terminal's device number (as /proc/PID/stat tty_nr), one
// without a terminal reports 0.
func TestTTY(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)

	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pts: %v", err)
	}
	defer pts.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(pts.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	want := uint32(st.Rdev)

	dir := t.TempDir()
	onTTY, noTTY := filepath.Join(dir, "on-tty"), filepath.Join(dir, "no-tty")
	run := func(path string, tty bool) int {
		cmd := cg.command(helper(t), "openw", path)
		cmd.SysProcAttr.Setsid = true
		if tty {
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
			cmd.SysProcAttr.Setctty = true
			cmd.SysProcAttr.Ctty = 0
		}
		if err := cmd.Run(); err != nil {
			t.Fatalf("helper openw %s: %v", path, err)
		}
		return cmd.Process.Pid
	}
	p1 := run(onTTY, true)
	p2 := run(noTTY, false)
	evs := c.waitFor(t, cg.id, "both exits", func(evs []*event.Event) bool { return hasExit(p1)(evs) && hasExit(p2)(evs) })
	// The child gets its terminal after the fork, just before the exec:
	// the process is on the terminal from its exec on.
	var execNum uint64
	if ex := find(evs, func(e *event.Event) bool { return e.Kind == event.KindExec && e.Pid == uint32(p1) }); ex != nil {
		execNum = ex.Num
	} else {
		t.Fatalf("no exec of pid %d:\n%s", p1, dump(evs))
	}
	checked := 0
	for _, e := range evs {
		var wantTTY uint32
		switch e.Pid {
		case uint32(p1):
			if e.Num < execNum {
				continue
			}
			wantTTY = want
		case uint32(p2):
			wantTTY = 0
		default:
			continue
		}
		checked++
		if e.Tty != wantTTY {
			t.Errorf("pid %d: tty %#x, want %#x: %s", e.Pid, e.Tty, wantTTY, describe(e))
		}
	}
	if op := find(evs, func(e *event.Event) bool { return isSys(event.SysOpenat)(e) && string(e.Path) == onTTY }); op == nil {
		t.Errorf("no openat of %s from the process on the terminal", onTTY)
	}
	if checked < 4 {
		t.Errorf("only %d events of the two processes", checked)
	}
}
