// Command evade performs the file accesses of the sensor-truth evasion
// suite inside a container, with raw syscalls so each access is exactly
// the one named. The first argument names the access; the rest are its
// operands. It exits non-zero when the access itself fails.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/internal/uring"
)

func main() {
	runtime.LockOSThread()
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: evade OP ARGS"))
	}
	a := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "read": // read PATH: openat(AT_FDCWD, PATH, O_RDONLY), read
		err = readAt(unix.AT_FDCWD, a[0])
	case "write": // write PATH: openat(AT_FDCWD, PATH, O_WRONLY|O_CREAT)
		var fd int
		fd, err = unix.Openat(unix.AT_FDCWD, a[0], unix.O_WRONLY|unix.O_CREAT, 0o644)
		if err == nil {
			unix.Close(fd)
		}
	case "uring": // uring PATH: open PATH by an io_uring request (no open system call), read
		var fd int
		if fd, err = uring.Openat(unix.AT_FDCWD, a[0], unix.O_RDONLY, 0, uring.Options{}); err == nil {
			err = readFd(fd)
		}
	case "uringfixed": // uringfixed PATH: open PATH by io_uring into the ring's fixed-file table (no descriptor at all)
		_, err = uring.Openat(unix.AT_FDCWD, a[0], unix.O_RDONLY, 0, uring.Options{Fixed: true})
	case "dirfd": // dirfd DIR REL: open DIR, openat(dirfd, REL)
		err = withDir(a[0], func(d int) error { return readAt(d, a[1]) })
	case "openat2": // openat2 DIR REL RESOLVE: openat2(dirfd, REL, {O_RDONLY, resolve})
		res, _ := strconv.ParseUint(a[2], 0, 64)
		err = withDir(a[0], func(d int) error {
			fd, err := unix.Openat2(d, a[1], &unix.OpenHow{Flags: unix.O_RDONLY, Resolve: res})
			if err != nil {
				return err
			}
			return readFd(fd)
		})
	case "chroot": // chroot DIR PATH: chroot(DIR), chdir("/"), read PATH
		if err = unix.Chroot(a[0]); err == nil {
			if err = unix.Chdir("/"); err == nil {
				err = readAt(unix.AT_FDCWD, a[1])
			}
		}
	case "byhandle": // byhandle PATH: name_to_handle_at(PATH), open_by_handle_at(mount of /, handle)
		var h unix.FileHandle
		if h, _, err = unix.NameToHandleAt(unix.AT_FDCWD, a[0], 0); err == nil {
			err = withDir("/", func(m int) error {
				fd, err := unix.OpenByHandleAt(m, h, unix.O_RDONLY)
				if err != nil {
					return fmt.Errorf("open_by_handle_at: %w", err)
				}
				return readFd(fd)
			})
		}
	case "procfd": // procfd PATH: open PATH with O_PATH, re-open /proc/self/fd/N
		var fd int
		fd, err = unix.Open(a[0], unix.O_PATH, 0)
		if err == nil {
			err = readAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd))
		}
	case "fdpass": // fdpass PATH RECEIVER: open PATH, pass it over a unix socket to RECEIVER recvfd
		err = fdPass(a[0], a[1])
	case "recvfd": // recvfd: receive a descriptor on fd 3, re-open it by /proc/self/fd/N
		err = recvFd()
	case "stalepipe": // stalepipe CMD...: sockets dup2ed onto fds 3-5 and closed unseen, then exec CMD
		err = stalePipe(a)
	case "revshell": // revshell CMD...: a loopback socket dup2'ed onto stdout, then exec CMD
		err = revShell(a)
	default:
		err = fmt.Errorf("unknown op %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "evade:", err)
	os.Exit(1)
}

func readAt(dirfd int, path string) error {
	fd, err := unix.Openat(dirfd, path, unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("openat %q: %w", path, err)
	}
	return readFd(fd)
}

func readFd(fd int) error {
	var b [64]byte
	_, err := unix.Read(fd, b[:])
	unix.Close(fd)
	return err
}

func withDir(dir string, f func(int) error) error {
	d, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	return f(d)
}

func fdPass(path, receiver string) error {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	child := os.NewFile(uintptr(sp[1]), "child")
	proc, err := os.StartProcess(receiver, []string{receiver, "recvfd"}, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, child}})
	if err != nil {
		return err
	}
	child.Close()
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(sp[0], []byte{1}, unix.UnixRights(fd), nil, 0); err != nil {
		return err
	}
	st, err := proc.Wait()
	if err != nil {
		return err
	}
	if !st.Success() {
		return fmt.Errorf("receiver: %v", st)
	}
	return nil
}

func recvFd() error {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(3, buf, oob, 0)
	if err != nil {
		return err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return fmt.Errorf("no control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return fmt.Errorf("no descriptor: %v", err)
	}
	return readAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fds[0]))
}

// loopback returns a connected pair of loopback TCP sockets (client,
// accepted) made with raw syscalls and no close-on-exec, and the listener.
func loopback() (l, c, s int, err error) {
	sock := func() (int, error) {
		r, _, e := unix.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
	if l, err = sock(); err != nil {
		return
	}
	if err = unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return
	}
	if err = unix.Listen(l, 4); err != nil {
		return
	}
	sa, _ := unix.Getsockname(l)
	if c, err = sock(); err != nil {
		return
	}
	if err = unix.Connect(c, sa); err != nil {
		return
	}
	r, _, e := unix.RawSyscall(unix.SYS_ACCEPT, uintptr(l), 0, 0)
	if e != 0 {
		err = e
		return
	}
	return l, c, int(r), nil
}

func stalePipe(cmd []string) error {
	l, c, s, err := loopback()
	if err != nil {
		return err
	}
	// Put the sockets on 3, 4 and 5 (the numbers a shell's pipe takes
	// next), so the process table knows those numbers as sockets, then
	// close them all: the sensor does not see close.
	for i, fd := range []int{l, c, s} {
		if _, _, e := unix.RawSyscall(unix.SYS_DUP2, uintptr(fd), uintptr(3+i), 0); e != 0 {
			return e
		}
	}
	for _, fd := range []int{l, c, s, 3, 4, 5} {
		unix.Close(fd)
	}
	return syscall.Exec(cmd[0], cmd, os.Environ())
}

func revShell(cmd []string) error {
	_, c, _, err := loopback()
	if err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_DUP2, uintptr(c), 1, 0); e != 0 {
		return e
	}
	return syscall.Exec(cmd[0], cmd, os.Environ())
}
