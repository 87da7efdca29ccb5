package rules

import (
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

const baseRule = `
- list: readers
  items: [cat]
- macro: is_open
  condition: evt.type = openat
- rule: Read
  desc: d
  condition: is_open and proc.name in (readers)
  output: "read %fd.name by %proc.name"
  priority: warning
  tags: [b, a]
`

func catOpen(path string) *event.Enriched {
	return openEv(lineage(proc("cat", "/usr/bin/cat"), proc("bash", "/bin/bash")), path, 0)
}

func TestExceptionsAndOverrides(t *testing.T) {
	cases := []struct {
		name  string
		extra string
		path  string
		comm  string
		want  bool
	}{
		{"base fires", "", "/etc/x", "cat", true},
		{"list append (deprecated)", "- list: readers\n  items: [less]\n  append: true\n", "/etc/x", "less", true},
		{"list override replace", "- list: readers\n  items: [less]\n  override:\n    items: replace\n", "/etc/x", "cat", false},
		{"macro override append", "- macro: is_open\n  condition: and fd.name startswith /tmp\n  override:\n    condition: append\n", "/etc/x", "cat", false},
		{"rule condition append", "- rule: Read\n  condition: and fd.name != /etc/x\n  override:\n    condition: append\n", "/etc/x", "cat", false},
		{"rule append: true", "- rule: Read\n  condition: and fd.name != /etc/x\n  append: true\n", "/etc/x", "cat", false},
		{"rule disabled (legacy)", "- rule: Read\n  enabled: false\n", "/etc/x", "cat", false},
		{"rule disabled (override)", "- rule: Read\n  enabled: false\n  override:\n    enabled: replace\n", "/etc/x", "cat", false},
		{"exception tuple", `- rule: Read
  exceptions:
    - name: known
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [cat, /etc/]
  override:
    exceptions: append
`, "/etc/x", "cat", false},
		{"exception tuple no match", `- rule: Read
  exceptions:
    - name: known
      fields: [proc.name, fd.name]
      values:
        - [cat, /etc/y]
  override:
    exceptions: append
`, "/etc/x", "cat", true},
		{"single-field exception", `- rule: Read
  exceptions:
    - name: files
      fields: fd.name
      values: [/etc/a, /etc/x]
  override:
    exceptions: append
`, "/etc/x", "cat", false},
		{"exception with in and list value", `- rule: Read
  exceptions:
    - name: procs
      fields: [proc.name]
      comps: [in]
      values:
        - [[dog, cat]]
  override:
    exceptions: append
`, "/etc/x", "cat", false},
		{"exception naming a list", `- rule: Read
  exceptions:
    - name: procs
      fields: [proc.name]
      comps: [in]
      values:
        - [readers]
  override:
    exceptions: append
`, "/etc/x", "cat", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustLoad(t, baseRule+tc.extra)
			e := catOpen(tc.path)
			e.Proc.Comm = tc.comm
			if got := len(rs.Match(e)) == 1; got != tc.want {
				t.Errorf("fired=%v, want %v", got, tc.want)
			}
		})
	}
}

func TestRuleOverrideReplaceAndAppendKeys(t *testing.T) {
	rs := mustLoad(t, baseRule+`
- rule: Read
  priority: CRITICAL
  output: "replaced %proc.name"
  tags: [c]
  override:
    priority: replace
    output: replace
    tags: append
`)
	var a *event.Alert
	rs.Eval(catOpen("/etc/x"), func(x *event.Alert) { a = x })
	if a == nil || a.Priority != event.PriorityCritical || a.Output != "replaced cat" || strings.Join(a.Tags, ",") != "a,b,c" {
		t.Fatalf("alert %+v", a)
	}
}

func TestVisibility(t *testing.T) {
	// A list sees only earlier lists: "later" is a literal here.
	rs := mustLoad(t, `
- list: early
  items: [later]
- list: later
  items: [cat]
- rule: R
  desc: d
  condition: evt.type = openat and proc.name in (early)
  output: o
  priority: info
`)
	if len(rs.Match(catOpen("/x"))) != 0 {
		t.Error("list expanded a later list")
	}
	_, _, err := LoadBytes("v.yaml", []byte(`
- macro: a
  condition: b
- macro: b
  condition: proc.name = cat
- rule: R
  desc: d
  condition: evt.type = openat and a
  output: o
  priority: info
`), Options{Users: testUsers})
	if err == nil || !strings.Contains(err.Error(), `macro "b" is used before it is defined`) {
		t.Errorf("macro using a later macro: %v", err)
	}
}

func TestLoaderDiagnostics(t *testing.T) {
	cases := []struct {
		doc     string
		errWant string // "" = load succeeds
		warn    string
	}{
		{"- rule: R\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: loud\n", `v.yaml:5:13: rule "R": priority: unknown priority "loud"`, ""},
		{"- rule: R\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: info\n  colour: red\n", "", `unknown key "colour"`},
		{"- rule: R\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: info\n  source: k8s_audit\n", "", `source "k8s_audit" is not supported`},
		{"- rule: R\n  desc: d\n  condition: evt.type = openat and foo.bar = 1\n  output: o\n  priority: info\n", `v.yaml:3:36: rule "R": condition: unknown field "foo.bar"`, ""},
		{"- rule: R\n  desc: d\n  condition: evt.type = openat and foo.bar = 1\n  output: o\n  priority: info\n  skip-if-unknown-filter: true\n", "", `skipped: unknown field "foo.bar"`},
		{"- rule: R\n  desc: d\n  condition: evt.type = openat\n  output: '%foo.bar'\n  priority: info\n", `rule "R": output: unknown field "foo.bar"`, ""},
		{"- rule: R\n  desc: d\n  condition: proc.name = cat\n  output: o\n  priority: info\n", "", "does not restrict evt.type"},
		{"- rule: R\n  condition: evt.type = openat\n  override:\n    condition: append\n", `append/override of a rule that is not defined`, ""},
		{"- rule: R\n  desc: d\n  condition: evt.type = openat\n  output: o\n", `missing key priority`, ""},
		{"- list: l\n  items: x\n", `v.yaml:2:10: list "l": items: must be a sequence`, ""},
		{"- rule: [\n", "invalid YAML", ""},
		{"rule: R\n", "must be a YAML sequence", ""},
	}
	for _, tc := range cases {
		_, rep, err := LoadBytes("v.yaml", []byte(tc.doc), Options{Users: testUsers})
		if tc.errWant != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("%q: error %v, want %q", tc.doc, err, tc.errWant)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: unexpected error %v", tc.doc, err)
			continue
		}
		found := false
		for _, w := range rep.Warnings {
			found = found || strings.Contains(w.Error(), tc.warn)
		}
		if !found {
			t.Errorf("%q: no warning containing %q in %v", tc.doc, tc.warn, rep.Warnings)
		}
	}
}

func TestPrioritiesAndRuleMatching(t *testing.T) {
	for _, p := range []string{"EMERGENCY", "alert", "Critical", "error", "warning", "notice", "informational", "info", "DEBUG"} {
		if _, _, err := LoadBytes("p.yaml", []byte("- rule: R\n  desc: d\n  condition: evt.type=openat\n  output: o\n  priority: "+p+"\n"), Options{Users: testUsers}); err != nil {
			t.Errorf("priority %s: %v", p, err)
		}
	}
	doc := "- rule: A\n  desc: d\n  condition: evt.type=openat\n  output: a\n  priority: info\n- rule: B\n  desc: d\n  condition: evt.type=openat\n  output: b\n  priority: info\n"
	for mode, want := range map[string]int{"all": 2, "first": 1} {
		rs, _, err := LoadBytes("m.yaml", []byte(doc), Options{RuleMatching: mode, Users: testUsers})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(rs.Match(catOpen("/x"))); got != want {
			t.Errorf("rule_matching %s: %d alerts, want %d", mode, got, want)
		}
	}
}

func TestOutputFormatting(t *testing.T) {
	rs := mustLoad(t, `
- rule: R
  desc: d
  condition: evt.type = openat
  output: "a=%proc.aname[1] up=%toupper(proc.name) pad=[%6proc.name] pad2=[%<5>proc.name] na=%fd.sip pct=100% end=%fd.name."
  priority: info
`)
	e := catOpen("/tmp/evil\x1b[31m\nx")
	var a *event.Alert
	rs.Eval(e, func(x *event.Alert) { a = x })
	// The alert carries the raw bytes; the text line escapes them.
	want := "a=bash up=CAT pad=[cat   ] pad2=[cat  ] na=<NA> pct=100% end=/tmp/evil\x1b[31m\nx."
	if a.Output != want {
		t.Errorf("output\n got %q\nwant %q", a.Output, want)
	}
	if a.OutputFields["fd.sip"] != nil || a.OutputFields["toupper(proc.name)"] != "CAT" || a.OutputFields["fd.name"] != "/tmp/evil\x1b[31m\nx" {
		t.Errorf("fields %v", a.OutputFields)
	}
	if txt := event.AlertText(a); !strings.HasSuffix(txt, ` end=/tmp/evil\x1b[31m\nx.`) {
		t.Errorf("text line %q: control characters not escaped", txt)
	}
	if a.Source != "syscall" || a.Hostname != "node-1" || a.EventNum != 42 || a.ContainerID != "host" {
		t.Errorf("alert context %+v", a)
	}
}
