// Package event is driftwatch's event model: the plain-data values that the
// live sensor and every trace reader produce, and that enrichment, rules,
// profiler and model consume. It imports nothing else of driftwatch.
//
// An Event is one kernel fact: a process lifecycle change (exec, fork, exit)
// or one system call reported at its exit with the arguments captured at its
// entry. Byte-slice fields may alias a decoder's reusable buffers: they are
// valid until the next decode into the same Event; a consumer that keeps them
// must copy (see Event.Clone).
package event

import (
	"net/netip"
)

// Kind says which kind of fact an Event carries.
type Kind uint8

const (
	// KindSyscall is a system call reported at exit (Syscall says which).
	KindSyscall Kind = iota
	// KindExec is a successful exec from sched_process_exec (Falco: execve, res 0).
	KindExec
	// KindFork is a new process or thread from sched_process_fork (Falco: clone).
	KindFork
	// KindExit is a thread group leader's exit from sched_process_exit (Falco: procexit).
	KindExit
	// KindCount is the number of kinds; not a kind.
	KindCount
)

var kindNames = [...]string{"syscall", "exec", "fork", "exit"}

// String returns the kind's name as used in metrics labels.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Family values for network events (Linux AF_* numbers).
const (
	AFUnspec  = 0
	AFUnix    = 1
	AFInet    = 2
	AFInet6   = 10
	AFNetlink = 16
)

// SocketFDType is the descriptor type of a socket of the given address
// family (FDUnknown for families driftwatch does not name).
func SocketFDType(family uint16) FDType {
	switch family {
	case AFInet:
		return FDIPv4
	case AFInet6:
		return FDIPv6
	case AFUnix:
		return FDUnix
	case AFNetlink:
		return FDNetlink
	}
	return FDUnknown
}

// Protocol values for network events (IPPROTO_* numbers).
const (
	ProtoUnknown = 0
	ProtoTCP     = 6
	ProtoUDP     = 17
	ProtoICMP    = 1
	ProtoRaw     = 255
)

// Flags carried in Event.Flags2 (driftwatch's own bits, not kernel flags).
const (
	// FlagArgvTruncated: argv was longer than the sensor's bound.
	FlagArgvTruncated uint32 = 1 << iota
	// FlagExeUpperLayer: the executable lives on an overlayfs upper layer.
	FlagExeUpperLayer
	// FlagExeMemfd: the executable is a memfd (fileless execution).
	FlagExeMemfd
	// FlagPathTruncated: Path or Path2 was cut at the sensor's bound.
	FlagPathTruncated
	// FlagThread: a fork that created a thread, not a process.
	FlagThread
	// FlagExeUnknown: the exe facts (inode, times, layer) could not be read.
	FlagExeUnknown
	// FlagRealPathTruncated: RealPath (or, for an exec, Exe) was longer
	// than PATH_MAX; the value keeps its last bytes.
	FlagRealPathTruncated
	// FlagFileFacts: FileType, FileIno and FileDev were read from the
	// kernel's file object of the descriptor at the event.
	FlagFileFacts
	// FlagEnvTruncated: Env was longer than the sensor's bound (4 KiB).
	FlagEnvTruncated
	// FlagIOURing: an open done by an io_uring request (IORING_OP_OPENAT,
	// IORING_OP_OPENAT2), not a system call; reported at its completion,
	// Path is the kernel's path of the file (the string passed is gone).
	FlagIOURing
	// FlagIOURingFixed: with FlagIOURing, the file went to the ring's
	// fixed-file table, not the descriptor table: Ret is its index there.
	FlagIOURingFixed
)

// Event is one kernel event. It is a plain value: decoding into an existing
// Event reuses its byte slices and allocates nothing in steady state.
type Event struct {
	Kind Kind
	// Syscall is the x86_64 system call number (see SyscallName) for
	// KindSyscall; for lifecycle kinds it is the closest syscall (execve,
	// clone, exit_group) so evt.type can be derived uniformly.
	Syscall uint16
	// CPU the event was seen on (0 when unknown).
	CPU uint16
	// Time is wall-clock nanoseconds since the Unix epoch.
	Time int64
	// Num is a per-source sequence number (evt.num), starting at 1.
	Num uint64

	// Task identity and credentials at the event.
	Pid      uint32 // thread group id (Falco proc.pid)
	Tid      uint32 // thread id (Falco thread.tid)
	Ppid     uint32 // parent's thread group id
	Uid      uint32
	Gid      uint32
	Euid     uint32
	Egid     uint32
	LoginUID uint32 // 0xffffffff when unset
	CgroupID uint64 // bpf_get_current_cgroup_id(): inode of the cgroup v2 dir
	PidNS    uint32 // pid namespace inode
	MntNS    uint32 // mount namespace inode
	Tty      uint32 // controlling tty device number, 0 when none
	CapEff   uint64 // effective capabilities
	Comm     [16]byte

	// Ret is the syscall's return value (negative errno on failure); 0 for
	// lifecycle events; for KindExit the exit code (wait status).
	Ret int64

	// Raw holds the syscall's six raw argument registers as captured at entry.
	Raw [6]uint64

	// Decoded arguments. Which are meaningful depends on Syscall.
	Fd    int32  // fd argument (openat dirfd, connect/accept/bind/listen/dup old fd, sendto fd ...)
	Fd2   int32  // second fd (dup2/dup3 new fd; accept's returned fd is Ret)
	Flags uint32 // open flags, socket type, clone flags, memfd flags, mount flags, unshare/setns flags, ptrace request, renameat2 flags
	Mode  uint32 // file mode (open, mkdir, chmod), socket protocol, setuid target uid, listen backlog
	Arg3  uint64 // extra scalar argument: ptrace pid, setres*id third id, capset effective caps, setns nstype ...

	// Path is the first path argument (open, exec, unlink, mkdir, chmod, mount
	// source, symlink target, link/rename old path, memfd name).
	Path []byte
	// Path2 is the second path argument (symlink/link/rename new path, mount target).
	Path2 []byte
	// RealPath is the kernel's own absolute path of the file a successful
	// open/openat/openat2/creat opened, resolved from the file's dentry
	// and mount (symlinks, "..", dirfds, /proc/self/root and chroots are
	// already followed); empty for other events. See docs/sensor.md.
	RealPath []byte

	// Descriptor facts read from the kernel's file object at the event
	// (FlagFileFacts): for an open the new descriptor, for dup*/fcntl
	// F_DUPFD the new descriptor, for socket syscalls the socket, for
	// fchmod/fchdir the descriptor argument, for an exec the executable.
	FileType FDType
	FileIno  uint64
	FileDev  uint32 // stat(2) encoding

	// Network tuple for socket syscalls. For connect/sendto/sendmsg Dst is the
	// peer and Src the local end when known; for accept Src is the remote
	// client and Dst the local (server) end; for bind/listen Src is local.
	Family   uint16
	Proto    uint8
	SockType uint8
	Src      netip.AddrPort
	Dst      netip.AddrPort
	// UnixPath is the socket path for AF_UNIX addresses.
	UnixPath []byte

	// Exec facts (KindExec; the new image), also filled for KindFork from
	// the parent's image when the sensor can read it.
	Exe      []byte // full exe path
	Argv     []byte // NUL-separated argv
	Cwd      []byte
	ExeIno   uint64
	ExeDev   uint32
	ExeCtime int64 // ns since epoch
	ExeMtime int64 // ns since epoch
	// ChildPid / ChildTid are the new task's ids for KindFork.
	ChildPid uint32
	ChildTid uint32

	// Flags2 holds driftwatch's own Flag* bits.
	Flags2 uint32

	// Ids of the task in its own pid namespace, as getpid, gettid and
	// getpgrp return inside it (KindExec: the task; KindFork: the child,
	// like ChildPid). VPgid is 0 when the process group is outside the
	// namespace; all are 0 when not captured (other kinds, older traces).
	VPid  uint32
	VTid  uint32
	VPgid uint32
	// CapPrm and CapInh are the permitted and inheritable capability sets
	// (KindExec: after the exec; KindFork: the child's).
	CapPrm uint64
	CapInh uint64
	// Env is the new image's environment at exec (KindExec),
	// NUL-separated as the kernel keeps it, up to 4 KiB (FlagEnvTruncated).
	Env []byte
}

// Reset clears the event but keeps its byte slices' capacity for reuse.
func (e *Event) Reset() {
	path, path2, up, exe, argv, cwd, rp, env := e.Path[:0], e.Path2[:0], e.UnixPath[:0], e.Exe[:0], e.Argv[:0], e.Cwd[:0], e.RealPath[:0], e.Env[:0]
	*e = Event{}
	e.Path, e.Path2, e.UnixPath, e.Exe, e.Argv, e.Cwd, e.RealPath, e.Env = path, path2, up, exe, argv, cwd, rp, env
}

// Clone returns a deep copy whose slices do not alias e's.
func (e *Event) Clone() *Event {
	c := *e
	c.Path = cloneBytes(e.Path)
	c.Path2 = cloneBytes(e.Path2)
	c.UnixPath = cloneBytes(e.UnixPath)
	c.Exe = cloneBytes(e.Exe)
	c.Argv = cloneBytes(e.Argv)
	c.Cwd = cloneBytes(e.Cwd)
	c.RealPath = cloneBytes(e.RealPath)
	c.Env = cloneBytes(e.Env)
	return &c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// CommString returns the comm as a string (up to the first NUL).
func (e *Event) CommString() string {
	for i, c := range e.Comm {
		if c == 0 {
			return string(e.Comm[:i])
		}
	}
	return string(e.Comm[:])
}

// SetComm stores s (truncated to 15 bytes) in Comm.
func (e *Event) SetComm(s string) {
	e.Comm = [16]byte{}
	copy(e.Comm[:15], s)
}

// Type returns Falco's evt.type for the event: the syscall name, or
// execve/clone/procexit for lifecycle events.
func (e *Event) Type() string {
	switch e.Kind {
	case KindExec:
		return "execve"
	case KindFork:
		return "clone"
	case KindExit:
		return "procexit"
	}
	return SyscallName(e.Syscall)
}

// Failed reports whether a syscall event returned an error.
func (e *Event) Failed() bool { return e.Kind == KindSyscall && e.Ret < 0 }

// ArgvStrings splits the NUL-separated argv into strings (allocates).
func (e *Event) ArgvStrings() []string { return SplitNul(e.Argv) }

// SplitNul splits a NUL-separated byte string into strings, ignoring one
// trailing NUL.
func SplitNul(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return append(out, string(b[start:]))
}

// Source yields events one at a time: the live sensor, a trace file or a
// dataset reader. Next decodes the next event into ev (reusing its buffers)
// and returns io.EOF at the end.
type Source interface {
	Next(ev *Event) error
}

// SnapshotSource is a Source that can also report the process snapshot taken
// at its start (the live /proc scan, or the one stored in a trace) and the
// containers it knows. Replay uses it to rebuild ancestry for processes older
// than the capture.
type SnapshotSource interface {
	Source
	Snapshot() *Snapshot
}

// UpdateNotifier is implemented by sources that carry cgroup and container
// updates mid-stream (a trace records cgroups that appeared during the
// capture): the pipeline registers handlers before reading events.
type UpdateNotifier interface {
	SetUpdateHandlers(onCgroup func(id uint64, path string), onContainer func(info ContainerInfo))
}

// Snapshot is the process and container context at the start of a capture.
type Snapshot struct {
	// Time the snapshot was taken, ns since epoch.
	Time int64
	// BootTime is the wall-clock time of boot in ns, for converting
	// monotonic process start times.
	BootTime int64
	// Hostname of the machine the capture ran on.
	Hostname   string
	Processes  []ProcessInfo
	Containers []ContainerInfo
	// Cgroups maps cgroup v2 ids (directory inodes) to their paths relative
	// to the cgroup v2 mount, so a replay can attribute containers.
	Cgroups map[uint64]string
}

// ProcessInfo is one process as seen in /proc at snapshot time.
type ProcessInfo struct {
	Pid       uint32   `json:"pid"`
	Ppid      uint32   `json:"ppid"`
	StartTime int64    `json:"start_time"` // ns since epoch
	Comm      string   `json:"comm"`
	Exe       string   `json:"exe"`
	Args      []string `json:"args"`
	Cwd       string   `json:"cwd"`
	Uid       uint32   `json:"uid"`
	Gid       uint32   `json:"gid"`
	Euid      uint32   `json:"euid"`
	LoginUID  uint32   `json:"loginuid"`
	Tty       uint32   `json:"tty"`
	CapEff    uint64   `json:"cap_eff"`
	CgroupID  uint64   `json:"cgroup_id"`
	PidNS     uint32   `json:"pidns"`
	MntNS     uint32   `json:"mntns"`
	ExeIno    uint64   `json:"exe_ino"`
	// VPid and VPgid are the pid and process group id in the process's
	// own pid namespace (last of /proc/PID/status NSpid and NSpgid; 0 when
	// unknown), CapPrm and CapInh its permitted and inheritable sets.
	VPid   uint32 `json:"vpid,omitempty"`
	VPgid  uint32 `json:"vpgid,omitempty"`
	CapPrm uint64 `json:"cap_prm,omitempty"`
	CapInh uint64 `json:"cap_inh,omitempty"`
	// FDs open at snapshot time (fd → description), best effort.
	FDs []FDInfo `json:"fds,omitempty"`
}

// FDInfo describes one open file descriptor in a snapshot.
type FDInfo struct {
	Num  int32  `json:"num"`
	Type FDType `json:"type"`
	Name string `json:"name"`
}

// ContainerInfo is what is known about a container: from the cgroup path,
// the CRI or the Kubernetes API.
type ContainerInfo struct {
	ID          string            `json:"id"`
	Name        string            `json:"name,omitempty"`
	Image       string            `json:"image,omitempty"`      // as configured, repo:tag
	ImageRepo   string            `json:"image_repo,omitempty"` // repository without tag
	ImageTag    string            `json:"image_tag,omitempty"`
	ImageDigest string            `json:"image_digest,omitempty"` // sha256:...
	PodName     string            `json:"pod,omitempty"`
	PodUID      string            `json:"pod_uid,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Privileged  bool              `json:"privileged,omitempty"`
	StartTime   int64             `json:"start_ts,omitempty"` // ns since epoch
	CgroupID    uint64            `json:"cgroup_id,omitempty"`
	CgroupPath  string            `json:"cgroup_path,omitempty"`
	Runtime     string            `json:"runtime,omitempty"` // docker, containerd, cri-o, podman, ...
	// Mounts are the container's mounts as its runtime reported them
	// (the CRI's ContainerStatus); nil when no runtime metadata gave
	// them (e.g. a container known only from its cgroup, as with runc),
	// empty when the runtime reported none.
	Mounts []Mount `json:"mounts,omitempty"`
}

// Mount is one mount of a container (Falco's container.mount* fields).
type Mount struct {
	Source      string `json:"source"`         // host path
	Dest        string `json:"dest"`           // path in the container
	Mode        string `json:"mode,omitempty"` // runtime mount mode; empty from the CRI
	RW          bool   `json:"rw"`
	Propagation string `json:"propagation,omitempty"` // private, rslave, rshared
}

// HostContainerID is the container id of host processes.
const HostContainerID = "host"
