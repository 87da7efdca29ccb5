package rules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

const ruleA = "- rule: A\n  desc: d\n  condition: evt.type = openat and proc.name = cat\n  output: a\n  priority: info\n"
const ruleB = "- rule: B\n  desc: d\n  condition: evt.type = openat and proc.name = cat\n  output: b\n  priority: info\n"

func TestEngineReloadKeepsSetOnError(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(f, []byte(ruleA), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine([]string{dir}, Options{Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	match := func() string {
		var names []string
		eng.Eval(catOpen("/x"), func(a *event.Alert) { names = append(names, a.Rule) })
		return strings.Join(names, ",")
	}
	if m := match(); m != "A" {
		t.Fatalf("initial match %q", m)
	}
	os.WriteFile(f, []byte(ruleB), 0o644)
	if err := eng.Reload(); err != nil || match() != "B" {
		t.Fatalf("reload: %v, match %q", err, match())
	}
	os.WriteFile(f, []byte("- rule: B\n  desc: d\n  condition: evt.type = openat and nosuch.field = 1\n  output: b\n  priority: info\n"), 0o644)
	err = eng.Reload()
	var le *LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "r.yaml:3:") {
		t.Fatalf("bad reload error %v", err)
	}
	if m := match(); m != "B" {
		t.Errorf("after failed reload match %q, want the old set (B)", m)
	}
}

func TestEngineWatchAndAtomicSwap(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "r.yaml")
	os.WriteFile(f, []byte(ruleA), 0o644)
	eng, err := NewEngine([]string{f}, Options{Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloaded := make(chan *Report, 4)
	errs := make(chan error, 4)
	go eng.Watch(ctx, func(err error) { errs <- err }, func(r *Report) { reloaded <- r })
	// Concurrent evaluation must always see one whole set: A or B, never both or none.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	bad := make(chan string, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var names []string
			eng.Eval(catOpen("/x"), func(a *event.Alert) { names = append(names, a.Rule) })
			if len(names) != 1 {
				select {
				case bad <- strings.Join(names, ","):
				default:
				}
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the watcher start
	tmp := filepath.Join(dir, ".r.yaml.tmp")
	os.WriteFile(tmp, []byte(ruleB), 0o644)
	os.Rename(tmp, f) // editors replace files by renaming
	select {
	case <-reloaded:
	case err := <-errs:
		t.Fatalf("reload error: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no reload after the file changed")
	}
	close(stop)
	wg.Wait()
	select {
	case m := <-bad:
		t.Errorf("an event saw a half-swapped set: %q", m)
	default:
	}
	if got := eng.Ruleset().Match(catOpen("/x")); len(got) != 1 || got[0] != "B" {
		t.Errorf("after watch reload: %v", got)
	}
}

func TestFileResolver(t *testing.T) {
	proc := t.TempDir()
	host := t.TempDir()
	croot := filepath.Join(proc, "77", "root", "etc")
	os.MkdirAll(croot, 0o755)
	os.MkdirAll(filepath.Join(host, "etc"), 0o755)
	os.WriteFile(filepath.Join(croot, "passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1001:1001::/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(croot, "group"), []byte("root:x:0:\napp:x:1001:\n"), 0o644)
	os.WriteFile(filepath.Join(host, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n"), 0o644)
	r := NewFileResolver(proc, host)
	k := ctr()
	if n, ok := r.UserName(k, 77, 1001); !ok || n != "app" {
		t.Errorf("container user %q %v, want app from the container's passwd", n, ok)
	}
	if n, ok := r.GroupName(k, 77, 1001); !ok || n != "app" {
		t.Errorf("container group %q %v", n, ok)
	}
	if n, ok := r.UserName(hostC, 1, 1001); !ok || n != "alice" {
		t.Errorf("host user %q %v, want alice", n, ok)
	}
	if _, ok := r.UserName(k, 77, 4242); ok {
		t.Error("unknown uid resolved")
	}
	// A vanished process falls back to the host's files.
	k2 := ctr()
	k2.ID = "feedfacecafe"
	if n, ok := r.UserName(k2, 999, 1001); !ok || n != "alice" {
		t.Errorf("fallback %q %v", n, ok)
	}
}
