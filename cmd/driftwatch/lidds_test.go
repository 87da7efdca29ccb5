package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

// TestLIDDSSample replays the shared LID-DS 2021 recording through the
// CLI: sysdig's open flags are read as Linux flags (no false "Credential
// file written" from O_RDONLY|O_CLOEXEC opens of /etc/group), every event
// carries the victim container of the recording's metadata and the unset
// loginuid prints -1 as in alerts, and learning keys the profile by image.
func TestLIDDSSample(t *testing.T) {
	sample := filepath.Join(testutil.SharedDir(t), "datasets", "lid-ds-2021-sample", "aggressive_nightingale_1018.zip")
	const victim, image = "06cfe25a36bff1e1", "victim_bruteforce"

	out := lpMust(t, "replay", "--format", "json", sample)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 11734 {
		t.Fatalf("%d events replayed, want 11734", len(lines))
	}
	for i, l := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if ev["container.id"] != victim || ev["container.image"] != image || ev["user.loginuid"] != float64(-1) {
			t.Fatalf("line %d: container.id %v image %v loginuid %v", i+1, ev["container.id"], ev["container.image"], ev["user.loginuid"])
		}
	}

	alerts := lpMust(t, "detect", "--format", "json", sample)
	for _, l := range strings.Split(strings.TrimSpace(alerts), "\n") {
		if l == "" {
			continue
		}
		var a struct {
			Rule         string         `json:"rule"`
			OutputFields map[string]any `json:"output_fields"`
		}
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("alert %q: %v", l, err)
		}
		if strings.Contains(a.Rule, "Credential") {
			t.Errorf("false credential alert: %s", l)
		}
		if a.OutputFields["container.id"] != victim {
			t.Errorf("alert outside the victim container: %s", l)
		}
	}

	db := filepath.Join(t.TempDir(), "p.db")
	lpMust(t, "learn", "--db", db, sample)
	cats, _ := lpSummaries(t, lpMust(t, "profile", "list", "--db", db, "--json"))
	if _, ok := cats[image]; !ok || len(cats) != 1 {
		t.Fatalf("profiles %v, want one keyed %q", cats, image)
	}
}
