// Package testinfra starts real infrastructure for driftwatch's root tests
// and for recording datasets: cgroup v2 directories that stand in for
// container cgroups, a busybox root filesystem, runc containers, pairs of
// network namespaces acting as test hosts, a private containerd with images
// built by hand and pods run through the CRI, and a loopback kube-apiserver
// backed by etcd.
//
// Everything is created under temporary directories, loopback ports or
// namespaces the helper itself creates, and removed through T.Cleanup in
// reverse order. No traffic leaves the machine. The facts these helpers rely
// on (hybrid cgroups with v2 at /sys/fs/cgroup/unified, runc 1.1, containerd
// 1.6 without CNI, no CAP_SYS_RESOURCE) are listed in ../shared/INFRA.md.
//
// Every helper takes a T, which *testing.T and *testing.B satisfy; programs
// outside tests (the dataset recorder) can pass their own implementation,
// for example NewScope.
package testinfra
