package rules

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// fieldDef describes one supported field.
type fieldDef struct {
	typ   ftype
	multi bool // without an argument, the field yields several values (any-of semantics)
	// argMode: 0 no argument, 1 optional, 2 required.
	argMode int
	desc    string
	make    func(arg string, hasArg bool) (getter, bool, error) // returns getter and whether it is multi-valued
}

// fieldTable maps Falco field names to their definitions.
var fieldTable = map[string]*fieldDef{}

func simple(name string, t ftype, desc string, g getter) {
	fieldTable[name] = &fieldDef{typ: t, desc: desc, make: func(string, bool) (getter, bool, error) { return g, false, nil }}
}

func str(name, desc string, f func(c *evalCtx) (string, bool)) {
	simple(name, tString, desc, func(c *evalCtx, _ int) (value, bool) {
		s, ok := f(c)
		return value{s: s}, ok
	})
}

func num(name, desc string, f func(c *evalCtx) (int64, bool)) {
	simple(name, tInt, desc, func(c *evalCtx, _ int) (value, bool) {
		n, ok := f(c)
		return value{n: n}, ok
	})
}

func boolean(name, desc string, f func(c *evalCtx) (bool, bool)) {
	simple(name, tBool, desc, func(c *evalCtx, _ int) (value, bool) {
		b, ok := f(c)
		if b {
			return value{n: 1}, ok
		}
		return value{}, ok
	})
}

func ipf(name, desc string, f func(c *evalCtx) (netip.Addr, bool)) {
	simple(name, tIP, desc, func(c *evalCtx, _ int) (value, bool) {
		a, ok := f(c)
		return value{ip: a}, ok && a.IsValid()
	})
}

// FieldNames lists the supported fields, sorted.
func FieldNames() []string {
	out := make([]string, 0, len(fieldTable))
	for n := range fieldTable {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ---- process helpers ----

func (c *evalCtx) proc() *event.Process { return c.e.Proc }

func procName(p *event.Process) (string, bool) {
	if p == nil || p.Comm == "" {
		return "", false
	}
	return p.Comm, true
}

// procExe is argv[0] (Falco proc.exe); event.Process.Args holds the full argv.
func procExe(p *event.Process) (string, bool) {
	if p == nil {
		return "", false
	}
	if len(p.Args) > 0 {
		return p.Args[0], true
	}
	if p.Exe != "" {
		return p.Exe, true
	}
	return "", false
}

func procExepath(p *event.Process) (string, bool) {
	if p == nil || p.Exe == "" {
		return "", false
	}
	return p.Exe, true
}

func appendArgs(b []byte, p *event.Process) []byte {
	for i := 1; i < len(p.Args); i++ {
		if i > 1 {
			b = append(b, ' ')
		}
		b = append(b, p.Args[i]...)
	}
	return b
}

func (c *evalCtx) args(p *event.Process, slot int) (string, bool) {
	if p == nil {
		return "", false
	}
	if s, ok := c.cached(slot); ok {
		return s, true
	}
	return c.store(slot, appendArgs(c.bufs[slot][:0], p)), true
}

func (c *evalCtx) cmdline(p *event.Process, slot int) (string, bool) {
	if p == nil {
		return "", false
	}
	if s, ok := c.cached(slot); ok {
		return s, true
	}
	b := append(c.bufs[slot][:0], p.Comm...)
	if len(p.Args) > 1 {
		b = append(b, ' ')
		b = appendArgs(b, p)
	}
	return c.store(slot, b), true
}

// ancestor returns the n-th ancestor (0 = the process itself).
func (c *evalCtx) ancestor(n int) *event.Process {
	p := c.proc()
	for i := 0; i < n && p != nil; i++ {
		next := p.Parent
		if next == p {
			return nil
		}
		p = next
	}
	return p
}

// sessionLeader approximates Falco's proc.sname (see docs/rules.md): the
// highest ancestor in the same container, below the host's pid 1.
func (c *evalCtx) sessionLeader() *event.Process {
	p := c.proc()
	if p == nil {
		return nil
	}
	for i := 0; i < maxAncestors; i++ {
		q := p.Parent
		if q == nil || q == p || q.Pid <= 1 || q.Container != p.Container {
			return p
		}
		p = q
	}
	return p
}

const maxAncestors = 64

// ancestorField builds proc.aname-style fields: with [N] the N-th
// ancestor (0 = self), without an argument every ancestor (any-of).
func ancestorField(name string, t ftype, desc string, f func(p *event.Process) (value, bool)) {
	fieldTable[name] = &fieldDef{typ: t, argMode: 1, desc: desc, make: func(arg string, hasArg bool) (getter, bool, error) {
		if hasArg {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 || n > maxAncestors {
				return nil, false, fmt.Errorf("%s: argument must be a generation 0..%d, got %q", name, maxAncestors, arg)
			}
			return func(c *evalCtx, _ int) (value, bool) {
				p := c.ancestor(n)
				if p == nil {
					return value{}, false
				}
				return f(p)
			}, false, nil
		}
		return func(c *evalCtx, i int) (value, bool) {
			if i >= maxAncestors {
				return value{}, false
			}
			p := c.ancestor(i + 1)
			if p == nil {
				return value{}, false
			}
			if v, ok := f(p); ok {
				return v, true
			}
			return value{}, true // present ancestor with missing value: keep iterating
		}, true, nil
	}}
}

// ---- user and group ----

func (c *evalCtx) userName(uid uint32) (string, bool) {
	if c.rs.opts.Users == nil {
		return "", false
	}
	var pid uint32
	if c.e.Event != nil {
		pid = c.e.Pid
	}
	return c.rs.opts.Users.UserName(c.e.Container, pid, uid)
}

func (c *evalCtx) groupName(gid uint32) (string, bool) {
	if c.rs.opts.Users == nil {
		return "", false
	}
	var pid uint32
	if c.e.Event != nil {
		pid = c.e.Pid
	}
	return c.rs.opts.Users.GroupName(c.e.Container, pid, gid)
}

// ---- fd helpers ----

func isOpen(e *event.Event) bool {
	if e.Kind != event.KindSyscall {
		return false
	}
	sp := event.SpecOf(e.Syscall)
	return sp != nil && sp.FD == event.EffOpen // open, openat, openat2, creat, open_by_handle_at
}

// fdOf returns the descriptor the event concerns: the table's record, or
// one synthesised from the event's own arguments.
func (c *evalCtx) fdOf() *event.FD {
	if c.fdDone {
		return c.fd
	}
	c.fdDone = true
	e := c.e
	if e.FD != nil {
		c.fd = e.FD
		return c.fd
	}
	ev := e.Event
	if ev == nil || ev.Kind != event.KindSyscall {
		return nil
	}
	s := &c.synthFD
	*s = event.FD{}
	switch {
	case isOpen(ev):
		s.Num = -1
		if ev.Ret >= 0 {
			s.Num = int32(ev.Ret)
		}
		s.Type = event.FDFile
		if ev.Flags&oDirectory != 0 {
			s.Type = event.FDDirectory
		}
		s.Name = bstr(ev.Path)
		s.NameRaw = s.Name
		s.Flags = ev.Flags
	case ev.Syscall == event.SysConnect || ev.Syscall == event.SysSendto || ev.Syscall == event.SysSendmsg ||
		ev.Syscall == event.SysAccept || ev.Syscall == event.SysAccept4 || ev.Syscall == event.SysBind ||
		ev.Syscall == event.SysListen || ev.Syscall == event.SysSocket:
		s.Num = ev.Fd
		s.Family = ev.Family
		s.Proto = ev.Proto
		switch ev.Family {
		case event.AFInet:
			s.Type = event.FDIPv4
		case event.AFInet6:
			s.Type = event.FDIPv6
		case event.AFUnix:
			s.Type = event.FDUnix
			s.Name = bstr(ev.UnixPath)
		default:
			return nil
		}
		switch ev.Syscall {
		case event.SysAccept, event.SysAccept4:
			s.Num = int32(ev.Ret)
			s.Server = true
			s.Remote, s.Local = ev.Src, ev.Dst
			s.Connected = true
		case event.SysSocket:
			s.Num = int32(ev.Ret)
		default:
			s.Local, s.Remote = ev.Src, ev.Dst
			s.Connected = ev.Syscall == event.SysConnect && (ev.Ret == 0 || ev.Ret == -115)
			s.NameChanged = ev.Syscall == event.SysSendto || ev.Syscall == event.SysSendmsg
		}
	default:
		return nil
	}
	c.fd = s
	return s
}

// clientServer returns the (client, server) ends of a socket fd.
func clientServer(f *event.FD) (netip.AddrPort, netip.AddrPort) {
	if f.Server {
		return f.Remote, f.Local
	}
	return f.Local, f.Remote
}

func isIPFD(f *event.FD) bool {
	return f != nil && (f.Type == event.FDIPv4 || f.Type == event.FDIPv6)
}

// fdName is fd.name: the path, or cip:cport->sip:sport for IP sockets.
func (c *evalCtx) fdName() (string, bool) {
	f := c.fdOf()
	if f == nil {
		return "", false
	}
	if f.Name != "" || !isIPFD(f) {
		return f.Name, f.Name != "" || f.Type == event.FDFile
	}
	if s, ok := c.cached(cacheFDName); ok {
		return s, true
	}
	cl, sv := clientServer(f)
	b := c.bufs[cacheFDName][:0]
	b = appendAddrPort(b, cl)
	b = append(b, "->"...)
	b = appendAddrPort(b, sv)
	return c.store(cacheFDName, b), true
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	if a.Is6() && !a.Is4In6() {
		b = a.AppendTo(b)
	} else {
		b = a.Unmap().AppendTo(b)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

func fileDir(name string) string {
	i := strings.LastIndexByte(name, '/')
	switch {
	case i < 0:
		return ""
	case i == 0:
		return "/"
	}
	return name[:i]
}

func fileBase(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// ipEnds builds fd.cip/fd.sip/... getters; which picks the address.
func ipEnd(which func(f *event.FD) netip.AddrPort) func(c *evalCtx) (netip.Addr, bool) {
	return func(c *evalCtx) (netip.Addr, bool) {
		f := c.fdOf()
		if !isIPFD(f) {
			return netip.Addr{}, false
		}
		a := which(f).Addr().Unmap()
		return a, a.IsValid()
	}
}

func portEnd(which func(f *event.FD) netip.AddrPort) func(c *evalCtx) (int64, bool) {
	return func(c *evalCtx) (int64, bool) {
		f := c.fdOf()
		if !isIPFD(f) {
			return 0, false
		}
		ap := which(f)
		if !ap.IsValid() {
			return 0, false
		}
		return int64(ap.Port()), true
	}
}

func cli(f *event.FD) netip.AddrPort { a, _ := clientServer(f); return a }
func srv(f *event.FD) netip.AddrPort { _, b := clientServer(f); return b }
func loc(f *event.FD) netip.AddrPort { return f.Local }
func rem(f *event.FD) netip.AddrPort { return f.Remote }

// bothEnds builds fd.ip/fd.net/fd.port: multi-valued over client and server.
func bothEnds(name string, t ftype, desc string) {
	fieldTable[name] = &fieldDef{typ: t, desc: desc, make: func(string, bool) (getter, bool, error) {
		return func(c *evalCtx, i int) (value, bool) {
			f := c.fdOf()
			if !isIPFD(f) || i > 1 {
				return value{}, false
			}
			cl, sv := clientServer(f)
			ap := cl
			if i == 1 {
				ap = sv
			}
			if t == tInt {
				return value{n: int64(ap.Port())}, true
			}
			return value{ip: ap.Addr().Unmap()}, true
		}, true, nil
	}}
}

// ---- container ----

func (c *evalCtx) container() *event.Container {
	if c.e.Container != nil {
		return c.e.Container
	}
	if p := c.proc(); p != nil {
		return p.Container
	}
	return nil
}

func containerStr(name, desc string, f func(k *event.Container) string) {
	str(name, desc, func(c *evalCtx) (string, bool) {
		k := c.container()
		if k == nil {
			return "", false
		}
		s := f(k)
		return s, s != ""
	})
}

func k8sStr(name, desc string, f func(k *event.Container) string) {
	str(name, desc, func(c *evalCtx) (string, bool) {
		k := c.container()
		if k == nil || k.IsHost() {
			return "", false
		}
		s := f(k)
		return s, s != ""
	})
}

func labelField(name, desc string) {
	fieldTable[name] = &fieldDef{typ: tString, argMode: 2, desc: desc, make: func(arg string, hasArg bool) (getter, bool, error) {
		return func(c *evalCtx, _ int) (value, bool) {
			k := c.container()
			if k == nil || k.Labels == nil {
				return value{}, false
			}
			v, ok := k.Labels[arg]
			return value{s: v}, ok
		}, false, nil
	}}
}

func (c *evalCtx) evtTime() int64 {
	if c.e.Event == nil {
		return 0
	}
	return c.e.Time
}

func init() {
	// ---- evt ----
	str("evt.type", "event type (syscall name, or execve/clone/procexit for lifecycle events)", func(c *evalCtx) (string, bool) {
		t := c.e.Type()
		return t, t != ""
	})
	num("evt.num", "event number", func(c *evalCtx) (int64, bool) { return int64(c.e.Num), true })
	str("evt.dir", "event direction; driftwatch reports exit events only ('<')", func(c *evalCtx) (string, bool) { return "<", true })
	str("evt.res", "SUCCESS, or the errno name of a failed call", func(c *evalCtx) (string, bool) {
		if c.e.Ret >= 0 || c.e.Kind != event.KindSyscall {
			return "SUCCESS", true
		}
		return event.ErrnoName(-c.e.Ret), true
	})
	num("evt.rawres", "raw return value", func(c *evalCtx) (int64, bool) { return c.e.Ret, true })
	boolean("evt.failed", "true for a syscall that returned an error", func(c *evalCtx) (bool, bool) { return c.e.Failed(), true })
	num("evt.rawtime", "event time, ns since the epoch", func(c *evalCtx) (int64, bool) { return c.evtTime(), true })
	str("evt.time", "event time as HH:MM:SS.nnnnnnnnn (UTC)", func(c *evalCtx) (string, bool) {
		if s, ok := c.cached(cacheTime); ok {
			return s, true
		}
		t := time.Unix(0, c.evtTime()).UTC()
		return c.store(cacheTime, t.AppendFormat(c.bufs[cacheTime][:0], "15:04:05.000000000")), true
	})
	str("evt.hostname", "host name", func(c *evalCtx) (string, bool) { return c.e.Hostname, c.e.Hostname != "" })
	boolean("evt.is_open_read", "open-family event with read access", func(c *evalCtx) (bool, bool) {
		if !isOpen(c.e.Event) {
			return false, true
		}
		m := c.e.Flags & oAccmode
		return m == 0 || m == oRdwr, true
	})
	boolean("evt.is_open_write", "open-family event with write access", func(c *evalCtx) (bool, bool) {
		if !isOpen(c.e.Event) {
			return false, true
		}
		m := c.e.Flags & oAccmode
		return m == oWronly || m == oRdwr, true
	})
	boolean("evt.is_open_create", "open-family event with O_CREAT", func(c *evalCtx) (bool, bool) {
		return isOpen(c.e.Event) && c.e.Flags&oCreat != 0, true
	})
	str("evt.args", "all arguments rendered as name=value", func(c *evalCtx) (string, bool) {
		if s, ok := c.cached(cacheEvtArgs); ok {
			return s, true
		}
		return c.store(cacheEvtArgs, appendEvtArgs(c, c.bufs[cacheEvtArgs][:0])), true
	})
	fieldTable["evt.arg"] = &fieldDef{typ: tString, argMode: 2, desc: "argument by position (evt.arg[N]) or name (evt.arg.NAME)",
		make: func(arg string, hasArg bool) (getter, bool, error) {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 || n > 8 {
				return nil, false, fmt.Errorf("evt.arg[%s]: argument must be a position 0..8", arg)
			}
			return func(c *evalCtx, _ int) (value, bool) {
				name, ok := exitArg(c.e.Event, n)
				if !ok {
					return value{}, false
				}
				s, ok := argValue(c, name)
				return value{s: s}, ok
			}, false, nil
		}}
	for _, a := range argNames {
		a := a
		str("evt.arg."+a, "syscall argument "+a, func(c *evalCtx) (string, bool) { return argValue(c, a) })
	}

	// ---- proc ----
	str("proc.name", "process name (comm)", func(c *evalCtx) (string, bool) {
		if s, ok := procName(c.proc()); ok {
			return s, true
		}
		s := commString(c.e.Event)
		return s, s != ""
	})
	str("proc.exe", "argv[0]", func(c *evalCtx) (string, bool) { return procExe(c.proc()) })
	str("proc.exepath", "full path of the executable", func(c *evalCtx) (string, bool) { return procExepath(c.proc()) })
	boolean("proc.args_truncated", "argv was longer than the sensor reads and is cut (its last argument ends in …)", func(c *evalCtx) (bool, bool) {
		p := c.proc()
		return p != nil && p.ArgsTruncated, p != nil
	})
	str("proc.args", "arguments after argv[0], space separated", func(c *evalCtx) (string, bool) { return c.args(c.proc(), cacheArgs) })
	str("proc.cmdline", "name and arguments", func(c *evalCtx) (string, bool) { return c.cmdline(c.proc(), cacheCmdline) })
	str("proc.cwd", "working directory with a trailing /", func(c *evalCtx) (string, bool) {
		p := c.proc()
		if p == nil || p.Cwd == "" {
			return "", false
		}
		if strings.HasSuffix(p.Cwd, "/") {
			return p.Cwd, true
		}
		if s, ok := c.cached(cacheCwd); ok {
			return s, true
		}
		return c.store(cacheCwd, append(append(c.bufs[cacheCwd][:0], p.Cwd...), '/')), true
	})
	num("proc.pid", "process id", func(c *evalCtx) (int64, bool) {
		if p := c.proc(); p != nil {
			return int64(p.Pid), true
		}
		return int64(c.e.Pid), c.e.Event != nil
	})
	num("proc.ppid", "parent process id", func(c *evalCtx) (int64, bool) {
		if p := c.proc(); p != nil {
			return int64(p.Ppid), true
		}
		return int64(c.e.Ppid), c.e.Event != nil
	})
	num("proc.tty", "controlling terminal (0 when none)", func(c *evalCtx) (int64, bool) {
		if p := c.proc(); p != nil {
			return int64(p.Tty), true
		}
		return int64(c.e.Tty), true
	})
	num("proc.start_ts", "process start time, ns since the epoch", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		return pStart(p), p != nil && pStart(p) > 0
	})
	num("proc.duration", "ns since the process started", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		if p == nil || pStart(p) == 0 {
			return 0, false
		}
		return c.evtTime() - pStart(p), true
	})
	boolean("proc.is_exe_upper_layer", "executable on the overlayfs upper layer", func(c *evalCtx) (bool, bool) {
		p := c.proc()
		if c.e.Kind == event.KindExec && c.e.Flags2&event.FlagExeUpperLayer != 0 {
			return true, true
		}
		return p != nil && p.ExeUpperLayer, p != nil
	})
	boolean("proc.is_exe_from_memfd", "executable is a memfd", func(c *evalCtx) (bool, bool) {
		p := c.proc()
		if c.e.Kind == event.KindExec && c.e.Flags2&event.FlagExeMemfd != 0 {
			return true, true
		}
		return p != nil && p.ExeMemfd, p != nil
	})
	num("proc.exe_ino", "inode of the executable", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		return int64(pIno(p)), p != nil && pIno(p) != 0
	})
	num("proc.exe_ino.ctime", "ctime of the executable, ns", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		return pCtime(p), p != nil && pCtime(p) != 0
	})
	num("proc.exe_ino.mtime", "mtime of the executable, ns", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		if p == nil || p.ExeMtime == 0 {
			return 0, false
		}
		return p.ExeMtime, true
	})
	num("proc.exe_ino.ctime_duration_proc_start", "ns between the executable's ctime and the process start", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		if p == nil || pCtime(p) == 0 || pStart(p) == 0 {
			return 0, false
		}
		return pStart(p) - pCtime(p), true
	})
	str("proc.pname", "parent's name", func(c *evalCtx) (string, bool) { return procName(c.ancestor(1)) })
	str("proc.pexe", "parent's argv[0]", func(c *evalCtx) (string, bool) { return procExe(c.ancestor(1)) })
	str("proc.pexepath", "parent's executable path", func(c *evalCtx) (string, bool) { return procExepath(c.ancestor(1)) })
	str("proc.pcmdline", "parent's command line", func(c *evalCtx) (string, bool) { return c.cmdline(c.ancestor(1), cachePCmdline) })
	str("proc.pargs", "parent's arguments", func(c *evalCtx) (string, bool) { return c.args(c.ancestor(1), cachePArgs) })
	str("proc.sname", "session leader's name (approximation, see docs/rules.md)", func(c *evalCtx) (string, bool) { return procName(c.sessionLeader()) })
	ancestorField("proc.aname", tString, "name of an ancestor ([0] self, [1] parent ...); without argument any ancestor", func(p *event.Process) (value, bool) {
		s, ok := procName(p)
		return value{s: s}, ok
	})
	ancestorField("proc.aexe", tString, "argv[0] of an ancestor", func(p *event.Process) (value, bool) {
		s, ok := procExe(p)
		return value{s: s}, ok
	})
	ancestorField("proc.aexepath", tString, "executable path of an ancestor", func(p *event.Process) (value, bool) {
		s, ok := procExepath(p)
		return value{s: s}, ok
	})
	ancestorField("proc.apid", tInt, "pid of an ancestor", func(p *event.Process) (value, bool) {
		return value{n: int64(p.Pid)}, true
	})
	num("proc.puid", "driftwatch extension: the parent's effective uid from the process table", func(c *evalCtx) (int64, bool) {
		p := c.ancestor(1)
		if p == nil {
			return 0, false
		}
		return int64(p.Euid), true
	})
	num("thread.tid", "thread id", func(c *evalCtx) (int64, bool) { return int64(c.e.Tid), c.e.Event != nil })
	str("thread.cap_effective", "effective capabilities (CAP_* names, space separated)", func(c *evalCtx) (string, bool) {
		if s, ok := c.cached(cacheCaps); ok {
			return s, true
		}
		caps := c.e.CapEff
		if caps == 0 {
			if p := c.proc(); p != nil {
				caps = p.CapEff
			}
		}
		return c.store(cacheCaps, appendCaps(c.bufs[cacheCaps][:0], caps)), true
	})

	// ---- user / group ----
	num("user.uid", "effective user id", func(c *evalCtx) (int64, bool) { return int64(c.e.Euid), c.e.Event != nil })
	str("user.name", "user name from the container's /etc/passwd", func(c *evalCtx) (string, bool) { return c.userName(c.e.Euid) })
	num("user.loginuid", "audit login uid (-1 when unset)", func(c *evalCtx) (int64, bool) {
		return int64(int32(c.e.LoginUID)), c.e.Event != nil
	})
	str("user.loginname", "name of the login uid", func(c *evalCtx) (string, bool) {
		if c.e.LoginUID == 0xffffffff {
			return "", false
		}
		return c.userName(c.e.LoginUID)
	})
	num("group.gid", "effective group id", func(c *evalCtx) (int64, bool) { return int64(c.e.Egid), c.e.Event != nil })
	str("group.name", "group name from the container's /etc/group", func(c *evalCtx) (string, bool) { return c.groupName(c.e.Egid) })

	// ---- fd ----
	num("fd.num", "descriptor number (-1 for a failed open)", func(c *evalCtx) (int64, bool) {
		if isOpen(c.e.Event) {
			if c.e.Ret < 0 {
				return -1, true
			}
			return c.e.Ret, true
		}
		f := c.fdOf()
		if f == nil {
			return 0, false
		}
		return int64(f.Num), true
	})
	str("fd.type", "descriptor type (file, directory, ipv4, ipv6, unix ...)", func(c *evalCtx) (string, bool) {
		f := c.fdOf()
		if f == nil || f.Type == event.FDUnknown {
			return "", false
		}
		return f.Type.String(), true
	})
	str("fd.typechar", "descriptor type as one character (f, d, 4, 6, u, p ...)", func(c *evalCtx) (string, bool) {
		f := c.fdOf()
		if f == nil {
			return "", false
		}
		return typeChars[f.Type.Char()], true
	})
	str("fd.name", "path, or cip:cport->sip:sport for sockets", func(c *evalCtx) (string, bool) { return c.fdName() })
	str("fd.nameraw", "path as passed to the syscall", func(c *evalCtx) (string, bool) {
		f := c.fdOf()
		if f == nil {
			return "", false
		}
		if f.NameRaw != "" {
			return f.NameRaw, true
		}
		return c.fdName()
	})
	str("fd.directory", "directory of a file descriptor", func(c *evalCtx) (string, bool) {
		f := c.fdOf()
		if f == nil || (f.Type != event.FDFile && f.Type != event.FDDirectory) || f.Name == "" {
			return "", false
		}
		if f.Type == event.FDDirectory {
			return f.Name, true
		}
		return fileDir(f.Name), true
	})
	str("fd.filename", "file name without the directory", func(c *evalCtx) (string, bool) {
		f := c.fdOf()
		if f == nil || f.Type != event.FDFile || f.Name == "" {
			return "", false
		}
		return fileBase(f.Name), true
	})
	str("fd.l4proto", "tcp, udp, icmp or raw", func(c *evalCtx) (string, bool) {
		f := c.fdOf()
		if !isIPFD(f) {
			return "", false
		}
		s, ok := protoNames[f.Proto]
		return s, ok
	})
	ipf("fd.cip", "client IP", ipEnd(cli))
	ipf("fd.sip", "server IP", ipEnd(srv))
	ipf("fd.lip", "local IP", ipEnd(loc))
	ipf("fd.rip", "remote IP", ipEnd(rem))
	ipf("fd.cnet", "client IP (compare with a CIDR)", ipEnd(cli))
	ipf("fd.snet", "server IP (compare with a CIDR)", ipEnd(srv))
	ipf("fd.lnet", "local IP (compare with a CIDR)", ipEnd(loc))
	ipf("fd.rnet", "remote IP (compare with a CIDR)", ipEnd(rem))
	bothEnds("fd.ip", tIP, "client or server IP (filter only)")
	bothEnds("fd.net", tIP, "client or server IP in a CIDR (filter only)")
	bothEnds("fd.port", tInt, "client or server port (filter only)")
	num("fd.cport", "client port", portEnd(cli))
	num("fd.sport", "server port", portEnd(srv))
	num("fd.lport", "local port", portEnd(loc))
	num("fd.rport", "remote port", portEnd(rem))
	boolean("fd.connected", "socket is connected", func(c *evalCtx) (bool, bool) {
		f := c.fdOf()
		return f != nil && f.Connected, f != nil
	})
	boolean("fd.name_changed", "the event changed the descriptor's name", func(c *evalCtx) (bool, bool) {
		f := c.fdOf()
		return f != nil && f.NameChanged, f != nil
	})
	boolean("fd.name_truncated", "fd.name was longer than PATH_MAX and is cut (marked with …)", func(c *evalCtx) (bool, bool) {
		f := c.fdOf()
		return f != nil && f.Truncated, f != nil
	})
	str("fd.sip.name", "domain name of the server IP (Options.IPNames)", func(c *evalCtx) (string, bool) {
		if c.rs.opts.IPNames == nil {
			return "", false
		}
		a, ok := ipEnd(srv)(c)
		if !ok {
			return "", false
		}
		return c.rs.opts.IPNames(a)
	})
	str("fd.cip.name", "domain name of the client IP (Options.IPNames)", func(c *evalCtx) (string, bool) {
		if c.rs.opts.IPNames == nil {
			return "", false
		}
		a, ok := ipEnd(cli)(c)
		if !ok {
			return "", false
		}
		return c.rs.opts.IPNames(a)
	})

	// ---- container / k8s ----
	str("container.id", "container id (host for host processes)", func(c *evalCtx) (string, bool) {
		k := c.container()
		if k == nil || k.ID == "" {
			return event.HostContainerID, true
		}
		return k.ID, true
	})
	containerStr("container.name", "container name", func(k *event.Container) string {
		if k.IsHost() {
			return event.HostContainerID
		}
		return k.Name
	})
	containerStr("container.image", "image as configured (repo:tag)", func(k *event.Container) string { return k.Image })
	containerStr("container.image.repository", "image repository", func(k *event.Container) string { return k.ImageRepo })
	containerStr("container.image.tag", "image tag", func(k *event.Container) string { return k.ImageTag })
	containerStr("container.image.digest", "image digest", func(k *event.Container) string { return k.ImageDigest })
	boolean("container.privileged", "privileged container", func(c *evalCtx) (bool, bool) {
		k := c.container()
		return k != nil && k.Privileged, k != nil && !k.IsHost()
	})
	num("container.start_ts", "container start time, ns", func(c *evalCtx) (int64, bool) {
		k := c.container()
		return kStart(k), kStart(k) != 0
	})
	labelField("container.label", "container label by key")
	k8sStr("k8s.ns.name", "Kubernetes namespace", func(k *event.Container) string { return k.Namespace })
	k8sStr("k8s.pod.name", "pod name", func(k *event.Container) string { return k.PodName })
	k8sStr("k8s.pod.uid", "pod uid", func(k *event.Container) string { return k.PodUID })
	labelField("k8s.pod.label", "pod label by key")
}

var typeChars = func() map[byte]string {
	m := map[byte]string{}
	for _, c := range []byte("?fd46upesltinb") {
		m[c] = string(c)
	}
	return m
}()

func pStart(p *event.Process) int64 {
	if p == nil {
		return 0
	}
	if p.StartTime != 0 {
		return p.StartTime
	}
	return p.ExecTime
}

func pCtime(p *event.Process) int64 {
	if p == nil {
		return 0
	}
	return p.ExeCtime
}

func pIno(p *event.Process) uint64 {
	if p == nil {
		return 0
	}
	return p.ExeIno
}

func kStart(k *event.Container) int64 {
	if k == nil {
		return 0
	}
	return k.StartTime
}
