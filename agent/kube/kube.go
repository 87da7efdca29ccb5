// Package kube puts Kubernetes names on containers and reads the per-namespace
// rollout mode. A pod informer limited to this node (field selector
// spec.nodeName) maps container ids from pod status to pod, namespace,
// labels, container name, image and image digest; a namespace informer reads
// the driftwatch.io/mode label. When the API is unreachable the Watcher
// retries with backoff and reports itself disconnected; the agent keeps
// running in host mode meanwhile.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/driftwatch/driftwatch/event"
)

// DefaultModeLabel is the namespace label holding off, learn, detect or auto.
const DefaultModeLabel = "driftwatch.io/mode"

// ErrNoCluster means neither a kubeconfig nor the in-cluster environment is available.
var ErrNoCluster = errors.New("kubernetes: no kubeconfig given and not running in a cluster")

// InCluster reports whether the in-cluster service environment is present.
func InCluster() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

// NewClientset builds a clientset from kubeconfig, or from the in-cluster
// configuration when kubeconfig is empty.
func NewClientset(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// RESTConfig is the client configuration NewClientset uses (for other
// clients of the same API server).
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	case InCluster():
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes in-cluster config: %w", err)
		}
	default:
		return nil, ErrNoCluster
	}
	cfg.UserAgent = "driftwatch-agent"
	cfg.Timeout = 10 * time.Second
	return cfg, nil
}

// NodeName returns name, else $NODE_NAME, else the hostname.
func NodeName(name string) string {
	if name != "" {
		return name
	}
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

// Options configure a Watcher.
type Options struct {
	// NodeName selects the pods of this node.
	NodeName string
	// ModeLabel is the namespace label read (default DefaultModeLabel).
	ModeLabel string
	// Resync is the informers' resync period (0: none).
	Resync time.Duration
	// RetryMin and RetryMax bound the reconnect backoff (default 1s, 30s).
	RetryMin, RetryMax time.Duration
	// ProbeInterval is how often connectivity is checked once synced (default 15s).
	ProbeInterval time.Duration
	// OnConnected is called when connectivity changes (and once at start).
	OnConnected func(bool)
	// OnModes is called with every namespace and its label's mode ("" when
	// unlabelled or invalid) whenever a namespace changes.
	OnModes func(map[string]event.Mode)
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Watcher keeps this node's pods and all namespaces from informers.
type Watcher struct {
	cs   kubernetes.Interface
	opts Options
	log  *slog.Logger

	mu         sync.RWMutex
	containers map[string]event.ContainerInfo // container id → info
	podIDs     map[string][]string            // pod uid → container ids
	nsLabels   map[string]event.Mode

	connected atomic.Bool
	reported  atomic.Int32 // -1 unknown, 0 down, 1 up
}

// New returns a Watcher over cs; call Run.
func New(cs kubernetes.Interface, opts Options) *Watcher {
	if opts.ModeLabel == "" {
		opts.ModeLabel = DefaultModeLabel
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = 30 * time.Second
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 15 * time.Second
	}
	w := &Watcher{cs: cs, opts: opts, log: opts.Logger,
		containers: map[string]event.ContainerInfo{}, podIDs: map[string][]string{}, nsLabels: map[string]event.Mode{}}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.reported.Store(-1)
	return w
}

// Connected reports whether the API answered the last probe and the informers synced.
func (w *Watcher) Connected() bool { return w.connected.Load() }

func (w *Watcher) setConnected(ok bool, err error) {
	w.connected.Store(ok)
	v := int32(0)
	if ok {
		v = 1
	}
	if w.reported.Swap(v) == v {
		return
	}
	if ok {
		w.log.Info("kubernetes API connected", "node", w.opts.NodeName)
	} else {
		w.log.Warn("kubernetes API unreachable: running with host and runtime metadata only, retrying", "err", err)
	}
	if w.opts.OnConnected != nil {
		w.opts.OnConnected(ok)
	}
}

func (w *Watcher) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := w.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

// Run waits for the API (retrying with backoff), starts the informers and
// keeps probing connectivity until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	backoff := w.opts.RetryMin
	for {
		err := w.probe(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		w.setConnected(false, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.opts.RetryMax)
	}

	nsFactory := informers.NewSharedInformerFactory(w.cs, w.opts.Resync)
	podFactory := informers.NewSharedInformerFactoryWithOptions(w.cs, w.opts.Resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", w.opts.NodeName).String()
		}))
	nsInf := nsFactory.Core().V1().Namespaces().Informer()
	podInf := podFactory.Core().V1().Pods().Informer()
	nsInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.namespaceChanged(o, false) },
		UpdateFunc: func(_, o any) { w.namespaceChanged(o, false) },
		DeleteFunc: func(o any) { w.namespaceChanged(o, true) },
	})
	podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.podChanged(o, false) },
		UpdateFunc: func(_, o any) { w.podChanged(o, false) },
		DeleteFunc: func(o any) { w.podChanged(o, true) },
	})
	nsFactory.Start(ctx.Done())
	podFactory.Start(ctx.Done())
	defer nsFactory.Shutdown()
	defer podFactory.Shutdown()
	for !cache.WaitForCacheSync(ctx.Done(), nsInf.HasSynced, podInf.HasSynced) {
		if ctx.Err() != nil {
			return
		}
	}
	w.setConnected(true, nil)

	t := time.NewTicker(w.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := w.probe(ctx)
			if ctx.Err() != nil {
				return
			}
			w.setConnected(err == nil, err)
		}
	}
}

func (w *Watcher) namespaceChanged(o any, deleted bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return
	}
	mode := event.Mode("")
	if v, ok := ns.Labels[w.opts.ModeLabel]; ok {
		m, err := event.ParseMode(v)
		if err != nil {
			w.log.Warn("namespace has an invalid mode label; using the default", "namespace", ns.Name, "label", w.opts.ModeLabel, "err", err)
		} else {
			mode = m
		}
	}
	w.mu.Lock()
	old, had := w.nsLabels[ns.Name]
	if deleted {
		delete(w.nsLabels, ns.Name)
	} else {
		w.nsLabels[ns.Name] = mode
	}
	snap := make(map[string]event.Mode, len(w.nsLabels))
	for k, v := range w.nsLabels {
		snap[k] = v
	}
	w.mu.Unlock()
	if had && old != mode && !deleted {
		w.log.Info("namespace mode changed", "namespace", ns.Name, "from", modeName(old), "to", modeName(mode))
	}
	if w.opts.OnModes != nil {
		w.opts.OnModes(snap)
	}
}

func modeName(m event.Mode) string {
	if m == "" {
		return "default"
	}
	return string(m)
}

// NamespaceModes returns every known namespace with its label's mode ("" when unlabelled).
func (w *Watcher) NamespaceModes() map[string]event.Mode {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make(map[string]event.Mode, len(w.nsLabels))
	for k, v := range w.nsLabels {
		out[k] = v
	}
	return out
}

func (w *Watcher) podChanged(o any, deleted bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	infos := PodContainers(pod)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range w.podIDs[string(pod.UID)] {
		delete(w.containers, id)
	}
	delete(w.podIDs, string(pod.UID))
	if deleted {
		return
	}
	ids := make([]string, 0, len(infos))
	for _, info := range infos {
		w.containers[info.ID] = info
		ids = append(ids, info.ID)
	}
	w.podIDs[string(pod.UID)] = ids
}

// Lookup returns what the pod informer knows of a container (it implements
// container.MetadataProvider).
func (w *Watcher) Lookup(containerID string) (event.ContainerInfo, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	info, ok := w.containers[containerID]
	return info, ok
}

// PodContainers lists the containers of a pod that have a runtime id in its
// status (init, regular and ephemeral), with pod and image metadata.
func PodContainers(pod *corev1.Pod) []event.ContainerInfo {
	privileged := map[string]bool{}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				privileged[c.Name] = true
			}
		}
	}
	var out []event.ContainerInfo
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, st := range statuses {
			runtime, id := SplitContainerID(st.ContainerID)
			if id == "" {
				continue
			}
			repo, tag := SplitImage(st.Image)
			info := event.ContainerInfo{
				ID:          id,
				Name:        st.Name,
				Image:       st.Image,
				ImageRepo:   repo,
				ImageTag:    tag,
				ImageDigest: Digest(st.ImageID),
				PodName:     pod.Name,
				PodUID:      string(pod.UID),
				Namespace:   pod.Namespace,
				Labels:      pod.Labels,
				Privileged:  privileged[st.Name],
				Runtime:     runtime,
			}
			if st.State.Running != nil {
				info.StartTime = st.State.Running.StartedAt.UnixNano()
			}
			out = append(out, info)
		}
	}
	return out
}

// SplitContainerID splits "containerd://<id>" into runtime and id; the
// runtime names are normalised (cri-o, containerd, docker).
func SplitContainerID(s string) (runtime, id string) {
	rt, id, ok := strings.Cut(s, "://")
	if !ok || id == "" {
		return "", ""
	}
	return rt, id
}

// SplitImage splits an image reference into repository and tag
// ("registry:5000/app:1.2" → "registry:5000/app", "1.2"); a digest
// reference has no tag.
func SplitImage(image string) (repo, tag string) {
	if i := strings.Index(image, "@"); i >= 0 {
		return image[:i], ""
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[:i], image[i+1:]
	}
	return image, ""
}

// Digest extracts "sha256:…" from an image id such as
// "docker.io/library/nginx@sha256:…", "docker-pullable://…@sha256:…" or
// "sha256:…"; other strings give "".
func Digest(imageID string) string {
	if i := strings.LastIndex(imageID, "@"); i >= 0 {
		imageID = imageID[i+1:]
	}
	if strings.HasPrefix(imageID, "sha256:") {
		return imageID
	}
	return ""
}
