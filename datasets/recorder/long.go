package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// settle is how long the workloads run before the first test capture when
// no training capture precedes it (-keep-train).
const settle = 30 * time.Second

// longBenignName is the file stem of a workload's long benign test trace.
const longBenignName = "benign-long"

// longBenignScenarios are the <workload>-benign-long scenarios: benign test
// traces from the long capture, scored against the workload's training
// trace.
func longBenignScenarios(runs []*running) []labels.Scenario {
	var out []labels.Scenario
	for _, r := range runs {
		out = append(out, labels.Scenario{
			Name: r.w.name + "-" + longBenignName, Workload: r.w.name, Kind: labels.KindBenign,
			Train:  []string{filepath.Join(r.w.name, "train.dwt")},
			Test:   filepath.Join(r.w.name, longBenignName+".dwt"),
			Labels: filepath.Join(r.w.name, longBenignName+".labels.json"),
			Split:  r.w.split,
		})
	}
	return out
}

// recordLongBenign makes one capture of cfg.longBenign while every
// workload runs with its usual load and no attack, cuts it into one trace
// per workload and writes each an empty labels sidecar. Every containers-v2
// container is restarted once during it and clients from a new address
// join half-way. It is not retried
// on losses (it is long); they are reported in recording.json.
func recordLongBenign(ctx context.Context, s *testinfra.Scope, log *slog.Logger, cfg config, bin, work string, runs []*running, b *testinfra.Netns, h hosts) []traceStat {
	raw := filepath.Join(work, "benign-long.raw.dwt")
	defer os.Remove(raw)
	rec, err := startRecording(ctx, bin, raw)
	if err != nil {
		s.Fatalf("%v", err)
	}
	started := time.Now()
	log.Info("long benign capture", "duration", cfg.longBenign)
	// The life events only the test time has: each container restarted
	// at another time than in training, and clients from a new address.
	evs := append(restartEvents(s, log, runs, cfg.longBenign, true), newClientEvent(s, log, b, h, runs, cfg.longBenign)...)
	sleepWith(ctx, s, log, cfg.longBenign, evs)
	summary, err := rec.stop()
	if err != nil {
		s.Fatalf("%v", err)
	}
	for _, sc := range longBenignScenarios(runs) {
		lab := labels.Labels{Version: labels.Version, Trace: filepath.Base(sc.Test), Attacks: []labels.Attack{}}
		if err := lab.Validate(); err != nil {
			s.Fatalf("labels of %s: %v", sc.Name, err)
		}
		if err := os.MkdirAll(filepath.Join(cfg.out, filepath.Dir(sc.Labels)), 0o755); err != nil {
			s.Fatalf("%v", err)
		}
		if err := lab.Write(filepath.Join(cfg.out, sc.Labels)); err != nil {
			s.Fatalf("%v", err)
		}
	}
	return recordSplit(s, log, cfg.out, raw, runs, longBenignName+".dwt", summary, started)
}

// recordSplit cuts the system-wide capture raw into <workload>/<name> for
// every running workload and returns their recording.json lines.
func recordSplit(s *testinfra.Scope, log *slog.Logger, out, raw string, runs []*running, name, summary string, started time.Time) []traceStat {
	var files []string
	var keeps []map[uint64]event.ContainerInfo
	for _, r := range runs {
		files = append(files, filepath.Join(out, r.w.name, name))
		keeps = append(keeps, r.keep)
	}
	st, err := splitTrace(raw, files, keeps)
	if err != nil {
		s.Fatalf("%v", err)
	}
	var stats []traceStat
	for i, r := range runs {
		rel := filepath.Join(r.w.name, name)
		log.Info("wrote", "trace", rel, "events", st[i].Kept, "recorder", summary)
		stats = append(stats, traceStat{Trace: rel, Kept: st[i].Kept, Read: st[i].Read, Summary: summary, Seconds: int64(time.Since(started).Seconds())})
	}
	return stats
}

// mergeScenarios replaces the scenarios of old that have a namesake in
// recorded and appends the others, keeping old's order.
func mergeScenarios(old, recorded []labels.Scenario) []labels.Scenario {
	out := append([]labels.Scenario(nil), old...)
	index := map[string]int{}
	for i, sc := range out {
		index[sc.Name] = i
	}
	for _, sc := range recorded {
		if i, ok := index[sc.Name]; ok {
			out[i] = sc
			continue
		}
		index[sc.Name] = len(out)
		out = append(out, sc)
	}
	return out
}

// mergeStats is mergeScenarios for recording.json lines, keyed by trace.
func mergeStats(old, recorded []traceStat) []traceStat {
	out := append([]traceStat(nil), old...)
	index := map[string]int{}
	for i, st := range out {
		index[st.Trace] = i
	}
	for _, st := range recorded {
		if i, ok := index[st.Trace]; ok {
			out[i] = st
			continue
		}
		index[st.Trace] = len(out)
		out = append(out, st)
	}
	return out
}

// checkSubnet accepts "" or three octets of a private 10.x.y.0/24.
func checkSubnet(subnet string) error {
	if subnet == "" {
		return nil
	}
	parts := strings.Split(subnet, ".")
	if len(parts) != 3 || parts[0] != "10" {
		return fmt.Errorf("%q: want three octets of a 10.0.0.0/8 /24, e.g. 10.251.91", subnet)
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != p {
			return fmt.Errorf("%q: octet %q is not a number 0-255", subnet, p)
		}
	}
	return nil
}

// addAddress gives the test host n the extra address ip/24 on its veth
// link (the only link besides lo), so the hosts can use the subnet of an
// earlier recording.
func addAddress(s *testinfra.Scope, n *testinfra.Netns, ip string) {
	out, err := n.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		s.Fatalf("list links of %s: %v", n.Name(), err)
	}
	dev, err := vethName(string(out))
	if err != nil {
		s.Fatalf("netns %s: %v", n.Name(), err)
	}
	if out, err := n.Command("ip", "addr", "add", ip+"/24", "dev", dev).CombinedOutput(); err != nil {
		s.Fatalf("netns %s: add %s to %s: %v: %s", n.Name(), ip, dev, err, out)
	}
}

// vethName reads the one link name from `ip -o link show type veth`
// ("2: dwabc123a@if3: <...>").
func vethName(out string) (string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || lines[0] == "" {
		return "", fmt.Errorf("want one veth link, got %q", out)
	}
	f := strings.Fields(lines[0])
	if len(f) < 2 {
		return "", fmt.Errorf("unreadable link line %q", lines[0])
	}
	name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
	if name == "" {
		return "", fmt.Errorf("unreadable link line %q", lines[0])
	}
	return name, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// traceImageDigests returns the image digests of the containers a trace
// describes (snapshot and container records).
func traceImageDigests(path string) (map[string]bool, error) {
	r, err := trace.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	digests := map[string]bool{}
	for _, c := range r.Snapshot().Containers {
		digests[c.ImageDigest] = true
	}
	r.SetUpdateHandlers(nil, func(info event.ContainerInfo) { digests[info.ImageDigest] = true })
	var ev event.Event
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			return digests, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
}

// checkSameImage fails unless the workload's image digest is the one its
// training trace in the suite recorded: the profile is keyed by it, so a
// different image would be scored against no profile.
func checkSameImage(out string, r *running) error {
	train := filepath.Join(out, r.w.name, "train.dwt")
	digests, err := traceImageDigests(train)
	if err != nil {
		return fmt.Errorf("workload %s: %w", r.w.name, err)
	}
	if !digests[r.info.ImageDigest] {
		return fmt.Errorf("workload %s: image %s is not the image of %s (%v); was -subnet the one of its recording?", r.w.name, r.info.ImageDigest, train, digests)
	}
	return nil
}
