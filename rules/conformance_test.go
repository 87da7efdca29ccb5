package rules

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// TestFalcoEngineCases loads each of Falco's rules-engine test cases
// (../shared/compat/falco-engine-cases, one YAML per case) and checks that
// driftwatch accepts or rejects it as Falco's own test expects
// (expected.tsv: ok = loads, fail = rejected).
func TestFalcoEngineCases(t *testing.T) {
	dir := filepath.Join(testutil.SharedDir(t), "compat", "falco-engine-cases")
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Skipf("Falco engine cases absent (%v): they live beside the clone in shared/compat", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 {
			t.Fatalf("expected.tsv: bad line %q", line)
		}
		file, want := cols[0], cols[1]
		n++
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			_, rep, err := LoadBytes(file, data, Options{Users: testUsers})
			switch want {
			case "ok":
				if err != nil {
					t.Errorf("Falco loads this file; driftwatch rejects it:\n%v\n--- file:\n%s", err, data)
				}
			case "fail":
				if err == nil {
					t.Errorf("Falco rejects this file; driftwatch loads it (warnings: %v)\n--- file:\n%s", rep.Warnings, data)
				}
			default:
				t.Fatalf("expected.tsv: outcome %q", want)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 108 {
		t.Errorf("read %d cases from expected.tsv, want 108", n)
	}
}

// Exception comps with a modifier ("startswith oneof") match when the
// operator holds for any (oneof, anyof) or every (allof) value.
func TestExceptionCompModifiers(t *testing.T) {
	rs := mustLoad(t, `
- list: agents
  items: [zabbix, datadog]
- rule: R
  desc: d
  condition: evt.type = execve
  output: "%proc.name %proc.cmdline"
  priority: INFO
  exceptions:
    - name: prefix
      fields: [proc.name]
      comps: ["  startswith   oneof "]
      values:
        - [[ssh, su]]
    - name: all
      fields: [proc.cmdline]
      comps: [contains allof]
      values:
        - [[curl, ci.internal]]
    - name: listed
      fields: [proc.name, proc.cmdline]
      comps: [startswith anyof, contains]
      values:
        - [agents, --check]
    - name: scalar
      fields: proc.name
      comps: endswith oneof
      values: [[.sh, .py], -probe]
`)
	cases := []struct {
		comm string
		args []string
		fire bool
	}{
		{"sshd", nil, false}, // startswith ssh
		{"sudo", nil, false}, // startswith su
		{"bash", nil, true},  // no prefix
		{"curl", []string{"https://ci.internal/x"}, false}, // both substrings
		{"curl", []string{"https://example.org"}, true},    // only one
		{"zabbix_agentd", []string{"--check"}, false},      // list name expanded
		{"zabbix_agentd", []string{"--run"}, true},
		{"run.sh", nil, false},
		{"lb-probe", nil, false},
		{"run.rb", nil, true},
	}
	for _, tc := range cases {
		args := append([]string{tc.comm}, tc.args...)
		got := len(rs.Match(execEv(proc(tc.comm, "/usr/bin/"+tc.comm, args...)))) > 0
		if got != tc.fire {
			t.Errorf("%s %v: fired %v, want %v", tc.comm, tc.args, got, tc.fire)
		}
	}
	for _, bad := range []string{"in oneof", ">= oneof", "oneof", "frobulate oneof", "startswith someof"} {
		doc := "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: INFO\n  exceptions:\n    - name: x\n      fields: [proc.name]\n      comps: [\"" + bad + "\"]\n      values:\n        - [[a]]\n"
		if _, _, err := LoadBytes("x.yaml", []byte(doc), Options{Users: testUsers}); err == nil || !strings.Contains(err.Error(), "x.yaml:7:") {
			t.Errorf("comp %q: error %v, want one at x.yaml:7", bad, err)
		}
	}
}

// Errors inside multi-line conditions point at the offending token.
func TestConditionErrorPositions(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"- rule: R\n  desc: d\n  condition: >\n    evt.type = open and\n      proc.name = cat and foo.bar = 1\n  output: o\n  priority: INFO\n", "p.yaml:5:27:"},
		{"- rule: R\n  desc: d\n  condition: |\n    evt.type = open\n    and proc.nme = cat\n  output: o\n  priority: INFO\n", "p.yaml:5:9:"},
		{"- rule: R\n  desc: d\n  condition: evt.type = open and\n    proc.name = cat and\n    proc.pname bogus x\n  output: o\n  priority: INFO\n", "p.yaml:5:16:"},
		{"- macro: m\n  condition: >-\n    proc.name = cat and\n    (proc.pname = x\n- rule: R\n  desc: d\n  condition: evt.type = open and m\n  output: o\n  priority: INFO\n", "p.yaml:4:20:"},
		{"- rule: R\n  desc: d\n  condition: \"evt.type = open and bad.field = 1\"\n  output: o\n  priority: INFO\n", "p.yaml:3:35:"},
	}
	for _, tc := range cases {
		_, _, err := LoadBytes("p.yaml", []byte(tc.doc), Options{Users: testUsers})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n error %v\n want prefix %s", tc.doc, err, tc.want)
		}
	}
}

// Loader behaviours Falco's engine tests pin down, checked by effect.
func TestFalcoLoaderSemantics(t *testing.T) {
	// override: replace of a list/macro defined later defines it; the later
	// definition then replaces it.
	rs := mustLoad(t, "- list: l\n  items: [cat]\n  override:\n    items: replace\n- list: l\n  items: [dog]\n- rule: R\n  desc: d\n  condition: evt.type = execve and proc.name in (l)\n  output: o\n  priority: INFO\n")
	if len(rs.Match(execEv(proc("dog", "/bin/dog")))) != 1 || len(rs.Match(execEv(proc("cat", "/bin/cat")))) != 0 {
		t.Error("list override replace before definition: later definition should win")
	}
	// A list name with a space can be referred to in a list.
	_, rep, err := LoadBytes("s.yaml", []byte("- list: my list\n  items: [cat]\n- rule: R\n  desc: d\n  condition: evt.type = execve and proc.name in (my list, dog)\n  output: o\n  priority: INFO\n"), Options{Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0].Error(), "not an identifier") {
		t.Errorf("want a warning about the list name, got %v", rep.Warnings)
	}
	// %container.info expands to the container id and name.
	rs = mustLoad(t, "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: x (%container.info)\n  priority: INFO\n")
	var out string
	rs.Eval(execEv(inCtr(proc("cat", "/bin/cat"), ctr())), func(a *event.Alert) { out = a.Output })
	if !strings.Contains(out, "container_id="+ctr().ID+" container_name="+ctr().Name) {
		t.Errorf("output %q lacks the container info", out)
	}
	for _, tc := range []struct{ doc, want string }{
		{"- required_engine_version: seven\n", "unable to parse engine version"},
		{"- rule: R\n  desc: d\n  condition: evt.type = close\n  output: o\n  priority: INFO\n  capture_duration: soon\n", "capture_duration"},
		{"- rule: R\n  desc: d\n  condition: ka.verb = GET\n  output: o\n  priority: INFO\n  source: k8s_audit\n- rule: R\n  condition: and evt.type = close\n  source: syscall\n  append: true\n", "source"},
	} {
		if _, _, err := LoadBytes("e.yaml", []byte(tc.doc), Options{Users: testUsers}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tc.doc, err, tc.want)
		}
	}
}

// Alert JSON carries raw bytes with JSON escaping only (Falco's shape):
// an argument ^syscall\.X$ stays one backslash; invalid UTF-8 becomes
// U+FFFD; text output escapes control characters and invalid bytes.
func TestAlertJSONRawBytes(t *testing.T) {
	rs := mustLoad(t, "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: cmd=%proc.cmdline\n  priority: INFO\n")
	cases := []struct {
		args     []string
		jsonWant string // the "output" value as it appears in the JSON bytes
		textWant string
	}{
		{[]string{"grep", `^syscall\.X$`}, `"cmd=grep ^syscall\\.X$"`, `cmd=grep ^syscall\.X$`},
		{[]string{"echo", "a\tb\x1b[0m"}, `"cmd=echo a\tb\u001b[0m"`, `cmd=echo a\tb\x1b[0m`},
		{[]string{"cat", "caf\xe9"}, `"cmd=cat caf\ufffd"`, `cmd=cat caf\xe9`},
		// Each invalid byte becomes one U+FFFD; the valid bytes after it stay.
		{[]string{"cat", "a\x80z"}, `"cmd=cat a\ufffdz"`, `cmd=cat a\x80z`},
		{[]string{"echo", `"quoted" <b>`}, `"cmd=echo \"quoted\" <b>"`, `cmd=echo "quoted" <b>`},
	}
	for _, tc := range cases {
		var a *event.Alert
		rs.Eval(execEv(proc(tc.args[0], "/bin/"+tc.args[0], tc.args...)), func(x *event.Alert) { a = x })
		b, err := event.AppendAlertJSON(nil, a)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"output":`+tc.jsonWant) {
			t.Errorf("%q: JSON %s lacks output %s", tc.args, b, tc.jsonWant)
		}
		if !strings.Contains(string(b), `"proc.cmdline":`+strings.Replace(tc.jsonWant, "cmd=", "", 1)) {
			t.Errorf("%q: JSON %s lacks the raw proc.cmdline", tc.args, b)
		}
		if txt := event.AlertText(a); !strings.HasSuffix(txt, " "+tc.textWant) {
			t.Errorf("%q: text %q, want suffix %q", tc.args, txt, tc.textWant)
		}
	}
}
