package lidds

import (
	"archive/zip"
	"bufio"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// readAll drains a reader, returning clones of its events.
func readAll(t *testing.T, r *Reader) []*event.Event {
	t.Helper()
	var out []*event.Event
	var ev event.Event
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Clone())
	}
}

func zipDir(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tiny.zip")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range []string{"tiny.sc", "tiny.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(name)
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return out
}

func TestTiny2021(t *testing.T) {
	dir := filepath.Join("testdata", "rec2021")
	for _, path := range []string{dir, filepath.Join(dir, "tiny.sc"), zipDir(t, dir)} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if !Detect(path) {
				t.Fatalf("Detect(%s) = false", path)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			evs := readAll(t, r)
			st := r.Stats()
			want := Stats{Lines: 12, Pairs: 5, OrphanExits: 1, OrphanEnters: 1, AttackLines: 4, Events: 6}
			if st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
			if len(evs) != 6 {
				t.Fatalf("%d events", len(evs))
			}
			if m := r.Meta(); m.ExploitNs != 1000000000000002100 || !m.Exploit || m.Victim != "victimc" || m.Image != "victim_tiny" {
				t.Fatalf("meta %+v", m)
			}
			l := r.Labels()
			if len(l.Attacks) != 1 || l.Attacks[0].StartNs != 1000000000000002100 || l.Attacks[0].Name != "victim_tiny" {
				t.Fatalf("labels %v", l)
			}
			// Event 0: epoll_wait exit without enter, on thread 51.
			if e := evs[0]; e.Type() != "epoll_wait" || e.Tid != 51 || e.Pid != 50 || e.Ret != 1 || e.Time != 1000000000000000100 {
				t.Fatalf("orphan exit event %+v", e)
			}
			acc := evs[1]
			if acc.Type() != "accept" || acc.Ret != 12 || acc.Proto != event.ProtoTCP || acc.Family != event.AFInet ||
				acc.Src != netip.MustParseAddrPort("10.0.0.3:50140") || acc.Dst != netip.MustParseAddrPort("10.0.0.21:443") ||
				acc.Time != 1000000000000000300 || acc.CommString() != "apache2" || acc.Uid != 33 {
				t.Fatalf("accept event %+v", acc)
			}
			op := evs[2]
			if op.Type() != "open" || op.Ret != 13 || string(op.Path) != "/etc/passwd" || op.Flags != 0x80000 { // sysdig 4097 = O_RDONLY|O_CLOEXEC
				t.Fatalf("open event %+v", op)
			}
			rd := evs[3]
			if rd.Type() != "read" || rd.Fd != 13 || rd.Ret != -11 || !rd.Failed() {
				t.Fatalf("read event %+v", rd)
			}
			rn := evs[4]
			if rn.Type() != "rename" || string(rn.Path) != "/tmp/a" || string(rn.Path2) != "/var/www/b" {
				t.Fatalf("rename event %+v", rn)
			}
			sw := evs[5]
			if sw.Syscall < ReservedBase || sw.Syscall != SyscallNumber("switch") || sw.Tid != 51 {
				t.Fatalf("switch event %+v", sw)
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].Num != evs[i-1].Num+1 || evs[i].Time < evs[i-1].Time {
					t.Fatalf("events out of order at %d", i)
				}
			}
		})
	}
}

func TestSyscallNumberReserved(t *testing.T) {
	if SyscallNumber("read") != 0 || SyscallNumber("openat") != event.SysOpenat {
		t.Fatal("known names must keep x86_64 numbers")
	}
	a, b := SyscallNumber("procexit"), SyscallNumber("signaldeliver")
	if a < ReservedBase || b < ReservedBase || a == b || a != SyscallNumber("procexit") {
		t.Fatalf("reserved numbers %d %d", a, b)
	}
}

func Test2019(t *testing.T) {
	r, err := Open(filepath.Join("testdata", "rec2019", "bad_run.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	evs := readAll(t, r)
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	first := int64((21*3600 + 17*60 + 19) * 1e9)
	if m := r.Meta(); !m.Exploit || m.ExploitNs != first+2e9 || m.Edition != 2019 {
		t.Fatalf("meta %+v", m)
	}
	if st := r.Stats(); st.Pairs != 3 || st.AttackLines != 2 {
		t.Fatalf("stats %+v", st)
	}
	if evs[0].Time != first+500 || evs[0].Pid != 17213 || evs[0].Fd != 3 || evs[0].Ret != 10 {
		t.Fatalf("event %+v", evs[0])
	}
	if !Detect(filepath.Join("testdata", "rec2019", "bad_run.txt")) || Detect(filepath.Join("testdata", "rec2019", "runs.csv")) {
		t.Fatal("Detect on 2019 files")
	}
	n, err := Open(filepath.Join("testdata", "rec2019", "normal_run.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Meta().Exploit || len(n.Labels().Attacks) != 0 {
		t.Fatal("normal run labelled as attack")
	}
}

func TestMalformed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"exploit":false}`), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.sc"), []byte("1 2 3 comm 4 read > fd=1\nnotanumber 2 3 c 4 read <\n"), 0o644)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ev event.Event
	err = r.Next(&ev)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("error %v, want line 2 timestamp", err)
	}
	if _, err := ParseMeta(strings.NewReader(`{"exploit":true,"time":{"exploit":[]}}`), "m.json"); err == nil {
		t.Fatal("exploit without time accepted")
	}
}

// TestSharedSample checks the real LID-DS 2021 recording in ../shared.
func TestSharedSample(t *testing.T) {
	zipPath := filepath.Join(testutil.SharedDir(t), "datasets", "lid-ds-2021-sample", "aggressive_nightingale_1018.zip")
	if !Detect(zipPath) {
		t.Fatal("sample not detected as LID-DS")
	}
	r, err := Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ev event.Event
	var attackEvents, n int
	var last int64
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if ev.Time < last {
			t.Fatalf("event %d goes back in time", n)
		}
		last = ev.Time
		if r.Labels().AttackTime(ev.Time, 0) {
			attackEvents++
		}
	}
	st := r.Stats()
	want := Stats{Lines: 23468, Pairs: 11727, OrphanExits: 7, OrphanEnters: 7, AttackLines: 17255, Events: 11734}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	if n != 11734 {
		t.Fatalf("%d events", n)
	}
	if m := r.Meta(); m.ExploitNs != 1631078877513988000 || m.Image != "victim_bruteforce" {
		t.Fatalf("meta %+v", m)
	}
	if attackEvents == 0 || attackEvents >= n {
		t.Fatalf("%d of %d events labelled attack", attackEvents, n)
	}
}

func BenchmarkSharedSample(b *testing.B) {
	zipPath := filepath.Join(testutil.SharedDir(b), "datasets", "lid-ds-2021-sample", "aggressive_nightingale_1018.zip")
	var ev event.Event
	b.ReportAllocs()
	for b.Loop() {
		r, err := Open(zipPath)
		if err != nil {
			b.Fatal(err)
		}
		for r.Next(&ev) == nil {
		}
		r.Close()
	}
}

func TestLinuxFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nr    uint16
		ppm   uint32
		names string
		want  uint32
	}{
		{"open rdonly cloexec", event.SysOpen, 4097, "O_RDONLY|O_CLOEXEC", 0x80000},
		{"open rdonly", event.SysOpenat, 1, "O_RDONLY", 0},
		{"open wronly creat trunc", event.SysOpenat, 2 | 4 | 256, "O_WRONLY|O_CREAT|O_TRUNC", 0x1 | 0x40 | 0x200},
		{"open rdwr creat excl", event.SysOpen, 39, "O_EXCL|O_CREAT|O_RDWR", 0x2 | 0x40 | 0x80},
		{"open append directory", event.SysOpenat, 2 | 8 | 1024, "O_WRONLY|O_APPEND|O_DIRECTORY", 0x1 | 0x400 | 0x10000},
		{"mmap private anonymous", sysMmap, 10, "MAP_PRIVATE|MAP_ANONYMOUS", 0x22},
		{"mmap shared", sysMmap, 1, "MAP_SHARED", 0x1},
		{"clone child tid (pidns bit dropped)", event.SysClone, 562036736, "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID", 0x01200000},
		{"clone thread vm", event.SysClone, 1<<13 | 1<<15 | 1<<11, "CLONE_THREAD|CLONE_VM|CLONE_SIGHAND", 0x10000 | 0x100 | 0x800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LinuxFlags(tc.nr, tc.ppm); got != tc.want {
				t.Errorf("LinuxFlags(%d, %d) = %#x, want %#x", tc.nr, tc.ppm, got, tc.want)
			}
			if got, ok := LinuxFlagsFromNames(tc.nr, tc.names); !ok || got != tc.want {
				t.Errorf("LinuxFlagsFromNames(%q) = %#x %v, want %#x", tc.names, got, ok, tc.want)
			}
		})
	}
	// Unmapped syscalls keep the recorded value.
	if got := LinuxFlags(event.SysAccept4, 2048); got != 2048 {
		t.Errorf("accept4 flags %d", got)
	}
}

// TestSharedSampleFlagsAndContainer checks every mapped flags= argument of
// the real recording against the flag names sysdig printed beside it, and
// that events are attributed to the victim container of the metadata.
func TestSharedSampleFlagsAndContainer(t *testing.T) {
	zipPath := filepath.Join(testutil.SharedDir(t), "datasets", "lid-ds-2021-sample", "aggressive_nightingale_1018.zip")
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	checked := 0
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".sc") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 7 {
				continue
			}
			nr := SyscallNumber(fields[5])
			for _, a := range fields[7:] {
				v, ok := strings.CutPrefix(a, "flags=")
				if !ok || flagTable(nr) == nil {
					continue
				}
				num, names, _ := strings.Cut(strings.TrimSuffix(v, ")"), "(")
				n, err := strconv.ParseUint(num, 10, 32)
				if err != nil || names == "" {
					continue
				}
				want, ok := LinuxFlagsFromNames(nr, names)
				if !ok {
					t.Errorf("%s: unknown flag name in %q", fields[5], v)
					continue
				}
				if got := LinuxFlags(nr, uint32(n)); got != want {
					t.Errorf("%s flags=%s: numeric %#x, by name %#x", fields[5], v, got, want)
				}
				checked++
			}
		}
		rc.Close()
	}
	if checked < 1000 {
		t.Fatalf("only %d flag arguments checked", checked)
	}
	r, err := Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const victim = "06cfe25a36bff1e1"
	if m := r.Meta(); m.Victim != victim || m.VictimIP != "192.168.240.21" {
		t.Fatalf("meta victim %q %q", m.Victim, m.VictimIP)
	}
	s := r.Snapshot()
	if len(s.Containers) != 1 || s.Containers[0].ID != victim || s.Containers[0].Image != "victim_bruteforce" || s.Containers[0].CgroupID != CgroupID {
		t.Fatalf("snapshot containers %+v", s.Containers)
	}
	var ev event.Event
	for r.Next(&ev) == nil {
		if ev.CgroupID != CgroupID || ev.LoginUID != 0xffffffff {
			t.Fatalf("event %d: cgroup %d loginuid %d", ev.Num, ev.CgroupID, ev.LoginUID)
		}
		if ev.Type() == "open" && ev.Flags&0x3 != 0 && strings.HasPrefix(string(ev.Path), "/etc/") {
			t.Errorf("open of %s for writing (flags %#x)", ev.Path, ev.Flags)
		}
	}
}

// TestArgsByTable checks that arguments land in the Event field the
// syscall table names: setgid's gid (missing before the table), setresuid's
// ids, symlink's target and link path, ptrace's request.
func TestArgsByTable(t *testing.T) {
	type kv struct{ k, v string }
	tests := []struct {
		name  string
		nr    uint16
		args  []kv
		check func(e *event.Event) bool
	}{
		{"setuid", event.SysSetuid, []kv{{"uid", "1000(bob)"}}, func(e *event.Event) bool { u, ok := e.UID(); return ok && u == 1000 }},
		{"setgid", event.SysSetgid, []kv{{"gid", "50"}}, func(e *event.Event) bool { g, ok := e.GID(); return ok && g == 50 }},
		{"setresuid", event.SysSetresuid, []kv{{"ruid", "7"}, {"euid", "8"}, {"suid", "9"}}, func(e *event.Event) bool {
			u, ok := e.UID()
			return ok && u == 7 && e.Raw[1] == 8 && e.Raw[2] == 9
		}},
		{"symlink", event.SysSymlinkat, []kv{{"target", "/etc/shadow"}, {"linkpath", "/tmp/x"}}, func(e *event.Event) bool {
			return string(e.Path) == "/etc/shadow" && string(e.Path2) == "/tmp/x"
		}},
		{"openat", event.SysOpenat, []kv{{"name", "/etc/passwd(/etc/passwd)"}, {"mode", "0"}}, func(e *event.Event) bool {
			m, ok := e.FileMode()
			return ok && m == 0 && string(e.Path) == "/etc/passwd"
		}},
		{"ptrace", event.SysPtrace, []kv{{"request", "16(PTRACE_ATTACH)"}, {"pid", "42"}}, func(e *event.Event) bool { return e.Flags == 16 && e.Arg3 == 42 }},
		{"unknown name ignored", event.SysSetgid, []kv{{"bogus", "5"}}, func(e *event.Event) bool { g, _ := e.GID(); return g == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Reader
			ev := &event.Event{Kind: event.KindSyscall, Syscall: tt.nr}
			for _, a := range tt.args {
				r.arg(ev, []byte(a.k), []byte(a.v), true)
			}
			if !tt.check(ev) {
				t.Errorf("event %+v", ev)
			}
		})
	}
}
