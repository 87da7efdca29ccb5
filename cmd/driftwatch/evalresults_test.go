package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

// headline is the part of report.json the docs quote: counts and ratios
// per detector and per scenario (not timing, which depends on the machine).
type headline struct {
	Events         int64              `json:"events"`
	Alerts         int                `json:"alerts"`
	TP             int                `json:"tp"`
	FP             int                `json:"fp"`
	FN             int                `json:"fn"`
	Attacks        int                `json:"attacks"`
	Detected       int                `json:"detected_attacks"`
	Precision      float64            `json:"precision"`
	Recall         float64            `json:"recall"`
	F1             float64            `json:"f1"`
	ContainerHours float64            `json:"container_hours"`
	FAPerHour      float64            `json:"false_alarms_per_hour"`
	ROCAUC         *float64           `json:"roc_auc"`
	PRAUC          *float64           `json:"pr_auc"`
	TraceROCAUC    *float64           `json:"trace_roc_auc"`
	DRAtFPR        map[string]float64 `json:"detection_rate_at_fpr"`
}

type headlineReport struct {
	Dataset   string              `json:"dataset"`
	Detectors map[string]headline `json:"detectors"`
	Scenarios []struct {
		Name      string              `json:"name"`
		Detectors map[string]headline `json:"detectors"`
	} `json:"scenarios"`
}

func readHeadline(t *testing.T, path string) headlineReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r headlineReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

func sameHeadline(t *testing.T, what string, got, want headlineReport) {
	t.Helper()
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	nearP := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || near(*a, *b)) }
	cmp := func(where string, g, w headline) {
		if g.Events != w.Events || g.Alerts != w.Alerts || g.TP != w.TP || g.FP != w.FP || g.FN != w.FN ||
			g.Attacks != w.Attacks || g.Detected != w.Detected || !near(g.Precision, w.Precision) ||
			!near(g.Recall, w.Recall) || !near(g.F1, w.F1) || !near(g.ContainerHours, w.ContainerHours) ||
			!near(g.FAPerHour, w.FAPerHour) || !nearP(g.ROCAUC, w.ROCAUC) || !nearP(g.PRAUC, w.PRAUC) ||
			!nearP(g.TraceROCAUC, w.TraceROCAUC) || fmt.Sprint(g.DRAtFPR) != fmt.Sprint(w.DRAtFPR) {
			t.Errorf("%s, %s:\n got  %+v\n want %+v", what, where, g, w)
		}
	}
	if len(got.Detectors) != len(want.Detectors) || len(got.Scenarios) != len(want.Scenarios) {
		t.Fatalf("%s: %d detectors / %d scenarios, want %d / %d", what, len(got.Detectors), len(got.Scenarios), len(want.Detectors), len(want.Scenarios))
	}
	for d, w := range want.Detectors {
		cmp("overall "+d, got.Detectors[d], w)
	}
	for i, s := range want.Scenarios {
		if got.Scenarios[i].Name != s.Name {
			t.Fatalf("%s: scenario %d is %q, want %q", what, i, got.Scenarios[i].Name, s.Name)
		}
		for d, w := range s.Detectors {
			cmp(s.Name+" "+d, got.Scenarios[i].Detectors[d], w)
		}
	}
}

// TestSuiteHeadlineFigures re-runs the suite's eval and checks its
// headline figures against docs/results/containers-v1/report.json (the
// figures docs/datasets.md quotes; 'make eval-results' regenerates it), and
// that a run sharded in three and merged gives the same report.
func TestSuiteHeadlineFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("re-runs the suite eval (a few seconds)")
	}
	root := testutil.RepoRoot(t)
	suite := filepath.Join(root, "datasets", "containers-v1")
	kept := readHeadline(t, filepath.Join(root, "docs", "results", "containers-v1", "report.json"))
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole")
	lpMust(t, "eval", "--dataset", suite, "--report", whole, "--jobs", "2")
	sameHeadline(t, "suite eval vs docs/results", readHeadline(t, filepath.Join(whole, "report.json")), kept)

	var shards []string
	for i := 0; i < 3; i++ {
		d := filepath.Join(dir, fmt.Sprintf("shard%d", i))
		lpMust(t, "eval", "--dataset", suite, "--report", d, "--shard", fmt.Sprintf("%d/3", i), "--jobs", "1")
		shards = append(shards, d)
	}
	merged := filepath.Join(dir, "merged")
	lpMust(t, append([]string{"eval", "merge", "--report", merged}, shards...)...)
	sameHeadline(t, "merged shards vs one run", readHeadline(t, filepath.Join(merged, "report.json")), readHeadline(t, filepath.Join(whole, "report.json")))

	if _, _, err := lpRun(t, "eval", "merge", "--report", filepath.Join(dir, "bad"), shards[0], shards[2]); exitCode(err) != 1 {
		t.Errorf("merge with a missing shard: %v, want exit 1", err)
	}
	if _, _, err := lpRun(t, "eval", "--dataset", suite, "--shard", "3/3"); exitCode(err) != 2 {
		t.Errorf("--shard 3/3: %v, want exit 2", err)
	}
}

// TestSuiteV2HeadlineFigures re-runs containers-v2's eval with Falco's
// three rule files as the baseline-rules detector (from ../shared, as
// 'make eval-results' does) and checks the figures docs/datasets.md quotes
// against docs/results/containers-v2/report.json.
func TestSuiteV2HeadlineFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("re-runs the containers-v2 eval (~10 s)")
	}
	root := testutil.RepoRoot(t)
	compat := filepath.Join(testutil.SharedDir(t), "compat")
	kept := readHeadline(t, filepath.Join(root, "docs", "results", "containers-v2", "report.json"))
	out := filepath.Join(t.TempDir(), "v2")
	args := []string{"eval", "--dataset", filepath.Join(root, "datasets", "containers-v2"), "--report", out, "--jobs", "2"}
	for _, f := range []string{"falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"} {
		args = append(args, "--baseline-rules", filepath.Join(compat, f))
	}
	lpMust(t, args...)
	sameHeadline(t, "containers-v2 eval vs docs/results", readHeadline(t, filepath.Join(out, "report.json")), kept)
}

// TestADFAHeadlineFigures re-runs ADFA-LD when DRIFTWATCH_ADFA names a
// copy (it has no licence to redistribute, so it is not in the repo) and
// checks docs/results/adfa-ld/report.json.
func TestADFAHeadlineFigures(t *testing.T) {
	adfa := os.Getenv("DRIFTWATCH_ADFA")
	if adfa == "" {
		t.Skip("DRIFTWATCH_ADFA unset: ADFA-LD is not redistributable, point it at a local copy to check docs/results/adfa-ld")
	}
	root := testutil.RepoRoot(t)
	out := filepath.Join(t.TempDir(), "adfa")
	lpMust(t, "eval", "--dataset", adfa, "--report", out)
	sameHeadline(t, "ADFA-LD eval vs docs/results", readHeadline(t, filepath.Join(out, "report.json")),
		readHeadline(t, filepath.Join(root, "docs", "results", "adfa-ld", "report.json")))
}
