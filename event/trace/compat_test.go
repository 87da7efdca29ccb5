package trace

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// rawRecord builds one record of the decompressed stream.
func rawRecord(kind byte, payload []byte) []byte {
	b := []byte{kind}
	b = binary.AppendUvarint(b, uint64(len(payload)))
	b = append(b, payload...)
	return le.AppendUint32(b, recordCRC(kind, payload))
}

// TestMinorVersionCompat checks the versioning rules of
// docs/trace-format.md: unknown record kinds are skipped and bytes appended
// to a known record are ignored.
func TestMinorVersionCompat(t *testing.T) {
	var s []byte
	s = append(s, rawRecord(recSnapshot, append(appendSnapshot(nil, &event.Snapshot{Hostname: "h"}), 0xAA, 0xBB))...)
	s = append(s, rawRecord(0x42, []byte("a future record kind"))...)
	ev := &event.Event{Num: 9, Path: []byte("/x")}
	s = append(s, rawRecord(recEvent, append(appendEvent(nil, ev), 1, 2, 3))...)
	s = append(s, rawRecord(recEnd, binary.AppendUvarint(nil, 1))...)
	r, err := newStreamReader(bytes.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	if r.Snapshot().Hostname != "h" {
		t.Fatal("snapshot with trailing bytes misread")
	}
	var got event.Event
	if err := r.Next(&got); err != nil || got.Num != 9 || string(got.Path) != "/x" {
		t.Fatalf("event after unknown kind: %v %+v", err, got)
	}
	if err := r.Next(&got); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

// TestAbsurdLengthBoundedAllocation declares huge records backed by a few
// bytes: the reader must fail without allocating anywhere near the
// declared size.
func TestAbsurdLengthBoundedAllocation(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"snapshot of 250 MiB", append(append([]byte{recSnapshot}, binary.AppendUvarint(nil, 250<<20)...), make([]byte, 100)...)},
		{"snapshot above the limit", append([]byte{recSnapshot}, binary.AppendUvarint(nil, 1<<40)...)},
		{"process count of 2^31", rawRecord(recSnapshot, binary.AppendUvarint(append(make([]byte, 16), 0), 1<<31))},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := newStreamReader(bytes.NewReader(tc.data))
		runtime.ReadMemStats(&after)
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want *CorruptError", tc.name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
			t.Errorf("%s: allocated %d bytes", tc.name, d)
		}
	}
}

// TestReadsVersion1Gzip: files of format 1.x (gzip) still read; other
// majors and mismatched compression codes are refused.
func TestReadsVersion1Gzip(t *testing.T) {
	var s []byte
	s = append(s, rawRecord(recSnapshot, appendSnapshot(nil, &event.Snapshot{Hostname: "old"}))...)
	s = append(s, rawRecord(recEvent, appendEvent(nil, &event.Event{Num: 7, Path: []byte("/etc/hosts")}))...)
	s = append(s, rawRecord(recEnd, binary.AppendUvarint(nil, 1))...)
	file := func(major uint16, comp byte, body []byte) []byte {
		h := make([]byte, HeaderSize)
		copy(h, Magic[:])
		le.PutUint16(h[8:], major)
		h[12] = comp
		return append(h, body...)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(s)
	zw.Close()
	r, err := NewReader(bytes.NewReader(file(1, CompressionGzip, gz.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := r.Next(&ev); err != nil || ev.Num != 7 || string(ev.Path) != "/etc/hosts" || r.Snapshot().Hostname != "old" {
		t.Fatalf("1.0 gzip file: %v %+v", err, ev)
	}
	if err := r.Next(&ev); err != io.EOF {
		t.Fatalf("1.0 end: %v", err)
	}
	for _, tc := range []struct {
		major uint16
		comp  byte
	}{{1, CompressionZstd}, {2, CompressionGzip}, {3, CompressionZstd}, {0, CompressionGzip}} {
		if _, err := NewReader(bytes.NewReader(file(tc.major, tc.comp, gz.Bytes()))); !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("version %d compression %d: %v, want ErrUnsupportedVersion", tc.major, tc.comp, err)
		}
	}
	// What this build writes is 2.x zstd.
	data := writeTrace(t, nil, nil, nil, nil)
	if le.Uint16(data[8:]) != 2 || data[12] != CompressionZstd {
		t.Fatalf("written header % x", data[:HeaderSize])
	}
}

// TestFormat20EventDecodesWithZeroNewFields: an event record of format 2.0
// (without the pid-namespace ids, capability sets and environment appended
// in 2.1) decodes with those zero, and a reused Event does not keep an
// earlier event's values.
func TestFormat20EventDecodesWithZeroNewFields(t *testing.T) {
	full := &event.Event{Kind: event.KindExec, Num: 3, Exe: []byte("/bin/true"), RealPath: []byte("/r"),
		VPid: 1, VTid: 1, VPgid: 1, CapPrm: 0xff, CapInh: 0x1, Env: []byte("FOO=bar\x00")}
	b := appendEvent(nil, full)
	var got event.Event
	if err := decodeEvent(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.VPid != 1 || got.VTid != 1 || got.VPgid != 1 || got.CapPrm != 0xff || got.CapInh != 1 || string(got.Env) != "FOO=bar\x00" {
		t.Fatalf("2.1 fields lost: %+v", got)
	}
	tail := 3*4 + 2*8 + 1 + len(full.Env)
	old := b[:len(b)-tail]
	if err := decodeEvent(old, &got); err != nil {
		t.Fatal(err)
	}
	if got.VPid != 0 || got.VTid != 0 || got.VPgid != 0 || got.CapPrm != 0 || got.CapInh != 0 || len(got.Env) != 0 ||
		string(got.Exe) != "/bin/true" || string(got.RealPath) != "/r" {
		t.Fatalf("2.0 record: %+v", got)
	}
}

// TestFormat20SnapshotDecodesWithZeroIDs: a 2.0 snapshot (without the
// per-process ids and capability sets appended in 2.1) decodes with them
// zero; a 2.1 one keeps them.
func TestFormat20SnapshotDecodesWithZeroIDs(t *testing.T) {
	s := &event.Snapshot{Hostname: "h", Processes: []event.ProcessInfo{{Pid: 10, Comm: "a", VPid: 1, VPgid: 1, CapPrm: 0xff, CapInh: 2}, {Pid: 11, Comm: "b"}}}
	b := appendSnapshot(nil, s)
	got, err := decodeSnapshot(b)
	if err != nil || got.Processes[0].VPid != 1 || got.Processes[0].VPgid != 1 || got.Processes[0].CapPrm != 0xff || got.Processes[0].CapInh != 2 {
		t.Fatalf("2.1 snapshot: %v %+v", err, got)
	}
	old := b[:len(b)-(1+2*24)-1] // without the 2.1 ids and the 2.2 mounts (no containers: one count byte)
	got, err = decodeSnapshot(old)
	if err != nil || len(got.Processes) != 2 || got.Processes[0].VPid != 0 || got.Processes[0].CapPrm != 0 || got.Processes[1].Comm != "b" {
		t.Fatalf("2.0 snapshot: %v %+v", err, got)
	}
}

// A 2.1 snapshot and container record (without the mounts appended in
// 2.2) decode with nil mounts; 2.2 ones keep them, nil and empty apart.
func TestFormat21ContainersDecodeWithoutMounts(t *testing.T) {
	ms := []event.Mount{{Source: "/proc", Dest: "/host/proc", RW: true, Propagation: "rslave"}}
	s := &event.Snapshot{Hostname: "h", Containers: []event.ContainerInfo{{ID: "a", Mounts: ms}, {ID: "b", Mounts: []event.Mount{}}, {ID: "c"}}}
	b := appendSnapshot(nil, s)
	got, err := decodeSnapshot(b)
	if err != nil || len(got.Containers) != 3 || len(got.Containers[0].Mounts) != 1 || got.Containers[0].Mounts[0] != ms[0] ||
		got.Containers[1].Mounts == nil || len(got.Containers[1].Mounts) != 0 || got.Containers[2].Mounts != nil {
		t.Fatalf("2.2 snapshot: %v %+v", err, got)
	}
	section := 1 + (1 + 4 + len("/proc") + len("/host/proc") + len("rslave") + 1) + 1 + 1
	got, err = decodeSnapshot(b[:len(b)-section])
	if err != nil || len(got.Containers) != 3 || got.Containers[0].ID != "a" || got.Containers[0].Mounts != nil {
		t.Fatalf("2.1 snapshot: %v %+v", err, got)
	}
}
