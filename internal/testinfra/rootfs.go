package testinfra

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Fake secrets planted in every busybox rootfs so attack scenarios have
// targets. They are not real credentials.
const (
	FakeShadow = "root:$6$driftwatch$fakefakefakefakefakefakefakefakefakefake:19000:0:99999:7:::\n" +
		"app:$6$driftwatch$notarealhashnotarealhashnotarealhash:19000:0:99999:7:::\n"
	FakeSSHKey = "-----BEGIN OPENSSH PRIVATE KEY-----\n" +
		"ZHJpZnR3YXRjaCB0ZXN0IGZpeHR1cmUsIG5vdCBhIHJlYWwga2V5\n" +
		"-----END OPENSSH PRIVATE KEY-----\n"
)

// BusyboxPath is where busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// rootfsFiles are the regular files of a busybox rootfs with their modes.
var rootfsFiles = []struct {
	path string
	mode os.FileMode
	data string
}{
	{"etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
	{"etc/group", 0o644, "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"},
	{"etc/shadow", 0o600, FakeShadow},
	{"etc/hostname", 0o644, "workload\n"},
	{"etc/hosts", 0o644, "127.0.0.1 localhost\n"},
	{"etc/resolv.conf", 0o644, "nameserver 127.0.0.1\n"},
	{"root/.ssh/id_rsa", 0o600, FakeSSHKey},
	{"root/.ssh/authorized_keys", 0o600, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRyaWZ0d2F0Y2ggdGVzdCBmaXh0dXJl test\n"},
	{"home/app/.ssh/id_rsa", 0o600, FakeSSHKey},
	{"var/www/index.html", 0o644, "<html><body>driftwatch test workload</body></html>\n"},
}

var rootfsDirs = []string{
	"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "proc", "sys", "dev",
	"etc", "tmp", "var/tmp", "var/log", "var/www", "run", "root/.ssh", "home/app/.ssh", "data",
}

// BusyboxRootfs returns a new root filesystem directory: bin/busybox copied
// from /bin/busybox with a symlink for every applet it lists (sh, sleep,
// cat, nc, wget, httpd, tar, gzip, sed, ...), empty proc sys dev tmp, and
// etc/passwd, etc/group, etc/shadow, root/.ssh/id_rsa with fake contents.
// /tmp is mode 1777 and home/app belongs to uid 1000.
func BusyboxRootfs(t T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := MakeBusyboxRootfs(dir); err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	return dir
}

// MakeBusyboxRootfs fills dir as BusyboxRootfs describes.
func MakeBusyboxRootfs(dir string) error {
	for _, d := range rootfsDirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := os.Chmod(filepath.Join(dir, d), os.ModeSticky|0o777); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "root"), 0o700); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	for _, f := range rootfsFiles {
		p := filepath.Join(dir, f.path)
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	for _, p := range []string{"home/app", "home/app/.ssh", "home/app/.ssh/id_rsa"} {
		if err := os.Chown(filepath.Join(dir, p), 1000, 1000); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	if err := CopyFile(BusyboxPath, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return fmt.Errorf("rootfs: %w (install busybox-static)", err)
	}
	applets, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("rootfs: %s --list: %w", BusyboxPath, err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a == "busybox" || strings.ContainsAny(a, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			return fmt.Errorf("rootfs: applet %q: %w", a, err)
		}
	}
	// Programs commonly looked up under /usr/bin.
	for _, a := range []string{"env", "id", "wget", "nc", "awk"} {
		if err := os.Symlink("/bin/busybox", filepath.Join(dir, "usr/bin", a)); err != nil && !os.IsExist(err) {
			return fmt.Errorf("rootfs: usr/bin/%s: %w", a, err)
		}
	}
	return nil
}

// CopyFile copies src to dst with mode (applied after writing, so setuid
// bits, os.ModeSetuid, survive the umask).
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}
