package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestErrnoAndProtoNames(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{{2, "ENOENT"}, {13, "EACCES"}, {111, "ECONNREFUSED"}, {41, "E41"}, {999, "E999"}, {0, "E0"}}
	for _, tt := range tests {
		if got := ErrnoName(tt.n); got != tt.want {
			t.Errorf("ErrnoName(%d) = %q, want %q", tt.n, got, tt.want)
		}
		if got := string(AppendErrnoName([]byte("x"), tt.n)); got != "x"+tt.want {
			t.Errorf("AppendErrnoName(%d) = %q", tt.n, got)
		}
	}
	for p, want := range map[uint8]string{ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMP: "icmp", ProtoRaw: "raw", 99: ""} {
		if got := ProtoName(p); got != want {
			t.Errorf("ProtoName(%d) = %q, want %q", p, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/etc/passwd", "/etc/passwd"},
		{"a\nb", `a\nb`},
		{"tab\there", `tab\there`},
		{"esc\x1b[31m", `esc\x1b[31m`},
		{"back\\slash", `back\\slash`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"ünïcode", "ünïcode"},
		{"c1\u0085", `c1\xc2\x85`},
		{"del\x7f", `del\x7f`},
	}
	for _, tt := range tests {
		if got := EscapeString(tt.in); got != tt.want {
			t.Errorf("EscapeString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitNulAndType(t *testing.T) {
	got := SplitNul([]byte("ls\x00-l\x00/tmp\x00"))
	if len(got) != 3 || got[0] != "ls" || got[2] != "/tmp" {
		t.Fatalf("SplitNul: %q", got)
	}
	if SplitNul(nil) != nil {
		t.Fatal("SplitNul(nil) should be nil")
	}
	for _, tt := range []struct {
		e    Event
		want string
	}{
		{Event{Kind: KindExec}, "execve"},
		{Event{Kind: KindFork}, "clone"},
		{Event{Kind: KindExit}, "procexit"},
		{Event{Kind: KindSyscall, Syscall: SysOpenat}, "openat"},
		{Event{Kind: KindSyscall, Syscall: SysMemfdCreate}, "memfd_create"},
	} {
		if got := tt.e.Type(); got != tt.want {
			t.Errorf("Type() = %q, want %q", got, tt.want)
		}
	}
	if n, ok := SyscallNumber("connect"); !ok || n != SysConnect {
		t.Errorf("SyscallNumber(connect) = %d, %v", n, ok)
	}
	if Syscall32Name(11) != "execve" {
		t.Errorf("i386 syscall 11 = %q, want execve", Syscall32Name(11))
	}
}

func TestResetKeepsCapacity(t *testing.T) {
	e := Event{Pid: 4, Path: make([]byte, 3, 64), Argv: []byte("x")}
	e.Reset()
	if e.Pid != 0 || len(e.Path) != 0 || cap(e.Path) != 64 {
		t.Fatalf("Reset: pid %d len %d cap %d", e.Pid, len(e.Path), cap(e.Path))
	}
	c := (&Event{Path: []byte("/a")}).Clone()
	c.Path[0] = 'x'
	if string(c.Path) != "xa" {
		t.Fatal("clone")
	}
}

func TestAlertJSONTime(t *testing.T) {
	a := Alert{Time: time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.FixedZone("x", 3600)), Rule: "r", Priority: PriorityWarning}
	b, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"time":"2026-01-02T02:04:05.120000000Z"`) || !strings.Contains(string(b), `"priority":"Warning"`) {
		t.Fatalf("alert JSON %s", b)
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil || !back.Time.Equal(a.Time) || back.Priority != PriorityWarning {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestNewerSyscallsKnown(t *testing.T) {
	if n, ok := SyscallNumber("fchmodat2"); !ok || n != SysFchmodat2 {
		t.Fatalf("fchmodat2 = %d, %v; want %d", n, ok, SysFchmodat2)
	}
}
