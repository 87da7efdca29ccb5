package event

import (
	"fmt"
	"net/netip"
)

// FDType is the kind of object a file descriptor refers to (Falco fd.type).
type FDType uint8

const (
	FDUnknown FDType = iota
	FDFile
	FDDirectory
	FDIPv4
	FDIPv6
	FDUnix
	FDPipe
	FDEvent
	FDSignalFD
	FDEventPoll
	FDInotify
	FDTimerFD
	FDNetlink
	FDMemfd
	FDBPF
)

var fdTypeNames = [...]string{"", "file", "directory", "ipv4", "ipv6", "unix", "pipe", "event", "signalfd", "eventpoll", "inotify", "timerfd", "netlink", "memfd", "bpf"}
var fdTypeChars = [...]byte{'?', 'f', 'd', '4', '6', 'u', 'p', 'e', 's', 'l', 'i', 't', 'n', 'f', 'b'}

// String returns Falco's fd.type name.
func (t FDType) String() string {
	if int(t) < len(fdTypeNames) {
		return fdTypeNames[t]
	}
	return ""
}

// Char returns Falco's fd.typechar.
func (t FDType) Char() byte {
	if int(t) < len(fdTypeChars) {
		return fdTypeChars[t]
	}
	return '?'
}

// IsSocket reports whether the type is a network or unix socket.
func (t FDType) IsSocket() bool { return t == FDIPv4 || t == FDIPv6 || t == FDUnix || t == FDNetlink }

// FD is the process table's record of one open file descriptor.
type FD struct {
	Num   int32
	Type  FDType
	Name  string // path, or "cip:cport->sip:sport" for sockets as Falco writes fd.name
	Flags uint32 // open flags
	// NameRaw is the path as passed to the syscall, before resolution.
	NameRaw string
	// Socket facts.
	Family    uint16
	Proto     uint8
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Connected bool
	Listening bool
	// Server is true for an accepted socket (the local end is the server).
	Server bool
	// NameChanged is set when the last event changed the fd's name (Falco fd.name_changed).
	NameChanged bool
	// Ino and Dev identify the open file as the kernel reported it
	// (Event.FileIno/FileDev); 0 when unknown (e.g. from a snapshot).
	Ino uint64
	Dev uint32
	// Truncated: Name was longer than the sensor reads (PATH_MAX); it
	// holds the kernel path's last bytes after "…" (or the passed
	// string's first bytes before "…").
	Truncated bool
}

// Process is the process table's shared record of one thread group.
// Enrichment attaches a pointer to it; rules and the profiler read it.
type Process struct {
	Pid       uint32
	Ppid      uint32
	StartTime int64 // ns since epoch (exec or fork time)
	ExecTime  int64 // ns since epoch of the last exec
	ExitTime  int64 // 0 while alive
	Comm      string
	Exe       string
	Args      []string
	Cwd       string
	Uid       uint32
	Gid       uint32
	Euid      uint32
	Egid      uint32
	LoginUID  uint32
	Tty       uint32
	CapEff    uint64
	CgroupID  uint64
	PidNS     uint32
	MntNS     uint32
	ExeIno    uint64
	ExeDev    uint32
	ExeCtime  int64
	ExeMtime  int64
	// ExeUpperLayer / ExeMemfd / ExeFromSnapshot describe the image.
	ExeUpperLayer bool
	ExeMemfd      bool
	// ArgsTruncated: argv was longer than the sensor reads (4 KiB); the
	// last argument ends in "…".
	ArgsTruncated bool
	// FromSnapshot is true for processes found by the start-up /proc scan.
	FromSnapshot bool
	// NSKnown: VPid, VPgid, CapPrm and CapInh were captured by the sensor
	// at the process's exec or fork (false for snapshot processes and
	// traces before format 2.1).
	NSKnown bool
	// VPid and VPgid are the process's pid and process group id in its
	// own pid namespace (VPgid 0: the group is outside it), as of its
	// exec or fork: a later setpgid/setsid without exec is not seen.
	VPid  uint32
	VPgid uint32
	// VTids maps the host tids of the process's other threads (created
	// after the exec, reported by the sensor) to their ids in the namespace.
	VTids map[uint32]uint32
	// CapPrm and CapInh are the permitted and inheritable capability sets
	// as of the exec or fork.
	CapPrm uint64
	CapInh uint64
	// EnvKnown: Env is the environment the sensor captured at the exec
	// (NUL-separated, at most 4 KiB; when the kernel's was longer the
	// variables past the bound are dropped and EnvTruncated is set).
	// Shared between a forked child and its parent: read-only.
	EnvKnown     bool
	EnvTruncated bool
	Env          []byte
	// Parent is the parent process record, nil when unknown.
	Parent *Process
	// Container is the container the process runs in (never nil once
	// enriched: host processes point at the host container record).
	Container *Container
	// FDs maps fd numbers to their records.
	FDs map[int32]*FD
	// Generation counts execs; it lets the profiler key per-image state.
	Generation uint32
}

// Ancestor returns the n-th ancestor (1 = parent), or nil.
func (p *Process) Ancestor(n int) *Process {
	a := p
	for i := 0; i < n && a != nil; i++ {
		a = a.Parent
	}
	if a == p {
		return nil
	}
	return a
}

// Container is the shared record of one container (or the host).
type Container struct {
	ContainerInfo
	// Mode is the namespace's detection mode as decided by the agent;
	// empty means the configured default.
	Mode Mode
}

// Mode is a namespace's rollout mode for learned profiles.
type Mode string

const (
	// ModeOff: no learning and no anomaly scoring (static rules still run).
	ModeOff Mode = "off"
	// ModeLearn: events are learned into the image's profile.
	ModeLearn Mode = "learn"
	// ModeDetect: events are scored against the profile.
	ModeDetect Mode = "detect"
	// ModeAuto: per profile category, events are learned while the
	// category is learning (or unstable) and scored once the profiler's
	// lifecycle has found it stable: the learning window ends by itself.
	// A detecting category does not learn in auto mode (only ModeLearn
	// adds to it).
	ModeAuto Mode = "auto"
)

// Modes lists every mode.
var Modes = []Mode{ModeOff, ModeLearn, ModeDetect, ModeAuto}

// ParseMode parses off|learn|detect|auto.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeOff, ModeLearn, ModeDetect, ModeAuto:
		return Mode(s), nil
	}
	return "", fmt.Errorf("unknown mode %q (want off, learn, detect or auto)", s)
}

// IsHost reports whether this is the host pseudo-container.
func (c *Container) IsHost() bool { return c == nil || c.ID == HostContainerID }

// Enriched is an event with the records enrichment attached: what rules,
// profiler and model consume. Proc and Container are never nil after
// enrichment; FD is the descriptor the syscall concerns (after the event's
// effect was applied), nil when none.
type Enriched struct {
	*Event
	Proc      *Process
	Container *Container
	FD        *FD
	// Hostname of the machine the event came from.
	Hostname string
}
