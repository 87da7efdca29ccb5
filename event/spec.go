package event

// The syscall table: what driftwatch knows about each system call it
// handles, written once. Its Falco name, its arguments with their Falco
// names and types, the Event field that holds each, how each prints, what
// the call does to the process table's descriptors and which profile
// feature it yields. The renderers (event/format, the rules' evt.arg.*),
// the process table, the profiler, the dataset readers and the sensor's
// list of decoded syscalls read it; none of them switches on syscall
// numbers for these facts. Adding a syscall: see docs/sensor.md.

// ArgType is what an argument means; it picks the rendering of names
// (open flags, chmod modes, address families) and the typed accessors.
type ArgType uint8

// Argument types.
const (
	ArgInt       ArgType = iota // a plain number
	ArgErrno                    // res: the return value, a negative errno on failure
	ArgFD                       // a file descriptor number
	ArgPath                     // a path as the process passed it
	ArgOpenFlags                // open(2) flags (O_RDONLY|O_CLOEXEC)
	ArgFlags                    // other flag bits, printed as a number
	ArgFileMode                 // the mode of a file being created (open, creat, mkdir)
	ArgChmodMode                // the mode chmod sets (S_IRUSR|S_ISUID)
	ArgUID                      // a user id
	ArgGID                      // a group id
	ArgFamily                   // a socket address family (AF_INET)
	ArgSockType                 // socket(2) type with its SOCK_* flags
	ArgProto                    // a socket protocol (IPPROTO_*)
	ArgBacklog                  // listen(2) backlog
	ArgPtraceReq                // a ptrace request (PTRACE_ATTACH)
	ArgPid                      // a process id
	ArgCaps                     // a capability mask
	ArgNSType                   // a namespace type mask (CLONE_NEW*)
	ArgBpfCmd                   // a bpf(2) command (BPF_PROG_LOAD)
	ArgTuple                    // a socket's endpoints, from the fd record
	ArgExe                      // the executable as argv[0] named it (process record)
	ArgArgs                     // the arguments (process record)
)

// Slot names the Event field an argument is read from.
type Slot uint8

// Event fields an argument can live in.
const (
	SlotNone     Slot = iota // not in the Event itself (from the process or fd record)
	SlotRet                  // Ret
	SlotFd                   // Fd
	SlotFd2                  // Fd2
	SlotFlags                // Flags
	SlotMode                 // Mode
	SlotArg3                 // Arg3
	SlotPath                 // Path
	SlotPath2                // Path2
	SlotRaw0                 // Raw[0] as a 32-bit signed value (uid_t/gid_t, -1 = unchanged)
	SlotRaw1                 // Raw[1], likewise
	SlotRaw2                 // Raw[2], likewise
	SlotFamily               // Family, or Raw[0] when the sensor left Family 0
	SlotChildPid             // ChildPid
	SlotChildTid             // ChildTid
)

// Print is how an argument's number is written in the text format.
type Print uint8

// Print formats (JSON always writes the number).
const (
	Dec Print = iota
	Hex
	Oct
)

// Arg is one argument of a syscall, in Falco's exit-event order.
type Arg struct {
	Name  string  // Falco's evt.arg name
	Type  ArgType // what it means
	From  Slot    // where the Event holds it
	Print Print   // text rendering of a number
	// EvtFD: the descriptor the event acts on or creates, which the
	// formats show as fd.num rather than as an argument.
	EvtFD bool
	// Enter: a parameter of Falco's enter event, not of the exit event
	// evt.args and evt.arg[N] follow; evt.arg.NAME still answers it.
	Enter bool
}

// FDEffect is what a syscall does to the process's descriptor table.
type FDEffect uint8

// Descriptor effects.
const (
	EffNone    FDEffect = iota
	EffOpen             // creates a file descriptor (Ret) for Path / RealPath
	EffMemfd            // creates a memfd descriptor
	EffSocket           // creates a socket descriptor
	EffConnect          // connects the socket Fd to Dst
	EffAccept           // creates a connected socket (Ret) from the listening Fd
	EffBind             // binds the socket Fd to Src
	EffListen           // marks the socket Fd listening
	EffSend             // sends on Fd, maybe to Dst (unconnected sockets)
	EffDup              // duplicates Fd as Ret
	EffClose            // closes Fd
	EffChdir            // changes the cwd to Path
	EffFchdir           // changes the cwd to the directory of Fd
	EffUse              // acts on the existing descriptor Fd
)

// Feature is the profile feature a syscall yields (see profiler).
type Feature uint8

// Profile features.
const (
	FeatNone    Feature = iota
	FeatOpen            // file: Path (or the fd's name), access from the open flags
	FeatDelete          // file: Path deleted
	FeatRename          // file: Path deleted, Path2 written
	FeatMkdir           // file: Path created
	FeatExec            // file: Path executed
	FeatNetwork         // network: the peer Dst
	FeatBind            // listen: the local end Src [bind]
	FeatListen          // listen: the local end [listen]
	FeatAccept          // listen: the local end Dst [accept]
	FeatSetuid          // privilege setuid uid=UID()
	FeatSetgid          // privilege setgid gid=GID()
	FeatCapset          // privilege capset: the effective mask
	FeatPtrace          // privilege ptrace: the request
	FeatModule          // privilege module_load
	FeatMount           // privilege mount: the target
	FeatUmount          // privilege umount: the target
	FeatUnshare         // privilege unshare: the flags
	FeatSetns           // privilege setns: the type
	FeatMemfd           // privilege memfd_create: the name
)

// Spec is one syscall's row.
type Spec struct {
	Nr      uint16 // x86_64 number, filled from Name (syscalls_table.go)
	Name    string // Falco's evt.type, which is the kernel's syscall name
	Args    []Arg
	FD      FDEffect
	Feature Feature
	// Sensor: decoded by bpf/sensor.bpf.c's sys_exit switch.
	Sensor bool
	// Reported: driftwatch reports events of this type, from the sensor
	// (syscalls, or lifecycle events under this name) or from traces; a
	// rule that matches only types not reported cannot fire.
	Reported bool
}

// ArgByName returns the argument named name, or nil.
func (s *Spec) ArgByName(name string) *Arg {
	if s == nil {
		return nil
	}
	for i := range s.Args {
		if s.Args[i].Name == name {
			return &s.Args[i]
		}
	}
	return nil
}

// argOfType returns the first argument of type t, or nil.
func (s *Spec) argOfType(t ArgType) *Arg {
	if s == nil {
		return nil
	}
	for i := range s.Args {
		if s.Args[i].Type == t {
			return &s.Args[i]
		}
	}
	return nil
}

// Argument lists shared by several rows.
var (
	res        = Arg{Name: "res", Type: ArgErrno, From: SlotRet}
	openArgs   = []Arg{{Name: "fd", Type: ArgFD, From: SlotRet, EvtFD: true}, {Name: "name", Type: ArgPath, From: SlotPath}, {Name: "flags", Type: ArgOpenFlags, From: SlotFlags, Print: Hex}, {Name: "mode", Type: ArgFileMode, From: SlotMode, Print: Oct}}
	openatArgs = []Arg{{Name: "fd", Type: ArgFD, From: SlotRet, EvtFD: true}, {Name: "dirfd", Type: ArgFD, From: SlotFd}, {Name: "name", Type: ArgPath, From: SlotPath}, {Name: "flags", Type: ArgOpenFlags, From: SlotFlags, Print: Hex}, {Name: "mode", Type: ArgFileMode, From: SlotMode, Print: Oct}}
	execArgs   = []Arg{res, {Name: "exe", Type: ArgExe}, {Name: "args", Type: ArgArgs}, {Name: "filename", Type: ArgPath, From: SlotPath, Enter: true}}
	twoPaths   = []Arg{res, {Name: "oldpath", Type: ArgPath, From: SlotPath}, {Name: "newpath", Type: ArgPath, From: SlotPath2}}
	symlinks   = []Arg{res, {Name: "target", Type: ArgPath, From: SlotPath}, {Name: "linkpath", Type: ArgPath, From: SlotPath2}}
	acceptArg  = []Arg{{Name: "fd", Type: ArgFD, From: SlotRet, EvtFD: true}, {Name: "tuple", Type: ArgTuple}}
	sendArgs   = []Arg{res, {Name: "fd", Type: ArgFD, From: SlotFd, EvtFD: true}, {Name: "tuple", Type: ArgTuple}}
	chmodArgs  = []Arg{res, {Name: "filename", Type: ArgPath, From: SlotPath}, {Name: "mode", Type: ArgChmodMode, From: SlotMode, Print: Oct}}
	mkdirArgs  = []Arg{res, {Name: "path", Type: ArgPath, From: SlotPath}, {Name: "mode", Type: ArgFileMode, From: SlotMode, Print: Hex}}
	fdOnly     = []Arg{res, {Name: "fd", Type: ArgFD, From: SlotFd, EvtFD: true}}
	moduleArg  = []Arg{res, {Name: "name", Type: ArgPath, From: SlotPath, Enter: true}}
)

// specs is the table. Rows follow Falco's event table (driver/event_table.c)
// for names and order; Slot says where driftwatch's record keeps each value.
var specs = []Spec{
	{Name: "open", Args: openArgs, FD: EffOpen, Feature: FeatOpen, Sensor: true, Reported: true},
	// creat is open(O_CREAT|O_WRONLY|O_TRUNC): the sensor fills Flags so.
	{Name: "creat", Args: openArgs, FD: EffOpen, Feature: FeatOpen, Sensor: true, Reported: true},
	{Name: "openat", Args: openatArgs, FD: EffOpen, Feature: FeatOpen, Sensor: true, Reported: true},
	{Name: "openat2", Args: openatArgs, FD: EffOpen, Feature: FeatOpen, Sensor: true, Reported: true},
	{Name: "open_by_handle_at", Args: []Arg{{Name: "fd", Type: ArgFD, From: SlotRet, EvtFD: true}, {Name: "mountfd", Type: ArgFD, From: SlotFd}, {Name: "flags", Type: ArgOpenFlags, From: SlotFlags, Print: Hex}, {Name: "path", Type: ArgPath, From: SlotPath}},
		FD: EffOpen, Sensor: true, Reported: true},
	{Name: "execve", Args: execArgs, Feature: FeatExec, Sensor: true, Reported: true},
	{Name: "execveat", Args: execArgs, Feature: FeatExec, Sensor: true, Reported: true},
	{Name: "socket", Args: []Arg{{Name: "fd", Type: ArgFD, From: SlotRet, EvtFD: true}, {Name: "domain", Type: ArgFamily, From: SlotFamily}, {Name: "type", Type: ArgSockType, From: SlotFlags}, {Name: "proto", Type: ArgProto, From: SlotMode}},
		FD: EffSocket, Sensor: true, Reported: true},
	{Name: "connect", Args: []Arg{res, {Name: "tuple", Type: ArgTuple}, {Name: "fd", Type: ArgFD, From: SlotFd, EvtFD: true}}, FD: EffConnect, Feature: FeatNetwork, Sensor: true, Reported: true},
	{Name: "accept", Args: acceptArg, FD: EffAccept, Feature: FeatAccept, Sensor: true, Reported: true},
	{Name: "accept4", Args: acceptArg, FD: EffAccept, Feature: FeatAccept, Sensor: true, Reported: true},
	{Name: "bind", Args: []Arg{res, {Name: "addr", Type: ArgTuple}, {Name: "fd", Type: ArgFD, From: SlotFd, EvtFD: true}}, FD: EffBind, Feature: FeatBind, Sensor: true, Reported: true},
	{Name: "listen", Args: []Arg{res, {Name: "fd", Type: ArgFD, From: SlotFd, EvtFD: true}, {Name: "backlog", Type: ArgBacklog, From: SlotMode}}, FD: EffListen, Feature: FeatListen, Sensor: true, Reported: true},
	{Name: "sendto", Args: sendArgs, FD: EffSend, Feature: FeatNetwork, Sensor: true, Reported: true},
	{Name: "sendmsg", Args: sendArgs, FD: EffSend, Feature: FeatNetwork, Sensor: true, Reported: true},
	{Name: "ptrace", Args: []Arg{res, {Name: "request", Type: ArgPtraceReq, From: SlotFlags}, {Name: "pid", Type: ArgPid, From: SlotArg3}}, Feature: FeatPtrace, Sensor: true, Reported: true},
	{Name: "setuid", Args: []Arg{res, {Name: "uid", Type: ArgUID, From: SlotMode}}, Feature: FeatSetuid, Sensor: true, Reported: true},
	{Name: "setgid", Args: []Arg{res, {Name: "gid", Type: ArgGID, From: SlotMode}}, Feature: FeatSetgid, Sensor: true, Reported: true},
	{Name: "setresuid", Args: []Arg{res, {Name: "ruid", Type: ArgUID, From: SlotRaw0}, {Name: "euid", Type: ArgUID, From: SlotRaw1}, {Name: "suid", Type: ArgUID, From: SlotRaw2}}, Feature: FeatSetuid, Sensor: true, Reported: true},
	{Name: "setresgid", Args: []Arg{res, {Name: "rgid", Type: ArgGID, From: SlotRaw0}, {Name: "egid", Type: ArgGID, From: SlotRaw1}, {Name: "sgid", Type: ArgGID, From: SlotRaw2}}, Feature: FeatSetgid, Sensor: true, Reported: true},
	// setreuid/setregid: not decoded by the sensor; dataset traces carry them.
	{Name: "setreuid", Args: []Arg{res, {Name: "ruid", Type: ArgUID, From: SlotRaw0}, {Name: "euid", Type: ArgUID, From: SlotRaw1}}, Feature: FeatSetuid},
	{Name: "setregid", Args: []Arg{res, {Name: "rgid", Type: ArgGID, From: SlotRaw0}, {Name: "egid", Type: ArgGID, From: SlotRaw1}}, Feature: FeatSetgid},
	{Name: "capset", Args: []Arg{res, {Name: "cap_effective", Type: ArgCaps, From: SlotArg3, Print: Hex}}, Feature: FeatCapset, Sensor: true, Reported: true},
	{Name: "symlink", Args: symlinks, Sensor: true, Reported: true},
	{Name: "symlinkat", Args: symlinks, Sensor: true, Reported: true},
	{Name: "link", Args: twoPaths, Sensor: true, Reported: true},
	{Name: "linkat", Args: twoPaths, Sensor: true, Reported: true},
	{Name: "rename", Args: twoPaths, Feature: FeatRename, Sensor: true, Reported: true},
	{Name: "renameat", Args: twoPaths, Feature: FeatRename, Sensor: true, Reported: true},
	{Name: "renameat2", Args: twoPaths, Feature: FeatRename, Sensor: true, Reported: true},
	{Name: "unlink", Args: []Arg{res, {Name: "path", Type: ArgPath, From: SlotPath}}, Feature: FeatDelete, Sensor: true, Reported: true},
	{Name: "unlinkat", Args: []Arg{res, {Name: "dirfd", Type: ArgFD, From: SlotFd}, {Name: "name", Type: ArgPath, From: SlotPath}, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex}}, Feature: FeatDelete, Sensor: true, Reported: true},
	{Name: "rmdir", Args: []Arg{res, {Name: "path", Type: ArgPath, From: SlotPath}}, Feature: FeatDelete},
	{Name: "mkdir", Args: mkdirArgs, Feature: FeatMkdir, Sensor: true, Reported: true},
	{Name: "mkdirat", Args: []Arg{res, {Name: "dirfd", Type: ArgFD, From: SlotFd}, {Name: "path", Type: ArgPath, From: SlotPath}, {Name: "mode", Type: ArgFileMode, From: SlotMode, Print: Hex}}, Feature: FeatMkdir, Sensor: true, Reported: true},
	{Name: "chmod", Args: chmodArgs, Sensor: true, Reported: true},
	{Name: "fchmod", Args: []Arg{res, {Name: "fd", Type: ArgFD, From: SlotFd, EvtFD: true}, {Name: "mode", Type: ArgChmodMode, From: SlotMode, Print: Oct}}, FD: EffUse, Sensor: true, Reported: true},
	{Name: "fchmodat", Args: []Arg{res, {Name: "dirfd", Type: ArgFD, From: SlotFd}, {Name: "filename", Type: ArgPath, From: SlotPath}, {Name: "mode", Type: ArgChmodMode, From: SlotMode, Print: Oct}}, Sensor: true, Reported: true},
	{Name: "fchmodat2", Args: []Arg{res, {Name: "dirfd", Type: ArgFD, From: SlotFd}, {Name: "filename", Type: ArgPath, From: SlotPath}, {Name: "mode", Type: ArgChmodMode, From: SlotMode, Print: Oct}, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex}}, Sensor: true, Reported: true},
	{Name: "dup", Args: []Arg{res, {Name: "oldfd", Type: ArgFD, From: SlotFd}, {Name: "newfd", Type: ArgFD, From: SlotRet}}, FD: EffDup, Sensor: true, Reported: true},
	{Name: "dup2", Args: []Arg{res, {Name: "oldfd", Type: ArgFD, From: SlotFd}, {Name: "newfd", Type: ArgFD, From: SlotFd2}}, FD: EffDup, Sensor: true, Reported: true},
	{Name: "dup3", Args: []Arg{res, {Name: "oldfd", Type: ArgFD, From: SlotFd}, {Name: "newfd", Type: ArgFD, From: SlotFd2}, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex}}, FD: EffDup, Sensor: true, Reported: true},
	// fcntl: the sensor reports F_DUPFD and F_DUPFD_CLOEXEC only.
	{Name: "fcntl", Args: []Arg{res, {Name: "fd", Type: ArgFD, From: SlotFd, EvtFD: true}, {Name: "cmd", Type: ArgInt, From: SlotFlags}}, FD: EffDup, Sensor: true, Reported: true},
	{Name: "close", Args: fdOnly, FD: EffClose, Reported: true},
	{Name: "read", Args: fdOnly, FD: EffUse, Reported: true},
	{Name: "write", Args: fdOnly, FD: EffUse, Reported: true},
	{Name: "chdir", Args: []Arg{res, {Name: "path", Type: ArgPath, From: SlotPath}}, FD: EffChdir, Sensor: true, Reported: true},
	{Name: "fchdir", Args: fdOnly, FD: EffFchdir, Sensor: true, Reported: true},
	{Name: "init_module", Args: moduleArg, Feature: FeatModule, Sensor: true, Reported: true},
	{Name: "finit_module", Args: moduleArg, Feature: FeatModule, Sensor: true, Reported: true},
	{Name: "memfd_create", Args: []Arg{{Name: "fd", Type: ArgFD, From: SlotRet, EvtFD: true}, {Name: "name", Type: ArgPath, From: SlotPath}, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex}}, FD: EffMemfd, Feature: FeatMemfd, Sensor: true, Reported: true},
	{Name: "mount", Args: []Arg{res, {Name: "dev", Type: ArgPath, From: SlotPath}, {Name: "dir", Type: ArgPath, From: SlotPath2}, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex, Enter: true}}, Feature: FeatMount, Sensor: true, Reported: true},
	{Name: "umount2", Args: []Arg{res, {Name: "name", Type: ArgPath, From: SlotPath}}, Feature: FeatUmount, Sensor: true, Reported: true},
	{Name: "unshare", Args: []Arg{res, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex}}, Feature: FeatUnshare, Sensor: true, Reported: true},
	{Name: "setns", Args: []Arg{res, {Name: "fd", Type: ArgFD, From: SlotFd}, {Name: "nstype", Type: ArgNSType, From: SlotArg3, Print: Hex}}, Feature: FeatSetns, Sensor: true, Reported: true},
	// bpf: Ret is the new descriptor (maps, programs, links) or 0, cmd the
	// command, rendered by name (BPF_PROG_LOAD).
	{Name: "bpf", Args: []Arg{{Name: "res_or_fd", Type: ArgErrno, From: SlotRet}, {Name: "cmd", Type: ArgBpfCmd, From: SlotRaw0}}, Sensor: true, Reported: true},
	{Name: "userfaultfd", Args: []Arg{res, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex}}, Sensor: true, Reported: true},
	// Lifecycle: the sensor reports these as KindFork / KindExit events
	// from scheduler tracepoints, not from sys_exit.
	{Name: "clone", Reported: true},
	{Name: "clone3", Reported: true},
	{Name: "fork", Reported: true},
	{Name: "vfork", Reported: true},
	{Name: "exit", Reported: true},
	{Name: "exit_group", Reported: true},
}

// Rows for lifecycle kinds, which have their own evt.type.
var (
	specExec = Spec{Name: "execve", Args: []Arg{res, {Name: "exe", Type: ArgExe}, {Name: "args", Type: ArgArgs}, {Name: "tid", Type: ArgPid}, {Name: "pid", Type: ArgPid}, {Name: "ptid", Type: ArgPid}, {Name: "cwd", Type: ArgPath}}}
	specFork = Spec{Name: "clone", Args: []Arg{res, {Name: "exe", Type: ArgExe}, {Name: "args", Type: ArgArgs},
		{Name: "child_pid", Type: ArgPid, From: SlotChildPid, Enter: true}, {Name: "child_tid", Type: ArgPid, From: SlotChildTid, Enter: true}, {Name: "flags", Type: ArgFlags, From: SlotFlags, Print: Hex, Enter: true}}}
	specExit = Spec{Name: "procexit", Args: []Arg{{Name: "status", Type: ArgInt, From: SlotRet}}}
)

// maxNr bounds the syscall numbers of the table's index.
const maxNr = 512

// specIndex maps syscall numbers to rows. Building it fills each row's
// Nr from its name (the UAPI table generated into syscalls_table.go), so
// a row names its syscall once.
var specIndex = func() (idx [maxNr]*Spec) {
	for i := range specs {
		s := &specs[i]
		nr, ok := SyscallNumber(s.Name)
		if !ok || int(nr) >= maxNr || idx[nr] != nil {
			panic("event: syscall table row " + s.Name + ": unknown or duplicate syscall")
		}
		s.Nr = nr
		idx[nr] = s
	}
	return idx
}()

// SpecOf returns the row of syscall nr, or nil when the table has none.
func SpecOf(nr uint16) *Spec {
	if int(nr) < maxNr {
		return specIndex[nr]
	}
	return nil
}

// Specs returns every syscall row, in table order. The rows are shared:
// callers must not modify them.
func Specs() []Spec {
	_ = specIndex // rows' Nr are filled when the index is built
	return specs
}

// Spec returns the row describing the event: the syscall's, or the
// lifecycle kind's (execve, clone, procexit). Nil for a syscall the table
// does not describe.
func (e *Event) Spec() *Spec {
	switch e.Kind {
	case KindExec:
		return &specExec
	case KindFork:
		return &specFork
	case KindExit:
		return &specExit
	}
	return SpecOf(e.Syscall)
}

// SlotInt returns the number in slot s (0 for non-numeric slots).
func (e *Event) SlotInt(s Slot) int64 {
	switch s {
	case SlotRet:
		return e.Ret
	case SlotFd:
		return int64(e.Fd)
	case SlotFd2:
		return int64(e.Fd2)
	case SlotFlags:
		return int64(e.Flags)
	case SlotMode:
		return int64(e.Mode)
	case SlotArg3:
		return int64(e.Arg3)
	case SlotRaw0, SlotRaw1, SlotRaw2:
		return int64(int32(e.Raw[s-SlotRaw0]))
	case SlotFamily:
		if e.Family == 0 {
			return int64(e.Raw[0])
		}
		return int64(e.Family)
	case SlotChildPid:
		return int64(e.ChildPid)
	case SlotChildTid:
		return int64(e.ChildTid)
	}
	return 0
}

// SlotBytes returns the bytes in slot s (nil for numeric slots).
func (e *Event) SlotBytes(s Slot) []byte {
	switch s {
	case SlotPath:
		return e.Path
	case SlotPath2:
		return e.Path2
	}
	return nil
}

// typed returns the value of the event's first argument of type t.
func (e *Event) typed(t ArgType) (int64, bool) {
	if e.Kind != KindSyscall {
		return 0, false
	}
	a := SpecOf(e.Syscall).argOfType(t)
	if a == nil {
		return 0, false
	}
	return e.SlotInt(a.From), true
}

// FileMode returns the mode a file is created with (open, creat, mkdir)
// or set to (chmod family); false for other syscalls.
func (e *Event) FileMode() (uint32, bool) {
	if v, ok := e.typed(ArgFileMode); ok {
		return uint32(v), true
	}
	v, ok := e.typed(ArgChmodMode)
	return uint32(v), ok
}

// SocketProto returns socket(2)'s protocol argument; false for other syscalls.
func (e *Event) SocketProto() (uint8, bool) {
	v, ok := e.typed(ArgProto)
	return uint8(v), ok
}

// Backlog returns listen(2)'s backlog; false for other syscalls.
func (e *Event) Backlog() (int32, bool) {
	v, ok := e.typed(ArgBacklog)
	return int32(v), ok
}

// UID returns the (first) user id a setuid-family call sets; false for
// other syscalls.
func (e *Event) UID() (uint32, bool) {
	v, ok := e.typed(ArgUID)
	return uint32(v), ok
}

// GID returns the (first) group id a setgid-family call sets; false for
// other syscalls.
func (e *Event) GID() (uint32, bool) {
	v, ok := e.typed(ArgGID)
	return uint32(v), ok
}
