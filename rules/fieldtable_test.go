package rules

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

// collectFields adds the field names n refers to.
func collectFields(n node, out map[string]bool) {
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			collectFields(k, out)
		}
	case *orNode:
		for _, k := range n.kids {
			collectFields(k, out)
		}
	case *notNode:
		collectFields(n.kid, out)
	case *cmpNode:
		out[fieldKey(n.field)] = true
		if n.rhsField != nil {
			out[fieldKey(*n.rhsField)] = true
		}
	}
}

// fieldKey names a field as the docs table does: evt.arg.NAME and
// field[arg] families by their name.
func fieldKey(f fieldRef) string { return f.name }

var outputFieldRE = regexp.MustCompile(`%([a-z][a-z0-9_]*\.[a-z0-9_.]*[a-z0-9_])`)

// falcoFieldsUsed lists every field the three Falco rule files use in
// conditions (macros, rules, exceptions) and outputs.
func falcoFieldsUsed(t *testing.T) []string {
	dir := filepath.Join(testutil.SharedDir(t), "compat")
	st := newLoadState(Options{Users: testUsers})
	for _, f := range []string{"falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		st.loadSource(source{name: f, data: data})
	}
	used := map[string]bool{}
	add := func(conds []condText) {
		text, _ := joinConds(conds)
		ast, err := parseCondition(text)
		if err != nil {
			t.Fatalf("parse %q: %v", text, err)
		}
		collectFields(ast, used)
	}
	for _, m := range st.macros {
		add(m.conds)
	}
	for _, r := range st.rules {
		add(r.conds)
		for _, x := range r.exceptions {
			for _, f := range x.fields {
				p := &parser{s: f}
				if fr, err := p.parseField(); err == nil {
					used[fr.name] = true
				}
			}
		}
		for _, m := range outputFieldRE.FindAllStringSubmatch(strings.ReplaceAll(r.output, "%container.info", containerInfoFormat), -1) {
			used[m[1]] = true
		}
	}
	var out []string
	for f := range used {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// docs/rules.md's field table names every field the three Falco files use
// with its status, and the status matches the engine: supported and
// approximated fields resolve, skipped ones are unavailableFields.
func TestDocsFieldTable(t *testing.T) {
	fields := falcoFieldsUsed(t)
	doc, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "rules.md"))
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| (supported|approximated|skipped) \\|")
	status := map[string]string{}
	for _, m := range rowRE.FindAllStringSubmatch(string(doc), -1) {
		status[m[1]] = m[2]
	}
	cp := &compiler{xslots: new(int)}
	for _, f := range fields {
		st, ok := status[f]
		if !ok {
			t.Errorf("docs/rules.md field table lacks `%s`", f)
			continue
		}
		fr := fieldRef{name: f}
		if def, ok := fieldTable[f]; ok && def.argMode == 2 {
			fr.arg, fr.hasArg = "1", true
		}
		_, rerr := cp.resolveField(&fr)
		switch st {
		case "supported", "approximated":
			if rerr != nil {
				t.Errorf("`%s` is documented %s but does not resolve: %v", f, st, rerr)
			}
		case "skipped":
			if _, un := unavailableFields[f]; !un {
				t.Errorf("`%s` is documented skipped but is not an unavailable field (err %v)", f, rerr)
			}
		}
	}
	if len(fields) < 80 {
		t.Errorf("only %d fields collected from the three files", len(fields))
	}
}
