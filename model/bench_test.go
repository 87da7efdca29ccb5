package model

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// webServerEvents is a typical web-server container's event mix: nginx
// workers reading static files and config, writing logs, accepting on :80
// and connecting to an upstream, plus the occasional exec of a helper.
func webServerEvents(n int) []*event.Enriched {
	ctr := &event.Container{ContainerInfo: event.ContainerInfo{ID: "6f1e2d3c4b5a", Image: "nginx:1.27", ImageRepo: "nginx", ImageTag: "1.27", Namespace: "web", PodName: "nginx-0"}}
	master := &event.Process{Pid: 1, Exe: "/usr/sbin/nginx", Args: []string{"nginx", "-g", "daemon off;"}, Container: ctr}
	worker := &event.Process{Pid: 7, Exe: "/usr/sbin/nginx", Args: []string{"nginx: worker process"}, Parent: master, Container: ctr, Cwd: "/"}
	var out []*event.Enriched
	t := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; len(out) < n; i++ {
		t += int64(time.Millisecond)
		var ev *event.Event
		var fd *event.FD
		p := worker
		switch k := i % 20; {
		case k < 12:
			path := fmt.Sprintf("/usr/share/nginx/html/assets/page-%d.html", i%40)
			ev = &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Path: []byte(path), Flags: 0x80000, Ret: 9}
			fd = &event.FD{Num: 9, Type: event.FDFile, Name: path}
		case k < 14:
			ev = &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Path: []byte("/var/log/nginx/access.log"), Flags: 0x441, Ret: 4}
		case k < 15:
			ev = &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Path: []byte("/etc/nginx/conf.d/default.conf"), Ret: 5}
		case k < 18:
			ev = &event.Event{Kind: event.KindSyscall, Syscall: event.SysAccept4, Family: event.AFInet, Proto: event.ProtoTCP,
				Src: netip.MustParseAddrPort(fmt.Sprintf("10.1.0.%d:%d", i%200, 40000+i%1000)), Dst: netip.MustParseAddrPort("10.2.0.5:80"), Ret: 12}
		case k < 19:
			ev = &event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Family: event.AFInet, Proto: event.ProtoTCP,
				Dst: netip.MustParseAddrPort("10.3.0.9:8080"), Ret: -115}
		default:
			p = &event.Process{Pid: uint32(100 + i), Exe: "/usr/bin/logrotate", Args: []string{"logrotate", "/etc/logrotate.conf"}, Parent: master, Container: ctr}
			ev = &event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Exe: []byte(p.Exe), Argv: []byte("logrotate\x00/etc/logrotate.conf\x00")}
		}
		ev.Time, ev.Num, ev.Pid = t, uint64(i+1), p.Pid
		out = append(out, &event.Enriched{Event: ev, Proc: p, Container: ctr, FD: fd, Hostname: "node-1"})
	}
	return out
}

// BenchmarkScore scores a web server's events against its warm, detecting
// profile: the hot path of ModeDetect (extract, generalise, hash, look up,
// memoised surprise).
func BenchmarkScore(b *testing.B) {
	evs := webServerEvents(4000)
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	d := NewDetector(prof, Config{})
	for _, e := range evs {
		d.Handle(e, event.ModeLearn, nil)
	}
	prof.Finalize(false)
	emit := func(*event.Alert) { b.Fatal("anomaly on the learned workload") }
	for _, e := range evs { // warm the memo
		d.Handle(e, event.ModeDetect, emit)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		d.Handle(evs[i], event.ModeDetect, emit)
		i++
		if i == len(evs) {
			i = 0
		}
	}
	reportRates(b, cpuTime()-cpu0)
}

// cpuTime is the process's user+system CPU time: on a shared machine the
// events per CPU-second are the per-core throughput, wall time is not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRates(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkLearn is the learning hot path for the same workload.
func BenchmarkLearn(b *testing.B) {
	evs := webServerEvents(4000)
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	d := NewDetector(prof, Config{})
	for _, e := range evs {
		d.Handle(e, event.ModeLearn, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		d.Handle(evs[i], event.ModeLearn, nil)
		i++
		if i == len(evs) {
			i = 0
		}
	}
	reportRates(b, cpuTime()-cpu0)
}

// TestScoreAllocs keeps the detect hot path allocation-free.
func TestScoreAllocs(t *testing.T) {
	evs := webServerEvents(400)
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	var scored int
	d := NewDetector(prof, Config{OnScore: func(*event.Enriched, float64) { scored++ }})
	for _, e := range evs {
		d.Handle(e, event.ModeLearn, nil)
	}
	prof.Finalize(false)
	for _, e := range evs {
		d.Handle(e, event.ModeDetect, nil)
	}
	i := 0
	if a := testing.AllocsPerRun(2000, func() {
		d.Handle(evs[i%len(evs)], event.ModeDetect, nil)
		i++
	}); a != 0 {
		t.Errorf("%v allocations per scored event, want 0", a)
	}
	if scored == 0 {
		t.Error("OnScore was never called")
	}
}
