package event

//go:generate go run ./internal/gensyscalls

// x86_64 numbers of the syscalls the sensor reports (Linux UAPI).
const (
	SysRead        uint16 = 0
	SysWrite       uint16 = 1
	SysOpen        uint16 = 2
	SysClose       uint16 = 3
	SysSocket      uint16 = 41
	SysConnect     uint16 = 42
	SysAccept      uint16 = 43
	SysSendto      uint16 = 44
	SysSendmsg     uint16 = 46
	SysFcntl       uint16 = 72
	SysCreat       uint16 = 85
	SysBind        uint16 = 49
	SysListen      uint16 = 50
	SysClone       uint16 = 56
	SysFork        uint16 = 57
	SysVfork       uint16 = 58
	SysExecve      uint16 = 59
	SysExit        uint16 = 60
	SysChdir       uint16 = 80
	SysFchdir      uint16 = 81
	SysRename      uint16 = 82
	SysMkdir       uint16 = 83
	SysLink        uint16 = 86
	SysUnlink      uint16 = 87
	SysSymlink     uint16 = 88
	SysChmod       uint16 = 90
	SysFchmod      uint16 = 91
	SysPtrace      uint16 = 101
	SysSetuid      uint16 = 105
	SysSetgid      uint16 = 106
	SysSetresuid   uint16 = 117
	SysSetresgid   uint16 = 119
	SysCapset      uint16 = 126
	SysMount       uint16 = 165
	SysUmount2     uint16 = 166
	SysInitModule  uint16 = 175
	SysExitGroup   uint16 = 231
	SysOpenat      uint16 = 257
	SysMkdirat     uint16 = 258
	SysUnlinkat    uint16 = 263
	SysRenameat    uint16 = 264
	SysLinkat      uint16 = 265
	SysSymlinkat   uint16 = 266
	SysFchmodat    uint16 = 268
	SysUnshare     uint16 = 272
	SysAccept4     uint16 = 288
	SysDup         uint16 = 32
	SysDup2        uint16 = 33
	SysDup3        uint16 = 292
	SysSetns       uint16 = 308
	SysFinitModule uint16 = 313
	SysRenameat2   uint16 = 316
	SysMemfdCreate uint16 = 319
	SysExecveat    uint16 = 322
	SysBpf         uint16 = 321
	SysUserfaultfd uint16 = 323
	SysClone3      uint16 = 435
	SysOpenat2     uint16 = 437
	SysFchmodat2   uint16 = 452
	SysUnknown     uint16 = 0xffff
)

// SysOpenByHandleAt (x86_64 304) opens a file named by a handle from
// name_to_handle_at, without a path.
const SysOpenByHandleAt uint16 = 304

// SyscallName returns the x86_64 name of syscall number nr, or "" when unknown.
func SyscallName(nr uint16) string { return syscallNames64[nr] }

// SyscallNumber returns the x86_64 number of a syscall name.
func SyscallNumber(name string) (uint16, bool) {
	nr, ok := syscallByName[name]
	return nr, ok
}

// Syscall32Name returns the i386 name of a 32-bit x86 syscall number (ADFA-LD traces).
func Syscall32Name(nr uint16) string { return syscallNames32[nr] }

var syscallByName = func() map[string]uint16 {
	m := make(map[string]uint16, len(syscallNames64))
	for nr, name := range syscallNames64 {
		m[name] = nr
	}
	return m
}()
