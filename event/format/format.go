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
	num   int64
	kind  uint8 // argBytes, argNum, argHex, argOct
}

const (
	argBytes = iota
	argNum
	argHex
	argOct
)

// args lists the event's arguments from its row of the syscall table
// (event.Spec), by Falco's names and in its order, leaving out what has
// a dedicated field: the result, the descriptor shown as fd.num, and
// values kept in the process or fd records. Empty paths are left out.
func args(e *event.Event, out *[8]arg) int {
	sp := e.Spec()
	if sp == nil {
		return 0
	}
	n := 0
	for i := range sp.Args {
		a := &sp.Args[i]
		if n == len(out) {
			break
		}
		if a.Type == event.ArgErrno || a.EvtFD || a.From == event.SlotNone {
			continue
		}
		if b := e.SlotBytes(a.From); b != nil || a.Type == event.ArgPath {
			if len(b) == 0 {
				continue
			}
			out[n] = arg{key: a.Name, bytes: b, kind: argBytes}
			n++
			continue
		}
		k := uint8(argNum)
		switch a.Print {
		case event.Hex:
			k = argHex
		case event.Oct:
			k = argOct
		}
		out[n] = arg{key: a.Name, num: e.SlotInt(a.From), kind: k}
		n++
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
	w.b = event.AppendEscape(w.b, s, true)
	w.b = append(w.b, '"')
}

func (w *jw) bytes(k string, s []byte) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = event.AppendEscape(w.b, s, true)
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
			w.b = event.AppendEscape(w.b, a.bytes, true)
			w.b = append(w.b, '"')
		case argNum, argHex, argOct:
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
	b = event.AppendEscape(b, name, json)
	for i := 1; i < len(argv); i++ {
		b = append(b, ' ')
		b = event.AppendEscape(b, argv[i], json)
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
	b = event.AppendEscape(b, procName(e, proc), false)
	if proc != nil && proc.Exe != "" {
		b = append(b, " exe="...)
		b = event.AppendEscape(b, proc.Exe, false)
	}
	if e.Kind == event.KindExec && proc != nil {
		b = append(b, " cmdline=\""...)
		b = appendCmdline(b, procName(e, proc), proc.Args, false)
		b = append(b, '"')
		b = append(b, " cwd="...)
		b = event.AppendEscape(b, proc.Cwd, false)
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
			b = event.AppendEscape(b, fd.Name, false)
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
			b = event.AppendEscape(b, a.bytes, false)
		case argNum:
			b = appendInt(b, a.num)
		case argHex:
			b = append(b, "0x"...)
			b = strconv.AppendUint(b, uint64(a.num), 16)
		case argOct:
			b = append(b, '0')
			b = strconv.AppendUint(b, uint64(a.num), 8)
		}
	}
	b = append(b, " container="...)
	if c != nil && c.ID != "" {
		b = event.AppendEscape(b, c.ID, false)
	} else {
		b = append(b, event.HostContainerID...)
	}
	return b
}
