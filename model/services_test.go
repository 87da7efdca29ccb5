package model

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// Shapes of issue 14's misses and threshold extremes on real services,
// reproduced synthetically (no service names in the model).

var pgCtr = &event.Container{ContainerInfo: event.ContainerInfo{ID: "pg1", Image: "db:1", ImageRepo: "db", ImageTag: "1", Namespace: "data", PodName: "db-0"}}

func pgProc(exe string) *event.Process {
	return &event.Process{Pid: 40, Exe: exe, Args: []string{exe}, Parent: shP, Container: pgCtr}
}

func pgOpen(t int64, path string, flags uint32) *event.Enriched {
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: t, Path: []byte(path), Flags: flags, Ret: 3}
	return &event.Enriched{Event: ev, Proc: pgProc("/usr/lib/postgresql/15/bin/postgres"), Container: pgCtr}
}

func pgExec(t int64, exe string, argv ...string) *event.Enriched {
	p := pgProc(exe)
	p.Args = argv
	p.Parent = pgProc("/usr/lib/postgresql/15/bin/postgres")
	ev := &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(exe), Argv: []byte(fmt.Sprint(argv[0]))}
	return &event.Enriched{Event: ev, Proc: p, Container: pgCtr}
}

// daemon learns a service that runs programs only at start-up (warm-up)
// and then, for minutes, only reads and writes its files (one novelty
// every novelEvery events when > 0, in its data directory).
func daemon(prof *profiler.Profiler, minutes, novelEvery int) {
	t := t0
	prof.Learn(pgExec(t, "/usr/bin/dash", "sh"))
	prof.Learn(pgExec(t+1, "/usr/lib/postgresql/15/bin/postgres", "postgres"))
	prof.Learn(pgExec(t+2, "/usr/lib/postgresql/15/bin/pg_ctl", "pg_ctl"))
	files := []string{"/var/lib/postgresql/data/base/rel", "/var/lib/postgresql/data/pg_wal/seg", "/etc/postgresql/postgresql.conf", "/var/lib/postgresql/data/global/pg_control"}
	n := 0
	for s := 0; s < minutes*60; s++ {
		tm := t0 + int64(time.Minute) + int64(s)*int64(time.Second)
		prof.Learn(pgOpen(tm, files[s%len(files)], 0))
		n++
		if novelEvery > 0 && n%novelEvery == 0 {
			prof.Learn(pgOpen(tm+1, fmt.Sprintf("/var/lib/postgresql/data/pg_stat/rel-%c%c", 'a'+n/novelEvery%26, 'a'+n/novelEvery/26), 0))
		}
	}
}

func detectAlerts(d *Detector, e *event.Enriched) []*event.Alert {
	var out []*event.Alert
	d.Handle(e, event.ModeDetect, func(a *event.Alert) { out = append(out, a) })
	return out
}

// A daemon that never runs programs after start-up: its process category
// holds 3 warm-up observations, each program once. Before, the category
// stayed learning (never 20 observations), the root estimate was
// (N1+½)/(N+1) and the score was halved: (log₂(4/3.5)+1)×0.5 ≈ 0.6 bits,
// under the 4-bit floor, so a new program under the database raised nothing. Now the category is detecting (nothing
// new after warm-up while the profile was busy) and the novelty is
// Good–Turing-rare over the whole profile.
func TestSparseCategoryNoveltyIsSurprising(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet, WarmUp: 30 * time.Second, MinStable: 10 * time.Minute})
	d := NewDetector(prof, Config{})
	daemon(prof, 30, 0)
	prof.WithProfile("db:1", func(pr *profiler.Profile) {
		if st := pr.State(profiler.CatProcess); st != profiler.StateStable {
			t.Errorf("online: sparse process category %s, want stable (quiet for 30 min of a busy profile)", st)
		}
	})
	prof.Finalize(false)
	prof.WithProfile("db:1", func(pr *profiler.Profile) {
		if st := pr.State(profiler.CatProcess); st != profiler.StateDetecting {
			t.Errorf("offline: sparse process category %s, want detecting", st)
		}
	})
	shell := pgExec(t0+int64(time.Hour), "/usr/bin/id", "id")
	s := scoreOf(t, d, shell)
	// The root's unseen estimate over the profile's T observations: the 3
	// warm-up programs were each seen once.
	var total uint64
	prof.WithProfile("db:1", func(pr *profiler.Profile) { total = pr.Total() })
	want := -math.Log2(3.5/float64(total+1)) + 1
	old := (-math.Log2(3.5/4) + 1) * 0.5
	if math.Abs(s-want) > 1e-9 || s < 4*old {
		t.Errorf("new program under a daemon: %.2f bits, want %.2f (T = %d), the old score was %.2f", s, want, total, old)
	}
	as := detectAlerts(d, shell)
	if len(as) == 0 {
		t.Fatal("no alert for a new program under a daemon that never runs programs")
	}
	if got := as[0].OutputFields["anomaly.profile_state"]; got != "detecting" {
		t.Errorf("profile_state %v", got)
	}
}

// A file category still learning (a new data file every ~30 s) keeps a
// reachable threshold: before, its score was halved and compared with a
// threshold calibrated on its own undamped first sights, so even a write
// to a never-seen top-level directory (/tmp/x) raised nothing.
func TestLearningCategoryThresholdReachable(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet, WarmUp: 30 * time.Second, Gen: profiler.GenConfig{NoTemplates: true}})
	d := NewDetector(prof, Config{})
	daemon(prof, 15, 30)
	prof.WithProfile("db:1", func(pr *profiler.Profile) {
		if st := pr.State(profiler.CatFile); st.Ready() {
			t.Fatalf("file category %s, want still learning", st)
		}
	})
	cals, _ := d.Calibrations("db:1")
	fc := cals[profiler.CatFile]
	if fc.Samples < 25 {
		t.Fatalf("file calibration %+v: want ~29 singletons", fc)
	}
	drop := pgOpen(t0+int64(time.Hour), "/tmp/x", 0x41|0x200)
	s := scoreOf(t, d, drop)
	if s*0.5 >= fc.Threshold {
		t.Fatalf("test too weak: the old damped score %.2f already reached %.2f", s*0.5, fc.Threshold)
	}
	as := detectAlerts(d, drop)
	if len(as) == 0 {
		t.Fatalf("no alert for /tmp/x (%.2f bits, threshold %.2f + margin) in a learning category", s, fc.Threshold)
	}
	if th := as[0].OutputFields["anomaly.threshold"].(float64); math.Abs(th-round2(fc.Threshold+d.cfg.LearningMargin)) > 0.01 {
		t.Errorf("alert threshold %v, want calibrated %.2f + margin %.0f", th, fc.Threshold, d.cfg.LearningMargin)
	}
	// The next benign novelty in the learning directory stays quiet.
	if as := detectAlerts(d, pgOpen(t0+int64(time.Hour), "/var/lib/postgresql/data/pg_stat/rel-zz", 0)); len(as) != 0 {
		t.Errorf("benign novelty alerted: %v", as[0].Output)
	}
}

// One post-warm-up singleton in a quarter of an hour (ν = 4/h, far above
// the category's budget): before, the threshold was that singleton's
// surprise plus one bit, often the 4-bit floor. Now an exponential tail
// beyond it puts the threshold where 1 − R/ν of the novelty mass lies.
func TestOneSingletonThresholdNotAtFloor(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet, WarmUp: 30 * time.Second})
	d := NewDetector(prof, Config{})
	daemon(prof, 15, 0)
	prof.Learn(pgOpen(t0+int64(8*time.Minute), "/var/lib/postgresql/data/base/rel2", 0))
	prof.Finalize(false)
	cals, _ := d.Calibrations("db:1")
	fc := cals[profiler.CatFile]
	if fc.Samples != 1 || fc.Method != "max+tail" {
		t.Fatalf("calibration %+v: want one sample, max+tail", fc)
	}
	var loo float64
	prof.WithProfile("db:1", func(pr *profiler.Profile) {
		f := pr.Feature(profiler.CatFile, profiler.HashString("/var/lib/postgresql/data/base/rel2 [read]"))
		loo = surprise(pr, profiler.CatFile, chainOf(nil, f), 1, 1, d.cfg.BackoffBits)
	})
	// q = 1 − (1/6)/4; tail rate ln 2 (no pooled sample): max + log₂((1/2)/(1−q)).
	q := 1 - (1.0/6)/fc.NoveltyRate
	want := loo + math.Log2(0.5/(1-q))
	if math.Abs(fc.Threshold-want) > 1e-9 || fc.Threshold <= d.cfg.MinThreshold+2 {
		t.Errorf("threshold %.3f, want %.3f (singleton %.2f, floor %.0f)", fc.Threshold, want, loo, d.cfg.MinThreshold)
	}
	// A sibling of the singleton is quiet.
	sib := pgOpen(t0+int64(time.Hour), "/var/lib/postgresql/data/base/rel3", 0)
	if as := detectAlerts(d, sib); len(as) != 0 {
		t.Errorf("benign sibling alerted: %s", as[0].Output)
	}
}

// A new code path (an error handler importing a dozen modules never loaded
// before) is one novelty: calibration counts it once in the benign novelty
// rate, and detection raises one alert listing the episode's features.
func TestNoveltyEpisodes(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet, WarmUp: 30 * time.Second})
	d := NewDetector(prof, Config{})
	daemon(prof, 30, 0)
	burst := func(at time.Duration, dir string, n int) {
		for i := 0; i < n; i++ {
			prof.Learn(pgOpen(t0+int64(at)+int64(i)*int64(time.Millisecond), fmt.Sprintf("/usr/lib/python3.11/%s/mod%c.pyc", dir, 'a'+i), 0))
		}
	}
	burst(10*time.Minute, "xml", 12)
	burst(20*time.Minute, "json", 1)
	cals, _ := d.StratumCalibrations("db:1", profiler.CatFile)
	if fc := cals[profiler.StratumCode]; fc.Samples != 2 {
		t.Errorf("file calibration %+v: want 2 episodes (12 modules at once, then 1)", fc)
	}
	// Detection with a budget that lets every novelty alert (floor
	// threshold): five novelties within a second are one alert.
	d = NewDetector(prof, Config{TargetFalseAlarmsPerHour: 1000})
	var alerts []*event.Alert
	for i := 0; i < 5; i++ {
		d.Handle(pgOpen(t0+int64(time.Hour)+int64(i)*int64(100*time.Millisecond), fmt.Sprintf("/opt/new/file%c", 'a'+i), 0), event.ModeDetect, func(a *event.Alert) { alerts = append(alerts, a) })
	}
	if len(alerts) != 1 {
		t.Fatalf("%d alerts for one episode, want 1", len(alerts))
	}
	rel, _ := alerts[0].OutputFields["anomaly.related"].([]string)
	if alerts[0].OutputFields["anomaly.count"] != uint64(5) || len(rel) != 4 || d.Stats().Folded != 4 {
		t.Errorf("episode alert count %v related %q stats %+v", alerts[0].OutputFields["anomaly.count"], rel, d.Stats())
	}
	// After the gap a new novelty is a new episode.
	d.Handle(pgOpen(t0+int64(time.Hour)+int64(5*time.Second), "/opt/other/x", 0), event.ModeDetect, func(a *event.Alert) { alerts = append(alerts, a) })
	if len(alerts) != 2 {
		t.Errorf("novelty after the gap: %d alerts, want 2", len(alerts))
	}
}

// A daemon whose own tree never runs programs after start-up, in a
// container where the runtime runs an exec probe every 20 s and, once each
// in the learning window, a backup script (a shell, a dump tool, gzip) and
// a configuration reload:
// issue 14's postgres. With exec sessions in the image's profile, the
// backups' programs were post-warm-up singletons of the process and edge
// categories (ν ≈ 10/h against a budget of 1/6 per hour), their
// thresholds rose to ~16–20 bits, and the database starting a shell
// (COPY … TO PROGRAM: 13 bits) raised nothing; the probes also taught the
// profile "sh" and "cat". With exec sessions in their own profile the
// daemon's categories have no benign novelty and the shell alerts; the
// probes and backups stay quiet in theirs.
func TestExecSessionsDoNotRaiseServiceThresholds(t *testing.T) {
	ctr := &event.Container{ContainerInfo: event.ContainerInfo{ID: "pg2", Image: "db:2", ImageRepo: "db", ImageTag: "2"}}
	proc := func(pid uint32, start int64, vpid uint32, exe string, parent *event.Process) *event.Process {
		return &event.Process{Pid: pid, StartTime: start, NSKnown: true, VPid: vpid, Exe: exe, Args: []string{exe}, Parent: parent, Container: ctr}
	}
	exec := func(p *event.Process, t int64) *event.Enriched {
		ev := &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(p.Exe), Argv: []byte(p.Exe + "\x00")}
		return &event.Enriched{Event: ev, Proc: p, Container: ctr}
	}
	open := func(p *event.Process, t int64, path string) *event.Enriched {
		ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: t, Path: []byte(path), Ret: 3}
		return &event.Enriched{Event: ev, Proc: p, Container: ctr}
	}
	learn := func(cfg profiler.Config) (*profiler.Profiler, *event.Process) {
		cfg.Logger = quiet
		prof := profiler.New(nil, cfg)
		db := proc(10, t0, 1, "/usr/lib/db/bin/db", nil)
		prof.Learn(exec(db, t0))
		pid := uint32(1000)
		for s := 1; s <= 20*60; s++ {
			tm := t0 + int64(s)*int64(time.Second)
			prof.Learn(open(db, tm, fmt.Sprintf("/var/lib/db/base/rel%d", s%5)))
			if s%20 == 0 {
				pid++
				probe := proc(pid, tm, 50, "/usr/bin/db-ping", nil)
				prof.Learn(exec(probe, tm))
				prof.Learn(open(probe, tm+1, "/etc/db/ping.conf"))
			}
			if s == 7*60 || s == 16*60 {
				progs := []string{"/usr/bin/db-dump", "/usr/bin/gzip", "/usr/bin/date"}
				if s == 16*60 {
					progs = []string{"/usr/bin/su", "/usr/lib/db/bin/db-ctl"}
				}
				pid += 3
				sh := proc(pid, tm, 60, "/usr/bin/dash", nil)
				prof.Learn(exec(sh, tm))
				for i, x := range progs {
					prof.Learn(exec(proc(pid+uint32(i)+1, tm+int64(i+1), 61+uint32(i), x, sh), tm+int64(i+1)))
				}
			}
		}
		prof.Finalize(false)
		return prof, db
	}
	at := t0 + int64(time.Hour)
	for _, tc := range []struct {
		name       string
		cfg        profiler.Config
		shellAlert bool
	}{
		{"one profile (before)", profiler.Config{NoExecSessions: true}, false},
		{"exec sessions apart", profiler.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prof, db := learn(tc.cfg)
			d := NewDetector(prof, Config{})
			shell := proc(5000, at, 300, "/usr/bin/dash", db)
			as := detectAlerts(d, exec(shell, at))
			if got := len(as) > 0; got != tc.shellAlert {
				cals, _ := d.Calibrations("db:2")
				t.Fatalf("database starting a shell: alert %v, want %v (process threshold %.1f, edge %.1f)", got, tc.shellAlert, cals[profiler.CatProcess].Threshold, cals[profiler.CatEdge].Threshold)
			}
			if tc.shellAlert && as[0].OutputFields["anomaly.profile"] != "db:2" {
				t.Errorf("the database's shell scored in profile %v, want db:2", as[0].OutputFields["anomaly.profile"])
			}
			// A probe and a backup, as learned, stay quiet.
			probe := proc(6000, at+1, 80, "/usr/bin/db-ping", nil)
			backup := proc(6001, at+2, 81, "/usr/bin/dash", nil)

			for _, e := range []*event.Enriched{exec(probe, at+1), open(probe, at+2, "/etc/db/ping.conf"), exec(backup, at+3), exec(proc(6002, at+4, 82, "/usr/bin/gzip", backup), at+4)} {
				if as := detectAlerts(d, e); len(as) != 0 {
					t.Errorf("benign exec session alerted: %s", as[0].Output)
				}
			}
		})
	}
}

// A service whose new code paths import modules of its image now and then
// (three import episodes and a kernel-file probe in 20 minutes: ν ≈ 12/h,
// far above the category's budget) has a high threshold for such reads,
// but one read of a secret by the same process is a novelty of a kind it
// never had: the file category is calibrated per stratum (issue 14's
// Python app: its own read of /etc/shadow through a path traversal scored
// 12.7 bits under a category threshold of 20.8).
func TestFileStrata(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet, WarmUp: 30 * time.Second})
	d := NewDetector(prof, Config{})
	app := func(t int64, path string) *event.Enriched {
		e := pgOpen(t, path, 0)
		e.Proc.Exe = "/usr/bin/python3.11"
		return e
	}
	prof.Learn(app(t0, "/usr/lib/python3.11/os.py"))
	prof.Learn(app(t0+1, "/etc/app.conf"))
	for s := 0; s < 20*60; s++ {
		tm := t0 + int64(time.Minute) + int64(s)*int64(time.Second)
		prof.Learn(app(tm, "/srv/app/data.db"))
		prof.Learn(app(tm+1, "/usr/lib/python3.11/os.py"))
		switch s {
		case 200, 500, 900: // a new import: a package of a few modules
			pkg := map[int]string{200: "csv", 500: "xml", 900: "email"}[s]
			for i, m := range []string{"core", "parser", "utils", "errors"} {
				prof.Learn(app(tm+2+int64(i), "/usr/lib/python3.11/"+pkg+"/"+m+".py"))
			}
		case 700:
			prof.Learn(app(tm+2, "/proc/sys/vm/overcommit_memory"))
		}
	}
	prof.Finalize(false)
	cals, _ := d.StratumCalibrations("db:1", profiler.CatFile)
	data, code := cals[profiler.StratumData], cals[profiler.StratumCode]
	if data.Samples != 0 || data.Threshold != d.cfg.MinThreshold || code.Samples != 3 || code.Threshold <= 10 {
		t.Fatalf("strata: data %+v, code %+v; want data at the floor, code raised by its 3 episodes", data, code)
	}
	if cals[profiler.StratumKernel].Samples != 1 || math.Abs(code.NoveltyRate-data.NoveltyRate) > 1e-9 {
		t.Errorf("kernel %+v: want 1 sample and the category's ν", cals[profiler.StratumKernel])
	}
	at := t0 + int64(time.Hour)
	// The next import is quiet; the secret read alerts, in its stratum.
	if as := detectAlerts(d, app(at, "/usr/lib/python3.11/json/decoder.py")); len(as) != 0 {
		t.Errorf("new module import alerted: %s", as[0].Output)
	}
	if as := detectAlerts(d, app(at+int64(time.Minute), "/proc/sys/kernel/random/uuid")); len(as) != 0 {
		t.Errorf("new kernel file read alerted: %s", as[0].Output)
	}
	as := detectAlerts(d, app(at+int64(2*time.Minute), "/etc/shadow"))
	if len(as) == 0 {
		t.Fatal("no alert for the service reading /etc/shadow")
	}
	if got := as[0].OutputFields["anomaly.stratum"]; got != "secret" {
		t.Errorf("anomaly.stratum %v, want secret", got)
	}
	// A new configuration file of the app is data: at the floor too here.
	if as := detectAlerts(d, app(at+int64(3*time.Minute), "/etc/app-extra.conf")); len(as) == 0 || as[0].OutputFields["anomaly.stratum"] != "data" {
		t.Errorf("new data file: %v", as)
	}
	// Pooled into one sample, the imports would have hidden it.
	s := scoreOf(t, d, app(at, "/etc/shadow"))
	if s >= code.Threshold {
		t.Errorf("test too weak: the secret read %.1f reaches the code threshold %.1f", s, code.Threshold)
	}
}
