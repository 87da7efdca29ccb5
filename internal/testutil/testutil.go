// Package testutil holds small helpers shared by driftwatch's tests: finding
// the reference data in ../shared and deciding whether a test that needs BPF
// or root may skip.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory holding go.mod, walking up from the
// current directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// SharedDir returns ../shared beside the repository (reference data: Falco's
// rules, the LID-DS sample, scap fixtures), or skips the test saying why.
// Set DRIFTWATCH_SHARED to point elsewhere.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("DRIFTWATCH_SHARED")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("reference data not available: %s is absent (CI lays it beside the clone)", dir)
	}
	return dir
}

// BPFRequired reports whether DRIFTWATCH_REQUIRE_BPF=1 is set: tests that
// need BPF or root must then fail instead of skipping.
func BPFRequired() bool { return os.Getenv("DRIFTWATCH_REQUIRE_BPF") == "1" }

// NeedBPF stops a test that cannot run without BPF: it fails when
// DRIFTWATCH_REQUIRE_BPF=1 and skips otherwise, with reason in both cases.
func NeedBPF(t testing.TB, reason string) {
	t.Helper()
	if BPFRequired() {
		t.Fatalf("BPF required (DRIFTWATCH_REQUIRE_BPF=1) but unavailable: %s", reason)
	}
	t.Skipf("skipping BPF test: %s (set DRIFTWATCH_REQUIRE_BPF=1 to make this a failure)", reason)
}

// NeedRoot calls NeedBPF when the test does not run as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		NeedBPF(t, "not running as root")
	}
}
