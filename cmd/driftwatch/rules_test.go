package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

func runRules(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRulesCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestRulesCheckStableSet(t *testing.T) {
	path := filepath.Join(testutil.SharedDir(t), "compat", "falco_rules.yaml")
	out, _, err := runRules(t, "check", path)
	if err != nil {
		t.Fatalf("rules check: %v", err)
	}
	if !strings.Contains(out, "25 rules (25 enabled), 87 macros, 49 lists") {
		t.Errorf("output %q", out)
	}
}

func TestRulesCheckErrorExitsOne(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("- rule: X\n  desc: d\n  condition: evt.type=openat and proc.nam = x\n  output: o\n  priority: info\n"), 0o644)
	_, errOut, err := runRules(t, "check", f)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err %v, want exit code 1", err)
	}
	if !strings.Contains(errOut, "bad.yaml:3:34: rule \"X\": condition: unknown field \"proc.nam\"") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestRulesListDefaults(t *testing.T) {
	out, _, err := runRules(t, "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Credential file read") || !strings.Contains(out, "Reverse shell") {
		t.Errorf("list output %q", out)
	}
}
