package bpf

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/event"
)

// opensOf returns the open(2) events of path in evs, in order.
func opensOf(evs []*event.Event, path string) []*event.Event {
	var out []*event.Event
	for _, e := range evs {
		if isSys(event.SysOpen)(e) && string(e.Path) == path {
			out = append(out, e)
		}
	}
	return out
}

// TestDedupOpens: repeated identical opens by one process are delivered
// once per window and counted; a different path, different flags, a failed
// open, a new window and a new generation (ResetDedup) are each delivered.
func TestDedupOpens(t *testing.T) {
	const window = 400 * time.Millisecond
	// The repeats deduplicated for this test's process are the opens it
	// made minus the opens delivered from it: measured on its own cgroup,
	// never on the machine-wide counter (other programs' opens add to it).
	c := startCapture(t, Config{Syscalls: []uint16{event.SysOpen}, DedupWindow: window})
	defer c.close(t)
	if got := c.s.DedupWindow(); got != window {
		t.Fatalf("DedupWindow() = %v, want %v", got, window)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	missing := filepath.Join(dir, "missing")
	// Two paths longer than the key's 64 path bytes that differ only
	// after them: told apart by the keyed hash.
	long := filepath.Join(dir, strings.Repeat("d", 80))
	if err := os.Mkdir(long, 0o755); err != nil {
		t.Fatal(err)
	}
	long1, long2 := filepath.Join(long, "1"), filepath.Join(long, "2")
	for _, f := range []string{a, b, long1, long2} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const n = 20
	steps := []string{
		a + "*20", b + "*1", "w" + a + "*3", missing + "*5", long1 + "*4", long2 + "*1", // one window
		"sleep=" + (window + 200*time.Millisecond).String(), a + "*3", // the next window
		"wait", a + "*2", // after ResetDedup
	}
	const made = n + 1 + 3 + 5 + 4 + 1 + 3 + 2 // opens the helper makes
	const wantDedup = (n - 1) + (3 - 1) + (5 - 1) + (4 - 1) + (3 - 1) + (2 - 1)
	cg := newCgroup(t)
	c.watch(cg.id)
	before := c.s.Deduplicated()
	cmd := cg.command(helper(t), append([]string{"opens"}, steps...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Let the first window's steps and the sleep pass, then reset.
	time.Sleep(window + 600*time.Millisecond)
	if err := c.s.ResetDedup(); err != nil {
		t.Fatalf("ResetDedup: %v", err)
	}
	io.WriteString(stdin, "\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	after := c.s.Deduplicated()

	opensA := opensOf(evs, a)
	var readA, writeA []*event.Event
	for _, e := range opensA {
		if e.Flags&unix.O_ACCMODE == unix.O_WRONLY {
			writeA = append(writeA, e)
		} else {
			readA = append(readA, e)
		}
	}
	if len(readA) != 3 {
		t.Errorf("read-only opens of %s delivered: %d, want 3 (first window, next window, after reset):\n%s", a, len(readA), dump(opensA))
	}
	if len(writeA) != 1 {
		t.Errorf("write opens of %s delivered: %d, want 1 (flags are part of the key)", a, len(writeA))
	}
	if got := opensOf(evs, b); len(got) != 1 {
		t.Errorf("opens of %s (a different path) delivered: %d, want 1", b, len(got))
	}
	if l1, l2 := opensOf(evs, long1), opensOf(evs, long2); len(l1) != 1 || len(l2) != 1 {
		t.Errorf("opens of two long paths differing after 64 bytes delivered: %d and %d, want 1 each", len(l1), len(l2))
	}
	miss := opensOf(evs, missing)
	if len(miss) != 1 || miss[0].Ret != -int64(unix.ENOENT) {
		t.Errorf("failed opens of %s: %s, want one with ENOENT", missing, dump(miss))
	}
	if len(readA) == 3 {
		if gap := time.Duration(readA[1].Time - readA[0].Time); gap < window {
			t.Errorf("second delivery of %s only %v after the first, inside the %v window", a, gap, window)
		}
	}
	var delivered int
	for _, e := range evs {
		if isSys(event.SysOpen)(e) && e.Pid == uint32(cmd.Process.Pid) {
			delivered++
		}
	}
	if got := made - delivered; got != wantDedup {
		t.Errorf("the helper's opens: %d made, %d delivered: %d deduplicated, want %d", made, delivered, got, wantDedup)
	}
	// The machine-wide counter holds other programs' repeats too: it
	// can only have grown by at least ours.
	if got := after["file"] - before["file"]; got < wantDedup {
		t.Errorf("deduplication counter grew by %d, less than this process's %d repeats", got, wantDedup)
	}
}

// TestDedupConnects: a process connecting to the same loopback listener n
// times delivers one connect and one accept; the repeats are counted.
func TestDedupConnects(t *testing.T) {
	c := sensor(t) // the shared sensor runs with the default window
	if c.s.DedupWindow() != DefaultDedupWindow {
		t.Fatalf("default DedupWindow() = %v, want %v", c.s.DedupWindow(), DefaultDedupWindow)
	}
	cg := newCgroup(t)
	c.watch(cg.id)
	before := c.s.Deduplicated()
	const n = 10
	out, cmd := cg.run(t, helper(t), "conns", "10")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	after := c.s.Deduplicated()
	count := func(nr uint16) int {
		k := 0
		for _, e := range evs {
			if isSys(nr)(e) {
				k++
			}
		}
		return k
	}
	conns, accs, socks := count(event.SysConnect), count(event.SysAccept4), count(event.SysSocket)
	if conns != 1 || accs != 1 {
		t.Errorf("delivered %d connects and %d accepts for %d identical ones, want 1 each:\n%s", conns, accs, n, dump(evs))
	}
	// The listening socket and the n client sockets have the same
	// arguments: one socket event.
	if socks != 1 {
		t.Errorf("delivered %d socket events, want 1", socks)
	}
	if conn := find(evs, isSys(event.SysConnect)); conn != nil && conn.Dst.Port() != uint16(atoi(t, out["lport"])) {
		t.Errorf("connect: %s, want port %s", describe(conn), out["lport"])
	}
	if d := after["net"] - before["net"]; d < 3*(n-1) {
		t.Errorf("deduplicated net events: %d, want at least %d", d, 3*(n-1))
	}
}

// TestDedupConnectsPerPeer: repeats are merged per peer, never across
// peers: 5 connects to each of three loopback listeners deliver one connect
// and one accept per listener, each naming its listener's port (read from
// the kernel's socket), and two connects refused by a closed port are
// delivered once with the port the caller passed.
func TestDedupConnectsPerPeer(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "conns", "5", "3")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	ports := strings.Split(out["lports"], ",")
	if len(ports) != 3 {
		t.Fatalf("helper printed lports=%q", out["lports"])
	}
	refused := uint16(atoi(t, out["refused"]))
	for i, p := range ports {
		port := uint16(atoi(t, p))
		var conns, accs int
		for _, e := range evs {
			switch {
			case isSys(event.SysConnect)(e) && e.Dst.Port() == port && e.Ret == 0:
				conns++
				if e.Dst.Addr().String() != "127.0.0.1" || e.Src.Port() == 0 {
					t.Errorf("connect to listener %d: %s, want 127.0.0.1:%d from a bound local port", i, describe(e), port)
				}
			case isSys(event.SysAccept4)(e) && e.Ret >= 0 && e.Dst.Port() == port:
				accs++
			}
		}
		if conns != 1 || accs != 1 {
			t.Errorf("listener %d (port %d): %d connects, %d accepts delivered, want 1 each:\n%s", i, port, conns, accs, dump(evs))
		}
	}
	var ref int
	for _, e := range evs {
		if isSys(event.SysConnect)(e) && e.Ret == -int64(unix.ECONNREFUSED) {
			ref++
			if e.Dst.Port() != refused || e.Dst.Addr().String() != "127.0.0.1" {
				t.Errorf("refused connect: %s, want 127.0.0.1:%d", describe(e), refused)
			}
		}
	}
	if ref != 1 {
		t.Errorf("refused connects delivered: %d of 2, want 1:\n%s", ref, dump(evs))
	}
}

// TestUnixConnects: connects to unix sockets carry the path (or abstract
// name) and are deduplicated per path: n connects to each of two paths that
// differ only in the last byte, and to an abstract name, deliver one each.
func TestUnixConnects(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "sock1"), filepath.Join(dir, "sock2")
	abstract := fmt.Sprintf("driftwatch-test-%d", os.Getpid())
	const n = 5
	_, cmd := cg.run(t, helper(t), "unixconns", strconv.Itoa(n), p1, p2, "@"+abstract)
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	for _, want := range []string{p1, p2, "\x00" + abstract} {
		k := 0
		for _, e := range evs {
			if isSys(event.SysConnect)(e) && string(e.UnixPath) == want {
				k++
				if e.Family != event.AFUnix || e.Ret != 0 {
					t.Errorf("connect to %q: %s", want, describe(e))
				}
			}
		}
		if k != 1 {
			t.Errorf("connects to %q delivered: %d of %d, want 1:\n%s", want, k, n, dump(evs))
		}
	}
}

// TestDedupByFile: successful opens are repeats when they open the same
// file by the same name, whatever string was passed: a relative path, the
// absolute path and a symlink to it are one key; a symlink retargeted in
// the window opens another file and is delivered at once.
func TestDedupByFile(t *testing.T) {
	c := startCapture(t, Config{Syscalls: []uint16{event.SysOpen}, DedupWindow: 5 * time.Second})
	defer c.close(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b, link := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "link")
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	cg := newCgroup(t)
	c.watch(cg.id)
	cmd := cg.command(helper(t), "opens", "a*5", a+"*3", "link*2", "wait", "link*2", b+"*2")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the steps before "wait"
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(b, link); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	byReal := map[string][]*event.Event{}
	for _, e := range evs {
		if isSys(event.SysOpen)(e) && e.Pid == uint32(cmd.Process.Pid) {
			byReal[string(e.RealPath)] = append(byReal[string(e.RealPath)], e)
		}
	}
	if got := byReal[a]; len(got) != 1 || string(got[0].Path) != "a" {
		t.Errorf("opens of %s (as a, %s and link) delivered: %s, want the first one (a) only", a, a, dump(got))
	}
	if got := byReal[b]; len(got) != 1 || string(got[0].Path) != "link" {
		t.Errorf("opens of %s (link retargeted, then %s) delivered: %s, want the first one (link) only", b, b, dump(got))
	}
	if len(byReal) != 2 {
		t.Errorf("opens delivered for %d files, want 2: %v", len(byReal), byReal)
	}
}
