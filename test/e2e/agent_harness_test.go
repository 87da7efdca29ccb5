// Package e2e holds end-to-end tests of the real driftwatch binary against
// real infrastructure (runc and containerd containers, a loopback
// kube-apiserver): see internal/testinfra. They need root and BPF.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// agentBinary builds ./cmd/driftwatch once per test binary.
func agentBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "driftwatch-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "driftwatch")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/driftwatch")
		cmd.Dir = testutil.RepoRoot(t)
		// As `make build`: without cgo the agent can drop capabilities on every thread.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/driftwatch: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// received is one alert the sink got, with its arrival time.
type received struct {
	At    time.Time
	Raw   []byte
	Alert map[string]any
}

func (r received) rule() string { s, _ := r.Alert["rule"].(string); return s }
func (r received) fields() map[string]any {
	m, _ := r.Alert["output_fields"].(map[string]any)
	return m
}
func (r received) field(k string) string {
	v, ok := r.fields()[k]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// sink is a falcosidekick stand-in on loopback: it accepts what
// falcosidekick's / endpoint accepts and rejects the rest with 400.
type sink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
	bad []string
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		err := json.Unmarshal(b, &m)
		if err == nil {
			err = falcoShape(m)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.bad = append(s.bad, fmt.Sprintf("%v: %s", err, b))
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.got = append(s.got, received{At: time.Now(), Raw: b, Alert: m})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// falcoShape checks the payload as falcosidekick does: a non-empty rule, a
// known priority, a time, and output_fields.
func falcoShape(m map[string]any) error {
	if r, _ := m["rule"].(string); r == "" {
		return fmt.Errorf("empty rule")
	}
	switch strings.ToLower(fmt.Sprint(m["priority"])) {
	case "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug":
	default:
		return fmt.Errorf("unknown priority %v", m["priority"])
	}
	ts, _ := m["time"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return fmt.Errorf("time %q: %v", ts, err)
	}
	if _, ok := m["output_fields"].(map[string]any); !ok {
		return fmt.Errorf("output_fields missing")
	}
	if o, _ := m["output"].(string); o == "" {
		return fmt.Errorf("empty output")
	}
	return nil
}

// wait returns the first alert matching f, waiting up to d.
func (s *sink) wait(t *testing.T, d time.Duration, what string, f func(received) bool) received {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		for _, r := range s.got {
			if f(r) {
				s.mu.Unlock()
				return r
			}
		}
		bad := append([]string(nil), s.bad...)
		n := len(s.got)
		s.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("sink rejected alerts as not Falco-shaped: %v", bad)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert %s within %v (%d alerts received: %s)\nsome:\n%s", what, d, n, s.rules(), s.sample())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sample returns up to one raw alert per rule.
func (s *sink) sample() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, r := range s.got {
		if !seen[r.rule()] {
			seen[r.rule()] = true
			out = append(out, string(r.Raw))
		}
	}
	return strings.Join(out, "\n")
}

func (s *sink) rules() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]int{}
	for _, r := range s.got {
		seen[r.rule()]++
	}
	return fmt.Sprint(seen)
}

// runningAgent is a started `driftwatch agent`.
type runningAgent struct {
	cmd     *exec.Cmd
	metrics string // http://127.0.0.1:PORT
	stderr  *lockedBuffer
	done    chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startAgent runs the agent with args plus --metrics-addr on a free
// loopback port and waits until /healthz answers 200. The agent gets
// SIGTERM at cleanup and must exit 0.
func startAgent(t *testing.T, env []string, args ...string) *runningAgent {
	t.Helper()
	addr := freeAddr(t)
	args = append([]string{"agent", "--metrics-addr", addr}, args...)
	cmd := exec.Command(agentBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	a := &runningAgent{cmd: cmd, metrics: "http://" + addr, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = a.stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := a.stop(10 * time.Second); err != nil {
			t.Errorf("agent did not stop cleanly: %v\nstderr:\n%s", err, a.stderr.String())
		}
		if t.Failed() {
			t.Logf("agent stderr:\n%s", a.stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("agent exited during start: %v\nstderr:\n%s", err, a.stderr.String())
		default:
		}
		resp, err := http.Get(a.metrics + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not healthy after 30s\nstderr:\n%s", a.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for exit status 0.
func (a *runningAgent) stop(d time.Duration) error {
	if a.cmd.ProcessState != nil {
		return nil
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(d):
		a.cmd.Process.Kill()
		return fmt.Errorf("still running %v after SIGTERM", d)
	}
}

// signal sends sig to the agent.
func (a *runningAgent) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// scrape returns the /metrics text.
func (a *runningAgent) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(a.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric returns the value of the sample whose name{labels} starts with
// prefix, or -1 when absent.
func metric(text, prefix string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, prefix) {
			var v float64
			if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// waitMetric polls /metrics until the sample starting with prefix satisfies ok.
func (a *runningAgent) waitMetric(t *testing.T, d time.Duration, prefix string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := metric(a.scrape(t), prefix)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s = %v, condition not met within %v", prefix, v, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		testutil.NeedBPF(t, "no kernel BTF")
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newCmd(bin string, args ...string) *exec.Cmd { return exec.Command(bin, args...) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the agent's stderr contains s.
func (a *runningAgent) waitLog(t *testing.T, d time.Duration, s string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(a.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("agent log lacks %q after %v", s, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
