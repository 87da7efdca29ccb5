package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentHardened: after start the agent runs with only the
// capabilities it keeps, no_new_privs and a seccomp filter; an exec from
// its process fails; and under the filter it still does its whole job:
// events become alerts on a file and an HTTP output, /metrics answers,
// SIGHUP reloads rules and modes, SIGUSR1 reopens the file, a deleted
// alert file is recreated and counted, SIGTERM exits 0.
func TestAgentHardened(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	s := newSink(t)
	alerts := filepath.Join(dir, "alerts.json")
	cfg := filepath.Join(dir, "agent.yaml")
	conf := func(mode string) string {
		return fmt.Sprintf(`db: %s
outputs: ["file:%s", "http:%s/"]
loss_alert_interval: 1s
modes: {default: %q, host: learn}
cri: {endpoint: none}
kubernetes: {enabled: "false"}
`, filepath.Join(dir, "db", "profiles.db"), alerts, s.srv.URL, mode)
	}
	writeFile(t, cfg, conf("learn"))
	a := startAgent(t, []string{"DRIFTWATCH_SELFTEST_EXEC=/bin/true"}, "--config", cfg)
	a.waitLog(t, 10*time.Second, "self-test: exec after hardening")

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]string{}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(l, ":")
		st[k] = strings.TrimSpace(v)
	}
	t.Logf("agent /proc status: CapEff %s CapBnd %s NoNewPrivs %s Seccomp %s", st["CapEff"], st["CapBnd"], st["NoNewPrivs"], st["Seccomp"])
	// CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_PERFMON, CAP_BPF.
	const keep = 1<<2 | 1<<19 | 1<<38 | 1<<39
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		v, err := strconv.ParseUint(st[k], 16, 64)
		if err != nil || v&^keep != 0 || v == 0 {
			t.Errorf("%s = %s, want a non-empty subset of %016x", k, st[k], uint64(keep))
		}
	}
	if st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
		t.Errorf("NoNewPrivs %s Seccomp %s, want 1 and 2", st["NoNewPrivs"], st["Seccomp"])
	}
	if log := a.stderr.String(); !strings.Contains(log, `program=/bin/true err="fork/exec /bin/true: operation not permitted"`) {
		t.Errorf("exec from the hardened agent did not fail with EPERM:\n%s", log)
	}

	// Events → alerts on both outputs.
	read := func() {
		if err := exec.Command("cat", "/etc/shadow").Run(); err != nil {
			t.Fatal(err)
		}
	}
	read()
	s.wait(t, 20*time.Second, "for reading /etc/shadow", func(r received) bool { return r.field("fd.name") == "/etc/shadow" })
	waitFileHas(t, alerts, "/etc/shadow")
	if m := a.scrape(t); metric(m, "driftwatch_events_total") < 0 || !strings.Contains(m, "driftwatch_alerts_total") {
		t.Errorf("metrics under the filter:\n%s", m)
	}

	// SIGHUP: rules and modes reloaded.
	writeFile(t, cfg, conf("detect"))
	a.signal(t, syscall.SIGHUP)
	a.waitLog(t, 10*time.Second, `msg="modes reloaded" default=detect`)
	a.waitLog(t, 10*time.Second, `msg="rules reloaded"`)

	// SIGUSR1 after a rotation: a new file at the path.
	if err := os.Rename(alerts, alerts+".1"); err != nil {
		t.Fatal(err)
	}
	a.signal(t, syscall.SIGUSR1)
	a.waitLog(t, 10*time.Second, "reopening file outputs")
	time.Sleep(200 * time.Millisecond)
	since := time.Now()
	read()
	s.wait(t, 20*time.Second, "after the rotation", func(r received) bool { return r.field("fd.name") == "/etc/shadow" && r.At.After(since) })
	waitFileHas(t, alerts, "/etc/shadow")

	// The file deleted: recreated, counted, alerted.
	if err := os.Remove(alerts); err != nil {
		t.Fatal(err)
	}
	read()
	s.wait(t, 20*time.Second, "about the deleted output file", func(r received) bool { return r.rule() == "Driftwatch internal: output write failed" })
	waitFileHas(t, alerts, "/etc/shadow")
	a.waitMetric(t, 10*time.Second, "driftwatch_output_errors_total{output=\"file:"+alerts+"\"}", func(v float64) bool { return v >= 1 })
	if err := a.stop(15 * time.Second); err != nil {
		t.Fatalf("SIGTERM under the filter: %v\n%s", err, a.stderr.String())
	}
	a.waitLog(t, time.Second, "profiles checkpointed")
	// Nothing the running agent does at shutdown (checkpoint, suppression
	// counts) may be refused by its own filter.
	if log := a.stderr.String(); strings.Contains(log, "not saved") {
		t.Errorf("state not saved under the filter:\n%s", log)
	}
}

func waitFileHas(t *testing.T, path, s string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), s) {
			return
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%s lacks %q:\n%s", path, s, b)
}

// TestAgentPreflight: an agent that cannot run fails with exit 2 before
// any side effect — no metrics port served, no store, directory or alert
// file created — both without privileges and with a symbolic link planted
// at an output or the store.
func TestAgentPreflight(t *testing.T) {
	needRoot(t)
	// A directory (and a copy of the binary) the unprivileged user reaches.
	dir, err := os.MkdirTemp("", "driftwatch-preflight-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(agentBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "driftwatch")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	writeFile(t, target, "")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, db, out, want string
		unprivileged        bool
	}{
		{"unprivileged", filepath.Join(dir, "u", "db", "p.db"), filepath.Join(dir, "u-alerts.json"), "not permitted to load BPF programs", true},
		{"link at the output", filepath.Join(dir, "o", "db", "p.db"), link, "is a symbolic link", false},
		{"link at the store", link, filepath.Join(dir, "s-alerts.json"), "is a symbolic link", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			cmd := exec.Command(bin, "agent", "--metrics-addr", addr, "--db", tc.db, "--output", "file:"+tc.out, "--cri-endpoint", "none")
			if tc.unprivileged {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, want 2 and %q:\n%s", err, tc.want, out)
			}
			if strings.Contains(string(out), "serving metrics") {
				t.Errorf("metrics served before failing:\n%s", out)
			}
			for _, p := range []string{filepath.Dir(tc.db), tc.out} {
				if p == link || p == dir || p == filepath.Dir(link) {
					continue
				}
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s created before failing", p)
				}
			}
			if b, _ := os.ReadFile(target); len(b) != 0 {
				t.Errorf("written through the link: %q", b)
			}
		})
	}
}
