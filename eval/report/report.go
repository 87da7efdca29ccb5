// Package report holds the eval harness's results and writes them:
// report.json (machine-readable figures per detector and per scenario),
// report.md (the same as tables, with definitions) and PNG plots drawn with
// gonum/plot (score timelines with attack windows shaded, ROC and PR curves,
// per-scenario bars).
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Version of the report.json layout.
const Version = 1

// Detector names as they appear under "detectors".
const (
	Rules = "rules"
	Model = "model"
	Both  = "both"
	// Stide is the STIDE baseline on sequence datasets (LID-DS, ADFA-LD).
	Stide = "stide"
)

// Figures are one detector's results over a scenario or a whole dataset.
type Figures struct {
	Events  int64 `json:"events"`
	Alerts  int   `json:"alerts"`
	TP      int   `json:"tp"`
	FP      int   `json:"fp"`
	FN      int   `json:"fn"`
	Attacks int   `json:"attacks"`
	// Detected counts attacks with at least one attributed alert.
	Detected           int      `json:"detected_attacks"`
	Precision          float64  `json:"precision"`
	Recall             float64  `json:"recall"`
	F1                 float64  `json:"f1"`
	ContainerHours     float64  `json:"container_hours"`
	FalseAlarmsPerHour float64  `json:"false_alarms_per_hour"`
	DetectionLatencyS  *float64 `json:"detection_latency_s"`
	ROCAUC             *float64 `json:"roc_auc"`
	PRAUC              *float64 `json:"pr_auc"`
	// LID-DS style, counted per event (syscall).
	DetectionRate          float64 `json:"detection_rate"`
	FalseAlarms            int     `json:"false_alarms"`
	ConsecutiveFalseAlarms int     `json:"consecutive_false_alarms"`
	// Cost of replaying the test traces through the pipeline.
	EventsPerSec  float64 `json:"events_per_sec"`
	CPUPerEventUs float64 `json:"cpu_per_event_us"`
	// Threshold is the alarm threshold of a sequence model, when one is used.
	Threshold *float64 `json:"threshold,omitempty"`
	// Trace-level figures (sequence datasets): one score per test trace,
	// attack iff the trace is an attack trace (docs/eval.md).
	*TraceFigures
}

// TraceFigures are a detector's trace-level figures: each test trace gets
// one score (TraceScore says which) and is an attack or a benign trace.
type TraceFigures struct {
	// TraceScore defines the per-trace score.
	TraceScore   string `json:"trace_score"`
	Traces       int    `json:"traces"`
	AttackTraces int    `json:"attack_traces"`
	// TraceROCAUC and TracePRAUC are the areas under the per-trace ROC
	// curve and the per-trace average precision.
	TraceROCAUC *float64 `json:"trace_roc_auc"`
	TracePRAUC  *float64 `json:"trace_pr_auc"`
	// DetectionRateAtFPR maps a false-positive rate ("0.01", "0.05",
	// "0.1") to the fraction of attack traces detected at it, the
	// threshold set on the test traces' benign scores (an oracle threshold,
	// for comparison with published figures).
	DetectionRateAtFPR map[string]float64 `json:"detection_rate_at_fpr"`
	// TraceThreshold is the threshold chosen on dev data only, Calibration
	// says how; TraceDetectionRate and TraceFalsePositiveRate are the
	// fractions of attack and benign test traces scoring above it.
	TraceThreshold         *float64 `json:"trace_threshold"`
	Calibration            string   `json:"calibration"`
	TraceDetectionRate     float64  `json:"trace_detection_rate"`
	TraceFalsePositiveRate float64  `json:"trace_false_positive_rate"`
}

// FPRKeys are the false-positive rates of DetectionRateAtFPR, as JSON keys.
var FPRKeys = []string{"0.01", "0.05", "0.1"}

// Point is one (x, y) sample of a plot series.
type Point struct{ X, Y float64 }

// Window is an attack window in seconds from the start of its trace.
type Window struct{ Start, End float64 }

// Scenario is one scenario's figures per detector, plus plot data.
type Scenario struct {
	Name      string              `json:"name"`
	Workload  string              `json:"workload,omitempty"`
	Kind      string              `json:"kind"`
	Split     string              `json:"split,omitempty"`
	Detectors map[string]*Figures `json:"detectors"`
	// Timeline holds, per detector, the event score over trace time in
	// seconds (downsampled, max per bucket); Attacks the labelled windows.
	Timeline map[string][]Point `json:"-"`
	Attacks  []Window           `json:"-"`
}

// Curves are a detector's pooled ROC and PR curves.
type Curves struct {
	ROC, PR []Point
}

// Report is the result of one eval run.
type Report struct {
	Version   int       `json:"version"`
	Dataset   string    `json:"dataset"`
	Format    string    `json:"format"`
	Generated time.Time `json:"generated"`
	// Detectors holds the overall figures: "rules", "model", "both".
	Detectors map[string]*Figures `json:"detectors"`
	// Splits holds the figures per manifest split ("dev", "held-out"),
	// then per detector; absent when the suite names no split.
	Splits    map[string]map[string]*Figures `json:"splits,omitempty"`
	Scenarios []*Scenario                    `json:"scenarios"`
	// Overhead is the overhead benchmark table, when requested.
	Overhead any `json:"overhead,omitempty"`
	// Notes explain settings and shortfalls (thresholds, skipped parts).
	Notes []string `json:"notes,omitempty"`
	// Curves are per detector, for the ROC and PR plots.
	Curves map[string]Curves `json:"-"`
	// CurvesPerTrace says the curves are of per-trace scores (sequence
	// datasets), not per-event ones.
	CurvesPerTrace bool `json:"-"`
	// Order lists the detectors that ran, in display order.
	Order []string `json:"-"`
}

// Float returns a pointer to v, or nil when v is NaN or infinite (JSON null).
func Float(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Write stores report.json, report.md and the plots in dir (created).
// It returns the files written.
func (r *Report) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	files := []string{filepath.Join(dir, "report.json"), filepath.Join(dir, "report.md")}
	if err := os.WriteFile(files[0], append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	plots, err := r.Plots(dir)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(files[1], []byte(r.Markdown(plots, dir)), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return append(files, plots...), nil
}
