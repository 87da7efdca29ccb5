// Package sensortruth holds the live tests (root, BPF, runc) that check
// that what an alert says is what the kernel did: descriptors named from
// the kernel's file objects, and reads of credential files through every
// known path trick (long ./.. paths, symlinks, /proc/self/root, dirfds,
// openat2, chroot, bind mounts, renames, /proc/PID/fd, descriptor passing)
// raising the default rule's alert with the real file's name. The tests
// run the live sensor through the same pipeline and default rules as the
// agent. See docs/sensor.md "Paths" and "Descriptors".
package sensortruth
