package trace

import (
	"bytes"
	"io"
	"net/netip"
	"reflect"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/driftwatch/driftwatch/event"
)

// fuzzSeed is a small valid trace used to seed the fuzzers.
func fuzzSeed(t testing.TB) []byte {
	snap := &event.Snapshot{Hostname: "h", Processes: []event.ProcessInfo{{Pid: 1, Comm: "init", Args: []string{"/sbin/init"}, FDs: []event.FDInfo{{Num: 0, Type: event.FDFile, Name: "/dev/null"}}}},
		Containers: []event.ContainerInfo{{ID: "abc", Labels: map[string]string{"a": "b"}}}, Cgroups: map[uint64]string{1: "/"}}
	evs := []*event.Event{
		{Kind: event.KindExec, Pid: 10, Exe: []byte("/bin/sh"), Argv: []byte("sh\x00-c\x00id"), Cwd: []byte("/")},
		{Kind: event.KindSyscall, Syscall: event.SysOpenat, Pid: 10, Fd: -100, Path: []byte("/etc/passwd"), Ret: 3},
	}
	return writeTrace(t, snap, evs, map[uint64]string{9: "/x"}, []event.ContainerInfo{{ID: "abc", Name: "n"}})
}

// FuzzReader feeds arbitrary files to the reader: it must never panic and
// must end every stream with io.EOF or a *CorruptError.
func FuzzReader(f *testing.F) {
	seed := fuzzSeed(f)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		readAll(t, data)
	})
}

// FuzzRecords fuzzes the decompressed record stream directly (mutations of
// compressed bytes mostly die at the zstd checksum).
func FuzzRecords(f *testing.F) {
	seed := fuzzSeed(f)
	zr, err := zstd.NewReader(bytes.NewReader(seed[HeaderSize:]))
	if err != nil {
		f.Fatal(err)
	}
	defer zr.Close()
	plain, err := io.ReadAll(zr)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Add(plain[:len(plain)-3])
	f.Fuzz(func(t *testing.T, records []byte) {
		r, err := newStreamReader(bytes.NewReader(records))
		if err != nil {
			return
		}
		drain(t, r)
	})
}

// FuzzDecodeEvent fuzzes the event payload decoder without the checksum in
// the way.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(appendEvent(nil, &event.Event{Path: []byte("/a"), Src: netipAP("10.1.2.3:80"), Dst: netipAP("[fe80::1%eth0]:22")}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev event.Event
		if decodeEvent(b, &ev) == nil {
			// Whatever decodes must survive a re-encode unchanged (the
			// input may be longer: trailing bytes, non-minimal varints).
			var ev2 event.Event
			if err := decodeEvent(appendEvent(nil, &ev), &ev2); err != nil || !reflect.DeepEqual(ev, ev2) {
				t.Fatalf("re-encode changed the event (%v):\n%+v\n%+v", err, ev, ev2)
			}
		}
	})
}

// FuzzDecodeSnapshot fuzzes the snapshot decoder.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(appendSnapshot(nil, &event.Snapshot{Hostname: "x", Processes: []event.ProcessInfo{{Pid: 1, Args: []string{"a"}}}, Cgroups: map[uint64]string{1: "/"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeSnapshot(b)
	})
}

func readAll(t *testing.T, data []byte) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return
	}
	drain(t, r)
}

func drain(t *testing.T, r *Reader) {
	var ev event.Event
	for i := 0; ; i++ {
		err := r.Next(&ev)
		if err == nil {
			continue
		}
		if err == io.EOF {
			return
		}
		if _, ok := err.(*CorruptError); !ok {
			t.Fatalf("Next error %T %v, want io.EOF or *CorruptError", err, err)
		}
		return
	}
}

func netipAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
