package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/eval/report"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
	"github.com/driftwatch/driftwatch/model/seq"
)

// fakeRules alerts on an exec of /bin/sh and on opening /etc/shadow.
type fakeRules struct{}

func (fakeRules) Eval(e *event.Enriched, emit func(*event.Alert)) {
	hit := (e.Kind == event.KindExec && string(e.Exe) == "/bin/sh") ||
		(e.Kind == event.KindSyscall && e.Syscall == event.SysOpenat && string(e.Path) == "/etc/shadow")
	if hit {
		emit(&event.Alert{Rule: "fake", Pid: e.Pid, EventTime: e.Time, EventNum: e.Num})
	}
}

// fakeModel learns opened paths and flags unseen ones with score 1.
type fakeModel struct {
	seen     map[string]bool
	finished bool
	last     float64
}

func (m *fakeModel) Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert)) {
	m.last = 0
	if e.Kind != event.KindSyscall || e.Syscall != event.SysOpenat {
		return
	}
	switch mode {
	case event.ModeLearn:
		m.seen[string(e.Path)] = true
	case event.ModeDetect:
		if !m.finished {
			panic("scored before FinishLearning")
		}
		if !m.seen[string(e.Path)] {
			m.last = 1
			emit(&event.Alert{Rule: "anomaly", Score: 1, Pid: e.Pid, EventTime: e.Time})
		}
	}
}
func (m *fakeModel) Suppress(*event.Alert, *event.Enriched) bool { return false }
func (m *fakeModel) FinishLearning() error                       { m.finished = true; return nil }
func (m *fakeModel) LastScore() float64                          { return m.last }

var _ pipeline.Detector = (*fakeModel)(nil)

const t0 = int64(1_700_000_000) * 1e9

type evSpec struct {
	at   int // seconds after t0
	kind event.Kind
	pid  uint32
	path string
	// child for forks
	child uint32
}

func writeTrace(t *testing.T, path string, evs []evSpec) {
	t.Helper()
	snap := &event.Snapshot{Time: t0, Hostname: "test",
		Processes: []event.ProcessInfo{{Pid: 1, Comm: "init"}, {Pid: 10, Ppid: 1, Comm: "nginx"}}}
	w, err := trace.Create(path, snap)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range evs {
		ev := event.Event{Kind: s.kind, Time: t0 + int64(s.at)*1e9, Num: uint64(i + 1), Pid: s.pid, Tid: s.pid}
		switch s.kind {
		case event.KindSyscall:
			ev.Syscall = event.SysOpenat
			ev.Path = []byte(s.path)
		case event.KindExec:
			ev.Syscall = event.SysExecve
			ev.Exe = []byte(s.path)
		case event.KindFork:
			ev.Syscall = event.SysClone
			ev.ChildPid, ev.ChildTid = s.child, s.child
		}
		if err := w.Write(&ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func benign(n int, from int) []evSpec {
	var out []evSpec
	for i := range n {
		out = append(out, evSpec{at: from + i, kind: event.KindSyscall, pid: 10, path: []string{"/var/www/index.html", "/var/www/a.css"}[i%2]})
	}
	return out
}

// tinySuite writes a suite: one attack scenario (a shell reading
// /etc/shadow) and one benign scenario with one suspicious but benign read.
func tinySuite(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	writeTrace(t, filepath.Join(dir, "web", "train.dwt"), benign(40, 0))
	attack := benign(30, 0)
	attack = append(attack,
		evSpec{at: 30, kind: event.KindFork, pid: 10, child: 666},
		evSpec{at: 31, kind: event.KindExec, pid: 666, path: "/bin/sh"},
		evSpec{at: 32, kind: event.KindSyscall, pid: 666, path: "/etc/shadow"},
	)
	attack = append(attack, benign(27, 33)...) // ends at 59 s
	writeTrace(t, filepath.Join(dir, "web", "shadow.dwt"), attack)
	ben := append(benign(30, 0), evSpec{at: 30, kind: event.KindSyscall, pid: 10, path: "/etc/shadow"})
	ben = append(ben, benign(29, 31)...) // ends at 59 s
	writeTrace(t, filepath.Join(dir, "web", "benign.dwt"), ben)
	l := &labels.Labels{Version: 1, Trace: "shadow.dwt", Attacks: []labels.Attack{
		{Name: "read shadow", StartNs: t0 + 30*1e9, EndNs: t0 + 33*1e9, Pids: []uint32{666}},
	}}
	if err := l.Write(filepath.Join(dir, "web", "shadow.labels.json")); err != nil {
		t.Fatal(err)
	}
	manifest := `{"version":1,"name":"tiny","scenarios":[
	 {"name":"web-shadow","workload":"web","kind":"attack","train":["web/train.dwt"],"test":"web/shadow.dwt","labels":"web/shadow.labels.json"},
	 {"name":"web-benign","workload":"web","kind":"benign","train":["web/train.dwt"],"test":"web/benign.dwt"}]}`
	os.WriteFile(filepath.Join(dir, labels.ManifestFile), []byte(manifest), 0o644)
	return dir
}

func fakeOptions() Options {
	return Options{
		NewRules:    func() (pipeline.Rules, error) { return fakeRules{}, nil },
		NewDetector: func() (Detector, error) { return &fakeModel{seen: map[string]bool{}}, nil },
		Grace:       time.Second,
		// Suppresses rule alerts on events of pid 10 (the benign process).
		NewSuppressor: func(Detector) (func(*event.Alert, *event.Enriched, event.Mode) bool, error) {
			return func(_ *event.Alert, e *event.Enriched, mode event.Mode) bool {
				return mode == event.ModeDetect && e.Pid == 10
			}, nil
		},
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRunSuite(t *testing.T) {
	dir := tinySuite(t)
	var steps []string
	opts := fakeOptions()
	opts.Progress = func(done, total int, step string) { steps = append(steps, step) }
	rep, err := Run(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 10 || rep.Dataset != "tiny" || len(rep.Scenarios) != 2 {
		t.Fatalf("steps %v, dataset %q, %d scenarios", steps, rep.Dataset, len(rep.Scenarios))
	}
	hours := 2 * 59.0 / 3600 // two test traces of 59 s, all in the host container
	tests := []struct {
		det            string
		tp, fp, fn     int
		precision, lat float64
	}{
		{report.Rules, 2, 1, 0, 2.0 / 3, 1},
		{report.Model, 1, 1, 0, 0.5, 2},
		// both: the model's alerts and the rules' after suppression (the
		// benign shadow read's rule alert is dropped); both-raw keeps it.
		{report.Both, 3, 1, 0, 0.75, 1},
		{DetectBothRaw, 3, 2, 0, 0.6, 1},
	}
	for _, tc := range tests {
		f := rep.Detectors[tc.det]
		if f == nil {
			t.Fatalf("no figures for %s", tc.det)
		}
		if f.TP != tc.tp || f.FP != tc.fp || f.FN != tc.fn || f.Attacks != 1 || f.Detected != 1 {
			t.Errorf("%s: TP %d FP %d FN %d attacks %d detected %d, want %d %d %d 1 1", tc.det, f.TP, f.FP, f.FN, f.Attacks, f.Detected, tc.tp, tc.fp, tc.fn)
		}
		if !near(f.Precision, tc.precision) || f.Recall != 1 || !near(f.F1, 2*tc.precision/(tc.precision+1)) {
			t.Errorf("%s: P %v R %v F1 %v", tc.det, f.Precision, f.Recall, f.F1)
		}
		if f.DetectionLatencyS == nil || !near(*f.DetectionLatencyS, tc.lat) {
			t.Errorf("%s: latency %v, want %v", tc.det, f.DetectionLatencyS, tc.lat)
		}
		if !near(f.ContainerHours, hours) || !near(f.FalseAlarmsPerHour, float64(tc.fp)/hours) {
			t.Errorf("%s: container hours %v FA/h %v", tc.det, f.ContainerHours, f.FalseAlarmsPerHour)
		}
		if f.Events != 120 || f.ROCAUC == nil || *f.ROCAUC <= 0.5 || f.DetectionRate != 1 || f.FalseAlarms != 1 || f.ConsecutiveFalseAlarms != 1 {
			t.Errorf("%s: events %d AUC %v DR %v FA %d CFA %d", tc.det, f.Events, f.ROCAUC, f.DetectionRate, f.FalseAlarms, f.ConsecutiveFalseAlarms)
		}
		if f.EventsPerSec <= 0 {
			t.Errorf("%s: throughput %v", tc.det, f.EventsPerSec)
		}
	}
	// suppressed: the rules' alerts minus those the suppressor drops (the
	// benign process's shadow read); the attack keeps its alerts.
	if f := rep.Detectors[DetectSuppressed]; f == nil || f.TP != 2 || f.FP != 0 || f.Detected != 1 {
		t.Errorf("suppressed figures %+v, want TP 2 FP 0 detected 1", f)
	}
	// Per-scenario figures: the benign scenario has no attack and one FP.
	b := rep.Scenarios[1].Detectors[report.Rules]
	if rep.Scenarios[1].Kind != labels.KindBenign || b.Attacks != 0 || b.FP != 1 || b.TP != 0 || b.DetectionLatencyS != nil {
		t.Fatalf("benign scenario figures %+v", b)
	}
	a := rep.Scenarios[0]
	if len(a.Attacks) != 1 || a.Attacks[0].Start != 30 || a.Attacks[0].End != 33 || len(a.Timeline[report.Model]) != 60 {
		t.Fatalf("attack scenario plot data %+v, %d timeline points", a.Attacks, len(a.Timeline[report.Model]))
	}
	// The whole report writes.
	out := filepath.Join(t.TempDir(), "out")
	files, err := rep.Write(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("files %v", files)
	}
	js, _ := os.ReadFile(filepath.Join(out, "report.json"))
	if !bytes.Contains(js, []byte(`"false_alarms_per_hour"`)) || !bytes.Contains(js, []byte(`"web-shadow"`)) {
		t.Fatal("report.json lacks figures")
	}
}

func TestRunSuiteSingleDetector(t *testing.T) {
	dir := tinySuite(t)
	opts := fakeOptions()
	opts.Detector = DetectRules
	opts.NewDetector = nil
	rep, err := Run(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Detectors) != 1 || rep.Detectors[report.Rules] == nil {
		t.Fatalf("detectors %v", rep.Detectors)
	}
	opts.Detector = DetectBoth
	if _, err := Run(context.Background(), dir, opts); err == nil || !strings.Contains(err.Error(), "no detector constructor") {
		t.Fatalf("both without a detector: %v", err)
	}
	opts.Detector = "magic"
	if _, err := Run(context.Background(), dir, opts); err == nil {
		t.Fatal("unknown detector accepted")
	}
	if _, err := Run(context.Background(), t.TempDir(), fakeOptions()); err == nil || !strings.Contains(err.Error(), "not a dataset") {
		t.Fatalf("empty dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, dir, fakeOptions()); err == nil {
		t.Fatal("cancelled run succeeded")
	}
}

func TestRunADFA(t *testing.T) {
	root := filepath.Join("adfa", "testdata", "ADFA-LD")
	opts := Options{Seq: seq.Config{N: 3, Window: 10, ThreadAware: true}}
	rep, err := Run(context.Background(), root, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Detectors[report.Stide]
	if rep.Format != "adfa-ld" || f == nil || f.TraceFigures == nil || len(rep.Detectors) != 2 {
		t.Fatalf("report %+v", rep)
	}
	// Training 3-grams cover the validation trace (score 0, a benign test
	// trace); both attack traces contain unseen 3-grams: AUC 1.
	tf := f.TraceFigures
	if f.Attacks != 2 || tf.Traces != 3 || tf.AttackTraces != 2 || tf.TraceROCAUC == nil || *tf.TraceROCAUC != 1 {
		t.Fatalf("figures %+v %+v", f, tf)
	}
	// Test traces: the validation trace (12 calls) and the attacks (13 + 8).
	if f.Events != 12+13+8 {
		t.Fatalf("%d test events, want 33", f.Events)
	}
}

// figuresJSON is a report's figures without the timing-dependent cost.
func figuresJSON(t *testing.T, rep *report.Report) string {
	t.Helper()
	strip := func(f *report.Figures) {
		f.EventsPerSec, f.CPUPerEventUs = 0, 0
	}
	for _, f := range rep.Detectors {
		strip(f)
	}
	for _, s := range rep.Scenarios {
		for _, f := range s.Detectors {
			strip(f)
		}
	}
	b, err := json.Marshal(struct {
		D any
		S any
		N any
	}{rep.Detectors, rep.Scenarios, rep.Notes})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJobsDoNotChangeFigures(t *testing.T) {
	dir := tinySuite(t)
	var want string
	for _, jobs := range []int{1, 4} {
		opts := fakeOptions()
		opts.Jobs = jobs
		var mu sync.Mutex
		steps, total := 0, 0
		opts.Progress = func(done, tot int, _ string) {
			mu.Lock()
			defer mu.Unlock()
			steps++
			if steps == 1 {
				total = tot
			}
			if done != steps || tot != total {
				t.Errorf("jobs %d: progress %d/%d at step %d (total was %d)", jobs, done, tot, steps, total)
			}
		}
		rep, err := Run(context.Background(), dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		// One step per scenario and detector: the tiny suite has 2 scenarios.
		if want := 2 * len(rep.Detectors); steps != want || total != want {
			t.Errorf("jobs %d: %d progress steps of %d, want %d (2 scenarios x %d detectors)", jobs, steps, total, want, len(rep.Detectors))
		}
		got := figuresJSON(t, rep)
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("jobs %d changed the figures:\n%s\nvs\n%s", jobs, got, want)
		}
	}
}

func TestShardMerge(t *testing.T) {
	dir := tinySuite(t)
	whole, err := Run(context.Background(), dir, fakeOptions())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var parts []*Partial
	for i := 0; i < 3; i++ { // 3 shards of 2 scenarios: one is empty
		opts := fakeOptions()
		opts.Shard = Shard{Index: i, Count: 3}
		rep, part, err := RunPartial(context.Background(), dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{0: 1, 1: 1, 2: 0}[i]; len(rep.Scenarios) != want {
			t.Fatalf("shard %d has %d scenarios, want %d", i, len(rep.Scenarios), want)
		}
		// Through the file, as 'eval merge' reads it.
		parts = append(parts, throughFile(t, filepath.Join(out, fmt.Sprint(i)), part))
	}
	merged, err := Merge([]*Partial{parts[2], parts[0], parts[1]})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := figuresJSON(t, merged), figuresJSON(t, whole); a != b {
		t.Fatalf("merged report differs from the single run:\n%s\nvs\n%s", a, b)
	}
	if len(merged.Curves) != len(whole.Curves) || len(merged.Scenarios[0].Timeline) != len(whole.Scenarios[0].Timeline) {
		t.Fatal("merged plots data differ")
	}
	for name, bad := range map[string][]*Partial{
		"missing shard":   parts[:2],
		"duplicate shard": {parts[0], parts[0], parts[1]},
	} {
		if _, err := Merge(bad); err == nil {
			t.Errorf("%s merged", name)
		}
	}
	other := *parts[1]
	other.Dataset = "another"
	if _, err := Merge([]*Partial{parts[0], &other, parts[2]}); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Errorf("shards of different runs merged: %v", err)
	}
	for _, s := range []string{"3/3", "-1/2", "1", "a/b", "0/0"} {
		if _, err := ParseShard(s); err == nil {
			t.Errorf("ParseShard(%q) accepted", s)
		}
	}
}

// synthLIDDS2019 writes a LID-DS 2019 scenario: normal recordings cycle
// through loops of ordinary calls, exploit recordings switch to calls and
// an order the normal ones never use one second in (exploit_start_time 1);
// every other normal test recording drifts (a call training never shows).
// With 200 training and 50 validation recordings, normal recordings past
// 250 and every exploit are test recordings.
func synthLIDDS2019(t *testing.T, normals, exploits int, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(seed, 11))
	loops := [][]string{{"read", "write", "poll", "read"}, {"futex", "read", "lseek", "close"}, {"getpid", "nanosleep", "poll"}}
	attacker := []string{"getuid", "setuid", "kill", "getppid", "umask", "kill"}
	csv := "image_name, scenario_name, is_executing_exploit, warmup_time, recording_time, exploit_start_time\n"
	write := func(name string, exploit, noisy bool) {
		var b strings.Builder
		n := 120 + rng.IntN(80)
		l := loops[rng.IntN(len(loops))]
		num, ns := 1, int64(0)
		for i := 0; i < n; i++ {
			call := l[i%len(l)]
			if rng.IntN(30) == 0 {
				l = loops[rng.IntN(len(loops))]
			}
			if noisy && rng.IntN(6) == 0 {
				call = "sched_yield" // benign drift: new n-grams, false alarms
			}
			if exploit && ns >= int64(time.Second) && i%3 != 0 {
				call = attacker[(i+rng.IntN(2))%len(attacker)]
			}
			ts := func() string {
				return fmt.Sprintf("10:00:%02d.%09d", ns/int64(time.Second), ns%int64(time.Second))
			}
			fmt.Fprintf(&b, "%d %s 1 0 app 4242 > %s\n", num, ts(), call)
			ns += int64(time.Millisecond)
			fmt.Fprintf(&b, "%d %s 1 0 app 4242 < %s res=0\n", num+1, ts(), call)
			ns += 9 * int64(time.Millisecond)
			num += 2
		}
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		at := "-1"
		if exploit {
			at = "1"
		}
		csv += fmt.Sprintf("app:1, %s, %v, 0, 2, %s\n", name, map[bool]string{true: "True", false: "False"}[exploit], at)
	}
	for i := 0; i < normals+exploits; i++ {
		// exploits spread among the test recordings
		if i >= 250 && (i-250)%3 == 2 && exploits > 0 {
			write(fmt.Sprintf("exploit_%03d", i), true, false)
			exploits--
			continue
		}
		write(fmt.Sprintf("normal_%03d", i), false, i >= 250 && i%2 == 0)
	}
	if err := os.WriteFile(filepath.Join(dir, "runs.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSeqShardMerge: a sequence dataset evaluated in shards (each scoring
// a block of the test traces) and merged gives the report of one run:
// ADFA-LD (trace level, thresholds calibrated on the dev part's benign
// traces, which span the shards) and LID-DS (per-event STIDE with the
// LID-DS metrics and trace level, thresholds from validation).
func TestSeqShardMerge(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  string
		opts Options
	}{
		{"ADFA-LD", synthADFA(t, 40, 60, 24, 3), Options{Jobs: 1}},
		{"LID-DS", synthLIDDS2019(t, 262, 9, 5), Options{Jobs: 1, Seq: seq.Config{N: 3, Window: 20, ThreadAware: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole, err := Run(context.Background(), tc.dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			var parts []*Partial
			tests := 0
			for i := 0; i < 3; i++ {
				opts := tc.opts
				opts.Shard = Shard{Index: i, Count: 3}
				_, part, err := RunPartial(context.Background(), tc.dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				tests += len(part.Seq[0].Attack)
				parts = append(parts, throughFile(t, filepath.Join(out, fmt.Sprint(i)), part))
			}
			if want := parts[0].Seq[0].Tests; tests != want || len(parts[0].Seq[0].Attack) == want {
				t.Fatalf("shards score %d test traces (the first %d), want %d split in blocks", tests, len(parts[0].Seq[0].Attack), want)
			}
			merged, err := Merge([]*Partial{parts[1], parts[2], parts[0]})
			if err != nil {
				t.Fatal(err)
			}
			a, b := figuresJSON(t, merged), figuresJSON(t, whole)
			if a != b {
				t.Fatalf("merged report differs from the single run:\n%s\nvs\n%s", a, b)
			}
			// The figures are not degenerate: attacks were scored, some detected.
			st := whole.Detectors[DetectModel]
			if st == nil || st.TraceFigures == nil || st.TraceFigures.AttackTraces == 0 || st.TraceFigures.TraceROCAUC == nil || *st.TraceFigures.TraceROCAUC < 0.7 {
				t.Fatalf("model figures %+v", st)
			}
			if tc.name == "LID-DS" {
				if ps := whole.Detectors[DetectStide]; ps.Events == 0 || ps.Alerts == 0 || ps.DetectionRate == 0 || ps.FalseAlarms == 0 || ps.ConsecutiveFalseAlarms == 0 {
					t.Fatalf("per-event stide %+v", ps)
				}
				wt, mt := whole.Scenarios[0].Timeline[DetectStide], merged.Scenarios[0].Timeline[DetectStide]
				if len(wt) == 0 || !slices.Equal(wt, mt) || !slices.Equal(whole.Scenarios[0].Attacks, merged.Scenarios[0].Attacks) {
					t.Fatalf("timeline of the first attack recording: %d points merged, %d in one run", len(mt), len(wt))
				}
			}
			if len(merged.Curves) != len(whole.Curves) || len(merged.Scenarios) != len(whole.Scenarios) {
				t.Fatal("merged plot data differ")
			}
			if _, err := Merge(parts[:2]); err == nil {
				t.Error("merge with a shard missing succeeded")
			}
		})
	}
}

// shellOnlyRules alerts on an exec of /bin/sh only: a second rule set.
type shellOnlyRules struct{}

func (shellOnlyRules) Eval(e *event.Enriched, emit func(*event.Alert)) {
	if e.Kind == event.KindExec && string(e.Exe) == "/bin/sh" {
		emit(&event.Alert{Rule: "shell", Pid: e.Pid, EventTime: e.Time, EventNum: e.Num})
	}
}

// A second rule set (Falco's files on the CLI) is a detector of its own in
// the same report, scored like the rules, beside the default rules.
func TestBaselineRulesDetector(t *testing.T) {
	dir := tinySuite(t)
	opts := fakeOptions()
	opts.NewBaselineRules = func() (pipeline.Rules, error) { return shellOnlyRules{}, nil }
	rep, err := Run(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rep.Order, ","); got != "rules,model,both,both-raw,suppressed,baseline-rules" {
		t.Fatalf("order %s", got)
	}
	// The shell exec of the attack is its only alert: no false alarm on the
	// benign shadow read that the rules detector counts.
	b, r := rep.Detectors[DetectBaselineRules], rep.Detectors[report.Rules]
	if b == nil || b.TP != 1 || b.FP != 0 || b.Detected != 1 || r.TP != 2 || r.FP != 1 {
		t.Fatalf("baseline-rules %+v, rules %+v", b, r)
	}
	opts = fakeOptions()
	opts.Detector = DetectBaselineRules
	if _, err := Run(context.Background(), dir, opts); !errors.Is(err, ErrOptions) {
		t.Errorf("baseline-rules without rule files: %v, want ErrOptions", err)
	}
}

// throughFile writes part to dir and reads it back, as 'eval merge' reads
// what the shards wrote.
func throughFile(t *testing.T, dir string, part *Partial) *Partial {
	t.Helper()
	if _, err := WritePartial(dir, part); err != nil {
		t.Fatal(err)
	}
	p, err := ReadPartial(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
