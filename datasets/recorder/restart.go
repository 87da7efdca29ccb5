package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// Container restarts and other events at set points of a capture
// (containers-v2): kubelet restarts a container by stopping it (the
// image's stop signal, SIGKILL after the grace period) and creating a new
// one from the same image in the same pod, so the restarted service has a
// new container id and cgroup but the same image and profile.

// restartGrace is the stop grace period (kubelet's default is 30s).
const restartGrace = 10 * time.Second

// newClientHost is the last octet of test host B's second address, used
// only by the clients the long benign capture adds (never in training).
const newClientHost = "7"

// adopt makes c the workload's current container: its metadata (what a
// runtime or the Kubernetes API supplies) and its cgroup in keep.
func (r *running) adopt(c *testinfra.Container) {
	info := event.ContainerInfo{
		ID: c.ID(), Name: r.w.name, Image: r.image, ImageRepo: "driftwatch.test/" + r.w.name, ImageTag: "1",
		ImageDigest: r.digest, PodName: r.w.name + "-0", PodUID: c.PodUID(), Namespace: "datasets",
		Runtime: "runc", StartTime: time.Now().UnixNano(),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.c, r.info = c, info
	r.keep[c.CgroupID()] = info
}

// container is the workload's current container.
func (r *running) container() *testinfra.Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c
}

// restart stops the workload's container and starts a new one from the
// same image and root filesystem in the same pod. crash stops it with
// SIGKILL at once (an OOM kill or a failed liveness probe's kill);
// otherwise the workload's stop signal goes first and SIGKILL follows
// after restartGrace (python and node, with no handler as pid 1, wait it
// out, as under kubelet).
// It returns how long the old container took to stop.
func (r *running) restart(t testinfra.T, log *slog.Logger, crash bool) time.Duration {
	old := r.container()
	sig := r.w.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if crash {
		sig = syscall.SIGKILL
	}
	start := time.Now()
	if err := syscall.Kill(old.Pid(), sig); err != nil {
		log.Warn("restart: stop signal", "workload", r.w.name, "err", err)
	}
	if !waitExited(old.Pid(), restartGrace) {
		old.Kill(t)
	}
	stopped := time.Since(start)
	opts := r.opts
	opts.ID = "" // a new container id
	c := testinfra.NewRuncContainer(t, opts)
	r.adopt(c)
	r.restarts++
	log.Info("container restarted", "workload", r.w.name, "signal", sig.String(), "stopped_in", stopped.Round(time.Millisecond),
		"old", old.ID()[:12], "new", c.ID()[:12], "pid", c.Pid(), "restarts", r.restarts)
	return stopped
}

// waitExited polls until pid is gone or a zombie, at most d.
func waitExited(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if i := strings.LastIndexByte(string(data), ')'); i > 0 && i+2 < len(data) && data[i+2] == 'Z' {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// timedEvent runs at offset at of a capture.
type timedEvent struct {
	at   time.Duration
	what string
	run  func()
}

// sleepWith sleeps d, running the events at their offsets (in order; an
// event runs in the capture's goroutine, so a slow one delays the next).
func sleepWith(ctx context.Context, s *testinfra.Scope, log *slog.Logger, d time.Duration, evs []timedEvent) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	start := time.Now()
	for _, ev := range evs {
		if ev.at >= d {
			log.Warn("event after the end of the capture skipped", "event", ev.what, "at", ev.at, "capture", d)
			continue
		}
		if wait := ev.at - time.Since(start); wait > 0 {
			sleep(ctx, s, wait)
		}
		log.Info("capture event", "event", ev.what, "at", time.Since(start).Round(time.Second))
		ev.run()
	}
	if rest := d - time.Since(start); rest > 0 {
		sleep(ctx, s, rest)
	}
}

// restartEvents restarts each containers-v2 workload once during a
// capture of length d: in training gracefully at 30 %, 42 %, ... of it in
// workload order; in the long benign capture in the reverse order from 25
// %, the two applications crashing (SIGKILL) instead of stopping.
func restartEvents(t testinfra.T, log *slog.Logger, runs []*running, d time.Duration, long bool) []timedEvent {
	var evs []timedEvent
	n := len(runs)
	for i, r := range runs {
		if r.w.debian == nil {
			continue // containers-v1 has no restarts
		}
		r := r
		pct, crash := 30+12*i, false
		if long {
			pct, crash = 25+10*(n-1-i), r.w.crashInLong
		}
		evs = append(evs, timedEvent{at: d * time.Duration(pct) / 100, what: "restart " + r.w.name,
			run: func() { r.restart(t, log, crash) }})
	}
	return evs
}

// siblingIP replaces the last octet of an IPv4 address.
func siblingIP(ip, last string) string {
	i := strings.LastIndexByte(ip, '.')
	if i < 0 {
		return ip
	}
	return ip[:i+1] + last
}

// newClientEvent starts, at half the long benign capture, a second client
// of every workload that has newClient from a second address of test host
// B never used before (a new client pod, a new node).
func newClientEvent(s *testinfra.Scope, log *slog.Logger, b *testinfra.Netns, h hosts, runs []*running, d time.Duration) []timedEvent {
	var clients []*running
	for _, r := range runs {
		if r.w.newClient && r.w.load != nil {
			clients = append(clients, r)
		}
	}
	if len(clients) == 0 {
		return nil
	}
	ip := siblingIP(h.B, newClientHost)
	return []timedEvent{{at: d / 2, what: "clients from the new address " + ip, run: func() {
		addAddress(s, b, ip)
		for _, r := range clients {
			b.Start(s, append(r.w.load(h), ip)...)
		}
		log.Info("new client address", "ip", ip, "workloads", len(clients))
	}}}
}
