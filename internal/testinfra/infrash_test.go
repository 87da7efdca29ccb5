package testinfra

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

// TestInfraScript drives test/e2e/infra.sh up, run, exec and down and checks
// that down leaves no namespace, container cgroup or state directory.
func TestInfraScript(t *testing.T) {
	testutil.NeedRoot(t)
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("infra.sh needs jq (apt-get install -y jq)")
	}
	script := filepath.Join(testutil.RepoRoot(t), "test", "e2e", "infra.sh")
	dir := filepath.Join(t.TempDir(), "infra")
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(script, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("infra.sh %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			_, _ = exec.Command(script, "down", dir).CombinedOutput()
		}
	})
	sh("up", dir)
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(env)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		vars[k] = v
	}
	id := strings.TrimSpace(sh("run", dir, "app", "sleep", "600"))
	if len(id) != 64 {
		t.Fatalf("run printed %q, want a 64-hex id", id)
	}
	out := sh("exec", dir, "app", "sh", "-c", "cat /proc/self/cgroup; ip -4 -o addr")
	if !strings.Contains(out, "/"+id+"\n") || !strings.Contains(out, vars["IP_A"]+"/24") {
		t.Errorf("exec output %q: want cgroup .../%s and address %s", out, id, vars["IP_A"])
	}
	pod, err := os.ReadFile(filepath.Join(dir, "containers", "app.pod"))
	if err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Join(CgroupV2Mount(t), KubepodsRoot, "pod"+strings.TrimSpace(string(pod)))
	if _, err := os.Stat(podDir); err != nil {
		t.Fatalf("pod cgroup: %v", err)
	}
	sh("down", dir)
	downDone = true
	for _, p := range []string{podDir, dir, filepath.Join(NetnsDir, vars["NETNS_A"]), filepath.Join(NetnsDir, vars["NETNS_B"])} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after down (err %v)", p, err)
		}
	}
}
