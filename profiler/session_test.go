package profiler

import (
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// sessionProc builds a process of container c whose parent is outside it.
func sessionProc(c *event.Container, pid uint32, start int64, vpid uint32, exe string) *event.Process {
	return &event.Process{Pid: pid, StartTime: start, NSKnown: vpid != 0, VPid: vpid, Exe: exe, Args: []string{exe}, Container: c}
}

func childOf(parent *event.Process, pid uint32, start int64, vpid uint32, exe string) *event.Process {
	p := sessionProc(parent.Container, pid, start, vpid, exe)
	p.Parent = parent
	return p
}

func execOf(p *event.Process, t int64) *event.Enriched {
	ev := &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(p.Exe), Argv: []byte(p.Exe + "\x00")}
	return &event.Enriched{Event: ev, Proc: p, Container: p.Container}
}

func openOf(p *event.Process, t int64, path string) *event.Enriched {
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: t, Path: []byte(path), Ret: 3}
	return &event.Enriched{Event: ev, Proc: p, Container: p.Container}
}

// Processes the runtime starts in a running container (exec probes,
// kubectl exec) learn into the image's "#exec" profile, the entrypoint's
// tree into the image's profile: with pid-namespace ids (pid 1 is the
// init) and, for older traces, by which tree started first.
func TestExecSessionsHaveTheirOwnProfile(t *testing.T) {
	for _, tc := range []struct {
		name             string
		initVPid, exVPid uint32
	}{
		{"pid namespace ids", 1, 7},
		{"start times only", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCtr("c1", "db:1", "db", "1")
			p := New(nil, Config{Logger: quiet})
			init := sessionProc(c, 100, t0, tc.initVPid, "/usr/bin/dash")
			svc := childOf(init, 101, t0+1, tc.initVPid*2, "/usr/lib/db/server")
			probe := sessionProc(c, 500, t0+int64(20*time.Second), tc.exVPid, "/usr/bin/db-ping")
			kidVPid := tc.exVPid
			if kidVPid != 0 {
				kidVPid++
			}
			probeKid := childOf(probe, 501, t0+int64(20*time.Second)+1, kidVPid, "/usr/bin/cat")
			p.Learn(execOf(init, t0))
			p.Learn(execOf(svc, t0+1))
			p.Learn(openOf(svc, t0+2, "/var/lib/db/base"))
			p.Learn(execOf(probe, t0+int64(20*time.Second)))
			p.Learn(execOf(probeKid, t0+int64(20*time.Second)+1))
			p.Learn(openOf(probeKid, t0+int64(20*time.Second)+2, "/etc/db.conf"))
			keys := p.Keys()
			if len(keys) != 2 || keys[0] != "db:1" || keys[1] != "db:1"+ExecSuffix {
				t.Fatalf("profiles %q, want db:1 and db:1%s", keys, ExecSuffix)
			}
			has := func(key string, c Category, text string) bool {
				found := false
				p.WithProfile(key, func(pr *Profile) { found = pr.Feature(c, HashString(text)) != nil })
				return found
			}
			for _, f := range []struct {
				key  string
				cat  Category
				text string
			}{
				{"db:1", CatProcess, "/usr/lib/db/server [server]"},
				{"db:1", CatFile, "/var/lib/db/base [read]"},
				{"db:1#exec", CatProcess, "/usr/bin/db-ping [db-ping]"},
				{"db:1#exec", CatEdge, "/usr/bin/db-ping -> /usr/bin/cat"},
				{"db:1#exec", CatFile, "/etc/db.conf [read]"},
			} {
				if !has(f.key, f.cat, f.text) {
					t.Errorf("%s has no %s feature %q", f.key, f.cat, f.text)
				}
				other := "db:1"
				if f.key == other {
					other += ExecSuffix
				}
				if has(other, f.cat, f.text) {
					t.Errorf("%s also learned %q", other, f.text)
				}
			}
			// Scoring sees each session's own profile.
			p.View(execOf(childOf(svc, 102, t0+int64(time.Minute), tc.initVPid*3, "/usr/bin/cat"), t0+int64(time.Minute)), func(pr *Profile, _ []Feature) {
				if pr == nil || pr.Key != "db:1" {
					t.Errorf("service child scored against %v", pr)
				}
			})
		})
	}
}

// An image whose containers never had an exec session while it learned
// has no exec-session profile: scoring uses the image's profile (as
// before the split), and auto mode does not start learning a new profile
// from an intruder's first kubectl exec once the image's categories are
// ready.
func TestExecSessionWithoutProfile(t *testing.T) {
	c := testCtr("c1", "web:1", "web", "1")
	p := New(nil, Config{Logger: quiet})
	init := sessionProc(c, 100, t0, 1, "/usr/sbin/httpd")
	p.Learn(execOf(init, t0))
	for i := 1; i <= 40; i++ {
		p.Learn(openOf(init, t0+int64(i)*int64(time.Minute), "/srv/www/index.html"))
	}
	p.Finalize(false)
	shell := sessionProc(c, 900, t0+int64(time.Hour), 4, "/bin/sh")
	p.View(execOf(shell, t0+int64(time.Hour)), func(pr *Profile, feats []Feature) {
		if pr == nil || pr.Key != "web:1" || len(feats) == 0 {
			t.Errorf("exec session without its profile: scored against %v", pr)
		}
	})
	scored := 0
	p.Auto(execOf(shell, t0+int64(time.Hour)), func(pr *Profile, ready []Feature) { scored = len(ready) })
	if keys := p.Keys(); len(keys) != 1 || scored == 0 {
		t.Errorf("auto mode after learning: profiles %q, %d features scored; want only web:1, scored", keys, scored)
	}
	// One kubectl exec while the image learned does not make an exec
	// profile to score the next against: until it has seen MinWindowObs
	// programs, exec sessions are scored with the image's profile.
	r := New(nil, Config{Logger: quiet})
	r.Learn(execOf(init, t0))
	r.Learn(execOf(sessionProc(c, 800, t0+int64(time.Second), 5, "/bin/cat"), t0+int64(time.Second)))
	for i := 1; i <= 40; i++ {
		r.Learn(openOf(init, t0+int64(i)*int64(time.Minute), "/srv/www/index.html"))
	}
	r.Finalize(false)
	scoredBy := func(q *Profiler, pid uint32, at int64) string {
		key := ""
		q.View(execOf(sessionProc(c, pid, at, 6, "/tmp/miner"), at), func(pr *Profile, _ []Feature) {
			if pr != nil {
				key = pr.Key
			}
		})
		return key
	}
	if keys := r.Keys(); len(keys) != 2 {
		t.Fatalf("profiles %q: want the image's and its exec-session profile", keys)
	}
	if got := scoredBy(r, 900, t0+int64(time.Hour)); got != "web:1" {
		t.Errorf("exec session after one learned kubectl exec scored by %q, want web:1", got)
	}
	for i := 0; i < 25; i++ {
		at := t0 + int64(time.Hour) + int64(i)*int64(20*time.Second)
		r.Learn(execOf(sessionProc(c, uint32(1000+i), at, 7, "/usr/bin/curl"), at))
	}
	if got := scoredBy(r, 2000, t0+int64(2*time.Hour)); got != "web:1"+ExecSuffix {
		t.Errorf("exec session after 25 probes scored by %q, want the exec-session profile", got)
	}
	// While the image still learns, its probes start the exec profile.
	c2 := testCtr("c2", "api:1", "api", "1")
	q := New(nil, Config{Logger: quiet})
	q.Auto(execOf(sessionProc(c2, 200, t0, 1, "/usr/bin/node"), t0), func(*Profile, []Feature) {})
	q.Auto(execOf(sessionProc(c2, 300, t0+int64(20*time.Second), 9, "/usr/bin/curl"), t0+int64(20*time.Second)), func(*Profile, []Feature) {})
	if keys := q.Keys(); len(keys) != 2 || keys[1] != "api:1"+ExecSuffix {
		t.Errorf("auto mode while learning: profiles %q, want api:1 and its exec profile", keys)
	}
	// Once the image is done learning, the probes go on in their own
	// profile (not established yet: 1 program), not scored as the
	// service's (containers-v2 dev in auto mode with 3-minute windows:
	// nginx's curl probe alerted 6 times in the image's profile).
	q.Finalize(false)
	got := ""
	q.Auto(execOf(sessionProc(c2, 301, t0+int64(time.Hour), 10, "/usr/bin/curl"), t0+int64(time.Hour)), func(pr *Profile, _ []Feature) { got = pr.Key })
	if got != "api:1"+ExecSuffix {
		t.Errorf("auto mode after learning: probe handled by %q, want the exec-session profile", got)
	}
}

// A process with no pid-namespace ids whose start time is unknown stays in
// the init tree; one in a shared pid namespace (no pid 1 in the
// container) is an exec session.
func TestExecSessionEdgeCases(t *testing.T) {
	c := testCtr("c1", "x:1", "x", "1")
	ci := &ctrInfo{}
	init := sessionProc(c, 10, t0, 0, "/app")
	if ci.execSession(init, c, t0) {
		t.Fatal("first process is an exec session")
	}
	if ci.execSession(sessionProc(c, 11, 0, 0, "/bin/sh"), c, t0+5) {
		t.Error("unknown start time classified as exec session")
	}
	if !ci.execSession(sessionProc(c, 12, t0+int64(time.Second), 0, "/bin/sh"), c, t0+int64(time.Second)) {
		t.Error("later top-level process not an exec session")
	}
	if ci.execSession(childOf(init, 13, t0+int64(time.Minute), 0, "/bin/sh"), c, t0+int64(time.Minute)) {
		t.Error("child of the init is an exec session")
	}
	// A snapshot shows a process that started before the one seen first.
	early := sessionProc(c, 5, t0-int64(time.Hour), 0, "/init")
	if ci.execSession(early, c, t0+int64(time.Minute)) || !ci.execSession(init, c, t0+int64(time.Minute)) {
		t.Error("the earliest top-level process did not become the init")
	}
	// A process seen before its parent's fork event (its own events
	// overtook it) is adopted later: the remembered session follows.
	orphan := sessionProc(c, 30, t0+int64(2*time.Second), 0, "/bin/sh")
	if !ci.isExec(orphan, c, t0+int64(2*time.Second)) {
		t.Fatal("unparented later process not an exec session")
	}
	orphan.Parent = early // the init since the snapshot step above
	if ci.isExec(orphan, c, t0+int64(2*time.Second)) {
		t.Error("adopted by the init: still an exec session")
	}
	shared := &ctrInfo{}
	if !shared.execSession(sessionProc(c, 20, t0, 7, "/app"), c, t0) {
		t.Error("no pid 1 in the container's ancestry with namespace ids: want exec session")
	}
	// A container in the host's pid namespace (vpid = pid) has no pid 1:
	// its first tree is the init's, as without namespace ids.
	host := &ctrInfo{}
	first := sessionProc(c, 4000, t0, 4000, "/bin/sh")
	later := sessionProc(c, 4100, t0+int64(time.Minute), 4100, "/bin/sh")
	if host.execSession(first, c, t0) || host.execSession(childOf(first, 4001, t0+1, 4001, "/bin/date"), c, t0+1) || !host.execSession(later, c, t0+int64(time.Minute)) {
		t.Error("host pid namespace: want the first tree the init's, a later one an exec session")
	}
	if (&ctrInfo{}).execSession(nil, c, t0) || (&ctrInfo{}).execSession(init, nil, t0) {
		t.Error("no process or no container: want the init tree")
	}
}
