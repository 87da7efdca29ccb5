package main

// CLI tests of "driftwatch learn" over synthetic traces written with the
// trace Writer: events shaped like the sensor's (fork, exec, openat,
// connect, exit of each child of a container's long-running shell).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

// lpStart is the synthetic traces' first event time (2026-01-02T03:04:05Z).
var lpStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()

// lpStep is the event time between two iterations of a workload.
const lpStep = int64(time.Second)

// lpCommand is one command a container's shell runs per iteration: exec
// of exe with argv, then each open (read-only) and each connect.
type lpCommand struct {
	exe      string
	argv     []string
	opens    []string
	connects []netip.AddrPort
}

// lpContainer is one container in a synthetic trace: its shell runs the
// commands in turn, iterations times.
type lpContainer struct {
	id         string // 64 hex
	repo, tag  string // image repository and tag ("" for none)
	cgroup     uint64
	shellPid   uint32
	iterations int
	commands   []lpCommand
	// distinctOpens: each iteration's first command also opens
	// /data/file-<letters of i>, a new path each time (never-stable file
	// behaviour; letters, not digits, so no name template merges them).
	distinctOpens bool
}

func (c *lpContainer) image() string {
	if c.repo == "" {
		return ""
	}
	return c.repo + ":" + c.tag
}

// lpCID returns a 64-hex container id made from a short seed.
func lpCID(seed string) string {
	return strings.Repeat(fmt.Sprintf("%x", seed), 64)[:64]
}

// lpWriteTrace writes a trace of the containers' workloads, interleaved
// iteration by iteration, and returns its path.
func lpWriteTrace(t *testing.T, dir, name string, ctrs ...*lpContainer) string {
	t.Helper()
	snap := &event.Snapshot{
		Time:     lpStart - int64(time.Second),
		Hostname: "node-1",
		Processes: []event.ProcessInfo{
			{Pid: 1, Comm: "init", Exe: "/sbin/init", Args: []string{"/sbin/init"}, Cwd: "/", CgroupID: 1, LoginUID: 0xffffffff},
		},
		Cgroups: map[uint64]string{1: "/"},
	}
	for _, c := range ctrs {
		path := "/kubepods/pod" + c.id[:8] + "/" + c.id
		snap.Cgroups[c.cgroup] = path
		snap.Containers = append(snap.Containers, event.ContainerInfo{
			ID: c.id, Name: "ctr-" + c.id[:4], Image: c.image(), ImageRepo: c.repo, ImageTag: c.tag,
			// Started long before the trace: no warm-up.
			StartTime: lpStart - int64(time.Hour), CgroupID: c.cgroup, CgroupPath: path, Runtime: "containerd",
		})
		snap.Processes = append(snap.Processes, event.ProcessInfo{
			Pid: c.shellPid, Ppid: 1, Comm: "sh", Exe: "/bin/sh", Args: []string{"sh", "-c", "loop"}, Cwd: "/",
			CgroupID: c.cgroup, LoginUID: 0xffffffff, StartTime: lpStart - int64(time.Hour),
		})
	}
	var buf bytes.Buffer
	w, err := trace.NewWriter(&buf, snap)
	if err != nil {
		t.Fatal(err)
	}
	var num uint64
	now := lpStart
	emit := func(e *event.Event) {
		t.Helper()
		num++
		now += 1000
		e.Num, e.Time, e.LoginUID = num, now, 0xffffffff
		if err := w.Write(e); err != nil {
			t.Fatalf("write event %d: %v", num, err)
		}
	}
	maxIter := 0
	for _, c := range ctrs {
		maxIter = max(maxIter, c.iterations)
	}
	pid := uint32(1000)
	for i := 0; i < maxIter; i++ {
		now = lpStart + int64(i)*lpStep
		for _, c := range ctrs {
			if i >= c.iterations {
				continue
			}
			for j, cmd := range c.commands {
				pid++
				emit(&event.Event{Kind: event.KindFork, Pid: c.shellPid, Tid: c.shellPid, Ppid: 1,
					ChildPid: pid, ChildTid: pid, CgroupID: c.cgroup})
				ex := &event.Event{Kind: event.KindExec, Pid: pid, Tid: pid, Ppid: c.shellPid, CgroupID: c.cgroup,
					Exe: []byte(cmd.exe), Argv: []byte(strings.Join(cmd.argv, "\x00") + "\x00"), Cwd: []byte("/")}
				ex.SetComm(filepath.Base(cmd.exe))
				emit(ex)
				opens := cmd.opens
				if c.distinctOpens && j == 0 {
					opens = append(opens[:len(opens):len(opens)], fmt.Sprintf("/data/file-%c%c", 'g'+i%20, 'g'+i/20))
				}
				for _, p := range opens {
					op := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Pid: pid, Tid: pid, Ppid: c.shellPid,
						CgroupID: c.cgroup, Fd: -100, Path: []byte(p), Ret: 3}
					op.SetComm(filepath.Base(cmd.exe))
					emit(op)
				}
				for _, dst := range cmd.connects {
					cn := &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Pid: pid, Tid: pid, Ppid: c.shellPid,
						CgroupID: c.cgroup, Fd: 4, Family: event.AFInet, Proto: event.ProtoTCP, SockType: 1,
						Src: netip.AddrPortFrom(netip.MustParseAddr("10.1.0.5"), uint16(40000+i)), Dst: dst}
					cn.SetComm(filepath.Base(cmd.exe))
					emit(cn)
				}
				exit := &event.Event{Kind: event.KindExit, Pid: pid, Tid: pid, Ppid: c.shellPid, CgroupID: c.cgroup}
				exit.SetComm(filepath.Base(cmd.exe))
				emit(exit)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Workload commands shared by the tests.
var (
	lpCat  = lpCommand{exe: "/usr/bin/cat", argv: []string{"cat", "/etc/hostname"}, opens: []string{"/etc/hostname"}}
	lpDate = lpCommand{exe: "/usr/bin/date", argv: []string{"date"}, opens: []string{"/etc/localtime"}}
	lpID   = lpCommand{exe: "/usr/bin/id", argv: []string{"id"}, opens: []string{"/etc/passwd", "/etc/group"}}
	lpCurl = lpCommand{exe: "/usr/bin/curl", argv: []string{"curl", "-s", "https://api.internal/health"},
		opens: []string{"/etc/resolv.conf"}, connects: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.7:443")}}
)

// lpRun runs the driftwatch command line in process and returns stdout,
// stderr and the error main would turn into the exit status.
func lpRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

// lpMust is lpRun failing the test on error.
func lpMust(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := lpRun(t, args...)
	if err != nil {
		t.Fatalf("driftwatch %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// lpExitCode is the status main exits with for err (0 for nil).
func lpExitCode(err error) int { return exitCode(err) }

// lpCategory is one category of "learn --json" / "profile list --json".
type lpCategory struct {
	State        string  `json:"state"`
	Observations uint64  `json:"observations"`
	Features     int     `json:"features"`
	Singletons   uint64  `json:"singletons"`
	UnseenMass   float64 `json:"unseen_mass"`
}

// lpSummaries decodes the JSON summaries into key → category → stats,
// also returning each key's image.
func lpSummaries(t *testing.T, out string) (map[string]map[string]lpCategory, map[string]string) {
	t.Helper()
	var raw []struct {
		Key        string                `json:"key"`
		Image      string                `json:"image"`
		Categories map[string]lpCategory `json:"categories"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("summaries are not JSON: %v\n%s", err, out)
	}
	cats := map[string]map[string]lpCategory{}
	images := map[string]string{}
	for _, r := range raw {
		if r.Key == "" {
			t.Fatalf("summary without key in %s", out)
		}
		cats[r.Key], images[r.Key] = r.Categories, r.Image
	}
	return cats, images
}

// lpWeb and lpAPI are two images' containers with steady workloads.
func lpWeb() *lpContainer {
	return &lpContainer{id: lpCID("web1"), repo: "registry.local/web", tag: "1", cgroup: 101, shellPid: 101,
		iterations: 60, commands: []lpCommand{lpCat, lpDate, lpCurl}}
}

func lpAPI() *lpContainer {
	return &lpContainer{id: lpCID("api1"), repo: "registry.local/api", tag: "1", cgroup: 102, shellPid: 102,
		iterations: 40, commands: []lpCommand{lpCat, lpID}}
}

func TestLearnPrintsProfilesAndStates(t *testing.T) {
	dir := t.TempDir()
	noisy := &lpContainer{id: lpCID("batch"), repo: "registry.local/batch", tag: "7", cgroup: 103, shellPid: 103,
		iterations: 30, commands: []lpCommand{lpDate}, distinctOpens: true}
	tr := lpWriteTrace(t, dir, "a.dwt", lpWeb(), lpAPI(), noisy)
	db := filepath.Join(dir, "p.db")

	out := lpMust(t, "learn", "--db", db, "--json", tr)
	cats, images := lpSummaries(t, out)

	type want struct {
		cat      string
		state    string
		obs      uint64
		features int
	}
	tests := []struct {
		key   string
		image string
		cats  []want
	}{
		// 60 iterations of cat, date, curl: 3 executables, 3 parent→child
		// edges, 3 files, one peer; nothing new after the first iteration.
		{"registry.local/web:1", "registry.local/web:1", []want{
			{"process", "detecting", 180, 3}, {"edge", "detecting", 180, 3},
			{"file", "detecting", 180, 3}, {"network", "detecting", 60, 1},
			{"listen", "detecting", 0, 0}, {"privilege", "detecting", 0, 0},
		}},
		{"registry.local/api:1", "registry.local/api:1", []want{
			{"process", "detecting", 80, 2}, {"edge", "detecting", 80, 2},
			{"file", "detecting", 120, 3}, {"network", "detecting", 0, 0},
		}},
		// A new file every iteration: the file category never settles.
		{"registry.local/batch:7", "registry.local/batch:7", []want{
			{"process", "detecting", 30, 1}, {"file", "unstable", 60, 31},
		}},
	}
	for _, tc := range tests {
		got, ok := cats[tc.key]
		if !ok {
			t.Errorf("learn printed no profile %q; got %v", tc.key, cats)
			continue
		}
		if images[tc.key] != tc.image {
			t.Errorf("%s: image %q, want %q", tc.key, images[tc.key], tc.image)
		}
		for _, w := range tc.cats {
			c := got[w.cat]
			if c.State != w.state || c.Observations != w.obs || c.Features != w.features {
				t.Errorf("%s %s: state=%s observations=%d features=%d, want %s %d %d",
					tc.key, w.cat, c.State, c.Observations, c.Features, w.state, w.obs, w.features)
			}
		}
	}
	if len(cats) != len(tests) {
		t.Errorf("learn printed %d profiles, want %d: %v", len(cats), len(tests), cats)
	}

	// The text table, as learn prints it (into a second store) and as
	// profile list prints it: a header, one row per profile with its states.
	learnText := lpMust(t, "learn", "--db", filepath.Join(dir, "q.db"), tr)
	text := lpMust(t, "profile", "list", "--db", db)
	if learnText != text {
		t.Errorf("learn's table differs from profile list's:\n%s\n%s", learnText, text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 1+len(tests) || !strings.HasPrefix(lines[0], "PROFILE") {
		t.Fatalf("profile list:\n%s", text)
	}
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "registry.local/batch:7 "):
			if !strings.Contains(l, "file=unstable 31/60") || !strings.Contains(l, "process=detecting 1/30") {
				t.Errorf("batch row %q", l)
			}
		case strings.HasPrefix(l, "registry.local/web:1 "):
			if !strings.Contains(l, "network=detecting 1/60") || !strings.Contains(l, "listen=detecting,") {
				t.Errorf("web row %q", l)
			}
		case strings.HasPrefix(l, "registry.local/api:1 "):
		default:
			t.Errorf("unexpected row %q", l)
		}
	}
}

func TestLearnAccumulatesAndKeepLearning(t *testing.T) {
	dir := t.TempDir()
	tr := lpWriteTrace(t, dir, "a.dwt", lpAPI())
	db := filepath.Join(dir, "p.db")

	// --keep-learning: 40 s of events are far from the 30 min a category
	// needs to become stable, so every category is still learning.
	cats, _ := lpSummaries(t, lpMust(t, "learn", "--db", db, "--keep-learning", "--json", tr))
	api := cats["registry.local/api:1"]
	for _, name := range []string{"process", "edge", "file"} {
		if api[name].State != "learning" {
			t.Errorf("--keep-learning: %s is %q, want learning", name, api[name].State)
		}
	}
	// Learning the same trace again into the same store adds to the counts.
	cats, _ = lpSummaries(t, lpMust(t, "learn", "--db", db, "--json", tr))
	api = cats["registry.local/api:1"]
	if api["process"].Observations != 160 || api["file"].Observations != 240 || api["file"].Features != 3 {
		t.Errorf("after learning twice: process %+v file %+v, want 160 and 240 observations over 3 files", api["process"], api["file"])
	}
	if api["process"].State != "detecting" {
		t.Errorf("finalised process state %q, want detecting", api["process"].State)
	}
}

func TestLearnErrors(t *testing.T) {
	dir := t.TempDir()
	tr := lpWriteTrace(t, dir, "a.dwt", lpAPI())
	data, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.dwt")
	if err := os.WriteFile(cut, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	notTrace := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notTrace, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "p.db")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no db", []string{"learn", tr}, 2, "--db is required"},
		{"no trace", []string{"learn", "--db", db}, 2, "arg"},
		{"missing trace", []string{"learn", "--db", db, filepath.Join(dir, "absent.dwt")}, 1, "absent.dwt"},
		{"not a trace", []string{"learn", "--db", db, notTrace}, 1, "notes.txt"},
		{"truncated trace", []string{"learn", "--db", db, cut}, 1, "cut.dwt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := lpRun(t, tc.args...)
			if err == nil {
				t.Fatalf("driftwatch %s succeeded", strings.Join(tc.args, " "))
			}
			if code := lpExitCode(err); code != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("exit %d %q, want exit %d mentioning %q", code, err, tc.code, tc.msg)
			}
			// A rejected input never leaves a store behind.
			if _, err := os.Stat(db); err == nil {
				t.Errorf("learn created %s although its input was rejected", db)
			}
		})
	}
}
