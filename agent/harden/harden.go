// Package harden reduces what a running agent may do once its eBPF
// programs are loaded and attached: every capability but those the
// running agent uses is dropped (effective, permitted, inheritable,
// ambient and bounding sets, on every thread), no_new_privs is set, and a
// seccomp allow-list of the system calls the agent makes is installed on
// every thread (SECCOMP_FILTER_FLAG_TSYNC). Anything else — execve, ptrace,
// mount, module loading, setuid — fails with EPERM.
//
// The allow-list was built from the calls observed (strace -f -c) while the
// agent ran with events, alerts to a file and to HTTP, metrics scrapes,
// rules and modes reloads (SIGHUP), output reopens (SIGUSR1), CRI and
// Kubernetes lookups and shutdown, plus what the Go runtime may call
// (docs/agent.md lists the measurement).
package harden

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"
)

// Capabilities the running agent keeps.
const (
	CapDacReadSearch = 2  // /proc/<pid> of other processes, open_by_handle_at on cgroupfs
	CapSysPtrace     = 19 // /proc/<pid>/exe, fd and environ links of other processes
	CapPerfmon       = 38 // BPF map and link operations on the loaded objects
	CapBPF           = 39

	capSetpcap = 8
)

// Keep is the set of capabilities the running agent keeps.
var Keep = []int{CapDacReadSearch, CapSysPtrace, CapPerfmon, CapBPF}

// Report says what Apply did.
type Report struct {
	// CapsDropped is false in a binary built with cgo, where capability
	// sets cannot be changed on every thread (see ErrCgo).
	CapsDropped bool
	// CapEff is the effective set afterwards.
	CapEff uint64
	// Syscalls is the number of system calls allowed.
	Syscalls int
}

// Apply drops capabilities, then sets no_new_privs and installs the
// seccomp filter, on every thread of the process. Capabilities are per
// thread and only the Go runtime can change them on all of its threads,
// which it cannot do in a binary built with cgo: there Apply still
// installs no_new_privs and the filter (the kernel synchronises both to
// every thread) and reports CapsDropped false. Build with CGO_ENABLED=0
// (`make build` does).
func Apply() (Report, error) {
	var r Report
	switch err := dropCaps(); {
	case err == nil:
		r.CapsDropped = true
	case errors.Is(err, ErrCgo):
	default:
		return r, err
	}
	eff, err := Effective()
	if err != nil {
		return r, err
	}
	r.CapEff = eff
	f := Filter()
	// no_new_privs on this thread, then the filter with TSYNC, which
	// gives every thread both.
	runtime.LockOSThread()
	err = seccomp.LoadFilter(f)
	runtime.UnlockOSThread()
	if err != nil {
		return r, fmt.Errorf("seccomp: %w", err)
	}
	r.Syscalls = len(f.Policy.Syscalls[0].Names)
	return r, nil
}

// ErrCgo: capabilities cannot be dropped on every thread of a cgo binary.
var ErrCgo = errors.New("capabilities cannot be dropped on every thread of a binary built with cgo (build with CGO_ENABLED=0, as `make build` does)")

func dropCaps() error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	var keep uint64
	for _, c := range Keep {
		keep |= 1 << c
	}
	// The bounding set first: it needs CAP_SETPCAP, dropped below. A
	// container started with only the kept capabilities (deploy/) has no
	// CAP_SETPCAP and its bounding set is already those: skip it then
	// (with no_new_privs and no exec, the bounding set cannot matter).
	if ok, _ := Has(capSetpcap); ok {
		for c := 0; c <= last; c++ {
			if keep&(1<<c) != 0 {
				continue
			}
			if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); e != 0 {
				if e == syscall.ENOTSUP {
					return ErrCgo
				}
				if e == syscall.EINVAL {
					continue // not known to this kernel
				}
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, e)
			}
		}
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); e != 0 && e != syscall.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", e)
	}
	cur, err := capget()
	if err != nil {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	eff := cur & keep
	data[0].Effective, data[1].Effective = uint32(eff), uint32(eff>>32)
	data[0].Permitted, data[1].Permitted = uint32(eff), uint32(eff>>32)
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		if e == syscall.ENOTSUP {
			return ErrCgo
		}
		return fmt.Errorf("capset: %w", e)
	}
	return nil
}

func capget() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}

// Effective returns the calling thread's effective capability set.
func Effective() (uint64, error) { return capget() }

// Has reports whether the effective set holds every capability in caps.
func Has(caps ...int) (bool, error) {
	eff, err := capget()
	if err != nil {
		return false, err
	}
	for _, c := range caps {
		if eff&(1<<c) == 0 {
			return false, nil
		}
	}
	return true, nil
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63, nil // unknown: try them all, EINVAL skips the rest
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("/proc/sys/kernel/cap_last_cap: %w", err)
	}
	return n, nil
}

// Filter is the seccomp filter Apply installs: Allowed allowed, anything
// else EPERM.
func Filter() seccomp.Filter {
	return seccomp.Filter{
		NoNewPrivs: true,
		Flag:       seccomp.FilterFlagTSync,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionErrno,
			Syscalls:      []seccomp.SyscallGroup{{Action: seccomp.ActionAllow, Names: Allowed()}},
		},
	}
}

// Allowed returns the allowed system calls of this architecture.
func Allowed() []string {
	out := append([]string(nil), allowed...)
	return append(out, allowedArch...)
}

// allowed are the system calls the running agent makes, by purpose.
var allowed = []string{
	// Go runtime: memory, threads, signals, scheduling, time.
	"mmap", "munmap", "mprotect", "madvise", "mremap", "mincore",
	"clone", "exit", "exit_group", "futex", "set_robust_list", "get_robust_list", "rseq",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "tkill",
	"gettid", "getpid", "getppid", "sched_yield", "sched_getaffinity", "nanosleep", "clock_nanosleep",
	"clock_gettime", "clock_getres", "gettimeofday", "restart_syscall", "getrandom", "uname",
	"getrlimit", "prlimit64", "timer_create", "timer_settime", "timer_delete", "setitimer",
	"getuid", "geteuid", "getgid", "getegid", "getgroups", "capget", "sysinfo", "membarrier",
	// I/O multiplexing: the ring buffer, sockets, inotify, timers.
	"epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "eventfd2", "pipe2", "ppoll", "pselect6",
	// Files: the store, alert files, rules, /proc, cgroupfs.
	"read", "write", "readv", "writev", "pread64", "pwrite64", "close", "close_range", "lseek",
	"openat", "openat2", "open_by_handle_at", "newfstatat", "fstat", "statx", "statfs", "fstatfs",
	"readlinkat", "getdents64", "fcntl", "flock", "fsync", "fdatasync", "ftruncate", "fallocate",
	"faccessat", "faccessat2",
	// Atomic replacement of the suppression counts (temp file, rename;
	// the temp file removed when a step fails).
	"renameat", "renameat2", "unlinkat",
	"dup", "dup3", "ioctl", "getcwd", "sendfile", "splice", "copy_file_range",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	// Sockets: metrics server, HTTP outputs, Kubernetes API, CRI.
	"socket", "connect", "accept4", "getsockname", "getpeername", "getsockopt", "setsockopt",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "shutdown",
	// The loaded BPF objects: loss counters, deduplication reset, detaching at exit.
	"bpf",
}
