package profiler

import (
	"net/netip"
	"testing"
)

func TestGeneralizePath(t *testing.T) {
	g := DefaultGenConfig()
	for _, tc := range []struct{ in, want string }{
		{"/etc/passwd", "/etc/passwd"},
		{"/proc/1234/status", "/proc/<pid>/status"},
		{"/proc/self/status", "/proc/self/status"},
		{"/proc/1/task/1/stat", "/proc/<pid>/task/<n>/stat"},
		{"/dev/pts/3", "/dev/pts/<n>"},
		{"/var/lib/docker/containers/3f4c2b9a7d61e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718/hostname", "/var/lib/docker/containers/<hex>/hostname"},
		{"/run/secrets/123e4567-e89b-12d3-a456-426614174000.json", "/run/secrets/<uuid>.json"},
		{"/tmp/tmp.k3JdX9aQzP", "/tmp/tmp.<rand>"},
		{"/var/log/app-20260102.log", "/var/log/app-<n>.log"},
		{"/etc/redis/redis.conf.KlrOMQ", "/etc/redis/redis.conf.<rand>"},
		{"/etc/redis/redis.conf.k26QP1", "/etc/redis/redis.conf.<rand>"},
		{"/srv/app/Readme.md", "/srv/app/Readme.md"},
		{"/srv/app/app.config", "/srv/app/app.config"},
		{"/srv/app/x.README", "/srv/app/x.README"},
		{"/var/log/core.12345", "/var/log/core.<n>"},
		{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"},
		{"/usr/lib/python3.11/os.py", "/usr/lib/python3.11/os.py"},
		{"/a/./b/../c//d", "/a/c/d"},
		{"/../etc/shadow", "/etc/shadow"},
		{"/", "/"},
		{"", "?"},
		{"relative/file", "/relative/file"},
	} {
		if got := g.GeneralizePath(tc.in); got != tc.want {
			t.Errorf("GeneralizePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPortsAndAddrs(t *testing.T) {
	g := DefaultGenConfig()
	for _, tc := range []struct {
		port uint16
		want string
	}{{443, "443"}, {32767, "32767"}, {32768, "eph"}, {60999, "eph"}, {65535, "eph"}} {
		if got := string(g.AppendPort(nil, tc.port)); got != tc.want {
			t.Errorf("port %d = %q, want %q", tc.port, got, tc.want)
		}
	}
	g.IPv4Prefix, g.IPv6Prefix = 24, 64
	for _, tc := range []struct{ in, want string }{
		{"10.1.2.3", "10.1.2.0/24"},
		{"::ffff:10.1.2.3", "10.1.2.0/24"},
		{"2001:db8::1", "2001:db8::/64"},
	} {
		if got := string(g.AppendAddr(nil, netip.MustParseAddr(tc.in))); got != tc.want {
			t.Errorf("addr %s = %q, want %q", tc.in, got, tc.want)
		}
	}
	g.IPv4Prefix = 0
	if got := string(g.AppendAddr(nil, netip.MustParseAddr("10.1.2.3"))); got != "10.1.2.3" {
		t.Errorf("exact addr = %q", got)
	}
}

func TestCollapseThreshold(t *testing.T) {
	g := GenConfig{CollapseThreshold: 5, CollapseOverrides: map[string]int{"/var/": 100, "/var/spool/": 0}}
	for _, tc := range []struct {
		dir  string
		want int
	}{{"/tmp/", 5}, {"/var/log/", 100}, {"/var/spool/mail/", 0}} {
		if got := g.threshold(tc.dir); got != tc.want {
			t.Errorf("threshold(%s) = %d, want %d", tc.dir, got, tc.want)
		}
	}
}
