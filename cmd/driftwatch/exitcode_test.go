package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes checks the one exit-code convention across subcommands:
// 0 ok, 1 findings or bad input data, 2 usage or environment.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	tr := lpWriteTrace(t, dir, "a.dwt", lpAPI())
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage.dwt", "not a trace at all\n")
	empty := write("empty.yaml", "")
	onlyList := write("list.yaml", "- list: shells\n  items: [sh, bash]\n")
	badRules := write("bad.yaml", "- rule: r\n  desc: d\n  condition: evt.type = (\n  output: o\n  priority: WARNING\n")
	absent := filepath.Join(dir, "absent.dwt")
	noDB := filepath.Join(dir, "none.db")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"unknown flag", []string{"replay", "--bogus", tr}, 2, "unknown flag"},
		{"replay arg count", []string{"replay", tr, tr}, 2, "arg"},
		{"replay bad format flag", []string{"replay", "--format", "xml", tr}, 2, "--format"},
		{"replay missing file", []string{"replay", absent}, 1, "absent.dwt"},
		{"replay not a trace", []string{"replay", garbage}, 1, "garbage.dwt"},
		{"replay ok", []string{"replay", tr}, 0, ""},
		{"detect missing file", []string{"detect", absent}, 1, "absent.dwt"},
		{"detect not a trace", []string{"detect", garbage}, 1, "garbage.dwt"},
		{"detect bad rules", []string{"detect", "--rules", badRules, tr}, 1, "bad.yaml"},
		{"detect missing store", []string{"detect", "--db", noDB, tr}, 1, "none.db"},
		{"detect bad format flag", []string{"detect", "--format", "xml", tr}, 2, "--format"},
		{"detect no args", []string{"detect"}, 2, "arg"},
		{"detect ok", []string{"detect", tr}, 0, ""},
		{"learn missing file", []string{"learn", "--db", noDB, absent}, 1, "absent.dwt"},
		{"learn no db", []string{"learn", tr}, 2, "--db"},
		{"rules check empty file", []string{"rules", "check", empty}, 1, "no rules"},
		{"rules check lists only", []string{"rules", "check", onlyList}, 1, "no rules"},
		{"rules check errors", []string{"rules", "check", badRules}, 1, "error"},
		{"rules check no args", []string{"rules", "check"}, 2, "arg"},
		{"profile list missing store", []string{"profile", "list", "--db", noDB}, 1, "none.db"},
		{"profile list no db", []string{"profile", "list"}, 2, "--db"},
		{"eval no dataset", []string{"eval"}, 2, "--dataset"},
		{"eval unknown detector", []string{"eval", "--dataset", t.TempDir(), "--detector", "magic"}, 2, "unknown detector"},
		{"eval not a dataset", []string{"eval", "--dataset", t.TempDir(), "--report", filepath.Join(dir, "rep")}, 1, "not a dataset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := lpRun(t, tc.args...)
			if code := exitCode(err); code != tc.code {
				t.Fatalf("driftwatch %s: exit %d (%v), want %d", strings.Join(tc.args, " "), code, err, tc.code)
			}
			if tc.code != 0 && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			// No command above may create a store it was only pointed at.
			if _, err := os.Stat(noDB); err == nil {
				t.Fatalf("driftwatch %s created %s", strings.Join(tc.args, " "), noDB)
			}
		})
	}
}

// TestReadOnlyCommandsLeaveCorruptStore: list, show, diff, export and
// detect on a corrupt store fail (exit 1) and leave the file where and as it
// was, with nothing created beside it.
func TestReadOnlyCommandsLeaveCorruptStore(t *testing.T) {
	dir := t.TempDir()
	tr := lpWriteTrace(t, dir, "a.dwt", lpAPI())
	db := filepath.Join(dir, "p.db")
	junk := bytes.Repeat([]byte("not bbolt "), 1000)
	if err := os.WriteFile(db, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"profile", "list", "--db", db},
		{"profile", "show", "--db", db, "x"},
		{"profile", "diff", "--db", db, "x", "y"},
		{"profile", "export", "--db", db},
		{"detect", "--db", db, tr},
	} {
		_, _, err := lpRun(t, args...)
		if code := exitCode(err); code != 1 || !strings.Contains(err.Error(), "left unchanged") {
			t.Errorf("driftwatch %s: exit %d (%v), want 1 saying the store was left unchanged", strings.Join(args, " "), code, err)
		}
		got, err := os.ReadFile(db)
		if err != nil || !bytes.Equal(got, junk) {
			t.Fatalf("driftwatch %s changed or moved the store (%v)", strings.Join(args, " "), err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 2 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("driftwatch %s left files %v", strings.Join(args, " "), names)
		}
	}
	// A writing command sets it aside and starts afresh, as before.
	if _, _, err := lpRun(t, "learn", "--db", db, tr); err != nil {
		t.Fatalf("learn over a corrupt store: %v", err)
	}
	if m, _ := filepath.Glob(db + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("learn did not set the corrupt store aside: %v", m)
	}
}
