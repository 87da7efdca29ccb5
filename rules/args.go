package rules

import (
	"strconv"

	"github.com/driftwatch/driftwatch/event"
)

// argNames are the evt.arg.NAME names driftwatch can provide. Their values
// follow the Falco exit-event parameter of the same name for each syscall.
var argNames = []string{
	"flags", "request", "domain", "type", "proto", "target", "linkpath", "oldpath", "newpath",
	"name", "path", "filename", "pathname", "fd", "dirfd", "oldfd", "newfd", "mode", "uid", "gid",
	"pid", "res", "dev", "dir", "source", "exe", "args", "cwd", "tuple", "addr", "cap", "nstype", "backlog", "cmd",
}

// argOrder returns Falco's positional parameter names for evt.arg[N].
func argOrder(e *event.Event) []string {
	if e == nil {
		return nil
	}
	switch e.Kind {
	case event.KindExec:
		return []string{"res", "exe", "args", "tid", "pid", "ptid", "cwd"}
	case event.KindFork:
		return []string{"res", "exe", "args"}
	case event.KindExit:
		return []string{"status"}
	}
	switch e.Syscall {
	case event.SysOpen, event.SysCreat:
		return []string{"fd", "name", "flags", "mode"}
	case event.SysOpenat, event.SysOpenat2:
		return []string{"fd", "dirfd", "name", "flags", "mode"}
	case event.SysConnect:
		return []string{"res", "tuple", "fd"}
	case event.SysAccept, event.SysAccept4:
		return []string{"fd", "tuple"}
	case event.SysSocket:
		return []string{"fd", "domain", "type", "proto"}
	case event.SysPtrace:
		return []string{"res", "request", "pid"}
	case event.SysSymlink, event.SysSymlinkat:
		return []string{"res", "target", "linkpath"}
	case event.SysLink, event.SysLinkat, event.SysRename, event.SysRenameat, event.SysRenameat2:
		return []string{"res", "oldpath", "newpath"}
	case event.SysDup, event.SysDup2, event.SysDup3:
		return []string{"res", "oldfd", "newfd", "flags"}
	case event.SysMount:
		return []string{"res", "dev", "dir", "type", "flags"}
	case event.SysSetuid:
		return []string{"res", "uid"}
	case event.SysSetgid:
		return []string{"res", "gid"}
	case event.SysUnlink, event.SysUnlinkat, event.SysMkdir, event.SysMkdirat:
		return []string{"res", "path"}
	case event.SysChmod, event.SysFchmodat:
		return []string{"res", "filename", "mode"}
	case event.SysExecve, event.SysExecveat:
		return []string{"res", "exe", "args"}
	}
	return []string{"res"}
}

func isExecEvent(e *event.Event) bool {
	return e.Kind == event.KindExec || e.Kind == event.KindSyscall && (e.Syscall == event.SysExecve || e.Syscall == event.SysExecveat)
}

// argValue renders the named argument of the event, or reports it missing.
func argValue(c *evalCtx, name string) (string, bool) {
	e := c.e.Event
	if e == nil {
		return "", false
	}
	sc := e.Syscall
	switch name {
	case "res":
		return c.storeInt(e.Ret), true
	case "flags":
		if s, ok := c.cached(cacheFlags); ok {
			return s, true
		}
		b := c.bufs[cacheFlags][:0]
		switch {
		case isOpen(e):
			b = appendOpenFlags(b, e.Flags)
		case isExecEvent(e):
			b = appendExeFlags(b, c)
		default:
			b = strconv.AppendUint(b, uint64(e.Flags), 10)
		}
		return c.store(cacheFlags, b), true
	case "request":
		if sc != event.SysPtrace || e.Kind != event.KindSyscall {
			return "", false
		}
		if s, ok := ptraceRequests[e.Flags]; ok {
			return s, true
		}
		return "", false
	case "domain":
		if sc != event.SysSocket || e.Kind != event.KindSyscall {
			return "", false
		}
		fam := uint64(e.Family)
		if fam == 0 {
			fam = e.Raw[0]
		}
		s, ok := familyNames[fam]
		return s, ok
	case "target", "oldpath", "name", "path", "filename", "pathname", "dev", "source":
		if e.Kind != event.KindSyscall || len(e.Path) == 0 {
			if isExecEvent(e) && name == "filename" {
				return procExepath(c.proc())
			}
			return "", false
		}
		return bstr(e.Path), true
	case "linkpath", "newpath", "dir":
		if e.Kind != event.KindSyscall || len(e.Path2) == 0 {
			return "", false
		}
		return bstr(e.Path2), true
	case "fd", "oldfd", "dirfd":
		if e.Kind != event.KindSyscall {
			return "", false
		}
		v := int64(e.Fd)
		if name == "fd" && (isOpen(e) || sc == event.SysSocket || sc == event.SysAccept || sc == event.SysAccept4) {
			v = e.Ret
		}
		return c.storeInt(v), true
	case "newfd":
		if e.Kind != event.KindSyscall || sc != event.SysDup2 && sc != event.SysDup3 && sc != event.SysDup {
			return "", false
		}
		if sc == event.SysDup {
			return c.storeInt(e.Ret), true
		}
		return c.storeInt(int64(e.Fd2)), true
	case "mode", "uid", "gid", "proto", "backlog":
		if e.Kind != event.KindSyscall {
			return "", false
		}
		if name == "mode" && isChmod(e) {
			c.valid &^= 1 << cacheReq
			return c.store(cacheReq, appendModeNames(c.bufs[cacheReq][:0], e.Mode)), true
		}
		return c.storeInt(int64(e.Mode)), true
	case "type":
		if e.Kind != event.KindSyscall {
			return "", false
		}
		return c.storeInt(int64(e.Flags)), true
	case "pid", "cap", "nstype":
		if e.Kind != event.KindSyscall {
			return "", false
		}
		return c.storeInt(int64(e.Arg3)), true
	case "cmd":
		// bpf(2): the command, by name (BPF_PROG_LOAD) when known.
		if e.Kind != event.KindSyscall || sc != sysBpf {
			return "", false
		}
		if e.Raw[0] < uint64(len(bpfCmdNames)) {
			return bpfCmdNames[e.Raw[0]], true
		}
		return c.storeInt(int64(e.Raw[0])), true
	case "exe":
		return procExe(c.proc())
	case "args":
		return c.args(c.proc(), cacheArgs)
	case "cwd":
		p := c.proc()
		if p == nil || p.Cwd == "" {
			return "", false
		}
		return p.Cwd, true
	case "tuple", "addr":
		f := c.fdOf()
		if !isIPFD(f) {
			return "", false
		}
		return c.fdName()
	}
	return "", false
}

// storeInt renders n in the shared numeric scratch slot.
func (c *evalCtx) storeInt(n int64) string {
	c.valid &^= 1 << cacheReq
	return c.store(cacheReq, strconv.AppendInt(c.bufs[cacheReq][:0], n, 10))
}

// appendExeFlags renders execve's exe flags as Falco does.
func appendExeFlags(b []byte, c *evalCtx) []byte {
	e := c.e.Event
	p := c.proc()
	upper := e.Flags2&event.FlagExeUpperLayer != 0 || p != nil && p.ExeUpperLayer
	memfd := e.Flags2&event.FlagExeMemfd != 0 || p != nil && p.ExeMemfd
	n := len(b)
	add := func(s string) {
		if len(b) > n {
			b = append(b, '|')
		}
		b = append(b, s...)
	}
	if memfd {
		add("EXE_FROM_MEMFD")
	}
	if e.Flags2&event.FlagExeUnknown == 0 {
		if upper {
			add("EXE_UPPER_LAYER")
		} else {
			add("EXE_LOWER_LAYER")
		}
	}
	if len(b) == n {
		b = append(b, '0')
	}
	return b
}

// appendEvtArgs renders evt.args: name=value pairs in Falco's order.
func appendEvtArgs(c *evalCtx, b []byte) []byte {
	for i, n := range argOrder(c.e.Event) {
		v, ok := argValue(c, n)
		if !ok {
			continue
		}
		if i > 0 && len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, n...)
		b = append(b, '=')
		b = append(b, v...)
	}
	return b
}

func isChmod(e *event.Event) bool {
	switch e.Syscall {
	case event.SysChmod, event.SysFchmod, event.SysFchmodat, event.SysFchmodat2:
		return true
	}
	return false
}

var modeNames = [...]string{"S_IXOTH", "S_IWOTH", "S_IROTH", "S_IXGRP", "S_IWGRP", "S_IRGRP",
	"S_IXUSR", "S_IWUSR", "S_IRUSR", "S_ISVTX", "S_ISGID", "S_ISUID"}

// appendModeNames renders a chmod mode as Falco does (S_IRUSR|S_ISUID ...).
func appendModeNames(b []byte, mode uint32) []byte {
	n := len(b)
	for i, name := range modeNames {
		if mode&(1<<uint(i)) != 0 {
			if len(b) > n {
				b = append(b, '|')
			}
			b = append(b, name...)
		}
	}
	if len(b) == n {
		b = append(b, '0')
	}
	return b
}
