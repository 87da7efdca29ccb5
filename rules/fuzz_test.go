package rules

import (
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// FuzzParseCondition: the parser and compiler never panic, and nesting is bounded.
func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{
		"proc.name = cat", "evt.type in (open, openat) and not fd.name startswith /etc",
		"(proc.aname[2] = sshd or proc.aname anyof glob 's*')", "fd.name = val(proc.exe)",
		"tolower(basename(fd.name)) in (a, 'b c', \"d\")", "len(proc.args) > 3 and fd.sip in (10.0.0.0/8)",
		"not not not x", "proc.name pmatch (/usr)", "fd.name regex '[a-z]+'", "((((", "\"unterminated",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		ast, err := parseCondition(s)
		if err != nil {
			return
		}
		cp := &compiler{lists: map[string][]string{"l": {"a"}}, macros: map[string]*macroDef{
			"m": {name: "m", index: 0, ast: &cmpNode{field: fieldRef{name: "proc.name"}, op: "=", values: []operand{{text: "x"}}}},
		}, xslots: new(int)}
		fn, err := cp.compile(ast, noLimit, 0)
		if err != nil {
			return
		}
		cp.evtTypes(ast, false, noLimit, 0)
		c := &evalCtx{rs: &Ruleset{opts: Options{Users: testUsers}}, xbufs: make([][]byte, *cp.xslots)}
		c.reset(opEvent())
		fn(c)
	})
}

// FuzzLoadYAML: the loader never panics on arbitrary documents.
func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte(baseRule))
	f.Add([]byte(testLists))
	f.Add([]byte("- rule: R\n  condition: evt.type=open\n  override:\n    condition: append\n"))
	f.Add([]byte("- rule: R\n  desc: d\n  condition: evt.type=openat\n  output: '%proc.name %<3>fd.name'\n  priority: info\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[a]]\n"))
	f.Add([]byte("- list: a\n  items: [b]\n- list: b\n  items: [a]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 || strings.Count(string(data), "&") > 8 {
			return // bound YAML alias expansion work
		}
		rs, _, err := LoadBytes("fuzz.yaml", data, Options{Users: testUsers})
		if err == nil && rs != nil {
			rs.Eval(opEvent(), func(*event.Alert) {})
		}
	})
}
