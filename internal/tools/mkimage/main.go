// Command mkimage writes the agent's OCI image (an image-layout tar that
// `ctr images import` and other OCI tools read) without a container daemon:
// one gzip layer holding the driftwatch binary and the few directories the
// agent uses; no shell, no libc, no package manager. `make image` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/driftwatch/driftwatch/internal/testinfra"
)

func main() {
	bin := flag.String("binary", "bin/driftwatch", "the statically linked driftwatch binary")
	out := flag.String("out", "bin/driftwatch-image.tar", "OCI image-layout tar to write")
	names := flag.String("name", "ghcr.io/driftwatch/driftwatch:local", "comma-separated image references")
	version := flag.String("version", "dev", "version label")
	flag.Parse()
	if err := run(*bin, *out, strings.Split(*names, ","), *version); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(bin, out string, names []string, version string) error {
	root, err := os.MkdirTemp("", "driftwatch-rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	b, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"usr/bin/driftwatch", 0o755, b},
		// Names for uid/gid 0 in logs and /proc readers; no login shell.
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/var/lib/driftwatch:/usr/bin/nologin\n")},
		{"etc/group", 0o644, []byte("root:x:0:\n")},
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{"usr/bin", 0o755}, {"etc/driftwatch/rules.d", 0o755}, {"var/lib/driftwatch", 0o700}, {"tmp", 0o1777}} {
		if err := os.MkdirAll(filepath.Join(root, d.path), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(root, d.path), d.mode); err != nil {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return err
	}
	img, err := testinfra.WriteOCIImageWith(w, names[0], root, testinfra.ImageConfig{
		Entrypoint: []string{"/usr/bin/driftwatch"},
		Cmd:        []string{"agent"},
		WorkingDir: "/var/lib/driftwatch",
	}, testinfra.OCIOptions{Gzip: true, Names: names[1:], Labels: map[string]string{
		"org.opencontainers.image.title":   "driftwatch",
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.source":  "https://github.com/driftwatch/driftwatch",
	}})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s (manifest %s), compressed layer %.1f MB, archive %.1f MB\n", out, strings.Join(names, ", "),
		img.ManifestDigest, float64(img.LayerSize)/1e6, float64(fi.Size())/1e6)
	return nil
}
