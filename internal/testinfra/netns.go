package testinfra

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// NetnsDir is where `ip netns` keeps its namespace bind mounts.
const NetnsDir = "/run/netns"

// Netns is a named network namespace acting as a test host.
type Netns struct {
	name string
	ip   string
	peer string
	dev  string
}

// NewNetnsPair creates two network namespaces joined by a veth pair, with
// addresses in a private 10.251.X.0/24 that exists only inside them (a gets
// .1, b gets .2) and lo up in both. Traffic between them never touches the
// host's interfaces. Teardown deletes both namespaces and unmounts
// /run/netns once it is empty.
func NewNetnsPair(t T) (a, b *Netns) {
	t.Helper()
	NeedTool(t, "ip")
	suffix := randHex(3)
	var x [1]byte
	_, _ = rand.Read(x[:])
	subnet := fmt.Sprintf("10.251.%d", x[0])
	a = &Netns{name: "dwt-" + suffix + "-a", ip: subnet + ".1", peer: subnet + ".2", dev: "dw" + suffix + "a"}
	b = &Netns{name: "dwt-" + suffix + "-b", ip: subnet + ".2", peer: subnet + ".1", dev: "dw" + suffix + "b"}
	t.Cleanup(func() {
		for _, n := range []*Netns{a, b} {
			if err := n.remove(); err != nil {
				t.Logf("testinfra: %v", err)
			}
		}
		unmountNetnsDirIfEmpty(t)
	})
	steps := [][]string{
		{"ip", "netns", "add", a.name},
		{"ip", "netns", "add", b.name},
		{"ip", "link", "add", a.dev, "netns", a.name, "type", "veth", "peer", "name", b.dev, "netns", b.name},
	}
	for _, n := range []*Netns{a, b} {
		steps = append(steps,
			[]string{"ip", "-n", n.name, "link", "set", "lo", "up"},
			[]string{"ip", "-n", n.name, "addr", "add", n.ip + "/24", "dev", n.dev},
			[]string{"ip", "-n", n.name, "link", "set", n.dev, "up"},
		)
	}
	for _, s := range steps {
		mustRun(t, s...)
	}
	return a, b
}

// Name is the namespace's name under /run/netns.
func (n *Netns) Name() string { return n.name }

// Path is the namespace's bind-mount path (for runc's linux.namespaces).
func (n *Netns) Path() string { return filepath.Join(NetnsDir, n.name) }

// IP is this namespace's address on the veth link.
func (n *Netns) IP() string { return n.ip }

// PeerIP is the other namespace's address.
func (n *Netns) PeerIP() string { return n.peer }

// Command returns an unstarted command running argv inside the namespace.
func (n *Netns) Command(argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.name}, argv...)...)
}

// Run runs argv inside the namespace and returns its combined output; a
// non-zero exit fails the test.
func (n *Netns) Run(t T, argv ...string) []byte {
	t.Helper()
	out, err := n.Command(argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("testinfra: in netns %s: %q: %v: %s", n.name, argv, err, out)
	}
	return out
}

// Start starts argv inside the namespace; it is killed at cleanup.
func (n *Netns) Start(t T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := n.Command(argv...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testinfra: start %q in netns %s: %v", argv, n.name, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func (n *Netns) remove() error {
	p := n.Path()
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := run("ip", "netns", "del", n.name); err != nil {
		// Fall back to unmounting and removing the entry by hand.
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("%w; remove %s: %w", err, p, rerr)
		}
	}
	return nil
}

// unmountNetnsDirIfEmpty unmounts the /run/netns bind mount that `ip netns
// add` creates, once no namespace is left in it. A namespace added
// concurrently keeps the mount busy, so the unmount then fails harmlessly.
func unmountNetnsDirIfEmpty(t T) {
	entries, err := os.ReadDir(NetnsDir)
	if err != nil || len(entries) > 0 {
		return
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil || !strings.Contains(string(mounts), " "+NetnsDir+" ") {
		return
	}
	if err := syscall.Unmount(NetnsDir, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EBUSY) {
		t.Logf("testinfra: unmount %s: %v", NetnsDir, err)
	}
}
