package tracefilter

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

func TestFilter(t *testing.T) {
	const (
		cgA    = 101 // known in the snapshot
		cgB    = 202 // appears mid-capture
		cgHost = 1
	)
	snap := &event.Snapshot{
		Time: 1000, Hostname: "h",
		Processes: []event.ProcessInfo{{Pid: 10, CgroupID: cgA, Comm: "httpd"}, {Pid: 11, CgroupID: cgHost, Comm: "go"}},
		Cgroups:   map[uint64]string{cgA: "/test-kubepods/poda/aaaa", cgHost: "/user.slice"},
	}
	var raw bytes.Buffer
	w, err := trace.NewWriter(&raw, snap)
	if err != nil {
		t.Fatal(err)
	}
	write := func(cg uint64, pid uint32, tm int64) {
		t.Helper()
		if err := w.Write(&event.Event{Kind: event.KindSyscall, CgroupID: cg, Pid: pid, Time: tm}); err != nil {
			t.Fatal(err)
		}
	}
	write(cgA, 10, 2000)
	write(cgHost, 11, 2001)
	if err := w.WriteCgroup(cgB, "/test-kubepods/podb/bbbb"); err != nil {
		t.Fatal(err)
	}
	write(cgB, 20, 2002)
	write(cgHost, 11, 2003)
	write(cgA, 10, 9000) // after the window
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	in, err := trace.NewReader(&raw)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[uint64]event.ContainerInfo{
		cgA: {ID: "aaaa", Image: "driftwatch.test/web:1"},
		cgB: {ID: "bbbb", Image: "driftwatch.test/batch:1"},
	}
	var out bytes.Buffer
	st, err := Filter(in, &out, keep, 0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 5 || st.Kept != 2 || st.First != 2000 || st.Last != 2002 {
		t.Errorf("stats = %+v, want read 5 kept 2 first 2000 last 2002", st)
	}

	r, err := trace.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Snapshot()
	if len(s.Processes) != 1 || s.Processes[0].Pid != 10 {
		t.Errorf("snapshot processes = %+v, want only pid 10", s.Processes)
	}
	if _, ok := s.Cgroups[cgHost]; ok || s.Cgroups[cgA] == "" {
		t.Errorf("snapshot cgroups = %v, want only %d", s.Cgroups, cgA)
	}
	if len(s.Containers) != 1 || s.Containers[0].ID != "aaaa" || s.Containers[0].CgroupID != cgA {
		t.Errorf("snapshot containers = %+v", s.Containers)
	}
	var updates []string
	r.SetUpdateHandlers(func(id uint64, path string) { updates = append(updates, path) },
		func(info event.ContainerInfo) { updates = append(updates, info.ID+"="+info.Image) })
	var pids []uint32
	var ev event.Event
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, ev.Pid)
	}
	if len(pids) != 2 || pids[0] != 10 || pids[1] != 20 {
		t.Errorf("kept pids %v, want [10 20]", pids)
	}
	if len(updates) != 2 || updates[0] != "/test-kubepods/podb/bbbb" || updates[1] != "bbbb=driftwatch.test/batch:1" {
		t.Errorf("updates %v", updates)
	}
}
