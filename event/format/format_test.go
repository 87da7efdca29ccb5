package format

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

func TestEscapeMatchesEventEscape(t *testing.T) {
	for _, in := range []string{
		"plain", "a\nb", "tab\there", "back\\slash", "\x00\x01\x7f", "\xff\xfe", "é日本", "\xc2\x85 C1", "\xed\xa0\x80 surrogate",
		"\xc0\xaf overlong", "\xf4\x90\x80\x80 too big", "trunc\xe6\x97", "\xef\xbf\xbd literal FFFD", "quote\"",
	} {
		want := event.EscapeString(in)
		if got := string(event.AppendEscape(nil, in, false)); got != want {
			t.Errorf("text escape of %q = %q, event.Escape gives %q", in, got, want)
		}
		// JSON: must be valid and decode to the event.Escape text.
		js := `"` + string(event.AppendEscape(nil, []byte(in), true)) + `"`
		var dec string
		if err := json.Unmarshal([]byte(js), &dec); err != nil {
			t.Errorf("JSON escape of %q is invalid: %s: %v", in, js, err)
			continue
		}
		if dec != want {
			t.Errorf("JSON of %q decodes to %q, want %q", in, dec, want)
		}
	}
}

func TestJSONKeys(t *testing.T) {
	parent := &event.Process{Pid: 1, Comm: "init"}
	proc := &event.Process{Pid: 100, Ppid: 1, Comm: "nc", Exe: "/bin/nc", Args: []string{"nc", "-e", "/bin/sh\n"}, Cwd: "/tmp", Parent: parent}
	fd := &event.FD{Num: 0, Type: event.FDIPv4, Proto: event.ProtoTCP, Name: "10.0.0.2:40000->10.0.0.1:4444",
		Local: netip.MustParseAddrPort("10.0.0.2:40000"), Remote: netip.MustParseAddrPort("10.0.0.1:4444"), Connected: true}
	c := &event.Container{ContainerInfo: event.ContainerInfo{ID: "abc", Name: "web"}}
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysDup2, Time: 123, Num: 7, Pid: 100, Tid: 101, Uid: 33, Fd: 3, Fd2: 0, CgroupID: 99}
	var m map[string]any
	if err := json.Unmarshal(FormatJSON(ev, proc, fd, c), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"evt.type": "dup2", "evt.time": 123.0, "evt.num": 7.0, "evt.res": "SUCCESS", "proc.pid": 100.0, "proc.ppid": 1.0,
		"thread.tid": 101.0, "proc.name": "nc", "proc.exepath": "/bin/nc", "proc.cmdline": `nc -e /bin/sh\n`, "proc.cwd": "/tmp",
		"proc.pname": "init", "user.uid": 33.0, "fd.num": 0.0, "fd.name": "10.0.0.2:40000->10.0.0.1:4444", "fd.type": "ipv4",
		"fd.l4proto": "tcp", "fd.cip": "10.0.0.2", "fd.cport": 40000.0, "fd.sip": "10.0.0.1", "fd.sport": 4444.0,
		"evt.arg.oldfd": 3.0, "evt.arg.newfd": 0.0, "container.id": "abc", "container.name": "web", "cgroup.id": 99.0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	// Failed open without a process record: errno name, transient fd.
	ev2 := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Ret: -13, Path: []byte("/etc/\xffshadow"), Flags: 0x80000, Fd: -100}
	m = nil
	if err := json.Unmarshal(FormatJSON(ev2, nil, &event.FD{Num: -1, Type: event.FDFile, Name: "/etc/\xffshadow"}, nil), &m); err != nil {
		t.Fatal(err)
	}
	if m["evt.res"] != "EACCES" || m["evt.rawres"] != -13.0 || m["fd.name"] != `/etc/\xffshadow` || m["evt.arg.flags"] != float64(0x80000) || m["container.id"] != "host" {
		t.Errorf("failed open: %v", m)
	}
	if _, ok := m["fd.sip"]; ok {
		t.Error("network keys on a file fd")
	}
}

func TestTextOneLine(t *testing.T) {
	proc := &event.Process{Pid: 5, Comm: "evil\nname", Exe: "/tmp/\x1b[31mx", Args: []string{"a", "b\nc"}}
	ev := &event.Event{Kind: event.KindExec, Pid: 5, Tid: 5}
	line := string(AppendText(nil, ev, proc, nil, nil))
	if strings.ContainsAny(line, "\n\x1b") {
		t.Fatalf("text line holds raw control characters: %q", line)
	}
	for _, want := range []string{"execve", `proc=evil\nname`, `exe=/tmp/\x1b[31mx`, `cmdline="evil\nname b\nc"`, "container=host"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	proc := &event.Process{Pid: 100, Ppid: 1, Comm: "nginx", Exe: "/usr/sbin/nginx", Args: []string{"nginx", "-g", "daemon off;"}, Cwd: "/"}
	fd := &event.FD{Num: 5, Type: event.FDFile, Name: "/var/log/nginx/access.log"}
	ev := &event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: 1, Pid: 100, Tid: 100, Ret: 5, Path: []byte("/var/log/nginx/access.log"), Fd: -100}
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendJSON(buf[:0], ev, proc, fd, nil)
	}
}

// TestArgsFromTable checks that the event line's arguments are the
// syscall table's: Falco's names and order, its print formats, the fd that
// fd.num already shows left out.
func TestArgsFromTable(t *testing.T) {
	sys := func(nr uint16, f func(*event.Event)) *event.Event {
		e := &event.Event{Kind: event.KindSyscall, Syscall: nr, Pid: 1, Tid: 1}
		f(e)
		return e
	}
	tests := []struct {
		name string
		e    *event.Event
		text string // suffix of the text line before " container="
		json string // a fragment of the JSON object
	}{
		{"openat", sys(event.SysOpenat, func(e *event.Event) {
			e.Ret, e.Fd, e.Path, e.Flags, e.Mode = 3, -100, []byte("/tmp/x"), 0x241, 0o640
		}), " dirfd=-100 name=/tmp/x flags=0x241 mode=0640", `"evt.arg.dirfd":-100,"evt.arg.name":"/tmp/x","evt.arg.flags":577,"evt.arg.mode":416`},
		{"unlinkat", sys(event.SysUnlinkat, func(e *event.Event) { e.Fd, e.Path, e.Flags = 5, []byte("d"), 0x200 }),
			" dirfd=5 name=d flags=0x200", `"evt.arg.name":"d"`},
		{"unlink", sys(event.SysUnlink, func(e *event.Event) { e.Path = []byte("/tmp/y") }), " path=/tmp/y", `"evt.arg.path":"/tmp/y"`},
		{"mkdir", sys(event.SysMkdir, func(e *event.Event) { e.Path, e.Mode = []byte("/d"), 0o755 }), " path=/d mode=0x1ed", `"evt.arg.mode":493`},
		{"setgid", sys(event.SysSetgid, func(e *event.Event) { e.Mode = 50 }), " gid=50", `"evt.arg.gid":50`},
		{"listen", sys(event.SysListen, func(e *event.Event) { e.Fd, e.Mode = 3, 128 }), " backlog=128", `"evt.arg.backlog":128`},
		{"exit", &event.Event{Kind: event.KindExit, Ret: 256, Pid: 1, Tid: 1}, " status=256", `"evt.arg.status":256`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := string(AppendText(nil, tt.e, nil, nil, nil))
			before, _, _ := strings.Cut(line, " container=")
			if !strings.HasSuffix(before, tt.text) {
				t.Errorf("text %q lacks %q", line, tt.text)
			}
			if js := string(AppendJSON(nil, tt.e, nil, nil, nil)); !strings.Contains(js, tt.json) {
				t.Errorf("JSON %s lacks %s", js, tt.json)
			}
		})
	}
}
