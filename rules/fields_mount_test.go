package rules

import (
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

func TestMountFields(t *testing.T) {
	withMounts := func(ms []event.Mount) *event.Enriched {
		k := ctr()
		k.Mounts = ms
		return execEv(inCtr(proc("sh", "/bin/sh"), k))
	}
	cri := withMounts([]event.Mount{
		{Source: "/proc", Dest: "/host/proc", RW: false, Propagation: "rslave"},
		{Source: "/var/run/docker.sock", Dest: "/var/run/docker.sock", RW: true, Propagation: "private"},
		{Source: "/srv/data", Dest: "/data", Mode: "z", RW: true, Propagation: "rshared"},
	})
	none := withMounts([]event.Mount{})   // the runtime reported no mounts
	noMeta := withMounts(nil)             // no runtime metadata (runc only)
	host := execEv(proc("sh", "/bin/sh")) // host process
	cases := []struct {
		name, field string
		e           *event.Enriched
		want        string
	}{
		{"glob source", "container.mount.dest[/proc*]", cri, "/host/proc"},
		{"exact source", "container.mount.dest[/var/run/docker.sock]", cri, "/var/run/docker.sock"},
		{"glob needs the whole path", "container.mount.dest[/pro]", cri, "<NA>"},
		{"no match", "container.mount.dest[/root*]", cri, "<NA>"},
		{"index", "container.mount.dest[2]", cri, "/data"},
		{"index out of range", "container.mount.dest[3]", cri, "<NA>"},
		{"source by dest", "container.mount.source[/host/*]", cri, "/proc"},
		{"source by index", "container.mount.source[0]", cri, "/proc"},
		{"mount by index", "container.mount[2]", cri, "/srv/data:/data:z:true:rshared"},
		{"mount by source", "container.mount[/proc]", cri, "/proc:/host/proc::false:rslave"},
		{"mode", "container.mount.mode[/srv/data]", cri, "z"},
		{"rdwr ro", "container.mount.rdwr[/proc]", cri, "false"},
		{"rdwr rw", "container.mount.rdwr[1]", cri, "true"},
		{"propagation", "container.mount.propagation[/proc*]", cri, "rslave"},
		{"mounts", "container.mounts", cri, "/proc:/host/proc::false:rslave,/var/run/docker.sock:/var/run/docker.sock::true:private,/srv/data:/data:z:true:rshared"},
		{"empty list", "container.mount.dest[/proc*]", none, "<NA>"},
		{"empty list mounts", "container.mounts", none, ""},
		{"no metadata", "container.mount.dest[/proc*]", noMeta, "<NA>"},
		{"no metadata index", "container.mount[0]", noMeta, "<NA>"},
		{"no metadata mounts", "container.mounts", noMeta, "<NA>"},
		{"host", "container.mount.dest[/proc*]", host, "<NA>"},
	}
	for _, tc := range cases {
		if got := evalField(t, Options{}, tc.field, tc.e); got != tc.want {
			t.Errorf("%s: %s = %q, want %q", tc.name, tc.field, got, tc.want)
		}
	}
}

// A missing mount is the value "<NA>", not an absent value: Falco's
// `not container.mount.dest[X] in ("<NA>","N/A")` is false without it.
func TestMountFieldConditions(t *testing.T) {
	const rule = "- rule: R\n  desc: d\n  condition: evt.type=execve and not container.mount.dest[/proc*] in (\"<NA>\",\"N/A\")\n  output: o\n  priority: INFO\n"
	rs, rep, err := LoadBytes("f.yaml", []byte(rule), Options{Users: testUsers})
	if err != nil || len(rep.Skipped) != 0 || rs.Len() != 1 {
		t.Fatalf("load: %v, skipped %v, running %d", err, rep.Skipped, rs.Len())
	}
	for _, tc := range []struct {
		name string
		ms   []event.Mount
		want bool
	}{
		{"/proc mount", []event.Mount{{Source: "/proc", Dest: "/host/proc"}}, true},
		{"/proc/sys mount", []event.Mount{{Source: "/proc/sys", Dest: "/s"}}, true},
		{"other mount", []event.Mount{{Source: "/srv", Dest: "/proc"}}, false},
		{"no mounts", []event.Mount{}, false},
		{"no metadata", nil, false},
	} {
		k := ctr()
		k.Mounts = tc.ms
		fired := false
		rs.Eval(execEv(inCtr(proc("sh", "/bin/sh"), k)), func(*event.Alert) { fired = true })
		if fired != tc.want {
			t.Errorf("%s: fired %v, want %v", tc.name, fired, tc.want)
		}
	}
}

func TestMountFieldBadArgument(t *testing.T) {
	for _, f := range []string{"container.mount.dest[-1]", "container.mount.dest[/a[b]", "container.mount.dest"} {
		_, _, err := LoadBytes("f.yaml", []byte("- rule: R\n  desc: d\n  condition: evt.type=execve and "+f+" = x\n  output: o\n  priority: INFO\n"), Options{Users: testUsers})
		if err == nil || !strings.Contains(err.Error(), "container.mount.dest") {
			t.Errorf("%s: err %v, want an error naming the field", f, err)
		}
	}
}
