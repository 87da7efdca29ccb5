package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkloadsV2(t *testing.T) {
	h := hosts{A: "10.0.0.1", B: "10.0.0.2"}
	wls := workloadsV2("/bin/true")
	if len(wls) != 5 {
		t.Fatalf("%d workloads, want 5", len(wls))
	}
	seen := map[string]bool{}
	attacks, heldOut := 0, 0
	for _, w := range wls {
		if w.debian == nil || w.load == nil || len(w.execs) == 0 || len(w.args(h)) == 0 {
			t.Errorf("%s: incomplete workload", w.name)
		}
		for _, at := range w.attacks {
			attacks++
			if seen[at.scenario] || !strings.HasPrefix(at.scenario, w.name+"-") {
				t.Errorf("scenario %q duplicated or not named after its workload", at.scenario)
			}
			seen[at.scenario] = true
			if (at.argv == nil) == (at.fromB == nil) {
				t.Errorf("%s: exactly one of argv and fromB must be set", at.scenario)
			}
			if len(at.mitre) == 0 {
				t.Errorf("%s: no MITRE ATT&CK id", at.scenario)
			}
			sp := scenarioSplit(w, at)
			if sp != splitDev && sp != splitHeldOut {
				t.Errorf("%s: split %q", at.scenario, sp)
			}
			if sp == splitHeldOut {
				heldOut++
			}
			if w.name == "node" && sp != splitHeldOut {
				t.Errorf("%s: the Node.js app is held out", at.scenario)
			}
			// Attack commands name test host B, never a fixed address.
			cmd := at.argv
			if at.fromB != nil {
				cmd = at.fromB
			}
			if strings.Contains(strings.Join(cmd(h), " "), "10.251.") {
				t.Errorf("%s: fixed address in %q", at.scenario, cmd(h))
			}
		}
	}
	if attacks < 20 || 3*heldOut < attacks {
		t.Errorf("%d attacks, %d held out; want >= 20 and >= a third", attacks, heldOut)
	}
	if got := len(v2Attacks(wls)); got != attacks {
		t.Errorf("attacks.json lists %d, want %d", got, attacks)
	}
}

func TestRedisFromBQuotesArguments(t *testing.T) {
	argv := redisFromB(hosts{A: "10.0.0.1"}, []string{"CONFIG", "SET", "dir", "/x y"}, []string{"SAVE"})
	script := argv[2]
	if !strings.Contains(script, `[["CONFIG", "SET", "dir", "/x y"],["SAVE"]]`) {
		t.Errorf("commands not a Python list of argument lists:\n%s", script)
	}
}

// A file below an image's symlinked directory is refused, not written
// through the link (Debian's /var/run -> /run pointed at the host's /run).
func TestWriteFilesRefusesSymlinkedParent(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "var", "run")); err != nil {
		t.Fatal(err)
	}
	err := writeFiles(root, map[string]fileSpec{"var/run/secrets/token": {mode: 0o644, data: "x"}})
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("err = %v, want a symlink refusal", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secrets", "token")); err == nil {
		t.Fatal("file written through the symlink")
	}
	if err := writeFiles(root, map[string]fileSpec{"srv/app/x": {mode: 0o644, data: "x"}}); err != nil {
		t.Fatal(err)
	}
}
