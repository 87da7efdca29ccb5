package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

// behaviourRules are the default rules added for the behaviours Falco's
// rule sets name (issue 10).
var behaviourRules = []string{
	"Execution from /dev/shm", "Base64-decoded payload piped to a shell", "Remote file copy tool in container",
	"Kubernetes client tool in container", "File made executable in container", "Process environment read from /proc",
	"Shell configuration or history changed", "Hidden file or directory created in container",
	"User management tool in container", "Search for private keys or passwords", "Search for AWS credentials",
	"Packet socket opened", "PTRACE_TRACEME anti-debugging", "Bulk deletion", "System log cleared",
	"Link to a sensitive file created", "Namespace changed in container", "BPF program loaded",
	// Found with Falco's event-generator (docs/event-generator.md).
	"Binary directory changed", "Cron job scheduled",
}

// detectRules runs driftwatch detect (default rules) over traces and
// counts the alerts per rule.
func detectRules(t *testing.T, traces ...string) map[string]int {
	t.Helper()
	out, errOut, err := runCmd(t, append([]string{"detect", "--format", "json"}, traces...)...)
	if err != nil {
		t.Fatalf("detect %v: %v\n%s", traces, err, errOut)
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var a struct{ Rule string }
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("alert %q: %v", sc.Text(), err)
		}
		counts[a.Rule]++
	}
	return counts
}

// The default rules raise nothing on the benign traces of
// datasets/containers-v1, and the behaviour rules nothing on the training
// traces either (they include container start-up: runc's mounts, chmods,
// unshares).
func TestDefaultRulesQuietOnBenignTraces(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(t), "datasets", "containers-v1")
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		t.Skipf("datasets/containers-v1 absent: %v", err)
	}
	for _, w := range []string{"web", "batch", "worker"} {
		benign := []string{filepath.Join(dir, w, "benign.dwt"), filepath.Join(dir, w, "benign-long.dwt")}
		if got := detectRules(t, benign...); len(got) != 0 {
			t.Errorf("%s benign traces: default rules raised %v", w, got)
		}
		got := detectRules(t, filepath.Join(dir, w, "train.dwt"))
		for _, r := range behaviourRules {
			if got[r] != 0 {
				t.Errorf("%s training trace: %q raised %d alerts", w, r, got[r])
			}
		}
	}
}
