package profiler

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()

func testCtr(id, image, repo, tag string) *event.Container {
	return &event.Container{ContainerInfo: event.ContainerInfo{ID: id, Image: image, ImageRepo: repo, ImageTag: tag}}
}

var shProc = &event.Process{Pid: 1, Exe: "/usr/bin/dash", Args: []string{"sh", "-c", "x"}}

func execEv(c *event.Container, t int64, exe string, argv ...string) *event.Enriched {
	p := &event.Process{Pid: 2, Exe: exe, Args: argv, Parent: shProc, Container: c}
	ev := &event.Event{Kind: event.KindExec, Time: t, Exe: []byte(exe), Argv: []byte(strings.Join(argv, "\x00") + "\x00")}
	return &event.Enriched{Event: ev, Proc: p, Container: c}
}

func sysEv(c *event.Container, t int64, nr uint16, mod func(*event.Event)) *event.Enriched {
	ev := &event.Event{Kind: event.KindSyscall, Syscall: nr, Time: t}
	if mod != nil {
		mod(ev)
	}
	return &event.Enriched{Event: ev, Proc: &event.Process{Pid: 3, Exe: "/usr/bin/app", Cwd: "/srv", Parent: shProc, Container: c}, Container: c}
}

func openEv(c *event.Container, t int64, path string, flags uint32) *event.Enriched {
	return sysEv(c, t, event.SysOpenat, func(e *event.Event) { e.Path, e.Flags, e.Ret = []byte(path), flags, 3 })
}

func texts(fs []Feature) []string {
	var out []string
	for i := range fs {
		out = append(out, fs[i].Cat.String()+" "+string(fs[i].Text))
	}
	return out
}

func TestExtract(t *testing.T) {
	c := testCtr("c1", "", "", "")
	x := NewExtractor(GenConfig{})
	tcp := func(dst string) func(*event.Event) {
		return func(e *event.Event) {
			e.Family, e.Proto, e.Dst = event.AFInet, event.ProtoTCP, netip.MustParseAddrPort(dst)
		}
	}
	for _, tc := range []struct {
		name string
		e    *event.Enriched
		want []string
	}{
		{"exec", execEv(c, t0, "/usr/bin/cat", "cat", "/etc/hostname"),
			[]string{"process /usr/bin/cat [cat <path>]", "edge /usr/bin/dash(sh) -> /usr/bin/cat"}},
		{"exec options", execEv(c, t0, "/usr/sbin/nginx", "nginx", "-g", "daemon off;", "--conf=/etc/x", "-p", "8080", "worker"),
			[]string{"process /usr/sbin/nginx [nginx -g <str> --conf=<v> -p <n> worker]", "edge /usr/bin/dash(sh) -> /usr/sbin/nginx"}},
		{"exec busybox", execEv(c, t0, "/bin/busybox", "/bin/id", "-u"),
			[]string{"process /bin/busybox [id -u]", "edge /usr/bin/dash(sh) -> /bin/busybox(id)"}},
		{"open read", openEv(c, t0, "/etc/passwd", 0x80000), []string{"file /etc/passwd [read]"}},
		{"open write", openEv(c, t0, "/var/log/app.log", 0x401), []string{"file /var/log/app.log [write]"}},
		{"open create", openEv(c, t0, "/tmp/x", 0x241), []string{"file /tmp/x [create]"}},
		{"open relative", openEv(c, t0, "conf/app.yaml", 0), []string{"file /srv/conf/app.yaml [read]"}},
		{"open failed", sysEv(c, t0, event.SysOpenat, func(e *event.Event) { e.Path, e.Ret = []byte("/nope"), -2 }), nil},
		{"unlink", sysEv(c, t0, event.SysUnlinkat, func(e *event.Event) { e.Path = []byte("/tmp/f") }), []string{"file /tmp/f [delete]"}},
		{"rename", sysEv(c, t0, event.SysRename, func(e *event.Event) { e.Path, e.Path2 = []byte("/a/x.tmp"), []byte("/a/x") }),
			[]string{"file /a/x.tmp [delete]", "file /a/x [write]"}},
		{"mkdir", sysEv(c, t0, event.SysMkdir, func(e *event.Event) { e.Path = []byte("/data/1700000000") }), []string{"file /data/<n> [create]"}},
		{"connect", sysEv(c, t0, event.SysConnect, tcp("10.0.0.7:443")), []string{"network tcp 10.0.0.7 :443"}},
		{"connect einprogress", sysEv(c, t0, event.SysConnect, func(e *event.Event) { tcp("10.0.0.7:443")(e); e.Ret = -115 }), []string{"network tcp 10.0.0.7 :443"}},
		{"connect unix", sysEv(c, t0, event.SysConnect, func(e *event.Event) { e.Family = event.AFUnix }), nil},
		{"accept", sysEv(c, t0, event.SysAccept4, func(e *event.Event) {
			e.Family, e.Proto, e.Src, e.Dst = event.AFInet, event.ProtoTCP, netip.MustParseAddrPort("10.0.0.9:40000"), netip.MustParseAddrPort("10.0.0.2:8080")
		}), []string{"listen tcp :8080 [accept]"}},
		{"bind ephemeral", sysEv(c, t0, event.SysBind, func(e *event.Event) {
			e.Family, e.Proto, e.Src = event.AFInet, event.ProtoUDP, netip.MustParseAddrPort("0.0.0.0:45000")
		}), []string{"listen udp :eph [bind]"}},
		{"setuid", sysEv(c, t0, event.SysSetuid, func(e *event.Event) { e.Mode = 0 }), []string{"privilege setuid uid=0"}},
		{"ptrace", sysEv(c, t0, event.SysPtrace, func(e *event.Event) { e.Flags = 16 }), []string{"privilege ptrace req=16"}},
		{"mount", sysEv(c, t0, event.SysMount, func(e *event.Event) { e.Path, e.Path2 = []byte("proc"), []byte("/host/proc") }), []string{"privilege mount /host/proc"}},
		{"finit_module", sysEv(c, t0, event.SysFinitModule, nil), []string{"privilege module_load"}},
		{"read ignored", sysEv(c, t0, event.SysRead, nil), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := texts(x.Extract(tc.e, nil))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChainLevels(t *testing.T) {
	x := NewExtractor(GenConfig{})
	f := x.Extract(openEv(testCtr("c", "", "", ""), t0, "/usr/lib/os-release", 0), nil)[0]
	var nodes []string
	for i := 0; i < f.Depth; i++ {
		nodes = append(nodes, string(f.NodeText(i)))
		if f.Chain[i] != HashString(string(f.NodeText(i))) {
			t.Errorf("chain[%d] hash mismatch", i)
		}
	}
	want := []string{"", "/usr/", "/usr/lib/", "/usr/lib/os-release"}
	if strings.Join(nodes, "|") != strings.Join(want, "|") {
		t.Errorf("chain %q, want %q", nodes, want)
	}
	if f.Hash != HashString("/usr/lib/os-release [read]") {
		t.Errorf("feature hash mismatch")
	}
}

func TestLearnCounts(t *testing.T) {
	p := New(nil, Config{})
	c := testCtr("c1", "", "", "")
	for i, path := range []string{"/etc/a", "/etc/a", "/etc/b", "/usr/x", "/etc/a"} {
		p.Learn(openEv(c, t0+int64(i), path, 0))
	}
	p.WithProfile("c1", func(pr *Profile) {
		root := pr.Node(CatFile, RootHash)
		if *root != (NodeStat{N: 5, N1: 1, K: 2}) { // children: /etc/ (4), /usr/ (1)
			t.Errorf("root = %+v", *root)
		}
		etc := pr.Node(CatFile, HashString("/etc/"))
		if *etc != (NodeStat{N: 4, N1: 1, K: 2}) { // /etc/a (3), /etc/b (1)
			t.Errorf("/etc/ = %+v", *etc)
		}
		f := pr.Feature(CatFile, HashString("/etc/a [read]"))
		if f == nil || f.Count != 3 || f.First != t0 || f.Last != t0+4 {
			t.Errorf("/etc/a = %+v", f)
		}
		st := pr.Stats(CatFile)
		if st.Observations != 5 || st.Distinct != 3 || st.Singletons != 2 {
			t.Errorf("stats = %+v", st)
		}
		if want := (2 + 0.5) / 6; st.UnseenMass != want {
			t.Errorf("unseen mass %v, want %v", st.UnseenMass, want)
		}
	})
}

func TestCollapse(t *testing.T) {
	p := New(nil, Config{Gen: GenConfig{CollapseThreshold: 3}})
	c := testCtr("c1", "", "", "")
	for i, name := range []string{"a", "b", "c", "b", "d"} {
		p.Learn(openEv(c, t0+int64(i), "/spool/"+name, 0))
	}
	p.Learn(openEv(c, t0+10, "/spool/zz", 0))
	p.WithProfile("c1", func(pr *Profile) {
		var got []string
		pr.EachFeature(CatFile, func(_ uint64, f *FeatureStat) { got = append(got, f.Text) })
		if strings.Join(got, "|") != "/spool/* [read]" {
			t.Fatalf("features after collapse: %q", got)
		}
		f := pr.Feature(CatFile, HashString("/spool/* [read]"))
		if f.Count != 6 || f.First != t0 || f.Last != t0+10 {
			t.Errorf("collapsed feature %+v", f)
		}
		if n := pr.Node(CatFile, HashString("/spool/")); n.N != 6 || n.K != 1 || n.N1 != 0 {
			t.Errorf("/spool/ node %+v", *n)
		}
		if _, ok := pr.Collapsed()[HashString("/spool/")]; !ok {
			t.Errorf("collapsed set %v", pr.Collapsed())
		}
	})
}

func TestLifecycle(t *testing.T) {
	cfg := Config{Window: time.Minute, MinWindowObs: 5, MinStable: 2 * time.Minute, MaxLearn: 10 * time.Minute,
		WarmUp: time.Second, WarmUpEvents: 3, UnseenBound: 0.05}
	t.Run("stabilises", func(t *testing.T) {
		p := New(nil, cfg)
		c := testCtr("c1", "", "", "")
		var stableAt int64
		for i := 0; i < 400; i++ {
			tm := t0 + int64(i)*int64(time.Second)
			p.Learn(openEv(c, tm, "/etc/"+string(rune('a'+i%4)), 0))
			p.WithProfile("c1", func(pr *Profile) {
				if stableAt == 0 && pr.State(CatFile) == StateStable {
					stableAt = tm
				}
			})
		}
		// Warm-up is the first second (event 0 only: WarmUp ends before
		// WarmUpEvents). Events 1..3 are new features; the 60 s window
		// (8 buckets of 7.5 s) holds at most 60 observations, so its rate
		// 3/obs only drops to ≤ 5% once the bucket holding them ages out,
		// 60 s after the bucket's aligned start (52.5..61 s after t0); it
		// must then stay there for 2 minutes.
		if stableAt == 0 {
			t.Fatal("never stable")
		}
		got := time.Duration(stableAt - t0)
		if got < 2*time.Minute+52*time.Second || got > 3*time.Minute+1*time.Second {
			t.Errorf("stable after %v, want 2m52s..3m01s", got)
		}
	})
	t.Run("unstable", func(t *testing.T) {
		cfg := cfg
		cfg.Gen.CollapseOverrides = map[string]int{"/data/": 0}
		p := New(nil, cfg)
		c := testCtr("c1", "", "", "")
		for i := 0; i < 700; i++ {
			p.Learn(openEv(c, t0+int64(i)*int64(time.Second), "/data/f"+string(rune('a'+i%26))+string(rune('a'+i/26)), 0))
		}
		p.WithProfile("c1", func(pr *Profile) {
			if s := pr.State(CatFile); s != StateUnstable {
				t.Errorf("state %s, want unstable", s)
			}
		})
	})
	t.Run("warm-up not counted", func(t *testing.T) {
		p := New(nil, cfg)
		c := testCtr("c1", "", "", "")
		for i := 0; i < 3; i++ {
			p.Learn(openEv(c, t0+int64(i), "/w", 0))
		}
		p.WithProfile("c1", func(pr *Profile) {
			st := pr.Stats(CatFile)
			if st.Observations != 3 || st.PostObservations != 0 {
				t.Errorf("warm-up counted: %+v", st)
			}
		})
	})
}

func TestKeyFor(t *testing.T) {
	for _, tc := range []struct {
		c    *event.Container
		want string
	}{
		{nil, "host"},
		{&event.Container{ContainerInfo: event.ContainerInfo{ID: "host"}}, "host"},
		{&event.Container{ContainerInfo: event.ContainerInfo{ID: "abc", ImageRepo: "nginx", ImageDigest: "sha256:00ff"}}, "nginx@sha256:00ff"},
		{&event.Container{ContainerInfo: event.ContainerInfo{ID: "abc", ImageRepo: "nginx", ImageTag: "1.27"}}, "nginx:1.27"},
		{&event.Container{ContainerInfo: event.ContainerInfo{ID: "abc", Image: "registry:5000/app:v2"}}, "registry:5000/app:v2"},
		{&event.Container{ContainerInfo: event.ContainerInfo{ID: "abc"}}, "abc"},
	} {
		if got := KeyFor(tc.c); got != tc.want {
			t.Errorf("KeyFor(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
	if got := repoOf(&event.Container{ContainerInfo: event.ContainerInfo{ID: "x", Image: "registry:5000/app:v2"}}); got != "registry:5000/app" {
		t.Errorf("repoOf = %q", got)
	}
}

func TestInheritance(t *testing.T) {
	p := New(nil, Config{})
	old := testCtr("c1", "nginx:1.0", "nginx", "1.0")
	for i := 0; i < 9; i++ {
		p.Learn(openEv(old, t0+int64(i), "/etc/nginx/nginx.conf", 0))
	}
	p.Learn(openEv(old, t0+20, "/etc/once", 0))
	nw := testCtr("c2", "nginx:1.1", "nginx", "1.1")
	p.Learn(openEv(nw, t0+100, "/etc/nginx/nginx.conf", 0))
	p.WithProfile("nginx:1.1", func(pr *Profile) {
		if pr == nil {
			t.Fatal("no new profile")
		}
		if pr.InheritedFrom != "nginx:1.0" {
			t.Errorf("inherited from %q", pr.InheritedFrom)
		}
		if f := pr.Feature(CatFile, HashString("/etc/nginx/nginx.conf [read]")); f == nil || f.Count != 6 { // round(9·0.5)=5, +1 learned
			t.Errorf("inherited count %+v", f)
		}
		if f := pr.Feature(CatFile, HashString("/etc/once [read]")); f == nil || f.Count != 1 {
			t.Errorf("discounted singleton %+v", f)
		}
		if pr.State(CatFile) != StateLearning {
			t.Errorf("inherited profile state %s", pr.State(CatFile))
		}
	})
}

func TestTooLarge(t *testing.T) {
	p := New(nil, Config{MaxFeatures: 3})
	c := testCtr("c1", "", "", "")
	for i := 0; i < 6; i++ {
		p.Learn(openEv(c, t0+int64(i), "/f"+string(rune('a'+i)), 0))
	}
	s := p.Profiles()[0]
	if !s.TooLarge || s.Features != 4 || p.Dropped() != 2 {
		t.Errorf("too large: %+v dropped %d", s, p.Dropped())
	}
}

func tcpTo(dst string) func(*event.Event) {
	return func(e *event.Event) {
		e.Family, e.Proto, e.Dst = event.AFInet, event.ProtoTCP, netip.MustParseAddrPort(dst)
	}
}
