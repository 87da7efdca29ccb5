package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// fileidKernfs is the file handle type of kernfs (cgroupfs): its 8 bytes
// are the node id, which is the cgroup id BPF reports.
const fileidKernfs = 0xfe

var errHandleUnsupported = errors.New("cgroup lookup by handle unsupported")

// handleLookup finds one cgroup's path from its id with
// open_by_handle_at(2) on the cgroup v2 mount (needs CAP_DAC_READ_SEARCH):
// a few microseconds and no tree walk, so Resolve can do it on the event
// path for a cgroup created since the last walk.
type handleLookup struct {
	mount string
	fd    int
}

func newHandleLookup(mount string) *handleLookup {
	fd, err := unix.Open(mount, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	return &handleLookup{mount: filepath.Clean(mount), fd: fd}
}

// path returns the cgroup's path relative to the mount; an error wrapping
// errHandleUnsupported when handles cannot be used here, another when the
// cgroup does not exist.
func (h *handleLookup) path(id uint64) (string, error) {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, id)
	fd, err := unix.OpenByHandleAt(h.fd, unix.NewFileHandle(fileidKernfs, b), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if err != nil {
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL), errors.Is(err, unix.EACCES):
			return "", fmt.Errorf("%w: %v", errHandleUnsupported, err)
		}
		return "", err
	}
	defer unix.Close(fd)
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("%w: %v", errHandleUnsupported, err)
	}
	switch {
	case p == h.mount:
		return "/", nil
	case strings.HasPrefix(p, h.mount+"/"):
		return p[len(h.mount):], nil
	}
	// Mounted elsewhere (another mount namespace's view): walks only.
	return "", fmt.Errorf("%w: %s is outside %s", errHandleUnsupported, p, h.mount)
}
