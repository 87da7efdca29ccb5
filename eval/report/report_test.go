package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample() *Report {
	f := func(p, r float64) *Figures {
		return &Figures{Events: 100, Alerts: 4, TP: 3, FP: 1, FN: 0, Attacks: 1, Detected: 1, Precision: p, Recall: r, F1: 2 * p * r / (p + r),
			DetectionLatencyS: Float(0.5), ROCAUC: Float(0.9), PRAUC: Float(0.7)}
	}
	return &Report{
		Version: Version, Dataset: "tiny|suite", Format: "suite", Generated: time.Unix(0, 0),
		Detectors: map[string]*Figures{Rules: f(0.75, 1), Model: f(0.5, 1), Both: f(0.8, 1)},
		Order:     []string{Rules, Model, Both},
		Scenarios: []*Scenario{{
			Name: "web/reverse shell", Kind: "attack", Workload: "web",
			Detectors: map[string]*Figures{Rules: f(0.75, 1), Model: f(0.5, 1), Both: f(0.8, 1)},
			Timeline:  map[string][]Point{Model: {{0, 0}, {1, 0.2}, {2, 0.9}, {3, 0.1}}, Rules: {{0, 0}, {2, 1}, {3, 0}}},
			Attacks:   []Window{{1.5, 2.5}},
		}},
		Curves: map[string]Curves{
			Model: {ROC: []Point{{0, 0}, {0.2, 0.8}, {1, 1}}, PR: []Point{{0.5, 1}, {1, 0.6}}},
			Rules: {ROC: []Point{{0, 0}, {0.1, 0.6}, {1, 1}}, PR: []Point{{0.6, 0.9}, {1, 0.5}}},
		},
		Notes: []string{"a note with <html> and | pipes"},
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	files, err := sample().Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"report.json", "report.md", "roc.png", "pr.png", "scenarios-f1.png", "scenarios-false-alarms.png", "timeline-web_reverse_shell.png"}
	for _, w := range want {
		st, err := os.Stat(filepath.Join(dir, w))
		if err != nil || st.Size() == 0 {
			t.Fatalf("%s missing or empty (%v); wrote %v", w, err, files)
		}
	}
	var got map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	dets := got["detectors"].(map[string]any)
	for _, d := range []string{"rules", "model", "both"} {
		fig := dets[d].(map[string]any)
		for _, k := range []string{"precision", "recall", "f1", "false_alarms_per_hour", "detection_latency_s", "roc_auc", "consecutive_false_alarms", "events_per_sec", "cpu_per_event_us"} {
			if _, ok := fig[k]; !ok {
				t.Fatalf("detectors.%s lacks %s", d, k)
			}
		}
	}
	sc := got["scenarios"].([]any)[0].(map[string]any)
	if sc["name"] != "web/reverse shell" || sc["detectors"].(map[string]any)["both"].(map[string]any)["precision"] != 0.8 {
		t.Fatalf("scenario %v", sc)
	}
	mdText, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	s := string(mdText)
	if !strings.Contains(s, `tiny\|suite`) || strings.Contains(s, "<html>") || !strings.Contains(s, "![roc.png](roc.png)") ||
		!strings.Contains(s, "| both | 100 | 4 | 3 | 1 | 0 | 0.800 |") {
		t.Fatalf("markdown:\n%s", s)
	}
	png, _ := os.ReadFile(filepath.Join(dir, "roc.png"))
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatal("roc.png is not a PNG")
	}
}

func TestFloatNull(t *testing.T) {
	if Float(0.0/zero()) != nil || Float(1) == nil || *Float(2) != 2 {
		t.Fatal("Float")
	}
}

func zero() float64 { return 0 }
