package report

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// md escapes text for a Markdown table cell.
func md(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "`", "'")
	return r.Replace(s)
}

func fmtOpt(v *float64, format string) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf(format, *v)
}

// Markdown renders the report; plots are linked relative to dir.
func (r *Report) Markdown(plots []string, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# driftwatch eval: %s\n\n", md(r.Dataset))
	fmt.Fprintf(&b, "Format: %s. Generated %s. Figures defined in docs/eval.md.\n\n", md(r.Format), r.Generated.UTC().Format("2006-01-02 15:04:05Z"))
	b.WriteString("## Overall\n\n")
	writeTable(&b, "detector", r.Order, r.Detectors)
	writeTraceTable(&b, r.Order, r.Detectors, true)
	for _, sp := range sortedKeys(r.Splits) {
		fmt.Fprintf(&b, "\n## Split: %s\n\n", md(sp))
		writeTable(&b, "detector", r.Order, r.Splits[sp])
	}
	b.WriteString("\n## Per scenario\n\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "### %s (%s", md(s.Name), md(s.Kind))
		if s.Workload != "" {
			fmt.Fprintf(&b, ", workload %s", md(s.Workload))
		}
		b.WriteString(")\n\n")
		writeTable(&b, "detector", r.Order, s.Detectors)
		writeTraceTable(&b, r.Order, s.Detectors, false)
		b.WriteString("\n")
	}
	if r.Overhead != nil {
		b.WriteString("## Overhead\n\n")
		if m, ok := r.Overhead.(interface{ Markdown() string }); ok {
			b.WriteString(m.Markdown())
		} else {
			fmt.Fprintf(&b, "```\n%v\n```\n", r.Overhead)
		}
		b.WriteString("\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", md(n))
		}
		b.WriteString("\n")
	}
	if len(plots) > 0 {
		b.WriteString("## Plots\n\n")
		for _, p := range plots {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				rel = p
			}
			fmt.Fprintf(&b, "![%s](%s)\n\n", md(rel), filepath.ToSlash(rel))
		}
	}
	return b.String()
}

func writeTable(b *strings.Builder, first string, order []string, figs map[string]*Figures) {
	fmt.Fprintf(b, "| %s | events | alerts | TP | FP | FN | precision | recall | F1 | FA/container-h | latency s | ROC AUC | PR AUC | DR | FA | CFA | events/s | CPU µs/event |\n", first)
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range order {
		f := figs[name]
		if f == nil {
			continue
		}
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %.3f | %.3f | %.3f | %.2f | %s | %s | %s | %.3f | %d | %d | %.0f | %.2f |\n",
			md(name), f.Events, f.Alerts, f.TP, f.FP, f.FN, f.Precision, f.Recall, f.F1, f.FalseAlarmsPerHour,
			fmtOpt(f.DetectionLatencyS, "%.3f"), fmtOpt(f.ROCAUC, "%.3f"), fmtOpt(f.PRAUC, "%.3f"),
			f.DetectionRate, f.FalseAlarms, f.ConsecutiveFalseAlarms, f.EventsPerSec, f.CPUPerEventUs)
	}
}

// writeTraceTable renders the trace-level figures of the detectors that
// have them, with their score and calibration definitions when defs is set.
func writeTraceTable(b *strings.Builder, order []string, figs map[string]*Figures, defs bool) {
	var rows []string
	for _, name := range order {
		if f := figs[name]; f != nil && f.TraceFigures != nil {
			rows = append(rows, name)
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n### Per trace\n\n")
	b.WriteString("| detector | traces | attack traces | trace ROC AUC | trace PR AUC | DR @1% FPR | DR @5% FPR | DR @10% FPR | threshold | DR at threshold | FPR at threshold |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range rows {
		t := figs[name].TraceFigures
		at := func(k string) string {
			if v, ok := t.DetectionRateAtFPR[k]; ok {
				return fmt.Sprintf("%.3f", v)
			}
			return "–"
		}
		fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %.3f | %.3f |\n",
			md(name), t.Traces, t.AttackTraces, fmtOpt(t.TraceROCAUC, "%.3f"), fmtOpt(t.TracePRAUC, "%.3f"),
			at("0.01"), at("0.05"), at("0.1"),
			fmtOpt(t.TraceThreshold, "%.4g"), t.TraceDetectionRate, t.TraceFalsePositiveRate)
	}
	b.WriteString("\n")
	for _, name := range rows {
		if !defs {
			break
		}
		t := figs[name].TraceFigures
		fmt.Fprintf(b, "- %s: score = %s; threshold: %s\n", md(name), md(t.TraceScore), md(t.Calibration))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
