package proctable

import (
	"net/netip"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

func sys(pid uint32, nr uint16, mod func(e *event.Event)) *event.Event {
	e := &event.Event{Kind: event.KindSyscall, Syscall: nr, Pid: pid, Tid: pid, Ppid: 1, Time: 1}
	e.SetComm("proc")
	if mod != nil {
		mod(e)
	}
	return e
}

var (
	client = netip.MustParseAddrPort("10.0.0.2:40000")
	server = netip.MustParseAddrPort("10.0.0.1:4444")
)

func TestFDSemantics(t *testing.T) {
	type step struct {
		ev *event.Event
		// expectations on the returned FD (wantNil: none)
		wantNil  bool
		wantNum  int32
		wantType event.FDType
		wantName string
	}
	tests := []struct {
		name  string
		steps []step
		// final check of the table's fd
		checkFD   int32
		checkType event.FDType
		checkName string
		absent    bool
	}{
		{
			name: "socket dup2'ed onto stdin is a socket with its tuple",
			steps: []step{
				{ev: sys(10, event.SysSocket, func(e *event.Event) { e.Family, e.SockType, e.Ret = event.AFInet, 1, 3 }), wantNum: 3, wantType: event.FDIPv4},
				{ev: sys(10, event.SysConnect, func(e *event.Event) { e.Fd, e.Src, e.Dst, e.Family = 3, client, server, event.AFInet }), wantNum: 3, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
				{ev: sys(10, event.SysDup2, func(e *event.Event) { e.Fd, e.Fd2, e.Ret = 3, 0, 0 }), wantNum: 0, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
			},
			checkFD: 0, checkType: event.FDIPv4, checkName: "10.0.0.2:40000->10.0.0.1:4444",
		},
		{
			name: "dup returns the new fd from Ret",
			steps: []step{
				{ev: sys(11, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("/etc/passwd"), 5 }), wantNum: 5, wantType: event.FDFile, wantName: "/etc/passwd"},
				{ev: sys(11, event.SysDup, func(e *event.Event) { e.Fd, e.Ret = 5, 9 }), wantNum: 9, wantType: event.FDFile, wantName: "/etc/passwd"},
			},
			checkFD: 9, checkType: event.FDFile, checkName: "/etc/passwd",
		},
		{
			name: "relative openat against a directory fd",
			steps: []step{
				{ev: sys(12, event.SysOpenat, func(e *event.Event) {
					e.Fd, e.Path, e.Ret, e.Flags = -100, []byte("/var/lib"), 4, oDirectory
				}), wantNum: 4, wantType: event.FDDirectory, wantName: "/var/lib"},
				{ev: sys(12, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret = 4, []byte("../log/x.log"), 6 }), wantNum: 6, wantType: event.FDFile, wantName: "/var/log/x.log"},
			},
			checkFD: 6, checkType: event.FDFile, checkName: "/var/log/x.log",
		},
		{
			name: "io_uring open into a fixed-file slot describes the file, leaves the descriptors alone",
			steps: []step{
				{ev: sys(16, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("/dev/null"), 0 }), wantNum: 0, wantType: event.FDFile, wantName: "/dev/null"},
				{ev: sys(16, event.SysOpenat, func(e *event.Event) {
					e.Fd, e.Path, e.RealPath, e.Ret = -100, []byte("/etc/shadow"), []byte("/etc/shadow"), 0
					e.Flags2 |= event.FlagIOURing | event.FlagIOURingFixed
				}), wantNum: 0, wantType: event.FDFile, wantName: "/etc/shadow"},
			},
			checkFD: 0, checkType: event.FDFile, checkName: "/dev/null",
		},
		{
			name: "failed open gives a transient fd with the path",
			steps: []step{
				{ev: sys(13, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("/etc/shadow"), -13 }), wantNum: -1, wantType: event.FDFile, wantName: "/etc/shadow"},
			},
			checkFD: -1, absent: true,
		},
		{
			name: "accept adds the returned fd as a server-side tuple",
			steps: []step{
				{ev: sys(14, event.SysSocket, func(e *event.Event) { e.Family, e.SockType, e.Ret = event.AFInet, 1, 3 }), wantNum: 3, wantType: event.FDIPv4},
				{ev: sys(14, event.SysBind, func(e *event.Event) { e.Fd, e.Src, e.Family = 3, server, event.AFInet }), wantNum: 3, wantType: event.FDIPv4, wantName: "10.0.0.1:4444"},
				{ev: sys(14, event.SysListen, func(e *event.Event) { e.Fd = 3 }), wantNum: 3, wantType: event.FDIPv4, wantName: "10.0.0.1:4444"},
				{ev: sys(14, event.SysAccept4, func(e *event.Event) { e.Fd, e.Src, e.Dst, e.Ret, e.Family = 3, client, server, 7, event.AFInet }), wantNum: 7, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
			},
			checkFD: 7, checkType: event.FDIPv4, checkName: "10.0.0.2:40000->10.0.0.1:4444",
		},
		{
			name: "fd reuse without close overwrites",
			steps: []step{
				{ev: sys(15, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("/a"), 3 }), wantNum: 3, wantType: event.FDFile, wantName: "/a"},
				{ev: sys(15, event.SysMemfdCreate, func(e *event.Event) { e.Path, e.Ret = []byte("payload"), 3 }), wantNum: 3, wantType: event.FDMemfd, wantName: "memfd:payload"},
			},
			checkFD: 3, checkType: event.FDMemfd, checkName: "memfd:payload",
		},
		{
			name: "ipv6 tuple without brackets",
			steps: []step{
				{ev: sys(16, event.SysConnect, func(e *event.Event) {
					e.Fd, e.Family = 5, event.AFInet6
					e.Src, e.Dst = netip.MustParseAddrPort("[::1]:5000"), netip.MustParseAddrPort("[2001:db8::1]:443")
				}), wantNum: 5, wantType: event.FDIPv6, wantName: "::1:5000->2001:db8::1:443"},
			},
			checkFD: 5, checkType: event.FDIPv6, checkName: "::1:5000->2001:db8::1:443",
		},
		{
			// sh -c 'cat /proc/self/status | grep CapEff': fd 3 once held
			// a socket; the table missed its close and the pipe(2) that
			// reused the number. The kernel says the dup2'ed fd is a pipe.
			name: "dup2 of a pipe where the table remembers a socket",
			steps: []step{
				{ev: sys(18, event.SysSocket, func(e *event.Event) { e.Family, e.SockType, e.Ret = event.AFInet, 1, 3 }), wantNum: 3, wantType: event.FDIPv4},
				{ev: sys(18, event.SysConnect, func(e *event.Event) { e.Fd, e.Src, e.Dst, e.Family = 3, client, server, event.AFInet }), wantNum: 3, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
				{ev: sys(18, event.SysDup2, func(e *event.Event) {
					e.Fd, e.Fd2, e.Ret = 3, 1, 1
					e.Flags2, e.FileType, e.FileIno = event.FlagFileFacts, event.FDPipe, 777
				}), wantNum: 1, wantType: event.FDPipe, wantName: "pipe:[777]"},
			},
			checkFD: 3, checkType: event.FDPipe, checkName: "pipe:[777]",
		},
		{
			name: "dup2 of a socket the table never saw takes the kernel's tuple",
			steps: []step{
				{ev: sys(19, event.SysDup2, func(e *event.Event) {
					e.Fd, e.Fd2, e.Ret = 5, 2, 2
					e.Flags2, e.FileType, e.FileIno, e.Family = event.FlagFileFacts, event.FDIPv4, 9, event.AFInet
					e.Src, e.Dst = client, server
				}), wantNum: 2, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
			},
			checkFD: 2, checkType: event.FDIPv4, checkName: "10.0.0.2:40000->10.0.0.1:4444",
		},
		{
			name: "dup2 of the same socket keeps the table's record",
			steps: []step{
				{ev: sys(20, event.SysConnect, func(e *event.Event) {
					e.Fd, e.Src, e.Dst, e.Family = 3, client, server, event.AFInet
					e.Flags2, e.FileType, e.FileIno = event.FlagFileFacts, event.FDIPv4, 42
				}), wantNum: 3, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
				{ev: sys(20, event.SysDup2, func(e *event.Event) {
					e.Fd, e.Fd2, e.Ret = 3, 0, 0
					e.Flags2, e.FileType, e.FileIno = event.FlagFileFacts, event.FDIPv4, 42
				}), wantNum: 0, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
			},
			checkFD: 0, checkType: event.FDIPv4, checkName: "10.0.0.2:40000->10.0.0.1:4444",
		},
		{
			name: "a connect on a reused number replaces a stale file record",
			steps: []step{
				{ev: sys(21, event.SysOpenat, func(e *event.Event) {
					e.Fd, e.Path, e.Ret = -100, []byte("/a"), 4
					e.Flags2, e.FileType, e.FileIno = event.FlagFileFacts, event.FDFile, 5
				}), wantNum: 4, wantType: event.FDFile, wantName: "/a"},
				{ev: sys(21, event.SysConnect, func(e *event.Event) {
					e.Fd, e.Src, e.Dst, e.Family = 4, client, server, event.AFInet
					e.Flags2, e.FileType, e.FileIno = event.FlagFileFacts, event.FDIPv4, 6
				}), wantNum: 4, wantType: event.FDIPv4, wantName: "10.0.0.2:40000->10.0.0.1:4444"},
			},
			checkFD: 4, checkType: event.FDIPv4, checkName: "10.0.0.2:40000->10.0.0.1:4444",
		},
		{
			name: "fd.name of an open is the kernel's resolved path",
			steps: []step{
				{ev: sys(22, event.SysOpenat, func(e *event.Event) {
					e.Fd, e.Path, e.Ret, e.RealPath = -100, []byte("/tmp/link"), 3, []byte("/etc/shadow")
					e.Flags2, e.FileType, e.FileIno = event.FlagFileFacts, event.FDFile, 5
				}), wantNum: 3, wantType: event.FDFile, wantName: "/etc/shadow"},
			},
			checkFD: 3, checkType: event.FDFile, checkName: "/etc/shadow",
		},
		{
			name: "a resolved path cut at PATH_MAX is marked with … in front",
			steps: []step{
				{ev: sys(24, event.SysOpenat, func(e *event.Event) {
					e.Fd, e.Path, e.Ret, e.RealPath = -100, []byte("f"), 3, []byte("/d/f")
					e.Flags2 = event.FlagFileFacts | event.FlagRealPathTruncated
					e.FileType = event.FDFile
				}), wantNum: 3, wantType: event.FDFile, wantName: "…/d/f"},
			},
			checkFD: 3, checkType: event.FDFile, checkName: "…/d/f",
		},
		{
			name: "a passed path cut at PATH_MAX (failed open) is marked with … at the end",
			steps: []step{
				{ev: sys(25, event.SysOpenat, func(e *event.Event) {
					e.Fd, e.Path, e.Ret, e.Flags2 = -100, []byte("/a/b"), -36, event.FlagPathTruncated
				}), wantNum: -1, wantType: event.FDFile, wantName: "/a/b…"},
			},
			checkFD: -1, absent: true,
		},
		{
			name: "fcntl F_DUPFD_CLOEXEC duplicates like dup",
			steps: []step{
				{ev: sys(23, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("/etc/passwd"), 5 }), wantNum: 5, wantType: event.FDFile, wantName: "/etc/passwd"},
				{ev: sys(23, event.SysFcntl, func(e *event.Event) { e.Fd, e.Flags, e.Ret = 5, fDupfdCloexec, 10 }), wantNum: 10, wantType: event.FDFile, wantName: "/etc/passwd"},
			},
			checkFD: 10, checkType: event.FDFile, checkName: "/etc/passwd",
		},
		{
			name: "syscall without fd argument has no fd",
			steps: []step{
				{ev: sys(17, event.SysPtrace, nil), wantNil: true},
			},
			checkFD: 0, absent: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := New(Options{})
			var proc *event.Process
			for i, s := range tc.steps {
				p, fd := tab.Apply(s.ev, nil)
				proc = p
				if s.wantNil {
					if fd != nil {
						t.Fatalf("step %d: fd %+v, want none", i, fd)
					}
					continue
				}
				if fd == nil {
					t.Fatalf("step %d: no fd", i)
				}
				if fd.Num != s.wantNum || fd.Type != s.wantType || fd.Name != s.wantName {
					t.Fatalf("step %d: fd %d %v %q, want %d %v %q", i, fd.Num, fd.Type, fd.Name, s.wantNum, s.wantType, s.wantName)
				}
			}
			f := proc.FDs[tc.checkFD]
			if tc.absent {
				if f != nil {
					t.Fatalf("fd %d present: %+v", tc.checkFD, f)
				}
				return
			}
			if f == nil || f.Type != tc.checkType || f.Name != tc.checkName {
				t.Fatalf("table fd %d = %+v, want %v %q", tc.checkFD, f, tc.checkType, tc.checkName)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	tab := New(Options{})
	exec := &event.Event{Kind: event.KindExec, Pid: 100, Ppid: 1, Time: 10, Exe: []byte("/bin/sh"), Argv: []byte("sh\x00-c\x00x"), Cwd: []byte("/work")}
	exec.SetComm("sh")
	p, _ := tab.Apply(exec, nil)
	if p.Exe != "/bin/sh" || len(p.Args) != 3 || p.Cwd != "/work" || p.Generation != 1 || p.Comm != "sh" {
		t.Fatalf("after exec: %+v", p)
	}
	tab.Apply(sys(100, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret, e.Flags = -100, []byte("rel.txt"), 3, 0 }), nil)
	tab.Apply(sys(100, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret, e.Flags = -100, []byte("/x"), 4, oCloexec }), nil)
	if got := p.FDs[3].Name; got != "/work/rel.txt" {
		t.Fatalf("relative open resolved to %q", got)
	}
	fork := &event.Event{Kind: event.KindFork, Pid: 100, Ppid: 1, ChildPid: 101, ChildTid: 101, Time: 20}
	tab.Apply(fork, nil)
	c := tab.Get(101)
	if c == nil || c.Parent != p || c.Exe != "/bin/sh" || c.FDs[3] == nil || c.FDs[4] == nil {
		t.Fatalf("child after fork: %+v", c)
	}
	thread := &event.Event{Kind: event.KindFork, Pid: 100, ChildPid: 100, ChildTid: 102, Flags2: event.FlagThread}
	tab.Apply(thread, nil)
	if tab.Get(102) != nil {
		t.Fatal("a thread became a process record")
	}
	exec2 := &event.Event{Kind: event.KindExec, Pid: 101, Ppid: 100, Time: 30, Exe: []byte("/usr/bin/curl"), Argv: []byte("curl")}
	exec2.SetComm("curl")
	tab.Apply(exec2, nil)
	if c.Exe != "/usr/bin/curl" || c.Generation != 2 || c.FDs[4] != nil || c.FDs[3] == nil {
		t.Fatalf("after exec in child: exe %q gen %d fds %v (cloexec fd 4 must be gone, fd 3 kept)", c.Exe, c.Generation, c.FDs)
	}
	if p.Exe != "/bin/sh" {
		t.Fatal("child exec changed the parent")
	}
	// Unknown pid: minimal record linked to its parent by Ppid.
	u, _ := tab.Apply(sys(200, event.SysRead, func(e *event.Event) { e.Ppid = 101 }), nil)
	if u.Parent != c || u.Comm != "proc" {
		t.Fatalf("minimal record: parent %v comm %q", u.Parent, u.Comm)
	}
	if u.Ancestor(2) != p {
		t.Fatal("ancestor(2) of the minimal record is not the shell")
	}
	ctr := &event.Container{ContainerInfo: event.ContainerInfo{ID: "abc"}}
	pp, _ := tab.Apply(sys(200, event.SysRead, nil), ctr)
	if pp.Container != ctr {
		t.Fatal("container not attached")
	}
}

func TestReaping(t *testing.T) {
	grace := time.Second
	tab := New(Options{ExitGrace: grace, MaxProcs: 1000})
	sec := int64(time.Second)
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 10, Ppid: 1, Time: 1, Exe: []byte("/bin/parent")}, nil)
	tab.Apply(&event.Event{Kind: event.KindFork, Pid: 10, ChildPid: 11, Time: 2}, nil)
	tab.Apply(&event.Event{Kind: event.KindExit, Pid: 10, Time: 3}, nil)
	// Parent exited but its child lives: kept past the grace period.
	tab.Apply(&event.Event{Kind: event.KindSyscall, Syscall: event.SysRead, Pid: 11, Time: 3 + 5*sec}, nil)
	tab.Reap()
	if tab.Get(10) == nil || tab.Get(11).Parent != tab.Get(10) {
		t.Fatal("exited parent of a live child was reaped")
	}
	// Child exits: both go after the grace period, not before.
	tab.Apply(&event.Event{Kind: event.KindExit, Pid: 11, Time: 6 * sec}, nil)
	tab.Reap()
	if tab.Get(11) == nil {
		t.Fatal("reaped before the grace period")
	}
	tab.Apply(&event.Event{Kind: event.KindSyscall, Syscall: event.SysRead, Pid: 99, Time: 8 * sec}, nil)
	tab.Reap()
	if tab.Get(11) != nil || tab.Get(10) != nil {
		t.Fatalf("not reaped after grace: len %d", tab.Len())
	}

	// A fork/exit storm stays bounded.
	for i := 0; i < 100_000; i++ {
		now := 10*sec + int64(i)*int64(time.Millisecond)
		child := uint32(1000 + i%30000)
		tab.Apply(&event.Event{Kind: event.KindFork, Pid: 99, ChildPid: child, Time: now}, nil)
		tab.Apply(&event.Event{Kind: event.KindExit, Pid: child, Time: now}, nil)
	}
	if n := tab.Len(); n > 1000+1024 {
		t.Fatalf("table holds %d records, cap 1000", n)
	}
	if tab.Get(99) == nil {
		t.Fatal("live process evicted")
	}
}

func TestMaxProcsEvictsOldestExited(t *testing.T) {
	tab := New(Options{ExitGrace: time.Hour, MaxProcs: 10})
	for i := uint32(0); i < 20; i++ {
		tab.Apply(&event.Event{Kind: event.KindFork, Pid: 1, ChildPid: 100 + i, Time: int64(i)}, nil)
		tab.Apply(&event.Event{Kind: event.KindExit, Pid: 100 + i, Time: int64(i)}, nil)
	}
	tab.Reap()
	if tab.Len() > 10 || tab.Len() < 8 {
		t.Fatalf("len %d above cap 10", tab.Len())
	}
	if tab.Get(119) == nil || tab.Get(100) != nil {
		t.Fatal("eviction did not drop the oldest exited first")
	}
	if tab.Evicted() == 0 {
		t.Fatal("evictions not counted")
	}
}

func TestLoadSnapshotAncestry(t *testing.T) {
	snap := &event.Snapshot{Processes: []event.ProcessInfo{
		{Pid: 1, Comm: "init"},
		{Pid: 50, Ppid: 1, Comm: "sshd", FDs: []event.FDInfo{{Num: 3, Type: event.FDIPv4, Name: "0.0.0.0:22"}}},
		{Pid: 60, Ppid: 50, Comm: "bash", FDs: []event.FDInfo{{Num: 0, Type: event.FDIPv6, Name: "fd00::2:40000->2001:db8::1:4444"}}},
	}}
	tab := New(Options{})
	tab.LoadSnapshot(snap)
	b := tab.Get(60)
	if b == nil || !b.FromSnapshot || b.Ancestor(1).Comm != "sshd" || b.Ancestor(2).Comm != "init" || b.Ancestor(3) != nil {
		t.Fatalf("ancestry from snapshot wrong: %+v", b)
	}
	p, _ := tab.Apply(&event.Event{Kind: event.KindSyscall, Syscall: event.SysRead, Pid: 60, Ppid: 50}, nil)
	if p != b {
		t.Fatal("event did not find the snapshot record")
	}
	if f := tab.Get(50).FDs[3]; f == nil || f.Type != event.FDIPv4 || !f.Listening || f.Local != netip.MustParseAddrPort("0.0.0.0:22") {
		t.Fatalf("snapshot listening socket: %+v", f)
	}
	// A reverse shell older than the agent: socket on fd 0, dup2'ed again.
	f0 := tab.Get(60).FDs[0]
	if f0 == nil || f0.Local != netip.MustParseAddrPort("[fd00::2]:40000") || f0.Remote != netip.MustParseAddrPort("[2001:db8::1]:4444") {
		t.Fatalf("snapshot ipv6 tuple not parsed: %+v", f0)
	}
	_, fd := tab.Apply(&event.Event{Kind: event.KindSyscall, Syscall: event.SysDup2, Pid: 60, Ppid: 50, Fd: 0, Fd2: 1, Ret: 1}, nil)
	if fd == nil || fd.Num != 1 || fd.Remote != f0.Remote || fd.Name != f0.Name {
		t.Fatalf("dup2 of a snapshot socket: %+v", fd)
	}
}

func TestChdirResolvesLaterRelativeOpens(t *testing.T) {
	tests := []struct {
		name  string
		steps []*event.Event
		open  string
		want  string
	}{
		{"chdir absolute", []*event.Event{
			sys(40, event.SysChdir, func(e *event.Event) { e.Path = []byte("/var/www") }),
		}, "index.html", "/var/www/index.html"},
		{"chdir relative to the cwd", []*event.Event{
			sys(41, event.SysChdir, func(e *event.Event) { e.Path = []byte("/var") }),
			sys(41, event.SysChdir, func(e *event.Event) { e.Path = []byte("www/../www") }),
		}, "a/b", "/var/www/a/b"},
		{"failed chdir keeps the cwd", []*event.Event{
			sys(42, event.SysChdir, func(e *event.Event) { e.Path = []byte("/srv") }),
			sys(42, event.SysChdir, func(e *event.Event) { e.Path, e.Ret = []byte("/nonexistent"), -2 }),
		}, "x", "/srv/x"},
		{"fchdir to an open directory", []*event.Event{
			sys(43, event.SysOpenat, func(e *event.Event) {
				e.Fd, e.Path, e.Flags, e.Ret = -100, []byte("/data/db"), oDirectory, 7
			}),
			sys(43, event.SysFchdir, func(e *event.Event) { e.Fd = 7 }),
		}, "wal", "/data/db/wal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := New(Options{})
			var pid uint32
			for _, ev := range tt.steps {
				pid = ev.Pid
				tab.Apply(ev, nil)
			}
			_, fd := tab.Apply(sys(pid, event.SysOpenat, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte(tt.open), 3 }), nil)
			if fd == nil || fd.Name != tt.want {
				t.Fatalf("open %q resolved to %+v, want %q", tt.open, fd, tt.want)
			}
		})
	}
}

func TestExecName(t *testing.T) {
	tests := []struct {
		comm, exe string
		args      []string
		want      string
	}{
		{"cat", "/usr/bin/cat", []string{"cat", "/etc/shadow"}, "cat"},
		{"exe", "/bin/busybox", []string{"nc", "-w", "3"}, "nc"},
		{"exe", "/bin/busybox", []string{"/bin/tar", "-cz"}, "tar"},
		{"exe", "/bin/busybox", nil, "exe"},
		{"exe", "/opt/app/exe", []string{"worker"}, "exe"},
		{"exe", "/bin/busybox", []string{"a-very-long-applet-name"}, "a-very-long-app"},
	}
	for _, tt := range tests {
		if got := execName(tt.comm, tt.exe, tt.args); got != tt.want {
			t.Errorf("execName(%q, %q, %q) = %q, want %q", tt.comm, tt.exe, tt.args, got, tt.want)
		}
	}
}

func TestTruncatedArgvMarked(t *testing.T) {
	tab := New(Options{})
	ev := &event.Event{Kind: event.KindExec, Pid: 70, Tid: 70, Ppid: 1, Exe: []byte("/bin/sh"),
		Argv: []byte("sh\x00-c\x00echo aaaa"), Flags2: event.FlagArgvTruncated}
	p, _ := tab.Apply(ev, nil)
	if !p.ArgsTruncated || len(p.Args) != 3 || p.Args[2] != "echo aaaa…" {
		t.Errorf("cut argv: truncated=%v args=%q, want the last ending in …", p.ArgsTruncated, p.Args)
	}
	ev.Flags2 = 0
	p, _ = tab.Apply(ev, nil)
	if p.ArgsTruncated || p.Args[2] != "echo aaaa" {
		t.Errorf("whole argv: truncated=%v args=%q", p.ArgsTruncated, p.Args)
	}
}

// TestExecNamespaceIDsAndEnv: the ids, capability sets and environment of
// an exec are kept (the environment copied out of the event's reusable
// buffer, a variable cut by the sensor's bound dropped), a forked child
// takes its own ids from the fork and shares the parent's environment,
// threads' vtids are kept until their exit, and an exec without the facts
// (an older trace) leaves them unknown.
func TestExecNamespaceIDsAndEnv(t *testing.T) {
	tab := New(Options{})
	ex := &event.Event{Kind: event.KindExec, Pid: 100, Tid: 100, Ppid: 1, Time: 1, Exe: []byte("/bin/sh"), Argv: []byte("sh\x00"),
		VPid: 1, VTid: 1, VPgid: 1, CapPrm: 0xff, CapInh: 0x2000, Env: []byte("A=1\x00B=2\x00")}
	p, _ := tab.Apply(ex, nil)
	ex.Env[0] = 'X' // the decoder reuses the buffer
	if !p.NSKnown || p.VPid != 1 || p.VPgid != 1 || p.CapPrm != 0xff || p.CapInh != 0x2000 || !p.EnvKnown || string(p.Env) != "A=1\x00B=2\x00" {
		t.Fatalf("after exec: %+v", p)
	}
	tab.Apply(&event.Event{Kind: event.KindFork, Pid: 100, Tid: 100, Time: 2, ChildPid: 101, ChildTid: 101, VPid: 2, VTid: 2, VPgid: 1, CapPrm: 0xf}, nil)
	child, _ := tab.Apply(sys(101, event.SysOpenat, func(e *event.Event) { e.Ppid = 100 }), nil)
	if !child.NSKnown || child.VPid != 2 || child.VPgid != 1 || child.CapPrm != 0xf || string(child.Env) != "A=1\x00B=2\x00" {
		t.Fatalf("forked child: %+v", child)
	}
	tab.Apply(&event.Event{Kind: event.KindFork, Pid: 100, Tid: 100, Time: 3, ChildPid: 100, ChildTid: 105, VPid: 1, VTid: 6, Flags2: event.FlagThread}, nil)
	if p.VTids[105] != 6 {
		t.Fatalf("thread vtid: %v", p.VTids)
	}
	tab.Apply(&event.Event{Kind: event.KindExit, Pid: 100, Tid: 105, Time: 4, Flags2: event.FlagThread}, nil)
	if _, ok := p.VTids[105]; ok || p.ExitTime != 0 {
		t.Fatalf("exited thread kept: %v, or its exit ended the process (exit time %d)", p.VTids, p.ExitTime)
	}
	cut := &event.Event{Kind: event.KindExec, Pid: 101, Tid: 101, Time: 5, Exe: []byte("/bin/x"), VPid: 2, VTid: 2, VPgid: 2,
		Env: []byte("A=1\x00LONG=xxxx"), Flags2: event.FlagEnvTruncated}
	tab.Apply(cut, nil)
	if string(child.Env) != "A=1\x00" || !child.EnvTruncated || child.VPgid != 2 {
		t.Fatalf("truncated env: %q %+v", child.Env, child)
	}
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 101, Tid: 101, Time: 6, Exe: []byte("/bin/y")}, nil)
	if child.NSKnown || child.EnvKnown || child.Env != nil {
		t.Fatalf("exec without the facts kept old ones: %+v", child)
	}
}
