package kube

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/driftwatch/driftwatch/agent/modes"
	"github.com/driftwatch/driftwatch/event"
)

const cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func pod(name, ns, node, containerID string) *corev1.Pod {
	priv := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{
			{Name: "app", Image: "registry.local:5000/team/app:1.2"},
			{Name: "priv", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: &priv}},
		}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", ContainerID: "containerd://" + containerID, Image: "registry.local:5000/team/app:1.2",
				ImageID: "registry.local:5000/team/app@sha256:aaaa",
				State:   corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Unix(1700000000, 0)}}},
			{Name: "priv", ContainerID: "", Image: "busybox"}, // not started yet: no id
		}},
	}
}

func ns(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestPodMetadataAndModes(t *testing.T) {
	cs := fake.NewSimpleClientset(
		ns("team", map[string]string{DefaultModeLabel: "learn"}),
		ns("plain", nil),
		pod("web", "team", "node1", cid),
	)
	tab := modes.New(event.ModeOff, event.ModeOff, nil)
	var connected atomic.Bool
	w := New(cs, Options{NodeName: "node1", Logger: quiet(), OnModes: tab.SetCluster, OnConnected: connected.Store})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	eventually(t, "connected", connected.Load)

	info, ok := w.Lookup(cid)
	if !ok {
		t.Fatal("container not found")
	}
	want := event.ContainerInfo{ID: cid, Name: "app", Image: "registry.local:5000/team/app:1.2", ImageRepo: "registry.local:5000/team/app",
		ImageTag: "1.2", ImageDigest: "sha256:aaaa", PodName: "web", PodUID: "uid-web", Namespace: "team",
		StartTime: time.Unix(1700000000, 0).UnixNano(), Runtime: "containerd"}
	if info.Name != want.Name || info.Image != want.Image || info.ImageRepo != want.ImageRepo || info.ImageTag != want.ImageTag ||
		info.ImageDigest != want.ImageDigest || info.PodName != want.PodName || info.PodUID != want.PodUID ||
		info.Namespace != want.Namespace || info.StartTime != want.StartTime || info.Runtime != want.Runtime || info.Labels["app"] != "web" {
		t.Errorf("Lookup = %+v\nwant   %+v", info, want)
	}
	c := &event.Container{ContainerInfo: info}
	if got := tab.Mode(c); got != event.ModeLearn {
		t.Errorf("mode = %q, want learn", got)
	}

	// Relabelling the namespace applies at once (no restart).
	n, _ := cs.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{})
	n.Labels[DefaultModeLabel] = "detect"
	if _, err := cs.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "detect mode", func() bool { return tab.Mode(c) == event.ModeDetect })

	// An invalid label falls back to the default.
	n.Labels[DefaultModeLabel] = "bogus"
	cs.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{})
	eventually(t, "default mode", func() bool { return tab.Mode(c) == event.ModeOff })

	// A new pod's status appearing later is picked up; a deleted pod is forgotten.
	const cid2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	cs.CoreV1().Pods("plain").Create(ctx, pod("db", "plain", "node1", cid2), metav1.CreateOptions{})
	eventually(t, "second pod", func() bool { _, ok := w.Lookup(cid2); return ok })
	cs.CoreV1().Pods("team").Delete(ctx, "web", metav1.DeleteOptions{})
	eventually(t, "pod deletion", func() bool { _, ok := w.Lookup(cid); return !ok })
}

func TestFieldSelectorIsThisNode(t *testing.T) {
	cs := fake.NewSimpleClientset()
	var mu sync.Mutex
	var selectors []string
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		selectors = append(selectors, a.(k8stesting.WatchActionImpl).GetWatchRestrictions().Fields.String())
		mu.Unlock()
		return false, nil, nil
	})
	cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		selectors = append(selectors, a.(k8stesting.ListActionImpl).GetListRestrictions().Fields.String())
		mu.Unlock()
		return false, nil, nil
	})
	var connected atomic.Bool
	w := New(cs, Options{NodeName: "node7", Logger: quiet(), OnConnected: connected.Store})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	eventually(t, "connected", connected.Load)
	mu.Lock()
	defer mu.Unlock()
	if len(selectors) == 0 {
		t.Fatal("no pod list/watch seen")
	}
	for _, s := range selectors {
		if s != "spec.nodeName=node7" {
			t.Errorf("pod request field selector %q, want spec.nodeName=node7", s)
		}
	}
}

func TestUnreachableAPIRetriesThenConnects(t *testing.T) {
	cs := fake.NewSimpleClientset(ns("a", nil))
	var failing atomic.Bool
	failing.Store(true)
	var calls atomic.Int32
	cs.PrependReactor("list", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls.Add(1)
		if failing.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	var mu sync.Mutex
	var states []bool
	w := New(cs, Options{NodeName: "n", Logger: quiet(), RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		OnConnected: func(b bool) { mu.Lock(); states = append(states, b); mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	eventually(t, "several retries", func() bool { return calls.Load() >= 4 })
	if w.Connected() {
		t.Error("connected while the API fails")
	}
	failing.Store(false)
	eventually(t, "connection", w.Connected)
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 || states[0] || !states[1] {
		t.Errorf("connectivity reports %v, want [false true] (each change once)", states)
	}
}

func TestSplitters(t *testing.T) {
	for _, tc := range []struct{ in, repo, tag string }{
		{"nginx:1.25", "nginx", "1.25"},
		{"registry:5000/app", "registry:5000/app", ""},
		{"registry:5000/app:v2", "registry:5000/app", "v2"},
		{"docker.io/library/nginx@sha256:abc", "docker.io/library/nginx", ""},
		{"", "", ""},
	} {
		if r, tg := SplitImage(tc.in); r != tc.repo || tg != tc.tag {
			t.Errorf("SplitImage(%q) = %q, %q", tc.in, r, tg)
		}
	}
	for in, want := range map[string]string{
		"docker.io/library/nginx@sha256:abc": "sha256:abc", "sha256:def": "sha256:def",
		"docker-pullable://x@sha256:1": "sha256:1", "nginx:1": "", "": "",
	} {
		if got := Digest(in); got != want {
			t.Errorf("Digest(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string][2]string{
		"containerd://abc": {"containerd", "abc"}, "cri-o://x": {"cri-o", "x"}, "abc": {"", ""}, "docker://": {"", ""},
	} {
		if rt, id := SplitContainerID(in); rt != want[0] || id != want[1] {
			t.Errorf("SplitContainerID(%q) = %q, %q", in, rt, id)
		}
	}
}
