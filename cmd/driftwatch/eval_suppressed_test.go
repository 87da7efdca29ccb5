package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

type scenarioFigures struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Detectors map[string]struct {
		Alerts   int `json:"alerts"`
		Detected int `json:"detected_attacks"`
	} `json:"detectors"`
}

// Falco's three rule files plus the defaults over datasets/containers-v1:
// after learning on each scenario's training traces, learned suppression
// removes at least 99% of the alerts on the benign traces, and every
// attack the rules detect keeps at least one alert.
func TestEvalSuppressedOnSuite(t *testing.T) {
	dataset := filepath.Join(testutil.RepoRoot(t), "datasets", "containers-v1")
	if _, err := os.Stat(filepath.Join(dataset, "manifest.json")); err != nil {
		t.Skipf("datasets/containers-v1 absent: %v", err)
	}
	compat := filepath.Join(testutil.SharedDir(t), "compat")
	out := t.TempDir()
	args := []string{"eval", "--dataset", dataset, "--report", out}
	for _, f := range []string{"falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"} {
		args = append(args, "--rules", filepath.Join(compat, f))
	}
	figs := map[string]map[string]scenarioFigures{}
	for _, det := range []string{"rules", "suppressed", "model", "both", "both-raw"} {
		if _, errOut, err := runCmd(t, append(args, "--detector", det)...); err != nil {
			t.Fatalf("eval --detector %s: %v\n%s", det, err, errOut)
		}
		b, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep struct{ Scenarios []scenarioFigures }
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		figs[det] = map[string]scenarioFigures{}
		for _, sc := range rep.Scenarios {
			figs[det][sc.Name] = sc
		}
	}
	before, after, attacks := 0, 0, 0
	for name, sc := range figs["rules"] {
		r, s := sc.Detectors["rules"], figs["suppressed"][name].Detectors["suppressed"]
		switch sc.Kind {
		case "benign":
			before += r.Alerts
			after += s.Alerts
		case "attack":
			attacks++
			if r.Detected > 0 && s.Detected == 0 {
				t.Errorf("%s: the attack lost its last alert to suppression (%d rule alerts before)", name, r.Alerts)
			}
		}
	}
	// both is what the agent runs by default: the model's alerts and the
	// rules' after suppression; both-raw the model's and every rule alert.
	for name := range figs["rules"] {
		m, sup, r := figs["model"][name].Detectors["model"], figs["suppressed"][name].Detectors["suppressed"], figs["rules"][name].Detectors["rules"]
		both, raw := figs["both"][name].Detectors["both"], figs["both-raw"][name].Detectors["both-raw"]
		if both.Alerts != m.Alerts+sup.Alerts || raw.Alerts != m.Alerts+r.Alerts {
			t.Errorf("%s: both %d alerts, both-raw %d; want model %d + suppressed %d, model + rules %d", name, both.Alerts, raw.Alerts, m.Alerts, sup.Alerts, r.Alerts)
		}
	}
	t.Logf("benign alerts: %d before suppression, %d after; %d attack scenarios", before, after, attacks)
	if before < 1000 || attacks == 0 {
		t.Fatalf("suite too small to measure: %d benign alerts, %d attacks", before, attacks)
	}
	if float64(after) > 0.01*float64(before) {
		t.Errorf("benign alerts %d -> %d: less than 99%% fewer", before, after)
	}
}
