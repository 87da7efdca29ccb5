package bpf

// The eBPF objects are built from sensor.bpf.c by bpf2go and committed
// (sensor_x86_bpfel.go, sensor_x86_bpfel.o): building driftwatch needs no
// clang. `make generate` (generate.sh) installs clang, llvm, bpftool and
// libbpf-dev from Debian when missing, regenerates vmlinux.h from this
// machine's BTF and runs this line. Only amd64 is targeted: the syscall
// numbers and pt_regs layout in sensor.bpf.c are x86_64's.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target amd64 -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -no-global-types sensor sensor.bpf.c -- -I/usr/include/bpf -I.
