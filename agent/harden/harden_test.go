package harden

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

// TestAllowList: the filter assembles for this architecture, names no
// call twice, and leaves out the calls an attacker would want.
func TestAllowList(t *testing.T) {
	names := Allowed()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
	}
	for _, bad := range []string{"execve", "execveat", "ptrace", "mount", "umount2", "init_module", "finit_module",
		"setuid", "setresuid", "capset", "prctl", "unshare", "setns", "kexec_load", "process_vm_writev", "chroot", "pivot_root", "kill"} {
		if seen[bad] {
			t.Errorf("%s is allowed", bad)
		}
	}
	f := Filter()
	if _, err := f.Policy.Assemble(); err != nil {
		t.Fatalf("filter does not assemble: %v", err)
	}
}

// TestApply runs Apply in a helper process (built without cgo, as `make
// build` builds the agent) and checks /proc/self/status afterwards, that
// files, /proc, sockets and HTTP still work, and that exec fails.
func TestApply(t *testing.T) {
	testutil.NeedRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "helper")
	build := exec.Command("go", "build", "-o", bin, "./testdata/helper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build helper: %v\n%s", err, out)
	}
	t.Run("root", func(t *testing.T) { checkApply(t, exec.Command(bin, dir), dir) })
	// As the DaemonSet starts it: only the kept capabilities, no
	// CAP_SETPCAP to change the bounding set.
	t.Run("container capabilities", func(t *testing.T) {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			testutil.NeedBPF(t, "setpriv (util-linux) not found")
		}
		os.Remove(filepath.Join(dir, "alerts.json"))
		checkApply(t, exec.Command(setpriv, "--bounding-set", "-all,+dac_read_search,+sys_ptrace,+perfmon,+bpf", bin, dir), dir)
	})
}

func checkApply(t *testing.T, cmd *exec.Cmd, dir string) {
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var r struct {
		ApplyErr    string            `json:"apply_err"`
		CapsDropped bool              `json:"caps_dropped"`
		Status      map[string]string `json:"status"`
		ExecErr     string            `json:"exec_err"`
		FileErr     string            `json:"file_err"`
		HTTPErr     string            `json:"http_err"`
		ProcErr     string            `json:"proc_err"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	t.Logf("after Apply: %v", r.Status)
	if r.ApplyErr != "" || !r.CapsDropped {
		t.Fatalf("Apply: %q, caps dropped %v", r.ApplyErr, r.CapsDropped)
	}
	var keep uint64
	for _, c := range Keep {
		keep |= 1 << c
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		v, err := strconv.ParseUint(r.Status[k], 16, 64)
		if err != nil || v&^keep != 0 || v == 0 {
			t.Errorf("%s = %s, want a non-empty subset of %016x", k, r.Status[k], keep)
		}
	}
	for k, want := range map[string]string{"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"} {
		if r.Status[k] != want {
			t.Errorf("%s = %q, want %q", k, r.Status[k], want)
		}
	}
	if r.ExecErr == "" || !strings.Contains(r.ExecErr, "operation not permitted") {
		t.Errorf("exec after Apply: %q, want operation not permitted", r.ExecErr)
	}
	for what, e := range map[string]string{"file": r.FileErr, "http": r.HTTPErr, "/proc": r.ProcErr} {
		if e != "" {
			t.Errorf("%s failed after Apply: %s", what, e)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "alerts.json")); !slices.Equal(b, []byte("{}\n")) {
		t.Errorf("file written after Apply: %q", b)
	}
}
