package main

// Programs of the containers-v2 services and their clients. The services
// are Debian's packages; the two applications and every client are ours.

// pyApp is the Python web application (stdlib only): an item API on
// SQLite, cache files with generated names, reports written then gzipped by
// a subprocess, a version endpoint that runs a program, an error path that
// imports modules never loaded before, and two deliberate flaws the attacks
// use: /lookup passes its argument to a shell, /static joins its argument
// to the static directory unchecked.
const pyApp = `import http.server, json, os, secrets, sqlite3, subprocess, time, urllib.parse, glob

ROOT = "/srv/app"
DB = ROOT + "/data/app.db"
CACHE = ROOT + "/cache"
REPORTS = ROOT + "/reports"

def init():
    os.makedirs(CACHE, exist_ok=True)
    os.makedirs(REPORTS, exist_ok=True)
    con = sqlite3.connect(DB)
    con.execute("create table if not exists items(id integer primary key, name text, qty integer)")
    if con.execute("select count(*) from items").fetchone()[0] == 0:
        con.executemany("insert into items(name, qty) values(?, ?)", [("widget", 3), ("gadget", 7), ("gizmo", 1)])
    con.commit()
    con.close()

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        with open("/var/log/app/access.log", "a") as f:
            f.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, code, body, ctype="application/json"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        try:
            if u.path == "/":
                self.reply(200, "ok\n", "text/plain")
            elif u.path == "/items":
                con = sqlite3.connect(DB)
                rows = con.execute("select id, name, qty from items").fetchall()
                con.close()
                self.reply(200, json.dumps(rows))
            elif u.path == "/cache":
                key = secrets.token_hex(3)
                p = os.path.join(CACHE, "cache-" + key)
                with open(p, "w") as f:
                    f.write(json.dumps({"key": key, "t": time.time()}))
                with open(p) as f:
                    body = f.read()
                old = sorted(glob.glob(CACHE + "/cache-*"), key=os.path.getmtime)
                for o in old[:-20]:
                    os.unlink(o)
                self.reply(200, body)
            elif u.path == "/report":
                name = os.path.join(REPORTS, "report-%d.csv" % int(time.time() * 1000))
                con = sqlite3.connect(DB)
                with open(name, "w") as f:
                    for r in con.execute("select id, name, qty from items"):
                        f.write("%d,%s,%d\n" % r)
                con.close()
                subprocess.run(["gzip", "-f", name], check=True)
                for o in sorted(glob.glob(REPORTS + "/*.gz"))[:-10]:
                    os.unlink(o)
                self.reply(200, "report written\n", "text/plain")
            elif u.path == "/version":
                out = subprocess.run(["uname", "-r"], capture_output=True).stdout
                self.reply(200, out, "text/plain")
            elif u.path == "/lookup":
                host = q.get("host", ["localhost"])[0]
                out = subprocess.run("getent hosts " + host, shell=True, capture_output=True).stdout
                self.reply(200, out, "text/plain")
            elif u.path == "/static":
                name = q.get("file", ["index.html"])[0]
                with open(os.path.join(ROOT, "static", name), "rb") as f:
                    self.reply(200, f.read(), "text/html")
            elif u.path == "/export":
                import csv, io
                buf = io.StringIO()
                con = sqlite3.connect(DB)
                csv.writer(buf).writerows(con.execute("select * from items"))
                con.close()
                self.reply(200, buf.getvalue(), "text/csv")
            elif u.path == "/boom":
                import xml.dom.minidom
                raise ValueError(xml.dom.minidom.parseString("<a/>").documentElement.tagName)
            else:
                self.reply(404, "not found\n", "text/plain")
        except Exception as e:
            self.reply(500, "error: %s\n" % e, "text/plain")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = json.loads(self.rfile.read(n) or b"{}")
        con = sqlite3.connect(DB)
        con.execute("insert into items(name, qty) values(?, ?)", (str(data.get("name", "x"))[:40], int(data.get("qty", 1))))
        con.commit()
        con.close()
        self.reply(201, "{}")

init()
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
`

// nodeApp is the Node.js application: a JSON user API, uploads stored
// under generated names and renamed into place, a child process now and
// then, an access log reopened on SIGHUP (log rotation), an error path
// (a 500) that loads its error reporter module (nodeErrors) only when the
// first error happens, and a deliberate flaw: /files passes its argument
// to a shell.
const nodeApp = `const http = require("http");
const fs = require("fs");
const crypto = require("crypto");
const cp = require("child_process");
const url = require("url");

const users = JSON.parse(fs.readFileSync("/srv/node/users.json"));
const up = "/srv/node/uploads";
fs.mkdirSync(up, { recursive: true });
const logPath = "/var/log/node/access.log";
fs.mkdirSync("/var/log/node", { recursive: true });
let log = fs.createWriteStream(logPath, { flags: "a" });
process.on("SIGHUP", () => {
  const old = log;
  log = fs.createWriteStream(logPath, { flags: "a" });
  old.end();
});

http.createServer((req, res) => {
  const u = url.parse(req.url, true);
  log.write(new Date().toISOString() + " " + req.socket.remoteAddress + " " + req.method + " " + JSON.stringify(req.url) + "\n");
  const send = (code, body, type) => { res.writeHead(code, { "Content-Type": type || "application/json" }); res.end(body); };
  try {
    if (u.pathname === "/") return send(200, "ok\n", "text/plain");
    if (u.pathname === "/users") return send(200, JSON.stringify(users));
    if (u.pathname === "/upload") {
      const id = crypto.randomBytes(4).toString("hex");
      const tmp = up + "/.tmp-" + id;
      fs.writeFileSync(tmp, JSON.stringify({ id, t: Date.now() }));
      fs.renameSync(tmp, up + "/upload-" + id + ".json");
      const all = fs.readdirSync(up).filter(f => f.startsWith("upload-")).sort();
      for (const f of all.slice(0, Math.max(0, all.length - 20))) fs.unlinkSync(up + "/" + f);
      return send(201, JSON.stringify({ id }));
    }
    if (u.pathname === "/time") {
      return cp.execFile("date", ["-u"], (err, out) => send(200, out, "text/plain"));
    }
    if (u.pathname === "/files") {
      const dir = u.query.dir || "uploads";
      return cp.exec("ls /srv/node/" + dir, (err, out) => send(200, out || "", "text/plain"));
    }
    if (u.pathname === "/boom") {
      require("zlib").gzipSync("x");
      throw new Error("boom");
    }
    send(404, "not found\n", "text/plain");
  } catch (e) {
    require("/srv/node/lib/errors.js").report(e, req);
    send(500, "error: " + e.message + "\n", "text/plain");
  }
}).listen(3000);
`

// nodeErrors is the Node.js app's error reporter, loaded on the first
// error: it appends the stack to the error log.
const nodeErrors = `const fs = require("fs");
const os = require("os");
exports.report = (e, req) => {
  const line = JSON.stringify({ t: new Date().toISOString(), host: os.hostname(), url: req.url, stack: String(e.stack) });
  fs.appendFileSync("/var/log/node/error.log", line + "\n");
};
`

// clientLoad is the load generator run on test host B (host python3), one
// process per service: ordinary requests at a steady pace, and the
// service's life events at intervals with some randomness so training and
// test see them at different times with different details.
const clientLoad = `import http.client, json, os, random, socket, subprocess, sys, time
svc, host = sys.argv[1], sys.argv[2]
# An optional source address (a client from a second address of host B;
# psql and pgbench cannot bind one, so postgres's client ignores it).
src = (sys.argv[3], 0) if len(sys.argv) > 3 else None
rnd = random.Random()

def request(method, port, path, body=None, timeout=5):
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout, source_address=src)
        c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        c.getresponse().read()
        c.close()
    except Exception:
        pass

def get(port, path, timeout=5):
    request("GET", port, path, timeout=timeout)

def post(port, path, obj):
    request("POST", port, path, body=json.dumps(obj).encode())

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def redis(*cmds):
    try:
        s = socket.create_connection((host, 6379), timeout=5, source_address=src)
        for c in cmds:
            s.sendall(resp(*c))
            s.recv(65536)
        s.close()
    except Exception:
        pass

def psql(sql):
    subprocess.run(["psql", "-h", host, "-U", "postgres", "-d", "shop", "-qAtc", sql], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

i = 0
if svc == "postgres":
    subprocess.run(["pgbench", "-h", host, "-U", "postgres", "-i", "-s", "2", "shop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    i += 1
    if svc == "nginx":
        for p in ["/", "/index.html", "/static/app.css", "/api/users", "/missing"]:
            get(8080, p)
        if i % 4 == 0:
            get(8080, "/api/users?page=%d" % rnd.randint(1, 40))
        if i % 40 == 0:
            get(8080, "/api/boom")
        time.sleep(0.5)
    elif svc == "postgres":
        subprocess.run(["pgbench", "-h", host, "-U", "postgres", "-T", str(rnd.randint(20, 40)), "-c", "2", "-R", "20", "shop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i % 3 == 0:
            psql("VACUUM ANALYZE pgbench_accounts")
        if i % 4 == 0:
            psql("CHECKPOINT")
        time.sleep(rnd.uniform(1, 5))
    elif svc == "redis":
        k = rnd.randint(1, 5000)
        redis(("SET", "item:%d" % k, "v%d" % i), ("GET", "item:%d" % rnd.randint(1, 5000)), ("INCR", "hits"), ("LPUSH", "queue", i), ("LTRIM", "queue", 0, 99))
        if i % 600 == 0:
            redis(("BGSAVE",))
        if i % 1500 == 700:
            redis(("BGREWRITEAOF",))
        time.sleep(0.1)
    elif svc == "python":
        get(8000, "/")
        get(8000, "/items")
        if i % 3 == 0:
            get(8000, "/cache")
        if i % 5 == 0:
            post(8000, "/items", {"name": "item%d" % i, "qty": rnd.randint(1, 9)})
        if i % 20 == 0:
            get(8000, "/report")
        if i % 30 == 0:
            get(8000, "/version")
        if i % 25 == 0:
            get(8000, "/lookup?host=" + rnd.choice(["localhost", "db.internal", "cache.internal"]))
        if i % 45 == 0:
            get(8000, "/static?file=index.html")
        if i % 300 == 150:
            get(8000, "/boom")
        if i % 200 == 100:
            get(8000, "/export")
        time.sleep(0.7)
    elif svc == "node":
        get(3000, "/")
        get(3000, "/users")
        if i % 3 == 0:
            get(3000, "/upload")
        if i % 15 == 0:
            get(3000, "/time")
        if i % 20 == 0:
            get(3000, "/files?dir=uploads")
        if i % 250 == 125:
            get(3000, "/boom")
        time.sleep(0.7)
`
