package rules

import (
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// benchMix is an exec/open/connect-heavy mix of benign events from a
// containerised web service: none matches a rule.
func benchMix() []*event.Enriched {
	k := ctr()
	web := inCtr(lineage(proc("nginx", "/usr/sbin/nginx", "nginx", "-g", "daemon off;"), proc("containerd-shim", "/usr/bin/containerd-shim")), k)
	app := inCtr(lineage(proc("python3", "/usr/bin/python3", "python3", "app.py"), proc("gunicorn", "/usr/bin/gunicorn")), k)
	ls := inCtr(lineage(proc("ls", "/bin/ls", "ls", "-l", "/srv"), proc("python3", "/usr/bin/python3")), k)
	var mix []*event.Enriched
	for _, path := range []string{"/srv/www/index.html", "/usr/lib/python3/json/__init__.py", "/var/cache/app/x.db", "/srv/www/logo.png"} {
		mix = append(mix, openEv(web, path, 0), openEv(app, path, oCloexec))
	}
	mix = append(mix, openEv(app, "/var/cache/app/out.json", oWronly|oCreat|oTrunc))
	mix = append(mix, execEv(ls), execEv(inCtr(lineage(proc("date", "/bin/date"), proc("python3", "/usr/bin/python3")), k)))
	mix = append(mix, connectEv(app, "10.0.3.4", 5432), connectEv(app, "10.0.3.5", 6379), connectEv(web, "10.0.3.6", 8080))
	close := sysEv(app, event.SysClose, 0)
	mix = append(mix, close, sysEv(web, event.SysRead, 512))
	return mix
}

func BenchmarkEvalMix(b *testing.B) {
	rs, _, err := Load([]string{sharedRules(b)}, Options{IncludeDefault: true, Users: testUsers})
	if err != nil {
		b.Fatal(err)
	}
	mix := benchMix()
	for _, e := range mix {
		if got := rs.Match(e); len(got) != 0 {
			b.Fatalf("benchmark event %s %s matched %v", e.Type(), e.Proc.Comm, got)
		}
	}
	emit := func(*event.Alert) { b.Fatal("unexpected alert") }
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		rs.Eval(mix[i%len(mix)], emit)
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// On a shared, loaded machine wall time overstates the cost; CPU time
	// consumed by this single-goroutine loop is the per-core figure.
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkEvalMatch(b *testing.B) {
	rs, _, err := Load([]string{sharedRules(b)}, Options{IncludeDefault: true, Users: testUsers})
	if err != nil {
		b.Fatal(err)
	}
	e := catShadow()
	n := 0
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rs.Eval(e, func(*event.Alert) { n++ })
	}
	if n == 0 {
		b.Fatal("no alert")
	}
}

func TestEvalNoMatchAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation check is not short")
	}
	rs, _, err := Load([]string{sharedRules(t)}, Options{IncludeDefault: true, Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	mix := benchMix()
	for _, e := range mix {
		rs.Eval(e, func(*event.Alert) {}) // warm caches (user tables, pool)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		rs.Eval(mix[i%len(mix)], func(*event.Alert) { t.Fatal("unexpected alert") })
		i++
	})
	if allocs != 0 {
		t.Errorf("Eval allocated %.2f times per event with no match", allocs)
	}
}

var _ = testutil.SharedDir
