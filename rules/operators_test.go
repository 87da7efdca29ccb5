package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

const testLists = `
- list: bins
  items: [cat, "less", '"(systemd)"']
- list: more_bins
  items: [bins, vi]
- list: dirs
  items: [/etc, /usr/bin/]
- list: nets
  items: ['"10.0.0.0/8"', 192.168.1.1]
- list: ports
  items: [22, 443]
`

func condRuleset(t *testing.T, cond string) (*Ruleset, error) {
	t.Helper()
	doc := testLists + fmt.Sprintf("- rule: r\n  desc: d\n  condition: %s\n  output: o\n  priority: INFO\n  warn_evttypes: false\n", yamlQuote(cond))
	rs, _, err := LoadBytes("ops.yaml", []byte(doc), Options{Users: testUsers})
	return rs, err
}

func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// opEvent: cat (parent bash, grandparent sshd) reads /etc/shadow; container "web".
func opEvent() *event.Enriched {
	p := inCtr(lineage(proc("cat", "/usr/bin/cat", "cat", "-n", "/etc/shadow"), proc("bash", "/bin/bash"), proc("sshd", "/usr/sbin/sshd")), ctr())
	e := openEv(p, "/etc/shadow", oRdwr|oCloexec)
	e.Euid = 1000
	return e
}

func TestOperatorsGolden(t *testing.T) {
	cases := []struct {
		cond string
		want bool
	}{
		{"proc.name = cat", true},
		{"proc.name == cat", true},
		{"proc.name != cat", false},
		{"proc.name = Cat", false},
		{"fd.num < 4", true}, {"fd.num <= 3", true}, {"fd.num > 3", false}, {"fd.num >= 3", true},
		{"fd.name contains shad", true}, {"fd.name contains SHAD", false},
		{"fd.name icontains SHAD", true},
		{"fd.name bcontains 736861646f77", true}, {"fd.name bcontains 00", false},
		{"fd.name startswith /etc/", true}, {"fd.name bstartswith 2f657463", true}, {"fd.name bstartswith 2f757372", false},
		{"fd.name endswith adow", true}, {"fd.name endswith /etc", false},
		// glob: * crosses '/', ?, classes, iglob folds case.
		{"fd.name glob '/etc/*'", true}, {"fd.name glob '/*w'", true}, {"fd.name glob '/etc/sha?ow'", true},
		{"fd.name glob '/etc/[rs]hadow'", true}, {"fd.name glob '/etc/[!s]hadow'", false},
		{"fd.name glob '/ETC/*'", false}, {"fd.name iglob '/ETC/*'", true},
		// regex is RE2 and must match the whole value.
		{"fd.name regex '/etc/s.*w'", true}, {"fd.name regex 'shadow'", false}, {"fd.name regex '.*shadow'", true},
		{"proc.name exists", true}, {"fd.sip exists", false}, {"evt.arg.request exists", false},
		{"not fd.sip exists", true},
		// in with lists, nested lists and quoted list items.
		{"proc.name in (bins)", true}, {"proc.name in (more_bins)", true}, {"proc.name in (vi, less)", false},
		{"proc.name in ()", false}, {"proc.pname in (bins, bash)", true},
		{"proc.name intersects (cat, dog)", true},
		// pmatch: path prefixes on component boundaries.
		{"fd.name pmatch (dirs)", true}, {"fd.name pmatch (/et)", false}, {"fd.directory pmatch (/etc)", true},
		// multi-valued proc.aname and modifiers.
		{"proc.aname = sshd", true}, {"proc.aname = cat", false}, {"proc.aname[0] = cat", true},
		{"proc.aname[2] = sshd", true}, {"proc.aname[3] exists", false},
		{"proc.aname != sshd", false}, {"proc.aname != nginx", true},
		{"proc.aname anyof startswith ss", true},
		{"proc.aname allof endswith sh", false}, {"proc.aname allof contains s", true},
		{"proc.aname oneof endswith sh", true}, {"proc.aname oneof contains s", false},
		// transformers.
		{"toupper(proc.name) = CAT", true}, {"tolower(toupper(proc.name)) = cat", true},
		{"basename(fd.name) = shadow", true}, {"len(fd.name) = 11", true}, {"len(proc.name) > 5", false},
		{"b64(fd.name) exists", false}, {"b64(proc.pname) exists", true},
		// val() on the right-hand side.
		{"proc.name = val(proc.pname)", false}, {"fd.filename = val(fd.filename)", true},
		{"proc.duration > val(fd.num)", true},
		// booleans, numbers, IPs, precedence.
		{"evt.is_open_read = true and evt.is_open_write = true", true},
		{"evt.arg.flags contains O_CLOEXEC", true}, {"evt.arg.flags contains O_TRUNC", false},
		{"proc.name = cat or proc.name = dog and proc.pname = dog", true},
		{"(proc.name = cat or proc.name = dog) and proc.pname = dog", false},
		{"not proc.name = dog and proc.name = cat", true},
		{"not (proc.name = cat)", false},
		{"container.id != host and k8s.ns.name = shop", true},
		{"user.name = alice and user.uid = 1000", true},
		{"evt.res = SUCCESS and evt.rawres = 3", true},
		{"evt.type in (open, openat) and evt.dir = <", true},
		{"evt.type != openat", false},
		{"fd.name_truncated = false", true}, {"fd.name_truncated = true", false},
		{"proc.args_truncated = false", true},
	}
	for _, tc := range cases {
		t.Run(tc.cond, func(t *testing.T) {
			rs, err := condRuleset(t, tc.cond)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if got := len(rs.Match(opEvent())) == 1; got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNetworkOperators(t *testing.T) {
	e := connectEv(proc("curl", "/usr/bin/curl"), "192.168.1.1", 443)
	cases := []struct {
		cond string
		want bool
	}{
		{"fd.sip = 192.168.1.1", true}, {"fd.sip in (nets)", true}, {"fd.snet in (nets)", true},
		{"fd.cip in (nets)", true}, {"fd.net = 10.0.0.0/8", true}, {"fd.ip = 10.1.2.3", true},
		{"fd.ip != 0.0.0.0", true}, {"fd.sport in (ports)", true}, {"fd.lport = 40000", true}, {"fd.rport = 443", true},
		{"fd.port = 40000", true}, {"fd.l4proto = tcp", true}, {"fd.typechar = 4", true}, {"fd.type = ipv4", true},
		{"fd.name = 10.1.2.3:40000->192.168.1.1:443", true}, {"fd.connected = true", true},
		{"fd.sip = 192.168.1.2", false}, {"fd.snet = 172.16.0.0/12", false},
	}
	for _, tc := range cases {
		t.Run(tc.cond, func(t *testing.T) {
			rs, err := condRuleset(t, tc.cond)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if got := len(rs.Match(e)) == 1; got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConditionErrors(t *testing.T) {
	cases := []struct{ cond, want string }{
		{"proc.nme = cat", `unknown field "proc.nme"`},
		{"proc.name = ", "missing value"},
		{"proc.name in cat", "parenthesised list"},
		{"proc.name foo cat", "unknown operator"},
		{"(proc.name = cat", "missing ')'"},
		{"undefined_macro", `undefined macro "undefined_macro"`},
		{"fd.num = abc", "not a number"},
		{"fd.name regex '('", "bad regular expression"},
		{"proc.name anyof = cat", "multi-valued"},
		{"evt.is_open_read contains x", "not valid for a bool"},
		{"proc.name = cat and", "unexpected end"},
		{strings.Repeat("(", 100) + "proc.name = cat" + strings.Repeat(")", 100), "nested deeper"},
		{strings.Repeat("not ", 100) + "proc.name = cat", "nested deeper"},
	}
	for _, tc := range cases {
		_, err := condRuleset(t, tc.cond)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.cond, err, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "ops.yaml:") || !strings.Contains(err.Error(), `rule "r"`) {
			t.Errorf("%q: error %q lacks file:line:col and rule name", tc.cond, err)
		}
	}
}

func TestEvtTypeIndex(t *testing.T) {
	cases := []struct {
		cond string
		want []string // nil: all types
	}{
		{"evt.type = openat", []string{"openat"}},
		{"evt.type in (open, openat) and proc.name = cat", []string{"open", "openat"}},
		{"evt.type = open or evt.type = connect", []string{"open", "connect"}},
		{"proc.name = cat", nil},
		{"evt.type = open or proc.name = cat", nil},
		{"not evt.type = open", []string{"-open"}},
		{"not (evt.type != open)", []string{"open"}},
		{"not (evt.type = open or proc.name = cat)", []string{"-open"}},
		{"not (not evt.type in (execve, connect))", []string{"execve", "connect"}},
	}
	for _, tc := range cases {
		rs, err := condRuleset(t, tc.cond)
		if err != nil {
			t.Fatal(err)
		}
		got := rs.Rules()[0].EventTypes
		if tc.want == nil {
			if got != nil {
				t.Errorf("%q: types %v, want all", tc.cond, got)
			}
			continue
		}
		if strings.HasPrefix(tc.want[0], "-") {
			for _, g := range got {
				if g == tc.want[0][1:] {
					t.Errorf("%q: types include %s", tc.cond, g)
				}
			}
			if len(got) < 300 {
				t.Errorf("%q: %d types, want all but one", tc.cond, len(got))
			}
			continue
		}
		if !sameSet(got, tc.want) {
			t.Errorf("%q: types %v, want %v", tc.cond, got, tc.want)
		}
	}
}
