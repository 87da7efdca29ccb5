package testinfra

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KubepodsRoot is the cgroup directory (relative to each hierarchy's mount)
// under which all test pods are created.
const KubepodsRoot = "test-kubepods"

// CgroupMount is one cgroup filesystem mount from /proc/mounts.
type CgroupMount struct {
	Path string // mount point
	V2   bool   // cgroup2 (unified) rather than a v1 hierarchy
}

// CgroupMounts lists the cgroup mounts in /proc/mounts (v1 and v2).
func CgroupMounts() ([]CgroupMount, error) {
	return parseCgroupMounts("/proc/mounts")
}

func parseCgroupMounts(path string) ([]CgroupMount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	defer f.Close()
	return scanCgroupMounts(f, path)
}

func scanCgroupMounts(r io.Reader, name string) ([]CgroupMount, error) {
	var out []CgroupMount
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: %d fields, want at least 3", name, line, len(fields))
		}
		switch fields[2] {
		case "cgroup2":
			out = append(out, CgroupMount{Path: unescapeMount(fields[1]), V2: true})
		case "cgroup":
			out = append(out, CgroupMount{Path: unescapeMount(fields[1])})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for space ...) of /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CgroupV2Mount returns the mount point of the cgroup v2 hierarchy (on these
// hybrid machines /sys/fs/cgroup/unified).
func CgroupV2Mount(t T) string {
	t.Helper()
	mounts, err := CgroupMounts()
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	for _, m := range mounts {
		if m.V2 {
			return m.Path
		}
	}
	t.Fatalf("testinfra: no cgroup2 mount in /proc/mounts")
	return ""
}

// Cgroup is a cgroup v2 directory created for a test.
type Cgroup struct {
	rel     string // relative to the v2 mount, no leading slash
	path    string
	id      uint64
	created []string // directories this helper created, shallowest first
}

// NewCgroup creates relPath (for example "test-kubepods/pod<uid>/<64-hex>")
// under the cgroup v2 mount, creating parents as needed. At cleanup it kills
// any process left inside and removes the directories it created, deepest
// first.
func NewCgroup(t T, relPath string) *Cgroup {
	t.Helper()
	rel := strings.Trim(filepath.Clean("/"+relPath), "/")
	if rel == "" || strings.HasPrefix(rel, "..") {
		t.Fatalf("testinfra: cgroup path %q: want a relative path below the v2 mount", relPath)
	}
	mount := CgroupV2Mount(t)
	cg := &Cgroup{rel: rel, path: filepath.Join(mount, rel)}
	dir := mount
	for _, part := range strings.Split(rel, "/") {
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, 0o755)
		switch {
		case err == nil:
			cg.created = append(cg.created, dir)
		case errors.Is(err, os.ErrExist):
		default:
			cg.remove(t)
			t.Fatalf("testinfra: create cgroup: %v", err)
		}
	}
	t.Cleanup(func() { cg.remove(t) })
	id, err := inode(cg.path)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	cg.id = id
	return cg
}

// NewContainerCgroup creates test-kubepods/pod<uid>/<64-hex id> with a fresh
// pod uid and container id and returns it with that id.
func NewContainerCgroup(t T) (*Cgroup, string) {
	t.Helper()
	id := NewContainerID()
	return NewCgroup(t, filepath.Join(KubepodsRoot, "pod"+NewPodUID(), id)), id
}

// ID is the cgroup id: the directory's inode, which is what
// bpf_get_current_cgroup_id() returns for processes inside it.
func (c *Cgroup) ID() uint64 { return c.id }

// Path is the absolute directory of the cgroup.
func (c *Cgroup) Path() string { return c.path }

// Rel is the cgroup path as /proc/PID/cgroup shows it ("/test-kubepods/...").
func (c *Cgroup) Rel() string { return "/" + c.rel }

// StartCmd starts cmd inside the cgroup: the child joins it at clone
// (CLONE_INTO_CGROUP), so even its first instruction is attributed to the
// cgroup. Other SysProcAttr fields of cmd are kept.
func (c *Cgroup) StartCmd(cmd *exec.Cmd) error {
	dir, err := os.Open(c.path)
	if err != nil {
		return fmt.Errorf("open cgroup: %w", err)
	}
	defer dir.Close()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(dir.Fd())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %q in cgroup %s: %w", cmd.Args, c.Rel(), err)
	}
	return nil
}

// Start starts argv inside the cgroup and returns the running command; the
// process is killed at cleanup if still alive.
func (c *Cgroup) Start(t T, argv ...string) *exec.Cmd {
	t.Helper()
	if len(argv) == 0 {
		t.Fatalf("testinfra: cgroup Start: empty argv")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := c.StartCmd(cmd); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// Run runs argv inside the cgroup to completion and returns its combined
// output; a non-zero exit fails the test.
func (c *Cgroup) Run(t T, argv ...string) []byte {
	t.Helper()
	if len(argv) == 0 {
		t.Fatalf("testinfra: cgroup Run: empty argv")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := c.StartCmd(cmd); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("testinfra: %q in cgroup %s: %v: %s", argv, c.Rel(), err, out.String())
	}
	return []byte(out.String())
}

// Pids lists the processes in the cgroup (cgroup.procs).
func (c *Cgroup) Pids() ([]int, error) {
	return readPids(filepath.Join(c.path, "cgroup.procs"))
}

func readPids(file string) ([]int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var pids []int
	for i, f := range strings.Fields(string(data)) {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d %q: %w", file, i+1, f, err)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// remove kills what is left in the created directories and removes them,
// deepest first. Directories that existed before are left alone.
func (c *Cgroup) remove(t T) {
	for i := len(c.created) - 1; i >= 0; i-- {
		dir := c.created[i]
		if err := killCgroup(dir); err != nil {
			t.Logf("testinfra: %v", err)
		}
		if err := rmdirRetry(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Logf("testinfra: remove cgroup %s: %v", dir, err)
		}
	}
	c.created = nil
}

// killCgroup SIGKILLs every process in dir and its subdirectories and waits
// until cgroup.procs is empty (up to 5 s).
func killCgroup(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := 0
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.IsDir() {
				return nil
			}
			pids, err := readPids(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			for _, pid := range pids {
				left++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("kill cgroup %s: %w", dir, err)
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill cgroup %s: %d processes still inside after 5s", dir, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rmdirRetry removes dir, retrying briefly while the kernel still counts
// exiting tasks (EBUSY).
func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = syscall.Rmdir(dir)
		if err == nil {
			return nil
		}
		if errors.Is(err, syscall.ENOENT) {
			return os.ErrNotExist
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("rmdir %s: %w", dir, err)
}

func inode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}
