package profiler

import (
	"bytes"
	"hash/maphash"
	"net/netip"
	"strconv"
	"unsafe"

	"github.com/driftwatch/driftwatch/event"
)

// Category is a kind of learned behaviour. Each has its own counts,
// lifecycle state and (in package model) threshold and alert rule.
type Category uint8

const (
	// CatProcess: executable path with the argv shape, "/usr/bin/cat [cat <path>]".
	CatProcess Category = iota
	// CatEdge: parent → child executable, "/bin/sh -> /usr/bin/cat".
	CatEdge
	// CatFile: generalised path × access, "/etc/hostname [read]".
	CatFile
	// CatNetwork: outbound peer, "tcp 10.0.0.7 :443".
	CatNetwork
	// CatListen: listening or accepted port, "tcp :8080 [listen]".
	CatListen
	// CatPrivilege: setuid targets, capability changes, ptrace, module
	// loads, mounts, namespace changes, memfd creation: "setuid uid=0".
	CatPrivilege
	// NumCategories is the number of categories; not a category.
	NumCategories
)

var categoryNames = [NumCategories]string{"process", "edge", "file", "network", "listen", "privilege"}

// String returns the category's name as used in JSON, metrics and alerts.
func (c Category) String() string {
	if c < NumCategories {
		return categoryNames[c]
	}
	return "unknown"
}

// ParseCategory parses a category name.
func ParseCategory(s string) (Category, bool) {
	for i, n := range categoryNames {
		if n == s {
			return Category(i), true
		}
	}
	return 0, false
}

// MaxLevels bounds the depth of a feature's back-off chain.
const MaxLevels = 24

// Feature is one generalised feature extracted from an event. Text and the
// chain are views into the Extractor's reusable buffer: valid until the next
// Extract. Chain[0] is the category root; Chain[Depth-1] is the deepest
// node (for files: the path itself, below its directories); Hash is the
// feature (the leaf below the chain).
type Feature struct {
	Cat   Category
	Text  []byte
	Hash  uint64
	Depth int
	Chain [MaxLevels]uint64
	// Levels are the text prefix lengths of the chain nodes.
	Levels [MaxLevels]uint16

	start int
	buf   []byte // only used by helpers building a lone feature
}

func (f *Feature) reset(c Category, start int) {
	f.Cat, f.start, f.Depth = c, start, 1
	f.Chain[0], f.Levels[0] = RootHash, 0
}

func (f *Feature) hashAt(dst []byte, pos int) uint64 { return hashBytes(RootHash, dst[f.start:pos]) }

// addLevel records a chain node whose text ends at absolute buffer position end.
func (f *Feature) addLevel(end int, h uint64) {
	if f.Depth >= MaxLevels {
		return
	}
	rel := end - f.start
	if f.Depth > 0 && int(f.Levels[f.Depth-1]) == rel {
		return
	}
	f.Chain[f.Depth], f.Levels[f.Depth] = h, uint16(rel)
	f.Depth++
}

// NodeText returns the text of chain node i.
func (f *Feature) NodeText(i int) []byte { return f.Text[:f.Levels[i]] }

// Extractor turns enriched events into features. It reuses its buffers and
// allocates nothing in steady state; it is not safe for concurrent use.
type Extractor struct {
	gen     *GenConfig
	buf     []byte
	scratch []byte
	feats   [4]Feature
	n       int

	// Path cache (used when extracting for a known profile): raw path,
	// cwd and access → generalised file feature, keyed by maphash and
	// checked by value. Bounded; cleared when full.
	prof *Profile
	// imageProf is the image's profile when prof is its exec-session
	// profile: the files the image's containers create are known there.
	imageProf *Profile
	cgen      uint64
	seed      maphash.Seed
	cache     map[uint64]*pathEntry

	// own, when set, holds the paths the current container created: its
	// later reads, writes and deletes of them become "<dir>/<own>" features.
	own     *OwnFiles
	ownPath []byte
	fresh   bool // the current create starts the file afresh (see newContent)
	// dirfd is the directory descriptor the current path argument is
	// relative to (-1: the cwd).
	dirfd int32
}

// OwnFiles is the set of files one container created (opened with O_CREAT
// and O_EXCL or O_TRUNC, creat, mkdir, or renamed into place from a file it
// created), by the hash of the cleaned absolute path. Bounded: cleared when it reaches maxOwnFiles.
type OwnFiles struct {
	m map[uint64]struct{}
}

// maxOwnFiles bounds a container's OwnFiles.
const maxOwnFiles = 4096

// has reports whether the container created the path (hash of the cleaned path).
func (o *OwnFiles) has(h uint64) bool {
	_, ok := o.m[h]
	return ok
}

func (o *OwnFiles) add(h uint64) {
	if o.m == nil {
		o.m = make(map[uint64]struct{})
	}
	if len(o.m) >= maxOwnFiles {
		clear(o.m)
	}
	o.m[h] = struct{}{}
}

// Len returns the number of paths in the set.
func (o *OwnFiles) Len() int { return len(o.m) }

type pathEntry struct {
	prof     *Profile
	cgen     uint64
	raw, cwd string
	access   string
	text     string
	hash     uint64
	depth    int
	chain    []uint64
	levels   []uint16
}

// maxPathCache bounds the path cache.
const maxPathCache = 8192

func (x *Extractor) clearCache() { clear(x.cache) }

// extractFor extracts against a known profile, using the path cache.
func (x *Extractor) extractFor(e *event.Enriched, pr *Profile) []Feature {
	x.prof, x.cgen = pr, pr.cats[CatFile].collapseGen
	fs := x.Extract(e, pr.cats[CatFile].collapsed)
	x.prof = nil
	return fs
}

// NewExtractor returns an extractor using gen (defaults filled in).
func NewExtractor(gen GenConfig) *Extractor {
	gen.fill()
	return &Extractor{gen: &gen, buf: make([]byte, 0, 1024), scratch: make([]byte, 0, 512),
		seed: maphash.MakeSeed(), cache: make(map[uint64]*pathEntry), dirfd: -1}
}

// Open flag bits (Linux x86_64).
const (
	oAccMode    = 0x3
	oWronly     = 0x1
	oRdwr       = 0x2
	oCreat      = 0x40
	oTrunc      = 0x200
	einprogress = -115
)

// Access labels of file features.
const (
	AccessRead   = "read"
	AccessWrite  = "write"
	AccessCreate = "create"
	AccessDelete = "delete"
	AccessExec   = "exec"
)

// Extract returns the features of e, using collapsed (the file category's
// collapsed directories of the profile, may be nil). The slice and its
// contents are valid until the next call.
func (x *Extractor) Extract(e *event.Enriched, collapsed map[uint64]string) []Feature {
	x.buf = x.buf[:0]
	x.n = 0
	ev := e.Event
	if ev == nil {
		return nil
	}
	switch ev.Kind {
	case event.KindExec:
		x.process(e)
		x.edge(e)
	case event.KindSyscall:
		if ev.Ret < 0 && !(ev.Ret == einprogress && ev.Syscall == event.SysConnect) {
			return nil
		}
		x.syscall(e, collapsed)
	}
	return x.feats[:x.n]
}

func (x *Extractor) begin(c Category) *Feature {
	f := &x.feats[x.n]
	x.n++
	f.reset(c, len(x.buf))
	return f
}

// finish hashes the whole text as the feature's hash.
func (x *Extractor) finish(f *Feature) {
	f.Text = x.buf[f.start:]
	f.Hash = hashBytes(RootHash, f.Text)
}

// node marks the current end of the text as a chain node.
func (x *Extractor) node(f *Feature) {
	f.addLevel(len(x.buf), hashBytes(RootHash, x.buf[f.start:]))
}

func base(b []byte) []byte {
	if i := bytes.LastIndexByte(b, '/'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func baseStr(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[i+1:]
		}
	}
	return s
}

func (x *Extractor) appendExe(exe []byte) {
	if len(exe) == 0 {
		x.buf = append(x.buf, '?')
		return
	}
	x.scratch = cleanPath(x.scratch[:0], exe, nil)
	c := x.scratch
	for i := 0; i < len(c); {
		if c[i] == '/' {
			x.buf = append(x.buf, '/')
			i++
			continue
		}
		j := i
		for j < len(c) && c[j] != '/' {
			j++
		}
		x.buf = AppendName(x.buf, c[i:j], false)
		i = j
	}
}

// appendProcName writes "exe" or "exe(argv0)" when argv0's base differs
// from the exe's (busybox applets, login shells "-sh").
func (x *Extractor) appendProcName(exe []byte, argv0 string) {
	x.appendExe(exe)
	if argv0 == "" {
		return
	}
	b := baseStr(argv0)
	if b != string(base(exe)) {
		x.buf = append(x.buf, '(')
		x.buf = AppendName(x.buf, sbytes(b), false)
		x.buf = append(x.buf, ')')
	}
}

func firstArg(argv []byte) []byte {
	if i := bytes.IndexByte(argv, 0); i >= 0 {
		return argv[:i]
	}
	return argv
}

// Argv shape limits.
const (
	maxShapeArgs  = 8
	maxLiteralArg = 24
)

// appendArgvShape writes the argv shape: argv[0]'s base name, then each
// argument generalised: options keep their name ("--config=<v>"), paths
// become <path>, numbers <n>, generated tokens their shape, long literals
// <str>; more than eight arguments end in "…".
func (x *Extractor) appendArgvShape(argv []byte) {
	if len(argv) > 0 && argv[len(argv)-1] == 0 {
		argv = argv[:len(argv)-1]
	}
	i := 0
	for n := 0; i <= len(argv) && len(argv) > 0; n++ {
		j := bytes.IndexByte(argv[i:], 0)
		if j < 0 {
			j = len(argv)
		} else {
			j += i
		}
		a := argv[i:j]
		if n == 0 {
			x.buf = AppendName(x.buf, base(a), false)
		} else {
			x.buf = append(x.buf, ' ')
			if n > maxShapeArgs {
				x.buf = append(x.buf, "…"...)
				return
			}
			x.appendArg(a)
		}
		i = j + 1
		if j >= len(argv) {
			break
		}
	}
}

func (x *Extractor) appendArg(a []byte) {
	switch {
	case len(a) == 0:
		x.buf = append(x.buf, `""`...)
	case a[0] == '-':
		if k := bytes.IndexByte(a, '='); k >= 0 {
			x.buf = appendLiteral(x.buf, a[:k])
			x.buf = append(x.buf, "=<v>"...)
		} else if len(a) > maxLiteralArg {
			x.buf = append(x.buf, "-<str>"...)
		} else {
			x.buf = appendLiteral(x.buf, a)
		}
	case bytes.IndexByte(a, '/') >= 0:
		x.buf = append(x.buf, "<path>"...)
	case allDigits(a):
		x.buf = append(x.buf, tokNum...)
	case len(a) > maxLiteralArg || bytes.IndexByte(a, ' ') >= 0:
		x.buf = append(x.buf, "<str>"...)
	default:
		x.buf = AppendName(x.buf, a, false)
	}
}

// appendLiteral copies a short literal, replacing bytes that would make the
// shape ambiguous (spaces, brackets, control characters) with '?'.
func appendLiteral(dst, a []byte) []byte {
	for _, c := range a {
		if c < 0x20 || c == ' ' || c == '[' || c == ']' || c == 0x7f {
			c = '?'
		}
		dst = append(dst, c)
	}
	return dst
}

func (x *Extractor) process(e *event.Enriched) {
	ev := e.Event
	exe := ev.Exe
	argv := ev.Argv
	if len(exe) == 0 && e.Proc != nil {
		exe = sbytes(e.Proc.Exe) // only when the sensor did not fill the event
	}
	f := x.begin(CatProcess)
	x.appendExe(exe)
	x.node(f)
	x.buf = append(x.buf, " ["...)
	if len(argv) == 0 && e.Proc != nil && len(e.Proc.Args) > 0 {
		x.buf = AppendName(x.buf, sbytes(baseStr(e.Proc.Args[0])), false)
	} else {
		x.appendArgvShape(argv)
	}
	x.buf = append(x.buf, ']')
	x.finish(f)
}

func (x *Extractor) edge(e *event.Enriched) {
	ev := e.Event
	f := x.begin(CatEdge)
	var par *event.Process
	if e.Proc != nil {
		par = e.Proc.Parent
	}
	if par == nil {
		x.buf = append(x.buf, '?')
	} else {
		argv0 := ""
		if len(par.Args) > 0 {
			argv0 = par.Args[0]
		}
		x.appendProcName(sbytes(par.Exe), argv0)
	}
	x.buf = append(x.buf, " ->"...)
	x.node(f)
	x.buf = append(x.buf, ' ')
	x.appendProcName(ev.Exe, string(firstArg(ev.Argv)))
	x.finish(f)
}

// ownName is the name written in place of a file the container created
// itself: "/var/cache/app/<own> [read]".
const ownName = "<own>"

// ownHash returns the hash of p cleaned against cwd, and whether it is absolute.
func (x *Extractor) ownHash(p, cwd []byte) (uint64, bool) {
	x.ownPath = cleanPath(x.ownPath[:0], p, cwd)
	if len(x.ownPath) == 0 || x.ownPath[0] != '/' {
		return 0, false
	}
	return hashBytes(RootHash, x.ownPath), true
}

// cwdFor returns the working directory a relative path p resolves against.
func cwdFor(e *event.Enriched, p []byte) []byte {
	if len(p) > 0 && p[0] != '/' {
		if e.Proc != nil && e.Proc.Cwd != "" {
			return sbytes(e.Proc.Cwd)
		} else if len(e.Event.Cwd) > 0 {
			return e.Event.Cwd
		}
	}
	return nil
}

// file extracts a file feature. With an own-file set, a read, write or
// delete of a file the container created becomes "<dir>/<own> [access]";
// creates enter the set. Execs always keep the path: running a dropped
// file is what matters about it.
func (x *Extractor) file(e *event.Enriched, p []byte, access string, collapsed map[uint64]string) {
	cwd := cwdFor(e, p)
	if x.dirfd >= 0 && len(p) > 0 && p[0] != '/' && e.Proc != nil {
		// unlinkat/mkdirat relative to a directory descriptor (gzip
		// removes its input with unlinkat(dirfd, name)): resolved against
		// the descriptor's path, not the cwd.
		if f := e.Proc.FDs[x.dirfd]; f != nil && f.Type == event.FDDirectory && f.Name != "" && f.Name[0] == '/' {
			cwd = sbytes(f.Name)
		}
	}
	handles := access == AccessRead || access == AccessWrite || access == AccessDelete
	if x.own != nil {
		if h, ok := x.ownHash(p, cwd); ok {
			switch {
			case access == AccessCreate:
				if x.fresh {
					x.own.add(h)
				}
			case handles && x.own.has(h):
				x.ownFeature(access, collapsed)
				return
			}
		}
	}
	x.pathFeature(e, p, cwd, access, collapsed)
	if !handles || x.own == nil || x.prof == nil {
		return
	}
	// The creation may have happened before this container's events were
	// seen (an agent restart, a trace cut, a file kept on a volume): a
	// path the profile knows the image's containers create is handled as
	// their own file.
	f := &x.feats[x.n-1]
	pathLen := len(f.Text) - len(access) - len(" []")
	if pathLen <= 0 {
		return
	}
	ch := hashBytes(hashBytes(RootHash, f.Text[:pathLen]), createSuffix)
	if x.prof.cats[CatFile].feats[ch] == nil && (x.imageProf == nil || x.imageProf.cats[CatFile].feats[ch] == nil) {
		return
	}
	if h, ok := x.ownHash(p, cwd); ok {
		x.own.add(h)
		x.n--
		x.buf = x.buf[:f.start]
		x.ownFeature(access, collapsed)
	}
}

var createSuffix = []byte(" [" + AccessCreate + "]")

// ownFeature appends "<dir of x.ownPath>/<own> [access]".
func (x *Extractor) ownFeature(access string, collapsed map[uint64]string) {
	dir := x.ownPath[:bytes.LastIndexByte(x.ownPath, '/')+1]
	own := append(dir, ownName...)
	f := x.begin(CatFile)
	x.buf = x.gen.appendPath(x.buf, f, &x.scratch, own, nil, collapsed)
	x.buf = append(x.buf, " ["...)
	x.buf = append(x.buf, access...)
	x.buf = append(x.buf, ']')
	x.finish(f)
}

// pathFeature appends the file feature "path [access]" (path cache when
// extracting against a profile).
func (x *Extractor) pathFeature(e *event.Enriched, p, cwd []byte, access string, collapsed map[uint64]string) {
	f := x.begin(CatFile)
	var key uint64
	if x.prof != nil && x.cache != nil {
		var h maphash.Hash
		h.SetSeed(x.seed)
		h.Write(p)
		h.WriteByte(0)
		h.Write(cwd)
		h.WriteByte(0)
		h.WriteString(access)
		key = h.Sum64()
		if c := x.cache[key]; c != nil && c.prof == x.prof && c.cgen == x.cgen && c.raw == string(p) && c.cwd == string(cwd) && c.access == access {
			f.Text, f.Hash, f.Depth = sbytes(c.text), c.hash, c.depth
			copy(f.Chain[:], c.chain)
			copy(f.Levels[:], c.levels)
			return
		}
	}
	x.buf = x.gen.appendPath(x.buf, f, &x.scratch, p, cwd, collapsed)
	x.buf = append(x.buf, " ["...)
	x.buf = append(x.buf, access...)
	x.buf = append(x.buf, ']')
	x.finish(f)
	if x.prof != nil && x.cache != nil {
		if len(x.cache) >= maxPathCache {
			clear(x.cache)
		}
		x.cache[key] = &pathEntry{prof: x.prof, cgen: x.cgen, raw: string(p), cwd: string(cwd), access: access,
			text: string(f.Text), hash: f.Hash, depth: f.Depth,
			chain: append([]uint64(nil), f.Chain[:f.Depth]...), levels: append([]uint16(nil), f.Levels[:f.Depth]...)}
	}
}

// openPath prefers the resolved fd name over the raw argument.
func openPath(e *event.Enriched) []byte {
	if e.FD != nil && (e.FD.Type == event.FDFile || e.FD.Type == event.FDDirectory) && e.FD.Name != "" && e.FD.Name[0] == '/' {
		return sbytes(e.FD.Name)
	}
	return e.Event.Path
}

// oExcl is O_EXCL.
const oExcl = 0x80

// newContent reports whether an open with O_CREAT leaves a file whose
// content is the opener's: a new file (O_EXCL) or one truncated (O_TRUNC).
// Appending to a possibly existing file (">>") does not make it one's own.
func newContent(flags uint32) bool {
	return flags&oCreat != 0 && flags&(oExcl|oTrunc) != 0
}

func openAccess(flags uint32) string {
	switch {
	case flags&oCreat != 0:
		return AccessCreate
	case flags&oAccMode == oWronly || flags&oAccMode == oRdwr || flags&oTrunc != 0:
		return AccessWrite
	}
	return AccessRead
}

// protoName is the protocol's name in a feature ("ip" when unknown).
func protoName(p uint8) string {
	if n := event.ProtoName(p); n != "" {
		return n
	}
	return "ip"
}

func inet(ev *event.Event) bool {
	return ev.Family == event.AFInet || ev.Family == event.AFInet6
}

func (x *Extractor) network(ev *event.Event) {
	if !inet(ev) || !ev.Dst.IsValid() {
		return
	}
	f := x.begin(CatNetwork)
	x.buf = append(x.buf, protoName(ev.Proto)...)
	x.buf = append(x.buf, ' ')
	x.buf = x.gen.AppendAddr(x.buf, ev.Dst.Addr())
	x.node(f)
	x.buf = append(x.buf, " :"...)
	x.buf = x.gen.AppendPort(x.buf, ev.Dst.Port())
	x.finish(f)
}

// sockStream is SOCK_STREAM.
const sockStream = 1

// outboundDatagram reports whether a sendto/sendmsg names a peer the
// container chose: only datagrams on unconnected sockets that are not a
// service's own port. Sends on stream sockets go to a peer that connect
// (already a feature) or accept (a client, not an outbound peer) fixed;
// sends on accepted, listening or connected sockets, and datagrams sent
// from a bound non-ephemeral port (a UDP service answering its clients),
// are replies.
func (x *Extractor) outboundDatagram(e *event.Enriched) bool {
	ev := e.Event
	if ev.Proto == event.ProtoTCP || ev.SockType == sockStream {
		return false
	}
	if fd := e.FD; fd != nil && (fd.Server || fd.Listening || fd.Connected) {
		return false
	}
	if ev.Src.IsValid() && ev.Src.Port() != 0 && !(ev.Src.Port() >= x.gen.EphemeralLow && ev.Src.Port() <= x.gen.EphemeralHigh) {
		return false
	}
	return true
}

func (x *Extractor) listen(ev *event.Event, local netip.AddrPort, how string) {
	if !inet(ev) || !local.IsValid() {
		return
	}
	f := x.begin(CatListen)
	x.buf = append(x.buf, protoName(ev.Proto)...)
	x.buf = append(x.buf, " :"...)
	x.buf = x.gen.AppendPort(x.buf, local.Port())
	x.node(f)
	x.buf = append(x.buf, " ["...)
	x.buf = append(x.buf, how...)
	x.buf = append(x.buf, ']')
	x.finish(f)
}

func (x *Extractor) privilege(name string, arg func()) {
	f := x.begin(CatPrivilege)
	x.buf = append(x.buf, name...)
	x.node(f)
	if arg != nil {
		x.buf = append(x.buf, ' ')
		arg()
	}
	x.finish(f)
}

func (x *Extractor) appendHex(v uint64) {
	x.buf = append(x.buf, "0x"...)
	x.buf = strconv.AppendUint(x.buf, v, 16)
}

func (x *Extractor) syscall(e *event.Enriched, collapsed map[uint64]string) {
	ev := e.Event
	sp := event.SpecOf(ev.Syscall) // the syscall table says which feature
	if sp == nil {
		return
	}
	switch sp.Feature {
	case event.FeatOpen:
		flags := ev.Flags
		if ev.Syscall == sysCreat {
			flags = oCreat | oWronly | oTrunc
		}
		x.fresh = newContent(flags)
		x.file(e, openPath(e), openAccess(flags), collapsed)
		x.fresh = false
	case event.FeatDelete:
		if ev.Syscall == event.SysUnlinkat && ev.Fd != atFDCWD {
			x.dirfd = ev.Fd
		}
		x.file(e, ev.Path, AccessDelete, collapsed)
		x.dirfd = -1
	case event.FeatRename:
		// The old name's ownership passes to the new one, but the new
		// name is always a path feature (renaming a dropped file into
		// /etc/cron.d/ must show).
		wasOwn := false
		if x.own != nil {
			if h, ok := x.ownHash(ev.Path, cwdFor(e, ev.Path)); ok {
				wasOwn = x.own.has(h)
			}
		}
		x.file(e, ev.Path, AccessDelete, collapsed)
		own := x.own
		x.own = nil
		// Renaming one's own file into place is how a file is written
		// atomically (pg_internal.init.<pid> → pg_internal.init): the
		// target is created, and a later container of the image that did
		// not see it happen (a trace or agent started afterwards) finds
		// the path among the image's creations.
		acc := AccessWrite
		if wasOwn {
			acc = AccessCreate
		}
		x.file(e, ev.Path2, acc, collapsed)
		x.own = own
		if wasOwn {
			if h, ok := x.ownHash(ev.Path2, cwdFor(e, ev.Path2)); ok {
				x.own.add(h)
			}
		}
	case event.FeatMkdir:
		x.fresh = true
		if ev.Syscall == event.SysMkdirat && ev.Fd != atFDCWD {
			x.dirfd = ev.Fd
		}
		x.file(e, ev.Path, AccessCreate, collapsed)
		x.fresh, x.dirfd = false, -1
	case event.FeatExec:
		x.file(e, ev.Path, AccessExec, collapsed)
	case event.FeatNetwork:
		// A connect is a peer the container chose; a datagram sent
		// (sendto/sendmsg) only when it is not a reply on an accepted
		// socket or from a service port (outboundDatagram).
		if ev.Syscall == event.SysConnect || x.outboundDatagram(e) {
			x.network(ev)
		}
	case event.FeatBind:
		if ev.Src.IsValid() && ev.Src.Port() != 0 {
			x.listen(ev, ev.Src, "bind")
		}
	case event.FeatListen:
		local := ev.Src
		if !local.IsValid() && e.FD != nil {
			local = e.FD.Local
		}
		x.listen(ev, local, "listen")
	case event.FeatAccept:
		local := ev.Dst
		if !local.IsValid() && e.FD != nil {
			local = e.FD.Local
		}
		x.listen(ev, local, "accept")
	case event.FeatSetuid:
		uid, _ := ev.UID()
		x.privilege("setuid", func() { x.buf = append(x.buf, "uid="...); x.buf = strconv.AppendUint(x.buf, uint64(uid), 10) })
	case event.FeatSetgid:
		gid, _ := ev.GID()
		x.privilege("setgid", func() { x.buf = append(x.buf, "gid="...); x.buf = strconv.AppendUint(x.buf, uint64(gid), 10) })
	case event.FeatCapset:
		x.privilege("capset", func() { x.appendHex(ev.Arg3) })
	case event.FeatPtrace:
		x.privilege("ptrace", func() { x.buf = append(x.buf, "req="...); x.buf = strconv.AppendUint(x.buf, uint64(ev.Flags), 10) })
	case event.FeatModule:
		x.privilege("module_load", nil)
	case event.FeatMount:
		x.privilege("mount", func() {
			var f Feature
			x.buf = x.gen.appendPath(x.buf, &f, &x.scratch, ev.Path2, nil, nil)
		})
	case event.FeatUmount:
		x.privilege("umount", func() {
			var f Feature
			x.buf = x.gen.appendPath(x.buf, &f, &x.scratch, ev.Path, nil, nil)
		})
	case event.FeatUnshare:
		x.privilege("unshare", func() { x.appendHex(uint64(ev.Flags)) })
	case event.FeatSetns:
		x.privilege("setns", func() { x.appendHex(uint64(ev.Flags)) })
	case event.FeatMemfd:
		x.privilege("memfd_create", func() { x.buf = AppendName(x.buf, ev.Path, false) })
	}
}

// Syscall numbers not among event's named constants (x86_64).
const (
	sysCreat uint16 = 85
)

// atFDCWD is AT_FDCWD: a path argument relative to the cwd.
const atFDCWD = -100

// sbytes views a string as bytes without copying; the result must only be read.
func sbytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
