package model

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	ctr1  = &event.Container{ContainerInfo: event.ContainerInfo{ID: "c1", Image: "web:1", ImageRepo: "web", ImageTag: "1", Namespace: "shop", PodName: "web-0"}}
	shP   = &event.Process{Pid: 1, Exe: "/bin/sh", Args: []string{"sh"}}
)

func execE(t int64, exe string, argv ...string) *event.Enriched {
	p := &event.Process{Pid: 2, Exe: exe, Args: argv, Parent: shP, Container: ctr1}
	return &event.Enriched{Event: &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(exe), Argv: []byte(strings.Join(argv, "\x00"))}, Proc: p, Container: ctr1}
}

func openE(t int64, path string) *event.Enriched {
	p := &event.Process{Pid: 3, Exe: "/usr/sbin/nginx", Args: []string{"nginx"}, Parent: shP, Container: ctr1}
	return &event.Enriched{Event: &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: t, Path: []byte(path), Ret: 3}, Proc: p, Container: ctr1}
}

func connectE(t int64, dst string) *event.Enriched {
	p := &event.Process{Pid: 3, Exe: "/usr/sbin/nginx", Args: []string{"nginx"}, Parent: shP, Container: ctr1}
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Time: t, Family: event.AFInet, Proto: event.ProtoTCP, Dst: netip.MustParseAddrPort(dst)}
	return &event.Enriched{Event: ev, Proc: p, Container: ctr1}
}

// scoreOf returns the surprise of e's first feature under its profile.
func scoreOf(t *testing.T, d *Detector, e *event.Enriched) float64 {
	t.Helper()
	s := math.NaN()
	d.prof.View(e, func(pr *profiler.Profile, feats []profiler.Feature) {
		if pr == nil || len(feats) == 0 {
			t.Fatalf("no profile or features for %s", e.Type())
		}
		f := &feats[0]
		var leaf uint64
		if fs := pr.Feature(f.Cat, f.Hash); fs != nil {
			leaf = fs.Count
		}
		s = surprise(pr, f.Cat, f.Chain[:f.Depth], leaf, 0, d.cfg.BackoffBits)
	})
	return s
}

func TestSurpriseExact(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	d := NewDetector(prof, Config{})
	for i := 0; i < 3; i++ {
		prof.Learn(execE(t0+int64(i), "/usr/bin/cat", "cat", "/etc/x"))
	}
	prof.Learn(execE(t0+10, "/usr/bin/ls", "ls"))
	// Process root: N=4, children cat (3) and ls (1): N1=1.
	for _, tc := range []struct {
		name string
		e    *event.Enriched
		want float64
	}{
		// max(3/4, (1+½)/(1+1)) = 0.75, then max(3/3, …) = 1.
		{"seen frequent", execE(t0, "/usr/bin/cat", "cat", "/etc/y"), -math.Log2(0.75)},
		// max(1/4, (0+½)/(8−1+1)) = 0.25, then 1.
		{"seen once", execE(t0, "/usr/bin/ls", "ls"), 2},
		// new child of the root: the root's unseen estimate is over the
		// profile's T = 8 observations (4 execs, 4 edges): (1+½)/(8+1),
		// plus one back-off level.
		{"new executable", execE(t0, "/usr/bin/id", "id"), -math.Log2(1.5/9) + 1},
		// known executable, new argv shape: 0.75 then (0+½)/(3+1).
		{"new argv shape", execE(t0, "/usr/bin/cat", "cat", "-n", "/etc/y"), -math.Log2(0.75) + 3},
		// empty category: ½/(T+1) with T=4 observations (edges do not count:
		// the edge category has 4 too, so T=8), one back-off level.
		{"empty category", connectE(t0, "10.0.0.1:5432"), -math.Log2(0.5/9) + 1},
	} {
		if got := scoreOf(t, d, tc.e); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: surprise %.6f, want %.6f", tc.name, got, tc.want)
		}
	}
}

// randomWorkload learns n random file and exec events drawn from a skewed
// vocabulary, some of it in a fan-out directory.
func randomWorkload(r *rand.Rand, prof *profiler.Profiler, n int) []*event.Enriched {
	var evs []*event.Enriched
	for i := 0; i < n; i++ {
		var e *event.Enriched
		tm := t0 + int64(i)*int64(time.Second)
		switch k := r.IntN(10); {
		case k < 6:
			e = openE(tm, fmt.Sprintf("/etc/app/f%d.conf", int(r.ExpFloat64()*3)))
		case k < 8:
			e = openE(tm, fmt.Sprintf("/var/cache/d%d/x%d", r.IntN(3), r.IntN(40)))
		default:
			e = execE(tm, fmt.Sprintf("/usr/bin/tool%d", int(r.ExpFloat64()*2)), "tool", fmt.Sprint("-v", r.IntN(2)))
		}
		prof.Learn(e)
		evs = append(evs, e)
	}
	return evs
}

// Seeing a feature again never raises its surprise, and every unseen-mass
// estimate stays in (0, 1].
func TestPropertySeeingAgainNeverRaisesSurprise(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		prof := profiler.New(nil, profiler.Config{Logger: quiet, Gen: profiler.GenConfig{CollapseThreshold: 1000}})
		d := NewDetector(prof, Config{})
		randomWorkload(r, prof, 1+r.IntN(200))
		probes := randomWorkload(rand.New(rand.NewPCG(seed, 99)), profiler.New(nil, profiler.Config{Logger: quiet}), 30)
		for _, e := range probes {
			before := scoreOf(t, d, e)
			prof.Learn(e)
			after := scoreOf(t, d, e)
			if after > before+1e-9 {
				t.Fatalf("seed %d: %s: surprise rose from %.6f to %.6f after seeing it again", seed, e.Type(), before, after)
			}
			if before < 0 || after < 0 {
				t.Fatalf("negative surprise %v %v", before, after)
			}
		}
	}
}

func TestPropertyUnseenMassBounds(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		prof := profiler.New(nil, profiler.Config{Logger: quiet})
		randomWorkload(r, prof, r.IntN(300))
		prof.WithProfile("web:1", func(pr *profiler.Profile) {
			if pr == nil {
				return
			}
			for c := profiler.Category(0); c < profiler.NumCategories; c++ {
				st := pr.Stats(c)
				if st.UnseenMass <= 0 || st.UnseenMass > 1 || st.WindowUnseen > 1 {
					t.Fatalf("seed %d %s: unseen mass %v window %v", seed, c, st.UnseenMass, st.WindowUnseen)
				}
				pr.EachFeature(c, func(_ uint64, f *profiler.FeatureStat) {
					for _, l := range f.Levels {
						n := pr.Node(c, profiler.HashString(f.Text[:l]))
						if m := profiler.UnseenMass(n.N1, n.N); m <= 0 || m > 1 || n.N1 > n.K || n.K > n.N {
							t.Fatalf("seed %d node %q: %+v mass %v", seed, f.Text[:l], *n, m)
						}
					}
				})
			}
		})
	}
	for _, tc := range [][2]uint64{{0, 0}, {0, 10}, {10, 10}, {5, 1 << 40}, {20, 10}} {
		if m := profiler.UnseenMass(tc[0], tc[1]); m <= 0 || m > 1 {
			t.Errorf("UnseenMass(%d, %d) = %v", tc[0], tc[1], m)
		}
	}
}

// The leave-one-out surprise used for calibration equals the surprise of
// the feature in a profile that never saw it.
func TestLeaveOneOutMatchesNeverSeen(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		evs := randomWorkload(rand.New(rand.NewPCG(seed, 5)), profiler.New(nil, profiler.Config{Logger: quiet}), 150)
		// The probe is a file open: its event has no other feature, so the
		// profile without it also has exactly its observations fewer in
		// total (an exec's edge would stay in T under leave-one-out).
		pr := rand.New(rand.NewPCG(seed, 6))
		probe := evs[pr.IntN(len(evs))]
		for probe.Event.Kind == event.KindExec {
			probe = evs[pr.IntN(len(evs))]
		}
		// Fixed generalisation (no collapse, no mined templates): the
		// identity is about the counts, not about what a name becomes.
		gen := profiler.GenConfig{CollapseThreshold: 1000, NoTemplates: true}
		with := profiler.New(nil, profiler.Config{Logger: quiet, Gen: gen})
		without := profiler.New(nil, profiler.Config{Logger: quiet, Gen: gen})
		var probeText string
		with.View(probe, func(_ *profiler.Profile, fs []profiler.Feature) {})
		x := profiler.NewExtractor(profiler.GenConfig{})
		probeText = string(x.Extract(probe, nil)[0].Text)
		for _, e := range evs {
			with.Learn(e)
			if string(x.Extract(e, nil)[0].Text) != probeText {
				without.Learn(e)
			}
		}
		dw, dn := NewDetector(with, Config{}), NewDetector(without, Config{})
		var loo float64
		with.View(probe, func(pr *profiler.Profile, fs []profiler.Feature) {
			f := &fs[0]
			c := pr.Feature(f.Cat, f.Hash).Count
			loo = surprise(pr, f.Cat, f.Chain[:f.Depth], c, c, dw.cfg.BackoffBits)
		})
		if got := scoreOf(t, dn, probe); math.Abs(got-loo) > 1e-9 {
			t.Errorf("seed %d %q: leave-one-out %.6f, never seen %.6f", seed, probeText, loo, got)
		}
	}
}

func TestCalibration(t *testing.T) {
	// A category that keeps seeing new features after warm-up gets a
	// threshold above its benign first-sight surprises; one that does not
	// stays at the floor.
	prof := profiler.New(nil, profiler.Config{Logger: quiet, WarmUpEvents: 1, WarmUp: time.Nanosecond, Gen: profiler.GenConfig{CollapseOverrides: map[string]int{"/data/": 0}}})
	d := NewDetector(prof, Config{})
	for i := 0; i < 3600; i++ {
		tm := t0 + int64(i)*int64(time.Second)
		prof.Learn(openE(tm, "/etc/app.conf"))
		if i%60 == 0 { // one new file a minute: 60 benign novelties per hour
			prof.Learn(openE(tm, fmt.Sprintf("/data/blob-%c%c", 'a'+i/60%26, 'a'+i/1560)))
		}
	}
	cals, ok := d.Calibrations("web:1")
	if !ok {
		t.Fatal("no profile")
	}
	file := cals[profiler.CatFile]
	if file.Samples != 60 || math.Abs(file.NoveltyRate-60) > 1.1 {
		t.Errorf("file calibration %+v: want 60 samples, ν≈60/h", file)
	}
	if file.Method == "floor" || file.Threshold <= d.cfg.MinThreshold {
		t.Errorf("file threshold not raised: %+v", file)
	}
	// The benign next novelty is below the threshold; a new top-level
	// directory is above it.
	benign := scoreOf(t, d, openE(t0, "/data/blob-zz"))
	if benign >= file.Threshold {
		t.Errorf("benign novelty %.2f ≥ threshold %.2f", benign, file.Threshold)
	}
	if s := scoreOf(t, d, openE(t0, "/root/.ssh/id_rsa")); s < file.Threshold {
		t.Errorf("novel directory %.2f < threshold %.2f", s, file.Threshold)
	}
	if p := cals[profiler.CatProcess]; p.Method != "floor" || p.Threshold != d.cfg.MinThreshold {
		t.Errorf("empty process category: %+v", p)
	}
}

func TestSuppressAndScores(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	d := NewDetector(prof, Config{})
	for i := 0; i < 50; i++ {
		d.Handle(openE(t0+int64(i), "/etc/nginx/nginx.conf"), event.ModeLearn, nil)
	}
	prof.Finalize(false)
	tagged := &event.Alert{Rule: "Read sensitive file", Tags: []string{"allow_autosuppression", "filesystem"}}
	untagged := &event.Alert{Rule: "Read sensitive file", Tags: []string{"filesystem"}}
	if !d.Suppress(tagged, openE(t0, "/etc/nginx/nginx.conf")) {
		t.Error("known behaviour in a detecting profile not suppressed")
	}
	if d.Suppress(untagged, openE(t0, "/etc/nginx/nginx.conf")) {
		t.Error("untagged rule suppressed")
	}
	if d.Suppress(tagged, openE(t0, "/etc/shadow")) {
		t.Error("unknown behaviour suppressed")
	}
	if got := d.Stats().Suppressed; got != 1 {
		t.Errorf("suppressed count %d", got)
	}
	off := NewDetector(prof, Config{NoAutoSuppress: true})
	if off.Suppress(tagged, openE(t0, "/etc/nginx/nginx.conf")) {
		t.Error("suppression not configurable")
	}

	// Live mode emits from Handle; the container score decays by half per half-life.
	var got []*event.Alert
	emit := func(a *event.Alert) { got = append(got, a) }
	d.Handle(openE(t0+100, "/etc/shadow"), event.ModeDetect, emit)
	d.Handle(openE(t0+200, "/etc/shadow"), event.ModeDetect, emit) // deduplicated
	d.Handle(openE(t0+300, "/etc/nginx/nginx.conf"), event.ModeDetect, emit)
	d.Handle(openE(t0+400, "/etc/shadow"), event.ModeOff, emit)
	if len(got) != 1 || got[0].Rule != RuleNames[profiler.CatFile] || got[0].OutputFields["k8s.ns.name"] != "shop" {
		t.Fatalf("alerts %+v", got)
	}
	a := got[0]
	th := a.OutputFields["anomaly.threshold"].(float64)
	sc := d.ContainerScores()
	if len(sc) != 1 || sc[0].ContainerID != "c1" {
		t.Fatalf("scores %+v", sc)
	}
	wantScore := 2 * (a.Score - th) // two anomalous events (the repeat still counts), decay negligible over 100 ns
	if math.Abs(sc[0].Score-wantScore) > 0.05 {
		t.Errorf("container score %.3f, want ≈ %.3f", sc[0].Score, wantScore)
	}
	d.Handle(openE(t0+200+int64(5*time.Minute), "/etc/other-unseen"), event.ModeDetect, emit)
	st := d.Stats()
	if st.Deduplicated != 1 || st.Anomalies != 2 || st.PerCategory[profiler.CatFile].Anomalies != 2 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(a.Output, "/etc/shadow") || a.Priority > event.PriorityWarning {
		t.Errorf("alert %s priority %s", a.Output, a.Priority)
	}
}

func TestPriority(t *testing.T) {
	for _, tc := range []struct {
		s, th float64
		want  event.Priority
	}{{5, 4.5, event.PriorityNotice}, {6, 5, event.PriorityWarning}, {9, 5, event.PriorityError}, {14, 5, event.PriorityCritical}} {
		if got := Priority(tc.s, tc.th); got != tc.want {
			t.Errorf("Priority(%v, %v) = %s, want %s", tc.s, tc.th, got, tc.want)
		}
	}
}

func TestNoProfileAndEscaping(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	d := NewDetector(prof, Config{})
	d.Handle(openE(t0, "/x"), event.ModeDetect, func(*event.Alert) { t.Error("alert without profile") })
	if d.Stats().NoProfile != 1 {
		t.Error("no-profile not counted")
	}
	for i := 0; i < 10; i++ {
		d.Handle(openE(t0+int64(i), "/etc/a"), event.ModeLearn, nil)
	}
	prof.Finalize(false)
	var got *event.Alert
	d.Handle(openE(t0+20, "/etc/evil\n\x1b[31mname"), event.ModeDetect, func(a *event.Alert) { got = a })
	if got == nil {
		t.Fatal("no alert")
	}
	if strings.ContainsAny(got.Output, "\n\x1b") || strings.ContainsAny(got.OutputFields["anomaly.feature"].(string), "\n\x1b") {
		t.Errorf("unescaped output: %q", got.Output)
	}
}

// TestOnScore: every event scored in detect mode reaches OnScore; an event
// with an unseen feature scores higher than one the profile knows well.
func TestOnScore(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	got := map[string]float64{}
	d := NewDetector(prof, Config{OnScore: func(e *event.Enriched, s float64) { got[string(e.Path)] = s }})
	c := &event.Container{ContainerInfo: event.ContainerInfo{ID: "c1", Image: "web:1"}}
	p := &event.Process{Pid: 7, Exe: "/bin/httpd", Args: []string{"httpd"}, Container: c}
	open := func(path string, t int64) *event.Enriched {
		ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Pid: 7, Tid: 7, Time: t, Path: []byte(path), Ret: 3, Fd: -100}
		return &event.Enriched{Event: ev, Proc: p, Container: c, FD: &event.FD{Num: 3, Type: event.FDFile, Name: path}}
	}
	for i := 0; i < 500; i++ {
		d.Handle(open("/var/www/index.html", int64(i)*1e9), event.ModeLearn, nil)
	}
	prof.Finalize(false)
	d.Handle(open("/var/www/index.html", 600e9), event.ModeDetect, func(*event.Alert) {})
	d.Handle(open("/etc/shadow", 601e9), event.ModeDetect, func(*event.Alert) {})
	known, unseen := got["/var/www/index.html"], got["/etc/shadow"]
	if len(got) != 2 || !(unseen > known) || known < 0 {
		t.Fatalf("scores %v: want the unseen file above the known one", got)
	}
}
