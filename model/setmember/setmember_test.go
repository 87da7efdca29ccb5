package setmember

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

var (
	t0  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()
	ctr = &event.Container{ContainerInfo: event.ContainerInfo{ID: "c1", Image: "web:1", ImageRepo: "web", ImageTag: "1"}}
	sh  = &event.Process{Pid: 1, Exe: "/bin/sh", Args: []string{"sh"}, Cwd: "/srv"}
)

func execE(t int64, exe string, argv ...string) *event.Enriched {
	ev := &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(exe), Argv: []byte(strings.Join(argv, "\x00") + "\x00")}
	return &event.Enriched{Event: ev, Proc: &event.Process{Pid: 2, Exe: exe, Args: argv, Parent: sh, Container: ctr}, Container: ctr}
}

func openE(t int64, p string, flags uint32) *event.Enriched {
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: t, Path: []byte(p), Flags: flags, Ret: 3}
	return &event.Enriched{Event: ev, Proc: sh, Container: ctr}
}

func connectE(t int64, dst string) *event.Enriched {
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Time: t, Family: event.AFInet, Proto: event.ProtoTCP, Dst: netip.MustParseAddrPort(dst)}
	return &event.Enriched{Event: ev, Proc: sh, Container: ctr}
}

func TestSetMembership(t *testing.T) {
	d := New(Config{})
	for i := 0; i < 3; i++ {
		tm := t0 + int64(i)
		d.Handle(execE(tm, "/usr/bin/cat", "cat", "/etc/hostname"), event.ModeLearn, nil)
		d.Handle(openE(tm, "/etc/hostname", 0x80000), event.ModeLearn, nil)
		d.Handle(openE(tm, "data/log", 0x441), event.ModeLearn, nil) // relative to /srv
		d.Handle(connectE(tm, "10.0.0.7:5432"), event.ModeLearn, nil)
	}
	for i := 0; i < 51; i++ {
		d.Handle(openE(t0, fmt.Sprintf("/var/cache/app/k%d/blob", i), 0), event.ModeLearn, nil)
		d.Handle(openE(t0, fmt.Sprintf("/var/spool/s%d", i%50), 0), event.ModeLearn, nil)
	}
	if err := d.FinishLearning(); err != nil {
		t.Fatal(err)
	}
	if got := d.Collapsed()["web:1"]; strings.Join(got, " ") != "/var/cache/app/" {
		t.Errorf("collapsed %q, want only /var/cache/app/ (51 children; /var/spool/ has 50)", got)
	}
	for _, tc := range []struct {
		name  string
		e     *event.Enriched
		rules []string
	}{
		{"same exec", execE(t0, "/usr/bin/cat", "cat", "/etc/hostname"), nil},
		{"other args", execE(t0, "/usr/bin/cat", "cat", "/etc/passwd"), []string{"Unexpected process launched"}},
		{"known open, fewer flags", openE(t0, "/etc/hostname", 0), nil},
		{"known path, new flags", openE(t0, "/etc/hostname", 0x1), []string{"Unexpected file access"}},
		{"relative path resolved", openE(t0, "/srv/data/log", 0x441), nil},
		{"collapsed directory", openE(t0, "/var/cache/app/new-key/blob", 0), nil},
		{"collapsed directory, other leaf", openE(t0, "/var/cache/app/new-key/other", 0), []string{"Unexpected file access"}},
		{"uncollapsed directory", openE(t0, "/var/spool/s77", 0), []string{"Unexpected file access"}},
		{"known peer", connectE(t0, "10.0.0.7:5432"), nil},
		{"new peer", connectE(t0, "10.0.0.7:5433"), []string{"Unexpected egress network traffic"}},
		{"new syscall", &event.Enriched{Event: &event.Event{Kind: event.KindSyscall, Syscall: event.SysPtrace, Time: t0, Ret: -1}, Proc: sh, Container: ctr},
			[]string{"Unexpected system call"}},
	} {
		var got []string
		d.Handle(tc.e, event.ModeDetect, func(a *event.Alert) { got = append(got, a.Rule) })
		if strings.Join(got, "|") != strings.Join(tc.rules, "|") {
			t.Errorf("%s: alerts %q, want %q", tc.name, got, tc.rules)
		}
	}
	// Deduplicated within the window, again after it.
	var n int
	count := func(*event.Alert) { n++ }
	d.Handle(execE(t0+1, "/usr/bin/cat", "cat", "/etc/passwd"), event.ModeDetect, count)
	d.Handle(execE(t0+int64(11*time.Minute), "/usr/bin/cat", "cat", "/etc/passwd"), event.ModeDetect, count)
	if n != 1 || d.Stats().Deduplicated != 1 {
		t.Errorf("dedup: %d alerts, stats %+v", n, d.Stats())
	}
}

func TestAutoModeAndEscaping(t *testing.T) {
	d := New(Config{})
	d.Handle(openE(t0, "/etc/hostname", 0), event.ModeAuto, nil)
	var got []*event.Alert
	emit := func(a *event.Alert) { got = append(got, a) }
	d.Handle(openE(t0, "/etc/x\x1b[31m", 0), event.ModeAuto, emit)
	if len(got) != 0 {
		t.Fatal("auto mode alerted before learning finished")
	}
	d.FinishLearning()
	d.Handle(openE(t0, "/etc/hostname", 0), event.ModeAuto, emit)
	d.Handle(openE(t0, "/etc/y\x1b[31m", 0), event.ModeAuto, emit)
	if len(got) != 1 {
		t.Fatalf("auto after learning: %d alerts, want 1", len(got))
	}
	if strings.ContainsRune(got[0].Output, 0x1b) || strings.ContainsRune(got[0].OutputFields["setmember.feature"].(string), 0x1b) {
		t.Errorf("unescaped output %q", got[0].Output)
	}
	// No profile for an image: everything is unseen.
	other := openE(t0, "/etc/hostname", 0)
	other.Container = &event.Container{ContainerInfo: event.ContainerInfo{ID: "c2", Image: "db:1"}}
	got = nil
	d.Handle(other, event.ModeDetect, emit)
	if len(got) != 2 { // the open and the openat syscall
		t.Errorf("unknown image: %d alerts", len(got))
	}
}
