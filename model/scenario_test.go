package model

import (
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// sim builds enriched events shaped as the sensor and the process table
// produce them: an exec (sched_process_exec) of the new image followed by
// the dynamic loader's and the program's openat calls.
type sim struct {
	t       int64
	num     uint64
	ctr     *event.Container
	shell   *event.Process
	nextPid uint32
	out     []*event.Enriched
	busybox bool
}

func newSim(start time.Time, busybox bool) *sim {
	ctr := &event.Container{ContainerInfo: event.ContainerInfo{ID: "0f3c2b9a7d61"}}
	shExe := "/usr/bin/dash"
	if busybox {
		shExe = "/bin/busybox"
	}
	sh := &event.Process{Pid: 100, Exe: shExe, Args: []string{"sh", "-c", "while true; do date; cat /etc/hostname; ls /tmp; sleep 0.2; done"}, Container: ctr, Comm: "sh"}
	return &sim{t: start.UnixNano(), ctr: ctr, shell: sh, nextPid: 101, busybox: busybox}
}

func (s *sim) add(ev *event.Event, p *event.Process, fd *event.FD) {
	s.num++
	s.t += int64(2 * time.Millisecond)
	ev.Num, ev.Time, ev.Pid, ev.Tid = s.num, s.t, p.Pid, p.Pid
	s.out = append(s.out, &event.Enriched{Event: ev, Proc: p, Container: s.ctr, FD: fd, Hostname: "node-1"})
}

func (s *sim) open(p *event.Process, path string, flags uint32) {
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Path: []byte(path), Flags: flags, Fd: -100, Ret: 3}
	s.add(ev, p, &event.FD{Num: 3, Type: event.FDFile, Name: path, Flags: flags})
}

const (
	oRdonlyCloexec = 0x80000
	oDirectory     = 0x10000
)

var (
	libc      = "/lib/x86_64-linux-gnu/libc.so.6"
	libselinx = "/lib/x86_64-linux-gnu/libselinux.so.1"
	libpcre   = "/lib/x86_64-linux-gnu/libpcre2-8.so.0"
)

// run execs argv in a child of the shell and replays its file opens.
func (s *sim) run(argv []string, files []string) {
	exe := "/usr/bin/" + argv[0]
	if s.busybox {
		exe = "/bin/busybox"
	}
	p := &event.Process{Pid: s.nextPid, Ppid: s.shell.Pid, Exe: exe, Args: argv, Parent: s.shell, Container: s.ctr, Comm: argv[0]}
	s.nextPid++
	ev := &event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Exe: []byte(exe), Argv: []byte(strings.Join(argv, "\x00") + "\x00")}
	s.add(ev, p, nil)
	if !s.busybox {
		s.open(p, "/etc/ld.so.cache", oRdonlyCloexec)
		if argv[0] == "ls" || argv[0] == "id" {
			s.open(p, libselinx, oRdonlyCloexec)
			s.open(p, libpcre, oRdonlyCloexec)
		}
		s.open(p, libc, oRdonlyCloexec)
		if argv[0] == "ls" || argv[0] == "id" {
			s.open(p, "/proc/filesystems", oRdonlyCloexec)
		}
		s.open(p, "/usr/lib/locale/locale-archive", oRdonlyCloexec)
	}
	for _, f := range files {
		flags := uint32(oRdonlyCloexec)
		if f == "/tmp" {
			flags |= oDirectory
		}
		s.open(p, f, flags)
	}
	s.t += int64(150 * time.Millisecond)
}

func (s *sim) loop(n int, extra bool) {
	// The shell itself starts once.
	s.add(&event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Exe: []byte(s.shell.Exe), Argv: []byte(strings.Join(s.shell.Args, "\x00"))}, s.shell, nil)
	s.open(s.shell, "/etc/ld.so.cache", oRdonlyCloexec)
	s.open(s.shell, libc, oRdonlyCloexec)
	for i := 0; i < n; i++ {
		s.run([]string{"date"}, []string{"/etc/localtime"})
		s.run([]string{"cat", "/etc/hostname"}, []string{"/etc/hostname"})
		s.run([]string{"ls", "/tmp"}, []string{"/tmp"})
		if extra {
			s.run([]string{"id"}, []string{"/etc/nsswitch.conf", "/etc/passwd", "/etc/group"})
			s.run([]string{"cat", "/etc/passwd"}, []string{"/etc/passwd"})
		}
	}
}

func learnAndDetect(t *testing.T, busybox bool, loops int) ([]*event.Alert, *Detector) {
	t.Helper()
	prof := profiler.New(nil, profiler.Config{})
	det := NewDetector(prof, Config{Batch: true})
	a := newSim(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), busybox)
	a.loop(loops, false)
	for _, e := range a.out {
		det.Handle(e, event.ModeLearn, nil)
	}
	prof.Finalize(false)
	b := newSim(time.Date(2026, 1, 3, 3, 4, 5, 0, time.UTC), busybox)
	b.loop(loops, true)
	var alerts []*event.Alert
	for _, e := range b.out {
		det.Handle(e, event.ModeDetect, func(a *event.Alert) { t.Fatalf("batch mode emitted from Handle: %s", a.Output) })
	}
	det.Flush(func(a *event.Alert) { alerts = append(alerts, a) })
	return alerts, det
}

// TestLoopScenario is the acceptance scenario with synthetic
// events: learning a loop of date, cat /etc/hostname and ls /tmp, then
// detecting the same loop plus id and cat /etc/passwd must report id and
// the new file reads, and nothing about the looped commands.
func TestLoopScenario(t *testing.T) {
	for _, tc := range []struct {
		name    string
		busybox bool
		loops   int
		want    []string // "category feature"
	}{
		{"coreutils-20", false, 20, []string{
			"process /usr/bin/id [id]", "edge /usr/bin/dash(sh) -> /usr/bin/id",
			"file /etc/passwd [read]", "file /etc/group [read]", "file /etc/nsswitch.conf [read]"}},
		{"coreutils-60", false, 60, []string{
			"process /usr/bin/id [id]", "edge /usr/bin/dash(sh) -> /usr/bin/id",
			"file /etc/passwd [read]", "file /etc/group [read]", "file /etc/nsswitch.conf [read]"}},
		{"busybox-30", true, 30, []string{
			"process /bin/busybox [id]", "edge /bin/busybox(sh) -> /bin/busybox(id)",
			"file /etc/passwd [read]", "file /etc/group [read]", "file /etc/nsswitch.conf [read]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alerts, det := learnAndDetect(t, tc.busybox, tc.loops)
			// One alert per category and novelty episode: id's three
			// file reads are one alert listing the others as related.
			got := map[string]*event.Alert{}
			for _, a := range alerts {
				cat := a.OutputFields["anomaly.category"].(string)
				k := cat + " " + a.OutputFields["anomaly.feature"].(string)
				got[k] = a
				rel, _ := a.OutputFields["anomaly.related"].([]string)
				for _, r := range rel {
					got[cat+" "+r] = a
				}
				t.Logf("%s score=%.2f th=%.2f prio=%s count=%v related=%q: %s", k, a.Score, a.OutputFields["anomaly.threshold"], a.Priority, a.OutputFields["anomaly.count"], rel, a.OutputFields["anomaly.explanation"])
			}
			if n := len(alerts); n != 3 {
				t.Errorf("%d alerts, want 3 (process, edge, one file episode)", n)
			}
			for _, w := range tc.want {
				a := got[w]
				if a == nil {
					t.Errorf("missing anomaly %q", w)
					continue
				}
				if a.Score < a.OutputFields["anomaly.threshold"].(float64) {
					t.Errorf("%s: score %.2f below threshold", w, a.Score)
				}
				if a.OutputFields["anomaly.explanation"] == "" || a.Source != "syscall" || a.Rule == "" {
					t.Errorf("%s: incomplete alert %+v", w, a)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d distinct anomalies, want %d", len(got), len(tc.want))
			}
			// Highest score first within the container.
			for i := 1; i < len(alerts); i++ {
				if alerts[i].ContainerID == alerts[i-1].ContainerID && alerts[i].Score > alerts[i-1].Score {
					t.Errorf("alerts not sorted by score: %v > %v", alerts[i].Score, alerts[i-1].Score)
				}
			}
			st := det.Stats()
			if st.Deduplicated == 0 {
				t.Errorf("repeated anomalies were not deduplicated: %+v", st)
			}
		})
	}
}
