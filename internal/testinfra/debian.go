package testinfra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DebianSuite and DebianMirror are what MakeDebianRootfs builds from.
const (
	DebianSuite  = "bookworm"
	DebianMirror = "http://deb.debian.org/debian"
)

// DefaultDebianCache is where MakeDebianRootfs keeps built roots.
const DefaultDebianCache = "/var/cache/driftwatch-v2/rootfs"

// MakeDebianRootfs fills dir with a Debian root filesystem: mmdebstrap's
// minbase variant (essential packages, apt) plus packages and what they
// depend on (no recommends), installed by apt with their maintainer scripts
// (users, default configuration), as an image built FROM debian:bookworm-slim
// with `apt-get install --no-install-recommends` would hold. Built roots are
// cached in cacheDir by package set (DefaultDebianCache when empty) and
// copied; building one takes 20–90 s and needs root, mmdebstrap and the
// Debian mirror.
func MakeDebianRootfs(cacheDir, dir string, packages []string) error {
	if cacheDir == "" {
		cacheDir = DefaultDebianCache
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("debian rootfs: mmdebstrap not found (apt-get install -y --no-install-recommends mmdebstrap): %w", err)
	}
	pk := append([]string(nil), packages...)
	sort.Strings(pk)
	sum := sha256.Sum256([]byte(DebianSuite + "\x00" + strings.Join(pk, ",")))
	cached := filepath.Join(cacheDir, hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(cached, "usr", "bin")); err != nil {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			return fmt.Errorf("debian rootfs: %w", err)
		}
		tmp := cached + ".tmp"
		_ = os.RemoveAll(tmp)
		args := []string{"--variant=minbase", "--aptopt=APT::Install-Recommends \"false\"",
			"--customize-hook=chroot \"$1\" apt-get clean"}
		if len(pk) > 0 {
			args = append(args, "--include="+strings.Join(pk, ","))
		}
		args = append(args, DebianSuite, tmp, DebianMirror)
		if out, err := exec.Command("mmdebstrap", args...).CombinedOutput(); err != nil {
			_ = os.RemoveAll(tmp)
			return fmt.Errorf("debian rootfs: mmdebstrap %s: %w\n%s", strings.Join(pk, ","), err, lastBytes(out, 2000))
		}
		if err := os.WriteFile(filepath.Join(tmp, ".driftwatch-packages"), []byte(strings.Join(pk, "\n")+"\n"), 0o644); err != nil {
			return fmt.Errorf("debian rootfs: %w", err)
		}
		if err := os.Rename(tmp, cached); err != nil {
			return fmt.Errorf("debian rootfs: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("debian rootfs: %w", err)
	}
	if out, err := exec.Command("cp", "-a", "--reflink=auto", cached+"/.", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("debian rootfs: copy %s: %w: %s", cached, err, lastBytes(out, 500))
	}
	return nil
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Chroot runs argv inside root (for image build steps: initdb, users) and
// returns its combined output.
func Chroot(root string, argv ...string) ([]byte, error) {
	out, err := exec.Command("chroot", append([]string{root}, argv...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("chroot %s %s: %w: %s", root, strings.Join(argv, " "), err, lastBytes(out, 1000))
	}
	return out, nil
}
