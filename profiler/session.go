package profiler

import (
	"strings"

	"github.com/driftwatch/driftwatch/event"
)

// ExecSuffix ends the profile key of an image's exec sessions: processes
// a container runtime started in a running container (kubelet exec
// probes, kubectl exec, runc exec) rather than the container's entrypoint
// and its descendants. "repo@sha256:…#exec" is learned, stabilised,
// calibrated and scored on its own, so probes and operators' commands
// neither teach the service's process tree (a shell the service starts
// stays new although a probe runs one every 20 s) nor raise its
// thresholds (a backup run through exec once an hour is the exec
// sessions' novelty, not the service's).
const ExecSuffix = "#exec"

// IsExecKey reports whether a profile key is an image's exec-session profile.
func IsExecKey(key string) bool { return strings.HasSuffix(key, ExecSuffix) }

// SessionKey returns the profile key of a container's processes: KeyFor(c)
// for the container's own process tree, with ExecSuffix for its exec
// sessions (host processes have no exec sessions).
func SessionKey(c *event.Container, exec bool) string {
	k := KeyFor(c)
	if exec && c != nil && !c.IsHost() {
		return k + ExecSuffix
	}
	return k
}

// ctrInfo is what the profiler keeps per running container, whatever the
// session: the files it created and how to tell its init tree.
type ctrInfo struct {
	own OwnFiles
	// The container's init: the top-most in-container ancestor of the
	// process tree that holds pid 1 of the container's pid namespace, or
	// (without namespace ids) the top-most process that started first.
	initPid   uint32
	initStart int64
	haveInit  bool
	// sessions are the contexts of the init tree [0] and of the exec
	// sessions [1], created on first use.
	sessions [2]*ctrState
	// The last process classified, the top of its ancestry as it was then,
	// and its session: consecutive events of one process skip the walk up
	// its ancestry while that ancestry is unchanged (a top-level process
	// is adopted when its parent's fork event arrives after its own
	// events; an exec sets an unknown start time).
	last     *event.Process
	lastPar  *event.Process
	lastTop  *event.Process
	topPar   *event.Process
	topStart int64
	lastExec bool
	// top is the top-most in-container ancestor execSession found last.
	top *event.Process
}

// isExec is execSession, remembered for the last process.
func (ci *ctrInfo) isExec(proc *event.Process, c *event.Container, now int64) bool {
	if proc != nil && proc == ci.last && proc.Parent == ci.lastPar && ci.lastTop.Parent == ci.topPar && ci.lastTop.StartTime == ci.topStart {
		return ci.lastExec
	}
	x := ci.execSession(proc, c, now)
	ci.last = nil
	if proc != nil && ci.top != nil {
		ci.last, ci.lastPar, ci.lastTop, ci.topPar, ci.topStart, ci.lastExec = proc, proc.Parent, ci.top, ci.top.Parent, ci.top.StartTime, x
	}
	return x
}

// maxAncestry bounds the walk up a process's parents.
const maxAncestry = 256

func sameContainer(a *event.Process, c *event.Container) bool {
	if a.Container == c {
		return true
	}
	return a.Container != nil && c != nil && a.Container.ID == c.ID
}

// execSession reports whether proc (in container c) belongs to an exec
// session rather than to the container's init tree. Its in-container
// ancestry is walked up to the top-most process whose parent is outside
// the container (or unknown):
//
//   - with pid-namespace ids (the sensor's vpid at fork and exec, or a
//     snapshot's NSpid), a process is in the init tree when it or an
//     in-container ancestor is pid 1 of its namespace; one in a pid
//     namespace of its own (vpid ≠ pid) without pid 1 above it is an exec
//     session (the runtime's setns'd child is never pid 1);
//   - otherwise — older traces without namespace ids, or a container in
//     the host's pid namespace (vpid = pid: no pid 1 of its own) — the
//     init tree is the one whose top-most process started first: exec
//     sessions start after the container (when a start time is unknown
//     the process stays in the init tree).
//
// A pod sharing its pid namespace (shareProcessNamespace: pid 1 is the
// pause process) has no pid 1 of its own: every process of its containers
// is then an exec session, i.e. one profile as before the split.
func (ci *ctrInfo) execSession(proc *event.Process, c *event.Container, now int64) bool {
	if proc == nil || c == nil || c.IsHost() {
		return false
	}
	ci.top = nil
	top, ownNS, pid1 := proc, false, false
	for i := 0; ; i++ {
		if top.NSKnown {
			if top.VPid == 1 {
				pid1 = true
			} else if top.VPid != top.Pid {
				ownNS = true
			}
		}
		par := top.Parent
		if par == nil || par == top || i >= maxAncestry || !sameContainer(par, c) {
			break
		}
		top = par
	}
	ci.top = top
	switch {
	case pid1:
		ci.initPid, ci.initStart, ci.haveInit = top.Pid, top.StartTime, true
		return false
	case ownNS:
		return true
	case !ci.haveInit:
		// The first process seen: the container's init (its start is
		// when it was first seen if the table does not know it: the
		// runtime's init stage never execs).
		ci.initPid, ci.initStart, ci.haveInit = top.Pid, top.StartTime, true
		if ci.initStart == 0 {
			ci.initStart = now
		}
		return false
	case top.Pid == ci.initPid || top.StartTime == 0:
		// The init's tree; a start time the table does not know proves
		// nothing, and the process stays with the init tree (one
		// profile, as before the split).
		return false
	case top.StartTime < ci.initStart:
		ci.initPid, ci.initStart = top.Pid, top.StartTime
		return false
	}
	return true
}
