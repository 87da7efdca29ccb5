package rules

import (
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// evalField compiles "field" as an output and renders it for e.
func evalField(t *testing.T, opts Options, field string, e *event.Enriched) string {
	t.Helper()
	if opts.Users == nil {
		opts.Users = testUsers
	}
	rs, _, err := LoadBytes("f.yaml", []byte("- rule: R\n  desc: d\n  condition: evt.type in (execve, openat, socket, connect, bpf)\n  output: \"%"+field+"\"\n  priority: INFO\n"), opts)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	out := "(no alert)"
	rs.Eval(e, func(a *event.Alert) { out = a.Output })
	return out
}

func TestNamespaceAndExecFields(t *testing.T) {
	// Container init (vpid 1, its own group), a worker (vpid 7 in group 1)
	// with a second thread, and a process that predates the capture.
	initP := proc("nginx", "/usr/sbin/nginx")
	initP.NSKnown, initP.VPid, initP.VPgid = true, 1, 1
	initP.CapPrm, initP.CapInh = capSysAdmin, 0
	worker := proc("nginx", "/usr/sbin/nginx")
	worker.NSKnown, worker.VPid, worker.VPgid = true, 7, 1
	worker.VTids = map[uint32]uint32{worker.Pid + 5: 9}
	worker.CapPrm, worker.CapInh = 0, capSysAdmin
	workerThread := execEv(worker)
	workerThread.Tid = worker.Pid + 5
	workerThread.Kind = event.KindSyscall
	workerThread.Syscall = event.SysOpenat
	old := proc("cron", "/usr/sbin/cron")
	old.FromSnapshot = true
	captured := proc("curl", "/usr/bin/curl")
	captured.NSKnown, captured.VPid = true, 3
	captured.EnvKnown, captured.Env = true, []byte("FOO=bar\x00LANG=C\x00")

	env := func(p *event.Process) ([]byte, bool) {
		if p.Comm == "curl" {
			return []byte("PATH=/bin\x00HTTP_PROXY=http://10.0.0.1:3128\x00"), true
		}
		return nil, false
	}
	curl := proc("curl", "/usr/bin/curl")
	bpfEv := sysEv(proc("loader", "/bin/loader"), sysBpf, 3)
	bpfEv.Raw[0] = 5
	exeOpen := openEv(proc("sh", "/bin/sh"), "/tmp/x", oWronly|oCreat)
	exeOpen.Mode = 0o755
	plainOpen := openEv(proc("sh", "/bin/sh"), "/tmp/x", oWronly|oCreat)
	plainOpen.Mode = 0o644
	sock := sysEv(proc("ping", "/bin/ping"), event.SysSocket, 3)
	sock.Family = event.AFInet
	usock := sysEv(proc("ping", "/bin/ping"), event.SysSocket, 3)
	usock.Family = event.AFUnix

	cases := []struct {
		field string
		opts  Options
		e     *event.Enriched
		want  string
	}{
		{"proc.vpid", Options{}, execEv(initP), "1"},
		{"proc.vpid", Options{}, execEv(worker), "7"},
		{"proc.vpid", Options{}, execEv(old), "<NA>"},
		{"thread.vtid", Options{}, execEv(worker), "7"},
		{"thread.vtid", Options{}, workerThread, "9"},
		{"thread.vtid", Options{}, execEv(old), "<NA>"},
		{"proc.vpgid", Options{}, execEv(worker), "1"},
		{"proc.is_vpgid_leader", Options{}, execEv(initP), "true"},
		{"proc.is_vpgid_leader", Options{}, execEv(worker), "false"},
		{"proc.is_vpgid_leader", Options{}, execEv(old), "<NA>"},
		{"proc.env[FOO]", Options{Environ: env}, execEv(captured), "bar"},
		{"proc.env", Options{}, execEv(captured), "FOO=bar LANG=C"},
		{"proc.env[HTTP_PROXY]", Options{}, execEv(captured), "<NA>"},
		{"proc.env", Options{Environ: env}, execEv(curl), "PATH=/bin HTTP_PROXY=http://10.0.0.1:3128"},
		{"proc.env[HTTP_PROXY]", Options{Environ: env}, execEv(curl), "http://10.0.0.1:3128"},
		{"proc.env", Options{}, execEv(curl), "<NA>"},
		{"evt.arg.cmd", Options{}, bpfEv, "BPF_PROG_LOAD"},
		{"evt.is_open_exec", Options{}, exeOpen, "true"},
		{"evt.is_open_exec", Options{}, plainOpen, "false"},
		{"fd.sockfamily", Options{}, sock, "ip"},
		{"fd.sockfamily", Options{}, usock, "unix"},
		{"thread.cap_permitted", Options{}, execEv(initP), "CAP_SYS_ADMIN"},
		{"thread.cap_permitted", Options{}, execEv(worker), ""},
		{"thread.cap_inheritable", Options{}, execEv(worker), "CAP_SYS_ADMIN"},
		{"thread.cap_permitted", Options{}, execEv(old), "<NA>"},
		{"fd.rip.name", Options{IPNames: func(a netip.Addr) (string, bool) { return "evil.example", a.String() == "203.0.113.9" }}, connectEv(proc("nc", "/bin/nc"), "203.0.113.9", 4444), "evil.example"},
		{"fd.rip.name", Options{}, connectEv(proc("nc", "/bin/nc"), "203.0.113.9", 4444), "<NA>"},
	}
	for _, tc := range cases {
		if got := evalField(t, tc.opts, tc.field, tc.e); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.field, got, tc.want)
		}
	}
}

// The three Falco rule files load together, and exactly the rules needing
// data driftwatch cannot provide are skipped, each with its reason.
func TestFalcoThreeFilesLoad(t *testing.T) {
	dir := filepath.Join(testutil.SharedDir(t), "compat")
	paths := []string{filepath.Join(dir, "falco_rules.yaml"), filepath.Join(dir, "falco-incubating_rules.yaml"), filepath.Join(dir, "falco-sandbox_rules.yaml")}
	rs, rep, err := Load(paths, Options{Users: testUsers})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var got []string
	for _, s := range rep.Skipped {
		got = append(got, s.Rule+" <- "+s.Field)
		if s.Reason == "" {
			t.Errorf("%s: skipped without a reason", s.Rule)
		}
	}
	sort.Strings(got)
	// container.mount.dest comes from the CRI's mounts now: nothing is skipped.
	var want []string
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	enabled := 0
	for _, f := range rep.Files {
		enabled += f.Enabled + f.Skipped
	}
	// Falco enables 25 + 31 + 25 rules of the three files.
	if enabled != 81 || rs.Len() != 81-len(want) {
		t.Errorf("enabled %d (running %d), want 81 enabled, %d running", enabled, rs.Len(), 81-len(want))
	}

	// bpf(2) and userfaultfd(2) are reported now: their rules run.
	fired := func(e *event.Enriched) []string {
		var got []string
		rs.Eval(e, func(a *event.Alert) { got = append(got, a.Rule) })
		return got
	}
	bpfEv := func(cmd uint64) *event.Enriched {
		e := sysEv(proc("loader", "/tmp/loader"), event.SysBpf, 4)
		e.Raw[0] = cmd
		return e
	}
	uffd := func(uid uint32, ret int64) *event.Enriched {
		p := proc("exploit", "/tmp/exploit")
		p.Uid, p.Euid = uid, uid
		return sysEv(p, event.SysUserfaultfd, ret)
	}
	const bpfRule, uffdRule = "BPF Program Not Profiled", "Unprivileged Delegation of Page Faults Handling to a Userspace Process"
	const mountRule = "Launch Sensitive Mount Container"
	mountInit := func(ms []event.Mount) *event.Enriched {
		k := ctr()
		k.Mounts = ms
		p := inCtr(proc("nginx", "/usr/sbin/nginx"), k)
		p.NSKnown, p.VPid, p.VPgid = true, 1, 1
		return execEv(p)
	}
	for _, tc := range []struct {
		name string
		e    *event.Enriched
		rule string
		want bool
	}{
		{"BPF_PROG_LOAD", bpfEv(5), bpfRule, true},
		{"BPF_MAP_CREATE", bpfEv(0), bpfRule, false},
		{"userfaultfd uid 1000", uffd(1000, 3), uffdRule, true},
		// (evt.rawres >= 0 or evt.res != -1) is true for a failure too:
		// evt.res renders a failure by its errno name (EPERM), as Falco's.
		{"userfaultfd uid 1000 failed", uffd(1000, -1), uffdRule, true},
		{"userfaultfd root", uffd(0, 3), uffdRule, false},
		// The container's init exec'd: a /proc host mount in its CRI
		// metadata makes it a sensitive mount container.
		{"init with /proc mount", mountInit([]event.Mount{{Source: "/proc", Dest: "/host/proc", RW: false, Propagation: "private"}}), mountRule, true},
		{"init with docker.sock mount", mountInit([]event.Mount{{Source: "/var/run/docker.sock", Dest: "/var/run/docker.sock", RW: true, Propagation: "private"}}), mountRule, true},
		{"init with a data mount", mountInit([]event.Mount{{Source: "/srv/data", Dest: "/data", RW: true, Propagation: "private"}}), mountRule, false},
		{"init with no mounts", mountInit([]event.Mount{}), mountRule, false},
		{"init without mount metadata", mountInit(nil), mountRule, false},
	} {
		if got := slices.Contains(fired(tc.e), tc.rule); got != tc.want {
			t.Errorf("%s: %q fired %v, want %v (alerts %v)", tc.name, tc.rule, got, tc.want, fired(tc.e))
		}
	}
}
