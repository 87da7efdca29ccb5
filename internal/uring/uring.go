// Package uring submits single io_uring requests (openat, connect,
// accept) with raw system calls and no library: the sensor's tests and the
// evasion suite use it to open files and make connections without the
// system calls, as an attacker avoiding syscall hooks would.
package uring

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opAccept       = 13         // IORING_OP_ACCEPT
	opConnect      = 16         // IORING_OP_CONNECT
	opOpenat       = 18         // IORING_OP_OPENAT
	enterGetEvents = 1          // IORING_ENTER_GETEVENTS
	offSQRing      = 0          // IORING_OFF_SQ_RING
	offCQRing      = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs        = 0x10000000 // IORING_OFF_SQES
	featSingleMmap = 1          // IORING_FEAT_SINGLE_MMAP
	sqeSize        = 64
	cqeSize        = 16
)

// params is struct io_uring_params.
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sq                                                                     struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cq struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// Options shape the request.
type Options struct {
	// Async (IOSQE_ASYNC) makes the kernel run the request in one of its
	// io-wq worker threads ("iou-wrk-N") instead of inline in
	// io_uring_enter.
	Async bool
	// Fixed installs the file in slot 0 of the ring's fixed-file table
	// (registered sparse first) instead of the descriptor table: the
	// process never holds a descriptor of it. O_CLOEXEC, which the kernel
	// refuses for fixed files, is dropped.
	Fixed bool
}

const (
	sqeAsync      = 1 << 4 // IOSQE_ASYNC
	registerFiles = 2      // IORING_REGISTER_FILES
)

// Openat opens path relative to dirfd with flags and mode by one io_uring
// request and returns the new descriptor (with Fixed: the slot, 0).
func Openat(dirfd int, path string, flags int, mode uint32, opt Options) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	if opt.Fixed {
		flags &^= unix.O_CLOEXEC
	}
	res, err := submit(opt, func(sqe []byte) {
		sqe[0] = opOpenat
		putU32(sqe, 4, uint32(int32(dirfd)))                // fd
		putU64(sqe, 16, uint64(uintptr(unsafe.Pointer(p)))) // addr: the path
		putU32(sqe, 24, mode)                               // len: the mode
		putU32(sqe, 28, uint32(flags))                      // open_flags
	})
	runtime.KeepAlive(p)
	if err != nil {
		return -1, fmt.Errorf("io_uring openat %q: %w", path, err)
	}
	return res, nil
}

// Connect connects socket fd to the IPv4 address to by one io_uring
// request.
func Connect(fd int, to netip.AddrPort, opt Options) error {
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: to.Addr().As4()}
	sa.Port = to.Port()<<8 | to.Port()>>8 // network byte order
	_, err := submit(opt, func(sqe []byte) {
		sqe[0] = opConnect
		putU32(sqe, 4, uint32(int32(fd)))
		putU64(sqe, 8, uint64(unsafe.Sizeof(sa)))             // addr2: the address length
		putU64(sqe, 16, uint64(uintptr(unsafe.Pointer(&sa)))) // addr: the address
	})
	runtime.KeepAlive(&sa)
	if err != nil {
		return fmt.Errorf("io_uring connect %s: %w", to, err)
	}
	return nil
}

// Accept accepts a connection on the listening socket fd by one io_uring
// request and returns the new descriptor (with Fixed: the slot, 0).
func Accept(fd int, opt Options) (int, error) {
	res, err := submit(opt, func(sqe []byte) {
		sqe[0] = opAccept
		putU32(sqe, 4, uint32(int32(fd)))
	})
	if err != nil {
		return -1, fmt.Errorf("io_uring accept: %w", err)
	}
	return res, nil
}

func putU32(b []byte, off int, v uint32) { *(*uint32)(unsafe.Pointer(&b[off])) = v }
func putU64(b []byte, off int, v uint64) { *(*uint64)(unsafe.Pointer(&b[off])) = v }

// submit sets up a ring, submits the one request fill writes into a zeroed
// SQE, waits for its completion and returns its result.
func submit(opt Options, fill func(sqe []byte)) (int, error) {
	var prm params
	r, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&prm)), 0)
	if e != 0 {
		return -1, fmt.Errorf("io_uring_setup: %w", e)
	}
	ring := int(r)
	defer unix.Close(ring)

	sqLen := int(prm.sq.array + prm.sqEntries*4)
	cqLen := int(prm.cq.cqes + prm.cqEntries*cqeSize)
	if prm.features&featSingleMmap != 0 && cqLen > sqLen {
		sqLen = cqLen
	}
	sq, err := unix.Mmap(ring, offSQRing, sqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return -1, fmt.Errorf("mmap SQ ring: %w", err)
	}
	defer unix.Munmap(sq)
	cq := sq
	if prm.features&featSingleMmap == 0 {
		if cq, err = unix.Mmap(ring, offCQRing, cqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
			return -1, fmt.Errorf("mmap CQ ring: %w", err)
		}
		defer unix.Munmap(cq)
	}
	sqes, err := unix.Mmap(ring, offSQEs, int(prm.sqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return -1, fmt.Errorf("mmap SQEs: %w", err)
	}
	defer unix.Munmap(sqes)

	u32 := func(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
	sqe := sqes[:sqeSize]
	clear(sqe)
	fill(sqe)
	putU64(sqe, 32, 1) // user_data
	if opt.Async {
		sqe[1] = sqeAsync
	}
	if opt.Fixed {
		empty := [1]int32{-1}
		if _, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(ring), registerFiles, uintptr(unsafe.Pointer(&empty[0])), 1, 0, 0); e != 0 {
			return -1, fmt.Errorf("io_uring_register files: %w", e)
		}
		putU32(sqe, 44, 1) // file_index: slot 0, plus one
	}

	tail := atomic.LoadUint32(u32(sq, prm.sq.tail))
	mask := atomic.LoadUint32(u32(sq, prm.sq.ringMask))
	*u32(sq, prm.sq.array+4*(tail&mask)) = 0
	atomic.StoreUint32(u32(sq, prm.sq.tail), tail+1)

	if _, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(ring), 1, 1, enterGetEvents, 0, 0); e != 0 {
		return -1, fmt.Errorf("io_uring_enter: %w", e)
	}
	head := atomic.LoadUint32(u32(cq, prm.cq.head))
	if head == atomic.LoadUint32(u32(cq, prm.cq.tail)) {
		return -1, fmt.Errorf("io_uring: no completion")
	}
	cqe := prm.cq.cqes + (head&atomic.LoadUint32(u32(cq, prm.cq.ringMask)))*cqeSize
	res := *(*int32)(unsafe.Pointer(&cq[cqe+8]))
	atomic.StoreUint32(u32(cq, prm.cq.head), head+1)
	if res < 0 {
		return -1, unix.Errno(-res)
	}
	return int(res), nil
}
