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

// Output is one destination of Split: the events of the cgroups in Keep
// go to W. Keep maps each cgroup id to its container's metadata.
type Output struct {
	W    io.Writer
	Keep map[uint64]event.ContainerInfo
	// Stats is filled in by Split.
	Stats Stats

	w         *trace.Writer
	announced map[uint64]bool
	err       error
}

// Filter copies from in to out the events whose cgroup id is a key of
// keep, in order, with a snapshot reduced to those cgroups' processes and
// cgroup paths. keep maps each cgroup id to its container's metadata: it is
// put in the snapshot when the cgroup is already known there, otherwise
// written as a container update right after the cgroup's update record.
// Events outside [from, to] are dropped (to = 0: no upper bound).
func Filter(in *trace.Reader, out io.Writer, keep map[uint64]event.ContainerInfo, from, to int64) (Stats, error) {
	o := &Output{W: out, Keep: keep}
	err := Split(in, []*Output{o}, from, to)
	return o.Stats, err
}

// Split is Filter for several outputs in one pass over in: each output
// gets the events of its own cgroups. Stats.Read counts every event read.
func Split(in *trace.Reader, outs []*Output, from, to int64) error {
	src := in.Snapshot()
	route := map[uint64]*Output{}
	for _, o := range outs {
		o.announced = map[uint64]bool{}
		snap := &event.Snapshot{Time: src.Time, BootTime: src.BootTime, Hostname: src.Hostname, Cgroups: map[uint64]string{}}
		for _, p := range src.Processes {
			if _, ok := o.Keep[p.CgroupID]; ok {
				snap.Processes = append(snap.Processes, p)
			}
		}
		for id, path := range src.Cgroups {
			if info, ok := o.Keep[id]; ok {
				snap.Cgroups[id] = path
				info.CgroupID = id
				info.CgroupPath = path
				snap.Containers = append(snap.Containers, info)
				o.announced[id] = true
			}
		}
		w, err := trace.NewWriter(o.W, snap)
		if err != nil {
			return err
		}
		o.w = w
		for id := range o.Keep {
			if prev, dup := route[id]; dup && prev != o {
				return fmt.Errorf("tracefilter: cgroup %d is kept by two outputs", id)
			}
			route[id] = o
		}
	}
	in.SetUpdateHandlers(func(id uint64, path string) {
		o, ok := route[id]
		if !ok || o.announced[id] || o.err != nil {
			return
		}
		o.announced[id] = true
		if o.err = o.w.WriteCgroup(id, path); o.err != nil {
			return
		}
		info := o.Keep[id]
		info.CgroupID = id
		info.CgroupPath = path
		o.err = o.w.WriteContainer(info)
	}, nil)
	var read uint64
	var ev event.Event
	for {
		err := in.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("tracefilter: read after %d events: %w", read, err)
		}
		read++
		o, ok := route[ev.CgroupID]
		if !ok || ev.Time < from || (to > 0 && ev.Time > to) {
			continue
		}
		if o.err != nil {
			return fmt.Errorf("tracefilter: write: %w", o.err)
		}
		if err := o.w.Write(&ev); err != nil {
			return fmt.Errorf("tracefilter: write: %w", err)
		}
		if o.Stats.Kept == 0 {
			o.Stats.First = ev.Time
		}
		o.Stats.Last = ev.Time
		o.Stats.Kept++
	}
	for _, o := range outs {
		o.Stats.Read = read
		if o.err != nil {
			return fmt.Errorf("tracefilter: write: %w", o.err)
		}
		if err := o.w.Close(); err != nil {
			return fmt.Errorf("tracefilter: %w", err)
		}
	}
	return nil
}
