package main

// End-to-end "done when" checks of issues 2, 3 and 4 against the real
// binary and the real sensor: a workload runs in a test cgroup laid out like
// a Kubernetes container's (test-kubepods/pod<uid>/<64-hex id>) while
// "driftwatch record" captures, then replay, detect, rules and learn are run
// on the trace as a user would.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testinfra"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// TestE2E builds the binary once and runs the issues' end-to-end checks as
// subtests (go test -run 'TestE2E/issue3' runs one).
func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end recording tests build the binary and record live; skipped with -short")
	}
	testutil.NeedRoot(t)
	env := newE2EEnv(t)
	t.Run("issue2_record_replay", func(t *testing.T) { e2eRecordReplay(t, env) })
	t.Run("issue3_rules_detect", func(t *testing.T) { e2eRulesDetect(t, env) })
	t.Run("issue4_learn_detect", func(t *testing.T) { e2eLearnDetect(t, env) })
}

// e2eRunIn runs argv inside cg to completion with stdin from /dev/null and
// returns its pid and standard output; a failure to start or a non-zero
// exit fails the test.
func e2eRunIn(t *testing.T, cg *testinfra.Cgroup, argv ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cg.StartCmd(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%q in cgroup %s: %v\n%s", argv, cg.Rel(), err, errb.String())
	}
	return cmd.Process.Pid, out.String()
}

// e2eScratch is a temporary directory every process of the test can enter.
func e2eScratch(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// e2eFileLosses sums the file=N loss counters of record summaries.
func e2eFileLosses(summary string) int {
	total := 0
	for _, m := range regexp.MustCompile(`\bfile=(\d+)`).FindAllStringSubmatch(summary, -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

// e2eMaxAttempts bounds the record-and-check attempts of one check.
const e2eMaxAttempts = 3

// e2eAttempts runs one record-and-check attempt up to e2eMaxAttempts
// times: another try is made only when the check failed and the recorder
// itself reported file events lost (the machine is shared and busy;
// lifecycle events are never lost). A failure without reported losses fails
// at once. The attempt returns its problems and the record summaries.
func e2eAttempts(t *testing.T, attempt func(t *testing.T) (problems []string, summary string)) {
	t.Helper()
	for try := 1; ; try++ {
		problems, summary := attempt(t)
		if len(problems) == 0 {
			return
		}
		if try < e2eMaxAttempts && e2eFileLosses(summary) > 0 {
			t.Logf("attempt %d failed while the recorder lost file events (%s); retrying:\n%s",
				try, strings.TrimSpace(summary), strings.Join(problems, "\n"))
			continue
		}
		t.Fatalf("%s\nrecord summary: %s", strings.Join(problems, "\n"), strings.TrimSpace(summary))
	}
}

// e2eListener accepts loopback TCP connections, closes them at once and
// reports each client's port.
func e2eListener(t *testing.T) (port int, clients <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan int, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
				select {
				case ch <- a.Port:
				default:
				}
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

// e2eRecordReplay is issue 2's done-when: record while cat /etc/hostname,
// a loopback connect and ln -s run in a container cgroup; replay --format
// json shows each with the container's ids and the right arguments.
func e2eRecordReplay(t *testing.T, env *e2eEnv) {
	catExe, err := filepath.EvalSymlinks("/bin/cat")
	if err != nil {
		t.Fatal(err)
	}
	e2eAttempts(t, func(t *testing.T) ([]string, string) {
		dir := e2eScratch(t)
		trace := filepath.Join(dir, "issue2.dwt")
		port, clients := e2eListener(t)
		rec := env.startRecord(t, trace)

		// The cgroup appears after the capture started, as a new container's does.
		cg, cid := testinfra.NewContainerCgroup(t)
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(cid) || !strings.HasSuffix(cg.Rel(), "/"+cid) {
			t.Fatalf("test cgroup %s: container id %q is not its 64-hex last component", cg.Rel(), cid)
		}
		catPid, catOut := e2eRunIn(t, cg, "/bin/cat", "/etc/hostname")
		if want, _ := os.ReadFile("/etc/hostname"); catOut != string(want) {
			t.Fatalf("cat /etc/hostname printed %q, want %q", catOut, want)
		}
		connector := []string{"/bin/bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port)}
		if _, err := os.Stat("/bin/busybox"); err == nil {
			connector = []string{"/bin/busybox", "nc", "127.0.0.1", strconv.Itoa(port)}
		}
		connPid, _ := e2eRunIn(t, cg, connector...)
		var clientPort int
		select {
		case clientPort = <-clients:
		case <-time.After(10 * time.Second):
			t.Fatalf("%q never connected to 127.0.0.1:%d", connector, port)
		}
		link := filepath.Join(dir, "hostname-link")
		lnPid, _ := e2eRunIn(t, cg, "/bin/ln", "-s", "/etc/hostname", link)
		// A hostile link name (newline, ESC, invalid UTF-8) comes out escaped.
		evil := filepath.Join(dir, "evil\nname\x1b[31m\xff")
		evilPid, _ := e2eRunIn(t, cg, "/bin/ln", "-s", "/etc/hostname", evil)
		summary := rec.stop(t)

		res := env.mustRun(t, "replay", "--format", "json", trace)
		var mine []map[string]any
		for _, ev := range e2eJSONLines(t, res.stdout) {
			if id, _ := e2eNum(ev, "cgroup.id"); uint64(id) == cg.ID() {
				mine = append(mine, ev)
			}
		}
		if len(mine) == 0 {
			return []string{fmt.Sprintf("replay shows no event of cgroup %d (%s)", cg.ID(), cg.Rel())}, summary
		}
		// Every event of the cgroup carries the container id parsed from its path.
		for _, ev := range mine {
			if got := e2eStr(ev, "container.id"); got != cid {
				t.Errorf("event %v of cgroup %d: container.id %q, want %q", ev["evt.num"], cg.ID(), got, cid)
				break
			}
		}
		checks := []struct {
			what string
			want map[string]any // exact values; numbers as int64
		}{
			{"exec of cat", map[string]any{
				"evt.type": "execve", "evt.res": "SUCCESS", "evt.rawres": int64(0),
				"proc.pid": int64(catPid), "thread.tid": int64(catPid), "proc.name": "cat",
				"proc.exepath": catExe, "proc.cmdline": "cat /etc/hostname",
				"user.uid": int64(0), "container.id": cid, "cgroup.id": int64(cg.ID()),
			}},
			{"openat of /etc/hostname", map[string]any{
				"evt.type": "openat", "evt.res": "SUCCESS", "proc.pid": int64(catPid), "proc.name": "cat",
				"fd.name": "/etc/hostname", "fd.type": "file", "evt.arg.name": "/etc/hostname",
				"container.id": cid, "cgroup.id": int64(cg.ID()),
			}},
			{"exit of cat", map[string]any{
				"evt.type": "procexit", "proc.pid": int64(catPid), "proc.name": "cat",
				"evt.arg.status": int64(0), "container.id": cid, "cgroup.id": int64(cg.ID()),
			}},
			{"loopback connect", map[string]any{
				"evt.type": "connect", "evt.res": "SUCCESS", "proc.pid": int64(connPid),
				"fd.type": "ipv4", "fd.l4proto": "tcp", "fd.sip": "127.0.0.1", "fd.sport": int64(port),
				"fd.cip": "127.0.0.1", "fd.cport": int64(clientPort),
				"fd.name":      fmt.Sprintf("127.0.0.1:%d->127.0.0.1:%d", clientPort, port),
				"container.id": cid, "cgroup.id": int64(cg.ID()),
			}},
			{"symlink by ln -s", map[string]any{
				"evt.res": "SUCCESS", "proc.pid": int64(lnPid), "proc.name": "ln",
				"proc.cmdline":   "ln -s /etc/hostname " + link,
				"evt.arg.target": "/etc/hostname", "evt.arg.linkpath": link,
				"container.id": cid, "cgroup.id": int64(cg.ID()),
			}},
			{"symlink with a hostile name", map[string]any{
				"evt.res": "SUCCESS", "proc.pid": int64(evilPid), "proc.name": "ln",
				"proc.cmdline":     "ln -s /etc/hostname " + event.Escape([]byte(evil)),
				"evt.arg.linkpath": event.Escape([]byte(evil)),
				"container.id":     cid,
			}},
		}
		var problems []string
		for _, c := range checks {
			if ev, near := e2eFind(mine, c.want); ev == nil {
				problems = append(problems, fmt.Sprintf("replay of cgroup %d: no %s with %v; closest: %v", cg.ID(), c.what, c.want, near))
			} else if strings.HasPrefix(c.what, "symlink") {
				if typ := e2eStr(ev, "evt.type"); typ != "symlinkat" && typ != "symlink" {
					problems = append(problems, fmt.Sprintf("symlink event has evt.type %q", typ))
				}
			}
		}
		return problems, summary
	})
}

// e2eFind returns the first event whose keys hold exactly want's values
// (strings, or int64 for JSON integers), or nil and the event matching the
// most keys, for the failure message.
func e2eFind(evs []map[string]any, want map[string]any) (map[string]any, map[string]any) {
	var best map[string]any
	bestN := -1
	for _, ev := range evs {
		n := 0
		for k, w := range want {
			switch w := w.(type) {
			case string:
				if v, ok := ev[k].(string); ok && v == w {
					n++
				}
			case int64:
				if v, ok := e2eNum(ev, k); ok && v == w {
					n++
				}
			}
		}
		if n == len(want) {
			return ev, nil
		}
		if n > bestN {
			best, bestN = ev, n
		}
	}
	return nil, best
}

// falcoTime is Falco's JSON alert time: RFC 3339 in UTC with exactly nine
// fraction digits.
var falcoTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

// e2eCheckFalcoShape checks one alert line against Falco's JSON alert
// shape: exactly the keys time, rule, priority, source, tags, hostname,
// output, output_fields, with their types.
func e2eCheckFalcoShape(t *testing.T, a map[string]any, from, to time.Time) {
	t.Helper()
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got, want := strings.Join(keys, ","), "hostname,output,output_fields,priority,rule,source,tags,time"; got != want {
		t.Errorf("alert keys %s, want %s", got, want)
	}
	ts := e2eStr(a, "time")
	if !falcoTime.MatchString(ts) {
		t.Errorf("time %q is not RFC 3339 UTC with nine fraction digits", ts)
	} else if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || tm.Before(from) || tm.After(to) {
		t.Errorf("time %s (%v) outside the recording [%s, %s]", ts, err, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	if e2eStr(a, "source") != "syscall" {
		t.Errorf("source %v, want syscall", a["source"])
	}
	host, _ := os.Hostname()
	if e2eStr(a, "hostname") != host {
		t.Errorf("hostname %v, want %q", a["hostname"], host)
	}
	tags, ok := a["tags"].([]any)
	if !ok || len(tags) == 0 {
		t.Errorf("tags %v: want a non-empty array", a["tags"])
	}
	var ts2 []string
	for _, tg := range tags {
		s, ok := tg.(string)
		if !ok {
			t.Errorf("tag %v is not a string", tg)
		}
		ts2 = append(ts2, s)
	}
	if !sort.StringsAreSorted(ts2) {
		t.Errorf("tags %v are not sorted", ts2)
	}
	if e2eStr(a, "output") == "" || e2eStr(a, "rule") == "" || e2eStr(a, "priority") == "" {
		t.Errorf("empty output, rule or priority: %v", a)
	}
	if e2eFields(a) == nil {
		t.Errorf("output_fields %v: want an object", a["output_fields"])
	}
}

// e2eRulesDetect is issue 3's done-when: Falco's stable rules load (25
// rules), and a trace of cat /etc/shadow in a container alerts with Falco's
// rule and with the built-in rules.
func e2eRulesDetect(t *testing.T, env *e2eEnv) {
	falcoRules := filepath.Join(testutil.SharedDir(t), "compat", "falco_rules.yaml")
	res := env.mustRun(t, "rules", "check", falcoRules)
	if !regexp.MustCompile(`\b25 rules \(25 enabled\)`).MatchString(res.stdout) {
		t.Errorf("rules check %s: want 25 rules (25 enabled), got:\n%s", falcoRules, res.stdout)
	}

	e2eAttempts(t, func(t *testing.T) ([]string, string) {
		dir := e2eScratch(t)
		trace := filepath.Join(dir, "issue3.dwt")
		// An empty file unique to this test makes the command line ours even
		// if another test on the machine reads /etc/shadow meanwhile.
		marker := filepath.Join(dir, "marker")
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		cmdline := "cat /etc/shadow " + marker
		cg, cid := testinfra.NewContainerCgroup(t)
		from := time.Now()
		rec := env.startRecord(t, trace)
		e2eRunIn(t, cg, "/bin/cat", "/etc/shadow", marker)
		summary := rec.stop(t)
		to := time.Now()

		var problems []string
		// Falco's own rules file.
		res := env.mustRun(t, "detect", "--rules", falcoRules, trace, "--format", "json")
		var falco map[string]any
		for _, a := range e2eJSONLines(t, res.stdout) {
			if e2eStr(a, "rule") == "Read sensitive file untrusted" && e2eStr(e2eFields(a), "proc.cmdline") == cmdline {
				falco = a
			}
		}
		if falco == nil {
			problems = append(problems, fmt.Sprintf("detect --rules %s: no \"Read sensitive file untrusted\" alert for %q; output:\n%s", falcoRules, cmdline, e2eHead(res.stdout, 20)))
		} else {
			e2eCheckFalcoShape(t, falco, from, to)
			if p := e2eStr(falco, "priority"); p != "Warning" {
				t.Errorf("priority %q, want Warning (the rule's WARNING)", p)
			}
			if !strings.Contains(e2eStr(falco, "output"), "file=/etc/shadow") {
				t.Errorf("output %q lacks file=/etc/shadow", falco["output"])
			}
			tags := fmt.Sprint(falco["tags"])
			for _, tg := range []string{"filesystem", "mitre_credential_access"} {
				if !strings.Contains(tags, tg) {
					t.Errorf("tags %s lack %s", tags, tg)
				}
			}
			f := e2eFields(falco)
			for k, want := range map[string]any{"fd.name": "/etc/shadow", "evt.type": "openat", "proc.name": "cat", "user.name": "root", "user.uid": int64(0)} {
				if _, near := e2eFind([]map[string]any{f}, map[string]any{k: want}); near != nil {
					t.Errorf("output_fields[%s] = %#v, want %#v", k, f[k], want)
				}
			}
			// Typed: numbers are JSON numbers, not strings.
			for _, k := range []string{"user.uid", "proc.tty", "user.loginuid"} {
				if _, ok := e2eNum(f, k); !ok {
					t.Errorf("output_fields[%s] = %#v, want a JSON integer", k, f[k])
				}
			}
		}

		// The built-in default rules, in text and JSON.
		res = env.mustRun(t, "detect", trace)
		found := false
		for _, l := range strings.Split(res.stdout, "\n") {
			if strings.Contains(l, "file=/etc/shadow") && strings.Contains(l, cid) && strings.Contains(l, cmdline) {
				found = true
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("detect (default rules, text): no alert naming /etc/shadow, %q and container %s; output:\n%s", cmdline, cid, e2eHead(res.stdout, 20)))
		}
		res = env.mustRun(t, "detect", "--format", "json", trace)
		found = false
		for _, a := range e2eJSONLines(t, res.stdout) {
			f := e2eFields(a)
			if e2eStr(f, "container.id") == cid && e2eStr(f, "fd.name") == "/etc/shadow" && e2eStr(f, "proc.cmdline") == cmdline {
				found = true
				e2eCheckFalcoShape(t, a, from, to)
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("detect (default rules, json): no alert with container.id %s and fd.name /etc/shadow", cid))
		}
		return problems, summary
	})
}

// e2eHead returns the first n lines of s.
func e2eHead(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

// e2eLoop is the test container's workload: iterations of date, cat
// /etc/hostname and ls /tmp with short sleeps; when the flag file exists
// one iteration in the middle also runs cat /etc/passwd and id (in that
// order: id reads /etc/passwd too, and a repeated feature alerts once, so
// cat's read comes first to be reported as cat's). The script
// is the same in both recordings so the shell itself looks the same.
func e2eLoop(flag string, iterations int) []string {
	script := fmt.Sprintf(`i=0
while [ $i -lt %d ]; do
  date >/dev/null
  cat /etc/hostname >/dev/null
  ls /tmp >/dev/null
  if [ $i -eq %d ] && [ -e %s ]; then
    cat /etc/passwd >/dev/null
    id >/dev/null
  fi
  sleep 0.02
  i=$((i+1))
done`, iterations, iterations/2, flag)
	return []string{"/bin/sh", "-c", script}
}

// e2eLearnDetect is issue 4's done-when: learn a container's profile from
// a recording of its normal loop, then detect on a recording of the same
// loop plus id and cat /etc/passwd: both are anomalies with explanations,
// and nothing the loop always did is.
func e2eLearnDetect(t *testing.T, env *e2eEnv) {
	const iterations = 35
	idPath, err := exec.LookPath("id")
	if err == nil {
		idPath, err = filepath.EvalSymlinks(idPath)
	}
	if err != nil {
		t.Fatalf("id: %v", err)
	}
	e2eAttempts(t, func(t *testing.T) ([]string, string) {
		dir := e2eScratch(t)
		flag := filepath.Join(dir, "attack")
		db := filepath.Join(dir, "profiles.db")
		cg, cid := testinfra.NewContainerCgroup(t)

		traceA := filepath.Join(dir, "normal.dwt")
		rec := env.startRecord(t, traceA)
		e2eRunIn(t, cg, e2eLoop(flag, iterations)...)
		summaryA := rec.stop(t)

		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		traceB := filepath.Join(dir, "attack.dwt")
		from := time.Now()
		rec = env.startRecord(t, traceB)
		e2eRunIn(t, cg, e2eLoop(flag, iterations)...)
		summaryB := rec.stop(t)
		to := time.Now()
		summary := summaryA + summaryB

		learn := env.mustRun(t, "learn", "--db", db, traceA)
		if !strings.Contains(learn.stdout, cid) {
			return []string{fmt.Sprintf("learn printed no profile for container %s:\n%s", cid, learn.stdout)}, summary
		}
		// The real binary's exit status for an unknown profile.
		if r := env.run(t, "profile", "show", "--db", db, "nginx:does-not-exist"); r.code != 1 || !strings.Contains(r.stderr, `no profile "nginx:does-not-exist"`) {
			t.Errorf("profile show of an unknown profile: %s", r)
		}
		if r := env.mustRun(t, "profile", "show", "--db", db, "--category", "process", cid); !strings.Contains(r.stdout, "[process] state=detecting") ||
			!strings.Contains(r.stdout, "/usr/bin/date [date]") {
			t.Errorf("profile show %s --category process:\n%s", cid, r.stdout)
		}
		res := env.mustRun(t, "detect", "--db", db, "--no-rules", "--format", "json", traceB)
		var problems []string
		var sawID, sawPasswd bool
		for _, a := range e2eJSONLines(t, res.stdout) {
			f := e2eFields(a)
			if e2eStr(f, "container.id") != cid {
				continue
			}
			e2eCheckFalcoShape(t, a, from, to)
			if !strings.Contains(fmt.Sprint(a["tags"]), "anomaly") {
				problems = append(problems, fmt.Sprintf("--no-rules printed a non-anomaly alert: %v", a))
				continue
			}
			name, cmdline, feature := e2eStr(f, "proc.name"), e2eStr(f, "proc.cmdline"), e2eStr(f, "anomaly.feature")
			t.Logf("anomaly: %s proc=%s cmdline=%q feature=%q score=%v", e2eStr(a, "rule"), name, cmdline, feature, f["anomaly.score"])
			if e2eStr(f, "anomaly.explanation") == "" {
				problems = append(problems, fmt.Sprintf("anomaly without explanation: %v", a))
			}
			switch {
			case name == "date" || name == "ls" || cmdline == "cat /etc/hostname":
				problems = append(problems, fmt.Sprintf("false positive on the learned loop: %s proc=%s cmdline=%q feature=%q: %s",
					e2eStr(a, "rule"), name, cmdline, feature, e2eStr(f, "anomaly.explanation")))
			case e2eStr(a, "rule") == "Unexpected process in container" && name == "id" && strings.Contains(feature, idPath):
				sawID = true
			case strings.Contains(feature, "/etc/passwd") && cmdline == "cat /etc/passwd":
				sawPasswd = true
			}
		}
		if !sawID {
			problems = append(problems, "no \"Unexpected process in container\" anomaly for id")
		}
		if !sawPasswd {
			problems = append(problems, "no anomaly for cat reading /etc/passwd")
		}
		if len(problems) > 0 {
			problems = append(problems, "learn output:\n"+learn.stdout, "detect stderr:\n"+res.stderr)
		}
		return problems, summary
	})
}
