package lidds

import (
	"strings"

	"github.com/driftwatch/driftwatch/event"
)

// sysdig, and so LID-DS, records flag arguments in its own portable
// encodings (the PPM_* constants of the sysdig/falcosecurity drivers), not
// the kernel's: open's O_RDONLY is 1 there (0 in Linux) and O_CLOEXEC is
// 1<<12 (0x80000 in Linux), so "flags=4097(O_RDONLY|O_CLOEXEC)" read as a
// Linux value would mean O_WRONLY|O_DSYNC. The reader translates every flag
// argument it keeps (ev.Flags) to the Linux x86_64 values the rest of
// driftwatch uses. Mode arguments need no translation: sysdig's PPM_S_*
// permission bits equal Linux's.

// x86_64 numbers of calls event/syscalls.go has no constant for.
const (
	sysMmap  uint16 = 9
	sysCreat uint16 = 85
)

// flagBit maps one sysdig bit to its Linux value and its sysdig name (as
// printed in the line's annotation).
type flagBit struct {
	ppm, linux uint32
	name       string
}

// Open flags other than the access mode (PPM_O_*).
var openBits = []flagBit{
	{1 << 2, 0x40, "O_CREAT"},
	{1 << 3, 0x400, "O_APPEND"},
	{1 << 4, 0x1000, "O_DSYNC"},
	{1 << 5, 0x80, "O_EXCL"},
	{1 << 6, 0x800, "O_NONBLOCK"},
	{1 << 7, 0x101000, "O_SYNC"},
	{1 << 8, 0x200, "O_TRUNC"},
	{1 << 9, 0x4000, "O_DIRECT"},
	{1 << 10, 0x10000, "O_DIRECTORY"},
	{1 << 11, 0x8000, "O_LARGEFILE"},
	{1 << 12, 0x80000, "O_CLOEXEC"},
	{1 << 13, 0x410000, "O_TMPFILE"},
}

// Open access modes: sysdig PPM_O_RDONLY = 1, PPM_O_WRONLY = 2, both = RDWR.
const (
	ppmORdonly = 1
	ppmOWronly = 2
	ppmOAccess = ppmORdonly | ppmOWronly
)

// mmap flags (PPM_MAP_*).
var mmapBits = []flagBit{
	{1 << 0, 0x01, "MAP_SHARED"},
	{1 << 1, 0x02, "MAP_PRIVATE"},
	{1 << 2, 0x10, "MAP_FIXED"},
	{1 << 3, 0x20, "MAP_ANONYMOUS"},
	{1 << 4, 0x40, "MAP_32BIT"},
	{1 << 6, 0x4000, "MAP_NORESERVE"},
	{1 << 7, 0x8000, "MAP_POPULATE"},
	{1 << 8, 0x10000, "MAP_NONBLOCK"},
	{1 << 9, 0x100, "MAP_GROWSDOWN"},
	{1 << 10, 0x800, "MAP_DENYWRITE"},
	{1 << 11, 0x1000, "MAP_EXECUTABLE"},
	{1 << 14, 0x2000, "MAP_LOCKED"},
}

// clone flags (PPM_CL_*); sysdig's bookkeeping bits (PPM_CL_CLONE_INVERTED,
// PPM_CL_NAME_CHANGED, PPM_CL_CHILD_IN_PIDNS …) have no Linux value and are
// dropped.
var cloneBits = []flagBit{
	{1 << 0, 0x400, "CLONE_FILES"},
	{1 << 1, 0x200, "CLONE_FS"},
	{1 << 2, 0x80000000, "CLONE_IO"},
	{1 << 3, 0x08000000, "CLONE_NEWIPC"},
	{1 << 4, 0x40000000, "CLONE_NEWNET"},
	{1 << 5, 0x20000, "CLONE_NEWNS"},
	{1 << 6, 0x20000000, "CLONE_NEWPID"},
	{1 << 7, 0x04000000, "CLONE_NEWUTS"},
	{1 << 8, 0x8000, "CLONE_PARENT"},
	{1 << 9, 0x100000, "CLONE_PARENT_SETTID"},
	{1 << 10, 0x2000, "CLONE_PTRACE"},
	{1 << 11, 0x800, "CLONE_SIGHAND"},
	{1 << 12, 0x40000, "CLONE_SYSVSEM"},
	{1 << 13, 0x10000, "CLONE_THREAD"},
	{1 << 14, 0x800000, "CLONE_UNTRACED"},
	{1 << 15, 0x100, "CLONE_VM"},
	{1 << 20, 0x10000000, "CLONE_NEWUSER"},
	{1 << 23, 0x200000, "CLONE_CHILD_CLEARTID"},
	{1 << 24, 0x01000000, "CLONE_CHILD_SETTID"},
	{1 << 25, 0x80000, "CLONE_SETTLS"},
	{1 << 27, 0x4000, "CLONE_VFORK"},
	{1 << 28, 0x02000000, "CLONE_NEWCGROUP"},
}

func translate(v uint32, bits []flagBit) uint32 {
	var out uint32
	for _, b := range bits {
		if v&b.ppm != 0 {
			out |= b.linux
		}
	}
	return out
}

// flagTable returns the translation of a syscall's flags argument, or nil
// when the reader keeps it as recorded.
func flagTable(nr uint16) []flagBit {
	switch nr {
	case event.SysOpen, event.SysOpenat, event.SysOpenat2, sysCreat:
		return openBits
	case sysMmap:
		return mmapBits
	case event.SysClone, event.SysClone3, event.SysFork, event.SysVfork:
		return cloneBits
	}
	return nil
}

// LinuxFlags translates syscall nr's sysdig flags argument v to Linux
// x86_64 values. Syscalls whose flags the reader does not map keep v.
func LinuxFlags(nr uint16, v uint32) uint32 {
	bits := flagTable(nr)
	if bits == nil {
		return v
	}
	out := translate(v, bits)
	if isOpen(nr) {
		switch v & ppmOAccess {
		case ppmOWronly:
			out |= 0x1 // O_WRONLY
		case ppmOAccess:
			out |= 0x2 // O_RDWR
		}
	}
	return out
}

func isOpen(nr uint16) bool {
	switch nr {
	case event.SysOpen, event.SysOpenat, event.SysOpenat2, sysCreat:
		return true
	}
	return false
}

// LinuxFlagsFromNames computes the Linux value of a sysdig flag annotation
// ("O_RDONLY|O_CLOEXEC"); ok is false when a name is unknown. The reader
// does not need it (the number is authoritative); tests use it to check the
// numeric tables against what sysdig printed.
func LinuxFlagsFromNames(nr uint16, names string) (v uint32, ok bool) {
	bits := flagTable(nr)
	if bits == nil {
		return 0, false
	}
	for _, n := range strings.Split(names, "|") {
		switch {
		case isOpen(nr) && n == "O_RDONLY", isOpen(nr) && n == "O_NONE":
		case isOpen(nr) && n == "O_WRONLY":
			v |= 0x1
		case isOpen(nr) && n == "O_RDWR":
			v |= 0x2
		default:
			found := false
			for _, b := range bits {
				if b.name == n {
					v |= b.linux
					found = true
				}
			}
			if !found {
				return 0, false
			}
		}
	}
	return v, true
}
