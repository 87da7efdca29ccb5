// Package tracefilter cuts a system-wide trace written by `driftwatch
// record` down to the events of chosen cgroups, so a dataset trace holds
// only its containers (the recording machine is shared, and host activity
// is not part of any scenario). It also attaches the container metadata a
// runtime or the Kubernetes API would supply (image, pod), which a bare
// runc container cannot.
package tracefilter

import (
	"errors"
	"fmt"
	"io"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

// Stats counts what Filter kept.
type Stats struct {
	Read, Kept uint64
	// First and Last are the times of the first and last kept event.
	First, Last int64
}

// Filter copies from in to out the events whose cgroup id is a key of
// keep, in order, with a snapshot reduced to those cgroups' processes and
// cgroup paths. keep maps each cgroup id to its container's metadata: it is
// put in the snapshot when the cgroup is already known there, otherwise
// written as a container update right after the cgroup's update record.
// Events outside [from, to] are dropped (to = 0: no upper bound).
func Filter(in *trace.Reader, out io.Writer, keep map[uint64]event.ContainerInfo, from, to int64) (Stats, error) {
	var st Stats
	src := in.Snapshot()
	snap := &event.Snapshot{Time: src.Time, BootTime: src.BootTime, Hostname: src.Hostname, Cgroups: map[uint64]string{}}
	announced := map[uint64]bool{}
	for _, p := range src.Processes {
		if _, ok := keep[p.CgroupID]; ok {
			snap.Processes = append(snap.Processes, p)
		}
	}
	for id, path := range src.Cgroups {
		if info, ok := keep[id]; ok {
			snap.Cgroups[id] = path
			info.CgroupID = id
			info.CgroupPath = path
			snap.Containers = append(snap.Containers, info)
			announced[id] = true
		}
	}
	w, err := trace.NewWriter(out, snap)
	if err != nil {
		return st, err
	}
	var werr error
	in.SetUpdateHandlers(func(id uint64, path string) {
		info, ok := keep[id]
		if !ok || announced[id] || werr != nil {
			return
		}
		announced[id] = true
		if werr = w.WriteCgroup(id, path); werr != nil {
			return
		}
		info.CgroupID = id
		info.CgroupPath = path
		werr = w.WriteContainer(info)
	}, nil)
	var ev event.Event
	for {
		err := in.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("tracefilter: read after %d events: %w", st.Read, err)
		}
		if werr != nil {
			return st, fmt.Errorf("tracefilter: write: %w", werr)
		}
		st.Read++
		if _, ok := keep[ev.CgroupID]; !ok || ev.Time < from || (to > 0 && ev.Time > to) {
			continue
		}
		if err := w.Write(&ev); err != nil {
			return st, fmt.Errorf("tracefilter: write: %w", err)
		}
		if st.Kept == 0 {
			st.First = ev.Time
		}
		st.Last = ev.Time
		st.Kept++
	}
	if werr != nil {
		return st, fmt.Errorf("tracefilter: write: %w", werr)
	}
	if err := w.Close(); err != nil {
		return st, fmt.Errorf("tracefilter: %w", err)
	}
	return st, nil
}
