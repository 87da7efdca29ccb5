package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

const id64 = "8f3c2d1e0b9a8f7e6d5c4b3a29180716253a4b5c6d7e8f9a0b1c2d3e4f5a6b7c"

func TestParseContainerID(t *testing.T) {
	tests := []struct {
		path, id, runtime string
	}{
		// systemd cgroup driver
		{"/system.slice/docker-" + id64 + ".scope", id64, RuntimeDocker},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2d8f5c1a_9e0b_4c7d_8a6f_1b2c3d4e5f60.slice/cri-containerd-" + id64 + ".scope", id64, RuntimeContainerd},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11111111_2222_3333_4444_555555555555.slice/crio-" + id64 + ".scope", id64, RuntimeCRIO},
		{"/machine.slice/libpod-" + id64 + ".scope", id64, RuntimePodman},
		{"/machine.slice/libpod-" + id64 + ".scope/container", id64, RuntimePodman},
		{"/machine.slice/libpod-conmon-" + id64 + ".scope", event.HostContainerID, RuntimeHost},
		{"/kubepods.slice/kubepods-pod1.slice/crio-conmon-" + id64 + ".scope", event.HostContainerID, RuntimeHost},
		// cgroupfs driver
		{"/docker/" + id64, id64, RuntimeDocker},
		{"/kubepods/besteffort/pod2d8f5c1a-9e0b-4c7d-8a6f-1b2c3d4e5f60/" + id64, id64, RuntimeUnknown},
		{"/kubepods/burstable/pod2d8f5c1a-9e0b-4c7d-8a6f-1b2c3d4e5f60/" + id64, id64, RuntimeUnknown},
		{"/kubepods/pod2d8f5c1a-9e0b-4c7d-8a6f-1b2c3d4e5f60/" + id64, id64, RuntimeUnknown},
		{"/test-kubepods/pod1234/" + id64, id64, RuntimeUnknown},
		// containerd namespaces
		{"/k8s.io/" + id64, id64, RuntimeContainerd},
		{"/moby/" + id64, id64, RuntimeDocker},
		// bare id, and nested: innermost wins
		{"/" + id64, id64, RuntimeUnknown},
		{"/docker/" + strings.Repeat("a", 64) + "/docker/" + id64, id64, RuntimeDocker},
		// host
		{"", event.HostContainerID, RuntimeHost},
		{"/", event.HostContainerID, RuntimeHost},
		{"/init.scope", event.HostContainerID, RuntimeHost},
		{"/system.slice/sshd.service", event.HostContainerID, RuntimeHost},
		{"/user.slice/user-1000.slice/session-3.scope", event.HostContainerID, RuntimeHost},
		{"/kubepods.slice/kubepods-burstable.slice", event.HostContainerID, RuntimeHost},
		// near misses
		{"/docker/" + id64[:63], event.HostContainerID, RuntimeHost},
		{"/docker/" + strings.ToUpper(id64), event.HostContainerID, RuntimeHost},
		{"/system.slice/docker-" + id64 + ".mount", event.HostContainerID, RuntimeHost},
	}
	for _, tc := range tests {
		id, rt := ParseContainerID(tc.path)
		if id != tc.id || rt != tc.runtime {
			t.Errorf("ParseContainerID(%q) = %q, %q; want %q, %q", tc.path, id, rt, tc.id, tc.runtime)
		}
	}
}

func TestParseMounts(t *testing.T) {
	tests := []struct {
		name, table, want string
		err               error
	}{
		{"hybrid", "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n", "/sys/fs/cgroup/unified", nil},
		{"unified", "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n", "/sys/fs/cgroup", nil},
		{"escaped space", "none /mnt/my\\040cg cgroup2 rw 0 0\n", "/mnt/my cg", nil},
		{"v1 only", "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n", "", ErrNoCgroupV2},
	}
	for _, tc := range tests {
		got, err := parseMounts(strings.NewReader(tc.table), "mounts")
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

type fakeProvider struct {
	mu    sync.Mutex
	infos map[string]event.ContainerInfo
	calls int
}

func (f *fakeProvider) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (f *fakeProvider) Lookup(id string) (event.ContainerInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	i, ok := f.infos[id]
	return i, ok
}

func TestStaticResolver(t *testing.T) {
	other := strings.Repeat("b", 64)
	r := NewStaticResolver(map[uint64]string{
		1: "/",
		2: "/test-kubepods/pod1/" + id64,
		3: "/test-kubepods/pod1/" + id64 + "/sub", // nested cgroup of the same container
		4: "/system.slice/docker-" + other + ".scope",
	})
	r.SetIntervals(0, 0)
	if c := r.Resolve(1); !c.IsHost() || c != r.Host() {
		t.Fatalf("root cgroup: %+v", c)
	}
	if c := r.Resolve(999); c != r.Host() {
		t.Fatal("unknown id in a static resolver is not host")
	}
	a, b := r.Resolve(2), r.Resolve(3)
	if a != b || a.ID != id64 || a.CgroupID != 2 {
		t.Fatalf("same container, two cgroups: %p %p %+v", a, b, a)
	}
	if d := r.Resolve(4); d.ID != other || d.Runtime != RuntimeDocker {
		t.Fatalf("docker scope: %+v", d)
	}
	// Metadata arrives later, from Run's lookups: re-queried until found,
	// then published as a new record; the record the pipeline holds is
	// never written.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	p := &fakeProvider{infos: map[string]event.ContainerInfo{}}
	r.SetProvider(p)
	waitFor(t, "first provider query", func() bool { return p.count() > 0 })
	if c := r.Resolve(2); c.Name != "" || a.Name != "" {
		t.Fatal("metadata invented")
	}
	p.mu.Lock()
	p.infos[id64] = event.ContainerInfo{ID: id64, Name: "web", Image: "nginx:1.27", PodName: "web-0", Namespace: "prod"}
	p.mu.Unlock()
	var c *event.Container
	waitFor(t, "metadata attached", func() bool { c = r.Resolve(2); return c.Name == "web" })
	if c.Namespace != "prod" || c.CgroupID != 2 || r.Resolve(3) != c {
		t.Fatalf("after provider knows it: %+v", c)
	}
	if a.Name != "" {
		t.Fatal("the record handed out before the metadata was written")
	}
	calls := p.count()
	r.Resolve(2)
	time.Sleep(20 * time.Millisecond)
	if p.count() != calls {
		t.Fatal("provider queried again after metadata was found")
	}
	// AddCgroup of a new cgroup mid-capture.
	r.AddCgroup(5, "/k8s.io/"+strings.Repeat("c", 64))
	if c := r.Resolve(5); c.ID != strings.Repeat("c", 64) || c.Runtime != RuntimeContainerd {
		t.Fatalf("added cgroup: %+v", c)
	}
	if n := len(r.Containers()); n != 4 { // host, id64, other, ccc
		t.Fatalf("%d containers", n)
	}
	r.Forget(id64)
	if c := r.Resolve(2); c != r.Host() {
		t.Fatal("forgotten container still resolves")
	}
	if _, ok := r.Cgroups()[2]; ok {
		t.Fatal("forgotten container's cgroup kept")
	}
}

func TestProviderRateLimit(t *testing.T) {
	r := NewStaticResolver(map[uint64]string{2: "/" + id64})
	r.SetIntervals(0, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	p := &fakeProvider{infos: map[string]event.ContainerInfo{}}
	r.SetProvider(p)
	for i := 0; i < 100; i++ {
		r.Resolve(2)
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "the first query", func() bool { return p.count() > 0 })
	if n := p.count(); n != 1 {
		t.Fatalf("provider called %d times within one lookup interval", n)
	}
}

// TestLiveResolverByHandle: a cgroup created after the resolver started is
// resolved by its file handle on the first event, without a walk.
func TestLiveResolverByHandle(t *testing.T) {
	testutil.NeedRoot(t)
	mount, err := CgroupV2Mount()
	if err != nil {
		t.Skipf("no cgroup v2: %v", err)
	}
	r := NewResolver(mount)
	r.SetIntervals(time.Hour, 0)
	if r.byHandle == nil {
		t.Fatal("open_by_handle_at on the cgroup mount is unavailable as root")
	}
	cid, ino := newContainerCgroup(t, mount)
	before := r.Refreshes()
	c := r.Resolve(ino)
	if c.ID != cid {
		t.Fatalf("new cgroup %s resolved to %+v", cid, c)
	}
	if r.Refreshes() != before || r.Resolve(ino) != c {
		t.Fatal("walked, or a second resolve changed the record")
	}
	// An id that does not exist: host, and no walk asked for.
	if c := r.Resolve(ino + 1<<40); !c.IsHost() {
		t.Fatalf("unknown id resolved to %q", c.ID)
	}
	select {
	case <-r.walkReq:
		t.Fatal("a cgroup the handle lookup proved gone asked for a walk")
	default:
	}
}

// TestLiveResolverWalksInBackground: without handle lookups, an unknown
// id is attributed to the host at once and found by Run's walk; an id no
// walk finds walks again only at the rate limit.
func TestLiveResolverWalksInBackground(t *testing.T) {
	testutil.NeedRoot(t)
	mount, err := CgroupV2Mount()
	if err != nil {
		t.Fatalf("no cgroup v2: %v", err)
	}
	r := NewResolver(mount)
	r.byHandle = nil
	r.SetIntervals(time.Hour, 0) // only the new-id rule may trigger a walk
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	cid, ino := newContainerCgroup(t, mount)
	before := r.Refreshes()
	if c := r.Resolve(ino); !c.IsHost() && c.ID != cid {
		t.Fatalf("resolved to %q", c.ID)
	}
	waitFor(t, "the background walk", func() bool { return r.Resolve(ino).ID == cid })
	walks := r.Refreshes() - before
	gone := ino + 1<<40 // above every id, and never created
	for i := 0; i < 3; i++ {
		if c := r.Resolve(gone); !c.IsHost() {
			t.Fatalf("unknown id resolved to %q", c.ID)
		}
		waitFor(t, "walk", func() bool { return len(r.walkReq) == 0 })
	}
	time.Sleep(20 * time.Millisecond)
	if got := r.Refreshes() - before - walks; got != 1 {
		t.Fatalf("an id no walk finds walked %d times, want 1", got)
	}
}

// newContainerCgroup makes <mount>/driftwatch-test-*/pod1/<64-hex id>,
// removed when the test ends, and returns the id and the directory's inode
// (its cgroup id).
func newContainerCgroup(t *testing.T, mount string) (string, uint64) {
	t.Helper()
	var rb [32]byte
	rand.Read(rb[:])
	cid := hex.EncodeToString(rb[:])
	parent := filepath.Join(mount, "driftwatch-test-"+cid[:8])
	dir := filepath.Join(parent, "pod1", cid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		testutil.NeedBPF(t, fmt.Sprintf("cannot create a cgroup: %v", err))
	}
	t.Cleanup(func() {
		os.Remove(dir)
		os.Remove(filepath.Dir(dir))
		os.Remove(parent)
	})
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return cid, st.Ino
}

// Mounts from the runtime's answer reach the record; an answer without a
// mounts list (unknown) keeps the ones known.
func TestMergeInfoMounts(t *testing.T) {
	var ci event.ContainerInfo
	ms := []event.Mount{{Source: "/proc", Dest: "/host/proc", Propagation: "private"}}
	mergeInfo(&ci, event.ContainerInfo{ID: "c", Name: "app", Mounts: ms})
	if len(ci.Mounts) != 1 || ci.Mounts[0] != ms[0] {
		t.Fatalf("Mounts = %+v, want %+v", ci.Mounts, ms)
	}
	ms[0].Dest = "/changed"
	if ci.Mounts[0].Dest != "/host/proc" {
		t.Error("record shares the provider's slice")
	}
	mergeInfo(&ci, event.ContainerInfo{ID: "c", Image: "img"})
	if len(ci.Mounts) != 1 {
		t.Errorf("Mounts = %+v after an answer without mounts, want kept", ci.Mounts)
	}
	mergeInfo(&ci, event.ContainerInfo{ID: "c", Mounts: []event.Mount{}})
	if ci.Mounts == nil || len(ci.Mounts) != 0 {
		t.Errorf("Mounts = %#v after an empty list, want empty", ci.Mounts)
	}
}
