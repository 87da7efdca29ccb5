package output

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/safefile"
)

func sample() *event.Alert {
	return &event.Alert{
		Time:     time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.FixedZone("X", 3600)),
		Rule:     "Read sensitive file untrusted",
		Priority: event.PriorityWarning,
		Source:   "syscall",
		Tags:     []string{"filesystem", "T1555", "container"},
		Hostname: "node1",
		Output:   "Sensitive file opened for reading (file=/etc/shadow container_id=abc)",
		OutputFields: map[string]any{
			"fd.name": "/etc/shadow", "container.id": "abc", "proc.pid": 42, "container.image.repository": nil,
		},
	}
}

// falcoShape checks what falcosidekick requires of a posted alert.
func falcoShape(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	if r, _ := m["rule"].(string); r == "" {
		t.Errorf("empty rule in %s", b)
	}
	if _, err := event.ParsePriority(m["priority"].(string)); err != nil {
		t.Errorf("priority: %v", err)
	}
	ts, _ := m["time"].(string)
	if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || tm.IsZero() {
		t.Errorf("time %q is not RFC 3339 UTC: %v", ts, err)
	}
	if _, ok := m["output_fields"].(map[string]any); !ok {
		t.Errorf("output_fields is not an object: %s", b)
	}
	return m
}

func TestMarshalFalcoShape(t *testing.T) {
	b, err := event.AppendAlertJSON(nil, sample())
	if err != nil {
		t.Fatal(err)
	}
	m := falcoShape(t, b)
	if m["time"] != "2026-11-27T09:00:00.123456789Z" {
		t.Errorf("time = %v", m["time"])
	}
	if m["priority"] != "Warning" || m["source"] != "syscall" || m["hostname"] != "node1" {
		t.Errorf("fields: %s", b)
	}
	tags := m["tags"].([]any)
	if len(tags) != 3 || tags[0] != "T1555" || tags[1] != "container" || tags[2] != "filesystem" {
		t.Errorf("tags not sorted: %v", tags)
	}
	of := m["output_fields"].(map[string]any)
	if of["proc.pid"] != float64(42) || of["container.image.repository"] != nil {
		t.Errorf("output_fields = %v", of)
	}
	for _, k := range []string{"Namespace", "ContainerID", "Score"} {
		if _, ok := m[k]; ok {
			t.Errorf("internal field %s serialised", k)
		}
	}
	// Nil tags and fields still give the shape.
	b, _ = event.AppendAlertJSON(nil, &event.Alert{Time: time.Unix(0, 0), Rule: "r", Priority: event.PriorityNotice})
	m = falcoShape(t, b)
	if string(mustJSON(m["tags"])) != "[]" {
		t.Errorf("nil tags = %v", m["tags"])
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestFormatText(t *testing.T) {
	cases := []struct {
		out, want string
	}{
		{"Sensitive file opened (file=/etc/shadow)", "2026-11-27T09:00:00.123456789+0000: Warning Sensitive file opened (file=/etc/shadow)"},
		{"evil\nfake line", "2026-11-27T09:00:00.123456789+0000: Warning evil\\nfake line"},
	}
	for _, tc := range cases {
		a := sample()
		a.Output = tc.out
		if got := event.AlertText(a); got != tc.want {
			t.Errorf("AlertText = %q, want %q", got, tc.want)
		}
	}
}

func TestStdoutOutputs(t *testing.T) {
	var buf bytes.Buffer
	m, err := New([]string{"stdout", "stdout:json"}, Options{Stdout: &syncWriter{w: &buf}})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	m.Emit(sample())
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	var text, js int
	for _, l := range lines {
		if strings.HasPrefix(l, "{") {
			falcoShape(t, []byte(l))
			js++
		} else if strings.HasPrefix(l, "2026-11-27T09:00:00.123456789+0000: Warning ") {
			text++
		}
	}
	if text != 1 || js != 1 {
		t.Errorf("text=%d json=%d in %q", text, js, lines)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestHTTPOutputPostsFalcoJSON(t *testing.T) {
	got := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s", r.Method, r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer srv.Close()
	m, err := New([]string{"http:" + srv.URL + "/"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	m.Emit(sample())
	select {
	case b := <-got:
		falcoShape(t, b)
	case <-time.After(5 * time.Second):
		t.Fatal("no POST arrived")
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDeadEndpointDropsWithoutBlocking(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // a hung endpoint
	}))
	defer srv.Close()
	defer close(release)
	var buf bytes.Buffer
	sw := &syncWriter{w: &buf}
	var mu sync.Mutex
	drops := map[string]int{}
	m, err := New([]string{"http:" + srv.URL, "stdout:json"}, Options{
		QueueLen: 4, HTTPTimeout: 200 * time.Millisecond, Hostname: "n",
		Stdout: sw,
		OnDrop: func(o string) { mu.Lock(); drops[o]++; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	start := time.Now()
	for i := 0; i < 100; i++ {
		m.Emit(sample())
		time.Sleep(time.Millisecond) // lets the stdout output keep up; the HTTP one cannot
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Emit blocked for %v on a dead endpoint", el)
	}
	d := m.Dropped()["http:"+srv.URL]
	if d < 90 {
		t.Errorf("dropped %d of 100 with a queue of 4, want >= 90", d)
	}
	mu.Lock()
	if drops["http:"+srv.URL] < int(d) {
		t.Errorf("OnDrop saw %d drops, Dropped() says %d", drops["http:"+srv.URL], d)
	}
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = m.Close(ctx)
	if err == nil {
		t.Log("close drained before the deadline")
	}
	// The stdout output got the internal overflow alert.
	sw.mu.Lock()
	out := buf.String()
	sw.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(out))
	found := false
	for sc.Scan() {
		var a map[string]any
		json.Unmarshal(sc.Bytes(), &a)
		if a["rule"] == "Driftwatch internal: output queue overflow" {
			found = true
			if a["source"] != "internal" || a["priority"] != "Critical" {
				t.Errorf("overflow alert shape: %s", sc.Text())
			}
		}
	}
	if !found {
		t.Errorf("no internal overflow alert on stdout:json; got %q", out)
	}
}

func TestCloseHonoursDeadline(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	m := NewWithSinks(map[string]Sink{"slow": blockingSink{block}}, Options{QueueLen: 8})
	m.Start()
	for i := 0; i < 5; i++ {
		m.Emit(sample())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "not delivered") {
		t.Errorf("Close = %v, want a deadline error", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %v past a 100ms deadline", el)
	}
	m.Emit(sample()) // after Close: ignored, no panic
}

type blockingSink struct{ c chan struct{} }

func (b blockingSink) Write(ctx context.Context, a *event.Alert) error { <-b.c; return nil }
func (b blockingSink) Close() error                                    { return nil }

func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "alerts.json")
	m, err := New([]string{"file:" + p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	a := sample()
	m.Emit(a)
	waitLines(t, p, 1)
	rotated := p + ".1"
	if err := os.Rename(p, rotated); err != nil {
		t.Fatal(err)
	}
	m.Reopen()
	b := sample()
	b.Rule = "after rotation"
	m.Emit(b)
	waitLines(t, p, 1)
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(rotated)
	cur, _ := os.ReadFile(p)
	if !strings.Contains(string(old), "Read sensitive file") || strings.Contains(string(old), "after rotation") {
		t.Errorf("rotated file: %s", old)
	}
	if !strings.Contains(string(cur), "after rotation") {
		t.Errorf("new file: %s", cur)
	}
	falcoShape(t, bytes.TrimSpace(cur))
}

func waitLines(t *testing.T, p string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p)
		if bytes.Count(b, []byte("\n")) >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never had %d lines", p, n)
}

func TestBadSpecs(t *testing.T) {
	for _, s := range []string{"kafka:x", "http:ftp://x", "file:/nonexistent-dir/x/y"} {
		if _, err := New([]string{s}, Options{}); err == nil {
			t.Errorf("New(%q) succeeded", s)
		}
	}
}

func BenchmarkEmitJSON(b *testing.B) {
	m := NewWithSinks(map[string]Sink{"json": &jsonSink{w: io.Discard}}, Options{QueueLen: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	m.Start()
	a := sample()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Emit(a)
	}
	m.Close(context.Background())
}

func TestFileOutputRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	realDir := filepath.Join(dir, "real")
	if err := os.Mkdir(realDir, 0o700); err != nil {
		t.Fatal(err)
	}
	linkFile := filepath.Join(dir, "alerts.json")
	linkDir := filepath.Join(dir, "linkdir")
	if err := os.Symlink(target, linkFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(realDir, linkDir); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		want       error
	}{
		{"link at the file", linkFile, safefile.ErrSymlink},
		{"link at the directory", filepath.Join(linkDir, "alerts.json"), safefile.ErrSymlink},
		{"fifo", fifo, safefile.ErrNotRegular},
	}
	for _, tc := range cases {
		_, err := New([]string{"file:" + tc.path}, Options{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: err = %v, want %v naming %s", tc.name, err, tc.want, tc.path)
		}
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("link target written: %q", b)
	}
	if _, err := os.Stat(filepath.Join(realDir, "alerts.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file created through the directory link: %v", err)
	}
	// A plain path works and is created 0640.
	p := filepath.Join(dir, "ok.json")
	m, err := New([]string{"file:" + p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&^0o640 != 0 {
		t.Errorf("created %v, %v; want at most 0640", fi.Mode(), err)
	}
}

// TestFileOutputDeleted: alerts never go silently to an unlinked file.
func TestFileOutputDeleted(t *testing.T) {
	cases := []struct {
		name        string
		remove      func(dir, p string) error
		recreateDir bool
	}{
		{"file unlinked", func(_, p string) error { return os.Remove(p) }, false},
		{"directory removed", func(dir, _ string) error { return os.RemoveAll(dir) }, false},
		{"directory removed and recreated", func(dir, _ string) error { return os.RemoveAll(dir) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "alerts.json")
			other := &memSink{}
			var mu sync.Mutex
			errs := 0
			m, err := New([]string{"file:" + p}, Options{OnError: func(string, error) { mu.Lock(); errs++; mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			m.outs = append(m.outs, &queue{name: "mem", sink: other, ch: make(chan *event.Alert, 16)})
			m.Start()
			m.Emit(sample())
			waitLines(t, p, 1)
			if err := tc.remove(dir, p); err != nil {
				t.Fatal(err)
			}
			if tc.recreateDir {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			b := sample()
			b.Rule = "after removal"
			m.Emit(b)
			if tc.recreateDir || tc.name == "file unlinked" {
				// Recreated at its path: the alert and the internal alert land there.
				waitLines(t, p, 2)
			}
			var internal *event.Alert
			for deadline := time.Now().Add(5 * time.Second); internal == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				for _, a := range other.all() {
					if a.Rule == WriteErrorRule {
						internal = a
					}
				}
			}
			if err := m.Close(context.Background()); err != nil {
				t.Logf("close: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if errs == 0 || m.Errors()["file:"+p] == 0 {
				t.Errorf("no output error counted (OnError %d, Errors %v)", errs, m.Errors())
			}
			if internal == nil || !strings.Contains(internal.Output, p) || internal.OutputFields["output"] != "file:"+p {
				t.Fatalf("no internal alert naming the output on the other output: %+v", internal)
			}
			cur, _ := os.ReadFile(p)
			if tc.recreateDir || tc.name == "file unlinked" {
				if !strings.Contains(string(cur), "after removal") || !strings.Contains(internal.Output, "recovered") {
					t.Errorf("recreated file %q, internal %q", cur, internal.Output)
				}
			} else if !strings.Contains(internal.Output, "lost") {
				t.Errorf("internal alert does not say alerts are lost: %q", internal.Output)
			}
		})
	}
}

type memSink struct {
	mu sync.Mutex
	as []*event.Alert
}

func (s *memSink) Write(_ context.Context, a *event.Alert) error {
	s.mu.Lock()
	s.as = append(s.as, a)
	s.mu.Unlock()
	return nil
}
func (s *memSink) Close() error { return nil }
func (s *memSink) all() []*event.Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*event.Alert(nil), s.as...)
}

// TestReopenRefusesPlantedLink: a link planted at the path between two
// opens (rotation, then SIGUSR1) is refused too, counted and alerted; the
// link's target stays untouched.
func TestReopenRefusesPlantedLink(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "alerts.json")
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := &memSink{}
	m, err := New([]string{"file:" + p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.outs = append(m.outs, &queue{name: "mem", sink: other, ch: make(chan *event.Alert, 16)})
	m.Start()
	defer m.Close(context.Background())
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	m.Reopen()
	m.Emit(sample())
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var internal *event.Alert
		for _, a := range other.all() {
			if a.Rule == WriteErrorRule {
				internal = a
			}
		}
		if internal != nil {
			if !strings.Contains(internal.Output, "symbolic link") {
				t.Errorf("internal alert %q does not name the link", internal.Output)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no internal alert about the refused link")
		}
	}
	if m.Errors()["file:"+p] == 0 {
		t.Error("refused reopen not counted")
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("written through the planted link: %q", b)
	}
}

// Marshal writes raw bytes with JSON escaping only: one backslash stays
// one (escaped once as \\), <NA> is not HTML-escaped; FormatText escapes
// control characters.
func TestMarshalRawBytes(t *testing.T) {
	a := &event.Alert{Rule: "R", Output: "cmd=grep ^syscall\\.X$ \x1b[0m <NA>", OutputFields: map[string]any{"proc.cmdline": "grep ^syscall\\.X$"}}
	b, err := event.AppendAlertJSON(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"output":"cmd=grep ^syscall\\.X$ \u001b[0m <NA>"`)) || !bytes.Contains(b, []byte(`"proc.cmdline":"grep ^syscall\\.X$"`)) {
		t.Errorf("json %s", b)
	}
	if txt := event.AlertText(a); !strings.HasSuffix(txt, `cmd=grep ^syscall\\.X$ \x1b[0m <NA>`) {
		t.Errorf("text %q", txt)
	}
}
