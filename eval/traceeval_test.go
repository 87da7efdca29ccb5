package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/eval/report"
	"github.com/driftwatch/driftwatch/internal/testutil"
	"github.com/driftwatch/driftwatch/model/seq"
)

// synthADFA writes an ADFA-LD layout: benign traces walk a noisy loop of
// i386 syscalls; an attack trace is a benign trace with a stretch of 20–80
// calls inserted where the attacker's code runs: calls benign traces make
// (and two they never make) in an order they never use, as ADFA-LD's
// attack processes do something else for a while. Attack directories are
// named after ADFA-LD families (Adduser, Hydra_FTP: dev; Web_Shell: held
// out). It returns the root.
func synthADFA(t *testing.T, train, val, attacks int, seed uint64) string {
	t.Helper()
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 7))
	loops := [][]int{{3, 4, 5, 6, 192, 91}, {3, 3, 4, 54, 5, 6}, {102, 3, 4, 6}}
	benign := func() []int {
		var out []int
		n := 100 + rng.IntN(200)
		l := loops[rng.IntN(len(loops))]
		for i := 0; len(out) < n; i++ {
			if rng.IntN(40) == 0 {
				l = loops[rng.IntN(len(loops))]
			}
			out = append(out, l[i%len(l)])
			if rng.IntN(15) == 0 {
				out = append(out, 45)
			}
		}
		return out
	}
	write := func(dir, name string, calls []int) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, c := range calls {
			fmt.Fprintf(&b, "%d ", c)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < train; i++ {
		write(filepath.Join(root, "Training_Data_Master"), fmt.Sprintf("UTD-%04d.txt", i), benign())
	}
	for i := 0; i < val; i++ {
		write(filepath.Join(root, "Validation_Data_Master"), fmt.Sprintf("UVD-%04d.txt", i), benign())
	}
	attacker := []int{11, 102, 63, 5, 3, 102, 6, 5, 4}
	families := []string{"Adduser_1", "Hydra_FTP_1", "Web_Shell_1"}
	for i := 0; i < attacks; i++ {
		calls := benign()
		at := rng.IntN(len(calls))
		var bs []int
		for j, n := rng.IntN(len(attacker)), 20+rng.IntN(61); len(bs) < n; j++ {
			bs = append(bs, attacker[j%len(attacker)])
		}
		calls = append(calls[:at], append(bs, calls[at:]...)...)
		write(filepath.Join(root, "Attack_Data_Master", families[i%3]), fmt.Sprintf("UAD-S-%d.txt", i), calls)
	}
	return root
}

func TestTraceLevelADFA(t *testing.T) {
	root := synthADFA(t, 60, 100, 30, 1)
	rep, err := Run(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rep.Order, ","); got != "stide,model" {
		t.Fatalf("detectors %s", got)
	}
	for _, name := range rep.Order {
		f := rep.Detectors[name]
		tf := f.TraceFigures
		if tf == nil || tf.Traces != 130 || tf.AttackTraces != 30 || f.Attacks != 30 {
			t.Fatalf("%s: %+v", name, tf)
		}
		if tf.TraceROCAUC == nil || *tf.TraceROCAUC < 0.9 || tf.TracePRAUC == nil {
			t.Errorf("%s: trace ROC AUC %v on a separable synthetic set", name, *tf.TraceROCAUC)
		}
		for _, k := range []string{"0.01", "0.05", "0.1"} {
			if _, ok := tf.DetectionRateAtFPR[k]; !ok {
				t.Errorf("%s: no detection rate at FPR %s", name, k)
			}
		}
		if tf.DetectionRateAtFPR["0.1"] < tf.DetectionRateAtFPR["0.01"] {
			t.Errorf("%s: detection falls with FPR: %v", name, tf.DetectionRateAtFPR)
		}
		if tf.TraceThreshold == nil || !strings.Contains(tf.Calibration, "benign test traces of the dev part") {
			t.Errorf("%s: threshold %v calibration %q", name, tf.TraceThreshold, tf.Calibration)
		}
		// The main figures count flagged traces at the calibrated threshold.
		if f.Detected != int(math.Round(tf.TraceDetectionRate*30)) || f.FP != int(math.Round(tf.TraceFalsePositiveRate*100)) {
			t.Errorf("%s: detected %d fp %d vs rates %g %g", name, f.Detected, f.FP, tf.TraceDetectionRate, tf.TraceFalsePositiveRate)
		}
		if f.ROCAUC != nil {
			t.Errorf("%s: per-event AUC on ADFA-LD", name)
		}
	}
	// Dev and held-out parts: the same traces, split by attack family
	// (Adduser, Hydra_FTP dev; Web_Shell held out) and benign file name.
	if len(rep.Scenarios) != 3 || rep.Scenarios[1].Name != "ADFA-LD dev" || rep.Scenarios[2].Name != "ADFA-LD held-out" {
		t.Fatalf("scenarios %v", rep.Scenarios)
	}
	for _, name := range rep.Order {
		dev, held := rep.Scenarios[1].Detectors[name].TraceFigures, rep.Scenarios[2].Detectors[name].TraceFigures
		if dev.AttackTraces != 20 || held.AttackTraces != 10 || dev.Traces+held.Traces != 130 ||
			dev.Traces == dev.AttackTraces || held.Traces == held.AttackTraces {
			t.Errorf("%s: dev %d traces (%d attack), held-out %d (%d)", name, dev.Traces, dev.AttackTraces, held.Traces, held.AttackTraces)
		}
		if *dev.TraceThreshold != *rep.Detectors[name].TraceThreshold || dev.TraceROCAUC == nil || held.TraceROCAUC == nil {
			t.Errorf("%s: parts must share the threshold and have AUCs: %+v %+v", name, dev, held)
		}
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "model order") {
		t.Errorf("no model order note: %q", rep.Notes)
	}
	// The report writes and reads back with the contract keys.
	dir := t.TempDir()
	if _, err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	for _, k := range []string{`"trace_roc_auc"`, `"trace_pr_auc"`, `"detection_rate_at_fpr"`, `"0.05"`, `"stide"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("report.json lacks %s", k)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "Per trace") {
		t.Error("report.md has no per-trace table")
	}
	if _, held, ok := strings.Cut(string(md), "### ADFA-LD held-out"); !ok || !strings.Contains(held, "| trace ROC AUC |") {
		t.Error("report.md has no per-trace table for the held-out part")
	}

	// One detector only; rules are refused on sequence datasets.
	rep, err = Run(context.Background(), root, Options{Detector: DetectModel})
	if err != nil || len(rep.Detectors) != 1 || rep.Detectors[DetectModel] == nil {
		t.Fatalf("model only: %v %v", err, rep)
	}
	if _, err := Run(context.Background(), root, Options{Detector: DetectRules}); err == nil {
		t.Error("rules accepted on ADFA-LD")
	}
}

func TestCalibrate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dev       []float64
		ceiling   float64
		want      float64
		warn, err bool
	}{
		{"below ceiling", []float64{0.1, 0.2, 0.3}, 1, 0.3, false, false},
		{"clamped", []float64{1, 1, 0.4, 0.2}, 1, 0.4, true, false},
		{"all at ceiling", []float64{1, 1}, 1, 0, false, true},
		{"unbounded", []float64{5, 7}, math.Inf(1), 7, false, false},
		{"no dev", nil, 1, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warn, err := calibrate(tc.dev, 0.05, tc.ceiling)
			if (err != nil) != tc.err || (warn != "") != tc.warn || (err == nil && got != tc.want) {
				t.Fatalf("calibrate = %g, %q, %v", got, warn, err)
			}
		})
	}
}

// TestThresholdCannotBeExceeded: the dev benign trace (UVD-1.txt hashes
// even) shares no 6-gram with training, so its STIDE score is 1 and no
// threshold can be exceeded: an error naming it, never a silent run with
// nothing detected. Without dev benign traces the threshold comes from
// cross-validation over training, whose traces share no 6-gram either.
func TestThresholdCannotBeExceeded(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 6; i++ {
		dir := filepath.Join(root, "Training_Data_Master")
		os.MkdirAll(dir, 0o755)
		var b strings.Builder
		for j := 0; j < 20; j++ {
			fmt.Fprintf(&b, "%d ", 1+i*20+j)
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("UTD-%d.txt", i)), []byte(b.String()), 0o644)
	}
	os.MkdirAll(filepath.Join(root, "Validation_Data_Master"), 0o755)
	os.WriteFile(filepath.Join(root, "Validation_Data_Master", "UVD-1.txt"), []byte("201 202 203 204 205 206 207 208"), 0o644)
	os.MkdirAll(filepath.Join(root, "Attack_Data_Master", "X_1"), 0o755)
	os.WriteFile(filepath.Join(root, "Attack_Data_Master", "X_1", "UAD-1.txt"), []byte("9 9 9 9 9 9 9 9"), 0o644)
	_, err := Run(context.Background(), root, Options{Detector: DetectStide})
	if err == nil || !strings.Contains(err.Error(), "cannot be exceeded") {
		t.Fatalf("dev benign trace: err = %v", err)
	}
	// UVD-2.txt hashes odd: held out, so cross-validation calibrates.
	os.Rename(filepath.Join(root, "Validation_Data_Master", "UVD-1.txt"), filepath.Join(root, "Validation_Data_Master", "UVD-2.txt"))
	_, err = Run(context.Background(), root, Options{Detector: DetectStide})
	if err == nil || !strings.Contains(err.Error(), "cannot be exceeded") {
		t.Fatalf("cross-validation: err = %v", err)
	}
}

func TestSeqDefaults(t *testing.T) {
	o := Options{}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	if o.Seq.N != 0 || o.Seq.Window != seq.DefaultConfig().Window || o.TargetFPR != DefaultTargetFPR || o.Folds != DefaultFolds {
		t.Fatalf("defaults %+v", o)
	}
	for _, bad := range []Options{{TargetFPR: 1.5}, {Folds: 1}} {
		if err := bad.defaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	_ = report.Stide
}

// TestLIDDSScenario runs a LID-DS scenario built from the shared sample
// recording (training, validation and test each hold it): per-event stide
// figures with the LID-DS metrics, and trace figures for both detectors.
func TestLIDDSScenario(t *testing.T) {
	sample := filepath.Join(testutil.SharedDir(t), "datasets", "lid-ds-2021-sample", "aggressive_nightingale_1018.zip")
	b, err := os.ReadFile(sample)
	if err != nil {
		t.Skipf("LID-DS sample not readable: %v", err)
	}
	dir := t.TempDir()
	for _, sub := range []string{"training", "validation", filepath.Join("test", "normal_and_attack")} {
		os.MkdirAll(filepath.Join(dir, sub), 0o755)
		if err := os.WriteFile(filepath.Join(dir, sub, "aggressive_nightingale_1018.zip"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Run(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, m := rep.Detectors[DetectStide], rep.Detectors[DetectModel]
	if rep.Format != "lid-ds" || st == nil || m == nil || st.TraceFigures == nil || m.TraceFigures == nil {
		t.Fatalf("report %+v", rep)
	}
	// Per-event: the test recording is the training recording, so no
	// window holds an unseen n-gram and nothing alarms.
	if st.Events == 0 || st.Attacks != 1 || st.Alerts != 0 || st.Threshold == nil {
		t.Fatalf("stide per-event %+v", st)
	}
	if st.TraceFigures.Traces != 1 || st.TraceFigures.AttackTraces != 1 || st.TraceFigures.TraceROCAUC != nil {
		t.Fatalf("stide trace %+v", st.TraceFigures)
	}
	if !strings.Contains(m.TraceFigures.Calibration, "validation traces (1)") {
		t.Fatalf("model calibration %q", m.TraceFigures.Calibration)
	}
}

// TestLIDDS2019Scenario: a LID-DS 2019 scenario (runs.csv + .txt
// recordings) is split as the LID-DS framework does it: normal recordings
// in runs.csv order to training (up to 200), then validation (50), then
// test, exploit recordings to test.
func TestLIDDS2019Scenario(t *testing.T) {
	src := filepath.Join("lidds", "testdata", "rec2019")
	normal, err := os.ReadFile(filepath.Join(src, "normal_run.txt"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := os.ReadFile(filepath.Join(src, "bad_run.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	csv := "image_name, scenario_name, is_executing_exploit, warmup_time, recording_time, exploit_start_time\n"
	for i := 0; i < 253; i++ {
		name := fmt.Sprintf("normal_%03d", i)
		csv += fmt.Sprintf("CVE-2014-0160, %s, False, 10, 30, -1\n", name)
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), normal, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	csv += "CVE-2014-0160, bad_000, True, 10, 30, 2\n"
	csv += "CVE-2014-0160, missing_run, False, 10, 30, -1\n" // no .txt: skipped
	os.WriteFile(filepath.Join(dir, "bad_000.txt"), bad, 0o644)
	os.WriteFile(filepath.Join(dir, "runs.csv"), []byte(csv), 0o644)

	s, ok := liddsScenario(dir)
	if !ok || len(s.train) != 200 || len(s.validation) != 50 || len(s.test) != 4 {
		t.Fatalf("split %v: %d training, %d validation, %d test", ok, len(s.train), len(s.validation), len(s.test))
	}
	if filepath.Base(s.train[0]) != "normal_000.txt" || filepath.Base(s.validation[0]) != "normal_200.txt" || filepath.Base(s.test[3]) != "bad_000.txt" {
		t.Fatalf("order: %s %s %s", s.train[0], s.validation[0], s.test[3])
	}
	rep, err := Run(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Detectors[DetectModel]
	if rep.Format != "lid-ds" || m == nil || m.TraceFigures == nil || m.TraceFigures.Traces != 4 || m.TraceFigures.AttackTraces != 1 {
		t.Fatalf("report %+v", rep.Detectors)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "LID-DS 2019 scenario") {
		t.Errorf("notes %q", rep.Notes)
	}
}
