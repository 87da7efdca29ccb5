package cri

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"net"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/driftwatch/driftwatch/event"
)

const cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLookupOverRealGRPC(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cri.sock")
	endpoint := "unix://" + sock
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fakeRT := &fakeRuntime{containers: map[string]*runtimeapi.ContainerStatus{}}
	gs := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(gs, fakeRT)
	go gs.Serve(ln)
	defer gs.Stop()
	fakeRT.containers[cid] = &runtimeapi.ContainerStatus{
		Id:        cid,
		Metadata:  &runtimeapi.ContainerMetadata{Name: "app"},
		State:     runtimeapi.ContainerState_CONTAINER_RUNNING,
		CreatedAt: 1690000000000000000,
		StartedAt: 1700000000000000000,
		Image:     &runtimeapi.ImageSpec{Image: "sha256:cfg", UserSpecifiedImage: "localhost/driftwatch-e2e:1"},
		ImageRef:  "sha256:0011",
		Labels:    map[string]string{LabelPodName: "web", LabelPodNamespace: "team", LabelPodUID: "u1", LabelContainerName: "app"},
		Mounts: []*runtimeapi.Mount{
			{HostPath: "/proc", ContainerPath: "/host/proc", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			{HostPath: "/var/lib/kubelet/pods/u1/volumes/x", ContainerPath: "/data"},
		},
	}
	p, err := Dial(context.Background(), endpoint, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if v, err := p.Version(context.Background()); err != nil || v == "" {
		t.Errorf("Version = %q, %v", v, err)
	}
	info, ok := p.Lookup(cid)
	if !ok {
		t.Fatal("container not found")
	}
	want := event.ContainerInfo{ID: cid, Name: "app", Image: "localhost/driftwatch-e2e:1", ImageRepo: "localhost/driftwatch-e2e", ImageTag: "1",
		ImageDigest: "sha256:0011", PodName: "web", PodUID: "u1", Namespace: "team", StartTime: 1700000000000000000}
	if info.ID != want.ID || info.Name != want.Name || info.Image != want.Image || info.ImageRepo != want.ImageRepo ||
		info.ImageTag != want.ImageTag || info.ImageDigest != want.ImageDigest || info.PodName != want.PodName ||
		info.PodUID != want.PodUID || info.Namespace != want.Namespace || info.StartTime != want.StartTime {
		t.Errorf("Lookup = %+v\nwant     %+v", info, want)
	}
	wantMounts := []event.Mount{
		{Source: "/proc", Dest: "/host/proc", RW: false, Propagation: "rslave"},
		{Source: "/var/lib/kubelet/pods/u1/volumes/x", Dest: "/data", RW: true, Propagation: "private"},
	}
	if !slices.Equal(info.Mounts, wantMounts) {
		t.Errorf("Mounts = %+v, want %+v", info.Mounts, wantMounts)
	}

	// Cached: the runtime is asked once.
	before := fakeRT.callCount()
	p.Lookup(cid)
	if n := fakeRT.callCount(); n != before {
		t.Errorf("cached lookup called the runtime (%d → %d)", before, n)
	}
	// Without kubelet labels the sandbox names the pod.
	const bare = "1111111111111111111111111111111111111111111111111111111111111111"
	fakeRT.mu.Lock()
	fakeRT.containers[bare] = &runtimeapi.ContainerStatus{Id: bare, CreatedAt: 1, Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
		Image: &runtimeapi.ImageSpec{Image: "img:2"}, ImageRef: "sha256:22"}
	fakeRT.mu.Unlock()
	if info, ok := p.Lookup(bare); !ok || info.PodName != "sandbox-pod" || info.Namespace != "sandbox-ns" || info.PodUID != "sb-uid" {
		t.Errorf("bare container: %+v %v, want the sandbox's pod metadata", info, ok)
	}

	// Unknown ids are negatively cached.
	if _, ok := p.Lookup("ffff"); ok {
		t.Error("unknown container found")
	}
	before = fakeRT.callCount()
	p.Lookup("ffff")
	if n := fakeRT.callCount(); n != before {
		t.Errorf("negative cache not used (%d → %d)", before, n)
	}
}

// fakeRuntime is a CRI runtime service answering Version and
// ContainerStatus from a map, served over a real unix socket.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	mu         sync.Mutex
	containers map[string]*runtimeapi.ContainerStatus
	calls      int // ListContainers and ContainerStatus calls
}

func (f *fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "fake", RuntimeVersion: "1", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	s, ok := f.containers[r.ContainerId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no container %s", r.ContainerId)
	}
	return &runtimeapi.ContainerStatusResponse{Status: s}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var out []*runtimeapi.Container
	for id := range f.containers {
		if r.GetFilter().GetId() == "" || r.GetFilter().GetId() == id {
			out = append(out, &runtimeapi.Container{Id: id, PodSandboxId: "sb-" + id})
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{Id: r.PodSandboxId, CreatedAt: 1,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "sandbox-pod", Uid: "sb-uid", Namespace: "sandbox-ns"}}}, nil
}

func (f *fakeRuntime) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestFromStatusFallbacks(t *testing.T) {
	s := &runtimeapi.ContainerStatus{Id: "x", Metadata: &runtimeapi.ContainerMetadata{Name: "meta-name"},
		Image: &runtimeapi.ImageSpec{Image: "docker.io/library/busybox:1.36"}, ImageRef: "docker.io/library/busybox@sha256:beef"}
	info := FromStatus(s)
	if info.Name != "meta-name" || info.Image != "docker.io/library/busybox:1.36" || info.ImageTag != "1.36" || info.ImageDigest != "sha256:beef" {
		t.Errorf("FromStatus = %+v", info)
	}
	if info.Namespace != "" || info.PodName != "" {
		t.Errorf("no kubelet labels but pod facts: %+v", info)
	}
	// The runtime answered: no mounts is an empty list, not unknown.
	if info.Mounts == nil || len(info.Mounts) != 0 {
		t.Errorf("Mounts = %#v, want an empty non-nil list", info.Mounts)
	}
}

type mapProvider map[string]event.ContainerInfo

func (m mapProvider) Lookup(id string) (event.ContainerInfo, bool) { i, ok := m[id]; return i, ok }

func TestChainOrder(t *testing.T) {
	k := mapProvider{"a": {ID: "a", PodName: "from-kube"}}
	c := mapProvider{"a": {ID: "a", PodName: "from-cri"}, "b": {ID: "b", Image: "img"}}
	ch := Chain{k, nil, c}
	if i, _ := ch.Lookup("a"); i.PodName != "from-kube" {
		t.Errorf("a from %q, want kube first", i.PodName)
	}
	if i, ok := ch.Lookup("b"); !ok || i.Image != "img" {
		t.Errorf("b = %+v %v, want the CRI's answer", i, ok)
	}
	if _, ok := ch.Lookup("z"); ok {
		t.Error("z found")
	}
	// The Kubernetes answer has no mounts: the CRI's are added to it.
	procMount := []event.Mount{{Source: "/proc", Dest: "/host/proc", Propagation: "private"}}
	c["a"] = event.ContainerInfo{ID: "a", PodName: "from-cri", Mounts: procMount}
	if i, _ := ch.Lookup("a"); i.PodName != "from-kube" || !slices.Equal(i.Mounts, procMount) {
		t.Errorf("a = %+v, want kube's pod with the CRI's mounts", i)
	}
}
