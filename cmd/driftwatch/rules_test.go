package main

import (
	"bytes"
	"encoding/json"
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

// The three Falco rule files load together (exit 0) and every rule they
// enable runs (container.mount.dest comes from the CRI's mounts): no
// skipped list, in text or in --format json.
func TestRulesCheckThreeFalcoFiles(t *testing.T) {
	dir := filepath.Join(testutil.SharedDir(t), "compat")
	args := []string{"check", "-q", filepath.Join(dir, "falco_rules.yaml"), filepath.Join(dir, "falco-incubating_rules.yaml"), filepath.Join(dir, "falco-sandbox_rules.yaml")}
	out, errOut, err := runRules(t, args...)
	if err != nil {
		t.Fatalf("rules check: %v\n%s", err, errOut)
	}
	if strings.Contains(out, "skipped rules") || strings.Contains(out, "Launch Sensitive Mount Container") {
		t.Errorf("rules skipped:\n%s", out)
	}
	out, _, err = runRules(t, append([]string{"check", "--format", "json"}, args[2:]...)...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OK      bool `json:"ok"`
		Files   []struct{ Rules, Enabled, Skipped int }
		Skipped []struct{ Rule, Field, Reason string }
		Errors  []any
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if !doc.OK || len(doc.Files) != 3 || len(doc.Skipped) != 0 || len(doc.Errors) != 0 || doc.Files[1].Rules != 31 {
		t.Errorf("json %+v", doc)
	}
}

func TestRulesCheckJSONErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("- rule: X\n  desc: d\n  condition: evt.type=openat and proc.nam = x\n  output: o\n  priority: info\n"), 0o644)
	out, _, err := runRules(t, "check", "--format", "json", f)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err %v, want exit code 1", err)
	}
	var doc struct {
		OK     bool `json:"ok"`
		Errors []struct {
			Line, Column int
			Message      string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OK || len(doc.Errors) != 1 || doc.Errors[0].Line != 3 || doc.Errors[0].Column != 34 {
		t.Errorf("json %+v", doc)
	}
}
