package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentSurvivesDeadEndpointAndAPI: an HTTP output whose endpoint never
// answers fills its queue and drops (counted, reported by an internal
// alert on the other output) without blocking the pipeline, and an
// unreachable Kubernetes API leaves the agent running in host mode with
// driftwatch_kubernetes_connected 0. SIGTERM still exits 0 within the
// flush deadline.
func TestAgentSurvivesDeadEndpointAndAPI(t *testing.T) {
	needRoot(t)
	// A TCP endpoint that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`)
	alerts := filepath.Join(dir, "alerts.json")
	dead := "http:http://" + ln.Addr().String() + "/"
	cfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, cfg, fmt.Sprintf(`db: %s
outputs: [%q, "file:%s"]
output_queue: 2
output_timeout: 30s
flush_timeout: 1s
loss_alert_interval: 1s
modes: {default: "off"}
kubernetes: {enabled: "true", kubeconfig: %q}
cri: {endpoint: none}
`, filepath.Join(dir, "db"), dead, alerts, kubeconfig))
	a := startAgent(t, nil, "--config", cfg)

	for i := 0; i < 10; i++ {
		if out, err := exec.Command("cat", "/etc/shadow").CombinedOutput(); err != nil {
			t.Fatalf("cat: %v %s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.waitMetric(t, 10*time.Second, `driftwatch_output_dropped_total{output="`+dead+`"}`, func(v float64) bool { return v >= 1 })
	a.waitMetric(t, 10*time.Second, "driftwatch_kubernetes_connected", func(v float64) bool { return v == 0 })
	// The pipeline kept going: the file output has the host's shadow reads
	// and the overflow report.
	deadline := time.Now().Add(10 * time.Second)
	for {
		reads, overflow := countRules(t, alerts)
		if reads >= 10 && overflow >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file output has %d shadow reads and %d overflow alerts, want >= 10 and >= 1", reads, overflow)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(a.stderr.String(), "kubernetes API unreachable") {
		t.Error("no log line about the unreachable API")
	}
	if b, _ := os.ReadFile(alerts); !strings.Contains(string(b), `"rule":"Driftwatch internal: Kubernetes API unreachable"`) {
		t.Error("no internal alert about the unreachable API")
	}
	start := time.Now()
	if err := a.stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, a.stderr.String())
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("SIGTERM took %v with a hung endpoint and a 1s flush deadline", el)
	}
}

func countRules(t *testing.T, path string) (reads, overflow int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, `"rule":"`+shadowRule+`"`) && strings.Contains(l, `"proc.cmdline":"cat /etc/shadow"`) {
			reads++
		}
		if strings.Contains(l, `"rule":"Driftwatch internal: output queue overflow"`) {
			overflow++
		}
	}
	return reads, overflow
}

// TestAgentRulesReload: SIGHUP with a broken rules file keeps the running
// rules, raises a Critical internal alert and counts the failure; a good
// file then reloads.
func TestAgentRulesReload(t *testing.T) {
	needRoot(t)
	s := newSink(t)
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "site.yaml")
	writeFile(t, rulesFile, "- list: site_list\n  items: [a]\n")
	cfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, cfg, fmt.Sprintf(`db: %s
outputs: ["http:%s"]
rules: [%q]
watch_rules: false
modes: {default: "off"}
cri: {endpoint: none}
kubernetes: {enabled: "false"}
`, filepath.Join(dir, "db"), s.srv.URL, rulesFile))
	a := startAgent(t, nil, "--config", cfg)
	loaded := metric(a.scrape(t), "driftwatch_rules_loaded")
	if loaded < 1 {
		t.Fatalf("driftwatch_rules_loaded = %v", loaded)
	}
	writeFile(t, rulesFile, "- rule: broken\n  condition: evt.type = \n")
	a.signal(t, syscall.SIGHUP)
	r := s.wait(t, 5*time.Second, "rules reload failure", func(r received) bool { return r.rule() == "Rules reload failed" })
	if r.Alert["priority"] != "Critical" || r.Alert["source"] != "internal" || !strings.Contains(fmt.Sprint(r.Alert["output"]), "site.yaml") {
		t.Errorf("reload failure alert: %s", r.Raw)
	}
	a.waitMetric(t, 5*time.Second, "driftwatch_rules_reload_failures_total", func(v float64) bool { return v == 1 })
	// The old rules still run.
	exec.Command("cat", "/etc/shadow").Run()
	s.wait(t, 5*time.Second, "shadow read after the failed reload", func(r received) bool { return r.rule() == shadowRule })
	// A valid file reloads with one more rule.
	writeFile(t, rulesFile, `- rule: site marker
  desc: marker
  condition: evt.type = openat and fd.name = /nonexistent-marker
  output: marker %fd.name
  priority: NOTICE
`)
	a.signal(t, syscall.SIGHUP)
	a.waitMetric(t, 5*time.Second, "driftwatch_rules_loaded", func(v float64) bool { return v == loaded+1 })
}
