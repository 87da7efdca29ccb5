package rules

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"github.com/driftwatch/driftwatch/event"
)

// unavailableFields are Falco fields driftwatch knows but cannot provide
// from what its sensor reports, with the reason. A rule whose condition
// uses one loads with a warning naming the field and is reported as
// skipped (as Falco's skip-if-unknown-filter does); in an output such a
// field renders <NA> after a warning.
var unavailableFields = map[string]string{
	"evt.buffer":         "the sensor does not capture read/write data buffers",
	"proc.vpgid.name":    "the process table does not index process-group leaders",
	"proc.vpgid.exe":     "the process table does not index process-group leaders",
	"proc.vpgid.exepath": "the process table does not index process-group leaders",
}

// reportedTypes are the event types driftwatch reports (the rows of the
// syscall table marked Reported, plus procexit): a rule that can only
// match other event types cannot fire and is reported as skipped.
var reportedTypes = func() typeSet {
	var s typeSet
	for _, sp := range event.Specs() {
		if sp.Reported {
			s.add(int(sp.Nr))
		}
	}
	s.add(idProcexit)
	return s
}()

// bpf(2) syscall number (x86_64) and command names (linux/bpf.h).
const sysBpf = event.SysBpf

var bpfCmdNames = []string{
	"BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
	"BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH",
	"BPF_PROG_DETACH", "BPF_PROG_TEST_RUN", "BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID",
	"BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID", "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY",
	"BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID", "BPF_TASK_FD_QUERY",
	"BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID", "BPF_MAP_LOOKUP_BATCH",
	"BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH", "BPF_LINK_CREATE",
	"BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID", "BPF_ENABLE_STATS",
	"BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP", "BPF_TOKEN_CREATE",
}

// maxEnviron bounds the environment ProcEnviron reads per process.
const maxEnviron = 32 << 10

// ProcEnviron returns an Options.Environ (the fallback for processes
// whose exec the sensor did not see) that reads a live process's
// environment from procRoot/<pid>/environ (at most 32 KiB, NUL-separated
// as the kernel keeps it). It reads the environment at evaluation time:
// for an exec event, that of the new program, if the process still runs.
// Use it only where events are evaluated live: in a replay the pid names
// another process or none.
func ProcEnviron(procRoot string) func(p *event.Process) ([]byte, bool) {
	return func(p *event.Process) ([]byte, bool) {
		if p == nil || p.Pid == 0 || p.ExitTime != 0 {
			return nil, false
		}
		f, err := os.Open(procRoot + "/" + strconv.FormatUint(uint64(p.Pid), 10) + "/environ")
		if err != nil {
			return nil, false
		}
		defer f.Close()
		buf := make([]byte, maxEnviron)
		n, _ := f.Read(buf)
		for n < len(buf) {
			m, err := f.Read(buf[n:])
			n += m
			if err != nil || m == 0 {
				break
			}
		}
		return buf[:n], n > 0
	}
}

// environ returns the process's environment (NUL-separated), cached for
// the event.
func (c *evalCtx) environ() ([]byte, bool) {
	if _, ok := c.cached(cacheEnv); ok {
		return c.bufs[cacheEnv], len(c.bufs[cacheEnv]) > 0
	}
	var env []byte
	if p := c.proc(); p != nil && p.EnvKnown {
		// captured by the sensor at the exec
		c.store(cacheEnv, append(c.bufs[cacheEnv][:0], p.Env...))
		return c.bufs[cacheEnv], true
	} else if f := c.rs.opts.Environ; f != nil {
		if e, ok := f(c.proc()); ok {
			env = e
		}
	}
	c.store(cacheEnv, append(c.bufs[cacheEnv][:0], env...))
	return c.bufs[cacheEnv], len(env) > 0
}

// isNSLeader reports whether p is the first process of its pid namespace
// (its parent lives in another one): its pid inside the namespace is 1.
func isNSLeader(p *event.Process) bool {
	return p != nil && p.Parent != nil && p.PidNS != 0 && p.Parent.PidNS != 0 && p.PidNS != p.Parent.PidNS
}

func inHostPidNS(p *event.Process) bool {
	return p != nil && (p.Container == nil || p.Container.ID == "" || p.Container.ID == event.HostContainerID)
}

func init() {
	num("proc.vpid", "pid inside the process's pid namespace (sensor, at exec or fork; the start-up snapshot for older processes)", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		if p == nil || !p.NSKnown {
			return 0, false
		}
		return int64(p.VPid), true
	})
	num("thread.vtid", "thread id inside the pid namespace (sensor: the main thread's is proc.vpid, other threads' from their creation)", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		if p == nil || !p.NSKnown {
			return 0, false
		}
		if e := c.e.Event; e != nil && e.Kind == event.KindExec && e.VTid != 0 {
			return int64(e.VTid), true
		}
		if c.e.Tid == 0 || c.e.Tid == p.Pid {
			return int64(p.VPid), true
		}
		v, ok := p.VTids[c.e.Tid]
		return int64(v), ok
	})
	num("proc.vpgid", "process group id inside the pid namespace (sensor, at exec or fork; 0 when the group is outside the namespace)", func(c *evalCtx) (int64, bool) {
		p := c.proc()
		if p == nil || !p.NSKnown {
			return 0, false
		}
		return int64(p.VPgid), true
	})
	boolean("proc.is_vpgid_leader", "the process leads its process group (proc.vpid = proc.vpgid)", func(c *evalCtx) (bool, bool) {
		p := c.proc()
		if p == nil || !p.NSKnown {
			return false, false
		}
		return p.VPid == p.VPgid, true
	})
	str("thread.cap_permitted", "permitted capabilities (sensor, at exec or fork)", func(c *evalCtx) (string, bool) {
		p := c.proc()
		if p == nil || !p.NSKnown {
			return "", false
		}
		if s, ok := c.cached(cacheCapPrm); ok {
			return s, true
		}
		return c.store(cacheCapPrm, appendCaps(c.bufs[cacheCapPrm][:0], p.CapPrm)), true
	})
	str("thread.cap_inheritable", "inheritable capabilities (sensor, at exec or fork)", func(c *evalCtx) (string, bool) {
		p := c.proc()
		if p == nil || !p.NSKnown {
			return "", false
		}
		if s, ok := c.cached(cacheCapInh); ok {
			return s, true
		}
		return c.store(cacheCapInh, appendCaps(c.bufs[cacheCapInh][:0], p.CapInh)), true
	})
	str("fd.sockfamily", "socket family of the fd: ip or unix", func(c *evalCtx) (string, bool) {
		fam := uint16(0)
		if f := c.fdOf(); f != nil && f.Type.IsSocket() {
			fam = f.Family
			if fam == 0 {
				switch f.Type {
				case event.FDIPv4, event.FDIPv6:
					fam = event.AFInet
				case event.FDUnix:
					fam = event.AFUnix
				}
			}
		} else if e := c.e.Event; e != nil && e.Kind == event.KindSyscall && e.Syscall == event.SysSocket {
			fam = e.Family
			if fam == 0 {
				fam = uint16(e.Raw[0])
			}
		}
		switch fam {
		case event.AFInet, event.AFInet6:
			return "ip", true
		case event.AFUnix:
			return "unix", true
		}
		return "", false
	})
	for _, end := range []struct {
		name string
		f    func(f *event.FD) netip.AddrPort
	}{{"fd.rip.name", rem}, {"fd.lip.name", loc}} {
		get := ipEnd(end.f)
		str(end.name, "domain name of the "+end.name[3:6]+" address (Options.IPNames: names seen in DNS answers), <NA> when unknown", func(c *evalCtx) (string, bool) {
			if c.rs.opts.IPNames == nil {
				return "", false
			}
			a, ok := get(c)
			if !ok {
				return "", false
			}
			return c.rs.opts.IPNames(a)
		})
	}
	boolean("evt.is_open_exec", "open-family event that created a file with an execute permission bit", func(c *evalCtx) (bool, bool) {
		e := c.e.Event
		mode, _ := e.FileMode()
		return isOpen(e) && e.Flags&oCreat != 0 && mode&0o111 != 0, true
	})
	fieldTable["proc.env"] = &fieldDef{typ: tString, argMode: 1,
		desc: "environment of the process, captured by the sensor at its exec (at most 4 KiB); for processes that predate the capture, Options.Environ (the agent: /proc/<pid>/environ when evaluated live, at most 32 KiB; <NA> in replays); proc.env[NAME] is one variable's value",
		make: func(arg string, hasArg bool) (getter, bool, error) {
			if !hasArg {
				return func(c *evalCtx, _ int) (value, bool) {
					env, ok := c.environ()
					if !ok {
						return value{}, false
					}
					// Falco renders the environment space-separated.
					b := append(c.bufs[cacheEnvText][:0], env...)
					b = bytes.TrimRight(b, "\x00")
					for i := range b {
						if b[i] == 0 {
							b[i] = ' '
						}
					}
					return value{s: c.store(cacheEnvText, b)}, true
				}, false, nil
			}
			if arg == "" {
				return nil, false, fmt.Errorf("proc.env[]: empty variable name")
			}
			key := []byte(arg + "=")
			return func(c *evalCtx, _ int) (value, bool) {
				env, ok := c.environ()
				if !ok {
					return value{}, false
				}
				for _, kv := range bytes.Split(env, []byte{0}) {
					if bytes.HasPrefix(kv, key) {
						return value{s: bstr(kv[len(key):])}, true
					}
				}
				return value{}, false
			}, false, nil
		}}
}
