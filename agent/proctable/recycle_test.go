package proctable

import (
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// churner runs rounds of fork, exec, open, dup2 and exit under parent
// pid 100 (child pids cycle through 1000..1099), one round per second of
// event time. Its events are built once and reused, as a decoder does.
type churner struct {
	fork, exec, open, dup, exit event.Event
	i                           int
	now                         int64
}

func newChurner() *churner {
	c := &churner{}
	c.fork = event.Event{Kind: event.KindFork, Pid: 100}
	c.exec = event.Event{Kind: event.KindExec, Ppid: 100, Exe: []byte("/bin/tool"), Argv: []byte("tool\x00-v\x00"), Cwd: []byte("/srv")}
	c.open = *sysAt(0, event.SysOpenat, 0, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("data/x.json"), 4 })
	c.dup = *sysAt(0, event.SysDup2, 0, func(e *event.Event) { e.Fd, e.Fd2, e.Ret = 4, 1, 1 })
	c.exit = event.Event{Kind: event.KindExit}
	return c
}

func (c *churner) run(tab *Table, rounds int) {
	for r := 0; r < rounds; r++ {
		c.now += int64(time.Second)
		child := uint32(1000 + c.i%100)
		c.i++
		c.fork.ChildPid, c.fork.Time = child, c.now
		tab.Apply(&c.fork, nil)
		for _, e := range []*event.Event{&c.exec, &c.open, &c.dup, &c.exit} {
			e.Pid, e.Tid, e.Time = child, child, c.now
			tab.Apply(e, nil)
		}
	}
}

func sysAt(pid uint32, nr uint16, t int64, mod func(e *event.Event)) *event.Event {
	e := sys(pid, nr, mod)
	e.Ppid, e.Time = 100, t
	return e
}

// TestSteadyStateAllocatesNothing: once the table holds its working set
// (exited records older than the grace period are recycled), fork, exec,
// open, dup and exit cost no allocation.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	tab := New(Options{ExitGrace: 5 * time.Second})
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 100, Ppid: 1, Exe: []byte("/bin/sh"), Argv: []byte("sh"), Cwd: []byte("/")}, nil)
	c := newChurner()
	c.run(tab, 3000) // warm up: records, free lists, intern maps
	allocs := testing.AllocsPerRun(20, func() { c.run(tab, 200) })
	if allocs != 0 {
		t.Errorf("%.1f allocations per 200 rounds (1,000 events) in steady state, want 0", allocs)
	}
	if n := tab.Len(); n > 100 {
		t.Errorf("table holds %d records, want the working set (≤ 100)", n)
	}
}

// TestRecycledRecordsKeepOthersIntact: recycling reuses only records
// nothing refers to. A shared fd record stays with the process still
// holding it after the other closes it and new fds are opened; a live
// process's ancestry stays whole when its parent's record is removed
// early (eviction) and its grandparent exits.
func TestRecycledRecordsKeepOthersIntact(t *testing.T) {
	tab := New(Options{ExitGrace: time.Second})
	sec := int64(time.Second)
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 10, Ppid: 1, Time: 1, Exe: []byte("/bin/a"), Argv: []byte("a")}, nil)
	tab.Apply(sysAt(10, event.SysOpenat, 1, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("/etc/shared"), 3 }), nil)
	tab.Apply(&event.Event{Kind: event.KindFork, Pid: 10, ChildPid: 11, Time: 2}, nil)
	// the child closes the shared fd; new opens must not reuse the record the parent holds
	tab.Apply(sysAt(11, event.SysClose, 3, func(e *event.Event) { e.Fd = 3 }), nil)
	for i := 0; i < 10; i++ {
		tab.Apply(sysAt(11, event.SysOpenat, 4, func(e *event.Event) { e.Fd, e.Path, e.Ret = -100, []byte("/tmp/other"), int64(4+i) }), nil)
		tab.Apply(sysAt(11, event.SysClose, 4, func(e *event.Event) { e.Fd = int32(4 + i) }), nil)
	}
	if f := tab.Get(10).FDs[3]; f == nil || f.Name != "/etc/shared" || f.Num != 3 {
		t.Fatalf("parent's fd 3 = %+v, want /etc/shared", f)
	}

	// grandparent 20 → parent 21 → child 22 (live)
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 20, Ppid: 1, Time: 5, Exe: []byte("/bin/gp"), Argv: []byte("gp")}, nil)
	tab.Apply(&event.Event{Kind: event.KindFork, Pid: 20, ChildPid: 21, Time: 5}, nil)
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 21, Ppid: 20, Time: 5, Exe: []byte("/bin/p"), Argv: []byte("p")}, nil)
	tab.Apply(&event.Event{Kind: event.KindFork, Pid: 21, ChildPid: 22, Time: 5}, nil)
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 22, Ppid: 21, Time: 5, Exe: []byte("/bin/c"), Argv: []byte("c")}, nil)
	tab.Apply(&event.Event{Kind: event.KindExit, Pid: 21, Tid: 21, Time: 6}, nil)
	tab.Apply(&event.Event{Kind: event.KindExit, Pid: 20, Tid: 20, Time: 6}, nil)
	tab.remove(tab.byPid[21]) // as eviction does, while 22 still points at it
	tab.now = 100 * sec
	tab.Reap()
	// churn other pids so that any free record would be reused
	for i := uint32(0); i < 50; i++ {
		tab.Apply(&event.Event{Kind: event.KindFork, Pid: 10, ChildPid: 500 + i, Time: 100 * sec}, nil)
		tab.Apply(&event.Event{Kind: event.KindExec, Pid: 500 + i, Ppid: 10, Time: 100 * sec, Exe: []byte("/bin/x"), Argv: []byte("x")}, nil)
	}
	c := tab.Get(22)
	if c == nil || c.Parent == nil || c.Parent.Pid != 21 || c.Parent.Exe != "/bin/p" ||
		c.Parent.Parent == nil || c.Parent.Parent.Pid != 20 || c.Parent.Parent.Exe != "/bin/gp" {
		t.Fatalf("ancestry of 22 damaged: %+v", c)
	}
}

// TestReapedRecordValidForItsEvent: a late event of a process that exited
// long ago (another ring's) may be the one whose Apply reaps the record;
// the record it returns still describes the process for that event.
func TestReapedRecordValidForItsEvent(t *testing.T) {
	tab := New(Options{ExitGrace: time.Second})
	sec := int64(time.Second)
	tab.Apply(&event.Event{Kind: event.KindExec, Pid: 50, Ppid: 1, Time: 1, Exe: []byte("/bin/late"), Argv: []byte("late")}, nil)
	tab.Apply(&event.Event{Kind: event.KindExit, Pid: 50, Tid: 50, Time: 2}, nil)
	filler := sysAt(60, event.SysRead, 100*sec, nil)
	for tab.applied < 1023 {
		tab.Apply(filler, nil)
	}
	p, _ := tab.Apply(sysAt(50, event.SysRead, 100*sec, nil), nil)
	if tab.Get(50) != nil {
		t.Fatal("test premise: the late event's Apply should reap pid 50")
	}
	if p == nil || p.Pid != 50 || p.Exe != "/bin/late" {
		t.Fatalf("record returned for the late event: %+v", p)
	}
}
