package report

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var detectorColor = map[string]color.Color{
	Rules: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	Model: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	Both:  color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

func colorOf(name string, i int) color.Color {
	if c, ok := detectorColor[name]; ok {
		return c
	}
	return plotutil.Color(i)
}

// fileName turns a scenario name into a safe file name component.
func fileName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "scenario"
	}
	return b.String()
}

func xys(pts []Point) plotter.XYs {
	out := make(plotter.XYs, len(pts))
	for i, p := range pts {
		out[i].X, out[i].Y = p.X, p.Y
	}
	return out
}

// Plots draws the PNGs into dir and returns their paths.
func (r *Report) Plots(dir string) ([]string, error) {
	var files []string
	save := func(p *plot.Plot, name string, w, h vg.Length) error {
		path := filepath.Join(dir, name)
		if err := p.Save(w, h, path); err != nil {
			return fmt.Errorf("report: plot %s: %w", name, err)
		}
		files = append(files, path)
		return nil
	}
	// ROC and PR curves, one line per detector.
	for _, kind := range []string{"roc", "pr"} {
		p := plot.New()
		unit := "per-event score"
		if r.CurvesPerTrace {
			unit = "per-trace score"
		}
		if kind == "roc" {
			p.Title.Text = "ROC (" + unit + ")"
			p.X.Label.Text, p.Y.Label.Text = "false-positive rate", "true-positive rate"
		} else {
			p.Title.Text = "Precision-recall (" + unit + ")"
			p.X.Label.Text, p.Y.Label.Text = "recall", "precision"
		}
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1.02
		p.Legend.Top = kind == "pr"
		n := 0
		for i, name := range r.Order {
			c, ok := r.Curves[name]
			if !ok {
				continue
			}
			pts := c.ROC
			if kind == "pr" {
				pts = c.PR
			}
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(xys(pts))
			if err != nil {
				return nil, fmt.Errorf("report: %s curve %s: %w", kind, name, err)
			}
			l.Color = colorOf(name, i)
			l.Width = vg.Points(1.5)
			p.Add(l)
			label := name
			if f := r.Detectors[name]; f != nil {
				auc := f.ROCAUC
				if kind == "pr" {
					auc = f.PRAUC
				}
				label = fmt.Sprintf("%s (AUC %s)", name, fmtOpt(auc, "%.3f"))
			}
			p.Legend.Add(label, l)
			n++
		}
		if n == 0 {
			continue
		}
		if kind == "roc" {
			diag, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
			diag.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			diag.Color = color.Gray{Y: 0x99}
			p.Add(diag)
		}
		if err := save(p, kind+".png", 5*vg.Inch, 5*vg.Inch); err != nil {
			return nil, err
		}
	}
	// Per-scenario bars: recall (detected or not) and false alarms.
	if len(r.Scenarios) > 0 && len(r.Order) > 0 {
		for _, metric := range []string{"f1", "false_alarms"} {
			p := plot.New()
			names := make([]string, len(r.Scenarios))
			for i, s := range r.Scenarios {
				names[i] = s.Name
			}
			if metric == "f1" {
				p.Title.Text = "F1 per scenario"
				p.Y.Label.Text = "F1"
			} else {
				p.Title.Text = "False alarms (unattributed alerts) per scenario"
				p.Y.Label.Text = "false alarms"
			}
			w := vg.Points(max(4, 60/float64(len(r.Order)*max(1, len(r.Scenarios)/8))))
			for i, name := range r.Order {
				vals := make(plotter.Values, len(r.Scenarios))
				for j, s := range r.Scenarios {
					if f := s.Detectors[name]; f != nil {
						if metric == "f1" {
							vals[j] = f.F1
						} else {
							vals[j] = float64(f.FP)
						}
					}
				}
				bars, err := plotter.NewBarChart(vals, w)
				if err != nil {
					return nil, fmt.Errorf("report: bars: %w", err)
				}
				bars.Color = colorOf(name, i)
				bars.LineStyle.Width = 0
				bars.Offset = w * vg.Length(float64(i)-float64(len(r.Order)-1)/2)
				p.Add(bars)
				p.Legend.Add(name, bars)
			}
			p.Legend.Top = true
			p.NominalX(names...)
			p.X.Tick.Label.Rotation = 0.9
			p.X.Tick.Label.XAlign = -1
			p.X.Tick.Label.YAlign = -0.5
			width := vg.Length(max(6, 0.5*float64(len(r.Scenarios)))) * vg.Inch
			if err := save(p, "scenarios-"+strings.ReplaceAll(metric, "_", "-")+".png", width, 4.5*vg.Inch); err != nil {
				return nil, err
			}
		}
	}
	// Score timelines with attack windows shaded.
	for _, s := range r.Scenarios {
		if len(s.Timeline) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = "Score timeline: " + s.Name
		p.X.Label.Text, p.Y.Label.Text = "trace time (s)", "event score"
		ymax := 1.0
		for _, pts := range s.Timeline {
			for _, pt := range pts {
				ymax = max(ymax, pt.Y)
			}
		}
		for _, w := range s.Attacks {
			poly, err := plotter.NewPolygon(plotter.XYs{{X: w.Start, Y: 0}, {X: w.End, Y: 0}, {X: w.End, Y: ymax}, {X: w.Start, Y: ymax}})
			if err != nil {
				return nil, err
			}
			poly.Color = shadeColor
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		if len(s.Attacks) > 0 {
			p.Legend.Add("attack window", &shade{})
		}
		for i, name := range r.Order {
			pts := s.Timeline[name]
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(xys(pts))
			if err != nil {
				return nil, err
			}
			l.Color = colorOf(name, i)
			p.Add(l)
			p.Legend.Add(name, l)
		}
		p.Legend.Top = true
		p.Y.Min = 0
		if err := save(p, "timeline-"+fileName(s.Name)+".png", 8*vg.Inch, 3.5*vg.Inch); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// shade is the legend thumbnail of an attack window.
type shade struct{}

func (shade) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{
		{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y},
		{X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y},
	}
	c.FillPolygon(shadeColor, c.ClipPolygonY(pts))
}

// shadeColor is the translucent orange of attack windows (non-premultiplied).
var shadeColor = color.NRGBA{R: 0xff, G: 0xa5, B: 0x00, A: 0x50}
