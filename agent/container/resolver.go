package container

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

// MetadataProvider supplies what the cgroup path cannot tell: names, image,
// pod and namespace of a container, keyed by the 64-hex container id.
// Lookup is called from the resolver's own lookup goroutine (Run), never
// from the pipeline's, and may block (a CRI call). A provider that also has
// LookupContext(ctx, id) is called through it, so stopping Run abandons a
// call in flight.
type MetadataProvider interface {
	Lookup(containerID string) (event.ContainerInfo, bool)
}

// DefaultRefreshInterval is the minimum time between two walks of the cgroup
// tree triggered by unknown cgroup ids.
const DefaultRefreshInterval = 500 * time.Millisecond

// DefaultLookupInterval is the minimum time between two provider queries for
// a container whose metadata is not known yet.
const DefaultLookupInterval = time.Second

// Resolver maps cgroup ids to container records. A live resolver
// (NewResolver) walks the cgroup v2 tree once at start; a static one
// (NewStaticResolver) only knows the cgroups it was given or told about
// with AddCgroup (replay).
//
// Nothing on the event path blocks: Resolve, called by the pipeline for
// every event, only reads maps under a short lock. A cgroup id it does not
// know is looked up by its kernel file handle (one open_by_handle_at, no
// walk); when that is not possible the id is handed to Run's walker and
// the event is attributed to the host meanwhile. Metadata (names, image,
// pod) is asked of the provider by Run's lookup goroutine: the events of a
// container whose metadata is pending are processed at once with what the
// cgroup path tells (id, runtime), and the metadata is attached when the
// provider answers — later events carry it, earlier ones are not revisited.
//
// Records are immutable once returned: an update publishes a new record
// (copy on write), so a *event.Container held by the pipeline is never
// written by another goroutine. All methods are safe for concurrent use.
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
	// (by handle, or by an immediate walk) instead of waiting for the rate
	// limit (a new container's first events must not be attributed to the
	// host).
	maxKnown uint64
	// missed holds new ids a lookup did not find (a cgroup already removed):
	// they fall back to the rate limit. Bounded: cleared at 1024 entries.
	missed    map[uint64]struct{}
	refreshes int
	now       func() time.Time

	// byHandle resolves one cgroup id to its path without a walk; nil when
	// the kernel or the privileges do not allow it.
	byHandle *handleLookup
	// walkReq and metaReq wake Run's walker and lookup goroutines.
	walkReq chan bool // true: a fresh id, walk despite the rate limit
	metaReq chan struct{}
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
		walkReq:      make(chan bool, 1),
		metaReq:      make(chan struct{}, 1),
	}
	for id, p := range cgroups {
		r.cgroups[id] = p
	}
	r.host = &event.Container{ContainerInfo: event.ContainerInfo{ID: event.HostContainerID, Runtime: RuntimeHost, CgroupPath: "/"}}
	r.byID[event.HostContainerID] = r.host
	return r
}

// NewResolver returns a live resolver over the cgroup v2 hierarchy mounted at
// mount (see CgroupV2Mount). It walks the tree once now; call Run for the
// background walks and metadata lookups.
func NewResolver(mount string) *Resolver {
	r := newResolver(mount, nil)
	r.byHandle = newHandleLookup(mount)
	m, err := WalkCgroups(mount)
	if err != nil {
		slog.Warn("cgroup tree walk incomplete", "mount", mount, "err", err)
	}
	r.mu.Lock()
	r.mergeWalkLocked(m)
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

// SetProvider installs the metadata provider; every container already
// known is queued for a lookup by Run.
func (r *Resolver) SetProvider(p MetadataProvider) {
	r.mu.Lock()
	r.provider = p
	for id, c := range r.byID {
		if c != r.host {
			r.needMeta[id] = time.Time{}
		}
	}
	r.mu.Unlock()
	r.wakeMeta()
}

// Host returns the host container record.
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
// snapshot or record) into its record, creating it if needed, and returns
// the record now published.
func (r *Resolver) AddContainer(info event.ContainerInfo) *event.Container {
	if info.ID == "" {
		return nil
	}
	r.mu.Lock()
	c := r.byID[info.ID]
	if c == nil {
		c = &event.Container{ContainerInfo: info}
		c.Labels = maps.Clone(info.Labels)
		r.byID[info.ID] = c
	} else {
		c = r.updateLocked(c, func(ci *event.ContainerInfo) { mergeInfo(ci, info) })
	}
	wake := false
	if c.Name != "" || c.Image != "" || c.PodName != "" {
		delete(r.needMeta, info.ID)
	} else if _, pending := r.needMeta[info.ID]; !pending && r.provider != nil {
		r.needMeta[info.ID] = time.Time{}
		wake = true
	}
	if info.CgroupID != 0 && info.CgroupPath != "" {
		if _, ok := r.cgroups[info.CgroupID]; !ok {
			r.cgroups[info.CgroupID] = info.CgroupPath
		}
		r.byCgroup[info.CgroupID] = c
	}
	r.mu.Unlock()
	if wake {
		r.wakeMeta()
	}
	return c
}

// updateLocked publishes a copy of c changed by f in place of c (byID and
// every byCgroup entry) and returns it. c itself is never written: other
// goroutines may be reading it.
func (r *Resolver) updateLocked(c *event.Container, f func(*event.ContainerInfo)) *event.Container {
	n := &event.Container{ContainerInfo: c.ContainerInfo, Mode: c.Mode}
	f(&n.ContainerInfo)
	if r.byID[c.ID] == c {
		r.byID[c.ID] = n
	}
	for id, cc := range r.byCgroup {
		if cc == c {
			r.byCgroup[id] = n
		}
	}
	return n
}

// Resolve returns the container record for a cgroup id: the same record
// for every cgroup of the same container (until its metadata arrives and a
// new record replaces it), the host record for host cgroups and for ids
// not known yet. It never walks the tree nor calls the provider.
func (r *Resolver) Resolve(cgroupID uint64) *event.Container {
	r.mu.Lock()
	c, ok := r.byCgroup[cgroupID]
	if !ok {
		path, known := r.cgroups[cgroupID]
		if !known && r.mount != "" && cgroupID != 0 {
			path, known = r.missLocked(cgroupID)
		}
		if !known {
			// Not cached: a later walk or AddCgroup may still find it.
			r.mu.Unlock()
			return r.host
		}
		c = r.containerForPath(cgroupID, path)
		r.byCgroup[cgroupID] = c
	}
	wake := false
	if c != r.host && r.provider != nil {
		last, need := r.needMeta[c.ID]
		wake = need && (last.IsZero() || r.lookupEvery == 0 || r.now().Sub(last) >= r.lookupEvery)
	}
	r.mu.Unlock()
	if wake {
		r.wakeMeta()
	}
	return c
}

// missLocked handles an unknown cgroup id: a fresh one (above every known
// id) is looked up by handle, else a walk is asked of Run (at once for a
// fresh id, rate-limited for others).
func (r *Resolver) missLocked(cgroupID uint64) (string, bool) {
	_, missedBefore := r.missed[cgroupID]
	fresh := cgroupID > r.maxKnown && !missedBefore
	if fresh && r.byHandle != nil {
		p, err := r.byHandle.path(cgroupID)
		if err == nil {
			r.cgroups[cgroupID] = p
			r.maxKnown = cgroupID
			return p, true
		}
		if !errors.Is(err, errHandleUnsupported) {
			// The cgroup is gone already (or never existed): no walk finds it.
			r.addMissedLocked(cgroupID)
			return "", false
		}
		r.byHandle = nil // unsupported here: walks only from now on
	}
	if !missedBefore {
		r.addMissedLocked(cgroupID)
	} else {
		fresh = false
	}
	select {
	case r.walkReq <- fresh:
	default:
		if fresh {
			// A rate-limited request is queued: make it an immediate one.
			select {
			case <-r.walkReq:
			default:
			}
			select {
			case r.walkReq <- true:
			default:
			}
		}
	}
	return "", false
}

func (r *Resolver) addMissedLocked(id uint64) {
	if len(r.missed) >= 1024 {
		clear(r.missed)
	}
	r.missed[id] = struct{}{}
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
		c = r.updateLocked(c, func(ci *event.ContainerInfo) {
			ci.CgroupID, ci.CgroupPath = cgroupID, path
			if ci.Runtime == "" {
				ci.Runtime = rt
			}
		})
	}
	return c
}

func (r *Resolver) wakeMeta() {
	select {
	case r.metaReq <- struct{}{}:
	default:
	}
}

// Run does the resolver's slow work until ctx ends: cgroup tree walks
// asked for by Resolve, and provider lookups of containers without
// metadata (retried every lookup interval). It returns when both of its
// goroutines have stopped; a provider call in flight is waited for.
func (r *Resolver) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.walker(ctx) })
	wg.Go(func() { r.lookups(ctx) })
	wg.Wait()
}

func (r *Resolver) walker(ctx context.Context) {
	if r.mount == "" {
		return
	}
	var timer *time.Timer
	var timerC <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case fresh := <-r.walkReq:
			r.mu.Lock()
			wait := r.refreshEvery - r.now().Sub(r.lastRefresh)
			r.mu.Unlock()
			if fresh || r.refreshEvery == 0 || wait <= 0 {
				r.refresh()
				continue
			}
			if timerC == nil {
				timer = time.NewTimer(wait)
				timerC = timer.C
			}
		case <-timerC:
			timerC = nil
			r.refresh()
		}
	}
}

// refresh walks the tree (without the lock) and merges what it found.
func (r *Resolver) refresh() {
	m, err := WalkCgroups(r.mount)
	if err != nil {
		slog.Warn("cgroup tree walk incomplete", "mount", r.mount, "err", err)
	}
	r.mu.Lock()
	r.mergeWalkLocked(m)
	r.mu.Unlock()
}

func (r *Resolver) mergeWalkLocked(m map[uint64]string) {
	r.lastRefresh = r.now()
	r.refreshes++
	for id, p := range m {
		if id > r.maxKnown {
			r.maxKnown = id
		}
		if old, ok := r.cgroups[id]; !ok || old != p {
			r.cgroups[id] = p
			delete(r.byCgroup, id)
			delete(r.missed, id)
		}
	}
}

func (r *Resolver) lookups(ctx context.Context) {
	for {
		r.mu.Lock()
		every := r.lookupEvery
		r.mu.Unlock()
		if every <= 0 {
			every = DefaultLookupInterval
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.metaReq:
		case <-t.C:
		}
		t.Stop()
		r.lookupDue(ctx)
	}
}

// lookupDue asks the provider about every container due for a lookup,
// without holding the lock during the calls.
func (r *Resolver) lookupDue(ctx context.Context) {
	r.mu.Lock()
	p := r.provider
	now := r.now()
	var due []string
	for id, last := range r.needMeta {
		if last.IsZero() || r.lookupEvery == 0 || now.Sub(last) >= r.lookupEvery {
			due = append(due, id)
			r.needMeta[id] = now
		}
	}
	r.mu.Unlock()
	if p == nil {
		return
	}
	sort.Strings(due)
	for _, id := range due {
		if ctx.Err() != nil {
			return
		}
		var info event.ContainerInfo
		var ok bool
		if cp, isCtx := p.(interface {
			LookupContext(context.Context, string) (event.ContainerInfo, bool)
		}); isCtx {
			info, ok = cp.LookupContext(ctx, id)
		} else {
			info, ok = p.Lookup(id)
		}
		if !ok {
			continue
		}
		r.mu.Lock()
		if c := r.byID[id]; c != nil {
			r.updateLocked(c, func(ci *event.ContainerInfo) { mergeInfo(ci, info) })
			delete(r.needMeta, id)
		}
		r.mu.Unlock()
	}
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
		dst.Labels = maps.Clone(src.Labels)
	}
	if src.Mounts != nil {
		dst.Mounts = slices.Clone(src.Mounts)
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

// Containers returns a copy of every known container record, host
// included, sorted by id.
func (r *Resolver) Containers() []event.Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]event.Container, 0, len(r.byID))
	for _, c := range r.byID {
		cc := *c
		cc.Labels = maps.Clone(c.Labels)
		out = append(out, cc)
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
