// Package safefile creates and opens the files a root daemon writes
// without following symbolic links: a link planted at an alert file or at
// the profile store (or at the directory driftwatch creates for it) is
// refused with an error naming the path, never written through.
//
// The rule: the file itself and its parent directory must not be symbolic
// links. Links higher up the path are followed, as they are part of the
// system's layout (/var/run → /run) and are writable by root only.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrSymlink is wrapped by every error about a refused link.
var ErrSymlink = errors.New("is a symbolic link; refusing to follow it")

// ErrNotRegular is wrapped when the path is not a regular file (a FIFO,
// a device, a directory).
var ErrNotRegular = errors.New("is not a regular file")

// LinkError names the path that is a symbolic link.
type LinkError struct {
	Path string
	Err  error
}

func (e *LinkError) Error() string { return e.Path + " " + e.Err.Error() }
func (e *LinkError) Unwrap() error { return e.Err }

// MkdirAll creates dir and its missing parents with perm, like
// os.MkdirAll, then refuses dir itself when it is a symbolic link.
func MkdirAll(dir string, perm os.FileMode) error {
	if dir == "" || dir == "." || dir == "/" {
		return nil
	}
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return &LinkError{Path: dir, Err: ErrSymlink}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return &LinkError{Path: dir, Err: ErrSymlink}
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return nil
}

// CheckPath refuses path when it or its parent directory is a symbolic
// link; a path that does not exist yet is fine.
func CheckPath(path string) error {
	for _, p := range []string{filepath.Dir(path), path} {
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return &LinkError{Path: p, Err: ErrSymlink}
		}
	}
	return nil
}

// OpenFile opens path like os.OpenFile but never through a symbolic link:
// the parent directory is opened with O_NOFOLLOW, the file relative to it
// with O_NOFOLLOW, and anything but a regular file is refused (a FIFO
// planted at the path cannot block the open: O_NONBLOCK is used for the
// open and cleared afterwards). Its signature matches bbolt's
// Options.OpenFile.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir) // a trailing slash would follow a link
	if base == "" {
		return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			if fi, lerr := os.Lstat(dir); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
				return nil, &LinkError{Path: dir, Err: ErrSymlink}
			}
		}
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, base, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(perm.Perm()))
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &LinkError{Path: path, Err: ErrSymlink}
		}
		var st unix.Stat_t
		if serr := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	if flag&unix.O_NONBLOCK == 0 {
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
		}
	}
	return os.NewFile(uintptr(fd), path), nil
}
