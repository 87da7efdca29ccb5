// Package lidds reads LID-DS recordings (the Leipzig Intrusion Detection
// Data Set, 2019 and 2021 editions) as driftwatch events, so a recording can
// be replayed, learned from and evaluated like one of our traces.
//
// A LID-DS 2021 recording is a zip (or a directory) holding <name>.sc, the
// sysdig-style syscall text, and <name>.json, the run's metadata with the
// exploit time. Each .sc line is
//
//	<unix ts ns> <uid> <pid> <process name> <tid> <syscall> <'>' enter | '<' exit> <arg=value ...>
//
// A LID-DS 2019 recording is <name>.txt beside the scenario's runs.csv, with
// lines "<evt num> <HH:MM:SS.ns> <cpu> <uid> <process> <tid> <dir> <syscall> <args>".
//
// Pairing. Every enter is paired with the next exit of the same thread; each
// pair becomes ONE event.Event at the exit's time, with the enter's
// arguments and the exit's result. Lines that cannot be paired:
//   - an exit whose enter precedes the recording (the first line of a thread
//     is an exit) still becomes an event, with the exit's arguments only;
//   - an enter whose exit follows the recording (a thread's last line is an
//     enter, e.g. a blocking epoll_wait) is dropped: the call never returned
//     within the recording, so there is no result to report.
//
// Both are counted in Stats. An enter followed by another enter on the same
// thread (a lost exit) is counted as an unpaired enter and replaced.
//
// Labels follow the LID-DS harness: in a recording whose metadata says
// exploit=true, every syscall at or after time.exploit[0].absolute is attack.
//
// Syscall numbers are x86_64 (event.SyscallNumber). A name missing from that
// table (sysdig pseudo-events such as "switch" or "procexit", 32-bit-only
// calls) gets a stable reserved number ≥ ReservedBase derived from a hash of
// the name, so the sequence model still tells them apart across files.
package lidds

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/event"
)

// ReservedBase is the first syscall number used for names that are not in
// the x86_64 table.
const ReservedBase = 1000

// SyscallNumber maps a LID-DS syscall name to an event syscall number: the
// x86_64 number when the name is known, otherwise a stable number in
// [ReservedBase, 65535) derived from the name.
func SyscallNumber(name string) uint16 {
	if nr, ok := event.SyscallNumber(name); ok {
		return nr
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return uint16(ReservedBase + h.Sum32()%(math.MaxUint16-ReservedBase))
}

// Meta is what the recording's metadata says.
type Meta struct {
	Name          string
	Edition       int // 2019 or 2021
	Image         string
	Exploit       bool
	ExploitName   string
	RecordingTime float64 // seconds
	// ExploitNs is time.exploit[0].absolute in ns since the epoch (0 when none).
	ExploitNs int64
	// WarmupEndNs and ContainerReadyNs are 0 when the metadata lacks them.
	WarmupEndNs      int64
	ContainerReadyNs int64
	// Victim is the name of the container whose syscalls were recorded
	// (2021: the container with role "victim"; its LID-DS name is the
	// container id), VictimIP its address.
	Victim   string
	VictimIP string
}

// ContainerID returns the id events of the recording are attributed to:
// the victim container's name (2021), else "lid-ds-<recording>" when the
// image is known (2019), else "" (host).
func (m Meta) ContainerID() string {
	switch {
	case m.Victim != "":
		return m.Victim
	case m.Image != "":
		return "lid-ds-" + m.Name
	}
	return ""
}

// CgroupID is the synthetic cgroup id of the recorded container: LID-DS
// records one container, so every event carries it when the container is
// known and the snapshot maps it to that container.
const CgroupID = 0x11d5

// Stats counts what the reader saw; final once Next returned io.EOF.
type Stats struct {
	Lines        int // syscall lines read
	Pairs        int // complete enter/exit pairs
	OrphanExits  int // exits whose enter precedes the recording (emitted)
	OrphanEnters int // enters whose exit follows the recording (dropped)
	AttackLines  int // lines at or after the exploit time
	Events       int // events returned
	Skipped      int // blank lines
}

type pending struct {
	time int64
	name string
	args []byte
}

// Reader streams one recording's events. It implements event.SnapshotSource.
type Reader struct {
	meta    Meta
	closers []io.Closer
	br      *bufio.Reader
	file    string
	line    int
	edition int
	// day is the midnight offset for 2019 time-of-day stamps.
	open  map[uint32]*pending
	stats Stats
	// cgroup is CgroupID when the recorded container is known, else 0.
	cgroup uint64
	num    uint64
	done   bool
}

// Open opens a recording: a LID-DS 2021 zip, a directory with one .sc and
// its .json, a .sc file (its .json beside it), or a LID-DS 2019 .txt file
// (runs.csv beside it supplies the labels).
func Open(path string) (*Reader, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("lidds: %w", err)
	}
	switch {
	case st.IsDir():
		sc, err := findOne(path, ".sc")
		if err != nil {
			return nil, err
		}
		return openSC(sc)
	case strings.HasSuffix(path, ".zip"):
		return openZip(path)
	case strings.HasSuffix(path, ".sc"):
		return openSC(path)
	case strings.HasSuffix(path, ".txt"):
		return open2019(path)
	}
	return nil, fmt.Errorf("lidds: %s: not a LID-DS recording (want .zip, .sc, .txt or a directory)", path)
}

func findOne(dir, ext string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		return "", fmt.Errorf("lidds: %w", err)
	}
	if len(m) != 1 {
		return "", fmt.Errorf("lidds: %s: want exactly one %s file, found %d", dir, ext, len(m))
	}
	return m[0], nil
}

func openZip(path string) (*Reader, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("lidds: %s: %w", path, err)
	}
	var sc, js *zip.File
	for _, f := range zr.File {
		switch {
		case strings.HasSuffix(f.Name, ".sc"):
			sc = f
		case strings.HasSuffix(f.Name, ".json"):
			js = f
		}
	}
	if sc == nil || js == nil {
		zr.Close()
		return nil, fmt.Errorf("lidds: %s: zip lacks a .sc or a .json member", path)
	}
	jr, err := js.Open()
	if err != nil {
		zr.Close()
		return nil, fmt.Errorf("lidds: %s: %s: %w", path, js.Name, err)
	}
	meta, err := ParseMeta(jr, path+":"+js.Name)
	jr.Close()
	if err != nil {
		zr.Close()
		return nil, err
	}
	meta.Name = strings.TrimSuffix(filepath.Base(sc.Name), ".sc")
	rc, err := sc.Open()
	if err != nil {
		zr.Close()
		return nil, fmt.Errorf("lidds: %s: %s: %w", path, sc.Name, err)
	}
	return newReader(meta, rc, path+":"+sc.Name, 2021, rc, zr), nil
}

func openSC(path string) (*Reader, error) {
	js := strings.TrimSuffix(path, ".sc") + ".json"
	jf, err := os.Open(js)
	if err != nil {
		return nil, fmt.Errorf("lidds: metadata for %s: %w", path, err)
	}
	meta, err := ParseMeta(jf, js)
	jf.Close()
	if err != nil {
		return nil, err
	}
	meta.Name = strings.TrimSuffix(filepath.Base(path), ".sc")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lidds: %w", err)
	}
	return newReader(meta, f, path, 2021, f), nil
}

func newReader(meta Meta, r io.Reader, name string, edition int, closers ...io.Closer) *Reader {
	meta.Edition = edition
	rd := &Reader{
		meta: meta, br: bufio.NewReaderSize(r, 64<<10), file: name, edition: edition,
		open: map[uint32]*pending{}, closers: closers,
	}
	if meta.ContainerID() != "" {
		rd.cgroup = CgroupID
	}
	return rd
}

// rawMeta mirrors the LID-DS 2021 .json fields we use.
type rawMeta struct {
	Exploit       bool        `json:"exploit"`
	ExploitName   string      `json:"exploit_name"`
	Image         string      `json:"image"`
	RecordingTime json.Number `json:"recording_time"`
	Container     []struct {
		Name string `json:"name"`
		Role string `json:"role"`
		IP   string `json:"ip"`
	} `json:"container"`
	Time struct {
		Exploit []struct {
			Absolute json.Number `json:"absolute"`
			Name     string      `json:"name"`
		} `json:"exploit"`
		WarmupEnd struct {
			Absolute json.Number `json:"absolute"`
		} `json:"warmup_end"`
		ContainerReady struct {
			Absolute json.Number `json:"absolute"`
		} `json:"container_ready"`
	} `json:"time"`
}

// ParseMeta decodes a LID-DS 2021 metadata .json; name is used in errors.
func ParseMeta(r io.Reader, name string) (Meta, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var raw rawMeta
	if err := dec.Decode(&raw); err != nil {
		return Meta{}, fmt.Errorf("lidds: metadata %s: %w", name, err)
	}
	m := Meta{Exploit: raw.Exploit, ExploitName: raw.ExploitName, Image: raw.Image}
	if raw.RecordingTime != "" {
		v, err := raw.RecordingTime.Float64()
		if err != nil {
			return Meta{}, fmt.Errorf("lidds: metadata %s: field recording_time: %w", name, err)
		}
		m.RecordingTime = v
	}
	for _, c := range raw.Container {
		if c.Role == "victim" {
			m.Victim, m.VictimIP = c.Name, c.IP
		}
	}
	var err error
	if m.WarmupEndNs, err = secondsToNs(raw.Time.WarmupEnd.Absolute); err != nil {
		return Meta{}, fmt.Errorf("lidds: metadata %s: field time.warmup_end.absolute: %w", name, err)
	}
	if m.ContainerReadyNs, err = secondsToNs(raw.Time.ContainerReady.Absolute); err != nil {
		return Meta{}, fmt.Errorf("lidds: metadata %s: field time.container_ready.absolute: %w", name, err)
	}
	if m.Exploit {
		if len(raw.Time.Exploit) == 0 {
			return Meta{}, fmt.Errorf("lidds: metadata %s: exploit is true but field time.exploit is empty", name)
		}
		if m.ExploitNs, err = secondsToNs(raw.Time.Exploit[0].Absolute); err != nil || m.ExploitNs == 0 {
			return Meta{}, fmt.Errorf("lidds: metadata %s: field time.exploit[0].absolute %q: %v", name, raw.Time.Exploit[0].Absolute, err)
		}
		if m.ExploitName == "" {
			m.ExploitName = raw.Time.Exploit[0].Name
		}
	}
	return m, nil
}

// secondsToNs converts a decimal seconds string to ns exactly (no float
// rounding): "1631078877.513988" → 1631078877513988000.
func secondsToNs(n json.Number) (int64, error) {
	s := string(n)
	if s == "" {
		return 0, nil
	}
	intPart, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, err
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	frac += strings.Repeat("0", 9-len(frac))
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	return sec*1e9 + ns, nil
}

// Meta returns the recording's metadata.
func (r *Reader) Meta() Meta { return r.meta }

// Stats returns the counts so far (final after io.EOF).
func (r *Reader) Stats() Stats { return r.stats }

// Close releases the files.
func (r *Reader) Close() error {
	var errs []error
	for _, c := range r.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Snapshot returns an empty process table (LID-DS records no /proc state)
// stamped with the container-ready time and the victim container.
func (r *Reader) Snapshot() *event.Snapshot {
	s := &event.Snapshot{Time: r.meta.ContainerReadyNs, Hostname: "lid-ds"}
	if id := r.meta.ContainerID(); id != "" {
		path := "lid-ds/" + id
		s.Cgroups = map[uint64]string{CgroupID: path}
		s.Containers = []event.ContainerInfo{{
			ID: id, Name: id, Image: r.meta.Image, Runtime: "docker",
			CgroupID: CgroupID, CgroupPath: path,
		}}
	}
	return s
}

// OpenEnded is the end of the attack window of a LID-DS recording: the
// exploit runs until the recording ends.
const OpenEnded = math.MaxInt64 / 2

// Labels returns the LID-DS labelling as driftwatch labels: one attack from
// the exploit time to the end of the recording, any process. A recording
// without exploit has no attack.
func (r *Reader) Labels() *labels.Labels {
	l := &labels.Labels{Version: labels.Version, Trace: r.meta.Name, Attacks: []labels.Attack{}}
	if r.meta.Exploit && r.meta.ExploitNs > 0 {
		name := r.meta.ExploitName
		if name == "" || name == "default" {
			name = r.meta.Image
		}
		l.Attacks = append(l.Attacks, labels.Attack{Name: name, StartNs: r.meta.ExploitNs, EndNs: OpenEnded})
	}
	return l
}

// line is one parsed .sc line; byte slices alias the read buffer.
type line struct {
	ts      int64
	uid     uint32
	pid     uint32
	tid     uint32
	comm    []byte
	name    []byte
	enter   bool
	args    []byte
	hasArgs bool
}

// Next returns the next event (one per enter/exit pair, at the exit).
func (r *Reader) Next(ev *event.Event) error {
	if r.done {
		return io.EOF
	}
	for {
		raw, err := r.readLine()
		if err == io.EOF {
			r.finish()
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("lidds: %s: line %d: %w", r.file, r.line, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			r.stats.Skipped++
			continue
		}
		var l line
		if r.edition == 2019 {
			err = parse2019(raw, &l)
		} else {
			err = parse2021(raw, &l)
		}
		if err != nil {
			return fmt.Errorf("lidds: %s: line %d: %w", r.file, r.line, err)
		}
		r.stats.Lines++
		if r.meta.Exploit && r.meta.ExploitNs > 0 && l.ts >= r.meta.ExploitNs {
			r.stats.AttackLines++
		}
		if l.enter {
			p := r.open[l.tid]
			if p == nil {
				p = &pending{}
				r.open[l.tid] = p
			} else if p.name != "" {
				r.stats.OrphanEnters++ // lost exit: replaced by this enter
			}
			p.time, p.name = l.ts, string(l.name)
			p.args = append(p.args[:0], l.args...)
			continue
		}
		var enterArgs []byte
		p := r.open[l.tid]
		if p != nil && p.name == string(l.name) {
			enterArgs = p.args
			p.name = ""
			r.stats.Pairs++
		} else {
			if p != nil && p.name != "" {
				// Exit of a different call: the pending enter lost its exit.
				r.stats.OrphanEnters++
				p.name = ""
			}
			r.stats.OrphanExits++
		}
		r.fill(ev, &l, enterArgs)
		r.stats.Events++
		return nil
	}
}

func (r *Reader) finish() {
	if r.done {
		return
	}
	r.done = true
	for _, p := range r.open {
		if p.name != "" {
			r.stats.OrphanEnters++
		}
	}
}

// readLine returns the next line without its newline; it copes with lines
// longer than the buffer (data= payloads).
func (r *Reader) readLine() ([]byte, error) {
	r.line++
	b, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), b...)
		for err == bufio.ErrBufferFull {
			b, err = r.br.ReadSlice('\n')
			long = append(long, b...)
		}
		b = long
	}
	if err == io.EOF && len(b) > 0 {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// fields splits s on single spaces, up to n fields; the last holds the rest.
func fields(s []byte, out [][]byte) int {
	n := 0
	for n < len(out)-1 {
		i := bytes.IndexByte(s, ' ')
		if i < 0 {
			break
		}
		out[n] = s[:i]
		s = s[i+1:]
		n++
	}
	out[n] = s
	return n + 1
}

func parse2021(raw []byte, l *line) error {
	var f [8][]byte
	n := fields(raw, f[:])
	if n < 7 {
		return fmt.Errorf("want at least 7 space-separated fields (ts uid pid comm tid syscall dir), got %d", n)
	}
	var err error
	if l.ts, err = strconv.ParseInt(string(f[0]), 10, 64); err != nil {
		return fmt.Errorf("field timestamp: %w", err)
	}
	if l.uid, err = parseU32(f[1]); err != nil {
		return fmt.Errorf("field uid: %w", err)
	}
	if l.pid, err = parseU32(f[2]); err != nil {
		return fmt.Errorf("field pid: %w", err)
	}
	l.comm = f[3]
	if l.tid, err = parseU32(f[4]); err != nil {
		return fmt.Errorf("field tid: %w", err)
	}
	l.name = f[5]
	if err := parseDir(f[6], l); err != nil {
		return err
	}
	if n == 8 {
		l.args = f[7]
	}
	return nil
}

func parseDir(d []byte, l *line) error {
	switch string(d) {
	case ">":
		l.enter = true
	case "<":
		l.enter = false
	default:
		return fmt.Errorf("field direction: want '>' or '<', got %q", event.Escape(d))
	}
	return nil
}

func parseU32(b []byte) (uint32, error) {
	v, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(v), err
}

// fill builds the event from the exit line and the enter's arguments.
func (r *Reader) fill(ev *event.Event, l *line, enterArgs []byte) {
	ev.Reset()
	r.num++
	ev.Kind = event.KindSyscall
	ev.Num = r.num
	ev.Time = l.ts
	ev.Syscall = SyscallNumber(string(l.name))
	ev.Pid, ev.Tid = l.pid, l.tid
	if ev.Pid == 0 {
		ev.Pid = l.tid // LID-DS 2019 has no pid: use the thread id
	}
	ev.Uid, ev.Euid = l.uid, l.uid
	ev.LoginUID = math.MaxUint32 // unset (printed -1, as Falco does)
	ev.CgroupID = r.cgroup
	ev.SetComm(string(l.comm))
	ev.Fd, ev.Fd2 = -1, -1
	eachArg(enterArgs, func(k, v []byte) { r.arg(ev, k, v, true) })
	eachArg(l.args, func(k, v []byte) { r.arg(ev, k, v, false) })
}

// eachArg calls fn for every key=value token.
func eachArg(s []byte, fn func(k, v []byte)) {
	for len(s) > 0 {
		var tok []byte
		if i := bytes.IndexByte(s, ' '); i >= 0 {
			tok, s = s[:i], s[i+1:]
		} else {
			tok, s = s, nil
		}
		if k, v, ok := bytes.Cut(tok, []byte{'='}); ok {
			fn(k, v)
		}
	}
}

// leadingInt parses the number before a "(" annotation: "12(<4t>...)" → 12,
// "-2(ENOENT)" → -2. Hex results (mmap addresses) parse as hex.
func leadingInt(v []byte) (int64, bool) {
	if i := bytes.IndexByte(v, '('); i >= 0 {
		v = v[:i]
	}
	if len(v) == 0 {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return n, true
	}
	if n, err := strconv.ParseUint(string(v), 16, 64); err == nil {
		return int64(n), true
	}
	return 0, false
}

// annotation returns the text inside the first "(...)" of v.
func annotation(v []byte) []byte {
	i := bytes.IndexByte(v, '(')
	if i < 0 || v[len(v)-1] != ')' {
		return nil
	}
	return v[i+1 : len(v)-1]
}

func (r *Reader) arg(ev *event.Event, k, v []byte, enter bool) {
	switch string(k) {
	case "res":
		if n, ok := leadingInt(v); ok {
			ev.Ret = n
		}
	case "fd":
		n, ok := leadingInt(v)
		if !ok {
			return
		}
		if enter {
			ev.Fd = int32(n)
		} else if ev.Fd < 0 && bytes.IndexByte(v, '(') >= 0 || n < 0 {
			// An exit's fd= is the result of an fd-creating call (open, accept, socket).
			ev.Ret = n
		}
		if a := annotation(v); a != nil {
			sockProto(ev, a)
		}
	case "flags":
		if n, ok := leadingInt(v); ok {
			ev.Flags = LinuxFlags(ev.Syscall, uint32(n))
		}
	case "ptid":
		if n, ok := leadingInt(v); ok {
			ev.Ppid = uint32(n)
		}
	case "tuple":
		tuple(ev, v)
	default:
		r.tableArg(ev, k, v)
	}
}

// tableArg stores argument k by the syscall's row of event's table: in the
// Event field the row names. Names the row lacks (or keeps outside the
// Event) fall back to the aliases sysdig output uses for paths.
func (r *Reader) tableArg(ev *event.Event, k, v []byte) {
	a := event.SpecOf(ev.Syscall).ArgByName(string(k))
	from := event.SlotNone
	if a != nil {
		from = a.From
	}
	if from == event.SlotNone {
		switch string(k) {
		case "name", "path", "filename", "pathname", "oldpath", "exe":
			if string(k) == "exe" && ev.Syscall != event.SysExecve {
				return
			}
			from = event.SlotPath
		case "newpath", "linkpath", "target":
			from = event.SlotPath2
		default:
			return
		}
	}
	switch from {
	case event.SlotPath:
		if p := pathArg(v); len(p) > 0 && len(ev.Path) == 0 {
			ev.Path = append(ev.Path[:0], p...)
		}
		return
	case event.SlotPath2:
		if p := pathArg(v); len(p) > 0 {
			ev.Path2 = append(ev.Path2[:0], p...)
		}
		return
	}
	n, ok := leadingInt(v)
	if !ok {
		return
	}
	switch from {
	case event.SlotMode:
		ev.Mode = uint32(n)
	case event.SlotArg3:
		ev.Arg3 = uint64(n)
	case event.SlotRaw0, event.SlotRaw1, event.SlotRaw2:
		ev.Raw[from-event.SlotRaw0] = uint64(n)
	case event.SlotFlags:
		ev.Flags = uint32(n)
	}
}

// pathArg strips sysdig's "(resolved)" suffix, preferring the resolved path.
func pathArg(v []byte) []byte {
	if a := annotation(v); len(a) > 0 && a[0] == '/' {
		return a
	}
	if i := bytes.IndexByte(v, '('); i > 0 {
		return v[:i]
	}
	return v
}

// sockProto reads sysdig's fd annotation "<4t>a:p->b:q" for the protocol.
func sockProto(ev *event.Event, a []byte) {
	if len(a) < 4 || a[0] != '<' || a[3] != '>' {
		return
	}
	switch a[1] {
	case '4':
		ev.Family = event.AFInet
	case '6':
		ev.Family = event.AFInet6
	case 'u':
		ev.Family = event.AFUnix
		return
	default:
		return
	}
	switch a[2] {
	case 't':
		ev.Proto = event.ProtoTCP
	case 'u':
		ev.Proto = event.ProtoUDP
	}
	if ev.Src == (netip.AddrPort{}) {
		tuple(ev, a[4:])
	}
}

// tuple parses "src:port->dst:port"; for accept the source is the client.
func tuple(ev *event.Event, v []byte) {
	s, d, ok := bytes.Cut(v, []byte("->"))
	if !ok {
		return
	}
	src, err1 := netip.ParseAddrPort(string(s))
	dst, err2 := netip.ParseAddrPort(string(d))
	if err1 != nil || err2 != nil {
		return
	}
	ev.Src, ev.Dst = src, dst
	if ev.Family == 0 {
		if src.Addr().Is4() {
			ev.Family = event.AFInet
		} else {
			ev.Family = event.AFInet6
		}
	}
}

// --- LID-DS 2019 ---

func open2019(path string) (*Reader, error) {
	name := strings.TrimSuffix(filepath.Base(path), ".txt")
	meta := Meta{Name: name}
	runs := filepath.Join(filepath.Dir(path), "runs.csv")
	rel, err := read2019Run(runs, name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if rel != nil {
		meta.Image, meta.Exploit, meta.RecordingTime = rel.image, rel.exploit, rel.recording
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lidds: %w", err)
	}
	r := newReader(meta, f, path, 2019, f)
	if rel != nil && rel.exploit {
		// The 2019 exploit start is relative to the recording's start: the
		// first syscall's time of day.
		first, err := first2019Time(path)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.meta.ExploitNs = first + int64(rel.exploitStart*float64(time.Second))
	}
	return r, nil
}

type run2019 struct {
	image                   string
	exploit                 bool
	recording, exploitStart float64
}

// read2019Run finds the recording's row in runs.csv: image_name,
// scenario_name, is_executing_exploit, warmup_time, recording_time,
// exploit_start_time.
func read2019Run(path, name string) (*run2019, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("lidds: %s: %w", path, err)
	}
	for i, row := range rows {
		if len(row) < 6 || row[1] != name {
			continue
		}
		exploit, err := strconv.ParseBool(strings.ToLower(row[2]))
		if err != nil {
			return nil, fmt.Errorf("lidds: %s: row %d: field is_executing_exploit: %w", path, i+1, err)
		}
		rt, _ := strconv.ParseFloat(row[4], 64)
		es, err := strconv.ParseFloat(row[5], 64)
		if err != nil && exploit {
			return nil, fmt.Errorf("lidds: %s: row %d: field exploit_start_time: %w", path, i+1, err)
		}
		return &run2019{image: row[0], exploit: exploit, recording: rt, exploitStart: es}, nil
	}
	return nil, nil
}

// Run2019 is one row of a LID-DS 2019 scenario's runs.csv.
type Run2019 struct {
	// Name is the recording (scenario_name column): <Name>.txt beside runs.csv.
	Name    string
	Image   string
	Exploit bool
}

// Runs2019 lists the rows of a LID-DS 2019 runs.csv in file order.
func Runs2019(path string) ([]Run2019, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lidds: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("lidds: %s: %w", path, err)
	}
	var out []Run2019
	for i, row := range rows {
		if i == 0 && len(row) > 1 && row[1] == "scenario_name" {
			continue // header
		}
		if len(row) < 3 {
			return nil, fmt.Errorf("lidds: %s: row %d: %d fields, want image_name, scenario_name, is_executing_exploit, ...", path, i+1, len(row))
		}
		exploit, err := strconv.ParseBool(strings.ToLower(row[2]))
		if err != nil {
			return nil, fmt.Errorf("lidds: %s: row %d: field is_executing_exploit: %w", path, i+1, err)
		}
		out = append(out, Run2019{Name: row[1], Image: row[0], Exploit: exploit})
	}
	return out, nil
}

func first2019Time(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("lidds: %w", err)
	}
	defer f.Close()
	r := newReader(Meta{}, f, path, 2019)
	for {
		raw, err := r.readLine()
		if err != nil {
			return 0, fmt.Errorf("lidds: %s: no syscall line: %w", path, err)
		}
		var l line
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		if err := parse2019(raw, &l); err != nil {
			return 0, fmt.Errorf("lidds: %s: line %d: %w", path, r.line, err)
		}
		return l.ts, nil
	}
}

// parse2019 parses "<num> <HH:MM:SS.nnnnnnnnn> <cpu> <uid> <comm> <tid> <dir> <syscall> <args>".
// The time of day becomes ns since midnight of 1970-01-01 (the files carry no date).
func parse2019(raw []byte, l *line) error {
	var f [9][]byte
	n := fields(raw, f[:])
	if n < 8 {
		return fmt.Errorf("want at least 8 space-separated fields (num time cpu uid comm tid dir syscall), got %d", n)
	}
	ts, err := timeOfDay(f[1])
	if err != nil {
		return fmt.Errorf("field time: %w", err)
	}
	l.ts = ts
	if l.uid, err = parseU32(f[3]); err != nil {
		return fmt.Errorf("field uid: %w", err)
	}
	l.comm = f[4]
	if l.tid, err = parseU32(f[5]); err != nil {
		return fmt.Errorf("field tid: %w", err)
	}
	if err := parseDir(f[6], l); err != nil {
		return err
	}
	l.name = f[7]
	if n == 9 {
		l.args = f[8]
	}
	return nil
}

func timeOfDay(b []byte) (int64, error) {
	s := string(b)
	hms, frac, _ := strings.Cut(s, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("want HH:MM:SS.ns, got %q", event.EscapeString(s))
	}
	var secs int64
	for _, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("want HH:MM:SS.ns, got %q", event.EscapeString(s))
		}
		secs = secs*60 + v
	}
	ns, err := secondsToNs(json.Number("0." + frac))
	if err != nil {
		return 0, fmt.Errorf("fraction of %q: %w", event.EscapeString(s), err)
	}
	return secs*1e9 + ns, nil
}

// Detect reports whether path looks like a LID-DS recording: a zip holding a
// .sc member, a directory with exactly one .sc and .json, a .sc file, or a
// LID-DS 2019 .txt whose first line has a HH:MM:SS time in its second field.
func Detect(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if st.IsDir() {
		sc, err1 := findOne(path, ".sc")
		_, err2 := findOne(path, ".json")
		return err1 == nil && err2 == nil && sc != ""
	}
	switch {
	case strings.HasSuffix(path, ".zip"):
		zr, err := zip.OpenReader(path)
		if err != nil {
			return false
		}
		defer zr.Close()
		for _, f := range zr.File {
			if strings.HasSuffix(f.Name, ".sc") {
				return true
			}
		}
	case strings.HasSuffix(path, ".sc"):
		return true
	case strings.HasSuffix(path, ".txt"):
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		r := newReader(Meta{}, f, path, 2019)
		raw, err := r.readLine()
		var l line
		return err == nil && parse2019(raw, &l) == nil
	}
	return false
}
