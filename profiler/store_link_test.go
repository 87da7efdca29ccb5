package profiler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/internal/safefile"
)

// TestStoreRefusesSymlinks: a link planted at the db path or its directory
// is refused, the link's target is neither initialised nor set aside.
func TestStoreRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "empty")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	realDir := filepath.Join(dir, "real")
	if err := os.Mkdir(realDir, 0o700); err != nil {
		t.Fatal(err)
	}
	linkDB := filepath.Join(dir, "profiles.db")
	if err := os.Symlink(target, linkDB); err != nil {
		t.Fatal(err)
	}
	linkDir := filepath.Join(dir, "linkdir")
	if err := os.Symlink(realDir, linkDir); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.db")
	if err := os.Symlink(filepath.Join(dir, "nothing"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{linkDB, filepath.Join(linkDir, "profiles.db"), dangling} {
		s, err := OpenStore(p, StoreOptions{NoSync: true})
		if s != nil {
			s.Close()
		}
		if !errors.Is(err, safefile.ErrSymlink) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("%s: err = %v, want a refused link", p, err)
		}
	}
	if fi, _ := os.Stat(target); fi.Size() != 0 {
		t.Errorf("link target initialised: %d bytes", fi.Size())
	}
	if ents, _ := os.ReadDir(realDir); len(ents) != 0 {
		t.Errorf("store created through the directory link: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dangling link's target created: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*")); len(m) != 0 {
		t.Errorf("a link was set aside: %v", m)
	}
}
