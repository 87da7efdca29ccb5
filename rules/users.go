package rules

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/driftwatch/driftwatch/event"
)

// UserResolver maps numeric ids to names for user.name, user.loginname and
// group.name. Implementations must be safe for concurrent use and should
// not allocate on cache hits.
type UserResolver interface {
	UserName(c *event.Container, pid, uid uint32) (string, bool)
	GroupName(c *event.Container, pid, gid uint32) (string, bool)
}

// FileResolver reads /etc/passwd and /etc/group from the container's own
// root (<procRoot>/<pid>/root/etc/...) the first time a container is seen
// and caches the tables per container id. When the process is gone (a
// replay), or for host processes, it uses <hostRoot>/etc/passwd; an id
// missing from the table is <NA>.
type FileResolver struct {
	procRoot string
	hostRoot string
	mu       sync.RWMutex
	tables   map[string]*idTables
}

type idTables struct {
	users  map[uint32]string
	groups map[uint32]string
}

// NewFileResolver returns a resolver reading under procRoot (normally
// /proc) and hostRoot (normally /); tests point them at fixtures.
func NewFileResolver(procRoot, hostRoot string) *FileResolver {
	return &FileResolver{procRoot: procRoot, hostRoot: hostRoot, tables: map[string]*idTables{}}
}

func (r *FileResolver) table(c *event.Container, pid uint32) *idTables {
	key := event.HostContainerID
	if c != nil && c.ID != "" {
		key = c.ID
	}
	r.mu.RLock()
	t := r.tables[key]
	r.mu.RUnlock()
	if t != nil {
		return t
	}
	root := r.hostRoot
	if key != event.HostContainerID && pid != 0 {
		cand := filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10), "root")
		if _, err := os.Stat(filepath.Join(cand, "etc", "passwd")); err == nil {
			root = cand
		}
	}
	t = &idTables{
		users:  readIDFile(filepath.Join(root, "etc", "passwd")),
		groups: readIDFile(filepath.Join(root, "etc", "group")),
	}
	r.mu.Lock()
	if old := r.tables[key]; old != nil {
		t = old
	} else if root != r.hostRoot || key == event.HostContainerID {
		// Only cache a container's own tables (or the host's): a fallback
		// for a vanished process must not hide the container's files later.
		r.tables[key] = t
	}
	r.mu.Unlock()
	return t
}

// UserName implements UserResolver.
func (r *FileResolver) UserName(c *event.Container, pid, uid uint32) (string, bool) {
	s, ok := r.table(c, pid).users[uid]
	return s, ok
}

// GroupName implements UserResolver.
func (r *FileResolver) GroupName(c *event.Container, pid, gid uint32) (string, bool) {
	s, ok := r.table(c, pid).groups[gid]
	return s, ok
}

// readIDFile parses name:x:id:... lines (passwd and group share the layout).
func readIDFile(path string) map[uint32]string {
	m := map[uint32]string{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := bytes.SplitN(sc.Bytes(), []byte(":"), 4)
		if len(parts) < 3 || len(parts[0]) == 0 || parts[0][0] == '#' {
			continue
		}
		id, err := strconv.ParseUint(string(parts[2]), 10, 32)
		if err != nil {
			continue
		}
		if _, dup := m[uint32(id)]; !dup {
			m[uint32(id)] = string(parts[0])
		}
	}
	return m
}

// StaticResolver resolves from fixed tables (tests, offline tools).
type StaticResolver struct {
	Users  map[uint32]string
	Groups map[uint32]string
}

// UserName implements UserResolver.
func (s StaticResolver) UserName(_ *event.Container, _, uid uint32) (string, bool) {
	n, ok := s.Users[uid]
	return n, ok
}

// GroupName implements UserResolver.
func (s StaticResolver) GroupName(_ *event.Container, _, gid uint32) (string, bool) {
	n, ok := s.Groups[gid]
	return n, ok
}
