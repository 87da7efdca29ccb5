package rules

import (
	"fmt"
	"strings"
)

// maxDepth bounds the nesting of parentheses, not and transformer calls in a
// condition (and of macro expansion), so hostile input cannot exhaust the stack.
const maxDepth = 64

// node is a parsed condition expression.
type node interface{ pos() int }

type andNode struct {
	kids []node
	at   int
}

type orNode struct {
	kids []node
	at   int
}

type notNode struct {
	kid node
	at  int
}

// macroRef is a bare identifier: a macro reference, resolved at compile time.
type macroRef struct {
	name string
	at   int
}

// fieldRef is a field with its optional argument and transformers
// (outermost first), e.g. tolower(proc.aname[2]).
type fieldRef struct {
	name   string
	arg    string
	hasArg bool
	xforms []string
	at     int
}

func (f *fieldRef) String() string {
	s := f.name
	if f.hasArg {
		s += "[" + f.arg + "]"
	}
	for i := len(f.xforms) - 1; i >= 0; i-- {
		s = f.xforms[i] + "(" + s + ")"
	}
	return s
}

// operand is one right-hand-side value: a literal or a list name (bare
// words inside a list may name a list and are expanded at compile time).
type operand struct {
	text   string
	quoted bool
}

// cmpNode is a comparison: field [modifier] op value|(list)|val(field).
type cmpNode struct {
	field    fieldRef
	modifier string // "", "anyof", "allof", "oneof"
	op       string
	values   []operand
	isList   bool
	rhsField *fieldRef
	// excMod is set for an exception comp with a modifier ("startswith
	// oneof"): values are alternatives (lists expanded), combined with or
	// (oneof, anyof) or and (allof).
	excMod string
	at     int
}

// boolConst is a constant produced by compile-time rewriting (empty lists).
type boolConst struct {
	v  bool
	at int
}

func (n *andNode) pos() int   { return n.at }
func (n *orNode) pos() int    { return n.at }
func (n *notNode) pos() int   { return n.at }
func (n *macroRef) pos() int  { return n.at }
func (n *cmpNode) pos() int   { return n.at }
func (n *boolConst) pos() int { return n.at }

// SyntaxError is a condition parse error at a byte offset of the condition.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg) }

var binaryOps = []string{"==", "=", "!=", "<=", "<", ">=", ">"}

var wordOps = map[string]bool{
	"contains": true, "icontains": true, "bcontains": true, "startswith": true, "bstartswith": true,
	"endswith": true, "glob": true, "iglob": true, "regex": true, "in": true, "intersects": true, "pmatch": true,
}

var listOps = map[string]bool{"in": true, "intersects": true, "pmatch": true}

var modifiers = map[string]bool{"anyof": true, "allof": true, "oneof": true}

var transformers = map[string]bool{"tolower": true, "toupper": true, "b64": true, "basename": true, "len": true}

type parser struct {
	s     string
	i     int
	depth int
}

// parseCondition parses a Falco condition into an AST.
func parseCondition(s string) (n node, err error) {
	p := &parser{s: s}
	p.skipSpace()
	if p.i >= len(p.s) {
		return nil, &SyntaxError{0, "empty condition"}
	}
	n, err = p.parseOr()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.s) {
		return nil, p.errf("unexpected %q", p.peekToken())
	}
	return n, nil
}

func (p *parser) errf(format string, a ...any) error {
	return &SyntaxError{Offset: p.i, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peekToken() string {
	j := p.i
	for j < len(p.s) && j-p.i < 20 && !isSpace(p.s[j]) {
		j++
	}
	return p.s[p.i:j]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// keyword reports whether the word kw starts at the cursor and ends at a
// word boundary.
func (p *parser) keyword(kw string) bool {
	if !strings.HasPrefix(p.s[p.i:], kw) {
		return false
	}
	j := p.i + len(kw)
	return j >= len(p.s) || !(isIdentChar(p.s[j]) || p.s[j] == '.' || p.s[j] == '-')
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errf("condition nested deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) parseOr() (node, error) {
	at := p.i
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for {
		p.skipSpace()
		if !p.keyword("or") {
			break
		}
		p.i += 2
		n, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &orNode{kids: kids, at: at}, nil
}

func (p *parser) parseAnd() (node, error) {
	at := p.i
	first, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for {
		p.skipSpace()
		if !p.keyword("and") {
			break
		}
		p.i += 3
		n, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &andNode{kids: kids, at: at}, nil
}

func (p *parser) parseNot() (node, error) {
	p.skipSpace()
	at := p.i
	if p.keyword("not") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		p.i += 3
		kid, err := p.parseNot()
		p.depth--
		if err != nil {
			return nil, err
		}
		return &notNode{kid: kid, at: at}, nil
	}
	return p.parseCheck()
}

func (p *parser) parseCheck() (node, error) {
	p.skipSpace()
	at := p.i
	if p.i >= len(p.s) {
		return nil, p.errf("unexpected end of condition")
	}
	if p.s[p.i] == '(' {
		if err := p.enter(); err != nil {
			return nil, err
		}
		p.i++
		n, err := p.parseOr()
		p.depth--
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errf("missing ')'")
		}
		p.i++
		return n, nil
	}
	if !isIdentStart(p.s[p.i]) {
		return nil, p.errf("expected a field, macro or '(' but found %q", p.peekToken())
	}
	// A word: macro name, field, or transformer call.
	word := p.scanWord()
	p.skipSpace()
	if !strings.Contains(word, ".") && !transformers[word] {
		if p.i < len(p.s) && (p.s[p.i] == '[' || p.atOperator()) {
			return nil, &SyntaxError{at, fmt.Sprintf("%q is not a field (fields have the form class.name)", word)}
		}
		return &macroRef{name: word, at: at}, nil
	}
	p.i = at
	f, err := p.parseField()
	if err != nil {
		return nil, err
	}
	return p.parseComparison(f, at)
}

// scanWord reads an identifier that may contain dots (field names).
func (p *parser) scanWord() string {
	j := p.i
	for j < len(p.s) && (isIdentChar(p.s[j]) || p.s[j] == '.' || p.s[j] == '-') {
		j++
	}
	w := p.s[p.i:j]
	p.i = j
	return w
}

func (p *parser) atOperator() bool {
	for _, op := range binaryOps {
		if strings.HasPrefix(p.s[p.i:], op) {
			return true
		}
	}
	for op := range wordOps {
		if p.keyword(op) {
			return true
		}
	}
	return p.keyword("exists")
}

// parseField parses field[arg] or transformer(field).
func (p *parser) parseField() (fieldRef, error) {
	p.skipSpace()
	at := p.i
	if p.i >= len(p.s) || !isIdentStart(p.s[p.i]) {
		return fieldRef{}, p.errf("expected a field name")
	}
	word := p.scanWord()
	if transformers[word] && p.i < len(p.s) && p.s[p.i] == '(' {
		if err := p.enter(); err != nil {
			return fieldRef{}, err
		}
		p.i++
		inner, err := p.parseField()
		p.depth--
		if err != nil {
			return fieldRef{}, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return fieldRef{}, p.errf("missing ')' after %s(", word)
		}
		p.i++
		inner.xforms = append([]string{word}, inner.xforms...)
		inner.at = at
		return inner, nil
	}
	if !strings.Contains(word, ".") || strings.HasSuffix(word, ".") {
		return fieldRef{}, &SyntaxError{at, fmt.Sprintf("%q is not a field name", word)}
	}
	f := fieldRef{name: word, at: at}
	if p.i < len(p.s) && p.s[p.i] == '[' {
		end := strings.IndexByte(p.s[p.i:], ']')
		if end < 0 {
			return fieldRef{}, p.errf("missing ']' in field argument")
		}
		f.arg = p.s[p.i+1 : p.i+end]
		f.hasArg = true
		p.i += end + 1
	}
	return f, nil
}

func (p *parser) parseComparison(f fieldRef, at int) (node, error) {
	p.skipSpace()
	c := &cmpNode{field: f, at: at}
	for m := range modifiers {
		if p.keyword(m) {
			c.modifier = m
			p.i += len(m)
			p.skipSpace()
			break
		}
	}
	if p.keyword("exists") {
		if c.modifier != "" {
			return nil, p.errf("modifier %s cannot be used with exists", c.modifier)
		}
		p.i += len("exists")
		c.op = "exists"
		return c, nil
	}
	for _, op := range binaryOps {
		if strings.HasPrefix(p.s[p.i:], op) {
			c.op = op
			if op == "==" {
				c.op = "="
			}
			p.i += len(op)
			break
		}
	}
	if c.op == "" {
		for op := range wordOps {
			if p.keyword(op) {
				c.op = op
				p.i += len(op)
				break
			}
		}
	}
	if c.op == "" {
		if p.i >= len(p.s) {
			return nil, p.errf("missing operator after %s", f.String())
		}
		return nil, p.errf("unknown operator %q after %s", p.peekToken(), f.String())
	}
	p.skipSpace()
	if p.i >= len(p.s) {
		return nil, p.errf("missing value after %s", c.op)
	}
	if p.keyword("val") && strings.HasPrefix(strings.TrimLeft(p.s[p.i+3:], " \t"), "(") {
		p.i += 3
		p.skipSpace()
		p.i++ // (
		rf, err := p.parseField()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errf("missing ')' after val(")
		}
		p.i++
		c.rhsField = &rf
		return c, nil
	}
	if p.s[p.i] == '(' {
		p.i++
		c.isList = true
		for {
			p.skipSpace()
			if p.i >= len(p.s) {
				return nil, p.errf("missing ')' closing the list")
			}
			if p.s[p.i] == ')' {
				p.i++
				break
			}
			v, err := p.parseValue(true)
			if err != nil {
				return nil, err
			}
			c.values = append(c.values, v)
			p.skipSpace()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == ')' {
				p.i++
				break
			}
			return nil, p.errf("expected ',' or ')' in list")
		}
		return c, nil
	}
	if listOps[c.op] {
		return nil, p.errf("operator %s needs a parenthesised list", c.op)
	}
	v, err := p.parseValue(false)
	if err != nil {
		return nil, err
	}
	c.values = []operand{v}
	return c, nil
}

// parseValue reads a quoted string or a bare word. Bare words end at
// whitespace, parentheses (outside brackets), commas and quotes.
func (p *parser) parseValue(inList bool) (operand, error) {
	if p.i >= len(p.s) {
		return operand{}, p.errf("missing value")
	}
	if q := p.s[p.i]; q == '"' || q == '\'' {
		s, err := p.parseQuoted(q)
		return operand{text: s, quoted: true}, err
	}
	start := p.i
	brackets := 0
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '[' {
			brackets++
		} else if c == ']' && brackets > 0 {
			brackets--
		}
		if isSpace(c) || c == '"' || c == '\'' || (brackets == 0 && (c == ')' || c == '(' || c == ',')) {
			break
		}
		p.i++
	}
	if p.i == start {
		return operand{}, p.errf("missing value")
	}
	// Inside a list an unquoted value may contain inner spaces, as a list
	// named "test list" in (test list): it runs to ',' or ')'.
	for inList && brackets == 0 {
		j := p.i
		for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
			j++
		}
		if j == p.i || j >= len(p.s) || isSpace(p.s[j]) || strings.ContainsRune(",()\"'", rune(p.s[j])) {
			break
		}
		p.i = j
		for p.i < len(p.s) {
			c := p.s[p.i]
			if isSpace(c) || c == '"' || c == '\'' || c == ')' || c == '(' || c == ',' || c == '[' {
				break
			}
			p.i++
		}
	}
	return operand{text: p.s[start:p.i]}, nil
}

func (p *parser) parseQuoted(q byte) (string, error) {
	start := p.i
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '\\' && p.i+1 < len(p.s) {
			n := p.s[p.i+1]
			if n == q || n == '\\' {
				b.WriteByte(n)
				p.i += 2
				continue
			}
		}
		if c == q {
			p.i++
			return b.String(), nil
		}
		b.WriteByte(c)
		p.i++
	}
	p.i = start
	return "", p.errf("unterminated quoted string")
}

// unquoteListItem strips one level of quotes from a list item written as
// '"(systemd)"' in YAML, as Falco inserts list items into conditions
// verbatim.
func unquoteListItem(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		p := &parser{s: s}
		if v, err := p.parseQuoted(s[0]); err == nil && p.i == len(s) {
			return v
		}
	}
	return s
}
