package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/driftwatch/driftwatch/event"
)

type boolFn func(c *evalCtx) bool

// Event type ids index rules: syscall numbers, plus pseudo types.
const (
	numTypeIDs  = 1024
	idProcexit  = 1022
	idUnknownEv = 1023
)

// typeID returns the evt.type index of an event.
func typeID(e *event.Event) int {
	switch e.Kind {
	case event.KindExec:
		return int(event.SysExecve)
	case event.KindFork:
		return int(event.SysClone)
	case event.KindExit:
		return idProcexit
	}
	if int(e.Syscall) < idProcexit {
		return int(e.Syscall)
	}
	return idUnknownEv
}

func typeIDByName(name string) (int, bool) {
	if name == "procexit" {
		return idProcexit, true
	}
	if nr, ok := event.SyscallNumber(name); ok && int(nr) < idProcexit {
		return int(nr), true
	}
	return 0, false
}

// typeSet is a bitset of event type ids.
type typeSet [numTypeIDs / 64]uint64

func allTypes() typeSet {
	var s typeSet
	for i := range s {
		s[i] = ^uint64(0)
	}
	return s
}

func (s *typeSet) add(id int)      { s[id/64] |= 1 << uint(id%64) }
func (s *typeSet) has(id int) bool { return s[id/64]&(1<<uint(id%64)) != 0 }
func (s typeSet) isAll() bool      { return s == allTypes() }
func (s typeSet) not() typeSet {
	for i := range s {
		s[i] = ^s[i]
	}
	return s
}
func (s typeSet) and(o typeSet) typeSet {
	for i := range s {
		s[i] &= o[i]
	}
	return s
}
func (s typeSet) or(o typeSet) typeSet {
	for i := range s {
		s[i] |= o[i]
	}
	return s
}
func (s typeSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// CompileError is an error in a condition, at a byte offset of it.
type CompileError struct {
	Offset int
	Msg    string
	// Field is set when the error is an unknown or unusable field.
	Field string
	// Unavailable is set when Field is a Falco field driftwatch knows but
	// cannot provide (unavailableFields): the rule is skipped, not failed.
	Unavailable bool
}

func (e *CompileError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

// macroDef is a parsed macro with its definition order.
type macroDef struct {
	name  string
	index int
	ast   node
}

// compiler turns condition ASTs into evaluators. Macros and lists are
// resolved with Falco's visibility: a macro sees only macros defined
// before it; conditions see every list (lists are expanded first).
type compiler struct {
	lists  map[string][]string
	macros map[string]*macroDef
	xslots *int
	// unknownTypes collects evt.type names that are not syscalls.
	unknownTypes map[string]bool
	usedMacros   map[string]bool
	usedLists    map[string]bool
}

func (cp *compiler) macro(name string, limit int) (*macroDef, bool) {
	m, ok := cp.macros[name]
	if !ok || m.index >= limit {
		return nil, false
	}
	return m, true
}

const noLimit = int(^uint(0) >> 1)

// compileAll compiles the operands of an and/or.
func (cp *compiler) compileAll(kids []node, limit, depth int) ([]boolFn, error) {
	fns := make([]boolFn, 0, len(kids))
	for _, k := range kids {
		f, err := cp.compile(k, limit, depth)
		if err != nil {
			return nil, err
		}
		fns = append(fns, f)
	}
	return fns, nil
}

// compile compiles a condition; limit restricts visible macros.
func (cp *compiler) compile(n node, limit, depth int) (boolFn, error) {
	if depth > maxDepth {
		return nil, &CompileError{Offset: n.pos(), Msg: fmt.Sprintf("macro expansion nested deeper than %d levels", maxDepth)}
	}
	switch n := n.(type) {
	case *andNode:
		fns, err := cp.compileAll(n.kids, limit, depth+1)
		if err != nil {
			return nil, err
		}
		return andFn(fns), nil
	case *orNode:
		fns, err := cp.compileAll(n.kids, limit, depth+1)
		if err != nil {
			return nil, err
		}
		return orFn(fns), nil
	case *notNode:
		f, err := cp.compile(n.kid, limit, depth+1)
		if err != nil {
			return nil, err
		}
		return func(c *evalCtx) bool { return !f(c) }, nil
	case *boolConst:
		v := n.v
		return func(*evalCtx) bool { return v }, nil
	case *macroRef:
		m, ok := cp.macro(n.name, limit)
		if !ok {
			if _, later := cp.macros[n.name]; later {
				return nil, &CompileError{Offset: n.at, Msg: fmt.Sprintf("macro %q is used before it is defined", n.name)}
			}
			return nil, &CompileError{Offset: n.at, Msg: fmt.Sprintf("undefined macro %q", n.name)}
		}
		if cp.usedMacros != nil {
			cp.usedMacros[n.name] = true
		}
		f, err := cp.compile(m.ast, m.index, depth+1)
		if err != nil {
			var ce *CompileError
			if asCompileError(err, &ce) && !strings.HasPrefix(ce.Msg, "in macro ") {
				return nil, &CompileError{Offset: n.at, Msg: fmt.Sprintf("in macro %q: %s", n.name, ce.Msg), Field: ce.Field, Unavailable: ce.Unavailable}
			}
			return nil, err
		}
		return f, nil
	case *cmpNode:
		if n.excMod != "" {
			return cp.compileExcMod(n)
		}
		return cp.compileCmp(n)
	}
	return nil, fmt.Errorf("internal: unknown node %T", n)
}

func asCompileError(err error, out **CompileError) bool {
	ce, ok := err.(*CompileError)
	if ok {
		*out = ce
	}
	return ok
}

func andFn(fns []boolFn) boolFn {
	switch len(fns) {
	case 1:
		return fns[0]
	case 2:
		a, b := fns[0], fns[1]
		return func(c *evalCtx) bool { return a(c) && b(c) }
	}
	return func(c *evalCtx) bool {
		for _, f := range fns {
			if !f(c) {
				return false
			}
		}
		return true
	}
}

func orFn(fns []boolFn) boolFn {
	switch len(fns) {
	case 1:
		return fns[0]
	case 2:
		a, b := fns[0], fns[1]
		return func(c *evalCtx) bool { return a(c) || b(c) }
	}
	return func(c *evalCtx) bool {
		for _, f := range fns {
			if f(c) {
				return true
			}
		}
		return false
	}
}

// resolvedField is a field ready for extraction.
type resolvedField struct {
	get   getter
	typ   ftype
	multi bool
	name  string
}

// resolveField looks a field up and applies its transformers.
func (cp *compiler) resolveField(f *fieldRef) (resolvedField, error) {
	def, ok := fieldTable[f.name]
	if !ok {
		if why, known := unavailableFields[f.name]; known {
			return resolvedField{}, &CompileError{Offset: f.at, Msg: fmt.Sprintf("field %s is not available: %s", f.name, why), Field: f.name, Unavailable: true}
		}
		return resolvedField{}, &CompileError{Offset: f.at, Msg: fmt.Sprintf("unknown field %q", f.name), Field: f.name}
	}
	if f.hasArg && def.argMode == 0 {
		return resolvedField{}, &CompileError{Offset: f.at, Msg: fmt.Sprintf("field %q takes no argument", f.name), Field: f.name}
	}
	if !f.hasArg && def.argMode == 2 {
		return resolvedField{}, &CompileError{Offset: f.at, Msg: fmt.Sprintf("field %q needs an argument", f.name), Field: f.name}
	}
	g, multi, err := def.make(f.arg, f.hasArg)
	if err != nil {
		return resolvedField{}, &CompileError{Offset: f.at, Msg: err.Error(), Field: f.name}
	}
	rf := resolvedField{get: g, typ: def.typ, multi: multi || def.multi, name: f.String()}
	for i := len(f.xforms) - 1; i >= 0; i-- {
		x := f.xforms[i]
		if rf.typ != tString {
			return resolvedField{}, &CompileError{Offset: f.at, Msg: fmt.Sprintf("transformer %s needs a string field, %s is a %s", x, f.name, rf.typ)}
		}
		inner := rf.get
		slot := *cp.xslots
		*cp.xslots++
		switch x {
		case "tolower", "toupper":
			upper := x == "toupper"
			rf.get = func(c *evalCtx, i int) (value, bool) {
				v, ok := inner(c, i)
				if !ok {
					return v, false
				}
				b := c.xbufs[slot][:0]
				for j := 0; j < len(v.s); j++ {
					ch := v.s[j]
					if upper && ch >= 'a' && ch <= 'z' {
						ch -= 32
					} else if !upper && ch >= 'A' && ch <= 'Z' {
						ch += 32
					}
					b = append(b, ch)
				}
				c.xbufs[slot] = b
				return value{s: bstr(b)}, true
			}
		case "b64":
			rf.get = func(c *evalCtx, i int) (value, bool) {
				v, ok := inner(c, i)
				if !ok {
					return v, false
				}
				b := c.xbufs[slot][:0]
				n := base64.StdEncoding.DecodedLen(len(v.s))
				if cap(b) < n {
					b = make([]byte, 0, n)
				}
				b = b[:n]
				m, err := base64.StdEncoding.Decode(b, unsafeBytes(v.s))
				if err != nil {
					return value{}, false
				}
				c.xbufs[slot] = b
				return value{s: bstr(b[:m])}, true
			}
		case "basename":
			rf.get = func(c *evalCtx, i int) (value, bool) {
				v, ok := inner(c, i)
				if !ok {
					return v, false
				}
				return value{s: fileBase(v.s)}, true
			}
		case "len":
			rf.typ = tInt
			rf.get = func(c *evalCtx, i int) (value, bool) {
				v, ok := inner(c, i)
				if !ok {
					return v, false
				}
				return value{n: int64(len(v.s))}, true
			}
		}
	}
	return rf, nil
}

// compileExcMod compiles an exception comparison with a modifier: the
// operator against each value (list names expanded), or-ed for oneof and
// anyof, and-ed for allof.
func (cp *compiler) compileExcMod(n *cmpNode) (boolFn, error) {
	vals := cp.expandValues(&cmpNode{values: n.values, isList: true})
	if len(vals) == 0 {
		v := n.excMod == "allof"
		return func(*evalCtx) bool { return v }, nil
	}
	fns := make([]boolFn, 0, len(vals))
	for _, v := range vals {
		f, err := cp.compileCmp(&cmpNode{field: n.field, op: n.op, values: []operand{{text: v, quoted: true}}, at: n.at})
		if err != nil {
			return nil, err
		}
		fns = append(fns, f)
	}
	if n.excMod == "allof" {
		return andFn(fns), nil
	}
	return orFn(fns), nil
}

// expandValues turns list operands into their items (lists expanded).
func (cp *compiler) expandValues(n *cmpNode) []string {
	var out []string
	for _, v := range n.values {
		if !v.quoted && n.isList {
			if items, ok := cp.lists[v.text]; ok {
				if cp.usedLists != nil {
					cp.usedLists[v.text] = true
				}
				out = append(out, items...)
				continue
			}
		}
		out = append(out, v.text)
	}
	return out
}

func (cp *compiler) compileCmp(n *cmpNode) (boolFn, error) {
	rf, err := cp.resolveField(&n.field)
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return &CompileError{Offset: n.at, Msg: fmt.Sprintf(format, a...)}
	}
	if n.modifier != "" && !rf.multi {
		return nil, bad("modifier %s needs a multi-valued field; %s has one value", n.modifier, rf.name)
	}
	if n.op == "exists" {
		g := rf.get
		return func(c *evalCtx) bool { _, ok := g(c, 0); return ok }, nil
	}
	if n.rhsField != nil {
		return cp.compileValCmp(n, rf)
	}
	vals := cp.expandValues(n)
	if !n.isList && len(vals) != 1 {
		return nil, bad("operator %s needs one value", n.op)
	}
	// evt.type fast path: compare type ids.
	if n.field.name == "evt.type" && len(n.field.xforms) == 0 && (n.op == "=" || n.op == "!=" || n.op == "in") {
		var set typeSet
		for _, v := range vals {
			if id, ok := typeIDByName(v); ok {
				set.add(id)
			} else if cp.unknownTypes != nil {
				cp.unknownTypes[v] = true
			}
		}
		neg := n.op == "!="
		return func(c *evalCtx) bool { return set.has(typeID(c.e.Event)) != neg }, nil
	}
	negate := false
	op := n.op
	if op == "!=" {
		op, negate = "=", true
	}
	pred, err := makePred(rf.typ, op, vals, n.isList)
	if err != nil {
		return nil, bad("%s %s: %v", rf.name, n.op, err)
	}
	g := rf.get
	if !rf.multi {
		if fn := fastSingle(rf, op, vals, negate); fn != nil {
			return fn, nil
		}
		if negate {
			return func(c *evalCtx) bool { v, ok := g(c, 0); return ok && !pred(v) }, nil
		}
		return func(c *evalCtx) bool { v, ok := g(c, 0); return ok && pred(v) }, nil
	}
	mod := n.modifier
	if negate && mod == "" {
		// != on a multi-valued field: no value equals.
		return func(c *evalCtx) bool {
			any, present := false, false
			for i := 0; ; i++ {
				v, ok := g(c, i)
				if !ok {
					break
				}
				present = true
				if pred(v) {
					any = true
					break
				}
			}
			return present && !any
		}, nil
	}
	p := pred
	if negate {
		p = func(v value) bool { return !pred(v) }
	}
	switch mod {
	case "allof":
		return func(c *evalCtx) bool {
			n := 0
			for i := 0; ; i++ {
				v, ok := g(c, i)
				if !ok {
					break
				}
				if !p(v) {
					return false
				}
				n++
			}
			return n > 0
		}, nil
	case "oneof":
		return func(c *evalCtx) bool {
			n := 0
			for i := 0; ; i++ {
				v, ok := g(c, i)
				if !ok {
					break
				}
				if p(v) {
					n++
				}
			}
			return n == 1
		}, nil
	}
	return func(c *evalCtx) bool {
		for i := 0; ; i++ {
			v, ok := g(c, i)
			if !ok {
				return false
			}
			if p(v) {
				return true
			}
		}
	}, nil
}

// makePred builds the predicate for one value of a field of type t.
func makePred(t ftype, op string, vals []string, isList bool) (func(value) bool, error) {
	if (op == "in" || op == "intersects" || op == "pmatch") && !isList {
		return nil, fmt.Errorf("needs a parenthesised list")
	}
	if isList && op != "in" && op != "intersects" && op != "pmatch" {
		return nil, fmt.Errorf("a list is only valid with in, intersects or pmatch")
	}
	if len(vals) == 0 {
		if isList {
			return func(value) bool { return false }, nil
		}
		return nil, fmt.Errorf("missing value")
	}
	switch t {
	case tInt:
		nums := make([]int64, len(vals))
		for i, v := range vals {
			n, err := parseNum(v)
			if err != nil {
				return nil, err
			}
			nums[i] = n
		}
		switch op {
		case "=":
			k := nums[0]
			return func(v value) bool { return v.n == k }, nil
		case "<":
			k := nums[0]
			return func(v value) bool { return v.n < k }, nil
		case "<=":
			k := nums[0]
			return func(v value) bool { return v.n <= k }, nil
		case ">":
			k := nums[0]
			return func(v value) bool { return v.n > k }, nil
		case ">=":
			k := nums[0]
			return func(v value) bool { return v.n >= k }, nil
		case "in", "intersects":
			set := make(map[int64]struct{}, len(nums))
			for _, n := range nums {
				set[n] = struct{}{}
			}
			return func(v value) bool { _, ok := set[v.n]; return ok }, nil
		}
	case tBool:
		if op != "=" {
			break
		}
		var want int64
		switch strings.ToLower(vals[0]) {
		case "true":
			want = 1
		case "false":
		default:
			return nil, fmt.Errorf("value %q is not true or false", vals[0])
		}
		return func(v value) bool { return v.n == want }, nil
	case tIP:
		type matcher struct {
			pfx  netip.Prefix
			addr netip.Addr
		}
		ms := make([]matcher, len(vals))
		for i, v := range vals {
			if strings.Contains(v, "/") {
				p, err := netip.ParsePrefix(v)
				if err != nil {
					return nil, fmt.Errorf("value %q is not a CIDR: %w", v, err)
				}
				ms[i].pfx = p.Masked()
			} else {
				a, err := netip.ParseAddr(v)
				if err != nil {
					return nil, fmt.Errorf("value %q is not an IP address: %w", v, err)
				}
				ms[i].addr = a.Unmap()
			}
		}
		if op != "=" && op != "in" && op != "intersects" {
			break
		}
		return func(v value) bool {
			for i := range ms {
				if ms[i].pfx.IsValid() {
					if ms[i].pfx.Contains(v.ip) {
						return true
					}
				} else if ms[i].addr == v.ip {
					return true
				}
			}
			return false
		}, nil
	case tString:
		k := vals[0]
		switch op {
		case "=":
			return func(v value) bool { return v.s == k }, nil
		case "<":
			return func(v value) bool { return v.s < k }, nil
		case "<=":
			return func(v value) bool { return v.s <= k }, nil
		case ">":
			return func(v value) bool { return v.s > k }, nil
		case ">=":
			return func(v value) bool { return v.s >= k }, nil
		case "contains":
			return func(v value) bool { return strings.Contains(v.s, k) }, nil
		case "icontains":
			lk := strings.ToLower(k)
			return func(v value) bool { return containsFold(v.s, lk) }, nil
		case "startswith":
			return func(v value) bool { return strings.HasPrefix(v.s, k) }, nil
		case "endswith":
			return func(v value) bool { return strings.HasSuffix(v.s, k) }, nil
		case "bcontains", "bstartswith":
			b, err := hex.DecodeString(strings.TrimPrefix(k, "0x"))
			if err != nil {
				return nil, fmt.Errorf("value %q is not a hex byte string: %w", k, err)
			}
			if op == "bcontains" {
				return func(v value) bool { return bytes.Contains(unsafeBytes(v.s), b) }, nil
			}
			return func(v value) bool { return bytes.HasPrefix(unsafeBytes(v.s), b) }, nil
		case "glob":
			if err := checkGlob(k); err != nil {
				return nil, err
			}
			return func(v value) bool { return globMatch(k, v.s, false) }, nil
		case "iglob":
			if err := checkGlob(k); err != nil {
				return nil, err
			}
			return func(v value) bool { return globMatch(k, v.s, true) }, nil
		case "regex":
			re, err := regexp.Compile(`^(?:` + k + `)$`)
			if err != nil {
				return nil, fmt.Errorf("bad regular expression %q: %w", k, err)
			}
			return func(v value) bool { return re.MatchString(v.s) }, nil
		case "in", "intersects":
			m := newStrSet(vals)
			return func(v value) bool { return m.has(v.s) }, nil
		case "pmatch":
			prefixes := append([]string(nil), vals...)
			return func(v value) bool { return pathPrefixMatch(prefixes, v.s) }, nil
		}
	}
	return nil, fmt.Errorf("operator %s is not valid for a %s field", op, t)
}

func parseNum(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		u, uerr := strconv.ParseUint(s, 0, 64)
		if uerr != nil {
			return 0, fmt.Errorf("value %q is not a number", s)
		}
		n = int64(u)
	}
	return n, nil
}

// compileValCmp compiles a comparison whose right side is val(field).
func (cp *compiler) compileValCmp(n *cmpNode, lf resolvedField) (boolFn, error) {
	rf, err := cp.resolveField(n.rhsField)
	if err != nil {
		return nil, err
	}
	if rf.multi || lf.multi {
		return nil, &CompileError{Offset: n.at, Msg: "val() comparisons need single-valued fields"}
	}
	if rf.typ != lf.typ {
		return nil, &CompileError{Offset: n.at, Msg: fmt.Sprintf("val(): %s is a %s but %s is a %s", lf.name, lf.typ, rf.name, rf.typ)}
	}
	var cmp func(a, b value) bool
	switch n.op {
	case "=":
		cmp = func(a, b value) bool { return a == b }
	case "!=":
		cmp = func(a, b value) bool { return a != b }
	case "<", "<=", ">", ">=":
		if lf.typ != tInt && lf.typ != tString {
			break
		}
		op := n.op
		cmp = func(a, b value) bool {
			var c int
			if lf.typ == tInt {
				c = cmpInt(a.n, b.n)
			} else {
				c = strings.Compare(a.s, b.s)
			}
			switch op {
			case "<":
				return c < 0
			case "<=":
				return c <= 0
			case ">":
				return c > 0
			}
			return c >= 0
		}
	case "contains":
		cmp = func(a, b value) bool { return strings.Contains(a.s, b.s) }
	case "startswith":
		cmp = func(a, b value) bool { return strings.HasPrefix(a.s, b.s) }
	case "endswith":
		cmp = func(a, b value) bool { return strings.HasSuffix(a.s, b.s) }
	}
	if cmp == nil || (lf.typ != tString && (n.op == "contains" || n.op == "startswith" || n.op == "endswith")) {
		return nil, &CompileError{Offset: n.at, Msg: fmt.Sprintf("operator %s is not supported with val() on a %s field", n.op, lf.typ)}
	}
	lg, rg := lf.get, rf.get
	return func(c *evalCtx) bool {
		a, ok := lg(c, 0)
		if !ok {
			return false
		}
		b, ok := rg(c, 0)
		return ok && cmp(a, b)
	}, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// evtTypes computes the event types for which n can be true (Falco's
// evttype resolution, sound under negation by De Morgan).
func (cp *compiler) evtTypes(n node, inverted bool, limit, depth int) typeSet {
	if depth > maxDepth {
		return allTypes()
	}
	switch n := n.(type) {
	case *andNode, *orNode:
		var kids []node
		isAnd := false
		if a, ok := n.(*andNode); ok {
			kids, isAnd = a.kids, true
		} else {
			kids = n.(*orNode).kids
		}
		intersect := isAnd != inverted
		var acc typeSet
		if intersect {
			acc = allTypes()
		}
		for _, k := range kids {
			s := cp.evtTypes(k, inverted, limit, depth+1)
			if intersect {
				acc = acc.and(s)
			} else {
				acc = acc.or(s)
			}
		}
		return acc
	case *notNode:
		return cp.evtTypes(n.kid, !inverted, limit, depth+1)
	case *macroRef:
		if m, ok := cp.macro(n.name, limit); ok {
			return cp.evtTypes(m.ast, inverted, m.index, depth+1)
		}
	case *cmpNode:
		if n.field.name != "evt.type" || len(n.field.xforms) > 0 || n.rhsField != nil || n.excMod != "" {
			break
		}
		var set typeSet
		switch n.op {
		case "=", "in", "!=":
			for _, v := range cp.expandValues(n) {
				if id, ok := typeIDByName(v); ok {
					set.add(id)
				}
			}
		default:
			return allTypes()
		}
		if (n.op == "!=") != inverted {
			return set.not()
		}
		return set
	}
	return allTypes()
}

// containsFold reports whether s contains lowerSub, ASCII case-insensitively.
func containsFold(s, lowerSub string) bool {
	n := len(lowerSub)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 32
			}
			if c != lowerSub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// pathPrefixMatch implements pmatch: s equals a prefix or lies below it.
func pathPrefixMatch(prefixes []string, s string) bool {
	for _, p := range prefixes {
		if !strings.HasPrefix(s, p) {
			continue
		}
		if len(s) == len(p) || strings.HasSuffix(p, "/") || s[len(p)] == '/' {
			return true
		}
	}
	return false
}

// fastSingle builds direct closures for the most frequent single-valued
// comparisons, saving the predicate indirection on the hot path.
func fastSingle(rf resolvedField, op string, vals []string, negate bool) boolFn {
	g := rf.get
	switch {
	case rf.typ == tString && op == "=" && len(vals) == 1:
		k := vals[0]
		return func(c *evalCtx) bool { v, ok := g(c, 0); return ok && (v.s == k) != negate }
	case rf.typ == tString && op == "in" && !negate:
		if len(vals) == 0 {
			return func(*evalCtx) bool { return false }
		}
		m := newStrSet(vals)
		return func(c *evalCtx) bool {
			v, ok := g(c, 0)
			return ok && m.has(v.s)
		}
	case rf.typ == tString && op == "startswith" && !negate && len(vals) == 1:
		k := vals[0]
		return func(c *evalCtx) bool { v, ok := g(c, 0); return ok && strings.HasPrefix(v.s, k) }
	case rf.typ == tString && op == "contains" && !negate && len(vals) == 1:
		k := vals[0]
		return func(c *evalCtx) bool { v, ok := g(c, 0); return ok && strings.Contains(v.s, k) }
	case (rf.typ == tBool || rf.typ == tInt) && op == "=" && len(vals) == 1:
		var k int64
		if rf.typ == tBool {
			switch strings.ToLower(vals[0]) {
			case "true":
				k = 1
			case "false":
			default:
				return nil
			}
		} else {
			n, err := parseNum(vals[0])
			if err != nil {
				return nil
			}
			k = n
		}
		return func(c *evalCtx) bool { v, ok := g(c, 0); return ok && (v.n == k) != negate }
	}
	return nil
}

// strSet is a string set for in/intersects: a length bitmap rejects most
// values before hashing, and small sets are scanned linearly.
type strSet struct {
	lens  uint64
	small []string
	m     map[string]struct{}
}

func newStrSet(vals []string) *strSet {
	s := &strSet{}
	for _, v := range vals {
		s.lens |= 1 << uint(min(len(v), 63))
	}
	if len(vals) <= 4 {
		s.small = append([]string(nil), vals...)
		return s
	}
	s.m = make(map[string]struct{}, len(vals))
	for _, v := range vals {
		s.m[v] = struct{}{}
	}
	return s
}

func (s *strSet) has(v string) bool {
	if s.lens&(1<<uint(min(len(v), 63))) == 0 {
		return false
	}
	if s.m == nil {
		for _, x := range s.small {
			if x == v {
				return true
			}
		}
		return false
	}
	_, ok := s.m[v]
	return ok
}
