package rules

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

const (
	tNow   = int64(1_750_000_000_000_000_000)
	second = int64(1_000_000_000)
)

var testUsers = StaticResolver{
	Users:  map[uint32]string{0: "root", 33: "www-data", 1000: "alice"},
	Groups: map[uint32]string{0: "root", 33: "www-data", 1000: "alice"},
}

var hostC = &event.Container{ContainerInfo: event.ContainerInfo{ID: event.HostContainerID}}

func ctr() *event.Container {
	return &event.Container{ContainerInfo: event.ContainerInfo{
		ID: "0123456789ab", Name: "web", Image: "docker.io/library/nginx:1.27", ImageRepo: "docker.io/library/nginx",
		ImageTag: "1.27", PodName: "web-0", Namespace: "shop", StartTime: tNow - 3600*second,
	}}
}

// proc builds a process; args is the full argv (argv[0] first).
func proc(comm, exe string, args ...string) *event.Process {
	if len(args) == 0 {
		args = []string{exe}
	}
	return &event.Process{Pid: 4242, Comm: comm, Exe: exe, Args: args, Cwd: "/root", StartTime: tNow - 60*second, Container: hostC}
}

// lineage links p to its ancestors (parent first) and returns p.
func lineage(p *event.Process, ancestors ...*event.Process) *event.Process {
	cur := p
	for i, a := range ancestors {
		a.Pid = uint32(4000 - i)
		a.Container = p.Container
		cur.Parent = a
		cur.Ppid = a.Pid
		cur = a
	}
	return p
}

func inCtr(p *event.Process, k *event.Container) *event.Process {
	for q := p; q != nil; q = q.Parent {
		q.Container = k
	}
	return p
}

func base(p *event.Process) *event.Event {
	ev := &event.Event{Time: tNow, Num: 42, Pid: p.Pid, Tid: p.Pid, Uid: p.Uid, Euid: p.Euid, Gid: p.Gid, Egid: p.Egid, LoginUID: 0xffffffff, Tty: p.Tty}
	ev.SetComm(p.Comm)
	return ev
}

func enr(p *event.Process, ev *event.Event) *event.Enriched {
	k := p.Container
	if k == nil {
		k = hostC
	}
	return &event.Enriched{Event: ev, Proc: p, Container: k, Hostname: "node-1"}
}

func execEv(p *event.Process) *event.Enriched {
	ev := base(p)
	ev.Kind = event.KindExec
	ev.Syscall = event.SysExecve
	ev.Exe = []byte(p.Exe)
	return enr(p, ev)
}

func sysEv(p *event.Process, nr uint16, ret int64) *event.Enriched {
	ev := base(p)
	ev.Kind = event.KindSyscall
	ev.Syscall = nr
	ev.Ret = ret
	return enr(p, ev)
}

func openEv(p *event.Process, path string, flags uint32) *event.Enriched {
	e := sysEv(p, event.SysOpenat, 3)
	e.Path = []byte(path)
	e.Flags = flags
	e.Fd = -100
	return e
}

func connectEv(p *event.Process, dst string, port uint16) *event.Enriched {
	e := sysEv(p, event.SysConnect, 0)
	a := netip.MustParseAddr(dst)
	e.Family = event.AFInet
	if a.Is6() {
		e.Family = event.AFInet6
	}
	e.Proto = event.ProtoTCP
	e.Fd = 5
	e.Src = netip.AddrPortFrom(netip.MustParseAddr("10.1.2.3"), 40000)
	if a.Is6() {
		e.Src = netip.AddrPortFrom(netip.MustParseAddr("fd00::3"), 40000)
	}
	e.Dst = netip.AddrPortFrom(a, port)
	return e
}

func sharedRules(t testing.TB) string {
	t.Helper()
	return filepath.Join(testutil.SharedDir(t), "compat", "falco_rules.yaml")
}

func loadFalco(t *testing.T, opts Options) *Ruleset {
	t.Helper()
	if opts.Users == nil {
		opts.Users = testUsers
	}
	rs, _, err := Load([]string{sharedRules(t)}, opts)
	if err != nil {
		t.Fatalf("load stable rules: %v", err)
	}
	return rs
}

func loadDefaults(t testing.TB) *Ruleset {
	t.Helper()
	rs, _, err := LoadDefault(Options{Users: testUsers})
	if err != nil {
		t.Fatalf("load default rules: %v", err)
	}
	return rs
}

func mustLoad(t *testing.T, yaml string) *Ruleset {
	t.Helper()
	rs, _, err := LoadBytes("test.yaml", []byte(yaml), Options{Users: testUsers})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return rs
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
