package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/driftwatch/driftwatch/internal/testinfra"
)

// runPod creates pod name (labels optional) on node in namespace ns with one
// container of image, starts a runc container in the pod's cgroup running
// loop (standing in for the kubelet's), and writes the pod's status as the
// kubelet would: running, with the container's id and image digest
// (the image's repository @ digest).
func runPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, node, image, digest, loop string, labels map[string]string) *testinfra.Container {
	t.Helper()
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: image}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := testinfra.NewRuncContainer(t, testinfra.RuncOptions{Writable: true, PodUID: string(pod.UID),
		Args: []string{"sh", "-c", loop}})
	repo := image
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo = image[:i]
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "app", Ready: true, Image: image, ImageID: repo + "@" + digest,
		ContainerID: "containerd://" + ctr.ID(),
		State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ctr
}
