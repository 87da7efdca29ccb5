// Package setmember is a set-membership baseline detector in the style of
// Kubescape's node-agent application profiles: during learning it records
// exact behaviour per image — executables with their full argument lists,
// opened paths with their open flags, system calls, capability sets and
// egress peers — then alerts on anything not in those sets. The only
// generalisation is the directory collapse of opened paths: a directory
// with more than 50 distinct children (Kubescape's open-path threshold)
// matches any name in its place ("⋯"). There is no threshold, no score and
// no lifecycle: the baseline that driftwatch's learned model is compared
// with (`driftwatch eval --detector setmember`).
package setmember

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// Config controls the detector. Zero fields take the defaults.
type Config struct {
	// CollapseThreshold: a directory with more distinct children than this
	// collapses to a wildcard at the end of learning (default 50).
	CollapseThreshold int
	// DedupWindow: one alert per (container, feature) per window of event
	// time (default 10m, as the learned model's).
	DedupWindow time.Duration
}

// Kinds of features and their alert rules (Kubescape's rule names).
const (
	KindExec     = "exec"
	KindOpen     = "open"
	KindSyscall  = "syscall"
	KindCapset   = "capability"
	KindEgress   = "egress"
	wildcard     = "⋯"
	defCollapse  = 50
	defDedup     = 10 * time.Minute
	oFlagIgnored = 0x8000 | 0x80000 // O_LARGEFILE, O_CLOEXEC: not behaviour
)

// RuleNames maps a feature kind to its alert rule.
var RuleNames = map[string]string{
	KindExec:    "Unexpected process launched",
	KindOpen:    "Unexpected file access",
	KindSyscall: "Unexpected system call",
	KindCapset:  "Unexpected capability used",
	KindEgress:  "Unexpected egress network traffic",
}

// node is a path trie node; children keyed by component, wildcard for a
// collapsed directory.
type node struct {
	children map[string]*node
	term     bool
	flags    uint32 // union of the open flags of the path ending here
}

func (n *node) child(c string) *node {
	if n.children == nil {
		n.children = map[string]*node{}
	}
	ch := n.children[c]
	if ch == nil {
		ch = &node{}
		n.children[c] = ch
	}
	return ch
}

// merge adds o's subtree into n.
func (n *node) merge(o *node) {
	n.term = n.term || o.term
	n.flags |= o.flags
	for c, oc := range o.children {
		n.child(c).merge(oc)
	}
}

// collapse replaces the children of every node with more than th of them
// by one wildcard child holding their merged subtrees.
func (n *node) collapse(th int) {
	if len(n.children) > th {
		w := &node{}
		for _, c := range n.children {
			w.merge(c)
		}
		n.children = map[string]*node{wildcard: w}
	}
	for _, c := range n.children {
		c.collapse(th)
	}
}

// lookup finds the node of a cleaned absolute path: each component matches
// its exact child, else a wildcard.
func (n *node) lookup(p string) *node {
	cur := n
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if c == "" {
			continue
		}
		next := cur.children[c]
		if next == nil {
			next = cur.children[wildcard]
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

type profile struct {
	sets  map[string]map[string]bool // kind → exact features (all but opens)
	opens map[string]uint32          // path → union of open flags
	trie  *node                      // built from opens when learning ends
}

func newProfile() *profile {
	return &profile{sets: map[string]map[string]bool{}, opens: map[string]uint32{}}
}

func (p *profile) add(kind, f string) {
	s := p.sets[kind]
	if s == nil {
		s = map[string]bool{}
		p.sets[kind] = s
	}
	s[f] = true
}

// Detector is the set-membership baseline; safe for concurrent use.
type Detector struct {
	cfg      Config
	mu       sync.Mutex
	profiles map[string]*profile
	finished bool
	alerted  map[string]int64 // container \x00 kind \x00 feature → first alert time
	stats    Stats
}

// Stats counts the detector's work.
type Stats struct {
	Learned, Checked, Alerts, Deduplicated uint64
}

// New returns an empty detector.
func New(cfg Config) *Detector {
	if cfg.CollapseThreshold == 0 {
		cfg.CollapseThreshold = defCollapse
	}
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = defDedup
	}
	return &Detector{cfg: cfg, profiles: map[string]*profile{}, alerted: map[string]int64{}}
}

// Stats returns a copy of the counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// feature is one exact feature of an event.
type feature struct {
	kind, text string
	flags      uint32 // opens
}

func cwdOf(e *event.Enriched) string {
	if e.Proc != nil && e.Proc.Cwd != "" {
		return e.Proc.Cwd
	}
	return string(e.Event.Cwd)
}

// openPath is the opened path: the resolved descriptor name when known,
// else the argument joined to the working directory, cleaned.
func openPath(e *event.Enriched) string {
	if e.FD != nil && (e.FD.Type == event.FDFile || e.FD.Type == event.FDDirectory) && strings.HasPrefix(e.FD.Name, "/") {
		return path.Clean(e.FD.Name)
	}
	p := string(e.Event.Path)
	if !strings.HasPrefix(p, "/") {
		p = path.Join(cwdOf(e), p)
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

func features(e *event.Enriched, buf []feature) []feature {
	ev := e.Event
	switch ev.Kind {
	case event.KindExec:
		args := strings.ReplaceAll(strings.TrimRight(string(ev.Argv), "\x00"), "\x00", " ")
		buf = append(buf, feature{kind: KindExec, text: string(ev.Exe) + " " + args})
	case event.KindSyscall:
		buf = append(buf, feature{kind: KindSyscall, text: event.SyscallName(ev.Syscall)})
		if ev.Ret < 0 && !(ev.Syscall == event.SysConnect && ev.Ret == -115) {
			return buf
		}
		switch ev.Syscall {
		case event.SysOpen, event.SysOpenat, event.SysOpenat2:
			buf = append(buf, feature{kind: KindOpen, text: openPath(e), flags: ev.Flags &^ oFlagIgnored})
		case event.SysCapset:
			buf = append(buf, feature{kind: KindCapset, text: "0x" + strconv.FormatUint(ev.Arg3, 16)})
		case event.SysConnect, event.SysSendto, event.SysSendmsg:
			if (ev.Family == event.AFInet || ev.Family == event.AFInet6) && ev.Dst.IsValid() {
				buf = append(buf, feature{kind: KindEgress, text: event.ProtoName(ev.Proto) + " " + ev.Dst.String()})
			}
		}
	}
	return buf
}

// Handle learns e in learn mode (and in auto mode until FinishLearning),
// checks it in detect mode (and in auto mode after FinishLearning), and
// ignores it when off.
func (d *Detector) Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert)) {
	if e == nil || e.Event == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	learn := mode == event.ModeLearn || (mode == event.ModeAuto && !d.finished)
	check := mode == event.ModeDetect || (mode == event.ModeAuto && d.finished)
	var fb [3]feature
	fs := features(e, fb[:0])
	key := profiler.KeyFor(e.Container)
	p := d.profiles[key]
	switch {
	case learn:
		if p == nil {
			p = newProfile()
			d.profiles[key] = p
		}
		for _, f := range fs {
			if f.kind == KindOpen {
				p.opens[f.text] |= f.flags
				p.trie = nil
			} else {
				p.add(f.kind, f.text)
			}
		}
		d.stats.Learned++
	case check:
		d.stats.Checked++
		for _, f := range fs {
			if !d.known(p, f) {
				d.alert(e, key, f, emit)
			}
		}
	}
}

func (d *Detector) known(p *profile, f feature) bool {
	if p == nil {
		return false
	}
	if f.kind != KindOpen {
		return p.sets[f.kind][f.text]
	}
	if p.trie == nil {
		p.build(d.cfg.CollapseThreshold)
	}
	n := p.trie.lookup(f.text)
	return n != nil && n.term && f.flags&^n.flags == 0
}

func (p *profile) build(th int) {
	p.trie = &node{}
	for pth, fl := range p.opens {
		n := p.trie
		for _, c := range strings.Split(strings.TrimPrefix(pth, "/"), "/") {
			if c != "" {
				n = n.child(c)
			}
		}
		n.term = true
		n.flags |= fl
	}
	p.trie.collapse(th)
}

// FinishLearning ends learning: the open-path tries are built and collapsed;
// auto mode checks from now on.
func (d *Detector) FinishLearning() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.profiles {
		p.build(d.cfg.CollapseThreshold)
	}
	d.finished = true
	return nil
}

// Suppress never suppresses: the baseline has no notion of a stable profile
// beyond its sets, and static rules are evaluated on their own.
func (d *Detector) Suppress(*event.Alert, *event.Enriched) bool { return false }

// Collapsed returns, per profile key, the collapsed directories (for tests
// and reports), sorted.
func (d *Detector) Collapsed() map[string][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string][]string{}
	for k, p := range d.profiles {
		if p.trie == nil {
			p.build(d.cfg.CollapseThreshold)
		}
		var dirs []string
		var walk func(n *node, prefix string)
		walk = func(n *node, prefix string) {
			for c, ch := range n.children {
				if c == wildcard {
					dirs = append(dirs, prefix+"/")
				}
				walk(ch, prefix+"/"+c)
			}
		}
		walk(p.trie, "")
		sort.Strings(dirs)
		out[k] = dirs
	}
	return out
}

func (d *Detector) alert(e *event.Enriched, key string, f feature, emit func(*event.Alert)) {
	ctrID := event.HostContainerID
	var image, ns, pod string
	if c := e.Container; c != nil {
		ctrID, image, ns, pod = c.ID, c.Image, c.Namespace, c.PodName
	}
	text := f.text
	if f.kind == KindOpen {
		text += " flags=0x" + strconv.FormatUint(uint64(f.flags), 16)
	}
	dk := ctrID + "\x00" + f.kind + "\x00" + text
	if first, ok := d.alerted[dk]; ok && e.Time-first < int64(d.cfg.DedupWindow) {
		d.stats.Deduplicated++
		return
	}
	d.alerted[dk] = e.Time
	d.stats.Alerts++
	var cmdline, exe string
	var pid uint32
	if p := e.Proc; p != nil {
		cmdline, exe, pid = event.Escape([]byte(strings.Join(p.Args, " "))), event.Escape([]byte(p.Exe)), p.Pid
	} else {
		pid = e.Pid
	}
	feat := event.Escape([]byte(text))
	rule := RuleNames[f.kind]
	a := &event.Alert{
		Time: time.Unix(0, e.Time).UTC(), Rule: rule, Priority: event.PriorityWarning, Source: "syscall",
		Tags: []string{"baseline", "setmember"}, Hostname: e.Hostname,
		Output: fmt.Sprintf("%s (kind=%s feature=%s profile=%s container_id=%s image=%s proc_cmdline=%s)",
			rule, f.kind, feat, event.Escape([]byte(key)), event.Escape([]byte(ctrID)), event.Escape([]byte(image)), cmdline),
		OutputFields: map[string]any{
			"setmember.kind": f.kind, "setmember.feature": feat, "setmember.profile": event.Escape([]byte(key)),
			"container.id": event.Escape([]byte(ctrID)), "container.image": event.Escape([]byte(image)),
			"k8s.ns.name": event.Escape([]byte(ns)), "k8s.pod.name": event.Escape([]byte(pod)),
			"proc.cmdline": cmdline, "proc.exe": exe, "proc.pid": pid, "evt.type": e.Type(),
		},
		Namespace: ns, ContainerID: ctrID, Pid: pid, Score: 1, EventNum: e.Num, EventTime: e.Time,
	}
	if emit != nil {
		emit(a)
	}
}
