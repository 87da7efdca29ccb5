package main

// Harness for the end-to-end tests of the real driftwatch binary
// (e2e_live_test.go): build it once, run subcommands with a timeout, record
// live traces around a workload, and decode JSON-lines output.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

// e2eCmdTimeout bounds every driftwatch invocation of the e2e tests.
const e2eCmdTimeout = 60 * time.Second

// e2eEnv is a driftwatch binary built for one test (and its subtests).
type e2eEnv struct {
	bin string
	dir string // scratch directory removed at the end of the test
}

// newE2EEnv builds ./cmd/driftwatch into a temporary directory.
func newE2EEnv(t *testing.T) *e2eEnv {
	t.Helper()
	dir := t.TempDir()
	// The workload runs as root but the scratch dir must be reachable by
	// every process involved.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "driftwatch")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/driftwatch: %v\n%s", err, out)
	}
	return &e2eEnv{bin: bin, dir: dir}
}

// e2eResult is one finished driftwatch invocation.
type e2eResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r e2eResult) String() string {
	return fmt.Sprintf("driftwatch %s: exit %d\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stderr)
}

// run runs driftwatch with args to completion (or the timeout, which fails
// the test) and returns its output and exit code.
func (e *e2eEnv) run(t *testing.T, args ...string) e2eResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := e2eResult{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("driftwatch %s: timed out after %s\nstderr:\n%s", strings.Join(args, " "), e2eCmdTimeout, errb.String())
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("driftwatch %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustRun is run that fails the test on a non-zero exit.
func (e *e2eEnv) mustRun(t *testing.T, args ...string) e2eResult {
	t.Helper()
	res := e.run(t, args...)
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	return res
}

// e2eRecording is a running "driftwatch record".
type e2eRecording struct {
	cmd  *exec.Cmd
	out  string
	rest chan string // stderr after the ready line, once the process exits
	head []string    // stderr lines up to ready
}

// e2eRingSyscall is the syscall ring size the e2e recordings use (64 MiB
// rather than the default): other engineers' tests flood the shared machine
// with opens, and a recording of a fraction of a second should ride out
// such a burst instead of dropping the one openat under test.
const e2eRingSyscall = "67108864"

// startRecord starts "driftwatch record --out FILE extra..." and returns
// once it has printed "ready" (every program attached). A sensor that
// cannot load here (exit 2 before ready) goes through testutil.NeedBPF.
func (e *e2eEnv) startRecord(t *testing.T, out string, extra ...string) *e2eRecording {
	t.Helper()
	args := append([]string{"record", "--out", out, "--duration", "90s", "--ring-syscall", e2eRingSyscall}, extra...)
	cmd := exec.Command(e.bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start driftwatch record: %v", err)
	}
	rec := &e2eRecording{cmd: cmd, out: out, rest: make(chan string, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
			if sc.Text() == "ready" {
				break
			}
		}
		close(lines)
		b, _ := io.ReadAll(stderr)
		rec.rest <- string(b)
	}()
	timeout := time.After(e2eCmdTimeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				err := cmd.Wait()
				msg := strings.Join(rec.head, "\n")
				if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 2 {
					testutil.NeedBPF(t, "driftwatch record cannot load the sensor: "+msg)
				}
				t.Fatalf("driftwatch record exited before ready (%v):\n%s", err, msg)
			}
			rec.head = append(rec.head, l)
			if l == "ready" {
				return rec
			}
		case <-timeout:
			t.Fatalf("driftwatch record: no ready line after %s:\n%s", e2eCmdTimeout, strings.Join(rec.head, "\n"))
		}
	}
}

// stop lets the last events reach the ring buffers, sends SIGINT and waits
// for a clean exit; it returns the summary printed on stderr.
func (r *e2eRecording) stop(t *testing.T) string {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("signal record: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		summary := <-r.rest
		if err != nil {
			t.Fatalf("driftwatch record exited with %v after SIGINT:\n%s\n%s", err, strings.Join(r.head, "\n"), summary)
		}
		if !strings.Contains(summary, "recorded ") {
			t.Fatalf("driftwatch record printed no summary:\n%s", summary)
		}
		t.Logf("record: %s", strings.TrimSpace(summary))
		return summary
	case <-time.After(e2eCmdTimeout):
		_ = r.cmd.Process.Kill()
		t.Fatalf("driftwatch record did not exit within %s of SIGINT", e2eCmdTimeout)
	}
	return ""
}

// e2eJSONLines decodes output with one JSON object per non-empty line; a line
// that is not a JSON object fails the test.
func e2eJSONLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for i, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(l))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("output line %d is not a JSON object: %v\n%s", i+1, err, l)
		}
		objs = append(objs, m)
	}
	return objs
}

// e2eStr returns m[k] as a string ("" when absent or not a string).
func e2eStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// e2eNum returns m[k] as an int64 and whether it is a JSON integer.
func e2eNum(m map[string]any, k string) (int64, bool) {
	n, ok := m[k].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil
}

// e2eFields returns an alert's output_fields object.
func e2eFields(a map[string]any) map[string]any {
	f, _ := a["output_fields"].(map[string]any)
	return f
}

func TestE2EHarnessHelpers(t *testing.T) {
	losses := []struct {
		summary string
		want    int
	}{
		{"recorded 41 events to x in 202ms; lost 0 (exec=0 fork=0 exit=0 file=0 net=0 process=0)\n", 0},
		{"recorded 9 events to x in 1s; lost 7 (exec=0 fork=0 exit=0 file=5 net=2 process=0)\n", 5},
		{"lost 3 (file=1 net=0)\nlost 12 (file=11 net=1)\n", 12},
		{"no summary", 0},
	}
	for _, tc := range losses {
		if got := e2eFileLosses(tc.summary); got != tc.want {
			t.Errorf("e2eFileLosses(%q) = %d, want %d", tc.summary, got, tc.want)
		}
	}

	evs := e2eJSONLines(t, `{"evt.type":"openat","proc.pid":7,"fd.name":"/etc/hostname"}

{"evt.type":"execve","proc.pid":7,"proc.name":"cat"}
`)
	if len(evs) != 2 {
		t.Fatalf("e2eJSONLines: %d objects, want 2", len(evs))
	}
	finds := []struct {
		want  map[string]any
		found bool
		near  string // evt.type of the closest event when not found
	}{
		{map[string]any{"evt.type": "openat", "proc.pid": int64(7)}, true, ""},
		{map[string]any{"evt.type": "execve", "proc.name": "cat"}, true, ""},
		{map[string]any{"evt.type": "openat", "proc.pid": int64(8)}, false, "openat"},
		{map[string]any{"proc.pid": "7"}, false, "openat"}, // a string never matches a number
		{map[string]any{"proc.name": "cat", "proc.pid": int64(9)}, false, "execve"},
	}
	for _, tc := range finds {
		ev, near := e2eFind(evs, tc.want)
		if (ev != nil) != tc.found || (!tc.found && e2eStr(near, "evt.type") != tc.near) {
			t.Errorf("e2eFind(%v) = %v, closest %v; want found=%v closest %s", tc.want, ev, near, tc.found, tc.near)
		}
	}
}
