package rules

import (
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// TestArgsFromTable checks evt.arg.NAME, evt.arg[N] and evt.args against
// the syscall table: names and order from the row, rendering by type, and
// the old aliases for names a row lacks.
func TestArgsFromTable(t *testing.T) {
	render := func(field string, e *event.Enriched) string {
		t.Helper()
		rs, _, err := LoadBytes("f.yaml", []byte("- rule: R\n  desc: d\n  condition: evt.type in (openat, setresuid, chmod, dup, unlinkat, ptrace)\n  output: \"%"+field+"\"\n  priority: INFO\n"), Options{Users: testUsers})
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		out := "(no alert)"
		rs.Eval(e, func(a *event.Alert) { out = a.Output })
		return out
	}
	p := proc("x", "/bin/x")
	open := openEv(p, "/etc/shadow", 0x80000)
	open.Mode = 0o600
	setres := sysEv(p, event.SysSetresuid, 0)
	setres.Raw[0], setres.Raw[1], setres.Raw[2] = 0, 0xffffffff, 1000
	setres.Mode = 0
	chmod := sysEv(p, event.SysChmod, 0)
	chmod.Path, chmod.Mode = []byte("/bin/sh"), 0o4755
	dup := sysEv(p, event.SysDup, 7)
	dup.Fd = 3
	unl := sysEv(p, event.SysUnlinkat, 0)
	unl.Fd, unl.Path, unl.Flags = -100, []byte("f"), 0
	ptr := sysEv(p, event.SysPtrace, 0)
	ptr.Flags, ptr.Arg3 = 16, 99
	tests := []struct {
		field string
		e     *event.Enriched
		want  string
	}{
		{"evt.args", open, "fd=3 dirfd=-100 name=/etc/shadow flags=O_RDONLY|O_CLOEXEC mode=384"},
		{"evt.arg[2]", open, "/etc/shadow"},
		{"evt.arg.path", open, "/etc/shadow"}, // alias: openat's row calls it name
		{"evt.args", setres, "res=0 ruid=0 euid=-1 suid=1000"},
		{"evt.arg.uid", setres, "0"}, // alias: the mode slot
		{"evt.arg.mode", chmod, "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID"},
		{"evt.args", dup, "res=7 oldfd=3 newfd=7"},
		{"evt.args", unl, "res=0 dirfd=-100 name=f flags=0"},
		{"evt.arg.request", ptr, "PTRACE_ATTACH"},
		{"evt.arg[3]", ptr, "<NA>"},
	}
	for _, tt := range tests {
		if got := render(tt.field, tt.e); got != tt.want {
			t.Errorf("%s on %s: got %q, want %q", tt.field, tt.e.Event.Type(), got, tt.want)
		}
	}
}
