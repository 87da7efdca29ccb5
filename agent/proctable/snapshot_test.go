package proctable

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/event"
)

// TestSnapshotAncestry starts sh, which starts sleep, before taking the
// snapshot: the table built from it must know sleep's full ancestry up to
// pid 1, through sh and this test process.
func TestSnapshotAncestry(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & echo $! ; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 32)
	n, err := out.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	sleepPid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("sleep pid %q: %v", buf[:n], err)
	}
	// Wait until sleep has exec'ed (its comm is no longer sh).
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sleepPid), "comm"))
		if strings.TrimSpace(string(b)) == "sleep" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mount, _ := container.CgroupV2Mount()
	snap, err := TakeSnapshot("/proc", mount)
	if err != nil {
		t.Fatal(err)
	}
	if snap.BootTime <= 0 || snap.Time < snap.BootTime || len(snap.Processes) < 3 {
		t.Fatalf("snapshot header: boot %d time %d procs %d", snap.BootTime, snap.Time, len(snap.Processes))
	}
	tab := New(Options{})
	tab.LoadSnapshot(snap)
	p := tab.Get(uint32(sleepPid))
	if p == nil {
		t.Fatalf("sleep (pid %d) not in snapshot", sleepPid)
	}
	if p.Comm != "sleep" || len(p.Args) != 2 || p.Args[1] != "30" {
		t.Fatalf("sleep record: comm %q args %q", p.Comm, p.Args)
	}
	if p.StartTime < snap.BootTime || p.StartTime > snap.Time {
		t.Fatalf("start time %d outside [boot %d, snapshot %d]", p.StartTime, snap.BootTime, snap.Time)
	}
	sh := p.Parent
	if sh == nil || int(sh.Pid) != cmd.Process.Pid || sh.Comm != "sh" {
		t.Fatalf("parent of sleep: %+v, want sh pid %d", sh, cmd.Process.Pid)
	}
	if sh.Parent == nil || int(sh.Parent.Pid) != os.Getpid() {
		t.Fatalf("grandparent of sleep: %+v, want this test (pid %d)", sh.Parent, os.Getpid())
	}
	var chain []string
	a := p
	for ; a.Parent != nil; a = a.Parent {
		chain = append(chain, a.Comm)
		if len(chain) > 100 {
			t.Fatal("ancestry loop")
		}
	}
	if a.Pid != 1 {
		t.Fatalf("ancestry %v ends at pid %d, want 1", chain, a.Pid)
	}
	if mount != "" && p.CgroupID == 0 {
		t.Error("cgroup id not resolved")
	}
	if p.Exe == "" && os.Geteuid() == 0 {
		t.Error("exe of sleep not read")
	}
	if _, ok := snap.Cgroups[p.CgroupID]; mount != "" && !ok {
		t.Errorf("cgroup %d of sleep missing from the cgroup map", p.CgroupID)
	}
	// This test's own process: its ids in its pid namespace and its
	// permitted set, as the kernel reports them to the test itself.
	self := tab.Get(uint32(os.Getpid()))
	st, _ := os.ReadFile("/proc/self/status")
	var prm uint64
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "CapPrm:"); ok {
			prm, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if self == nil || !self.NSKnown || self.VPid == 0 || self.VPgid == 0 || self.CapPrm != prm {
		t.Errorf("this test's record: %+v, want its namespace ids and CapPrm %#x", self, prm)
	} else if self.PidNS == sh.PidNS && (self.VPid == sh.VPid || sh.VPgid != self.VPgid) {
		// sh was started by the test (same namespace, same process group)
		t.Errorf("vpid/vpgid: test %d/%d, its child sh %d/%d", self.VPid, self.VPgid, sh.VPid, sh.VPgid)
	}
}

func TestParseStatusNamespaceIDs(t *testing.T) {
	var pi event.ProcessInfo
	parseStatus([]byte("Name:\tsh\nCapInh:\t0000000000002000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"+
		"NStgid:\t4242\t7\nNSpid:\t4242\t7\nNSpgid:\t4240\t1\nNSsid:\t4240\t1\n"), &pi)
	if pi.VPid != 7 || pi.VPgid != 1 || pi.CapPrm != 0x1ffffffffff || pi.CapInh != 0x2000 || pi.CapEff != 0x1ffffffffff {
		t.Errorf("parsed %+v", pi)
	}
}

func TestParseStatCommWithParens(t *testing.T) {
	line := []byte("42 (a) b (c)) S 7 42 42 34816 42 4194560 1 0 0 0 0 0 0 0 20 0 1 0 250 1000 10 18446744073709551615")
	var pi event.ProcessInfo
	if err := parseStat(line, &pi, 1_000_000_000); err != nil {
		t.Fatal(err)
	}
	if pi.Comm != "a) b (c)" || pi.Ppid != 7 || pi.Tty != 34816 || pi.StartTime != 1_000_000_000+250*10_000_000 {
		t.Fatalf("got %+v", pi)
	}
	if err := parseStat([]byte("42 (x) S"), &pi, 0); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseHexAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"020200C0:800C", "192.0.2.2:32780"},
		{"00000000000000000000000001000000:0016", "[::1]:22"},
		{"0000000000000000FFFF00000100007F:01BB", "[::ffff:127.0.0.1]:443"},
	} {
		got, ok := parseHexAddr(tc.in)
		if !ok || got != netip.MustParseAddrPort(tc.want) {
			t.Errorf("parseHexAddr(%q) = %v %v, want %s", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := parseHexAddr("zz:1"); ok {
		t.Error("bad hex accepted")
	}
}

func TestParseInetTableNames(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0200007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: 0200007F:9C41 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
`
	m := map[uint64]event.FDInfo{}
	parseInetTable([]byte(table), "tcp", m)
	for ino, want := range map[uint64]string{
		111: "127.0.0.1:8080",
		222: "127.0.0.2:40000->127.0.0.1:8080", // accepted: remote is the client
		333: "127.0.0.2:40001->127.0.0.1:80",   // outgoing: local is the client
	} {
		if m[ino].Name != want || m[ino].Type != event.FDIPv4 {
			t.Errorf("inode %d: %+v, want %q", ino, m[ino], want)
		}
	}
}
