package datasets

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/eval/labels"
)

const suiteV2Dir = "containers-v2"

// TestSuiteV2Split checks the real-services suite's manifest: five
// workloads, at least 20 attacks, every scenario in the dev or held-out
// part, the Node.js app and at least a third of the attacks held out, every
// attack with MITRE ATT&CK ids in attacks.json, every scenario documented,
// and the suite small enough to commit.
func TestSuiteV2Split(t *testing.T) {
	if _, err := os.Stat(filepath.Join(suiteV2Dir, labels.ManifestFile)); err != nil {
		t.Skipf("containers-v2 not committed: %v (SUITE=containers-v2 datasets/record-all.sh, root)", err)
	}
	m, err := labels.LoadManifest(suiteV2Dir)
	if err != nil {
		t.Fatal(err)
	}
	var mitre []struct {
		Scenario string   `json:"scenario"`
		Split    string   `json:"split"`
		Mitre    []string `json:"mitre"`
	}
	b, err := os.ReadFile(filepath.Join(suiteV2Dir, "attacks.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &mitre); err != nil {
		t.Fatal(err)
	}
	ids := map[string][]string{}
	for _, a := range mitre {
		ids[a.Scenario] = a.Mitre
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "datasets.md"))
	if err != nil {
		t.Fatal(err)
	}
	workloads := map[string]bool{}
	attacks, heldOut := 0, 0
	for _, sc := range m.Scenarios {
		workloads[sc.Workload] = true
		if sc.Split != "dev" && sc.Split != "held-out" {
			t.Errorf("%s: split %q", sc.Name, sc.Split)
		}
		if sc.Workload == "node" && sc.Split != "held-out" {
			t.Errorf("%s: the Node.js app must be held out", sc.Name)
		}
		if sc.Kind == labels.KindAttack {
			attacks++
			if sc.Split == "held-out" {
				heldOut++
			}
			if len(ids[sc.Name]) == 0 {
				t.Errorf("%s: no MITRE ATT&CK id in attacks.json", sc.Name)
			}
			for _, id := range ids[sc.Name] {
				if !strings.HasPrefix(id, "T1") {
					t.Errorf("%s: MITRE id %q", sc.Name, id)
				}
			}
		}
		if !strings.Contains(string(doc), "`"+sc.Name+"`") && !strings.HasSuffix(sc.Name, "-benign") && !strings.HasSuffix(sc.Name, "-benign-long") {
			t.Errorf("docs/datasets.md does not describe scenario %q", sc.Name)
		}
	}
	if len(workloads) != 5 || attacks < 20 || 3*heldOut < attacks {
		t.Errorf("%d workloads, %d attacks, %d held out; want 5, >= 20, >= a third", len(workloads), attacks, heldOut)
	}
	var size int64
	filepath.WalkDir(suiteV2Dir, func(p string, d os.DirEntry, err error) error {
		if fi, e := d.Info(); e == nil && !d.IsDir() {
			size += fi.Size()
		}
		return err
	})
	if size >= maxSuiteBytes {
		t.Errorf("suite is %d bytes, want under %d", size, maxSuiteBytes)
	}
}
