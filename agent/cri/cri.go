// Package cri supplies container names and images from the container
// runtime's CRI socket (containerd, CRI-O) when there is no Kubernetes API:
// it implements the container resolver's MetadataProvider with a cache in
// front of ContainerStatus calls, so the pipeline asks the runtime at most
// once per container (and per negative-cache period for unknown ids).
package cri

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/driftwatch/driftwatch/agent/kube"
	"github.com/driftwatch/driftwatch/event"
)

// Labels the kubelet puts on CRI containers.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// WellKnownEndpoints are tried, in order, when no endpoint is configured.
var WellKnownEndpoints = []string{
	"unix:///run/containerd/containerd.sock",
	"unix:///run/crio/crio.sock",
	"unix:///var/run/containerd/containerd.sock",
	"unix:///var/run/crio/crio.sock",
}

// FindEndpoint returns the first well-known CRI socket that exists, or "".
func FindEndpoint() string {
	for _, e := range WellKnownEndpoints {
		if st, err := os.Stat(strings.TrimPrefix(e, "unix://")); err == nil && st.Mode()&os.ModeSocket != 0 {
			return e
		}
	}
	return ""
}

// Provider looks containers up over the CRI.
type Provider struct {
	rt      internalapi.RuntimeService
	timeout time.Duration
	negTTL  time.Duration

	mu    sync.Mutex
	cache map[string]event.ContainerInfo
	neg   map[string]time.Time // id → time of the failed lookup
}

// Dial connects to endpoint (unix:///path). timeout bounds each call.
func Dial(ctx context.Context, endpoint string, timeout time.Duration) (*Provider, error) {
	rt, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(endpoint).
		WithConnectionTimeout(timeout).
		WithTracerProvider(nil). // no tracing
		Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("cri %s: %w", endpoint, err)
	}
	return New(rt, timeout), nil
}

// New wraps a runtime service.
func New(rt internalapi.RuntimeService, timeout time.Duration) *Provider {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Provider{rt: rt, timeout: timeout, negTTL: 5 * time.Second,
		cache: map[string]event.ContainerInfo{}, neg: map[string]time.Time{}}
}

// Version checks the runtime answers and returns its name and version.
func (p *Provider) Version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, err := p.rt.Version(ctx, "v1")
	if err != nil {
		return "", err
	}
	return v.RuntimeName + " " + v.RuntimeVersion, nil
}

// Lookup returns the runtime's metadata for a container (MetadataProvider).
func (p *Provider) Lookup(id string) (event.ContainerInfo, bool) {
	return p.LookupContext(context.Background(), id)
}

// LookupContext is Lookup abandoned when ctx ends (the agent stopping).
func (p *Provider) LookupContext(ctx context.Context, id string) (event.ContainerInfo, bool) {
	p.mu.Lock()
	if info, ok := p.cache[id]; ok {
		p.mu.Unlock()
		return info, true
	}
	if t, ok := p.neg[id]; ok && time.Since(t) < p.negTTL {
		p.mu.Unlock()
		return event.ContainerInfo{}, false
	}
	p.mu.Unlock()

	info, ok := p.fetch(ctx, id)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok && ctx.Err() != nil {
		return event.ContainerInfo{}, false // abandoned, not known absent
	}
	if !ok {
		p.neg[id] = time.Now()
		return event.ContainerInfo{}, false
	}
	p.cache[id] = info
	delete(p.neg, id)
	return info, true
}

// fetch asks the runtime: ListContainers first (an unknown id is an empty
// list, not an error the client logs), then ContainerStatus, then the pod
// sandbox when the kubelet's labels are missing.
func (p *Provider) fetch(ctx context.Context, id string) (event.ContainerInfo, bool) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cs, err := p.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{Id: id})
	if err != nil || len(cs) == 0 {
		return event.ContainerInfo{}, false
	}
	resp, err := p.rt.ContainerStatus(ctx, id, false)
	if err != nil || resp.GetStatus() == nil {
		return event.ContainerInfo{}, false
	}
	info := FromStatus(resp.GetStatus())
	if (info.Namespace == "" || info.PodName == "") && cs[0].GetPodSandboxId() != "" {
		p.fillFromSandbox(ctx, &info, cs[0].GetPodSandboxId())
	}
	return info, true
}

// fillFromSandbox fills pod name, uid and namespace from the container's
// pod sandbox.
func (p *Provider) fillFromSandbox(ctx context.Context, info *event.ContainerInfo, sandboxID string) {
	sb, err := p.rt.PodSandboxStatus(ctx, sandboxID, false)
	if err != nil {
		return
	}
	md := sb.GetStatus().GetMetadata()
	if info.PodName == "" {
		info.PodName = md.GetName()
	}
	if info.Namespace == "" {
		info.Namespace = md.GetNamespace()
	}
	if info.PodUID == "" {
		info.PodUID = md.GetUid()
	}
}

// Forget drops a container from the cache (it exited).
func (p *Provider) Forget(id string) {
	p.mu.Lock()
	delete(p.cache, id)
	delete(p.neg, id)
	p.mu.Unlock()
}

// Close closes the connection.
func (p *Provider) Close() error {
	return p.rt.Close(context.Background())
}

// FromStatus converts a CRI container status into container metadata.
func FromStatus(s *runtimeapi.ContainerStatus) event.ContainerInfo {
	image := s.GetImage().GetUserSpecifiedImage()
	if image == "" || strings.HasPrefix(image, "sha256:") {
		if i := s.GetImage().GetImage(); i != "" && !strings.HasPrefix(i, "sha256:") {
			image = i
		}
	}
	repo, tag := kube.SplitImage(image)
	name := s.GetLabels()[LabelContainerName]
	if name == "" {
		name = s.GetMetadata().GetName()
	}
	info := event.ContainerInfo{
		ID:          s.GetId(),
		Name:        name,
		Image:       image,
		ImageRepo:   repo,
		ImageTag:    tag,
		ImageDigest: kube.Digest(s.GetImageRef()),
		PodName:     s.GetLabels()[LabelPodName],
		PodUID:      s.GetLabels()[LabelPodUID],
		Namespace:   s.GetLabels()[LabelPodNamespace],
		StartTime:   s.GetStartedAt(),
		Mounts:      mounts(s.GetMounts()),
	}
	if info.ImageDigest == "" {
		info.ImageDigest = kube.Digest(s.GetImage().GetImage())
	}
	return info
}

// mounts converts the CRI's mounts (never nil: the runtime answered, so
// a container without mounts has an empty list). The CRI carries no mount
// mode; propagation is named as Falco names it.
func mounts(ms []*runtimeapi.Mount) []event.Mount {
	out := make([]event.Mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, event.Mount{
			Source:      m.GetHostPath(),
			Dest:        m.GetContainerPath(),
			RW:          !m.GetReadonly(),
			Propagation: propagation(m.GetPropagation()),
		})
	}
	return out
}

func propagation(p runtimeapi.MountPropagation) string {
	switch p {
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		return "rslave"
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		return "rshared"
	}
	return "private"
}

// Chain asks each provider in turn (Kubernetes first, then the CRI) and
// returns the first answer.
type Chain []interface {
	Lookup(string) (event.ContainerInfo, bool)
}

// Lookup implements MetadataProvider.
func (c Chain) Lookup(id string) (event.ContainerInfo, bool) {
	return c.LookupContext(context.Background(), id)
}

// LookupContext asks each provider in turn, through its LookupContext when
// it has one, until ctx ends. An answer without mounts (the Kubernetes
// API has none) takes its mounts from the next provider that has them
// (the CRI), so Falco's container.mount* fields work beside the API.
func (c Chain) LookupContext(ctx context.Context, id string) (event.ContainerInfo, bool) {
	var found event.ContainerInfo
	var have bool
	for _, p := range c {
		if p == nil || ctx.Err() != nil {
			continue
		}
		var info event.ContainerInfo
		var ok bool
		if cp, isCtx := p.(ContextProvider); isCtx {
			info, ok = cp.LookupContext(ctx, id)
		} else {
			info, ok = p.Lookup(id)
		}
		if !ok {
			continue
		}
		if !have {
			found, have = info, true
		} else if info.Mounts != nil {
			found.Mounts = info.Mounts
		}
		if found.Mounts != nil {
			break
		}
	}
	if !have {
		return event.ContainerInfo{}, false
	}
	return found, true
}

// ContextProvider is a metadata provider whose lookups can be abandoned.
type ContextProvider interface {
	LookupContext(ctx context.Context, id string) (event.ContainerInfo, bool)
}
