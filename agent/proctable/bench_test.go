package proctable

import (
	"net/netip"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// BenchmarkApply measures the table's per-event cost on a mix of opens,
// connects and reads across 100 processes, with fork/exit churn.
func BenchmarkApply(b *testing.B) {
	tab := New(Options{})
	for pid := uint32(100); pid < 200; pid++ {
		tab.Apply(&event.Event{Kind: event.KindExec, Pid: pid, Ppid: 1, Exe: []byte("/usr/bin/app"), Argv: []byte("app"), Cwd: []byte("/srv")}, nil)
	}
	open := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Fd: -100, Path: []byte("data/file.json"), Ret: 5}
	conn := &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Fd: 6, Family: event.AFInet, Proto: event.ProtoTCP,
		Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dst: netip.MustParseAddrPort("10.0.0.1:443")}
	read := &event.Event{Kind: event.KindSyscall, Syscall: event.SysRead, Fd: 5}
	fork := &event.Event{Kind: event.KindFork}
	exit := &event.Event{Kind: event.KindExit}
	evs := []*event.Event{open, read, conn, read}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pid := uint32(100 + i%100)
		if i%64 == 0 {
			fork.Pid, fork.ChildPid, fork.Time = pid, uint32(1000+i%5000), int64(i)
			tab.Apply(fork, nil)
			exit.Pid, exit.Time = fork.ChildPid, int64(i)
			tab.Apply(exit, nil)
			continue
		}
		e := evs[i%len(evs)]
		e.Pid, e.Time = pid, int64(i)
		tab.Apply(e, nil)
	}
}
