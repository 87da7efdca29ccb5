package container

import (
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// MetadataProvider supplies what the cgroup path cannot tell: names, image,
// pod and namespace of a container, keyed by the 64-hex container id.
// Lookup must be safe to call from the pipeline goroutine while the provider
// updates itself from others (informers, CRI polling).
type MetadataProvider interface {
	Lookup(containerID string) (event.ContainerInfo, bool)
}

// DefaultRefreshInterval is the minimum time between two walks of the cgroup
// tree triggered by unknown cgroup ids.
const DefaultRefreshInterval = 500 * time.Millisecond

// DefaultLookupInterval is the minimum time between two provider queries for
// a container whose metadata is not known yet.
const DefaultLookupInterval = time.Second

// Resolver maps cgroup ids to shared container records. A live resolver
// (NewResolver) walks the cgroup v2 tree and walks it again, rate limited,
// when an unknown cgroup id arrives; a static one (NewStaticResolver) only
// knows the cgroups it was given or told about with AddCgroup (replay).
// All methods are safe for concurrent use.
type Resolver struct {
	mu       sync.Mutex
	mount    string // "" for a static resolver
	cgroups  map[uint64]string
	byCgroup map[uint64]*event.Container
	byID     map[string]*event.Container
	host     *event.Container
	provider MetadataProvider
	// needMeta holds containers whose metadata the provider has not
	// supplied yet, with the time of the last query.
	needMeta map[string]time.Time

	refreshEvery time.Duration
	lookupEvery  time.Duration
	lastRefresh  time.Time
	// maxKnown is the largest cgroup id seen by a walk or AddCgroup. Cgroup
	// ids are kernfs inode numbers, which only grow, so an unknown id above
	// it is a cgroup created since the last walk: it is looked up at once
	// instead of waiting for the rate limit (a new container's first events
	// must not be attributed to the host).
	maxKnown uint64
	// missed holds new ids a walk did not find (a cgroup already removed):
	// they fall back to the rate limit. Bounded: cleared at 1024 entries.
	missed    map[uint64]struct{}
	refreshes int
	now       func() time.Time
}

func newResolver(mount string, cgroups map[uint64]string) *Resolver {
	r := &Resolver{
		mount:        mount,
		cgroups:      make(map[uint64]string, len(cgroups)),
		byCgroup:     make(map[uint64]*event.Container),
		byID:         make(map[string]*event.Container),
		needMeta:     make(map[string]time.Time),
		missed:       make(map[uint64]struct{}),
		refreshEvery: DefaultRefreshInterval,
		lookupEvery:  DefaultLookupInterval,
		now:          time.Now,
	}
	for id, p := range cgroups {
		r.cgroups[id] = p
	}
	r.host = &event.Container{ContainerInfo: event.ContainerInfo{ID: event.HostContainerID, Runtime: RuntimeHost, CgroupPath: "/"}}
	r.byID[event.HostContainerID] = r.host
	return r
}

// NewResolver returns a live resolver over the cgroup v2 hierarchy mounted at
// mount (see CgroupV2Mount). It walks the tree once now.
func NewResolver(mount string) *Resolver {
	r := newResolver(mount, nil)
	r.mu.Lock()
	r.refreshLocked()
	r.mu.Unlock()
	return r
}

// NewStaticResolver returns a resolver that knows exactly the given cgroups
// (id → path relative to the cgroup v2 mount), e.g. from a trace snapshot,
// and never touches the file system.
func NewStaticResolver(cgroups map[uint64]string) *Resolver {
	return newResolver("", cgroups)
}

// SetIntervals changes the minimum time between tree walks on a miss and
// between provider queries for a container without metadata (0 = no limit).
func (r *Resolver) SetIntervals(refresh, lookup time.Duration) {
	r.mu.Lock()
	r.refreshEvery, r.lookupEvery = refresh, lookup
	r.mu.Unlock()
}

// SetProvider installs the metadata provider; containers already known are
// queried again on their next Resolve.
func (r *Resolver) SetProvider(p MetadataProvider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.provider = p
	for id, c := range r.byID {
		if c != r.host {
			r.needMeta[id] = time.Time{}
		}
	}
}

// Host returns the shared host container record.
func (r *Resolver) Host() *event.Container { return r.host }

// AddCgroup records that cgroup id has the given path (relative to the v2
// mount), e.g. from a trace's cgroup record or a cgroup creation event.
func (r *Resolver) AddCgroup(id uint64, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.cgroups[id]; ok && old == path {
		return
	}
	r.cgroups[id] = path
	delete(r.byCgroup, id)
	if id > r.maxKnown {
		r.maxKnown = id
	}
}

// AddContainer merges what is known about a container (from a trace
// snapshot or record) into its shared record, creating it if needed.
func (r *Resolver) AddContainer(info event.ContainerInfo) *event.Container {
	if info.ID == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.byID[info.ID]
	if c == nil {
		c = &event.Container{ContainerInfo: info}
		r.byID[info.ID] = c
	} else {
		mergeInfo(&c.ContainerInfo, info)
	}
	if c.Name != "" || c.Image != "" || c.PodName != "" {
		delete(r.needMeta, info.ID)
	} else if _, pending := r.needMeta[info.ID]; !pending && r.provider != nil {
		r.needMeta[info.ID] = time.Time{}
	}
	if info.CgroupID != 0 && info.CgroupPath != "" {
		if _, ok := r.cgroups[info.CgroupID]; !ok {
			r.cgroups[info.CgroupID] = info.CgroupPath
		}
		r.byCgroup[info.CgroupID] = c
	}
	return c
}

// Resolve returns the container record for a cgroup id: the same pointer
// for every cgroup of the same container, the host record for host cgroups
// and for ids that stay unknown after a (rate-limited) refresh.
func (r *Resolver) Resolve(cgroupID uint64) *event.Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.byCgroup[cgroupID]
	if !ok {
		path, known := r.cgroups[cgroupID]
		if !known && r.mount != "" && cgroupID != 0 {
			_, missedBefore := r.missed[cgroupID]
			fresh := cgroupID > r.maxKnown && !missedBefore
			if fresh || r.refreshEvery == 0 || r.now().Sub(r.lastRefresh) >= r.refreshEvery {
				r.refreshLocked()
				path, known = r.cgroups[cgroupID]
				if !known {
					if len(r.missed) >= 1024 {
						clear(r.missed)
					}
					r.missed[cgroupID] = struct{}{}
				}
			}
		}
		if !known {
			// Not cached: a later refresh or AddCgroup may still find it.
			return r.host
		}
		c = r.containerForPath(cgroupID, path)
		r.byCgroup[cgroupID] = c
	}
	if c != r.host && r.provider != nil {
		r.fillMetadata(c)
	}
	return c
}

// containerForPath returns (creating) the record for the container a cgroup
// path belongs to.
func (r *Resolver) containerForPath(cgroupID uint64, path string) *event.Container {
	id, rt := ParseContainerID(path)
	if id == event.HostContainerID {
		return r.host
	}
	c := r.byID[id]
	if c == nil {
		c = &event.Container{ContainerInfo: event.ContainerInfo{ID: id, Runtime: rt, CgroupID: cgroupID, CgroupPath: path}}
		r.byID[id] = c
		r.needMeta[id] = time.Time{}
	} else if c.CgroupID == 0 {
		c.CgroupID, c.CgroupPath = cgroupID, path
		if c.Runtime == "" {
			c.Runtime = rt
		}
	}
	return c
}

// fillMetadata queries the provider for a container still lacking metadata,
// at most once per lookup interval.
func (r *Resolver) fillMetadata(c *event.Container) {
	last, need := r.needMeta[c.ID]
	if !need {
		return
	}
	now := r.now()
	if !last.IsZero() && r.lookupEvery > 0 && now.Sub(last) < r.lookupEvery {
		return
	}
	r.needMeta[c.ID] = now
	info, ok := r.provider.Lookup(c.ID)
	if !ok {
		return
	}
	mergeInfo(&c.ContainerInfo, info)
	delete(r.needMeta, c.ID)
}

// mergeInfo copies the non-zero fields of src into dst, keeping dst's id
// and cgroup facts when src has none.
func mergeInfo(dst *event.ContainerInfo, src event.ContainerInfo) {
	setS := func(d *string, s string) {
		if s != "" {
			*d = s
		}
	}
	setS(&dst.Name, src.Name)
	setS(&dst.Image, src.Image)
	setS(&dst.ImageRepo, src.ImageRepo)
	setS(&dst.ImageTag, src.ImageTag)
	setS(&dst.ImageDigest, src.ImageDigest)
	setS(&dst.PodName, src.PodName)
	setS(&dst.PodUID, src.PodUID)
	setS(&dst.Namespace, src.Namespace)
	setS(&dst.CgroupPath, src.CgroupPath)
	setS(&dst.Runtime, src.Runtime)
	if src.Labels != nil {
		dst.Labels = src.Labels
	}
	if src.Privileged {
		dst.Privileged = true
	}
	if src.StartTime != 0 {
		dst.StartTime = src.StartTime
	}
	if src.CgroupID != 0 {
		dst.CgroupID = src.CgroupID
	}
}

// Forget drops a container (it exited): its record and its cgroups.
func (r *Resolver) Forget(containerID string) {
	if containerID == event.HostContainerID {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.byID[containerID]
	delete(r.byID, containerID)
	delete(r.needMeta, containerID)
	if c == nil {
		return
	}
	for id, cc := range r.byCgroup {
		if cc == c {
			delete(r.byCgroup, id)
			delete(r.cgroups, id)
		}
	}
}

// Containers returns every known container record, host included, sorted by id.
func (r *Resolver) Containers() []*event.Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*event.Container, 0, len(r.byID))
	for _, c := range r.byID {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Cgroups returns a copy of the known cgroup id → path map (for a snapshot).
func (r *Resolver) Cgroups() map[uint64]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[uint64]string, len(r.cgroups))
	for id, p := range r.cgroups {
		out[id] = p
	}
	return out
}

// Refreshes returns how many times the live resolver walked the tree.
func (r *Resolver) Refreshes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshes
}

// refreshLocked walks the cgroup tree and adds every directory it finds.
func (r *Resolver) refreshLocked() {
	r.lastRefresh = r.now()
	r.refreshes++
	m, err := WalkCgroups(r.mount)
	if err != nil {
		slog.Warn("cgroup tree walk incomplete", "mount", r.mount, "err", err)
	}
	for id, p := range m {
		if id > r.maxKnown {
			r.maxKnown = id
		}
		if old, ok := r.cgroups[id]; !ok || old != p {
			r.cgroups[id] = p
			delete(r.byCgroup, id)
		}
	}
}

// WalkCgroups maps every directory of the cgroup v2 tree under mount to its
// path relative to the mount ("/" for the root, "/a/b" below it), keyed by
// the directory's inode (the kernel's cgroup id). Directories that vanish
// during the walk are skipped; other errors are returned with the partial map.
func WalkCgroups(mount string) (map[uint64]string, error) {
	out := make(map[uint64]string)
	var firstErr error
	err := filepath.WalkDir(mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == mount {
				return err
			}
			if firstErr == nil && !isNotExist(err) {
				firstErr = err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			if firstErr == nil && !isNotExist(err) {
				firstErr = err
			}
			return nil
		}
		rel, _ := filepath.Rel(mount, p)
		if rel == "." {
			rel = "/"
		} else {
			rel = "/" + rel
		}
		out[st.Ino] = rel
		return nil
	})
	if err != nil {
		return out, err
	}
	return out, firstErr
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
