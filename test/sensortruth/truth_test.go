package sensortruth

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/bpf"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testinfra"
	"github.com/driftwatch/driftwatch/internal/testutil"
	"github.com/driftwatch/driftwatch/rules"
)

// seen is one alert with the facts of the event that raised it.
type seen struct {
	alert   *event.Alert
	rawPath string // the path string the process passed (evt.arg)
	fdName  string
	pid     uint32
}

// live runs the sensor through a pipeline with the default rules (and
// Falco's, when the reference data is present) for one container's
// events, and keeps the alerts.
type live struct {
	s      *bpf.Sensor
	mu     sync.Mutex
	alerts []seen
	done   chan struct{}
	err    error
}

type bothRules []pipeline.Rules

func (b bothRules) Eval(e *event.Enriched, emit func(*event.Alert)) {
	for _, r := range b {
		r.Eval(e, emit)
	}
}

func startLive(t *testing.T, c *testinfra.Container, image string) *live {
	t.Helper()
	def, _, err := rules.LoadDefault(rules.Options{})
	if err != nil {
		t.Fatalf("default rules: %v", err)
	}
	rs := bothRules{def}
	shared := os.Getenv("DRIFTWATCH_SHARED")
	if shared == "" {
		shared = filepath.Join(testutil.RepoRoot(t), "..", "shared")
	}
	if falco := filepath.Join(shared, "compat", "falco_rules.yaml"); fileExists(falco) {
		r, _, err := rules.Load([]string{falco}, rules.Options{UnknownFieldsAsWarnings: true})
		if err != nil {
			t.Fatalf("Falco rules: %v", err)
		}
		rs = append(rs, r)
	} else {
		t.Logf("Falco's rules not available (%s; set DRIFTWATCH_SHARED): default rules only", falco)
	}
	s, err := bpf.Open(bpf.Config{})
	if err != nil {
		var env *bpf.EnvError
		if errors.As(err, &env) {
			testutil.NeedBPF(t, err.Error())
		}
		t.Fatalf("sensor: %v", err)
	}
	res := container.NewStaticResolver(nil)
	res.AddContainer(event.ContainerInfo{ID: c.ID(), Image: image + ":test", ImageRepo: image, ImageTag: "test",
		CgroupID: c.CgroupID(), CgroupPath: c.CgroupPath(), Runtime: "runc"})
	l := &live{s: s, done: make(chan struct{})}
	var cur *event.Event // the event being handled: Emit runs inside Handle
	p := pipeline.New(pipeline.Config{
		Rules:       rs,
		Resolver:    res,
		DefaultMode: event.ModeOff,
		Emit: func(a *event.Alert) {
			sn := seen{alert: a}
			if cur != nil {
				sn.rawPath, sn.pid = string(cur.Path), cur.Pid
			}
			if v, ok := a.OutputFields["fd.name"].(string); ok {
				sn.fdName = v
			}
			l.mu.Lock()
			l.alerts = append(l.alerts, sn)
			l.mu.Unlock()
		},
	})
	go func() {
		defer close(l.done)
		var ev event.Event
		for {
			if err := s.Next(&ev); err != nil {
				if !errors.Is(err, os.ErrClosed) {
					l.err = err
				}
				return
			}
			if ev.CgroupID != c.CgroupID() {
				continue
			}
			cur = &ev
			p.Handle(&ev)
			cur = nil
		}
	}()
	t.Cleanup(func() {
		s.Close()
		<-l.done
		if l.err != nil {
			t.Errorf("sensor: %v", l.err)
		}
	})
	return l
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// wait returns the alerts once match holds for them, or fails after 15 s.
func (l *live) wait(t *testing.T, what string, match func([]seen) bool) []seen {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l.mu.Lock()
		got := append([]seen(nil), l.alerts...)
		l.mu.Unlock()
		if match(got) {
			return got
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, a := range got {
				b.WriteString("  " + a.alert.Rule + " | raw=" + a.rawPath + " | " + a.alert.Output + "\n")
			}
			t.Fatalf("timed out waiting for %s; alerts so far:\n%s", what, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settle waits until the pipeline has handled what the kernel reported so
// far (the sensor polls every 5 ms).
func (l *live) settle() { time.Sleep(300 * time.Millisecond) }

// buildEvade builds the static helper and installs it into rootfs as
// /usr/local/bin/evade, and under the names the scenarios need.
func buildEvade(t *testing.T, rootfs string, names ...string) {
	t.Helper()
	bin := filepath.Join(rootfs, "usr/local/bin/evade")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/evade")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build evade: %v\n%s", err, out)
	}
	for _, n := range names {
		if err := testinfra.CopyFile(bin, filepath.Join(rootfs, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
