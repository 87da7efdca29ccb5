package suppress

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

var (
	t0   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	ctr1 = &event.Container{ContainerInfo: event.ContainerInfo{ID: "c1", Image: "web:1", ImageRepo: "web", ImageTag: "1", Namespace: "shop"}}
	shP  = &event.Process{Pid: 1, Exe: "/bin/sh", Args: []string{"sh"}}
)

var nginxP = &event.Process{Pid: 3, Exe: "/usr/sbin/nginx", Args: []string{"nginx", "-g", "daemon off;"}, Parent: shP, Container: ctr1, ExecTime: t0}

func openE(t int64, path string) *event.Enriched {
	return openBy(nginxP, t, path)
}

func openBy(p *event.Process, t int64, path string) *event.Enriched {
	return &event.Enriched{Event: &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: t, Path: []byte(path), Ret: 3}, Proc: p, Container: ctr1}
}

// learnedRules are the rules that fire while the profile is learned.
var learnedRules = []string{"Noisy", "Error rule", "Forced", "Severe", "Tagged", "Never"}

// learned returns a profiler whose web profile knows nginx (its exec and
// it reading its config), with learning finalised (categories stable).
func learned(t *testing.T) *profiler.Profiler {
	t.Helper()
	prof := profiler.New(nil, profiler.Config{Logger: slog.New(slog.DiscardHandler)})
	for i := 0; i < 50; i++ {
		prof.Learn(execOf(nginxP, openE(t0+int64(i), "/")))
		prof.Learn(openE(t0+int64(i), "/etc/nginx/nginx.conf"))
	}
	prof.Finalize(false)
	return prof
}

// newLearned is New over learned(t), with learnedRules seen in learn mode.
func newLearned(t *testing.T, pol Policy, log *slog.Logger) *Suppressor {
	s := New(learned(t), pol, log)
	for _, r := range learnedRules {
		if s.Suppress(alert(r, event.PriorityWarning), openE(t0, "/etc/nginx/nginx.conf"), event.ModeLearn) {
			t.Fatal("suppressed in learn mode")
		}
	}
	return s
}

func alert(rule string, pri event.Priority, tags ...string) *event.Alert {
	return &event.Alert{Rule: rule, Priority: pri, Source: "syscall", Tags: tags}
}

func TestSuppressPolicyAndProfile(t *testing.T) {
	var logs bytes.Buffer
	s := newLearned(t, Policy{Rules: map[string]bool{"Forced": true, "Never": false}}, slog.New(slog.NewTextHandler(&logs, nil)))
	var metric []string
	s.OnSuppress = func(rule string, pri event.Priority) { metric = append(metric, rule+"/"+pri.String()) }
	known, unknown := openE(t0+100, "/etc/nginx/nginx.conf"), openE(t0+100, "/etc/shadow")
	cases := []struct {
		name string
		a    *event.Alert
		e    *event.Enriched
		mode event.Mode
		want bool
	}{
		{"known behaviour, warning", alert("Noisy", event.PriorityWarning), known, event.ModeDetect, true},
		{"unknown behaviour", alert("Noisy", event.PriorityWarning), unknown, event.ModeDetect, false},
		{"learn mode", alert("Noisy", event.PriorityWarning), known, event.ModeLearn, false},
		{"off mode", alert("Noisy", event.PriorityWarning), known, event.ModeOff, false},
		{"at the floor", alert("Severe", event.PriorityCritical), known, event.ModeDetect, false},
		{"above the floor", alert("Severe", event.PriorityEmergency), known, event.ModeDetect, false},
		{"just below the floor", alert("Error rule", event.PriorityError), known, event.ModeDetect, true},
		{"never_suppress tag", alert("Tagged", event.PriorityNotice, "never_suppress"), known, event.ModeDetect, false},
		{"per-rule true beats the floor", alert("Forced", event.PriorityCritical), known, event.ModeDetect, true},
		{"per-rule false", alert("Never", event.PriorityDebug), known, event.ModeDetect, false},
		{"tag beats per-rule true", alert("Forced", event.PriorityNotice, "never_suppress"), known, event.ModeDetect, false},
		{"internal alert", &event.Alert{Rule: "Driftwatch internal", Priority: event.PriorityWarning, Source: "internal"}, known, event.ModeDetect, false},
		{"rule that never fired in learning", alert("Fresh", event.PriorityWarning), known, event.ModeDetect, false},
		{"unknown process", alert("Noisy", event.PriorityWarning), openBy(&event.Process{Pid: 9, Exe: "/tmp/x", Args: []string{"x"}, Container: ctr1}, t0+100, "/etc/nginx/nginx.conf"), event.ModeDetect, false},
		{"forked worker of a known process", alert("Noisy", event.PriorityWarning), openBy(&event.Process{Pid: 4, Exe: nginxP.Exe, Args: nginxP.Args, Parent: nginxP, Container: ctr1, ExecTime: t0}, t0+100, "/etc/nginx/nginx.conf"), event.ModeDetect, true},
		{"known behaviour again", alert("Noisy", event.PriorityWarning), known, event.ModeDetect, true},
	}
	for _, tc := range cases {
		if got := s.Suppress(tc.a, tc.e, tc.mode); got != tc.want {
			t.Errorf("%s: suppressed %v, want %v", tc.name, got, tc.want)
		}
	}
	es := s.Entries()
	if len(es) != 3 || s.Total() != 5 {
		t.Fatalf("entries %+v total %d, want 3 entries and 5 suppressions", es, s.Total())
	}
	if es[2].Rule != "Noisy" || es[2].Count != 3 || es[2].Profile != "web:1" || es[2].First != t0+100 || len(es[2].Features) == 0 ||
		!strings.Contains(es[2].Features[0], "/etc/nginx/nginx.conf") {
		t.Errorf("Noisy entry %+v", es[2])
	}
	if got := strings.Join(metric, ","); got != "Noisy/Warning,Error rule/Error,Forced/Critical,Noisy/Warning,Noisy/Warning" {
		t.Errorf("metric calls %s", got)
	}
	// The first suppression of each rule in a profile is logged once.
	if n := strings.Count(logs.String(), "rule=Noisy"); n != 1 {
		t.Errorf("Noisy logged %d times:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "nginx.conf") {
		t.Errorf("log lacks the matched feature:\n%s", logs.String())
	}
	// Disabled, nothing is suppressed; a nil Suppressor suppresses nothing.
	if newLearned(t, Policy{Disabled: true}, nil).Suppress(alert("Noisy", event.PriorityWarning), known, event.ModeDetect) {
		t.Error("disabled suppressor suppressed")
	}
	var nilS *Suppressor
	if nilS.Suppress(alert("Noisy", event.PriorityWarning), known, event.ModeDetect) {
		t.Error("nil suppressor suppressed")
	}
	// AnyRule: a rule that never fired in learning is suppressed too.
	if !New(learned(t), Policy{AnyRule: true}, nil).Suppress(alert("Fresh", event.PriorityWarning), known, event.ModeDetect) {
		t.Error("AnyRule: known behaviour of an unlearned rule not suppressed")
	}
	// A custom floor: Warning and more severe pass.
	w := newLearned(t, Policy{Floor: event.PriorityWarning, FloorSet: true}, nil)
	if w.Suppress(alert("Noisy", event.PriorityWarning), known, event.ModeDetect) || !w.Suppress(alert("Noisy", event.PriorityNotice), known, event.ModeDetect) {
		t.Error("custom floor not applied")
	}
}

func TestSaveLoadRestore(t *testing.T) {
	s := newLearned(t, Policy{}, nil)
	s.Suppress(alert("Noisy", event.PriorityWarning), openE(t0+5, "/etc/nginx/nginx.conf"), event.ModeDetect)
	path := FileFor(filepath.Join(t.TempDir(), "dw.db"))
	if es, err := Load(path); err != nil || es != nil {
		t.Fatalf("missing file: %v %v", es, err)
	}
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	es, err := Load(path)
	if err != nil || len(es) != 1 || es[0].Count != 1 || es[0].Rule != "Noisy" {
		t.Fatalf("loaded %+v %v", es, err)
	}
	r := New(learned(t), Policy{}, nil)
	if err := r.LoadInto(path); err != nil {
		t.Fatal(err)
	}
	if len(r.Learned()) != len(learnedRules) {
		t.Errorf("learned rules not restored: %v", r.Learned())
	}
	r.Suppress(alert("Noisy", event.PriorityWarning), openE(t0+9, "/etc/nginx/nginx.conf"), event.ModeDetect)
	if got := r.Entries(); len(got) != 1 || got[0].Count != 2 || got[0].First != t0+5 || got[0].Last != t0+9 || r.Total() != 2 {
		t.Errorf("restored entries %+v total %d", got, r.Total())
	}
}

// In auto mode a rule that fires on context the profile does not yet know
// is noted as learned noise and not suppressed; on known context it is
// judged as in detect mode.
func TestSuppressAutoMode(t *testing.T) {
	s := New(learned(t), Policy{}, nil)
	known, unknown := openE(t0+100, "/etc/nginx/nginx.conf"), openE(t0+100, "/etc/shadow")
	if s.Suppress(alert("Auto rule", event.PriorityWarning), known, event.ModeAuto) {
		t.Error("auto: a rule never noted was suppressed")
	}
	if s.Suppress(alert("Auto rule", event.PriorityWarning), unknown, event.ModeAuto) {
		t.Error("auto: unknown context suppressed")
	}
	// The unknown-context firing noted the rule: known context is now suppressed.
	if !s.Suppress(alert("Auto rule", event.PriorityWarning), known, event.ModeAuto) {
		t.Error("auto: known context of a noted rule not suppressed")
	}
	if s.Suppress(alert("Auto rule", event.PriorityCritical), known, event.ModeAuto) {
		t.Error("auto: the priority floor was not applied")
	}
}
