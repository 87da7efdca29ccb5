package rules

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/driftwatch/driftwatch/event"
)

//go:embed default/*.yaml
var defaultFS embed.FS

// Options configure loading and evaluation.
type Options struct {
	// RuleMatching is "all" (default: every matching rule alerts) or
	// "first" (only the first matching rule, in load order).
	RuleMatching string
	// Hostname is used for alerts whose event carries none.
	Hostname string
	// Users resolves user and group names; nil uses a FileResolver over
	// /proc/<pid>/root with the host's files as fallback.
	Users UserResolver
	// IPNames resolves fd.sip.name / fd.cip.name; nil leaves them <NA>.
	IPNames func(netip.Addr) (string, bool)
	// Environ returns a process's environment (NUL-separated) for
	// proc.env when the sensor did not capture it at the exec
	// (Process.EnvKnown false: processes that predate the capture); nil
	// leaves proc.env <NA> for them. The agent sets ProcEnviron.
	Environ func(p *event.Process) ([]byte, bool)
	// UnknownFieldsAsWarnings turns rules using fields driftwatch cannot
	// provide into skipped rules with a warning instead of load errors
	// (as skip-if-unknown-filter does per rule).
	UnknownFieldsAsWarnings bool
	// IncludeDefault loads the embedded default rules before the paths.
	IncludeDefault bool
	// Logger receives load warnings; nil discards them.
	Logger *slog.Logger
}

// RuleInfo describes one loaded rule.
type RuleInfo struct {
	Name       string
	Desc       string
	Priority   event.Priority
	Tags       []string // sorted
	Enabled    bool
	Source     string
	File       string
	Line       int
	Condition  string
	Output     string
	EventTypes []string // nil when the rule runs for every event type
}

type compiledRule struct {
	info RuleInfo
	cond boolFn
	out  *outputFormat
}

// Ruleset is an immutable compiled rule set; Eval is safe for concurrent use.
type Ruleset struct {
	opts   Options
	first  bool
	rules  []*compiledRule // enabled rules in load order
	infos  []RuleInfo      // every loaded rule (enabled or not)
	byType [numTypeIDs][]*compiledRule
	xslots int
	pool   sync.Pool
}

// Len returns the number of enabled rules.
func (rs *Ruleset) Len() int { return len(rs.rules) }

// Rules describes every loaded rule (enabled and disabled), in load order.
func (rs *Ruleset) Rules() []RuleInfo { return append([]RuleInfo(nil), rs.infos...) }

// Load loads Falco rules files and directories (.yaml/.yml entries).
// On error the Report still describes what was read, and the error is a
// *LoadError listing every problem with file:line:column.
func Load(paths []string, opts Options) (*Ruleset, *Report, error) {
	var srcs []source
	if opts.IncludeDefault {
		d, err := defaultSources()
		if err != nil {
			return nil, nil, err
		}
		srcs = d
	}
	more, err := expandPaths(paths)
	if err != nil {
		return nil, nil, err
	}
	return build(append(srcs, more...), opts)
}

// LoadDefault loads the embedded default rules (rules/default).
func LoadDefault(opts Options) (*Ruleset, *Report, error) {
	srcs, err := defaultSources()
	if err != nil {
		return nil, nil, err
	}
	return build(srcs, opts)
}

// DefaultFiles returns the names and contents of the embedded default rules.
func DefaultFiles() (map[string][]byte, error) {
	srcs, err := defaultSources()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, s := range srcs {
		out[s.name] = s.data
	}
	return out, nil
}

func defaultSources() ([]source, error) {
	names, err := fs.Glob(defaultFS, "default/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("embedded default rules: %w", err)
	}
	sort.Strings(names)
	var out []source
	for _, n := range names {
		b, err := defaultFS.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("embedded default rules: %w", err)
		}
		out = append(out, source{name: "default/" + path.Base(n), data: b})
	}
	return out, nil
}

// LoadBytes loads one rules document from memory (name is used in errors).
func LoadBytes(name string, data []byte, opts Options) (*Ruleset, *Report, error) {
	return build([]source{{name: name, data: data}}, opts)
}

func build(srcs []source, opts Options) (*Ruleset, *Report, error) {
	if opts.RuleMatching != "" && opts.RuleMatching != "all" && opts.RuleMatching != "first" {
		return nil, nil, fmt.Errorf("rule_matching %q: want first or all", opts.RuleMatching)
	}
	if opts.Users == nil {
		opts.Users = NewFileResolver("/proc", "/")
	}
	st := newLoadState(opts)
	for _, s := range srcs {
		st.loadSource(s)
	}
	rs := st.compile()
	st.report.Files = st.files
	if opts.Logger != nil {
		for _, w := range st.report.Warnings {
			opts.Logger.Warn("rules", "warning", w.Error())
		}
	}
	if len(st.errs) > 0 {
		return nil, st.report, &LoadError{Errs: st.errs}
	}
	return rs, st.report, nil
}

// condPos maps an offset in a condition to file:line:column. Inside
// multi-line scalars (folded "condition: >" and literal blocks, plain
// scalars over several lines) it finds the token in the file: YAML folding
// only changes whitespace, so the k-th non-blank byte of the value is the
// k-th non-blank byte of the scalar's source.
func condPos(ct condText, off int) pos {
	n := ct.node
	p := pos{file: ct.file, line: n.Line, col: n.Column}
	if off < 0 || off > len(ct.text) {
		return p
	}
	single := !strings.Contains(ct.text[:off], "\n")
	switch n.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if single {
			p.col += off + 1
		}
		return p
	case 0:
		if ct.data == nil {
			if single {
				p.col += off
			}
			return p
		}
	}
	if n.Style != 0 && n.Style != yaml.LiteralStyle && n.Style != yaml.FoldedStyle {
		return p
	}
	if q, ok := sourcePos(ct, off); ok {
		return q
	}
	return p
}

// sourcePos locates the byte at off of a plain or block scalar in the file.
func sourcePos(ct condText, off int) (pos, bool) {
	n, data := ct.node, ct.data
	if data == nil || n.Line < 1 {
		return pos{}, false
	}
	// k: non-blank bytes of the value before the token at off.
	for off < len(ct.text) && isSpace(ct.text[off]) {
		off++
	}
	k := 0
	for i := 0; i < off; i++ {
		if !isSpace(ct.text[i]) {
			k++
		}
	}
	// At the end of the value: just after its last byte.
	after := 0
	if off >= len(ct.text) {
		if k == 0 {
			return pos{}, false
		}
		k, after = k-1, 1
	}
	// Start of the scalar in the file: its line and column, or for a block
	// scalar the line after its header ("|", ">-", ...).
	line, i := 1, 0
	for line < n.Line && i < len(data) {
		if data[i] == '\n' {
			line++
		}
		i++
	}
	lineStart := i
	if n.Style == yaml.LiteralStyle || n.Style == yaml.FoldedStyle {
		for i < len(data) && data[i] != '\n' {
			i++
		}
	} else {
		i += n.Column - 1
	}
	for ; i < len(data); i++ {
		c := data[i]
		if c == '\n' {
			line++
			lineStart = i + 1
			continue
		}
		if isSpace(c) {
			continue
		}
		if k == 0 {
			return pos{file: ct.file, line: line, col: i - lineStart + 1 + after}, true
		}
		k--
	}
	return pos{}, false
}

// joinConds concatenates appended condition fragments with their spans.
type condSpan struct {
	start int
	ct    condText
}

func joinConds(conds []condText) (string, []condSpan) {
	var b strings.Builder
	var spans []condSpan
	for i, c := range conds {
		if i > 0 {
			b.WriteByte(' ')
		}
		spans = append(spans, condSpan{start: b.Len(), ct: c})
		b.WriteString(c.text)
	}
	return b.String(), spans
}

func spanPos(spans []condSpan, off int) pos {
	for i := len(spans) - 1; i >= 0; i-- {
		if off >= spans[i].start {
			return condPos(spans[i].ct, off-spans[i].start)
		}
	}
	return pos{}
}

func (st *loadState) compile() *Ruleset {
	rs := &Ruleset{opts: st.opts, first: st.opts.RuleMatching == "first"}
	// Lists, in order: each sees the lists defined before it.
	lists := map[string][]string{}
	for _, l := range st.lists {
		var items []string
		for _, it := range l.items {
			if prev, ok := st.listIdx[it]; ok && prev.index < l.index {
				items = append(items, lists[it]...)
				continue
			}
			items = append(items, unquoteListItem(it))
		}
		lists[l.name] = items
	}
	// Macros, in order; a macro sees earlier macros.
	macros := map[string]*macroDef{}
	for _, m := range st.macros {
		text, spans := joinConds(m.conds)
		ast, err := parseCondition(text)
		if err != nil {
			var se *SyntaxError
			off := 0
			if errors.As(err, &se) {
				off = se.Offset
			}
			p := spanPos(spans, off)
			st.errAt(p, "macro", m.name, "condition: %v", errMsg(err))
			continue
		}
		macros[m.name] = &macroDef{name: m.name, index: m.index, ast: ast}
	}
	cp := &compiler{lists: lists, macros: macros, xslots: &rs.xslots, usedMacros: map[string]bool{}, usedLists: map[string]bool{}}
	for _, r := range st.rules {
		if r.source != "syscall" {
			st.skip(r, "", fmt.Sprintf("source %q is not supported", r.source))
			if r.enabled {
				st.files[r.fileIdx].Skipped++
			}
			continue
		}
		cr, skipped := st.compileRule(cp, r)
		if cr == nil {
			if skipped && r.enabled {
				st.files[r.fileIdx].Skipped++
			}
			continue
		}
		rs.infos = append(rs.infos, cr.info)
		if r.enabled {
			rs.rules = append(rs.rules, cr)
			st.files[r.fileIdx].Enabled++
		}
	}
	for _, m := range st.macros {
		if !cp.usedMacros[m.name] && macros[m.name] != nil && st.opts.Logger != nil {
			st.opts.Logger.Debug("rules: macro not used", "macro", m.name, "file", m.pos.file)
		}
	}
	// Index enabled rules by event type, keeping load order.
	for _, r := range rs.rules {
		if r.info.EventTypes == nil {
			for id := range rs.byType {
				rs.byType[id] = append(rs.byType[id], r)
			}
			continue
		}
		for _, name := range r.info.EventTypes {
			if id, ok := typeIDByName(name); ok {
				rs.byType[id] = append(rs.byType[id], r)
			}
		}
	}
	xslots := rs.xslots
	rs.pool.New = func() any { return &evalCtx{rs: rs, xbufs: make([][]byte, xslots)} }
	return rs
}

func errMsg(err error) string {
	switch e := err.(type) {
	case *SyntaxError:
		return e.Msg
	case *CompileError:
		return e.Msg
	}
	return err.Error()
}

// compileRule compiles one rule; skipped reports a rule dropped with a
// warning (unknown field under skip-if-unknown-filter).
func (st *loadState) compileRule(cp *compiler, r *ruleItem) (*compiledRule, bool) {
	text, spans := joinConds(r.conds)
	ast, err := parseCondition(text)
	if err != nil {
		var se *SyntaxError
		off := 0
		if errors.As(err, &se) {
			off = se.Offset
		}
		st.errAt(spanPos(spans, off), "rule", r.name, "condition: %v", errMsg(err))
		return nil, false
	}
	if len(r.exceptions) > 0 {
		exc, err := exceptionsAST(r.exceptions)
		if err != nil {
			st.errAt(r.pos, "rule", r.name, "exceptions: %v", err)
			return nil, false
		}
		if exc != nil {
			ast = &andNode{kids: []node{ast, &notNode{kid: exc}}}
		}
	}
	cp.unknownTypes = map[string]bool{}
	fn, err := cp.compile(ast, noLimit, 0)
	if err == nil {
		var out *outputFormat
		out, err = parseOutput(cp, r.output)
		if err == nil {
			types := cp.evtTypes(ast, false, noLimit, 0)
			info := RuleInfo{
				Name: r.name, Desc: r.desc, Priority: r.priority, Enabled: r.enabled, Source: r.source,
				File: r.pos.file, Line: r.pos.line, Condition: text, Output: r.output,
				Tags: append([]string{}, r.tags...),
			}
			sort.Strings(info.Tags)
			if !types.isAll() {
				info.EventTypes = []string{}
				for id := 0; id < numTypeIDs; id++ {
					if types.has(id) {
						info.EventTypes = append(info.EventTypes, typeName(id))
					}
				}
			} else if r.warnEvttypes {
				st.warnAt(r.pos, "rule", r.name, "condition does not restrict evt.type: the rule runs for every event (set warn_evttypes: false to silence)")
			}
			for t := range cp.unknownTypes {
				st.warnAt(r.pos, "rule", r.name, "evt.type %q is not an event driftwatch reports", t)
			}
			if !types.isAll() && types.and(reportedTypes) == (typeSet{}) {
				st.skip(r, "evt.type", fmt.Sprintf("the sensor reports none of the rule's event types (%s): it could never fire", strings.Join(info.EventTypes, ",")))
				return nil, true
			}
			for _, f := range out.unavailable {
				st.warnAt(r.pos, "rule", r.name, "output field %s renders <NA>: %s", f, unavailableFields[f])
			}
			return &compiledRule{info: info, cond: fn, out: out}, false
		}
	}
	var ce *CompileError
	p := r.pos
	if errors.As(err, &ce) {
		if ce.Unavailable {
			st.skip(r, ce.Field, ce.Msg)
			return nil, true
		}
		if ce.Field != "" && (r.skipUnknown || st.opts.UnknownFieldsAsWarnings) {
			st.skip(r, ce.Field, ce.Msg)
			return nil, true
		}
		if ce.Offset >= 0 {
			p = spanPos(spans, ce.Offset)
		}
	}
	var oe *outputError
	if errors.As(err, &oe) && r.outputNode != nil {
		p = posOf(r.pos.file, r.outputNode)
		if oe.field != "" && (r.skipUnknown || st.opts.UnknownFieldsAsWarnings) {
			st.skip(r, oe.field, oe.msg)
			return nil, true
		}
		st.errAt(p, "rule", r.name, "output: %s", oe.msg)
		return nil, false
	}
	st.errAt(p, "rule", r.name, "condition: %v", errMsg(err))
	return nil, false
}

// Skip is a rule loaded but not run, with the field that prevents it
// and why (rules check lists them).
type Skip struct {
	Rule   string
	File   string
	Line   int
	Field  string
	Reason string
}

// skip records a rule that loads with a warning but is not run.
func (st *loadState) skip(r *ruleItem, field, reason string) {
	st.warnAt(r.pos, "rule", r.name, "skipped: %s", reason)
	if r.enabled {
		st.report.Skipped = append(st.report.Skipped, Skip{Rule: r.name, File: r.pos.file, Line: r.pos.line, Field: field, Reason: reason})
	}
}

func typeName(id int) string {
	if id == idProcexit {
		return "procexit"
	}
	return event.SyscallName(uint16(id))
}

// exceptionsAST builds (t1 or t2 ...) where each tuple ti is the and of
// its field comparisons.
func exceptionsAST(excs []*exception) (node, error) {
	var tuples []node
	for _, x := range excs {
		if len(x.fields) == 0 {
			if len(x.values) > 0 {
				return nil, fmt.Errorf("exception %q has values but no fields", x.name)
			}
			continue
		}
		fields := make([]fieldRef, len(x.fields))
		for i, f := range x.fields {
			p := &parser{s: f}
			fr, err := p.parseField()
			if err != nil || p.i != len(f) {
				return nil, fmt.Errorf("exception %q: bad field %q", x.name, f)
			}
			fr.at = -1
			fields[i] = fr
		}
		if x.singleField && len(x.values) > 0 && listOps[x.comps[0]] {
			c := &cmpNode{field: fields[0], op: x.comps[0], isList: true, at: -1}
			for _, v := range x.values {
				c.values = append(c.values, operand{text: v[0].s})
			}
			tuples = append(tuples, c)
			continue
		}
		for _, row := range x.values {
			if len(row) != len(fields) {
				return nil, fmt.Errorf("exception %q: value has %d entries but there are %d fields", x.name, len(row), len(fields))
			}
			var conj []node
			for i, v := range row {
				op := x.comps[i]
				if op == "==" {
					op = "="
				}
				c := &cmpNode{field: fields[i], op: op, at: -1}
				switch {
				case x.mods[i] != "":
					// "op oneof|anyof|allof": op against each value, combined
					// with or (oneof, anyof) or and (allof).
					c.excMod = x.mods[i]
					vals := v.list
					if !v.isList {
						vals = []string{v.s}
					}
					for _, s := range vals {
						c.values = append(c.values, operand{text: s})
					}
				case v.isList:
					c.isList = true
					for _, s := range v.list {
						c.values = append(c.values, operand{text: s})
					}
				case listOps[op]:
					// A scalar for a list operator names a list or is one value.
					c.isList = true
					c.values = []operand{{text: v.s}}
				default:
					c.values = []operand{{text: v.s, quoted: true}}
				}
				conj = append(conj, c)
			}
			if len(conj) == 1 {
				tuples = append(tuples, conj[0])
			} else if len(conj) > 1 {
				tuples = append(tuples, &andNode{kids: conj, at: -1})
			}
		}
	}
	switch len(tuples) {
	case 0:
		return nil, nil
	case 1:
		return tuples[0], nil
	}
	return &orNode{kids: tuples, at: -1}, nil
}

// Eval runs the rules that apply to the event's type and calls emit with
// a complete alert for each match (only the first with RuleMatching
// "first"). It allocates nothing when no rule matches.
func (rs *Ruleset) Eval(e *event.Enriched, emit func(*event.Alert)) {
	if e == nil || e.Event == nil {
		return
	}
	list := rs.byType[typeID(e.Event)]
	if len(list) == 0 {
		return
	}
	c := rs.pool.Get().(*evalCtx)
	c.reset(e)
	for _, r := range list {
		if r.cond(c) {
			emit(rs.alert(r, c))
			if rs.first {
				break
			}
		}
	}
	c.e = nil
	c.fd = nil
	rs.pool.Put(c)
}

// Match reports the names of the rules matching the event (for tests and tools).
func (rs *Ruleset) Match(e *event.Enriched) []string {
	var out []string
	rs.Eval(e, func(a *event.Alert) { out = append(out, a.Rule) })
	return out
}

func (rs *Ruleset) alert(r *compiledRule, c *evalCtx) *event.Alert {
	e := c.e
	host := e.Hostname
	if host == "" {
		host = rs.opts.Hostname
	}
	text, fields := r.out.render(c)
	a := &event.Alert{
		Time:         time.Unix(0, e.Time).UTC(),
		Rule:         r.info.Name,
		Priority:     r.info.Priority,
		Source:       "syscall",
		Tags:         append([]string{}, r.info.Tags...),
		Hostname:     host,
		Output:       text,
		OutputFields: fields,
		Pid:          e.Pid,
		EventNum:     e.Num,
		EventTime:    e.Time,
	}
	if k := c.container(); k != nil {
		a.ContainerID = k.ID
		a.Namespace = k.Namespace
	}
	if a.ContainerID == "" {
		a.ContainerID = event.HostContainerID
	}
	if p := c.proc(); p != nil {
		a.Pid = p.Pid
	}
	return a
}
