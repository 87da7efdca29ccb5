package tracefilter

import (
	"bytes"
	"errors"
	"fmt"
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

func TestSplit(t *testing.T) {
	var raw bytes.Buffer
	w, err := trace.NewWriter(&raw, &event.Snapshot{Cgroups: map[uint64]string{1: "/a", 2: "/b", 3: "/c"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, cg := range []uint64{1, 2, 3, 1, 2, 1} {
		if err := w.Write(&event.Event{Kind: event.KindSyscall, CgroupID: cg, Pid: uint32(i + 1), Time: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := trace.NewReader(&raw)
	if err != nil {
		t.Fatal(err)
	}
	var bufA, bufB bytes.Buffer
	outA := &Output{W: &bufA, Keep: map[uint64]event.ContainerInfo{1: {ID: "a"}}}
	outB := &Output{W: &bufB, Keep: map[uint64]event.ContainerInfo{2: {ID: "b"}}}
	if err := Split(in, []*Output{outA, outB}, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		out  *Output
		buf  *bytes.Buffer
		want []uint32
	}{
		{"a", outA, &bufA, []uint32{1, 4, 6}},
		{"b", outB, &bufB, []uint32{2, 5}},
	} {
		if tt.out.Stats.Read != 6 || tt.out.Stats.Kept != uint64(len(tt.want)) {
			t.Errorf("%s: stats %+v", tt.name, tt.out.Stats)
		}
		r, err := trace.NewReader(tt.buf)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint32
		var ev event.Event
		for r.Next(&ev) == nil {
			got = append(got, ev.Pid)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: pids %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSplitRefusesSharedCgroup(t *testing.T) {
	var raw bytes.Buffer
	w, err := trace.NewWriter(&raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := trace.NewReader(&raw)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[uint64]event.ContainerInfo{7: {ID: "x"}}
	err = Split(in, []*Output{{W: io.Discard, Keep: keep}, {W: io.Discard, Keep: keep}}, 0, 0)
	if err == nil {
		t.Errorf("Split with cgroup 7 in two outputs: no error")
	}
}

// BenchmarkSplit measures filtering a system-wide trace where one event in
// ten belongs to a kept container.
func BenchmarkSplit(b *testing.B) {
	var raw bytes.Buffer
	w, err := trace.NewWriter(&raw, &event.Snapshot{Cgroups: map[uint64]string{5: "/test-kubepods/p/c"}})
	if err != nil {
		b.Fatal(err)
	}
	const n = 100000
	for i := 0; i < n; i++ {
		cg := uint64(1)
		if i%10 == 0 {
			cg = 5
		}
		ev := event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, CgroupID: cg, Pid: uint32(i % 500), Time: int64(i), Path: []byte("/usr/lib/x86_64-linux-gnu/libc.so.6")}
		if err := w.Write(&ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	data := raw.Bytes()
	keep := map[uint64]event.ContainerInfo{5: {ID: "c"}}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		in, err := trace.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Filter(in, io.Discard, keep, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
