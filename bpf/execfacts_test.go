package bpf

import (
	"bytes"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/driftwatch/driftwatch/agent/proctable"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/rules"
)

// statusFields parses "Key:\tvalue" lines of /proc/PID/status as printed.
func statusFields(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			kv[k] = strings.TrimSpace(v)
		}
	}
	return kv
}

// lastField returns the last whitespace-separated field (NSpid lists the
// pid from the outermost namespace to the task's own).
func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// TestExecNamespaceIDsCapsEnv runs `env FOO=bar sh -c 'grep ... /proc/self/status'`
// in a new pid namespace and process group, with CAP_NET_RAW in its
// inheritable set. sh's exec event: vpid 1, vpgid 1, the environment env
// set. grep (forked by sh): its exec event carries exactly what the kernel
// reports in its own /proc/self/status (NSpid, NSpgid, CapPrm, CapInh),
// vpid 2 in group 1, and the fork event names the child's vpid.
func TestExecNamespaceIDsCapsEnv(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	cmd := cg.command("/usr/bin/env", "FOO=bar", "DW_MARK=execfacts", "/bin/sh", "-c",
		`grep -E '^(NSpid|NSpgid|CapPrm|CapInh):' /proc/self/status`)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.AmbientCaps = []uintptr{13} // CAP_NET_RAW: raised into the inheritable set
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	st := statusFields(string(out))
	pid := cmd.Process.Pid
	evs := c.waitFor(t, cg.id, "sh's exit", hasExit(pid))
	sh := find(evs, func(e *event.Event) bool {
		return e.Kind == event.KindExec && e.Pid == uint32(pid) && strings.HasSuffix(string(e.Exe), "sh")
	})
	if sh == nil {
		t.Fatalf("no exec of sh:\n%s", dump(evs))
	}
	want := func(name string, got uint64, s string, base int) {
		t.Helper()
		w, err := strconv.ParseUint(s, base, 64)
		if err != nil {
			t.Fatalf("%s %q in sh's status: %v\n%s", name, s, err, out)
		}
		if got != w {
			t.Errorf("%s: event %#x, /proc %#x", name, got, w)
		}
	}
	if sh.VPid != 1 || sh.VPgid != 1 || sh.CapInh&(1<<13) == 0 {
		t.Errorf("sh in its new pid namespace: vpid %d vpgid %d capinh %#x, want 1, 1, CAP_NET_RAW", sh.VPid, sh.VPgid, sh.CapInh)
	}
	if !bytes.Contains(sh.Env, []byte("\x00FOO=bar\x00")) || !bytes.HasPrefix(sh.Env, []byte("PATH=/usr/bin:/bin\x00")) ||
		sh.Flags2&event.FlagEnvTruncated != 0 {
		t.Errorf("sh's environment %q (flags %#x)", sh.Env, sh.Flags2)
	}
	grep := find(evs, func(e *event.Event) bool {
		return e.Kind == event.KindExec && e.Ppid == uint32(pid) && strings.HasSuffix(string(e.Exe), "grep")
	})
	fork := find(evs, func(e *event.Event) bool { return e.Kind == event.KindFork && e.Pid == uint32(pid) })
	if grep == nil || fork == nil {
		t.Fatalf("no fork and exec of grep:\n%s", dump(evs))
	}
	want("vpid (NSpid)", uint64(grep.VPid), lastField(st["NSpid"]), 10)
	want("vtid (NSpid)", uint64(grep.VTid), lastField(st["NSpid"]), 10)
	want("vpgid (NSpgid)", uint64(grep.VPgid), lastField(st["NSpgid"]), 10)
	want("CapPrm", grep.CapPrm, st["CapPrm"], 16)
	want("CapInh", grep.CapInh, st["CapInh"], 16)
	if grep.VPid != 2 || grep.VTid != 2 || grep.VPgid != 1 || fork.VPid != 2 || fork.ChildPid != grep.Pid {
		t.Errorf("grep: exec vpid %d vtid %d vpgid %d, fork child vpid %d (host %d); want 2 2 1, 2",
			grep.VPid, grep.VTid, grep.VPgid, fork.VPid, fork.ChildPid)
	}
}

// TestShortLivedEnvInRules: `env FOO=bar /bin/true` exits at once; the
// environment is in its exec event, so proc.env[FOO] is bar through the
// process table and the rules engine with no /proc reader at all. A
// 6 KiB variable is cut at 4 KiB and marked.
func TestShortLivedEnvInRules(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	cmd := cg.command("/usr/bin/env", "FOO=bar", "/bin/true")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	big := cg.command("/usr/bin/env", "BIG="+strings.Repeat("x", 6<<10), "/bin/true")
	big.Env = []string{"FIRST=1"}
	if err := big.Run(); err != nil {
		t.Fatal(err)
	}
	evs := c.waitFor(t, cg.id, "both exits", func(evs []*event.Event) bool {
		return hasExit(cmd.Process.Pid)(evs) && hasExit(big.Process.Pid)(evs)
	})

	rs, _, err := rules.LoadBytes("env.yaml", []byte(`- rule: env
  desc: d
  condition: evt.type = execve and proc.name = true
  output: "foo=%proc.env[FOO] first=%proc.env[FIRST] big=%proc.env[BIG]"
  priority: INFO
`), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tab := proctable.New(proctable.Options{})
	var outs []string
	for _, e := range evs {
		p, fd := tab.Apply(e, nil)
		rs.Eval(&event.Enriched{Event: e, Proc: p, FD: fd}, func(a *event.Alert) { outs = append(outs, a.Output) })
	}
	want := []string{"foo=bar first=<NA> big=<NA>", "foo=<NA> first=1 big=<NA>"}
	if strings.Join(outs, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(outs, "\n"), strings.Join(want, "\n"))
	}
	ex := find(evs, func(e *event.Event) bool {
		return e.Kind == event.KindExec && e.Pid == uint32(big.Process.Pid) && strings.HasSuffix(string(e.Exe), "true")
	})
	if ex == nil || len(ex.Env) != 4096 || ex.Flags2&event.FlagEnvTruncated == 0 || !bytes.HasPrefix(ex.Env, []byte("FIRST=1\x00BIG=xxx")) {
		t.Errorf("6 KiB environment: %d bytes, flags %#x", len(ex.Env), ex.Flags2)
	}
}
