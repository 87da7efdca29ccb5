package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkloadsCoverIssue(t *testing.T) {
	wls := workloads("/bin/busybox")
	if len(wls) < 3 {
		t.Fatalf("%d workloads, want at least 3", len(wls))
	}
	seen := map[string]bool{}
	n := 0
	h := hosts{A: "10.251.1.1", B: "10.251.1.2"}
	for _, w := range wls {
		if len(w.args(h)) == 0 {
			t.Errorf("workload %s has no entrypoint", w.name)
		}
		for _, a := range w.attacks {
			n++
			if !strings.HasPrefix(a.scenario, w.name+"-") {
				t.Errorf("scenario %q does not start with its workload %q", a.scenario, w.name)
			}
			if seen[a.scenario] {
				t.Errorf("scenario %q twice", a.scenario)
			}
			seen[a.scenario] = true
			if a.name == "" || len(a.argv(h)) == 0 {
				t.Errorf("scenario %q: empty name or argv", a.scenario)
			}
		}
	}
	if n < 12 {
		t.Errorf("%d attacks, want at least 12", n)
	}
}

func TestBuildRootfsModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown in the rootfs needs root")
	}
	var batch workload
	for _, w := range workloads("/bin/busybox") {
		if w.name == "batch" {
			batch = w
		}
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := buildRootfs(dir, batch, hosts{A: "10.251.1.1", B: "10.251.1.2"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "usr/local/bin/backup-helper"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("backup-helper mode %v, want setuid 0755", fi.Mode())
	}
	script, err := os.ReadFile(filepath.Join(dir, "usr/bin/apt-get"))
	if err != nil || !strings.Contains(string(script), "http://10.251.1.2:8000/payload") {
		t.Errorf("apt-get script %q (%v) does not fetch from test host B", script, err)
	}
}

func TestAttemptName(t *testing.T) {
	tests := []struct {
		name string
		try  int
		want string
	}{
		{"web/reverse-shell.dwt", 0, "web/reverse-shell.try0.dwt"},
		{"web/reverse-shell.labels.json", 2, "web/reverse-shell.try2.labels.json"},
		{"web/reverse-shell.try2.labels.json", -1, "web/reverse-shell.labels.json"},
		{"web/reverse-shell.try1.dwt", -1, "web/reverse-shell.dwt"},
		{"web/benign.dwt", -1, "web/benign.dwt"},
	}
	for _, tt := range tests {
		if got := attemptName(tt.name, tt.try); got != tt.want {
			t.Errorf("attemptName(%q, %d) = %q, want %q", tt.name, tt.try, got, tt.want)
		}
	}
}

func TestLostOf(t *testing.T) {
	tests := []struct {
		summary string
		want    uint64
	}{
		{"recorded 100 events to x in 1s; lost 0 (exec=0 fork=0)", 0},
		{"recorded 100 events to x in 1s; lost 1474055 (exec=0 file=1474055)", 1474055},
		{"", 1<<63 - 1},
		{"recorded 5 events; lost many", 1<<63 - 1},
	}
	for _, tt := range tests {
		if got := lostOf(tt.summary); got != tt.want {
			t.Errorf("lostOf(%q) = %d, want %d", tt.summary, got, tt.want)
		}
	}
}
