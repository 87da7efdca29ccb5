package testinfra

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftwatch/driftwatch/internal/testutil"
)

func TestKubeAPIServer(t *testing.T) {
	testutil.NeedRoot(t)
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	k := KubeAPIServer(t)
	cs := k.Clientset(t)
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dw-test"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "dw-test"},
		Spec: corev1.PodSpec{
			NodeName:   "node-a",
			Containers: []corev1.Container{{Name: "web", Image: "driftwatch.test/web:1"}},
		},
	}
	created, err := cs.CoreV1().Pods("dw-test").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	// There is no kubelet: the test writes the status a kubelet would.
	id := NewContainerID()
	created.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "web", Image: "driftwatch.test/web:1", ImageID: "sha256:" + NewContainerID(), ContainerID: "containerd://" + id,
	}}
	if _, err := cs.CoreV1().Pods("dw-test").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pod status: %v", err)
	}
	got, err := cs.CoreV1().Pods("dw-test").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].ContainerID != "containerd://"+id {
		t.Errorf("status read back = %+v", got.Status.ContainerStatuses)
	}
	if k.Kubeconfig() == "" {
		t.Errorf("no kubeconfig")
	}
}
