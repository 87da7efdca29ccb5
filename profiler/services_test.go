package profiler

import (
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// Name templates: the false alarms of file names learned too literally on
// real services (issue 14): short hex cache keys, sequence numbers, 3-digit
// pids. Each case learns the training names in one directory and then asks
// for the test name's feature.
func TestNameTemplates(t *testing.T) {
	for _, tc := range []struct {
		name  string
		train []string
		test  string
		want  string // the test name's feature text
		known bool   // the test feature is known after training
	}{
		{"short hex cache keys", []string{"/var/cache/app/cache-2e42fb", "/var/cache/app/cache-9c01aa"},
			"/var/cache/app/cache-7b3d1e", "/var/cache/app/cache-<id> [create]", true},
		{"hex key with a long digit run", []string{"/var/cache/app/cache-2e42fb", "/var/cache/app/cache-1234ac"},
			"/var/cache/app/cache-55667a", "/var/cache/app/cache-<id> [create]", true},
		{"AOF sequence numbers", []string{"/data/appendonly/appendonly.aof.1.incr.aof", "/data/appendonly/appendonly.aof.2.incr.aof"},
			"/data/appendonly/appendonly.aof.3.incr.aof", "/data/appendonly/appendonly.aof.<id>.incr.aof [create]", true},
		{"3-digit pid", []string{"/data/temp-123.rdb", "/data/temp-456.rdb"},
			"/data/temp-982.rdb", "/data/temp-<id>.rdb [create]", true},
		{"directory names", []string{"/tmp/pip-build-3fa9/x", "/tmp/pip-build-77b1/x"},
			"/tmp/pip-build-0c2e/x", "/tmp/pip-build-<id>/x [create]", true},
		{"one name read is no template", []string{"/data/appendonly/appendonly.aof.1.incr.aof [read]"},
			"/data/appendonly/appendonly.aof.2.incr.aof", "/data/appendonly/appendonly.aof.2.incr.aof [create]", false},
		{"one name the container created is a template", []string{"/data/temp-rewriteaof-bg-123.aof"},
			"/data/temp-rewriteaof-bg-982.aof", "/data/temp-rewriteaof-bg-<id>.aof [create]", true},
		{"a created name without a number is no template", []string{"/tmp/kworkerd"},
			"/tmp/kworkerd2", "/tmp/kworkerd2 [create]", false},
		{"other directory", []string{"/data/temp-123.rdb", "/data/temp-456.rdb"},
			"/etc/temp-982.rdb", "/etc/temp-982.rdb [create]", false},
		{"a hex key without a digit fits the learned template", []string{"/var/cache/app/cache-2e42fb", "/var/cache/app/cache-9c01aa"},
			"/var/cache/app/cache-acebfe", "/var/cache/app/cache-<id> [create]", true},
		{"a hex key without a digit learned before the template", []string{"/var/cache/app/cache-acebfe [read]", "/var/cache/app/cache-2e42fb [read]", "/var/cache/app/cache-9c01aa [read]"},
			"/var/cache/app/cache-ffdbda", "/var/cache/app/cache-<id> [create]", false},
		{"hex letters are no template of their own", []string{"/var/cache/app/cache-acebfe", "/var/cache/app/cache-ffdbda"},
			"/var/cache/app/cache-bbdacf", "/var/cache/app/cache-bbdacf [create]", false},
		{"mixed-case letters are no hex key", []string{"/var/cache/app/cache-2e42fb", "/var/cache/app/cache-9c01aa"},
			"/var/cache/app/cache-FacadeB", "/var/cache/app/cache-FacadeB [create]", false},
		{"words are not slots", []string{"/etc/passwd", "/etc/group"},
			"/etc/shadow", "/etc/shadow [create]", false},
		{"versions of one library stay apart from other libraries", []string{"/lib/libssl.so.3 [read]", "/lib/libcrypto.so.3 [read]"},
			"/lib/libssl.so.1", "/lib/libssl.so.1 [create]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(nil, Config{})
			c := testCtr("c1", "", "", "")
			for i, n := range tc.train {
				flags := uint32(oCreat | oWronly)
				if strings.HasSuffix(n, " [read]") {
					n, flags = strings.TrimSuffix(n, " [read]"), 0
				}
				p.Learn(openEv(c, t0+int64(i), n, flags))
			}
			e := openEv(testCtr("c2", "", "", ""), t0+100, tc.test, oCreat|oWronly)
			e.Container = c
			p.View(e, func(pr *Profile, fs []Feature) {
				got := string(fs[0].Text)
				if got != tc.want {
					t.Fatalf("feature %q, want %q", got, tc.want)
				}
				if known := pr.Feature(CatFile, fs[0].Hash) != nil; known != tc.known {
					t.Errorf("known = %v, want %v", known, tc.known)
				}
			})
		})
	}
}

func TestNameTemplatesMergeAndPersist(t *testing.T) {
	p := New(nil, Config{})
	c := testCtr("c1", "", "", "")
	for i, n := range []string{"temp-123.rdb", "temp-123.rdb", "temp-456.rdb", "dump.rdb"} {
		p.Learn(openEv(c, t0+int64(i), "/data/"+n, 0))
	}
	var enc []byte
	p.WithProfile("c1", func(pr *Profile) {
		var got []string
		pr.EachFeature(CatFile, func(_ uint64, f *FeatureStat) { got = append(got, f.Text) })
		if strings.Join(got, "|") != "/data/dump.rdb [read]|/data/temp-<id>.rdb [read]" {
			t.Fatalf("features %q", got)
		}
		if f := pr.Feature(CatFile, HashString("/data/temp-<id>.rdb [read]")); f.Count != 3 {
			t.Errorf("merged count %d, want 3", f.Count)
		}
		enc = encodeProfile(nil, pr)
	})
	pr, err := decodeProfile(enc)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl []string
	for _, s := range pr.Collapsed() {
		tmpl = append(tmpl, s)
	}
	sort.Strings(tmpl)
	if strings.Join(tmpl, "|") != "/data/temp-<id>.rdb" {
		t.Errorf("templates after decode %q", tmpl)
	}
	x := NewExtractor(GenConfig{})
	if got := string(x.Extract(openEv(c, t0, "/data/temp-31337.rdb", 0), pr.Collapsed())[0].Text); got != "/data/temp-<id>.rdb [read]" {
		t.Errorf("after decode: %q", got)
	}
	// Turned off: names stay literal.
	q := New(nil, Config{Gen: GenConfig{NoTemplates: true}})
	q.Learn(openEv(c, t0, "/data/temp-123.rdb", 0))
	q.Learn(openEv(c, t0+1, "/data/temp-456.rdb", 0))
	q.WithProfile("c1", func(pr *Profile) {
		if pr.NumFeatures() != 2 {
			t.Errorf("NoTemplates: %d features, want 2", pr.NumFeatures())
		}
	})
}

func TestAppendSkeleton(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		slot     bool
	}{
		{"cache-2e42fb", "cache-<id>", true},
		{"cache-<n>ac", "cache-<id>", true},
		{"appendonly.aof.2.incr.aof", "appendonly.aof.<id>.incr.aof", true},
		{"temp-982.rdb", "temp-<id>.rdb", true},
		{"python3.11", "python<id>.<id>", true},
		{"app-<n>.log", "app-<id>.log", true},
		{"tmp.<rand>", "tmp.<rand>", false},
		{"passwd", "passwd", false},
		{"<n>", "", false},
		{"<hex>", "", false},
		{"temp-<id>.rdb", "temp-<id>.rdb", true},
	} {
		got, slot := AppendSkeleton(nil, []byte(tc.in))
		if string(got) != tc.want || slot != tc.slot {
			t.Errorf("AppendSkeleton(%q) = %q, %v; want %q, %v", tc.in, got, slot, tc.want, tc.slot)
		}
	}
}

// Files the container created itself: reading, rewriting and deleting them
// (a report gzipped, a temp file renamed into place) are one novelty, the
// creation, not four; executing one keeps its path.
func TestOwnFiles(t *testing.T) {
	p := New(nil, Config{})
	c := testCtr("c1", "", "", "")
	var got []string
	see := func(e *event.Enriched) {
		p.Learn(e)
		p.View(e, func(_ *Profile, fs []Feature) { got = append(got, texts(fs)...) })
	}
	see(openEv(c, t0, "/etc/hostname", 0))
	see(openEv(c, t0+1, "/srv/reports/report-17.csv", oCreat|oWronly|oTrunc))
	see(openEv(c, t0+2, "reports/report-17.csv", 0)) // relative to /srv
	see(sysEv(c, t0+3, event.SysUnlink, func(e *event.Event) { e.Path = []byte("/srv/reports/report-17.csv") }))
	see(openEv(c, t0+4, "/tmp/x", oCreat|oWronly|oExcl))
	see(sysEv(c, t0+5, event.SysExecve, func(e *event.Event) { e.Path = []byte("/tmp/x") }))
	see(sysEv(c, t0+6, event.SysRename, func(e *event.Event) { e.Path, e.Path2 = []byte("/tmp/x"), []byte("/etc/cron.d/x") }))
	see(openEv(c, t0+7, "/etc/cron.d/x", 0))
	see(openEv(c, t0+8, "/etc/hostname", 0))
	// Appending (">>", O_CREAT|O_APPEND) does not make a file one's own
	// (scored, not learned: a learned create would make the profile know
	// that the image's containers create /etc/passwd).
	view := func(e *event.Enriched) {
		p.View(e, func(_ *Profile, fs []Feature) { got = append(got, texts(fs)...) })
	}
	view(openEv(c, t0+10, "/etc/passwd", oCreat|oWronly|0x400))
	view(openEv(c, t0+11, "/etc/passwd", 0))
	// Another container of the image did not create the report, but the
	// profile knows the image's containers create that path: its read is
	// the container's own file too (the creation may predate the agent).
	c2 := testCtr("c1", "", "", "")
	see(openEv(c2, t0+9, "/srv/reports/report-17.csv", 0))
	see(openEv(c2, t0+12, "/etc/hostname", 0))
	// A file renamed into place from one's own (an atomic write) was
	// created by the image's containers too.
	see(openEv(c2, t0+13, "/etc/cron.d/x", 0))
	want := []string{
		"file /etc/hostname [read]",
		"file /srv/reports/report-<id>.csv [create]",
		"file /srv/reports/<own> [read]",
		"file /srv/reports/<own> [delete]",
		"file /tmp/x [create]",
		"file /tmp/x [exec]",
		"file /tmp/<own> [delete]",
		"file /etc/cron.d/x [create]",
		"file /etc/cron.d/<own> [read]",
		"file /etc/hostname [read]",
		"file /etc/passwd [create]",
		"file /etc/passwd [read]",
		"file /srv/reports/<own> [read]",
		"file /etc/hostname [read]",
		"file /etc/cron.d/<own> [read]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("features:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Outbound peers: only connections the container opened. Replies on
// accepted sockets (send/sendto on a TCP connection a client opened) and a
// UDP service answering from its port are not peers.
func TestOutboundPeersOnly(t *testing.T) {
	c := testCtr("c1", "", "", "")
	x := NewExtractor(GenConfig{})
	net := func(nr uint16, proto uint8, src, dst string, fd *event.FD) *event.Enriched {
		e := sysEv(c, t0, nr, func(e *event.Event) {
			e.Family, e.Proto, e.Dst = event.AFInet, proto, netip.MustParseAddrPort(dst)
			if src != "" {
				e.Src = netip.MustParseAddrPort(src)
			}
		})
		e.FD = fd
		return e
	}
	for _, tc := range []struct {
		name string
		e    *event.Enriched
		want string
	}{
		{"connect", net(event.SysConnect, event.ProtoTCP, "", "10.0.0.7:5432", nil), "network tcp 10.0.0.7 :5432"},
		{"tcp reply on accepted socket", net(event.SysSendto, event.ProtoTCP, "127.0.0.1:5432", "127.0.0.1:41234", &event.FD{Type: event.FDIPv4, Server: true}), ""},
		{"tcp send, socket unknown", net(event.SysSendto, event.ProtoTCP, "", "127.0.0.1:41234", nil), ""},
		{"udp datagram from an ephemeral port", net(event.SysSendto, event.ProtoUDP, "10.0.0.2:45678", "10.0.0.53:53", nil), "network udp 10.0.0.53 :53"},
		{"udp datagram, local end unknown", net(event.SysSendmsg, event.ProtoUDP, "", "198.51.100.9:3333", nil), "network udp 198.51.100.9 :3333"},
		{"udp service reply", net(event.SysSendto, event.ProtoUDP, "10.0.0.2:53", "10.0.0.9:45678", nil), ""},
		{"udp on connected socket", net(event.SysSendto, event.ProtoUDP, "", "10.0.0.53:53", &event.FD{Type: event.FDIPv4, Connected: true}), ""},
	} {
		got := strings.Join(texts(x.Extract(tc.e, nil)), "|")
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// unlinkat and mkdirat resolve a relative name against their directory
// descriptor: gzip removes its input with unlinkat(dirfd, "access.log.1")
// after rotating logs, which was learned as "/access.log.1 [delete]" (the
// exec session's cwd is /), a new top-level name at every rotation
// (containers-v2 dev).
func TestDirfdRelativePaths(t *testing.T) {
	c := testCtr("c1", "", "", "")
	x := NewExtractor(GenConfig{})
	dir := &event.FD{Num: 4, Type: event.FDDirectory, Name: "/var/log/nginx"}
	for _, tc := range []struct {
		name string
		nr   uint16
		fd   int32
		want string
	}{
		{"unlinkat dirfd", event.SysUnlinkat, 4, "/var/log/nginx/access.log.1 [delete]"},
		{"unlinkat AT_FDCWD", event.SysUnlinkat, -100, "/srv/access.log.1 [delete]"},
		{"mkdirat dirfd", event.SysMkdirat, 4, "/var/log/nginx/access.log.1 [create]"},
		{"unknown descriptor", event.SysUnlinkat, 9, "/srv/access.log.1 [delete]"},
	} {
		e := sysEv(c, t0, tc.nr, func(e *event.Event) { e.Path, e.Fd = []byte("access.log.1"), tc.fd })
		e.Proc.FDs = map[int32]*event.FD{4: dir}
		if got := texts(x.Extract(e, nil)); len(got) != 1 || got[0] != "file "+tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
