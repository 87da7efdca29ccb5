package trace

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// benchEvents are realistic events: an openat with a path, a connect with a
// tuple, an exec with argv.
func benchEvents() []*event.Event {
	rng := rand.New(rand.NewPCG(7, 8))
	evs := make([]*event.Event, 0, 3000)
	for i := 0; i < 1000; i++ {
		base := event.Event{Time: 1_700_000_000_000_000_000 + int64(i)*1000, Num: uint64(i), Pid: 1000 + uint32(rng.IntN(50)), Uid: 1000, CgroupID: 4242, LoginUID: 0xffffffff}
		base.SetComm("nginx")
		o := base
		o.Syscall, o.Fd, o.Ret, o.Flags = event.SysOpenat, -100, 5, 0x80000
		o.Path = []byte("/var/lib/app/data/file-" + string(rune('a'+rng.IntN(26))) + ".json")
		c := base
		c.Syscall, c.Fd, c.Family, c.Proto = event.SysConnect, 7, event.AFInet, event.ProtoTCP
		c.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(3)), 5}), 443)
		x := base
		x.Kind = event.KindExec
		x.Exe, x.Argv, x.Cwd = []byte("/usr/bin/curl"), []byte("curl\x00-s\x00http://example.internal/health"), []byte("/srv")
		evs = append(evs, &o, &c, &x)
	}
	return evs
}

func BenchmarkWrite(b *testing.B) {
	evs := benchEvents()
	size := 0
	for _, e := range evs {
		size += len(appendEvent(nil, e))
	}
	var buf bytes.Buffer
	b.SetBytes(int64(size / len(evs)))
	b.ReportAllocs()
	w, _ := NewWriter(io.Discard, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Write(evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	b.StopTimer()
	// Compression ratio on one pass of the corpus.
	w2, _ := NewWriter(&buf, nil)
	for _, e := range evs {
		w2.Write(e)
	}
	w2.Close()
	b.ReportMetric(float64(buf.Len())/float64(len(evs)), "file-bytes/event")
}

func BenchmarkRead(b *testing.B) {
	evs := benchEvents()
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, nil)
	for i := 0; i < 100_000; i++ {
		w.Write(evs[i%len(evs)])
	}
	w.Close()
	data := buf.Bytes()
	b.SetBytes(int64(len(data) / 100_000))
	b.ReportAllocs()
	b.ResetTimer()
	var ev event.Event
	var r *Reader
	for i := 0; i < b.N; i++ {
		if i%100_000 == 0 {
			var err error
			if r, err = NewReader(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Next(&ev); err != nil {
			b.Fatal(err)
		}
	}
}
