package proctable

import (
	"bytes"
	"net/netip"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// Defaults for Options' zero values.
const (
	DefaultExitGrace = 30 * time.Second
	DefaultMaxProcs  = 65536
	DefaultMaxFDs    = 4096
)

// ellipsis marks where a path longer than the sensor reads was cut.
const ellipsis = "…"

// maxThreadIDs bounds a process's VTids map (thread.vtid of threads past
// it is <NA>).
const maxThreadIDs = 4096

// Linux constants the fd logic needs.
const (
	atFDCWD       = -100
	oDirectory    = 0o200000
	oCloexec      = 0o2000000
	eInProgress   = -115
	sockStream    = 1
	sockDgram     = 2
	fDupfdCloexec = 1030
)

// ContainerResolver maps a cgroup id to its shared container record
// (container.Resolver implements it).
type ContainerResolver interface {
	Resolve(cgroupID uint64) *event.Container
}

// Options configures a Table. The zero value is usable.
type Options struct {
	// ExitGrace is how long (in event time) an exited process stays after
	// its last child record is gone; default DefaultExitGrace.
	ExitGrace time.Duration
	// MaxProcs caps the number of records; above it exited records are
	// evicted oldest exit first (down to 90% of the cap), even with
	// children. Live processes are
	// never evicted. Default DefaultMaxProcs.
	MaxProcs int
	// MaxFDs caps each process's fd table; new fds above it are not
	// stored (the event still gets a transient FD). Default DefaultMaxFDs.
	MaxFDs int
	// Containers, when set, attributes snapshot processes to containers
	// in LoadSnapshot.
	Containers ContainerResolver
}

// entry is the table's bookkeeping around one process record, which it
// holds (one allocation for both; entries are recycled, see recycle).
type entry struct {
	proc   event.Process
	p      *event.Process // &proc
	parent *entry
	// kids counts child entries still in the table that point at this one.
	kids   int
	exited bool
	gone   bool // removed from the table
	// pinned: a descendant removed while it still had children of its own
	// keeps pointing at this record through Process.Parent, so it is
	// never recycled (the garbage collector frees it).
	pinned bool
}

// Table is the process table. It is not safe for concurrent use: the
// pipeline calls Apply from its single goroutine.
type Table struct {
	opts   Options
	byPid  map[uint32]*entry
	exited []*entry // in exit order; may hold entries already gone
	now    int64    // latest event time seen
	// applied counts events since the last reap scan.
	applied int
	// Evicted counts exited records dropped by the MaxProcs cap.
	evicted uint64
	// names interns path strings: a workload opens the same files over
	// and over, so a path seen before costs no allocation.
	names map[string]string
	// failed describes the target of the last failed open (see syscall).
	failed event.FD
	// argvs and truncArgvs intern exec argument lists by their raw bytes
	// (without and with the truncation mark): a command run before costs
	// no allocation. The slices are shared and read-only.
	argvs, truncArgvs map[string][]string
	buf               []byte // scratch for socket names and joined paths
	// cleaned maps interned paths to their filepath.Clean form.
	cleaned map[string]string
	// Free records: process entries reaped with nothing pointing at them,
	// and fd records no process's table holds any more (fdRefs counts, per
	// record the table allocated, the fd tables holding it). Steady state
	// on a busy workload allocates nothing.
	freeEntries []*entry
	freeFDs     []*event.FD
	fdRefs      map[*event.FD]int32
}

// maxFree bounds each free list.
const maxFree = 4096

// newEntry returns a zeroed entry, recycled when one is free; its
// process's FDs map is empty and ready for use.
func (t *Table) newEntry() *entry {
	if n := len(t.freeEntries); n > 0 {
		e := t.freeEntries[n-1]
		t.freeEntries[n-1] = nil
		t.freeEntries = t.freeEntries[:n-1]
		fds := e.proc.FDs
		clear(fds)
		if fds == nil {
			fds = make(map[int32]*event.FD)
		}
		*e = entry{}
		e.p = &e.proc
		e.proc.FDs = fds
		return e
	}
	e := &entry{}
	e.p = &e.proc
	e.proc.FDs = make(map[int32]*event.FD)
	return e
}

// dropFDs releases every fd record of p and empties its table.
func (t *Table) dropFDs(p *event.Process) {
	for _, f := range p.FDs {
		t.releaseFD(f)
	}
	clear(p.FDs)
}

// recycle puts a removed entry on the free list. Only entries nothing
// points at qualify: no child record (kids), no removed descendant chain
// (pinned). The record keeps its content (it may be the process of the
// event being applied, reaped at its end) until newEntry reuses it in a
// later Apply.
func (t *Table) recycle(e *entry) {
	if e.kids > 0 || e.pinned || len(t.freeEntries) >= maxFree {
		return
	}
	t.freeEntries = append(t.freeEntries, e)
}

// newFD returns a zeroed fd record, recycled when one is free. The table
// counts the fd tables holding a record (setFD, copyFDs); it is reused once
// none does, by a later Apply. A record never stored is left to the
// garbage collector.
func (t *Table) newFD() *event.FD {
	var f *event.FD
	if n := len(t.freeFDs); n > 0 {
		f = t.freeFDs[n-1]
		t.freeFDs[n-1] = nil
		t.freeFDs = t.freeFDs[:n-1]
		*f = event.FD{}
	} else {
		f = &event.FD{}
	}
	return f
}

// retainFD notes one more fd table holding f.
func (t *Table) retainFD(f *event.FD) {
	if t.fdRefs == nil {
		t.fdRefs = make(map[*event.FD]int32)
	}
	t.fdRefs[f]++
}

// releaseFD notes one fd table less holding f; with none left f is free.
// f is not cleared: it may be the descriptor the current event reports.
func (t *Table) releaseFD(f *event.FD) {
	n, ok := t.fdRefs[f]
	if !ok {
		return
	}
	if n > 1 {
		t.fdRefs[f] = n - 1
		return
	}
	delete(t.fdRefs, f)
	if len(t.freeFDs) < maxFree {
		t.freeFDs = append(t.freeFDs, f)
	}
}

// internArgv returns ev's argument list, the same read-only slice for
// equal argv bytes while it stays interned.
func (t *Table) internArgv(ev *event.Event) []string {
	if len(ev.Argv) == 0 {
		return nil
	}
	trunc := ev.Flags2&event.FlagArgvTruncated != 0
	m := &t.argvs
	if trunc {
		m = &t.truncArgvs
	}
	if a, ok := (*m)[string(ev.Argv)]; ok {
		return a
	}
	a := ev.ArgvStrings()
	if trunc && len(a) > 0 {
		a[len(a)-1] += ellipsis
	}
	if *m == nil || len(*m) >= maxNames {
		*m = make(map[string][]string, 256)
	}
	(*m)[string(ev.Argv)] = a
	return a
}

// internComm returns ev's comm as an interned string.
func (t *Table) internComm(ev *event.Event) string {
	c := ev.Comm[:]
	if i := bytes.IndexByte(c, 0); i >= 0 {
		c = c[:i]
	}
	return t.intern(c)
}

// tupleName is fd.name for a socket: Falco's "client->server" tuple for
// inet, the path for unix, the bound endpoint for a server socket
// (interned: formatted in the table's scratch buffer).
func (t *Table) tupleName(f *event.FD, unixPath []byte) string {
	if f.Type == event.FDUnix || f.Family == event.AFUnix {
		if len(unixPath) > 0 {
			return t.intern(unixPath)
		}
		return f.Name
	}
	if !f.Remote.IsValid() {
		if f.Local.IsValid() {
			t.buf = AppendEndpoint(t.buf[:0], f.Local)
			return t.intern(t.buf)
		}
		return ""
	}
	client, server := f.Local, f.Remote
	if f.Server {
		client, server = f.Remote, f.Local
	}
	t.buf = AppendEndpoint(t.buf[:0], client)
	t.buf = append(t.buf, "->"...)
	t.buf = AppendEndpoint(t.buf, server)
	return t.intern(t.buf)
}

// maxNames bounds the path intern map; it is cleared when full.
const maxNames = 16384

// intern returns b as a string, the same string for equal bytes while it
// stays in the intern map.
func (t *Table) intern(b []byte) string {
	if s, ok := t.names[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if t.names == nil || len(t.names) >= maxNames {
		t.names = make(map[string]string, 1024)
	}
	t.names[s] = s
	return s
}

// New returns an empty table.
func New(opts Options) *Table {
	if opts.ExitGrace <= 0 {
		opts.ExitGrace = DefaultExitGrace
	}
	if opts.MaxProcs <= 0 {
		opts.MaxProcs = DefaultMaxProcs
	}
	if opts.MaxFDs <= 0 {
		opts.MaxFDs = DefaultMaxFDs
	}
	return &Table{opts: opts, byPid: make(map[uint32]*entry)}
}

// Len returns the number of process records held (live and exited).
func (t *Table) Len() int { return len(t.byPid) }

// Evicted returns how many exited records the MaxProcs cap dropped early.
func (t *Table) Evicted() uint64 { return t.evicted }

// Get returns the record of pid (live or exited, not yet reaped), or nil.
func (t *Table) Get(pid uint32) *event.Process {
	if e := t.byPid[pid]; e != nil {
		return e.p
	}
	return nil
}

// LoadSnapshot adds every process of a start-up snapshot, linking parents
// so that processes older than the capture have full ancestry.
func (t *Table) LoadSnapshot(s *event.Snapshot) {
	if s == nil {
		return
	}
	for i := range s.Processes {
		pi := &s.Processes[i]
		e := t.newEntry()
		p := e.p
		*p = event.Process{
			Pid: pi.Pid, Ppid: pi.Ppid, StartTime: pi.StartTime, ExecTime: pi.StartTime,
			Comm: pi.Comm, Exe: pi.Exe, Args: pi.Args, Cwd: pi.Cwd,
			Uid: pi.Uid, Gid: pi.Gid, Euid: pi.Euid, LoginUID: pi.LoginUID, Tty: pi.Tty,
			CapEff: pi.CapEff, CgroupID: pi.CgroupID, PidNS: pi.PidNS, MntNS: pi.MntNS, ExeIno: pi.ExeIno,
			FromSnapshot: true, FDs: p.FDs,
		}
		if pi.VPid != 0 {
			p.NSKnown, p.VPid, p.VPgid, p.CapPrm, p.CapInh = true, pi.VPid, pi.VPgid, pi.CapPrm, pi.CapInh
		}
		if t.opts.Containers != nil {
			p.Container = t.opts.Containers.Resolve(pi.CgroupID)
		}
		for _, f := range pi.FDs {
			fd := t.newFD()
			*fd = event.FD{Num: f.Num, Type: f.Type, Name: f.Name, NameRaw: f.Name}
			parseSocketName(fd)
			t.storeFD(p, fd)
		}
		if old := t.byPid[pi.Pid]; old != nil {
			t.remove(old)
		}
		t.byPid[pi.Pid] = e
	}
	for _, e := range t.byPid {
		if e.parent == nil && e.p.Ppid != 0 && e.p.Ppid != e.p.Pid {
			if pe := t.byPid[e.p.Ppid]; pe != nil {
				t.link(e, pe)
			}
		}
	}
	if s.Time > t.now {
		t.now = s.Time
	}
}

func (t *Table) link(child, parent *entry) {
	if child.parent != nil {
		child.parent.kids--
	}
	child.parent = parent
	child.p.Parent = parent.p
	parent.kids++
}

// lookup returns pid's entry, creating a minimal one from the event's
// fields (parent found by Ppid) for a process the table has not seen.
func (t *Table) lookup(ev *event.Event, c *event.Container) *entry {
	// An exited record still answers for its pid: syscall events from
	// another ring may arrive after the exit. Pid reuse is recognised at
	// the fork that creates the new process (see fork).
	if e := t.byPid[ev.Pid]; e != nil {
		return e
	}
	e := t.newEntry()
	p := e.p
	*p = event.Process{
		Pid: ev.Pid, Ppid: ev.Ppid, Comm: t.internComm(ev),
		Uid: ev.Uid, Gid: ev.Gid, Euid: ev.Euid, Egid: ev.Egid, LoginUID: ev.LoginUID,
		Tty: ev.Tty, CapEff: ev.CapEff, CgroupID: ev.CgroupID, PidNS: ev.PidNS, MntNS: ev.MntNS,
		Container: c, FDs: p.FDs,
	}
	if len(ev.Exe) > 0 && ev.Kind != event.KindSyscall {
		t.setImage(p, ev)
	}
	t.byPid[ev.Pid] = e
	if pe := t.byPid[ev.Ppid]; pe != nil && ev.Ppid != ev.Pid {
		t.link(e, pe)
	}
	return e
}

// execName is the process name after an exec: the kernel's comm, except
// for a multi-call binary re-executing itself through /proc/self/exe
// (busybox's standalone shell runs every applet that way, so the kernel
// names them all "exe"): there the applet is argv[0], as the binary itself
// decides. Both are under the process's control, so nothing is lost.
func execName(comm, exe string, args []string) string {
	if comm != "exe" || len(args) == 0 || path.Base(exe) == "exe" {
		return comm
	}
	name := path.Base(args[0])
	if name == "" || name == "." || name == "/" {
		return comm
	}
	if len(name) > 15 {
		name = name[:15] // a comm's length
	}
	return name
}

// setImage copies the exec facts of ev into p (strings interned: a
// command run before costs no allocation).
func (t *Table) setImage(p *event.Process, ev *event.Event) {
	p.Exe = t.intern(ev.Exe)
	if ev.Flags2&event.FlagRealPathTruncated != 0 {
		p.Exe = ellipsis + p.Exe // the kernel path's last PATH_MAX bytes
	}
	p.Args = t.internArgv(ev)
	p.ArgsTruncated = ev.Flags2&event.FlagArgvTruncated != 0
	if len(ev.Cwd) > 0 {
		p.Cwd = t.intern(ev.Cwd)
	}
	p.ExeIno, p.ExeDev, p.ExeCtime, p.ExeMtime = ev.ExeIno, ev.ExeDev, ev.ExeCtime, ev.ExeMtime
	p.ExeUpperLayer = ev.Flags2&event.FlagExeUpperLayer != 0
	p.ExeMemfd = ev.Flags2&event.FlagExeMemfd != 0
	if ev.Kind == event.KindExec {
		setExecIDs(p, ev)
	}
}

// setExecIDs copies the namespace ids, capability sets and environment an
// exec event carries (sensor records; traces from format 2.1). The
// environment is copied: ev's buffers are reused by the next decode.
func setExecIDs(p *event.Process, ev *event.Event) {
	p.VTids = nil // an exec ends the other threads
	if ev.VPid == 0 {
		p.NSKnown, p.VPid, p.VPgid, p.CapPrm, p.CapInh = false, 0, 0, 0, 0
		p.EnvKnown, p.EnvTruncated, p.Env = false, false, nil
		return
	}
	p.NSKnown, p.VPid, p.VPgid, p.CapPrm, p.CapInh = true, ev.VPid, ev.VPgid, ev.CapPrm, ev.CapInh
	env := ev.Env
	p.EnvTruncated = ev.Flags2&event.FlagEnvTruncated != 0
	if p.EnvTruncated {
		// drop the variable the bound cut in the middle
		if i := bytes.LastIndexByte(env, 0); i >= 0 {
			env = env[:i+1]
		} else {
			env = nil
		}
	}
	p.EnvKnown, p.Env = true, bytes.Clone(env)
}

// Apply updates the table with one event and returns the event's process
// record and the file descriptor the syscall concerns (nil when none). It
// is the single entry point the pipeline calls for every event before the
// rules. c is the event's container (from its cgroup id), may be nil.
func (t *Table) Apply(ev *event.Event, c *event.Container) (*event.Process, *event.FD) {
	if ev.Time > t.now {
		t.now = ev.Time
	}
	e := t.lookup(ev, c)
	p := e.p
	if c != nil {
		p.Container = c
	}
	// Credentials and namespaces as of this event.
	p.Uid, p.Gid, p.Euid, p.Egid = ev.Uid, ev.Gid, ev.Euid, ev.Egid
	p.LoginUID, p.CapEff, p.Tty = ev.LoginUID, ev.CapEff, ev.Tty
	if ev.CgroupID != 0 {
		p.CgroupID = ev.CgroupID
	}
	if ev.PidNS != 0 {
		p.PidNS, p.MntNS = ev.PidNS, ev.MntNS
	}
	var fd *event.FD
	switch ev.Kind {
	case event.KindExec:
		t.setImage(p, ev)
		p.Comm = execName(t.internComm(ev), p.Exe, p.Args)
		p.ExecTime = ev.Time
		if p.StartTime == 0 {
			p.StartTime = ev.Time
		}
		p.Generation++
		for n, f := range p.FDs {
			if f.Flags&oCloexec != 0 {
				delete(p.FDs, n)
				t.releaseFD(f)
			}
		}
	case event.KindFork:
		if ev.Flags2&event.FlagThread == 0 && ev.ChildPid != 0 && ev.ChildPid != ev.Pid {
			t.fork(e, ev)
		} else if ev.Flags2&event.FlagThread != 0 && ev.VTid != 0 && ev.ChildTid != 0 {
			if p.VTids == nil {
				p.VTids = make(map[uint32]uint32)
			}
			if len(p.VTids) < maxThreadIDs {
				p.VTids[ev.ChildTid] = ev.VTid
			}
		}
	case event.KindExit:
		if ev.Flags2&event.FlagThread != 0 {
			// a thread other than the leader: the process goes on
			delete(p.VTids, ev.Tid)
			break
		}
		if !e.exited {
			p.ExitTime = ev.Time
			e.exited = true
			t.exited = append(t.exited, e)
		}
	case event.KindSyscall:
		fd = t.syscall(p, ev)
	}
	t.applied++
	if t.applied >= 1024 || len(t.byPid) > t.opts.MaxProcs {
		t.reap()
	}
	return p, fd
}

// fork creates the child record: parent link, copied image facts and a
// copy of the fd table (the FD records are shared, as the open file
// descriptions are).
func (t *Table) fork(parent *entry, ev *event.Event) {
	pp := parent.p
	if old := t.byPid[ev.ChildPid]; old != nil {
		if !old.exited && old.p.Parent == nil {
			// The child's own events overtook the fork: adopt it.
			t.link(old, parent)
			if len(old.p.FDs) == 0 {
				t.copyFDs(old.p, pp)
			}
			if ev.VPid != 0 && !old.p.NSKnown {
				op := old.p
				op.NSKnown, op.VPid, op.VPgid, op.CapPrm, op.CapInh = true, ev.VPid, ev.VPgid, ev.CapPrm, ev.CapInh
			}
			return
		}
		if !old.exited && old.parent == parent {
			return // duplicate fork event
		}
		t.remove(old)
		if !old.exited {
			t.recycle(old) // an exited record is recycled by reap, which holds it in t.exited
		}
	}
	ce := t.newEntry()
	child := ce.p
	*child = event.Process{
		FDs: child.FDs,
		Pid: ev.ChildPid, Ppid: pp.Pid, StartTime: ev.Time, ExecTime: pp.ExecTime,
		Comm: pp.Comm, Exe: pp.Exe, Args: pp.Args, Cwd: pp.Cwd,
		Uid: pp.Uid, Gid: pp.Gid, Euid: pp.Euid, Egid: pp.Egid, LoginUID: pp.LoginUID,
		Tty: pp.Tty, CapEff: pp.CapEff, CgroupID: pp.CgroupID, PidNS: pp.PidNS, MntNS: pp.MntNS,
		ExeIno: pp.ExeIno, ExeDev: pp.ExeDev, ExeCtime: pp.ExeCtime, ExeMtime: pp.ExeMtime,
		ExeUpperLayer: pp.ExeUpperLayer, ExeMemfd: pp.ExeMemfd,
		Container: pp.Container, Generation: pp.Generation,
		// the same memory image: the parent's environment at its exec
		EnvKnown: pp.EnvKnown, EnvTruncated: pp.EnvTruncated, Env: pp.Env,
	}
	if ev.VPid != 0 {
		child.NSKnown, child.VPid, child.VPgid, child.CapPrm, child.CapInh = true, ev.VPid, ev.VPgid, ev.CapPrm, ev.CapInh
	}
	if len(ev.Exe) > 0 && child.Exe == "" {
		t.setImage(child, ev)
	}
	t.copyFDs(child, pp)
	t.byPid[ev.ChildPid] = ce
	t.link(ce, parent)
}

// copyFDs makes dst's fd table a copy of src's, sharing the records (the
// open file descriptions are shared after a fork).
func (t *Table) copyFDs(dst, src *event.Process) {
	if dst.FDs == nil {
		dst.FDs = make(map[int32]*event.FD, len(src.FDs))
	}
	t.dropFDs(dst)
	for n, f := range src.FDs {
		dst.FDs[n] = f
		t.retainFD(f)
	}
}

// remove drops an entry from the table (pid reuse, reaping, eviction).
func (t *Table) remove(e *entry) {
	if e.gone {
		return
	}
	e.gone = true
	if t.byPid[e.p.Pid] == e {
		delete(t.byPid, e.p.Pid)
	}
	if e.parent != nil {
		e.parent.kids--
	}
	if e.kids > 0 {
		// Its children keep pointing at it, and through it at its
		// ancestors: none of them may be recycled.
		for a := e; a != nil && !a.pinned; a = a.parent {
			a.pinned = true
		}
	}
	t.dropFDs(e.p)
}

// reap drops exited records whose grace period passed and that no child
// record refers to, then enforces MaxProcs by evicting the oldest exited.
func (t *Table) reap() {
	t.applied = 0
	grace := int64(t.opts.ExitGrace)
	// Removing a child can make its exited parent reapable: repeat while
	// progress is made (bounded by the depth of exited chains).
	for changed := true; changed; {
		changed = false
		kept := t.exited[:0]
		for _, e := range t.exited {
			if e.gone {
				// removed by pid reuse or a snapshot: its last reference
				// from the table is this list
				t.recycle(e)
				continue
			}
			if e.kids <= 0 && t.now-e.p.ExitTime >= grace {
				t.remove(e)
				t.recycle(e)
				changed = true
				continue
			}
			kept = append(kept, e)
		}
		clear(t.exited[len(kept):])
		t.exited = kept
	}
	if over := len(t.byPid) - t.opts.MaxProcs; over > 0 {
		// Evict a tenth of the cap more than needed, so a table that sits
		// at its cap does not rescan on every event. t.exited is in exit
		// order: the front holds the longest-exited records.
		over += t.opts.MaxProcs / 10
		n := 0
		for _, e := range t.exited {
			if n >= over {
				break
			}
			t.remove(e)
			t.recycle(e)
			t.evicted++
			n++
		}
		t.exited = append(t.exited[:0], t.exited[n:]...)
	}
}

// Reap runs the reaping pass now (Apply runs it every 1024 events).
func (t *Table) Reap() { t.reap() }

// setFD stores f under its number, within the per-process cap; a record
// it replaces is released.
func (t *Table) setFD(p *event.Process, f *event.FD) {
	if p.FDs == nil {
		p.FDs = make(map[int32]*event.FD)
	}
	old, ok := p.FDs[f.Num]
	if !ok && len(p.FDs) >= t.opts.MaxFDs {
		return
	}
	if old == f {
		return
	}
	p.FDs[f.Num] = f
	t.retainFD(f)
	if ok {
		t.releaseFD(old)
	}
}

// storeFD is setFD without the cap (snapshot fds).
func (t *Table) storeFD(p *event.Process, f *event.FD) {
	if old, ok := p.FDs[f.Num]; ok {
		if old == f {
			return
		}
		t.releaseFD(old)
	}
	p.FDs[f.Num] = f
	t.retainFD(f)
}

// resolvePath makes a path argument absolute: relative paths are joined to
// the cwd (dirfd AT_FDCWD) or to the directory fd's path.
func (t *Table) resolvePath(p *event.Process, dirfd int32, raw []byte) string {
	s := t.intern(raw)
	if len(s) > 0 && s[0] == '/' {
		return t.clean(s)
	}
	base := ""
	if dirfd == atFDCWD {
		base = p.Cwd
	} else if f := p.FDs[dirfd]; f != nil && (f.Type == event.FDDirectory || f.Type == event.FDFile) {
		base = f.Name
	}
	if base == "" || s == "" {
		if s == "" {
			return base
		}
		return s
	}
	t.buf = append(append(append(t.buf[:0], base...), '/'), s...)
	return t.clean(t.intern(t.buf)) // filepath.Join(base, s)
}

// clean is filepath.Clean of an interned path, itself interned.
func (t *Table) clean(s string) string {
	if c, ok := t.cleaned[s]; ok {
		return c
	}
	c := filepath.Clean(s)
	if t.cleaned == nil || len(t.cleaned) >= maxNames {
		t.cleaned = make(map[string]string, 1024)
	}
	t.cleaned[s] = c
	return c
}

// factsFD returns the descriptor the kernel's file facts on ev describe
// (event.FlagFileFacts), or -1 when ev carries none.
func factsFD(ev *event.Event) int32 {
	if ev.Flags2&event.FlagFileFacts == 0 {
		return -1
	}
	if sp := event.SpecOf(ev.Syscall); sp != nil {
		switch sp.FD {
		case event.EffOpen, event.EffSocket, event.EffAccept, event.EffDup:
			return int32(ev.Ret) // the descriptor the call created
		}
	}
	return ev.Fd
}

// fileClass groups descriptor types the kernel cannot tell apart by inode
// type alone: a memfd or a directory opened without O_DIRECTORY is a file.
func fileClass(t event.FDType) int {
	switch {
	case t == event.FDFile || t == event.FDDirectory || t == event.FDMemfd:
		return 1
	case t.IsSocket():
		return 2
	}
	return 3 + int(t)
}

// stale reports whether the table's record f of descriptor fd no longer
// describes the file the kernel says fd refers to on ev: another type, or
// another inode. The kernel is right; the table may have missed a close,
// a pipe, a socketpair or a dup it does not see. Events without kernel
// facts for fd never make a record stale.
func stale(f *event.FD, fd int32, ev *event.Event) bool {
	if factsFD(ev) != fd || fd < 0 {
		return false
	}
	if f == nil || f.Type == event.FDUnknown || ev.FileType == event.FDUnknown {
		return f == nil || ev.FileType != event.FDUnknown
	}
	if fileClass(f.Type) != fileClass(ev.FileType) {
		return true
	}
	return f.Ino != 0 && ev.FileIno != 0 && (f.Ino != ev.FileIno || f.Dev != ev.FileDev)
}

// kernelFD builds the record of descriptor num from the kernel's facts on
// ev alone: type, inode and, for a socket, its family, protocol and ends.
func (t *Table) kernelFD(ev *event.Event, num int32) *event.FD {
	f := t.newFD()
	*f = event.FD{Num: num, Type: ev.FileType, Ino: ev.FileIno, Dev: ev.FileDev}
	switch {
	case f.Type.IsSocket():
		f.Family, f.Proto = ev.Family, ev.Proto
		f.Local, f.Remote = ev.Src, ev.Dst
		f.Connected = ev.Dst.IsValid()
		f.Name = t.tupleName(f, nil)
	case f.Type == event.FDPipe:
		t.buf = append(strconv.AppendUint(append(t.buf[:0], "pipe:["...), ev.FileIno, 10), ']')
		f.Name = t.intern(t.buf)
	}
	return f
}

// noteKernel records the kernel's identity of fd on its table record.
func noteKernel(f *event.FD, fd int32, ev *event.Event) {
	if f == nil || factsFD(ev) != fd || fd < 0 {
		return
	}
	f.Ino, f.Dev = ev.FileIno, ev.FileDev
	if f.Type == event.FDFile && ev.FileType == event.FDDirectory {
		f.Type = event.FDDirectory
	}
}

// socketFD returns the socket record for fd, creating one from the event's
// family when the table does not know it (sockets older than the capture)
// or when the kernel says the table's record is stale.
func (t *Table) socketFD(p *event.Process, fd int32, ev *event.Event) *event.FD {
	if fd < 0 {
		// An io_uring connect or accept: the request's descriptor number
		// is not known. Describe the socket from the event alone, in the
		// scratch FD, without touching the table.
		t.failed = event.FD{Num: -1, Type: event.SocketFDType(ev.Family), Family: ev.Family, Proto: ev.Proto}
		return &t.failed
	}
	f := p.FDs[fd]
	if stale(f, fd, ev) {
		f = nil
	}
	if f == nil || !f.Type.IsSocket() && f.Type != event.FDUnknown {
		f = t.newFD()
		*f = event.FD{Num: fd, Type: event.SocketFDType(ev.Family), Family: ev.Family, Proto: ev.Proto}
		t.setFD(p, f)
	}
	if f.Family == 0 {
		f.Family = ev.Family
		if f.Type == event.FDUnknown {
			f.Type = event.SocketFDType(ev.Family)
		}
	}
	if f.Proto == 0 {
		f.Proto = ev.Proto
	}
	noteKernel(f, fd, ev)
	return f
}

func (t *Table) setName(f *event.FD, name string) {
	f.NameChanged = f.Name != name
	f.Name = name
}

// syscall applies a syscall event to p's fd table and returns the FD it
// concerns.
func (t *Table) syscall(p *event.Process, ev *event.Event) *event.FD {
	failed := ev.Ret < 0
	sp := event.SpecOf(ev.Syscall)
	if sp == nil {
		return nil
	}
	// The syscall table says what the call does to the descriptors;
	// connect, accept and bind keep their own code, as Falco's parsers do.
	switch sp.FD {
	case event.EffOpen:
		dirfd := int32(atFDCWD)
		if dirFD(sp) {
			dirfd = ev.Fd
		}
		typ := event.FDFile
		if ev.Flags&oDirectory != 0 {
			typ = event.FDDirectory
		}
		// fd.name is the kernel's path of the file really opened when
		// the sensor resolved it (symlinks, "..", dirfds, chroots and
		// /proc/*/root followed); the user string otherwise.
		name, cut := t.intern(ev.RealPath), false
		switch {
		case name != "" && ev.Flags2&event.FlagRealPathTruncated != 0:
			name, cut = ellipsis+name, true
		case name == "":
			name = t.resolvePath(p, dirfd, ev.Path)
			if ev.Flags2&event.FlagPathTruncated != 0 {
				name, cut = name+ellipsis, true
			}
		}
		raw := t.intern(ev.Path)
		if failed {
			// A failed open creates no fd: describe it in the table's
			// scratch FD, valid until the next event, instead of allocating.
			t.failed = event.FD{Num: -1, Type: typ, Name: name, NameRaw: raw, Flags: ev.Flags, Truncated: cut}
			return &t.failed
		}
		if ev.Flags2&event.FlagIOURingFixed != 0 {
			// io_uring put the file in its ring's fixed-file table:
			// Ret is that table's index, no descriptor was made.
			// Describe it (fd.num = the index) without touching the
			// process's descriptors.
			t.failed = event.FD{Num: int32(ev.Ret), Type: typ, Name: name, NameRaw: raw, Flags: ev.Flags, Truncated: cut}
			if ev.Flags2&event.FlagFileFacts != 0 && ev.FileType != event.FDUnknown {
				t.failed.Type = ev.FileType
			}
			return &t.failed
		}
		f := t.newFD()
		*f = event.FD{Num: int32(ev.Ret), Type: typ, Name: name, NameRaw: raw, Flags: ev.Flags, Truncated: cut}
		if ev.Flags2&event.FlagFileFacts != 0 && ev.FileType != event.FDUnknown {
			f.Type = ev.FileType
		}
		noteKernel(f, f.Num, ev)
		t.setFD(p, f)
		return f
	case event.EffMemfd:
		f := &event.FD{Num: -1, Type: event.FDMemfd, Name: "memfd:" + string(ev.Path), NameRaw: string(ev.Path), Flags: ev.Flags}
		if !failed {
			f.Num = int32(ev.Ret)
			t.setFD(p, f)
		}
		return f
	case event.EffSocket:
		proto, _ := ev.SocketProto()
		if proto == 0 && (ev.Family == event.AFInet || ev.Family == event.AFInet6) {
			switch ev.SockType & 0xf {
			case sockStream:
				proto = event.ProtoTCP
			case sockDgram:
				proto = event.ProtoUDP
			}
		}
		if ev.Proto != 0 {
			proto = ev.Proto
		}
		f := t.newFD()
		*f = event.FD{Num: -1, Type: event.SocketFDType(ev.Family), Family: ev.Family, Proto: proto}
		if !failed {
			f.Num = int32(ev.Ret)
			noteKernel(f, f.Num, ev)
			t.setFD(p, f)
		}
		return f
	case event.EffConnect:
		f := t.socketFD(p, ev.Fd, ev)
		if failed && ev.Ret != eInProgress {
			// Report the attempted peer without changing the table.
			t.failed = *f
			tf := &t.failed
			tf.Remote = ev.Dst
			if ev.Src.IsValid() {
				tf.Local = ev.Src
			}
			tf.Name = t.tupleName(tf, ev.UnixPath)
			return tf
		}
		f.Remote = ev.Dst
		if ev.Src.IsValid() {
			f.Local = ev.Src
		}
		f.Connected, f.Server = true, false
		t.setName(f, t.tupleName(f, ev.UnixPath))
		return f
	case event.EffAccept:
		lf := t.socketFD(p, ev.Fd, ev)
		if failed {
			return lf
		}
		f := t.newFD()
		*f = event.FD{Num: int32(ev.Ret), Type: lf.Type, Family: lf.Family, Proto: lf.Proto,
			Local: ev.Dst, Remote: ev.Src, Connected: true, Server: true}
		if f.Type == event.FDUnknown {
			f.Type = event.SocketFDType(ev.Family)
		}
		if !f.Local.IsValid() {
			f.Local = lf.Local
		}
		f.Name = t.tupleName(f, ev.UnixPath)
		if f.Name == "" && f.Type == event.FDUnix {
			f.Name = lf.Name
		}
		f.NameChanged = true
		if ev.Flags2&event.FlagIOURingFixed != 0 {
			// accepted into an io_uring fixed-file slot: Ret is the slot,
			// no descriptor was made
			t.failed = *f
			if len(t.freeFDs) < maxFree {
				t.freeFDs = append(t.freeFDs, f)
			}
			return &t.failed
		}
		noteKernel(f, f.Num, ev)
		t.setFD(p, f)
		return f
	case event.EffBind:
		f := t.socketFD(p, ev.Fd, ev)
		if failed {
			t.failed = *f
			tf := &t.failed
			tf.Local = ev.Src
			tf.Name = t.tupleName(tf, ev.UnixPath)
			return tf
		}
		f.Local = ev.Src
		t.setName(f, t.tupleName(f, ev.UnixPath))
		return f
	case event.EffListen:
		f := t.socketFD(p, ev.Fd, ev)
		if !failed {
			f.Listening = true
		}
		return f
	case event.EffSend:
		f := t.socketFD(p, ev.Fd, ev)
		if !failed && ev.Dst.IsValid() && !f.Connected {
			f.Remote = ev.Dst
			if ev.Src.IsValid() {
				f.Local = ev.Src
			}
			t.setName(f, t.tupleName(f, ev.UnixPath))
		}
		return f
	case event.EffDup:
		// fcntl reaches here for F_DUPFD and F_DUPFD_CLOEXEC only.
		old := p.FDs[ev.Fd]
		if failed {
			return old
		}
		newNum := int32(ev.Ret)
		// The kernel's facts describe the new descriptor, which is the
		// same open file as the old one: a table record that disagrees
		// (a pipe where a socket used to be) is replaced, for both.
		if ev.Flags2&event.FlagFileFacts != 0 && stale(old, newNum, ev) {
			kf := t.kernelFD(ev, ev.Fd)
			if old != nil && fileClass(old.Type) == fileClass(kf.Type) && old.Ino == 0 {
				// same kind, identity never known: keep the name
				kf.Name, kf.NameRaw = old.Name, old.NameRaw
			}
			if old != nil {
				kf.Flags = old.Flags
			}
			old = kf
			t.setFD(p, kf)
		}
		var f *event.FD
		if old != nil {
			f = t.newFD()
			*f = *old
		} else {
			f = t.newFD()
			f.Type = event.FDUnknown
		}
		f.Num = newNum
		f.Flags &^= oCloexec
		if (ev.Syscall == event.SysDup3 && ev.Flags&oCloexec != 0) || (ev.Syscall == event.SysFcntl && ev.Flags == fDupfdCloexec) {
			f.Flags |= oCloexec
		}
		f.NameChanged = false
		if newNum != ev.Fd || old == nil {
			t.setFD(p, f)
		}
		return f
	case event.EffClose:
		f := p.FDs[ev.Fd]
		if !failed && f != nil {
			delete(p.FDs, ev.Fd)
			t.releaseFD(f) // still valid for this event: reused by a later one
		}
		return f
	case event.EffChdir:
		// The cwd is per process here (threads share it in practice).
		if !failed {
			p.Cwd = t.resolvePath(p, atFDCWD, ev.Path)
		}
		return nil
	case event.EffFchdir:
		f := p.FDs[ev.Fd]
		if stale(f, ev.Fd, ev) {
			f = t.kernelFD(ev, ev.Fd)
			t.setFD(p, f)
		}
		if !failed && f != nil && f.Name != "" {
			p.Cwd = f.Name
		}
		return f
	case event.EffUse:
		f := p.FDs[ev.Fd]
		if stale(f, ev.Fd, ev) {
			f = t.kernelFD(ev, ev.Fd)
			t.setFD(p, f)
		}
		return f
	}
	return nil
}

// dirFD reports whether an open-family row names the directory its path
// is relative to (openat's dirfd, open_by_handle_at's mountfd): an fd
// argument read from Fd. open and creat have none: AT_FDCWD.
func dirFD(sp *event.Spec) bool {
	for _, a := range sp.Args {
		if a.Type == event.ArgFD && a.From == event.SlotFd {
			return true
		}
	}
	return false
}

// parseSocketName recovers the endpoints of an inet socket from a snapshot
// fd name ("client:port->server:port", or "ip:port" for a bound or
// listening socket). Which end is local is not recorded in the name: the
// client end is stored as Local and the server end as Remote, which is
// what fd.cip/fd.sip need.
func parseSocketName(fd *event.FD) {
	if fd.Type != event.FDIPv4 && fd.Type != event.FDIPv6 {
		return
	}
	fd.Family = event.AFInet
	if fd.Type == event.FDIPv6 {
		fd.Family = event.AFInet6
	}
	cl, sv, ok := strings.Cut(fd.Name, "->")
	if !ok {
		if ap, ok := parseEndpoint(fd.Name); ok {
			fd.Local, fd.Listening = ap, true
		}
		return
	}
	c, ok1 := parseEndpoint(cl)
	sa, ok2 := parseEndpoint(sv)
	if ok1 && ok2 {
		fd.Local, fd.Remote, fd.Connected = c, sa, true
	}
}

// parseEndpoint parses "ip:port" with an unbracketed IPv6 address.
func parseEndpoint(s string) (netip.AddrPort, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}
