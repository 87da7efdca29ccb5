package profiler

import "testing"

func TestFileStratum(t *testing.T) {
	for _, tc := range []struct {
		cat  Category
		text string
		want Stratum
	}{
		{CatFile, "/etc/shadow [read]", StratumSecret},
		{CatFile, "/etc/ssl/private/server.key [read]", StratumSecret},
		{CatFile, "/var/run/secrets/kubernetes.io/serviceaccount/token [read]", StratumSecret},
		{CatFile, "/root/.ssh/authorized_keys [create]", StratumSecret},
		{CatFile, "/home/app/.ssh/id_ed25519 [read]", StratumSecret},
		{CatFile, "/srv/app/tls/server.key [read]", StratumSecret},
		{CatFile, "/proc/<pid>/environ [read]", StratumSecret},
		{CatFile, "/etc/sudoers.d/90-x [write]", StratumSecret},
		{CatFile, "/root/.ssh/<own> [read]", StratumSecret},
		{CatFile, "/srv/keys/<own> [read]", StratumData},
		{CatFile, "/etc/passwd [read]", StratumData},
		{CatFile, "/etc/ssl/certs/ca-certificates.crt [read]", StratumData},
		{CatFile, "/usr/bin/ssh-keygen [exec]", StratumData},
		{CatFile, "/root/.bashrc [create]", StratumData},
		{CatFile, "/usr/lib/python3.11/xml/dom/__pycache__/minidom.cpython-311.pyc [read]", StratumCode},
		{CatFile, "/usr/lib/python3.11/xml [read]", StratumCode},
		{CatFile, "/lib/x86_64-linux-gnu/libtinfo.so.6 [read]", StratumCode},
		{CatFile, "/srv/node/node_modules/express/index.js [read]", StratumCode},
		{CatFile, "/app/handlers/report.py [read]", StratumCode},
		{CatFile, "/app/lib/libfoo.so [read]", StratumCode},
		{CatFile, "/app/lib/libfoo.so.1 [read]", StratumCode},
		{CatFile, "/app/data/notes.sold [read]", StratumData},
		{CatFile, "/usr/lib/x86_64-linux-gnu/libc.so.6 [write]", StratumData},
		{CatFile, "/usr/local/bin/x [exec]", StratumData},
		{CatFile, "/tmp/x.so [create]", StratumData},
		{CatFile, "/proc/sys/vm/overcommit_memory [read]", StratumKernel},
		{CatFile, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us [read]", StratumKernel},
		{CatFile, "/proc [read]", StratumKernel},
		{CatFile, "/proc/sys/kernel/core_pattern [write]", StratumData},
		{CatFile, "/procedures/x [read]", StratumData},
		{CatProcess, "/usr/bin/cat [cat <path>]", StratumData},
	} {
		if got := FileStratum(tc.cat, tc.text); got != tc.want {
			t.Errorf("FileStratum(%s, %q) = %s, want %s", tc.cat, tc.text, got, tc.want)
		}
	}
}
