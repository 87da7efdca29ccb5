// Command helper performs one kernel operation per invocation for the
// sensor tests, with raw syscalls so the syscall numbers are exact, and
// prints what the test needs to match (fds, ports, pids) as key=value.
package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/internal/uring"
)

func main() {
	runtime.LockOSThread()
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: helper OP ARGS"))
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "execfail":
		err = unix.Exec(args[0], args, os.Environ())
		if err == unix.ENOENT {
			fmt.Println("errno=ENOENT")
			return
		}
	case "openw":
		var fd int
		fd, err = unix.Openat(unix.AT_FDCWD, args[0], unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o640)
		fmt.Printf("fd=%d\n", fd)
	case "net":
		err = netPair()
	case "net6":
		err = netPair6()
	case "ptrace":
		err = ptraceAttach()
	case "symlinkat":
		err = unix.Symlinkat(args[0], unix.AT_FDCWD, args[1])
	case "memfd":
		err = memfdExec()
	case "setuid":
		uid, _ := strconv.Atoi(args[0])
		if _, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(uid), 0, 0); e != 0 {
			err = e
		}
	case "bpfuffd":
		err = bpfUffd()
	case "unlink":
		p, _ := unix.BytePtrFromString(args[0])
		if _, _, e := unix.RawSyscall(unix.SYS_UNLINK, uintptr(unsafePtr(p)), 0, 0); e != 0 {
			err = e
		}
	case "opens":
		// One CPU: deduplication keeps a table per CPU.
		err = pinCPU()
		if err == nil {
			err = openSteps(args)
		}
	case "uring", "uring-async", "uring-fixed":
		// uring PATH: open PATH by an io_uring request (no open
		// syscall); uring-async: in an io-wq worker thread;
		// uring-fixed: into the ring's fixed-file table (no descriptor)
		opt := uring.Options{Async: os.Args[1] == "uring-async", Fixed: os.Args[1] == "uring-fixed"}
		var fd int
		fd, err = uring.Openat(unix.AT_FDCWD, args[0], unix.O_RDONLY|unix.O_CLOEXEC, 0, opt)
		fmt.Printf("fd=%d\n", fd)
	case "uring-conn":
		// uring-conn: a loopback listener; connect to it and accept the
		// connection by io_uring requests (no connect or accept syscall)
		err = uringConn()
	case "conns":
		// conns N [L]: connect N times to each of L loopback listeners
		// (default 1); with L > 1, then close the last listener and
		// connect to its port twice more (refused).
		n, _ := strconv.Atoi(args[0])
		l := 1
		if len(args) > 1 {
			l, _ = strconv.Atoi(args[1])
		}
		err = pinCPU()
		if err == nil {
			err = connLoop(n, l)
		}
	case "unixconns":
		// unixconns N PATH...: listen on each path (a leading "@" is an
		// abstract name), connect N times to each.
		n, _ := strconv.Atoi(args[0])
		err = pinCPU()
		if err == nil {
			err = unixConns(n, args[1:])
		}
	case "markfill":
		// markfill N: N records of each kind whose every string byte is
		// the marker 0xA5 (opens, renames, unix connects, execs).
		n, _ := strconv.Atoi(args[0])
		err = markFill(n)
	case "mix":
		// mix: one of each kind of syscall the sensor reports, with
		// ordinary arguments.
		err = mix()
	case "deep":
		// deep DIR LEVELS: below DIR, LEVELS nested directories with
		// 200-byte names, entered one by one; then create "f" there by a
		// relative openat and open the whole absolute path if it fits.
		n, _ := strconv.Atoi(args[1])
		err = deep(args[0], n)
	case "pipeopen":
		// pipeopen: re-open a pipe's read end by /proc/self/fd/N
		var p [2]int
		if err = unix.Pipe(p[:]); err == nil {
			var fd int
			fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(p[0]), unix.O_RDONLY|unix.O_NONBLOCK, 0)
			fmt.Printf("fd=%d\n", fd)
		}
	case "openflood":
		d, _ := time.ParseDuration(args[1])
		openFlood(args[0], d)
	default:
		err = fmt.Errorf("unknown op %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "helper:", err)
	os.Exit(1)
}

// netPair listens on loopback, connects, accepts and dup2s the accepted
// socket onto fd 0.
func netPair() error {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := unix.Listen(lfd, 8); err != nil {
		return err
	}
	sa, _ := unix.Getsockname(lfd)
	lport := sa.(*unix.SockaddrInet4).Port
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: lport}); err != nil {
		return err
	}
	ca, _ := unix.Getsockname(cfd)
	cport := ca.(*unix.SockaddrInet4).Port
	afd, _, err := unix.Accept4(lfd, 0)
	if err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_DUP2, uintptr(afd), 0, 0); e != 0 {
		return e
	}
	fmt.Printf("lfd=%d lport=%d cfd=%d cport=%d afd=%d\n", lfd, lport, cfd, cport, afd)
	return nil
}

// netPair6 connects and accepts over IPv6 loopback.
func netPair6() error {
	lfd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	lo := [16]byte{15: 1}
	if err := unix.Bind(lfd, &unix.SockaddrInet6{Addr: lo}); err != nil {
		return err
	}
	if err := unix.Listen(lfd, 8); err != nil {
		return err
	}
	sa, _ := unix.Getsockname(lfd)
	lport := sa.(*unix.SockaddrInet6).Port
	cfd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(cfd, &unix.SockaddrInet6{Addr: lo, Port: lport}); err != nil {
		return err
	}
	ca, _ := unix.Getsockname(cfd)
	afd, _, err := unix.Accept4(lfd, 0)
	if err != nil {
		return err
	}
	fmt.Printf("lport=%d cport=%d afd=%d\n", lport, ca.(*unix.SockaddrInet6).Port, afd)
	return nil
}

func ptraceAttach() error {
	cmd := exec.Command("/bin/sleep", "10")
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	if err := unix.PtraceAttach(pid); err != nil {
		return err
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
	fmt.Printf("child=%d\n", pid)
	return unix.PtraceDetach(pid)
}

func memfdExec() error {
	img, err := os.ReadFile("/bin/true")
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("dwtest", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	if _, err := unix.Write(fd, img); err != nil {
		return err
	}
	fmt.Printf("fd=%d\n", fd)
	os.Stdout.Sync()
	argv0, _ := unix.BytePtrFromString("dwtest-memfd")
	argv := []*byte{argv0, nil}
	envv := []*byte{nil}
	empty, _ := unix.BytePtrFromString("")
	_, _, e := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafePtr(empty)),
		uintptr(unsafePtr(&argv[0])), uintptr(unsafePtr(&envv[0])), unix.AT_EMPTY_PATH, 0)
	return e
}

// openFlood opens path with open(2) from several threads flat out for d.
func openFlood(path string, d time.Duration) {
	p, _ := unix.BytePtrFromString(path)
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for time.Now().Before(end) {
				for j := 0; j < 100; j++ {
					r, _, e := unix.RawSyscall(unix.SYS_OPEN, uintptr(unsafePtr(p)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
					if e == 0 {
						unix.Close(int(r))
					}
				}
			}
		}()
	}
	wg.Wait()
}

// openSteps runs steps in order: "PATH*N" opens PATH N times with open(2)
// (read-only), "wPATH*N" the same for writing, "sleep=DUR" sleeps, "wait"
// reads a line from stdin (the test does something meanwhile).
func openSteps(steps []string) error {
	for _, st := range steps {
		switch {
		case st == "wait":
			var b [1]byte
			for {
				if n, err := os.Stdin.Read(b[:]); n == 0 || err != nil || b[0] == '\n' {
					break
				}
			}
		case strings.HasPrefix(st, "sleep="):
			d, err := time.ParseDuration(st[len("sleep="):])
			if err != nil {
				return err
			}
			time.Sleep(d)
		default:
			path, count, ok := strings.Cut(st, "*")
			n, err := strconv.Atoi(count)
			if !ok || err != nil {
				return fmt.Errorf("bad step %q", st)
			}
			flags := unix.O_RDONLY | unix.O_CLOEXEC
			if strings.HasPrefix(path, "w") {
				path, flags = path[1:], unix.O_WRONLY|unix.O_CLOEXEC
			}
			p, _ := unix.BytePtrFromString(path)
			for i := 0; i < n; i++ {
				r, _, e := unix.RawSyscall(unix.SYS_OPEN, uintptr(unsafePtr(p)), uintptr(flags), 0)
				if e == 0 {
					unix.Close(int(r))
				}
			}
		}
	}
	return nil
}

// connLoop listens on loopback and connects, accepts and closes n times.
func connLoop(n, listeners int) error {
	var lfds []int
	var ports []string
	var addrs []unix.Sockaddr
	for i := 0; i < listeners; i++ {
		lfd, sa, err := loopbackListener()
		if err != nil {
			return err
		}
		lfds = append(lfds, lfd)
		addrs = append(addrs, sa)
		ports = append(ports, strconv.Itoa(sa.Port))
	}
	for j, lfd := range lfds {
		for i := 0; i < n; i++ {
			cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(cfd, addrs[j]); err != nil {
				return err
			}
			afd, _, err := unix.Accept4(lfd, 0)
			if err != nil {
				return err
			}
			unix.SetsockoptLinger(cfd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			unix.Close(afd)
			unix.Close(cfd)
		}
	}
	if listeners > 1 {
		last := len(lfds) - 1
		unix.Close(lfds[last])
		for i := 0; i < 2; i++ {
			cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(cfd, addrs[last]); err != unix.ECONNREFUSED {
				return fmt.Errorf("connect to a closed port: %v, want ECONNREFUSED", err)
			}
			unix.Close(cfd)
		}
		fmt.Printf("refused=%s\n", ports[last])
	}
	fmt.Printf("lport=%s\n", ports[0])
	fmt.Printf("lports=%s\n", strings.Join(ports, ","))
	return nil
}

// pinCPU keeps the calling thread on the first CPU it may run on.
func pinCPU() error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return err
	}
	for cpu := 0; cpu < 1024; cpu++ {
		if set.IsSet(cpu) {
			set.Zero()
			set.Set(cpu)
			return unix.SchedSetaffinity(0, &set)
		}
	}
	return nil
}

func unixConns(n int, paths []string) error {
	for _, p := range paths {
		name := p
		if strings.HasPrefix(p, "@") {
			name = "\x00" + p[1:]
		}
		lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		sa := &unix.SockaddrUnix{Name: name}
		if err := unix.Bind(lfd, sa); err != nil {
			return err
		}
		if err := unix.Listen(lfd, n+1); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			cfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(cfd, sa); err != nil {
				return err
			}
			unix.Close(cfd)
		}
		unix.Close(lfd)
	}
	return nil
}

// marker is the byte markFill writes everywhere it can.
const marker = 0xA5

// markerPath returns an absolute path of about n bytes of marker bytes in
// components of 200.
func markerPath(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteByte('/')
		b.WriteString(strings.Repeat(string([]byte{marker}), 200))
	}
	return b.String()[:n]
}

func markFill(n int) error {
	long := markerPath(4000)
	p, _ := unix.BytePtrFromString(long)
	for i := 0; i < n; i++ {
		unix.RawSyscall(unix.SYS_OPEN, uintptr(unsafePtr(p)), unix.O_RDONLY, 0)
		unix.RawSyscall(unix.SYS_RENAME, uintptr(unsafePtr(p)), uintptr(unsafePtr(p)), 0)
		unix.RawSyscall(unix.SYS_MKDIR, uintptr(unsafePtr(p)), 0o755, 0)
		time.Sleep(100 * time.Microsecond) // let the reader keep up
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		unix.Connect(fd, &unix.SockaddrUnix{Name: markerPath(100)})
	}
	arg := strings.Repeat(string([]byte{marker}), 4000)
	for i := 0; i < n/4+1; i++ {
		exec.Command("/bin/true", arg).Run()
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// mix makes one ordinary event of each record shape.
func mix() error {
	fd, err := unix.Open("/etc/hostname", unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	unix.Dup2(fd, 100)
	unix.Close(100)
	unix.Close(fd)
	if err := netPair(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mix")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	a, b := dir+"/a", dir+"/b"
	if err := os.WriteFile(a, nil, 0o600); err != nil {
		return err
	}
	unix.Rename(a, b)
	unix.Symlink(b, a)
	unix.Unlink(a)
	unix.Setuid(0)
	return exec.Command("/bin/true", "mix").Run()
}

func deep(dir string, levels int) error {
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	name := strings.Repeat("d", 200)
	for i := 0; i < levels; i++ {
		if err := unix.Mkdir(name, 0o755); err != nil && err != unix.EEXIST {
			return err
		}
		if err := unix.Chdir(name); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(unix.AT_FDCWD, "f", unix.O_CREAT|unix.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	unix.Close(fd)
	full := dir + strings.Repeat("/"+name, levels) + "/f"
	if len(full) < 4096 {
		fd, err := unix.Openat(unix.AT_FDCWD, full, unix.O_RDONLY, 0)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}

// bpfUffd loads a two-instruction socket filter with bpf(BPF_PROG_LOAD),
// makes a failing bpf call with an unknown command, and opens a
// userfaultfd; it prints the descriptors.
func bpfUffd() error {
	insns := []byte{0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0} // r0 = 0; exit
	license := []byte("GPL\x00")
	var attr [48]byte
	put32 := func(off int, v uint32) {
		for i := 0; i < 4; i++ {
			attr[off+i] = byte(v >> (8 * i))
		}
	}
	put64 := func(off int, v uint64) {
		put32(off, uint32(v))
		put32(off+4, uint32(v>>32))
	}
	put32(0, unix.BPF_PROG_TYPE_SOCKET_FILTER)
	put32(4, 2)
	put64(8, uint64(uintptr(unsafePtr(&insns[0]))))
	put64(16, uint64(uintptr(unsafePtr(&license[0]))))
	fd, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafePtr(&attr[0])), uintptr(len(attr)))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	if e != 0 {
		return fmt.Errorf("bpf(BPF_PROG_LOAD): %w", e)
	}
	fmt.Printf("progfd=%d\n", fd)
	_, _, e = unix.Syscall(unix.SYS_BPF, 9999, 0, 0)
	fmt.Printf("badcmd_errno=%d\n", int(e))
	ufd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	if e != 0 {
		return fmt.Errorf("userfaultfd: %w", e)
	}
	fmt.Printf("uffd=%d\n", ufd)
	return nil
}

// loopbackListener listens on an ephemeral port of 127.0.0.1.
func loopbackListener() (int, *unix.SockaddrInet4, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, nil, err
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return -1, nil, err
	}
	if err := unix.Listen(lfd, 8); err != nil {
		return -1, nil, err
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return -1, nil, err
	}
	return lfd, sa.(*unix.SockaddrInet4), nil
}

func uringConn() error {
	lfd, sa, err := loopbackListener()
	if err != nil {
		return err
	}
	port := sa.Port
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := uring.Connect(cfd, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)), uring.Options{}); err != nil {
		return err
	}
	afd, err := uring.Accept(lfd, uring.Options{})
	if err != nil {
		return err
	}
	fmt.Printf("lport=%d\nafd=%d\n", port, afd)
	return nil
}
