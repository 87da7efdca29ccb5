package rules

// Symbolic names Falco renders for syscall arguments and results.

var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// appendCaps renders a capability mask as Falco does: names separated by spaces.
func appendCaps(b []byte, mask uint64) []byte {
	first := true
	for i, n := range capNames {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		b = append(b, n...)
	}
	return b
}

// Linux x86_64 open(2) flags.
const (
	oWronly    = 0x1
	oRdwr      = 0x2
	oAccmode   = 0x3
	oCreat     = 0x40
	oExcl      = 0x80
	oNoctty    = 0x100
	oTrunc     = 0x200
	oAppend    = 0x400
	oNonblock  = 0x800
	oDsync     = 0x1000
	oAsync     = 0x2000
	oDirect    = 0x4000
	oLargefile = 0x8000
	oDirectory = 0x10000
	oNofollow  = 0x20000
	oNoatime   = 0x40000
	oCloexec   = 0x80000
	oSyncBit   = 0x100000
	oPath      = 0x200000
	oTmpBit    = 0x400000
)

var openFlagNames = []struct {
	bit  uint32
	name string
}{
	{oCreat, "O_CREAT"}, {oExcl, "O_EXCL"}, {oNoctty, "O_NOCTTY"}, {oTrunc, "O_TRUNC"}, {oAppend, "O_APPEND"},
	{oNonblock, "O_NONBLOCK"}, {oDsync, "O_DSYNC"}, {oAsync, "O_ASYNC"}, {oDirect, "O_DIRECT"},
	{oLargefile, "O_LARGEFILE"}, {oDirectory, "O_DIRECTORY"}, {oNofollow, "O_NOFOLLOW"}, {oNoatime, "O_NOATIME"},
	{oCloexec, "O_CLOEXEC"}, {oSyncBit, "O_SYNC"}, {oPath, "O_PATH"}, {oTmpBit, "O_TMPFILE"},
}

// appendOpenFlags renders open flags as Falco does (O_RDONLY|O_CLOEXEC).
func appendOpenFlags(b []byte, f uint32) []byte {
	switch f & oAccmode {
	case oWronly:
		b = append(b, "O_WRONLY"...)
	case oRdwr:
		b = append(b, "O_RDWR"...)
	default:
		b = append(b, "O_RDONLY"...)
	}
	for _, fl := range openFlagNames {
		if f&fl.bit != 0 {
			b = append(b, '|')
			b = append(b, fl.name...)
		}
	}
	return b
}

var ptraceRequests = map[uint32]string{
	0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR", 4: "PTRACE_POKETEXT",
	5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT", 8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP",
	12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS", 14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS",
	16: "PTRACE_ATTACH", 17: "PTRACE_DETACH", 24: "PTRACE_SYSCALL", 0x4200: "PTRACE_SETOPTIONS",
	0x4201: "PTRACE_GETEVENTMSG", 0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO",
	0x4204: "PTRACE_GETREGSET", 0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE",
	0x4207: "PTRACE_INTERRUPT", 0x4208: "PTRACE_LISTEN",
}

var familyNames = map[uint64]string{
	0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET",
	3: "AF_AX25", 4: "AF_IPX", 5: "AF_APPLETALK", 9: "AF_X25", 15: "AF_KEY", 29: "AF_CAN",
	31: "AF_BLUETOOTH", 38: "AF_ALG", 40: "AF_VSOCK", 44: "AF_XDP",
}

var protoNames = map[uint8]string{6: "tcp", 17: "udp", 1: "icmp", 58: "icmp", 255: "raw"}
