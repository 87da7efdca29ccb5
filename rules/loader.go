package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/driftwatch/driftwatch/event"
)

// Error is one problem in a rules file, located at file:line:column and
// naming the item (list, macro, rule) it belongs to.
type Error struct {
	File   string
	Line   int
	Column int
	Kind   string // "list", "macro", "rule", "" for file-level problems
	Name   string
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	if e.Kind != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Kind, e.Name)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Warning is a non-fatal finding (unknown keys, skipped rules, rules that
// run for every event type ...), located like Error.
type Warning = Error

// LoadError holds every error found while loading; Load returns it.
type LoadError struct{ Errs []*Error }

func (e *LoadError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, x := range e.Errs {
		msgs[i] = x.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap exposes the individual errors to errors.Is/As.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, x := range e.Errs {
		out[i] = x
	}
	return out
}

// FileReport counts what one file defined.
type FileReport struct {
	Path    string
	Rules   int // rules defined (not appends or overrides)
	Macros  int
	Lists   int
	Enabled int // of this file's rules, those enabled and loaded
	Skipped int // enabled rules loaded but not run (Report.Skipped says why)
}

// PluginRequirement is one required_plugin_versions entry (accepted and reported).
type PluginRequirement struct {
	Name    string
	Version string
	File    string
}

// Report describes a load: per-file counts, warnings and required versions.
type Report struct {
	Files                 []FileReport
	Warnings              []*Warning
	RequiredEngineVersion string
	RequiredPlugins       []PluginRequirement
	// Skipped lists the enabled rules that loaded but do not run (a field
	// driftwatch cannot provide, event types its sensor does not report,
	// skip-if-unknown-filter), with the reason.
	Skipped []Skip
}

// EngineVersion is the Falco rules engine version driftwatch's loader
// implements (required_engine_version above it yields a warning).
const EngineVersion = "0.57.0"

type pos struct {
	file      string
	line, col int
}

type condText struct {
	text string
	node *yaml.Node
	file string
	data []byte // the file's bytes, to locate tokens inside multi-line scalars
}

type listItem struct {
	name  string
	items []string
	pos   pos
	index int
}

type macroItem struct {
	name  string
	conds []condText
	pos   pos
	index int
}

type excValue struct {
	s      string
	list   []string
	isList bool
}

type exception struct {
	name        string
	fields      []string
	singleField bool
	comps       []string
	mods        []string // per comp: "", "oneof", "anyof" or "allof"
	values      [][]excValue
	pos         pos
}

type ruleItem struct {
	name         string
	desc         string
	conds        []condText
	output       string
	outputNode   *yaml.Node
	priority     event.Priority
	enabled      bool
	tags         []string
	source       string
	exceptions   []*exception
	skipUnknown  bool
	warnEvttypes bool
	// capture and captureDuration (ms) are Falco's capture settings:
	// validated and kept, driftwatch does not write capture files.
	capture         bool
	captureDuration int64
	pos             pos
	fileIdx         int
	index           int
}

type loadState struct {
	opts    Options
	files   []FileReport
	lists   []*listItem
	listIdx map[string]*listItem
	macros  []*macroItem
	macIdx  map[string]*macroItem
	rules   []*ruleItem
	ruleIdx map[string]*ruleItem
	errs    []*Error
	report  *Report
	data    map[string][]byte // file name -> contents
}

func newLoadState(opts Options) *loadState {
	return &loadState{
		opts:    opts,
		listIdx: map[string]*listItem{},
		macIdx:  map[string]*macroItem{},
		ruleIdx: map[string]*ruleItem{},
		report:  &Report{},
		data:    map[string][]byte{},
	}
}

func (st *loadState) errAt(p pos, kind, name, format string, a ...any) {
	st.errs = append(st.errs, &Error{File: p.file, Line: p.line, Column: p.col, Kind: kind, Name: name, Msg: fmt.Sprintf(format, a...)})
}

func (st *loadState) warnAt(p pos, kind, name, format string, a ...any) {
	st.report.Warnings = append(st.report.Warnings, &Warning{File: p.file, Line: p.line, Column: p.col, Kind: kind, Name: name, Msg: fmt.Sprintf(format, a...)})
}

func posOf(file string, n *yaml.Node) pos { return pos{file: file, line: n.Line, col: n.Column} }

// source is one rules document to load.
type source struct {
	name string
	data []byte
}

// expandPaths turns files and directories (their .yaml/.yml entries,
// sorted, not recursive) into sources.
func expandPaths(paths []string) ([]source, error) {
	var out []source
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("rules path %s: %w", p, err)
		}
		files := []string{p}
		if fi.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("rules directory %s: %w", p, err)
			}
			files = files[:0]
			for _, e := range ents {
				n := e.Name()
				if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
					files = append(files, filepath.Join(p, n))
				}
			}
			sort.Strings(files)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("rules file: %w", err)
			}
			out = append(out, source{name: f, data: data})
		}
	}
	return out, nil
}

// maxRulesFileSize bounds one rules document.
const maxRulesFileSize = 32 << 20

// loadSource parses one rules document into the state.
func (st *loadState) loadSource(src source) {
	st.files = append(st.files, FileReport{Path: src.name})
	fileIdx := len(st.files) - 1
	if len(src.data) > maxRulesFileSize {
		st.errAt(pos{src.name, 1, 1}, "", "", "file larger than %d bytes", maxRulesFileSize)
		return
	}
	st.data[src.name] = src.data
	dec := yaml.NewDecoder(bytes.NewReader(src.data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			line := 1
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				line = yamlErrLine(err.Error())
			}
			st.errs = append(st.errs, &Error{File: src.name, Line: line, Column: 1, Msg: "invalid YAML: " + err.Error(), Err: err})
			return
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if root.Kind != yaml.SequenceNode {
			st.errAt(posOf(src.name, root), "", "", "a rules file must be a YAML sequence of items")
			return
		}
		for _, item := range root.Content {
			st.loadItem(src.name, fileIdx, item)
		}
	}
}

// yamlErrLine extracts "line N" from a yaml.v3 error message.
func yamlErrLine(msg string) int {
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 1
	}
	n := 0
	for _, c := range msg[i+5:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		if n > 1<<30 {
			break
		}
	}
	if n == 0 {
		return 1
	}
	return n
}

type kv struct {
	key *yaml.Node
	val *yaml.Node
}

func (st *loadState) loadItem(file string, fileIdx int, item *yaml.Node) {
	p := posOf(file, item)
	if item.Kind != yaml.MappingNode {
		st.errAt(p, "", "", "each item must be a mapping (list, macro, rule ...)")
		return
	}
	keys := map[string]kv{}
	var order []string
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			st.errAt(posOf(file, k), "", "", "item keys must be strings")
			return
		}
		if _, dup := keys[k.Value]; dup {
			st.errAt(posOf(file, k), "", "", "duplicate key %q", k.Value)
			return
		}
		keys[k.Value] = kv{k, v}
		order = append(order, k.Value)
	}
	switch {
	case has(keys, "rule"):
		st.loadRule(file, fileIdx, p, keys, order)
	case has(keys, "macro"):
		st.loadMacro(file, fileIdx, p, keys, order)
	case has(keys, "list"):
		st.loadList(file, fileIdx, p, keys, order)
	case has(keys, "required_engine_version"):
		v := keys["required_engine_version"].val
		ver := v.Value
		if v.Kind != yaml.ScalarNode || !validEngineVersion(ver) {
			st.errAt(posOf(file, v), "", "", "required_engine_version %q: unable to parse engine version (want N or MAJOR.MINOR.PATCH)", ver)
			return
		}
		st.report.RequiredEngineVersion = ver
		cmpVer := ver
		if !strings.Contains(ver, ".") {
			cmpVer = "0." + ver + ".0" // engine version N is 0.N.0
		}
		if cmpVersion(cmpVer, EngineVersion) > 0 {
			st.warnAt(posOf(file, v), "", "", "required_engine_version %s is newer than driftwatch's %s; unsupported constructs will be reported as errors", ver, EngineVersion)
		}
	case has(keys, "required_plugin_versions"):
		v := keys["required_plugin_versions"].val
		if v.Kind != yaml.SequenceNode {
			st.errAt(posOf(file, v), "", "", "required_plugin_versions must be a sequence")
			return
		}
		for _, e := range v.Content {
			var r struct {
				Name    string `yaml:"name"`
				Version string `yaml:"version"`
			}
			if err := e.Decode(&r); err != nil || r.Name == "" {
				st.errAt(posOf(file, e), "", "", "required_plugin_versions entries need name and version")
				continue
			}
			st.report.RequiredPlugins = append(st.report.RequiredPlugins, PluginRequirement{Name: r.Name, Version: r.Version, File: file})
		}
	default:
		st.warnAt(p, "", "", "unknown item with keys %s: ignored", strings.Join(order, ", "))
	}
}

func has(m map[string]kv, k string) bool { _, ok := m[k]; return ok }

// validEngineVersion accepts a bare number (the old engine versions, e.g.
// 26) or a MAJOR.MINOR.PATCH semantic version.
func validEngineVersion(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) != 1 && len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 9 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// cmpVersion compares dotted numeric versions.
func cmpVersion(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			fmt.Sscanf(as[i], "%d", &x)
		}
		if i < len(bs) {
			fmt.Sscanf(bs[i], "%d", &y)
		}
		if x != y {
			return cmpInt(int64(x), int64(y))
		}
	}
	return 0
}

func scalarString(file string, v *yaml.Node) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", &Error{File: file, Line: v.Line, Column: v.Column, Msg: "must be a string"}
	}
	return v.Value, nil
}

func scalarBool(file string, v *yaml.Node) (bool, error) {
	var b bool
	if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
		return false, &Error{File: file, Line: v.Line, Column: v.Column, Msg: fmt.Sprintf("must be true or false, got %q", v.Value)}
	}
	return b, nil
}

func stringList(file string, v *yaml.Node) ([]string, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, &Error{File: file, Line: v.Line, Column: v.Column, Msg: "must be a sequence"}
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode {
			return nil, &Error{File: file, Line: e.Line, Column: e.Column, Msg: "sequence entries must be strings"}
		}
		out = append(out, e.Value)
	}
	return out, nil
}

// addErr records err (an *Error from a helper) under the item's name.
func (st *loadState) addErr(err error, kind, name, key string) {
	var e *Error
	if errors.As(err, &e) {
		e.Kind, e.Name = kind, name
		if key != "" {
			e.Msg = key + ": " + e.Msg
		}
		st.errs = append(st.errs, e)
		return
	}
	st.errs = append(st.errs, &Error{Kind: kind, Name: name, Msg: err.Error()})
}

// ruleSource is the source an append/override item names ("" when it
// names none: the item then applies to the rule whatever its source).
func ruleSource(keys map[string]kv) string {
	v, ok := keys["source"]
	if !ok || v.val.Kind != yaml.ScalarNode || v.val.Tag == "!!null" {
		return ""
	}
	return v.val.Value
}

// overrideModes parses an override mapping (key: append|replace).
func (st *loadState) overrideModes(file, kind, name string, keys map[string]kv, appendable, replaceable map[string]bool) (map[string]string, bool) {
	ov, ok := keys["override"]
	if !ok {
		return nil, true
	}
	if ov.val.Kind != yaml.MappingNode {
		st.errAt(posOf(file, ov.val), kind, name, "override must be a mapping of key: append|replace")
		return nil, false
	}
	modes := map[string]string{}
	for i := 0; i+1 < len(ov.val.Content); i += 2 {
		k, v := ov.val.Content[i], ov.val.Content[i+1]
		switch v.Value {
		case "append":
			if !appendable[k.Value] {
				st.errAt(posOf(file, v), kind, name, "override: key %q cannot be appended", k.Value)
				return nil, false
			}
		case "replace":
			if !replaceable[k.Value] {
				st.errAt(posOf(file, v), kind, name, "override: key %q cannot be replaced", k.Value)
				return nil, false
			}
		default:
			st.errAt(posOf(file, v), kind, name, "override: %q must be append or replace", k.Value)
			return nil, false
		}
		if !has(keys, k.Value) {
			st.errAt(posOf(file, k), kind, name, "override names key %q that the item does not set", k.Value)
			return nil, false
		}
		modes[k.Value] = v.Value
	}
	for k, e := range keys {
		if k == kind || k == "override" || (kind == "rule" && k == "source") {
			continue
		}
		if _, ok := modes[k]; !ok {
			st.errAt(posOf(file, e.key), kind, name, "key %q is set but not listed in override", k)
			return nil, false
		}
	}
	if has(keys, "append") {
		st.errAt(posOf(file, keys["append"].key), kind, name, "append and override cannot be combined")
		return nil, false
	}
	return modes, true
}

// checkName warns about list and macro names that are not identifiers
// ([A-Za-z_][A-Za-z0-9_]*): Falco loads them but warns, since a condition
// can only refer to them in some positions.
func (st *loadState) checkName(file string, n *yaml.Node, kind, name string) {
	ok := name != "" && isIdentStart(name[0])
	for i := 0; ok && i < len(name); i++ {
		ok = isIdentChar(name[i])
	}
	if !ok {
		st.warnAt(posOf(file, n), kind, name, "%s name is not an identifier ([A-Za-z_][A-Za-z0-9_]*)", kind)
	}
}

func (st *loadState) checkKeys(file, kind, name string, order []string, keys map[string]kv, known map[string]bool) {
	for _, k := range order {
		if !known[k] {
			st.warnAt(posOf(file, keys[k].key), kind, name, "unknown key %q ignored", k)
		}
	}
}

func isAppend(file string, st *loadState, kind, name string, keys map[string]kv) bool {
	a, ok := keys["append"]
	if !ok {
		return false
	}
	b, err := scalarBool(file, a.val)
	if err != nil {
		st.addErr(err, kind, name, "append")
		return false
	}
	return b
}

func (st *loadState) loadList(file string, fileIdx int, p pos, keys map[string]kv, order []string) {
	name, err := scalarString(file, keys["list"].val)
	if err != nil || name == "" {
		st.errAt(p, "list", name, "list name must be a non-empty string")
		return
	}
	st.checkKeys(file, "list", name, order, keys, map[string]bool{"list": true, "items": true, "append": true, "override": true})
	st.checkName(file, keys["list"].val, "list", name)
	itemsKV, ok := keys["items"]
	if !ok {
		st.errAt(p, "list", name, "missing key items")
		return
	}
	items, err := stringList(file, itemsKV.val)
	if err != nil {
		st.addErr(err, "list", name, "items")
		return
	}
	modes, ok := st.overrideModes(file, "list", name, keys, map[string]bool{"items": true}, map[string]bool{"items": true})
	if !ok {
		return
	}
	appending := isAppend(file, st, "list", name, keys) || modes["items"] == "append"
	existing := st.listIdx[name]
	// override: replace of a list not yet defined defines it (Falco).
	if appending || (modes["items"] == "replace" && existing != nil) {
		if existing == nil {
			st.errAt(p, "list", name, "append/override of a list that is not defined earlier")
			return
		}
		if appending {
			existing.items = append(existing.items, items...)
		} else {
			existing.items = items
		}
		return
	}
	st.files[fileIdx].Lists++
	if existing != nil {
		existing.items = items
		return
	}
	l := &listItem{name: name, items: items, pos: p, index: len(st.lists)}
	st.lists = append(st.lists, l)
	st.listIdx[name] = l
}

func (st *loadState) loadMacro(file string, fileIdx int, p pos, keys map[string]kv, order []string) {
	name, err := scalarString(file, keys["macro"].val)
	if err != nil || name == "" {
		st.errAt(p, "macro", name, "macro name must be a non-empty string")
		return
	}
	st.checkKeys(file, "macro", name, order, keys, map[string]bool{"macro": true, "condition": true, "append": true, "override": true, "source": true})
	st.checkName(file, keys["macro"].val, "macro", name)
	ckv, ok := keys["condition"]
	if !ok {
		st.errAt(p, "macro", name, "missing key condition")
		return
	}
	cond, err := scalarString(file, ckv.val)
	if err != nil {
		st.addErr(err, "macro", name, "condition")
		return
	}
	modes, ok := st.overrideModes(file, "macro", name, keys, map[string]bool{"condition": true}, map[string]bool{"condition": true})
	if !ok {
		return
	}
	ct := condText{text: cond, node: ckv.val, file: file, data: st.data[file]}
	appending := isAppend(file, st, "macro", name, keys) || modes["condition"] == "append"
	existing := st.macIdx[name]
	// override: replace of a macro not yet defined defines it (Falco).
	if appending || (modes["condition"] == "replace" && existing != nil) {
		if existing == nil {
			st.errAt(p, "macro", name, "append/override of a macro that is not defined earlier")
			return
		}
		if appending {
			existing.conds = append(existing.conds, ct)
		} else {
			existing.conds = []condText{ct}
		}
		return
	}
	st.files[fileIdx].Macros++
	if existing != nil {
		existing.conds = []condText{ct}
		return
	}
	m := &macroItem{name: name, conds: []condText{ct}, pos: p, index: len(st.macros)}
	st.macros = append(st.macros, m)
	st.macIdx[name] = m
}

var ruleKeys = map[string]bool{
	"rule": true, "desc": true, "condition": true, "output": true, "priority": true, "enabled": true,
	"tags": true, "exceptions": true, "source": true, "append": true, "override": true,
	"skip-if-unknown-filter": true, "warn_evttypes": true, "required_engine_version": true,
	"capture": true, "capture_duration": true,
}

var ruleAppendable = map[string]bool{"condition": true, "output": true, "desc": true, "tags": true, "exceptions": true}

var ruleReplaceable = map[string]bool{
	"condition": true, "output": true, "desc": true, "priority": true, "tags": true, "exceptions": true,
	"enabled": true, "warn_evttypes": true, "skip-if-unknown-filter": true,
	"capture": true, "capture_duration": true,
}

func (st *loadState) loadRule(file string, fileIdx int, p pos, keys map[string]kv, order []string) {
	name, err := scalarString(file, keys["rule"].val)
	if err != nil || name == "" {
		st.errAt(p, "rule", name, "rule name must be a non-empty string")
		return
	}
	st.checkKeys(file, "rule", name, order, keys, ruleKeys)
	modes, ok := st.overrideModes(file, "rule", name, keys, ruleAppendable, ruleReplaceable)
	if !ok {
		return
	}
	appending := isAppend(file, st, "rule", name, keys)
	existing := st.ruleIdx[name]
	// Legacy form: only the name and enabled toggles an existing rule.
	onlyEnabled := len(keys) == 2 && has(keys, "enabled")
	if onlyEnabled && existing != nil {
		b, err := scalarBool(file, keys["enabled"].val)
		if err != nil {
			st.addErr(err, "rule", name, "enabled")
			return
		}
		existing.enabled = b
		return
	}
	if modes != nil || appending {
		if existing == nil {
			st.errAt(p, "rule", name, "append/override of a rule that is not defined earlier")
			return
		}
		if src := ruleSource(keys); src != "" && src != existing.source {
			st.errAt(posOf(file, keys["source"].val), "rule", name, "append/override with source %q of a rule defined with source %q", src, existing.source)
			return
		}
		if appending {
			modes = map[string]string{}
			for k := range keys {
				switch {
				case k == "rule" || k == "append" || k == "source":
				case ruleAppendable[k]:
					modes[k] = "append"
				default:
					st.warnAt(posOf(file, keys[k].key), "rule", name, "key %q cannot be appended with append: true; ignored", k)
				}
			}
		}
		st.applyRule(file, existing, keys, modes)
		return
	}
	r := &ruleItem{name: name, enabled: true, warnEvttypes: true, source: "syscall", pos: p, fileIdx: fileIdx}
	for _, req := range []string{"condition", "output", "priority"} {
		if !has(keys, req) {
			st.errAt(p, "rule", name, "missing key %s", req)
			return
		}
	}
	if !has(keys, "desc") {
		st.warnAt(p, "rule", name, "missing key desc")
	}
	modes = map[string]string{}
	for k := range keys {
		if ruleReplaceable[k] || k == "source" {
			modes[k] = "replace"
		}
	}
	if !st.applyRule(file, r, keys, modes) {
		return
	}
	if existing != nil && existing.source != r.source {
		st.errAt(p, "rule", name, "rule re-defined with source %q; it was defined with source %q", r.source, existing.source)
		return
	}
	st.files[fileIdx].Rules++
	if existing != nil {
		r.index = existing.index
		st.rules[r.index] = r
	} else {
		r.index = len(st.rules)
		st.rules = append(st.rules, r)
	}
	st.ruleIdx[name] = r
}

// applyRule sets or appends the keys listed in modes.
func (st *loadState) applyRule(file string, r *ruleItem, keys map[string]kv, modes map[string]string) bool {
	ok := true
	for k, mode := range modes {
		v := keys[k].val
		add := mode == "append"
		switch k {
		case "condition":
			s, err := scalarString(file, v)
			if err != nil {
				st.addErr(err, "rule", r.name, k)
				ok = false
				continue
			}
			ct := condText{text: s, node: v, file: file, data: st.data[file]}
			if add {
				r.conds = append(r.conds, ct)
			} else {
				r.conds = []condText{ct}
			}
		case "output", "desc":
			s, err := scalarString(file, v)
			if err != nil {
				st.addErr(err, "rule", r.name, k)
				ok = false
				continue
			}
			s = strings.TrimSpace(s)
			if k == "output" {
				if add {
					r.output = strings.TrimSpace(r.output + " " + s)
				} else {
					r.output = s
				}
				r.outputNode = v
			} else if add {
				r.desc = strings.TrimSpace(r.desc + " " + s)
			} else {
				r.desc = s
			}
		case "priority":
			s, err := scalarString(file, v)
			if err == nil {
				var pr event.Priority
				pr, err = event.ParsePriority(s)
				r.priority = pr
			}
			if err != nil {
				st.errAt(posOf(file, v), "rule", r.name, "priority: %v", err)
				ok = false
			}
		case "enabled", "skip-if-unknown-filter", "warn_evttypes":
			b, err := scalarBool(file, v)
			if err != nil {
				st.addErr(err, "rule", r.name, k)
				ok = false
				continue
			}
			switch k {
			case "enabled":
				r.enabled = b
			case "skip-if-unknown-filter":
				r.skipUnknown = b
			default:
				r.warnEvttypes = b
			}
		case "tags":
			tags, err := stringList(file, v)
			if err != nil {
				st.addErr(err, "rule", r.name, k)
				ok = false
				continue
			}
			if add {
				seen := map[string]bool{}
				for _, t := range r.tags {
					seen[t] = true
				}
				for _, t := range tags {
					if !seen[t] {
						r.tags = append(r.tags, t)
						seen[t] = true
					}
				}
			} else {
				r.tags = tags
			}
		case "source":
			s, err := scalarString(file, v)
			if err != nil {
				st.addErr(err, "rule", r.name, k)
				ok = false
				continue
			}
			if s != "" {
				r.source = s
			}
		case "capture":
			// Falco reads capture leniently (a value that is not a boolean
			// leaves capture off); driftwatch warns instead of failing.
			b, err := scalarBool(file, v)
			if err != nil {
				b = false
				switch strings.ToLower(v.Value) {
				case "yes", "on", "y":
					b = true
				case "no", "off", "n":
				default:
					st.warnAt(posOf(file, v), "rule", r.name, "capture: %q is not a boolean; capture stays off", v.Value)
				}
			}
			r.capture = b
		case "capture_duration":
			var n int64
			if v.Kind != yaml.ScalarNode || v.Decode(&n) != nil || n < 0 {
				st.errAt(posOf(file, v), "rule", r.name, "capture_duration: %q is not a non-negative number of milliseconds", v.Value)
				ok = false
				continue
			}
			r.captureDuration = n
		case "exceptions":
			excs, err := st.parseExceptions(file, r.name, v)
			if err != nil {
				st.addErr(err, "rule", r.name, k)
				ok = false
				continue
			}
			if !add {
				r.exceptions = excs
				continue
			}
			for _, x := range excs {
				merged := false
				for _, old := range r.exceptions {
					if old.name == x.name {
						old.values = append(old.values, x.values...)
						merged = true
					}
				}
				if !merged {
					if len(x.fields) == 0 {
						st.errAt(x.pos, "rule", r.name, "exceptions: appended exception %q has no fields and no earlier definition", x.name)
						ok = false
						continue
					}
					r.exceptions = append(r.exceptions, x)
				}
			}
		}
	}
	return ok
}

// parseExceptions parses a rule's exceptions (fields/comps/values, with
// the single-field form where fields and comps are scalars).
func (st *loadState) parseExceptions(file, rule string, v *yaml.Node) ([]*exception, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, &Error{File: file, Line: v.Line, Column: v.Column, Msg: "must be a sequence"}
	}
	var out []*exception
	for _, e := range v.Content {
		ep := posOf(file, e)
		bad := func(n *yaml.Node, format string, a ...any) error {
			return &Error{File: file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, a...)}
		}
		if e.Kind != yaml.MappingNode {
			return nil, bad(e, "each exception must be a mapping")
		}
		x := &exception{pos: ep}
		var valuesNode *yaml.Node
		for i := 0; i+1 < len(e.Content); i += 2 {
			k, val := e.Content[i], e.Content[i+1]
			switch k.Value {
			case "name":
				x.name = val.Value
			case "fields":
				if val.Kind == yaml.ScalarNode {
					x.fields, x.singleField = []string{val.Value}, true
				} else {
					f, err := stringList(file, val)
					if err != nil {
						return nil, err
					}
					x.fields = f
				}
			case "comps":
				if val.Kind == yaml.ScalarNode {
					x.comps = []string{val.Value}
				} else {
					c, err := stringList(file, val)
					if err != nil {
						return nil, err
					}
					x.comps = c
				}
			case "values":
				valuesNode = val
			default:
				st.warnAt(posOf(file, k), "rule", rule, "exception: unknown key %q ignored", k.Value)
			}
		}
		if x.name == "" {
			return nil, bad(e, "exception without a name")
		}
		if len(x.comps) == 0 {
			for range x.fields {
				if x.singleField {
					x.comps = append(x.comps, "in")
				} else {
					x.comps = append(x.comps, "=")
				}
			}
		}
		if len(x.fields) > 0 && len(x.comps) != len(x.fields) {
			return nil, bad(e, "exception %q: %d fields but %d comps", x.name, len(x.fields), len(x.comps))
		}
		x.mods = make([]string, len(x.comps))
		for i, c := range x.comps {
			op, mod, err := parseExceptionComp(c)
			if err != nil {
				return nil, bad(e, "exception %q: %v", x.name, err)
			}
			x.comps[i], x.mods[i] = op, mod
		}
		hasValues := valuesNode != nil && !(valuesNode.Kind == yaml.ScalarNode && valuesNode.Tag == "!!null")
		if hasValues && len(x.fields) == 0 && len(x.comps) > 0 {
			return nil, bad(e, "exception %q: comps without fields", x.name)
		}
		if hasValues {
			if valuesNode.Kind != yaml.SequenceNode {
				return nil, bad(valuesNode, "exception %q: values must be a sequence", x.name)
			}
			for _, tup := range valuesNode.Content {
				if x.singleField && x.mods[0] != "" && tup.Kind == yaml.SequenceNode {
					// One field with a modifier: a sequence lists alternatives.
					l, err := stringList(file, tup)
					if err != nil {
						return nil, err
					}
					x.values = append(x.values, []excValue{{list: l, isList: true}})
					continue
				}
				if x.singleField {
					if tup.Kind != yaml.ScalarNode {
						return nil, bad(tup, "exception %q: single-field values must be scalars", x.name)
					}
					x.values = append(x.values, []excValue{{s: tup.Value}})
					continue
				}
				if tup.Kind != yaml.SequenceNode {
					if len(x.fields) == 1 && x.mods[0] != "" && tup.Kind == yaml.ScalarNode {
						// One field with a modifier: a scalar is one alternative.
						x.values = append(x.values, []excValue{{s: tup.Value}})
						continue
					}
					return nil, bad(tup, "exception %q: each value must be a sequence matching fields", x.name)
				}
				if len(x.fields) > 0 && len(tup.Content) != len(x.fields) {
					return nil, bad(tup, "exception %q: value has %d entries but there are %d fields", x.name, len(tup.Content), len(x.fields))
				}
				var row []excValue
				for _, cell := range tup.Content {
					if cell.Kind == yaml.SequenceNode {
						l, err := stringList(file, cell)
						if err != nil {
							return nil, err
						}
						row = append(row, excValue{list: l, isList: true})
					} else {
						row = append(row, excValue{s: cell.Value})
					}
				}
				x.values = append(x.values, row)
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// exceptionOps are the base comparisons an exception comp may name.
var exceptionOps = map[string]bool{"=": true, "==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

// modifiableOps are the base comparisons that accept a modifier in an
// exception comp ("startswith oneof"): the string and equality operators,
// not the list operators (in, intersects, pmatch) nor the ordering ones.
var modifiableOps = map[string]bool{
	"=": true, "==": true, "!=": true, "contains": true, "icontains": true, "bcontains": true,
	"startswith": true, "bstartswith": true, "endswith": true, "glob": true, "iglob": true, "regex": true,
}

// parseExceptionComp splits an exception comp into its operator and an
// optional modifier (oneof/anyof: any of the values matches; allof: all
// do), normalising whitespace as Falco does ("  startswith  oneof ").
func parseExceptionComp(c string) (op, mod string, err error) {
	words := strings.Fields(c)
	switch len(words) {
	case 1:
		op = words[0]
		if !exceptionOps[op] && !wordOps[op] {
			return "", "", fmt.Errorf("unknown comparison %q", c)
		}
		return op, "", nil
	case 2:
		op, mod = words[0], words[1]
		if mod != "oneof" && mod != "anyof" && mod != "allof" {
			return "", "", fmt.Errorf("unknown comparison %q (a modifier is oneof, anyof or allof)", c)
		}
		if !modifiableOps[op] {
			if listOps[op] || exceptionOps[op] || wordOps[op] {
				return "", "", fmt.Errorf("comparison %q: operator %s does not take a modifier", c, op)
			}
			return "", "", fmt.Errorf("unknown comparison %q", c)
		}
		return op, mod, nil
	}
	return "", "", fmt.Errorf("unknown comparison %q", c)
}
