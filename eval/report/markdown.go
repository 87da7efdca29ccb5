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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
