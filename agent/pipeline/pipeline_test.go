package pipeline

import (
	"context"
	"io"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

type fakeRules struct{ rule string }

func (f fakeRules) Eval(e *event.Enriched, emit func(*event.Alert)) {
	if e.Kind == event.KindExec {
		emit(&event.Alert{Rule: f.rule, Tags: []string{"allow_autosuppression"}})
	}
}

type fakeDetector struct {
	modes    []event.Mode
	suppress bool
}

func (d *fakeDetector) Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert)) {
	d.modes = append(d.modes, mode)
	if mode == event.ModeDetect {
		emit(&event.Alert{Rule: "anomaly", Score: 9})
	}
}

func (d *fakeDetector) Suppress(*event.Alert, *event.Enriched) bool { return d.suppress }

type sliceSource struct {
	snap *event.Snapshot
	evs  []event.Event
	i    int
}

func (s *sliceSource) Next(ev *event.Event) error {
	if s.i >= len(s.evs) {
		return io.EOF
	}
	*ev = s.evs[s.i]
	s.i++
	return nil
}

func (s *sliceSource) Snapshot() *event.Snapshot { return s.snap }

const ctrID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func source() *sliceSource {
	exec := event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Pid: 10, Tid: 10, Ppid: 1, CgroupID: 77, Exe: []byte("/bin/id"), Argv: []byte("id\x00")}
	open := event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Pid: 10, Tid: 10, CgroupID: 77, Path: []byte("/etc/passwd"), Ret: 3}
	host := event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Pid: 20, Tid: 20, Ppid: 1, CgroupID: 1, Exe: []byte("/bin/ls")}
	return &sliceSource{
		snap: &event.Snapshot{Hostname: "node-1", Cgroups: map[uint64]string{77: "/test-kubepods/pod1/" + ctrID, 1: "/"}},
		evs:  []event.Event{exec, open, host},
	}
}

func TestPipeline(t *testing.T) {
	tests := []struct {
		name          string
		mode          func(c *event.Container) event.Mode
		suppress      bool
		wantRules     int
		wantAnomalies int
		wantModes     int
		wantSuppress  uint64
	}{
		{name: "default off: rules only", wantRules: 2},
		{name: "detect in containers only", mode: func(c *event.Container) event.Mode {
			if c.IsHost() {
				return event.ModeOff
			}
			return event.ModeDetect
		}, wantRules: 2, wantAnomalies: 2, wantModes: 2},
		{name: "learn everywhere", mode: func(*event.Container) event.Mode { return event.ModeLearn }, wantRules: 2, wantModes: 3},
		{name: "suppressed rule alerts", mode: func(*event.Container) event.Mode { return event.ModeLearn }, suppress: true, wantModes: 3, wantSuppress: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			det := &fakeDetector{suppress: tt.suppress}
			var rulesN, anomN int
			var containers []string
			p := New(Config{
				Rules:    fakeRules{rule: "r"},
				Detector: det,
				Mode:     tt.mode,
				Emit: func(a *event.Alert) {
					if a.Rule == "anomaly" {
						anomN++
					} else {
						rulesN++
					}
				},
				Observe: func(e *event.Enriched) {
					containers = append(containers, e.Container.ID)
					if e.Proc == nil || e.Hostname != "node-1" {
						t.Errorf("enriched event lacks process or hostname: %+v", e)
					}
				},
			})
			if err := p.Run(context.Background(), source()); err != nil {
				t.Fatal(err)
			}
			if rulesN != tt.wantRules || anomN != tt.wantAnomalies || len(det.modes) != tt.wantModes {
				t.Errorf("rule alerts %d (want %d), anomalies %d (want %d), detector calls %d (want %d)",
					rulesN, tt.wantRules, anomN, tt.wantAnomalies, len(det.modes), tt.wantModes)
			}
			if got := p.Stats().Suppressed; got != tt.wantSuppress {
				t.Errorf("suppressed %d, want %d", got, tt.wantSuppress)
			}
			want := []string{ctrID, ctrID, event.HostContainerID}
			if len(containers) != 3 || containers[0] != want[0] || containers[1] != want[1] || containers[2] != want[2] {
				t.Errorf("containers %v, want %v", containers, want)
			}
		})
	}
}

func TestSetRulesSwapAndDisable(t *testing.T) {
	var got []string
	p := New(Config{Rules: fakeRules{rule: "old"}, Emit: func(a *event.Alert) { got = append(got, a.Rule) }})
	ev := event.Event{Kind: event.KindExec, Pid: 5, Tid: 5}
	p.Handle(&ev)
	p.SetRules(fakeRules{rule: "new"})
	p.Handle(&ev)
	p.SetRules(nil)
	p.Handle(&ev)
	if len(got) != 2 || got[0] != "old" || got[1] != "new" {
		t.Fatalf("alerts %v, want [old new]", got)
	}
	if n := p.Stats().Events[event.KindExec]; n != 3 {
		t.Fatalf("exec events counted %d, want 3", n)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := New(Config{})
	if err := p.Run(ctx, source()); err != context.Canceled {
		t.Fatalf("Run on a cancelled context: %v, want context.Canceled", err)
	}
}

// Config.Suppress sees every rule alert with the container's mode; what it
// suppresses is counted and not emitted.
func TestConfigSuppressGetsMode(t *testing.T) {
	var modes []event.Mode
	var emitted int
	p := New(Config{
		Rules: fakeRules{rule: "r"},
		Mode: func(c *event.Container) event.Mode {
			if c.IsHost() {
				return event.ModeLearn
			}
			return event.ModeDetect
		},
		Suppress: func(a *event.Alert, e *event.Enriched, mode event.Mode) bool {
			modes = append(modes, mode)
			return mode == event.ModeDetect
		},
		Emit: func(*event.Alert) { emitted++ },
	})
	if err := p.Run(context.Background(), source()); err != nil {
		t.Fatal(err)
	}
	if len(modes) != 2 || modes[0] != event.ModeDetect || modes[1] != event.ModeLearn {
		t.Errorf("modes passed %v, want [detect learn]", modes)
	}
	if emitted != 1 || p.Stats().Suppressed != 1 {
		t.Errorf("emitted %d suppressed %d, want 1 and 1", emitted, p.Stats().Suppressed)
	}
}
