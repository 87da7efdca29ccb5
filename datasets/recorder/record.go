package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/datasets/tracefilter"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

// recording is one running `driftwatch record` writing a system-wide raw
// trace.
type recording struct {
	cmd  *exec.Cmd
	raw  string
	mu   sync.Mutex
	tail []string // stderr lines after "ready"
	done chan struct{}
}

// startRecording starts `BIN record --out raw` with large rings and returns once it printed
// "ready" on stderr (every program attached).
func startRecording(ctx context.Context, bin, raw string) (*recording, error) {
	r := &recording{raw: raw, done: make(chan struct{})}
	// Large rings: the machine is shared, and other processes' bursts
	// must not push the workloads' events out.
	r.cmd = exec.Command(bin, "record", "--out", raw, "--ring-syscall", "67108864", "--ring-lifecycle", "16777216")
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s record: %w", bin, err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			if !seen && strings.TrimSpace(line) == "ready" {
				seen = true
				close(ready)
				continue
			}
			r.mu.Lock()
			r.tail = append(r.tail, line)
			r.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case <-ready:
		return r, nil
	case <-r.done:
		err := r.cmd.Wait()
		return nil, fmt.Errorf("%s record exited before ready (%v): %s", bin, err, strings.Join(r.lines(), "; "))
	case <-time.After(90 * time.Second):
		r.kill()
		return nil, fmt.Errorf("%s record: no ready line after 90s: %s", bin, strings.Join(r.lines(), "; "))
	case <-ctx.Done():
		r.kill()
		return nil, ctx.Err()
	}
}

func (r *recording) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tail...)
}

func (r *recording) kill() {
	_ = r.cmd.Process.Kill()
	<-r.done
	_ = r.cmd.Wait()
}

// stop ends the capture with SIGINT (the recorder then closes the trace)
// and returns its summary line ("recorded N events ... lost ...").
func (r *recording) stop() (string, error) {
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		r.kill()
		return "", errors.New("record did not stop within 60s of SIGINT")
	}
	err := r.cmd.Wait()
	lines := r.lines()
	summary := ""
	for _, l := range lines {
		if strings.HasPrefix(l, "recorded ") {
			summary = l
		}
	}
	if err != nil {
		return summary, fmt.Errorf("record: %w: %s", err, strings.Join(lines, "; "))
	}
	return summary, nil
}

// splitTrace writes each workload's events of raw to its file in one pass.
func splitTrace(raw string, files []string, keeps []map[uint64]event.ContainerInfo) ([]tracefilter.Stats, error) {
	in, err := trace.Open(raw)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var outs []*tracefilter.Output
	var fs []*os.File
	defer func() {
		for _, f := range fs {
			f.Close()
		}
	}()
	for i, name := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(name)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
		outs = append(outs, &tracefilter.Output{W: f, Keep: keeps[i]})
	}
	if err := tracefilter.Split(in, outs, 0, 0); err != nil {
		return nil, fmt.Errorf("split %s: %w", raw, err)
	}
	var stats []tracefilter.Stats
	for i, f := range fs {
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write %s: %w", files[i], err)
		}
		stats = append(stats, outs[i].Stats)
	}
	fs = nil
	return stats, nil
}

// filterTrace writes to out the events of raw whose cgroup is in keep.
func filterTrace(raw, out string, keep map[uint64]event.ContainerInfo) (tracefilter.Stats, error) {
	in, err := trace.Open(raw)
	if err != nil {
		return tracefilter.Stats{}, err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return tracefilter.Stats{}, err
	}
	f, err := os.Create(out)
	if err != nil {
		return tracefilter.Stats{}, err
	}
	st, err := tracefilter.Filter(in, f, keep, 0, 0)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return st, fmt.Errorf("filter %s into %s: %w", raw, out, err)
	}
	return st, nil
}
