package bpf

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

var testClock = Clock{BootToWall: 1_700_000_000_000_000_000}

func sampleEvents() []*event.Event {
	open := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, CPU: 1, Time: testClock.BootToWall + 123456789,
		Pid: 10, Tid: 11, Ppid: 1, Uid: 1000, Gid: 1000, Euid: 1000, Egid: 1000, LoginUID: 1000, CgroupID: 4242,
		PidNS: 4026531836, MntNS: 4026531841, Tty: 34816, CapEff: 0x1ff, Ret: 3, Raw: [6]uint64{0xffffff9c, 0x7ffd, 0x241, 0o644},
		Fd: -100, Flags: 0x241, Mode: 0o644, Path: []byte("/etc/hostname"), RealPath: []byte("/var/lib/hostname"),
		Flags2: event.FlagFileFacts, FileType: event.FDFile, FileIno: 1234567, FileDev: 0x10302}
	open.SetComm("cat")
	conn := &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Time: testClock.BootToWall + 5, Pid: 20, Tid: 20,
		Fd: 3, Family: event.AFInet, Proto: event.ProtoTCP, SockType: 1,
		Src: netip.MustParseAddrPort("127.0.0.1:40000"), Dst: netip.MustParseAddrPort("127.0.0.1:8080"),
		Flags2: event.FlagFileFacts, FileType: event.FDIPv4, FileIno: 99, FileDev: 8}
	conn6 := &event.Event{Kind: event.KindSyscall, Syscall: event.SysAccept4, Time: testClock.BootToWall + 6, Pid: 21, Tid: 22,
		Ret: 5, Fd: 4, Family: event.AFInet6, Proto: event.ProtoTCP, SockType: 1,
		Src: netip.MustParseAddrPort("[::1]:5555"), Dst: netip.MustParseAddrPort("[::1]:443")}
	unix := &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Time: testClock.BootToWall + 7, Family: event.AFUnix,
		UnixPath: []byte("/run/containerd/containerd.sock")}
	exec := &event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Time: testClock.BootToWall + 8, Pid: 30, Tid: 30, Ppid: 29,
		Path: []byte("/bin/cat"), Exe: []byte("/usr/bin/cat"), Argv: []byte("cat\x00/etc/hostname\x00"), Cwd: []byte("/root"),
		ExeIno: 247026, ExeDev: 0x10302, ExeCtime: 1663687649000000001, ExeMtime: 1663687648000000002,
		Flags2: event.FlagExeUpperLayer | event.FlagArgvTruncated | event.FlagEnvTruncated,
		VPid:   7, VTid: 7, VPgid: 1, CapPrm: 0x1ffffffffff, CapInh: 0x400, Env: []byte("PATH=/bin\x00FOO=bar\x00")}
	fork := &event.Event{Kind: event.KindFork, Syscall: event.SysClone, Time: testClock.BootToWall + 9, Pid: 30, Tid: 30,
		ChildPid: 31, ChildTid: 31, Flags: 0x1200011, VPid: 2, VTid: 2, VPgid: 1, CapPrm: 0x3}
	exit := &event.Event{Kind: event.KindExit, Syscall: event.SysExitGroup, Time: testClock.BootToWall + 10, Pid: 31, Tid: 32,
		Ret: 256, Flags2: event.FlagThread}
	dup := &event.Event{Kind: event.KindSyscall, Syscall: event.SysDup2, Time: testClock.BootToWall + 12, Fd: 4, Fd2: 1, Ret: 1,
		Flags2: event.FlagFileFacts, FileType: event.FDPipe, FileIno: 5}
	sym := &event.Event{Kind: event.KindSyscall, Syscall: event.SysSymlinkat, Time: testClock.BootToWall + 11,
		Path: []byte("/etc/hostname"), Path2: []byte("bad\nname\xff"), Fd: -100, Fd2: -100}
	return []*event.Event{open, conn, conn6, unix, exec, fork, exit, dup, sym}
}

func TestDecodeRoundTrip(t *testing.T) {
	var ev event.Event
	for _, want := range sampleEvents() {
		raw := EncodeRecord(want, testClock)
		if err := Decode(raw, &ev, testClock); err != nil {
			t.Fatalf("%s: %v", want.Type(), err)
		}
		got := ev.Clone()
		got.Num = want.Num
		if g, w := describe(got), describe(want); g != w {
			t.Errorf("round trip:\n got %s\nwant %s", g, w)
		}
		if got.Time != want.Time || got.CgroupID != want.CgroupID || got.CapEff != want.CapEff || got.Raw != want.Raw ||
			got.ExeIno != want.ExeIno || got.ExeDev != want.ExeDev || got.ExeCtime != want.ExeCtime || got.ExeMtime != want.ExeMtime ||
			got.Comm != want.Comm || got.Tty != want.Tty || got.PidNS != want.PidNS || got.LoginUID != want.LoginUID ||
			!bytes.Equal(got.Cwd, want.Cwd) || !bytes.Equal(got.UnixPath, want.UnixPath) || got.ChildTid != want.ChildTid ||
			got.VPid != want.VPid || got.VTid != want.VTid || got.VPgid != want.VPgid || got.CapPrm != want.CapPrm ||
			got.CapInh != want.CapInh || !bytes.Equal(got.Env, want.Env) || got.Flags2 != want.Flags2 {
			t.Errorf("%s: fields differ:\n got %+v\nwant %+v", want.Type(), got, want)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	var ev event.Event
	good := EncodeRecord(sampleEvents()[0], testClock)
	if err := Decode(good[:hdrSize-1], &ev, testClock); !errors.Is(err, ErrShortRecord) {
		t.Errorf("short: %v", err)
	}
	bad := bytes.Clone(good)
	bad[offVersion] = 9
	if err := Decode(bad, &ev, testClock); !errors.Is(err, ErrBadRecord) {
		t.Errorf("version: %v", err)
	}
	bad = bytes.Clone(good)
	bad[offKind] = 200
	if err := Decode(bad, &ev, testClock); !errors.Is(err, ErrBadRecord) {
		t.Errorf("kind: %v", err)
	}
	bad = bytes.Clone(good)
	le.PutUint16(bad[offRegions+2*regCount:], 60000) // Path longer than the record
	if err := Decode(bad, &ev, testClock); !errors.Is(err, ErrBadRecord) {
		t.Errorf("region: %v", err)
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	recs := [][]byte{}
	for _, e := range sampleEvents() {
		recs = append(recs, EncodeRecord(e, testClock))
	}
	var ev event.Event
	for _, r := range recs { // grow the buffers once
		Decode(r, &ev, testClock)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, r := range recs {
			Decode(r, &ev, testClock)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per batch", allocs)
	}
}

// BenchmarkDecode measures decoding of a typical mix (an openat with its
// path, a connect, an exec with argv) into a reused Event.
func BenchmarkDecode(b *testing.B) {
	evs := sampleEvents()
	recs := [][]byte{EncodeRecord(evs[0], testClock), EncodeRecord(evs[1], testClock), EncodeRecord(evs[4], testClock)}
	var ev event.Event
	for _, r := range recs {
		Decode(r, &ev, testClock)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Decode(recs[i%len(recs)], &ev, testClock); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func FuzzDecode(f *testing.F) {
	for _, e := range sampleEvents() {
		f.Add(EncodeRecord(e, testClock))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev event.Event
		if err := Decode(raw, &ev, testClock); err != nil {
			return
		}
		// Whatever decodes re-encodes to a record that decodes the same.
		again := EncodeRecord(&ev, testClock)
		var ev2 event.Event
		if err := Decode(again, &ev2, testClock); err != nil {
			t.Fatalf("re-encoded record fails: %v", err)
		}
		if describe(&ev) != describe(&ev2) {
			t.Fatalf("re-decode differs:\n%s\n%s", describe(&ev), describe(&ev2))
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzDecode when
// DRIFTWATCH_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("DRIFTWATCH_WRITE_CORPUS") != "1" {
		t.Skip("set DRIFTWATCH_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	os.MkdirAll(dir, 0o755)
	for i, e := range sampleEvents() {
		raw := EncodeRecord(e, testClock)
		body := "go test fuzz v1\n[]byte(" + quoteBytes(raw) + ")\n"
		os.WriteFile(filepath.Join(dir, "seed-"+e.Type()+"-"+string(rune('a'+i))), []byte(body), 0o644)
	}
}

func quoteBytes(b []byte) string {
	const hex = "0123456789abcdef"
	out := []byte{'"'}
	for _, c := range b {
		out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
	}
	return string(append(out, '"'))
}
