package rules

import (
	"strconv"

	"github.com/driftwatch/driftwatch/event"
)

// argNames are the evt.arg.NAME names driftwatch can provide: every
// argument name of the syscall table (event.Specs and the lifecycle rows)
// plus the aliases argAlias answers for any event. Their values follow
// the Falco exit-event parameter of the same name for each syscall.
var argNames = func() []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range aliasNames {
		add(n)
	}
	for _, sp := range event.Specs() {
		for _, a := range sp.Args {
			add(a.Name)
		}
	}
	for _, k := range []event.Kind{event.KindExec, event.KindFork, event.KindExit} {
		e := event.Event{Kind: k}
		for _, a := range e.Spec().Args {
			add(a.Name)
		}
	}
	return out
}()

// aliasNames are the names argAlias answers whatever the syscall's row
// says: Falco rules use several names for the same path or number.
var aliasNames = []string{
	"flags", "request", "domain", "type", "proto", "target", "linkpath", "oldpath", "newpath",
	"name", "path", "filename", "pathname", "fd", "dirfd", "oldfd", "newfd", "mode", "uid", "gid",
	"pid", "res", "dev", "dir", "source", "exe", "args", "cwd", "tuple", "addr", "cap", "nstype", "backlog", "cmd",
}

// exitArg returns the n-th argument of the event's exit parameters
// (evt.arg[N]): the table row's arguments that are not enter-only; a
// syscall without a row has just res.
func exitArg(e *event.Event, n int) (string, bool) {
	if e == nil {
		return "", false
	}
	sp := e.Spec()
	if sp == nil {
		if n == 0 {
			return "res", true
		}
		return "", false
	}
	for i := range sp.Args {
		if sp.Args[i].Enter {
			continue
		}
		if n == 0 {
			return sp.Args[i].Name, true
		}
		n--
	}
	return "", false
}

// bpfCmd renders a bpf(2) command by name (BPF_PROG_LOAD), or its number
// when the name is unknown.
func bpfCmd(c *evalCtx, cmd int64) string {
	if cmd >= 0 && cmd < int64(len(bpfCmdNames)) {
		return bpfCmdNames[cmd]
	}
	return c.storeInt(cmd)
}

func isExecEvent(e *event.Event) bool {
	return e.Kind == event.KindExec || e.Kind == event.KindSyscall && (e.Syscall == event.SysExecve || e.Syscall == event.SysExecveat)
}

// argValue renders the named argument of the event, or reports it
// missing: by the event's row of the syscall table when the row has the
// name, else by argAlias.
func argValue(c *evalCtx, name string) (string, bool) {
	e := c.e.Event
	if e == nil {
		return "", false
	}
	if a := e.Spec().ArgByName(name); a != nil {
		return tableArg(c, e, a)
	}
	return argAlias(c, name)
}

// tableArg renders argument a of the event by its type.
func tableArg(c *evalCtx, e *event.Event, a *event.Arg) (string, bool) {
	switch a.Type {
	case event.ArgExe, event.ArgArgs, event.ArgTuple:
		return argAlias(c, a.Name)
	case event.ArgPath:
		b := e.SlotBytes(a.From)
		if len(b) == 0 {
			return argAlias(c, a.Name)
		}
		return bstr(b), true
	case event.ArgOpenFlags:
		if s, ok := c.cached(cacheFlags); ok {
			return s, true
		}
		return c.store(cacheFlags, appendOpenFlags(c.bufs[cacheFlags][:0], uint32(e.SlotInt(a.From)))), true
	case event.ArgChmodMode:
		c.valid &^= 1 << cacheReq
		return c.store(cacheReq, appendModeNames(c.bufs[cacheReq][:0], uint32(e.SlotInt(a.From)))), true
	case event.ArgPtraceReq:
		s, ok := ptraceRequests[uint32(e.SlotInt(a.From))]
		return s, ok
	case event.ArgBpfCmd:
		return bpfCmd(c, e.SlotInt(a.From)), true
	case event.ArgFamily:
		s, ok := familyNames[uint64(e.SlotInt(a.From))]
		return s, ok
	}
	if a.From == event.SlotNone {
		return argAlias(c, a.Name)
	}
	return c.storeInt(e.SlotInt(a.From)), true
}

// argAlias answers names a syscall's row does not have, as driftwatch did
// before the table: every path name reads Path or Path2, every fd name
// Fd, and so on. It also renders the values kept in the process and fd
// records (exe, args, cwd, tuple).
func argAlias(c *evalCtx, name string) (string, bool) {
	e := c.e.Event
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
		return c.storeInt(int64(e.Fd)), true
	case "mode", "uid", "gid", "proto", "backlog":
		if e.Kind != event.KindSyscall {
			return "", false
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
		return bpfCmd(c, int64(int32(e.Raw[0]))), true
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

// appendEvtArgs renders evt.args: name=value pairs in Falco's order
// (exitArg), leaving out arguments without a value.
func appendEvtArgs(c *evalCtx, b []byte) []byte {
	for i := 0; ; i++ {
		n, ok := exitArg(c.e.Event, i)
		if !ok {
			return b
		}
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
