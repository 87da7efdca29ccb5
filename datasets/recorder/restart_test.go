package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testinfra"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

func TestSiblingIP(t *testing.T) {
	for _, tc := range []struct{ ip, last, want string }{
		{"10.251.9.2", "7", "10.251.9.7"},
		{"10.0.0.1", "200", "10.0.0.200"},
	} {
		if got := siblingIP(tc.ip, tc.last); got != tc.want {
			t.Errorf("siblingIP(%q, %q) = %q, want %q", tc.ip, tc.last, got, tc.want)
		}
	}
}

// Every v2 workload is restarted once per capture, at other times in the
// long benign capture than in training; the v1 loops never.
func TestRestartEventsDifferBetweenTrainingAndTest(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var runs []*running
	for _, w := range workloadsV2("/bin/true") {
		runs = append(runs, &running{w: w})
	}
	for _, w := range workloads("/bin/true") {
		runs = append(runs, &running{w: w})
	}
	d := 30 * time.Minute
	train := restartEvents(t, log, runs, d, false)
	long := restartEvents(t, log, runs, d, true)
	if len(train) != 5 || len(long) != 5 {
		t.Fatalf("%d training and %d long restarts, want one per v2 workload (5)", len(train), len(long))
	}
	at := map[string]time.Duration{}
	for _, ev := range train {
		if ev.at <= 0 || ev.at >= d {
			t.Errorf("%s at %v, outside the capture", ev.what, ev.at)
		}
		at[ev.what] = ev.at
	}
	for _, ev := range long {
		if ev.at <= 0 || ev.at >= d {
			t.Errorf("%s at %v, outside the capture", ev.what, ev.at)
		}
		if at[ev.what] == ev.at {
			t.Errorf("%s at %v in training and in the long capture", ev.what, ev.at)
		}
	}
	if n := len(newClientEvent(nil, log, nil, hosts{A: "10.0.0.1", B: "10.0.0.2"}, runs, d)); n != 1 {
		t.Errorf("%d new-client events, want 1", n)
	}
	clients := 0
	for _, w := range workloadsV2("/bin/true") {
		if w.newClient {
			clients++
		}
	}
	if clients < 3 {
		t.Errorf("%d workloads get a client from a new address, want most", clients)
	}
}

func TestSleepWithRunsEventsInOrder(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := testinfra.NewScope(log)
	defer s.Close()
	var got []string
	start := time.Now()
	evs := []timedEvent{
		{at: 60 * time.Millisecond, what: "b", run: func() { got = append(got, "b") }},
		{at: 20 * time.Millisecond, what: "a", run: func() { got = append(got, "a") }},
		{at: time.Hour, what: "late", run: func() { got = append(got, "late") }},
	}
	sleepWith(t.Context(), s, log, 100*time.Millisecond, evs)
	if strings.Join(got, ",") != "a,b" {
		t.Errorf("ran %v, want a,b (the event after the end skipped)", got)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("returned after %v, before the capture's end", el)
	}
}

// A restart stops the container (its stop signal; SIGKILL for a crash)
// and starts a new one in the same pod from the same root filesystem: a
// new id and cgroup, kept by the trace filter with the same image.
func TestRestartNewContainerSamePod(t *testing.T) {
	testutil.NeedRoot(t)
	testinfra.NeedTool(t, "runc")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rootfs := testinfra.BusyboxRootfs(t)
	opts := testinfra.RuncOptions{Rootfs: rootfs, Writable: true,
		Args: []string{"sh", "-c", `trap "exit 0" TERM; echo start >> /starts; while :; do sleep 0.2; done`}}
	c := testinfra.NewRuncContainer(t, opts)
	opts.PodUID = c.PodUID()
	r := &running{w: workload{name: "svc"}, opts: opts, image: "driftwatch.test/svc:1", digest: "sha256:abc", keep: map[uint64]event.ContainerInfo{}}
	r.adopt(c)
	first := r.container()

	waitStarts(t, rootfs, 1)
	stopped := r.restart(t, log, false)
	if stopped >= restartGrace {
		t.Errorf("graceful stop took %v: SIGTERM not delivered (grace %v)", stopped, restartGrace)
	}
	second := r.container()
	if err := syscall.Kill(first.Pid(), 0); err == nil && !waitExited(first.Pid(), 0) {
		t.Errorf("old container's pid %d still runs", first.Pid())
	}
	waitStarts(t, rootfs, 2)
	r.restart(t, log, true)
	third := r.container()

	ids := map[string]bool{first.ID(): true, second.ID(): true, third.ID(): true}
	if len(ids) != 3 {
		t.Errorf("container ids not new: %s %s %s", first.ID(), second.ID(), third.ID())
	}
	if len(r.keep) != 3 {
		t.Errorf("keep has %d cgroups, want 3", len(r.keep))
	}
	for _, c := range []*testinfra.Container{first, second, third} {
		info, ok := r.keep[c.CgroupID()]
		if !ok {
			t.Errorf("cgroup %d of %s not kept", c.CgroupID(), c.ID()[:12])
			continue
		}
		if info.ID != c.ID() || info.PodUID != first.PodUID() || info.ImageDigest != "sha256:abc" || info.Image != "driftwatch.test/svc:1" {
			t.Errorf("kept info %+v for container %s", info, c.ID()[:12])
		}
	}
	if third.PodUID() != first.PodUID() || r.info.ID != third.ID() || r.restarts != 2 {
		t.Errorf("pod %s vs %s, current %s, restarts %d", third.PodUID(), first.PodUID(), r.info.ID, r.restarts)
	}
	// The same root filesystem: each start appended to the same file.
	if n := waitStarts(t, rootfs, 3); n != 3 {
		t.Errorf("%d starts in the shared root filesystem, want 3", n)
	}
}

// waitStarts waits until the test container's shells have written want
// lines to the root filesystem's /starts (its trap is set by then), at
// most 10 s, and returns how many there are.
func waitStarts(t *testing.T, rootfs string, want int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		data, err := os.ReadFile(rootfs + "/starts")
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), "start"); n >= want || time.Now().After(deadline) {
			return n
		}
	}
}
