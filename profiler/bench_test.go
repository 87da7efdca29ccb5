package profiler

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// learnWebServer learns a typical web-server image into p under the image
// name: nginx master and workers, ~60 static files, config and TLS files,
// the dynamic loader's libraries, logs, :80/:443 accepts, an upstream and
// DNS, and a few helper execs.
func learnWebServer(p *Profiler, image string) {
	c := &event.Container{ContainerInfo: event.ContainerInfo{ID: image + "-ctr", Image: image + ":1", ImageRepo: image, ImageTag: "1"}}
	t := t0
	step := func() int64 { t += int64(10 * time.Millisecond); return t }
	for _, exe := range [][]string{{"/docker-entrypoint.sh", "/docker-entrypoint.sh", "nginx", "-g", "daemon off;"},
		{"/usr/bin/find", "find", "/docker-entrypoint.d/", "-mindepth", "1"}, {"/usr/bin/sort", "sort", "-V"},
		{"/usr/sbin/nginx", "nginx", "-g", "daemon off;"}, {"/usr/bin/envsubst", "envsubst"}, {"/bin/sed", "sed", "-i", "s/x/y/", "/etc/nginx/conf.d/default.conf"}} {
		for i := 0; i < 3; i++ {
			p.Learn(execEv(c, step(), exe[0], exe[1:]...))
		}
	}
	libs := []string{"/etc/ld.so.cache", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libcrypt.so.1",
		"/lib/x86_64-linux-gnu/libpcre2-8.so.0", "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
		"/lib/x86_64-linux-gnu/libz.so.1", "/etc/nginx/nginx.conf", "/etc/nginx/mime.types", "/etc/nginx/conf.d/default.conf",
		"/etc/ssl/certs/server.pem", "/etc/ssl/private/server.key", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
		"/etc/localtime", "/etc/resolv.conf", "/etc/hosts", "/run/nginx.pid", "/var/cache/nginx/client_temp"}
	for r := 0; r < 20; r++ {
		for _, l := range libs {
			p.Learn(openEv(c, step(), l, 0x80000))
		}
		for i := 0; i < 60; i++ {
			p.Learn(openEv(c, step(), fmt.Sprintf("/usr/share/nginx/html/static/asset-%02d.js", i), 0x80000))
		}
		for _, w := range []string{"/var/log/nginx/access.log", "/var/log/nginx/error.log", "/var/cache/nginx/proxy_temp/1/00/0000000001"} {
			p.Learn(openEv(c, step(), w, 0x441))
		}
		for _, port := range []string{"10.2.0.5:80", "10.2.0.5:443"} {
			p.Learn(sysEv(c, step(), event.SysAccept4, func(e *event.Event) {
				e.Family, e.Proto, e.Src, e.Dst = event.AFInet, event.ProtoTCP, netip.MustParseAddrPort("10.1.0.3:41000"), netip.MustParseAddrPort(port)
			}))
		}
		p.Learn(sysEv(c, step(), event.SysConnect, tcpTo("10.3.0.9:8080")))
		p.Learn(sysEv(c, step(), event.SysSendto, func(e *event.Event) {
			e.Family, e.Proto, e.Dst = event.AFInet, event.ProtoUDP, netip.MustParseAddrPort("10.96.0.10:53")
		}))
	}
	p.Learn(sysEv(c, step(), event.SysSetuid, func(e *event.Event) { e.Mode = 101 }))
	p.Learn(sysEv(c, step(), event.SysSetgid, func(e *event.Event) { e.Mode = 101 }))
}

// BenchmarkCheckpoint500 writes 500 changed web-server profiles to a bbolt
// file in one checkpoint (with fsync), and reports the encoded size of one
// profile.
func BenchmarkCheckpoint500(b *testing.B) {
	s, err := OpenStore(filepath.Join(b.TempDir(), "bench.db"), StoreOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := New(s, Config{Logger: quiet})
	for i := 0; i < 500; i++ {
		learnWebServer(p, fmt.Sprintf("web%03d", i))
	}
	total := 0
	for _, pr := range p.profiles {
		total += len(encodeProfile(nil, pr))
	}
	b.ResetTimer()
	for b.Loop() {
		p.mu.Lock()
		for _, pr := range p.profiles {
			pr.dirty = true
		}
		p.mu.Unlock()
		if err := p.Checkpoint(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/500, "bytes/profile")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/checkpoint")
}

// BenchmarkProfileBytes reports a typical web-server profile's size on
// disk (encoded record) and its features.
func BenchmarkProfileBytes(b *testing.B) {
	p := New(nil, Config{Logger: quiet})
	learnWebServer(p, "nginx")
	pr := p.profiles["nginx:1"]
	var n int
	for b.Loop() {
		n = len(encodeProfile(nil, pr))
	}
	b.ReportMetric(float64(n), "bytes/profile")
	b.ReportMetric(float64(pr.NumFeatures()), "features")
	// In memory: heap growth of 100 more such profiles.
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	q := New(nil, Config{Logger: quiet})
	for i := 0; i < 100; i++ {
		learnWebServer(q, fmt.Sprintf("img%d", i))
	}
	q.ex.clearCache() // the path cache is per profiler, not per profile
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/100, "heap-bytes/profile")
	runtime.KeepAlive(q)
}
