package event

import "testing"

// TestSpecTableLint checks the syscall table's rows for the mistakes the
// hand-written switches it replaced made: a name that is not the
// syscall's, an argument read from a slot of the wrong kind, a name used
// twice in one row.
func TestSpecTableLint(t *testing.T) {
	for _, sp := range Specs() {
		if got := SyscallName(sp.Nr); got != sp.Name {
			t.Errorf("row %q has number %d, which is %q", sp.Name, sp.Nr, got)
		}
		if SpecOf(sp.Nr) == nil || SpecOf(sp.Nr).Name != sp.Name {
			t.Errorf("SpecOf(%d) does not return row %q", sp.Nr, sp.Name)
		}
		seen := map[string]bool{}
		for _, a := range sp.Args {
			if seen[a.Name] {
				t.Errorf("%s: argument %q twice", sp.Name, a.Name)
			}
			seen[a.Name] = true
			isPath := a.From == SlotPath || a.From == SlotPath2
			if (a.Type == ArgPath) != isPath && a.From != SlotNone {
				t.Errorf("%s: argument %q of type %d reads slot %d", sp.Name, a.Name, a.Type, a.From)
			}
			if a.Type == ArgErrno && a.From != SlotRet {
				t.Errorf("%s: res must read Ret", sp.Name)
			}
		}
		if sp.Sensor && !sp.Reported {
			t.Errorf("%s: decoded by the sensor but not reported", sp.Name)
		}
	}
}

// TestTypedAccessors checks that each accessor answers from the slot the
// table names for that syscall, and only for syscalls that have the value.
func TestTypedAccessors(t *testing.T) {
	ev := func(nr uint16, f func(*Event)) *Event {
		e := &Event{Kind: KindSyscall, Syscall: nr}
		f(e)
		return e
	}
	tests := []struct {
		name string
		e    *Event
		get  func(*Event) (int64, bool)
		want int64
		ok   bool
	}{
		{"openat mode", ev(SysOpenat, func(e *Event) { e.Mode = 0o640 }), func(e *Event) (int64, bool) { v, ok := e.FileMode(); return int64(v), ok }, 0o640, true},
		{"chmod mode", ev(SysChmod, func(e *Event) { e.Mode = 0o4755 }), func(e *Event) (int64, bool) { v, ok := e.FileMode(); return int64(v), ok }, 0o4755, true},
		{"socket has no file mode", ev(SysSocket, func(e *Event) { e.Mode = 6 }), func(e *Event) (int64, bool) { v, ok := e.FileMode(); return int64(v), ok }, 0, false},
		{"socket proto", ev(SysSocket, func(e *Event) { e.Mode = 17 }), func(e *Event) (int64, bool) { v, ok := e.SocketProto(); return int64(v), ok }, 17, true},
		{"listen backlog", ev(SysListen, func(e *Event) { e.Mode = 128 }), func(e *Event) (int64, bool) { v, ok := e.Backlog(); return int64(v), ok }, 128, true},
		{"open has no backlog", ev(SysOpen, func(e *Event) { e.Mode = 128 }), func(e *Event) (int64, bool) { v, ok := e.Backlog(); return int64(v), ok }, 0, false},
		{"setuid uid", ev(SysSetuid, func(e *Event) { e.Mode = 1000 }), func(e *Event) (int64, bool) { v, ok := e.UID(); return int64(v), ok }, 1000, true},
		{"setresuid ruid", ev(SysSetresuid, func(e *Event) { e.Raw[0] = 0xffffffff; e.Mode = 0xffffffff }), func(e *Event) (int64, bool) { v, ok := e.UID(); return int64(v), ok }, 0xffffffff, true},
		{"setgid gid", ev(SysSetgid, func(e *Event) { e.Mode = 50 }), func(e *Event) (int64, bool) { v, ok := e.GID(); return int64(v), ok }, 50, true},
		{"setgid has no uid", ev(SysSetgid, func(e *Event) { e.Mode = 50 }), func(e *Event) (int64, bool) { v, ok := e.UID(); return int64(v), ok }, 0, false},
		{"exec kind has no uid", &Event{Kind: KindExec, Syscall: SysSetuid, Mode: 5}, func(e *Event) (int64, bool) { v, ok := e.UID(); return int64(v), ok }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.get(tt.e)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
