// Package format renders events, with the process, fd and container
// records enrichment attached, for people (one text line per event) and for
// scripts (one JSON object per line keyed by Falco field names). Every
// string that comes from a process — comm, exe, argv, cwd, paths — is
// escaped as event.Escape does, in both formats; see AppendJSON for the
// JSON rules. The key set is a contract for scripts: keep it stable.
package format

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// arg is one evt.arg.* value.
type arg struct {
	key   string // without the "evt.arg." prefix
	bytes []byte
	str   string
	num   int64
	kind  uint8 // argBytes, argStr, argNum, argHex
}

const (
	argBytes = iota
	argStr
	argNum
	argHex
)

// args lists the syscall arguments not covered by a dedicated field, by
// Falco's argument names where it has them.
func args(e *event.Event, out *[8]arg) int {
	n := 0
	add := func(a arg) {
		if n < len(out) {
			out[n] = a
			n++
		}
	}
	path := func(k string, b []byte) { add(arg{key: k, bytes: b, kind: argBytes}) }
	num := func(k string, v int64) { add(arg{key: k, num: v, kind: argNum}) }
	hex := func(k string, v uint64) { add(arg{key: k, num: int64(v), kind: argHex}) }
	switch e.Kind {
	case event.KindExit:
		num("status", e.Ret)
		return n
	case event.KindFork:
		num("child_pid", int64(e.ChildPid))
		num("child_tid", int64(e.ChildTid))
		hex("flags", uint64(e.Flags))
		return n
	case event.KindExec:
		return n
	}
	switch e.Syscall {
	case event.SysOpen, event.SysOpenat, event.SysOpenat2, event.SysCreat:
		path("name", e.Path)
		hex("flags", uint64(e.Flags))
		num("mode", int64(e.Mode))
		if e.Syscall != event.SysOpen {
			num("dirfd", int64(e.Fd))
		}
	case event.SysExecve, event.SysExecveat:
		path("filename", e.Path)
	case event.SysSocket:
		num("domain", int64(e.Family))
		num("type", int64(e.SockType))
		num("proto", int64(e.Mode))
	case event.SysListen:
		num("backlog", int64(e.Mode))
	case event.SysDup, event.SysDup2, event.SysDup3:
		num("oldfd", int64(e.Fd))
		if e.Syscall != event.SysDup {
			num("newfd", int64(e.Fd2))
		}
		if e.Syscall == event.SysDup3 {
			hex("flags", uint64(e.Flags))
		}
	case event.SysMkdir, event.SysMkdirat:
		path("path", e.Path)
		num("mode", int64(e.Mode))
	case event.SysUnlink, event.SysUnlinkat:
		path("name", e.Path)
	case event.SysRename, event.SysRenameat, event.SysRenameat2, event.SysLink, event.SysLinkat:
		path("oldpath", e.Path)
		path("newpath", e.Path2)
	case event.SysSymlink, event.SysSymlinkat:
		path("target", e.Path)
		path("linkpath", e.Path2)
	case event.SysChmod, event.SysFchmodat, event.SysFchmodat2:
		path("filename", e.Path)
		num("mode", int64(e.Mode))
	case event.SysFchmod:
		num("mode", int64(e.Mode))
	case event.SysMount:
		path("dev", e.Path)
		path("dir", e.Path2)
		hex("flags", uint64(e.Flags))
	case event.SysUmount2:
		path("name", e.Path)
	case event.SysPtrace:
		num("request", int64(e.Flags))
		num("pid", int64(e.Arg3))
	case event.SysSetuid:
		num("uid", int64(e.Mode))
	case event.SysSetgid:
		num("gid", int64(e.Mode))
	case event.SysSetresuid:
		num("ruid", int64(int32(e.Raw[0])))
		num("euid", int64(int32(e.Raw[1])))
		num("suid", int64(int32(e.Raw[2])))
	case event.SysSetresgid:
		num("rgid", int64(int32(e.Raw[0])))
		num("egid", int64(int32(e.Raw[1])))
		num("sgid", int64(int32(e.Raw[2])))
	case event.SysCapset:
		hex("cap_effective", e.Arg3)
	case event.SysUnshare:
		hex("flags", uint64(e.Flags))
	case event.SysSetns:
		num("fd", int64(e.Fd))
		hex("nstype", e.Arg3)
	case event.SysMemfdCreate:
		path("name", e.Path)
		hex("flags", uint64(e.Flags))
	case event.SysInitModule, event.SysFinitModule:
		if len(e.Path) > 0 {
			path("name", e.Path)
		}
	default:
		if len(e.Path) > 0 {
			path("path", e.Path)
		}
		if len(e.Path2) > 0 {
			path("path2", e.Path2)
		}
	}
	return n
}

// endpoints returns the client and server ends of an inet socket fd.
func endpoints(fd *event.FD) (client, server netip.AddrPort, ok bool) {
	if fd == nil || (fd.Type != event.FDIPv4 && fd.Type != event.FDIPv6) {
		return client, server, false
	}
	if fd.Server || (fd.Listening && !fd.Remote.IsValid()) {
		return fd.Remote, fd.Local, true
	}
	if !fd.Remote.IsValid() {
		// Bound, not connected: the local end is a server end.
		return netip.AddrPort{}, fd.Local, true
	}
	return fd.Local, fd.Remote, true
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

type jw struct {
	b     []byte
	first bool
}

func (w *jw) key(k string) {
	if w.first {
		w.first = false
	} else {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) key2(prefix, k string) {
	w.b = append(w.b, ',', '"')
	w.b = append(w.b, prefix...)
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) num(k string, v int64) {
	w.key(k)
	w.b = appendInt(w.b, v)
}

func (w *jw) unum(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jw) str(k string, s string) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = appendEsc(w.b, s, true)
	w.b = append(w.b, '"')
}

func (w *jw) bytes(k string, s []byte) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = appendEsc(w.b, s, true)
	w.b = append(w.b, '"')
}

// procName returns proc.name: the record's comm, or the event's.
func procName(e *event.Event, p *event.Process) string {
	if p != nil && p.Comm != "" {
		return p.Comm
	}
	return e.CommString()
}

// AppendJSON appends one JSON object (no newline) for the event. Keys are
// Falco field names: evt.num, evt.type, evt.time (ns since epoch), evt.res
// ("SUCCESS" or the errno name) and evt.rawres (the number), proc.pid,
// proc.ppid, thread.tid, proc.name, proc.exepath, proc.cmdline, proc.cwd,
// proc.pname, user.uid, user.loginuid, fd.num, fd.name, fd.type, evt.arg.flags,
// fd.l4proto, fd.cip, fd.cport, fd.sip, fd.sport, evt.arg.* for other
// arguments, container.id and cgroup.id (driftwatch's own; the cgroup v2
// inode), plus container.name/container.image when known. Keys that do
// not apply to the event (fd.* without an fd, network fields for non-inet
// fds) are omitted.
//
// Strings from processes are written in their event.Escape form, JSON
// encoded: a decoder gets e.g. the four characters \x80 for an invalid
// byte 0x80 and \n for a newline, never U+FFFD or a raw control character.
func AppendJSON(b []byte, e *event.Event, proc *event.Process, fd *event.FD, c *event.Container) []byte {
	w := jw{b: append(b, '{'), first: true}
	w.unum("evt.num", e.Num)
	w.str("evt.type", e.Type())
	w.num("evt.time", e.Time)
	if e.Kind == event.KindSyscall || e.Kind == event.KindExec {
		w.key("evt.res")
		w.b = append(w.b, '"')
		w.b = appendRes(w.b, e.Ret)
		w.b = append(w.b, '"')
		w.num("evt.rawres", e.Ret)
	}
	w.unum("proc.pid", uint64(e.Pid))
	ppid := e.Ppid
	if proc != nil && proc.Ppid != 0 {
		ppid = proc.Ppid
	}
	w.unum("proc.ppid", uint64(ppid))
	w.unum("thread.tid", uint64(e.Tid))
	w.str("proc.name", procName(e, proc))
	if proc != nil {
		w.str("proc.exepath", proc.Exe)
		w.key("proc.cmdline")
		w.b = append(w.b, '"')
		w.b = appendCmdline(w.b, procName(e, proc), proc.Args, true)
		w.b = append(w.b, '"')
		w.str("proc.cwd", proc.Cwd)
		if proc.Parent != nil {
			w.str("proc.pname", proc.Parent.Comm)
		}
	} else if e.Kind == event.KindExec || len(e.Exe) > 0 {
		w.bytes("proc.exepath", e.Exe)
		w.bytes("proc.cwd", e.Cwd)
	}
	w.unum("user.uid", uint64(e.Uid))
	// Signed, as Falco and the rules print it: unset (4294967295) is -1.
	w.num("user.loginuid", int64(int32(e.LoginUID)))
	var av [8]arg
	na := args(e, &av)
	if fd != nil {
		w.num("fd.num", int64(fd.Num))
		w.str("fd.name", fd.Name)
		if t := fd.Type.String(); t != "" {
			w.str("fd.type", t)
		}
		if cl, sv, ok := endpoints(fd); ok {
			if p := event.ProtoName(fd.Proto); p != "" {
				w.str("fd.l4proto", p)
			}
			if cl.IsValid() {
				w.key("fd.cip")
				w.b = append(w.b, '"')
				w.b = cl.Addr().WithZone("").AppendTo(w.b)
				w.b = append(w.b, '"')
				w.unum("fd.cport", uint64(cl.Port()))
			}
			if sv.IsValid() {
				w.key("fd.sip")
				w.b = append(w.b, '"')
				w.b = sv.Addr().WithZone("").AppendTo(w.b)
				w.b = append(w.b, '"')
				w.unum("fd.sport", uint64(sv.Port()))
			}
		}
	}
	for i := 0; i < na; i++ {
		a := &av[i]
		w.key2("evt.arg.", a.key)
		switch a.kind {
		case argBytes:
			w.b = append(w.b, '"')
			w.b = appendEsc(w.b, a.bytes, true)
			w.b = append(w.b, '"')
		case argStr:
			w.b = append(w.b, '"')
			w.b = appendEsc(w.b, a.str, true)
			w.b = append(w.b, '"')
		case argNum, argHex:
			w.b = appendInt(w.b, a.num)
		}
	}
	id := event.HostContainerID
	if c != nil && c.ID != "" {
		id = c.ID
	}
	w.str("container.id", id)
	if c != nil && !c.IsHost() {
		if c.Name != "" {
			w.str("container.name", c.Name)
		}
		if c.Image != "" {
			w.str("container.image", c.Image)
		}
	}
	w.unum("cgroup.id", e.CgroupID)
	return append(w.b, '}')
}

// appendCmdline writes Falco's proc.cmdline: the name followed by argv[1:],
// space separated, each escaped.
func appendCmdline(b []byte, name string, argv []string, json bool) []byte {
	b = appendEsc(b, name, json)
	for i := 1; i < len(argv); i++ {
		b = append(b, ' ')
		b = appendEsc(b, argv[i], json)
	}
	return b
}

// FormatJSON returns AppendJSON(nil, …).
func FormatJSON(e *event.Event, proc *event.Process, fd *event.FD, c *event.Container) []byte {
	return AppendJSON(nil, e, proc, fd, c)
}

// AppendText appends one human-readable line (no newline): time (UTC,
// RFC 3339 with ns), evt.type, result, process, fd and arguments, container.
func AppendText(b []byte, e *event.Event, proc *event.Process, fd *event.FD, c *event.Container) []byte {
	b = time.Unix(0, e.Time).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, e.Type()...)
	if e.Kind == event.KindSyscall || e.Kind == event.KindExec {
		b = append(b, " res="...)
		if e.Ret > 0 {
			b = appendInt(b, e.Ret)
		} else {
			b = appendRes(b, e.Ret)
		}
	}
	b = append(b, " pid="...)
	b = appendInt(b, int64(e.Pid))
	if e.Tid != e.Pid {
		b = append(b, " tid="...)
		b = appendInt(b, int64(e.Tid))
	}
	b = append(b, " ppid="...)
	ppid := e.Ppid
	if proc != nil && proc.Ppid != 0 {
		ppid = proc.Ppid
	}
	b = appendInt(b, int64(ppid))
	b = append(b, " uid="...)
	b = appendInt(b, int64(e.Uid))
	b = append(b, " proc="...)
	b = appendEsc(b, procName(e, proc), false)
	if proc != nil && proc.Exe != "" {
		b = append(b, " exe="...)
		b = appendEsc(b, proc.Exe, false)
	}
	if e.Kind == event.KindExec && proc != nil {
		b = append(b, " cmdline=\""...)
		b = appendCmdline(b, procName(e, proc), proc.Args, false)
		b = append(b, '"')
		b = append(b, " cwd="...)
		b = appendEsc(b, proc.Cwd, false)
	}
	if fd != nil {
		b = append(b, " fd="...)
		b = appendInt(b, int64(fd.Num))
		if fd.Type != event.FDUnknown {
			b = append(b, '(')
			b = append(b, fd.Type.String()...)
			b = append(b, ')')
		}
		if fd.Name != "" {
			b = append(b, " name="...)
			b = appendEsc(b, fd.Name, false)
		}
	}
	var av [8]arg
	na := args(e, &av)
	for i := 0; i < na; i++ {
		a := &av[i]
		if a.kind == argBytes && fd != nil && fd.Name != "" && (string(a.bytes) == fd.Name) {
			continue // the path is already shown as the fd's name
		}
		b = append(b, ' ')
		b = append(b, a.key...)
		b = append(b, '=')
		switch a.kind {
		case argBytes:
			b = appendEsc(b, a.bytes, false)
		case argStr:
			b = appendEsc(b, a.str, false)
		case argNum:
			b = appendInt(b, a.num)
		case argHex:
			b = append(b, "0x"...)
			b = strconv.AppendUint(b, uint64(a.num), 16)
		}
	}
	b = append(b, " container="...)
	if c != nil && c.ID != "" {
		b = appendEsc(b, c.ID, false)
	} else {
		b = append(b, event.HostContainerID...)
	}
	return b
}
