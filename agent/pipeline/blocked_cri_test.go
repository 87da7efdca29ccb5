package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/agent/cri"
	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/event"
)

// stalledRuntime is a CRI runtime that answers the version check made
// when the agent connects, then accepts every call and never answers
// (until the test ends): a containerd hung after the agent started.
type stalledRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	calls   atomic.Int64
	release chan struct{}
}

func (s *stalledRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "stalled", RuntimeVersion: "1", RuntimeApiVersion: "v1"}, nil
}

func (s *stalledRuntime) ListContainers(ctx context.Context, _ *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	s.calls.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return nil, fmt.Errorf("stalled")
}

// stalledCRI serves a stalled runtime on a unix socket and returns a
// provider dialled to it whose calls time out only after an hour.
func stalledCRI(tb testing.TB) (*cri.Provider, *stalledRuntime) {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "cri.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	rt := &stalledRuntime{release: make(chan struct{})}
	gs := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(gs, rt)
	go gs.Serve(ln)
	p, err := cri.Dial(context.Background(), "unix://"+sock, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		close(rt.release)
		p.Close()
		gs.Stop()
	})
	return p, rt
}

const nContainers = 64

// blockedSetup is a resolver knowing nContainers containers, its lookups
// going to a stalled CRI, Run in the background.
func blockedSetup(tb testing.TB, provider container.MetadataProvider) (*pipeline.Pipeline, []event.Event, func()) {
	cg := map[uint64]string{1: "/"}
	for i := 0; i < nContainers; i++ {
		cg[uint64(100+i)] = fmt.Sprintf("/kubepods/pod%d/%064x", i, i+1)
	}
	r := container.NewStaticResolver(cg)
	r.SetIntervals(0, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	if provider != nil {
		r.SetProvider(provider)
	}
	p := pipeline.New(pipeline.Config{Resolver: r, DefaultMode: event.ModeLearn})
	evs := make([]event.Event, 0, 4*nContainers)
	for i := 0; i < nContainers; i++ {
		pid := uint32(1000 + i)
		cgid := uint64(100 + i)
		evs = append(evs,
			event.Event{Kind: event.KindExec, Syscall: event.SysExecve, Pid: pid, Tid: pid, Ppid: 1, CgroupID: cgid, Exe: []byte("/bin/sh"), Argv: []byte("sh\x00")},
			event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Pid: pid, Tid: pid, CgroupID: cgid, Path: []byte("/etc/passwd"), Ret: 3},
			event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Pid: pid, Tid: pid, CgroupID: cgid, Path: []byte("/etc/hosts"), Ret: 4},
			event.Event{Kind: event.KindSyscall, Syscall: event.SysConnect, Pid: pid, Tid: pid, CgroupID: cgid, Ret: 0},
		)
	}
	return p, evs, func() { cancel(); <-done }
}

// TestStalledCRIDoesNotBlockEvents: with every metadata lookup stuck in a
// CRI call that does not answer (timeout one hour), the pipeline still
// handles every event of every container, attributed to its container by
// id, and stopping the resolver abandons the stuck call.
func TestStalledCRIDoesNotBlockEvents(t *testing.T) {
	prov, rt := stalledCRI(t)
	p, evs, stop := blockedSetup(t, prov)
	const rounds = 500
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for r := 0; r < rounds; r++ {
			for i := range evs {
				ev := evs[i]
				p.Handle(&ev)
			}
		}
	}()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("the pipeline is blocked behind the stalled CRI")
	}
	if rt.calls.Load() == 0 {
		t.Fatal("the stalled runtime was never asked: the test proves nothing")
	}
	var total uint64
	for _, n := range p.Stats().Events {
		total += n
	}
	if total != uint64(rounds*len(evs)) {
		t.Fatalf("handled %d events, want %d", total, rounds*len(evs))
	}
	c := p.Resolver().Resolve(100)
	if c.ID != fmt.Sprintf("%064x", 1) || c.Name != "" {
		t.Fatalf("container while its metadata is pending: %+v", c.ContainerInfo)
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("resolver did not stop while a CRI call was stuck")
	}
}

// BenchmarkHandleStalledCRI and BenchmarkHandleNoProvider compare the
// event rate with every lookup stuck in the CRI to the rate with no
// provider at all.
func BenchmarkHandleStalledCRI(b *testing.B) {
	prov, _ := stalledCRI(b)
	benchHandle(b, prov)
}

func BenchmarkHandleNoProvider(b *testing.B) { benchHandle(b, nil) }

func benchHandle(b *testing.B, prov container.MetadataProvider) {
	p, evs, stop := blockedSetup(b, prov)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := evs[i%len(evs)]
		p.Handle(&ev)
	}
}
