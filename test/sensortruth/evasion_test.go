package sensortruth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/testinfra"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

const credentialRule = "Credential file read"

// evasionContainer starts a writable busybox runc container with the
// evade helper installed (also as /tmp/sshd, an allowed credential reader,
// and /tmp/python3, an interpreter) and CAP_SYS_ADMIN for the bind mount.
func evasionContainer(t *testing.T) *testinfra.Container {
	t.Helper()
	testutil.NeedRoot(t)
	rootfs := testinfra.BusyboxRootfs(t)
	buildEvade(t, rootfs, "tmp/sshd", "tmp/python3")
	for _, d := range []string{"mnt/e", "jail"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	caps := append([]string{"CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"}, testinfra.DefaultCaps...)
	return testinfra.NewRuncContainer(t, testinfra.RuncOptions{Writable: true, Caps: caps, Rootfs: rootfs})
}

// TestEvasionSuite: every way of reading /etc/shadow inside a container
// raises "Credential file read" for the evasive open itself, naming
// /etc/shadow (fd.name is the kernel's resolved path).
func TestEvasionSuite(t *testing.T) {
	c := evasionContainer(t)
	l := startLive(t, c, "evasion")

	long1 := strings.Repeat("/.", 320) + "/etc/shadow"                 // 651 bytes
	long2 := "/tmp" + strings.Repeat("/../tmp", 90) + "/../etc/shadow" // 647 bytes
	tests := []struct {
		name  string
		setup string   // sh -c in the container first (no alert expected from it)
		argv  []string // the access
		raw   string   // the path string the evasive open passes (prefix)
	}{
		{"plain path (control)", "", []string{"evade", "read", "/etc/shadow"}, "/etc/shadow"},
		{"600+ byte /./ path", "", []string{"evade", "read", long1}, long1},
		{"600+ byte ../ path", "", []string{"evade", "read", long2}, long2},
		{"symlink", "ln -sf /etc/shadow /tmp/s1", []string{"evade", "read", "/tmp/s1"}, "/tmp/s1"},
		{"symlink chain", "ln -sf /etc/shadow /tmp/c3 && ln -sf /tmp/c3 /tmp/c2 && ln -sf c2 /tmp/c1", []string{"evade", "read", "/tmp/c1"}, "/tmp/c1"},
		{"/proc/self/root", "", []string{"evade", "read", "/proc/self/root/etc/shadow"}, "/proc/self/root/etc/shadow"},
		{"dirfd-relative openat", "", []string{"evade", "dirfd", "/etc", "shadow"}, "shadow"},
		{"openat2 RESOLVE_BENEATH", "", []string{"evade", "openat2", "/etc", "./shadow", "0x08"}, "./shadow"},
		{"openat2 RESOLVE_IN_ROOT", "", []string{"evade", "openat2", "/", "../../etc/shadow", "0x10"}, "../../etc/shadow"},
		{"chroot", "", []string{"evade", "chroot", "/etc", "/shadow"}, "/shadow"},
		{"bind mount of /etc", "mount --bind /etc /mnt/e", []string{"evade", "read", "/mnt/e/shadow"}, "/mnt/e/shadow"},
		{"symlink renamed into place", "ln -sf /etc/shadow /tmp/r.new && mv /tmp/r.new /tmp/r", []string{"evade", "read", "/tmp/r"}, "/tmp/r"},
		{"/proc/self/fd/N re-open", "", []string{"evade", "procfd", "/etc/shadow"}, "/proc/self/fd/"},
		// open_by_handle_at (CAP_DAC_READ_SEARCH, the "shocker" escape)
		// passes no path at all: only the resolved one names the file.
		{"open_by_handle_at", "", []string{"evade", "byhandle", "/etc/shadow"}, ""},
		// io_uring (IORING_OP_OPENAT) makes no open system call at all:
		// reported at the request's completion (the path passed is gone
		// by then: the resolved path stands for it).
		{"io_uring openat", "", []string{"evade", "uring", "/etc/shadow"}, "/etc/shadow"},
		{"io_uring openat into a fixed-file slot", "", []string{"evade", "uringfixed", "/etc/shadow"}, "/etc/shadow"},
		// The sender runs as "sshd", an allowed reader: only the
		// receiver's re-open of the passed descriptor can raise it.
		{"descriptor passed over a unix socket", "", []string{"/tmp/sshd", "fdpass", "/etc/shadow", "/usr/local/bin/evade"}, "/proc/self/fd/"},
	}
	for _, tc := range tests {
		if tc.setup != "" {
			c.Exec(t, "sh", "-c", tc.setup)
		}
		if out, err := c.Command(tc.argv...).CombinedOutput(); err != nil {
			t.Errorf("%s: %q: %v\n%s", tc.name, tc.argv, err, out)
		}
	}
	// The alert of a scenario: the evasive open's own path string, from
	// the process running the scenario's operation.
	found := func(alerts []seen, raw, op string) *seen {
		if op == "fdpass" {
			op = "recvfd"
		}
		for i, a := range alerts {
			if a.alert.Rule == credentialRule && strings.HasPrefix(a.rawPath, raw) && strings.Contains(a.alert.Output, " "+op) {
				return &alerts[i]
			}
		}
		return nil
	}
	alerts := l.wait(t, "an alert for every scenario", func(got []seen) bool {
		for _, tc := range tests {
			if found(got, tc.raw, tc.argv[1]) == nil {
				return false
			}
		}
		return true
	})
	for _, tc := range tests {
		a := found(alerts, tc.raw, tc.argv[1])
		if a == nil {
			t.Errorf("%s: no %q alert", tc.name, credentialRule)
			continue
		}
		t.Logf("%s: %s", tc.name, a.alert.Output[:min(len(a.alert.Output), 160)])
		if a.fdName != "/etc/shadow" {
			t.Errorf("%s: alert names %q, want /etc/shadow: %s", tc.name, a.fdName, a.alert.Output)
		}
	}
	// The descriptor's sender is an allowed reader: its own open of
	// /etc/shadow must stay quiet, so the receiver's alert is the one.
	for _, a := range alerts {
		if a.alert.Rule == credentialRule && strings.Contains(a.alert.Output, "process=sshd ") {
			t.Errorf("the allowed sender raised %q: %s", credentialRule, a.alert.Output)
		}
	}
}

// TestWriteRulesSeeResolvedPath: the binary-directory and /etc write rules
// match the file really opened, whatever name the process used.
func TestWriteRulesSeeResolvedPath(t *testing.T) {
	c := evasionContainer(t)
	l := startLive(t, c, "writes")
	c.Exec(t, "sh", "-c", "ln -sf /usr/bin /tmp/ub && ln -sf /etc /tmp/e")
	tests := []struct {
		rule, raw, want string
	}{
		{"Write below binary directory", "/tmp/ub/implant", "/usr/bin/implant"},
		{"Write below binary directory", "/tmp/../usr/./bin/../bin/implant2", "/usr/bin/implant2"},
		{"Write below /etc in container", "/tmp/e/cron.d-job", "/etc/cron.d-job"},
		{"Write below /etc in container", "/proc/self/root/etc/profile.d-x", "/etc/profile.d-x"},
	}
	for _, tc := range tests {
		if out, err := c.Command("evade", "write", tc.raw).CombinedOutput(); err != nil {
			t.Fatalf("write %s: %v\n%s", tc.raw, err, out)
		}
	}
	find := func(got []seen, rule, raw string) *seen {
		for i, a := range got {
			if a.alert.Rule == rule && a.rawPath == raw {
				return &got[i]
			}
		}
		return nil
	}
	alerts := l.wait(t, "every write alert", func(got []seen) bool {
		for _, tc := range tests {
			if find(got, tc.rule, tc.raw) == nil {
				return false
			}
		}
		return true
	})
	for _, tc := range tests {
		if a := find(alerts, tc.rule, tc.raw); a.fdName != tc.want {
			t.Errorf("%s via %s: alert names %q, want %q", tc.rule, tc.raw, a.fdName, tc.want)
		}
	}
}
