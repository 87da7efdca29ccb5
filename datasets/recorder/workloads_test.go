package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
	if n < 16 {
		t.Errorf("%d attacks, want at least 16", n)
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

// urlRE matches the attackers' URLs on test host B in the tests' hosts.
var urlRE = regexp.MustCompile(`http://10\.251\.1\.2:(\d+)/(\S*)`)

// TestAttackDownloadsAreServed checks that every URL on test host B an
// attack (or a script in an image) fetches is answered: the payload server
// holds the file, or the attack starts a listener on that port.
func TestAttackDownloadsAreServed(t *testing.T) {
	h := hosts{A: "10.251.1.1", B: "10.251.1.2"}
	files := served("/bin/busybox")
	checked := 0
	for _, w := range workloads("/bin/busybox") {
		var texts []string
		for _, f := range w.files(h) {
			texts = append(texts, f.data)
		}
		for _, a := range w.attacks {
			cmd := strings.Join(a.argv(h), " ")
			for _, m := range urlRE.FindAllStringSubmatch(cmd, -1) {
				checked++
				port, _ := strconv.Atoi(m[1])
				if port == payloadPort {
					if _, ok := files[m[2]]; !ok {
						t.Errorf("%s fetches %q, which the payload server does not hold", a.scenario, m[0])
					}
					continue
				}
				if lp := listenPort(a.listen); lp != port {
					t.Errorf("%s sends to %q but listens on port %d", a.scenario, m[0], lp)
				}
			}
		}
		for _, text := range texts {
			for _, m := range urlRE.FindAllStringSubmatch(text, -1) {
				checked++
				if port, _ := strconv.Atoi(m[1]); port != payloadPort {
					t.Errorf("workload %s: image file fetches %q, not from the payload server", w.name, m[0])
				} else if _, ok := files[strings.TrimSuffix(m[2], "\n")]; !ok {
					t.Errorf("workload %s: image file fetches %q, which the payload server does not hold", w.name, m[0])
				}
			}
		}
	}
	if checked < 4 {
		t.Errorf("only %d URLs found in the attacks; the pattern no longer matches them", checked)
	}
}

// listenPort is the port of a listener command (-p N), 0 if none.
func listenPort(argv []string) int {
	for i, a := range argv {
		if a == "-p" && i+1 < len(argv) {
			p, _ := strconv.Atoi(argv[i+1])
			return p
		}
	}
	return 0
}

// TestListenersAvoidServicePorts checks that no attack's listener takes a
// port test host B already serves for the whole recording.
func TestListenersAvoidServicePorts(t *testing.T) {
	busy := map[int]string{payloadPort: "payload server", 6379: "worker cache"}
	for _, w := range workloads("/bin/busybox") {
		for _, a := range w.attacks {
			if a.listen == nil {
				continue
			}
			p := listenPort(a.listen)
			if p == 0 {
				t.Errorf("%s: listener %q has no -p port", a.scenario, a.listen)
			} else if what, ok := busy[p]; ok {
				t.Errorf("%s: listener port %d is the %s's", a.scenario, p, what)
			}
		}
	}
}

// TestAttackImageFilesExist checks that the application files attacks read
// (below /srv, /var/www, /data) are part of the workload's image.
func TestAttackImageFilesExist(t *testing.T) {
	h := hosts{A: "10.251.1.1", B: "10.251.1.2"}
	pathRE := regexp.MustCompile(`/(?:srv|var/www|data)/[^\s;'|>]+`)
	n := 0
	for _, w := range workloads("/bin/busybox") {
		files := w.files(h)
		for _, a := range w.attacks {
			for _, p := range pathRE.FindAllString(strings.Join(a.argv(h), " "), -1) {
				rel := strings.TrimPrefix(p, "/")
				if _, ok := files[rel]; ok {
					n++
					continue
				}
				// A directory of the image is fine too.
				dir := false
				for f := range files {
					if strings.HasPrefix(f, rel+"/") {
						dir = true
					}
				}
				if !dir {
					t.Errorf("%s reads %s, which is not in the %s image", a.scenario, p, w.name)
				}
				n++
			}
		}
	}
	if n == 0 {
		t.Error("no application paths found in the attacks; the pattern no longer matches them")
	}
}

func TestSelected(t *testing.T) {
	tests := []struct {
		only, scenario string
		want           bool
	}{
		{"", "web-benign", true},
		{"web", "web-benign", true},
		{"web", "batch-benign", false},
		{"cron,lateral", "batch-lateral-movement", true},
		{"cron, lateral", "web-cron-persistence", true},
		{"cron,lateral", "worker-discovery", false},
		{",", "worker-discovery", false},
	}
	for _, tt := range tests {
		if got := selected(tt.only, tt.scenario); got != tt.want {
			t.Errorf("selected(%q, %q) = %v, want %v", tt.only, tt.scenario, got, tt.want)
		}
	}
}
