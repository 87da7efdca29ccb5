package trace

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

var addrPortType = reflect.TypeOf(netip.AddrPort{})

// fill sets every exported field reachable from v to random values, so a
// field added to the event model later is covered without editing the test
// (and the round trip fails until the codec carries it).
func fill(rng *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == addrPortType {
			v.Set(reflect.ValueOf(randomAddrPort(rng)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(rng, v.Field(i))
			}
		}
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(rng.Uint64()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(rng.Uint64())
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(rng, v.Index(i))
		}
	case reflect.String:
		v.SetString(string(randomBytes(rng, 30)))
	case reflect.Slice:
		n := rng.IntN(5)
		if n == 0 {
			v.SetZero()
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(randomBytes(rng, 200))
			if v.Len() == 0 {
				v.SetZero()
			}
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			fill(rng, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		n := rng.IntN(4)
		if n == 0 {
			v.SetZero()
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i < n; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			fill(rng, k)
			fill(rng, e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		panic("fill: unhandled kind " + v.Kind().String() + " in " + v.Type().String())
	}
}

// randomBytes returns up to max bytes including NULs, newlines, control
// characters and invalid UTF-8; nil for length 0.
func randomBytes(rng *rand.Rand, max int) []byte {
	n := rng.IntN(max + 1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randomAddrPort(rng *rand.Rand) netip.AddrPort {
	port := uint16(rng.Uint32())
	switch rng.IntN(4) {
	case 0:
		return netip.AddrPort{}
	case 1:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(rng.Uint32()), 2, 3, byte(rng.Uint32())}), port)
	case 2:
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a), port)
	default:
		return netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("eth0"), port)
	}
}

func randomEvent(rng *rand.Rand) *event.Event {
	e := &event.Event{}
	fill(rng, reflect.ValueOf(e).Elem())
	return e
}

func randomSnapshot(rng *rand.Rand) *event.Snapshot {
	s := &event.Snapshot{}
	fill(rng, reflect.ValueOf(s).Elem())
	if s.Cgroups == nil {
		s.Cgroups = map[uint64]string{} // readers always return a map
	}
	return s
}

// writeTrace writes snap, then events interleaved with a cgroup and a
// container record, and returns the file bytes.
func writeTrace(t testing.TB, snap *event.Snapshot, evs []*event.Event, cg map[uint64]string, ci []event.ContainerInfo) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, snap)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if i == len(evs)/2 {
			for id, p := range cg {
				if err := w.WriteCgroup(id, p); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range ci {
				if err := w.WriteContainer(c); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTripEveryField(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 20; iter++ {
		snap := randomSnapshot(rng)
		want := *snap
		evs := make([]*event.Event, 50)
		for i := range evs {
			evs[i] = randomEvent(rng)
		}
		cg := map[uint64]string{rng.Uint64(): "/test-kubepods/pod1/" + string(randomBytes(rng, 10))}
		var ci event.ContainerInfo
		fill(rng, reflect.ValueOf(&ci).Elem())
		data := writeTrace(t, snap, evs, cg, []event.ContainerInfo{ci})

		if !IsTrace(data) {
			t.Fatal("IsTrace(written trace) = false")
		}
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Snapshot(), &want) {
			t.Fatalf("iteration %d: snapshot differs:\n got %+v\nwant %+v", iter, r.Snapshot(), &want)
		}
		var gotCg []uint64
		var gotCi []event.ContainerInfo
		r.OnCgroup = func(id uint64, p string) {
			gotCg = append(gotCg, id)
			if cg[id] != p {
				t.Errorf("OnCgroup(%d, %q), want path %q", id, p, cg[id])
			}
		}
		r.OnContainer = func(info event.ContainerInfo) { gotCi = append(gotCi, info) }
		for i, want := range evs {
			got := &event.Event{} // fresh: nil slices stay nil for DeepEqual
			if err := r.Next(got); err != nil {
				t.Fatalf("iteration %d event %d: %v", iter, i, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("iteration %d event %d differs:\n got %+v\nwant %+v", iter, i, got, want)
			}
		}
		if err := r.Next(&event.Event{}); err != io.EOF {
			t.Fatalf("after last event: %v, want io.EOF", err)
		}
		if len(gotCg) != 1 || len(gotCi) != 1 || !reflect.DeepEqual(gotCi[0], ci) {
			t.Fatalf("callbacks: cgroups %v containers %+v, want 1 each equal to %+v", gotCg, gotCi, ci)
		}
		for id, p := range cg {
			if r.Snapshot().Cgroups[id] != p {
				t.Fatalf("snapshot Cgroups[%d] = %q after cgroup record, want %q", id, r.Snapshot().Cgroups[id], p)
			}
		}
		found := false
		for _, c := range r.Snapshot().Containers {
			found = found || reflect.DeepEqual(c, ci)
		}
		if !found {
			t.Fatal("container record not merged into Snapshot().Containers")
		}
	}
}

func TestReuseEventKeepsNoStaleBytes(t *testing.T) {
	a := &event.Event{Kind: event.KindExec, Exe: []byte("/bin/long-name"), Argv: []byte("a\x00b"), Path: []byte("/etc/passwd")}
	b := &event.Event{Kind: event.KindSyscall, Exe: []byte("/x")}
	data := writeTrace(t, nil, []*event.Event{a, b}, nil, nil)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := r.Next(&ev); err != nil {
		t.Fatal(err)
	}
	if err := r.Next(&ev); err != nil {
		t.Fatal(err)
	}
	if string(ev.Exe) != "/x" || len(ev.Argv) != 0 || len(ev.Path) != 0 || ev.Kind != event.KindSyscall {
		t.Fatalf("reused event holds stale data: %+v", ev)
	}
}

func TestTruncatedAtEveryPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	evs := make([]*event.Event, 12)
	for i := range evs {
		evs[i] = randomEvent(rng)
	}
	snap := &event.Snapshot{Hostname: "h", Cgroups: map[uint64]string{1: "/"}}
	// zstd emits whole blocks: events become readable from a prefix once a
	// Flush (the recorder flushes every second) or the end pushed them out.
	var buf bytes.Buffer
	w, err := NewWriter(&buf, snap)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if i == len(evs)/2 {
			w.WriteCgroup(7, "/a")
			w.WriteContainer(event.ContainerInfo{ID: "c"})
		}
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	prevCount := 0
	for n := 0; n < len(data); n++ {
		r, err := NewReader(bytes.NewReader(data[:n]))
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("prefix %d: NewReader error %v is not a *CorruptError", n, err)
			}
			continue
		}
		count := 0
		for {
			ev := &event.Event{}
			err := r.Next(ev)
			if err == nil {
				if count >= len(evs) || !reflect.DeepEqual(ev, evs[count]) {
					t.Fatalf("prefix %d: event %d differs from what was written", n, count)
				}
				count++
				continue
			}
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("prefix %d of %d: after %d events got %v, want *CorruptError", n, len(data), count, err)
			}
			if ce.Offset < HeaderSize || ce.Offset > r.Offset() {
				t.Fatalf("prefix %d: offset %d outside [%d, %d]", n, ce.Offset, HeaderSize, r.Offset())
			}
			if err2 := r.Next(ev); err2 != err {
				t.Fatalf("prefix %d: error not sticky: %v then %v", n, err, err2)
			}
			break
		}
		if count < prevCount {
			t.Fatalf("prefix %d yields %d events, shorter prefix yielded %d", n, count, prevCount)
		}
		prevCount = count
	}
	if prevCount == 0 {
		t.Fatal("no prefix yielded any event: the reader does not stream")
	}
}

// TestCorruptRecordChecksum writes a record whose checksum does not match
// (as a bit flip in the decompressed stream would leave it) and checks the
// reader stops at that record's offset.
func TestCorruptRecordChecksum(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := &event.Event{Num: 1, Path: []byte("/etc/shadow")}
	w.Write(good)
	// Hand-made record with a bad checksum.
	w.rec = appendEvent(w.rec[:0], &event.Event{Num: 2})
	w.hdr[0] = recEvent
	hn := 1 + putUvarint(w.hdr[1:], uint64(len(w.rec)))
	w.bw.Write(w.hdr[:hn])
	w.bw.Write(w.rec)
	w.bw.Write([]byte{1, 2, 3, 4})
	w.events++
	w.Write(&event.Event{Num: 3})
	w.Close()

	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := r.Next(&ev); err != nil || ev.Num != 1 {
		t.Fatalf("first event: %v num %d", err, ev.Num)
	}
	off := r.Offset()
	err = r.Next(&ev)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != off {
		t.Fatalf("damaged record: got %v, want *CorruptError at %d", err, off)
	}
}

func TestHeaderErrors(t *testing.T) {
	valid := writeTrace(t, nil, nil, nil, nil)
	badMajor := append([]byte(nil), valid...)
	badMajor[8] = 9
	badComp := append([]byte(nil), valid...)
	badComp[12] = 7
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"not a trace", []byte("hello world, this is text"), ErrNotTrace},
		{"major version", badMajor, ErrUnsupportedVersion},
		{"compression", badComp, ErrUnsupportedVersion},
	} {
		_, err := NewReader(bytes.NewReader(tc.data))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if IsTrace([]byte("\x89DWT")) {
		t.Error("IsTrace accepts a short header")
	}
}

func TestCreateOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.dwt")
	w, err := Create(path, &event.Snapshot{Hostname: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&event.Event{Num: 42, Comm: [16]byte{'s', 'h'}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var _ event.SnapshotSource = r
	if r.Snapshot().Hostname != "node-1" {
		t.Fatalf("hostname %q", r.Snapshot().Hostname)
	}
	var ev event.Event
	if err := r.Next(&ev); err != nil || ev.Num != 42 || ev.CommString() != "sh" {
		t.Fatalf("Next: %v %+v", err, ev)
	}
	if err := r.Next(&ev); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestDecodeAllocatesNothingPerEvent(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	evs := make([]*event.Event, 2000)
	for i := range evs {
		evs[i] = randomEvent(rng)
		evs[i].Src, evs[i].Dst = netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 80)
	}
	data := writeTrace(t, nil, evs, nil, nil)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	for i := 0; i < 100; i++ { // warm up buffers
		if err := r.Next(&ev); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := r.Next(&ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.01 {
		t.Fatalf("%.2f allocations per decoded event, want 0", allocs)
	}
}
