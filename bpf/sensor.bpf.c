//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// driftwatch's kernel sensor. CO-RE against the committed vmlinux.h; built
// by bpf2go (see gen.go, generate.sh). Layout of the records is mirrored by
// decode.go: change both together and bump EV_VERSION.
//
// Hooks (all tracepoints, no kprobes/fentry/LSM: those are refused on
// locked-down kernels):
//   tp_btf/sys_exit              every syscall's exit; one array lookup ends
//                                the program for syscalls nobody enabled.
//                                Arguments come from the pt_regs saved at
//                                entry, so no sys_enter hook and no per-task
//                                stash map are needed (see docs/sensor.md).
//   tp_btf/sched_process_exec    successful execs (new image, argv, exe facts)
//   tp_btf/sched_process_fork    new processes and threads
//   tp_btf/sched_process_exit    process and thread exits
//
// Lifecycle records go to their own ring (lifecycle_rb) so file/network
// floods in syscall_rb can never push out an exec, fork or exit. Records
// are submitted without wake-ups; the reader polls (see submit_sys).

#include "vmlinux.h"
#include <bpf_helpers.h>
#include <bpf_core_read.h>
#include <bpf_tracing.h>
#include <bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define EV_VERSION 3

// Record kinds (event.Kind).
#define KIND_SYSCALL 0
#define KIND_EXEC 1
#define KIND_FORK 2
#define KIND_EXIT 3

// Loss counter slots (lost map index); names in decode.go lostNames.
#define LOST_EXEC 0
#define LOST_FORK 1
#define LOST_EXIT 2
#define LOST_FILE 3
#define LOST_NET 4
#define LOST_PROC 5
#define LOST_SLOTS 8

// Flags2 bits (event.Flag*).
#define F_ARGV_TRUNC (1 << 0)
#define F_EXE_UPPER (1 << 1)
#define F_EXE_MEMFD (1 << 2)
#define F_PATH_TRUNC (1 << 3)
#define F_THREAD (1 << 4)
#define F_EXE_UNKNOWN (1 << 5)
#define F_RPATH_TRUNC (1 << 6) // the resolved path (R_RPATH) was cut
#define F_FILE (1 << 7)        // fd_type/file_ino/file_dev were read from the kernel
#define F_ENV_TRUNC (1 << 8)   // the environment was longer than ENV_LEN
#define F_IO_URING (1 << 9)    // done by io_uring (a request, not a system call)
#define F_URING_FIXED (1 << 10) // io_uring installed the file in the ring's fixed-file table: ret is its index

// String regions (index into off[]/len[]), mapped to event.Event fields.
#define R_PATH 0
#define R_PATH2 1
#define R_UNIX 2
#define R_EXE 3
#define R_CWD 4
#define R_ARGV 5
#define R_RPATH 6 // the kernel's path of the opened file (dentry + mount walk)
#define R_COUNT 7

#define PATH_MAX_LEN 4096 // PATH_MAX: user path strings and resolved paths
#define PATH_LEN 512      // longest path hashed for deduplication
#define SMALL_PATH 64 // size classes of one-path records
#define MID_PATH 256
#define UNIX_LEN 128  // sockaddr_un path (108) rounded up
#define ARGV_LEN 4096 // argv bytes
#define ENV_LEN 4096  // environment bytes (exec)
#define NAME_LEN 256  // one path component
#define WALK_STEPS 2176 // dentry walk bound: a 4096-byte path has at most 2048
                        // components, plus mount crossings

#define NR_SYSCALLS 512

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define TS_COMPAT 0x0002
#define AT_FDCWD -100

// x86_64 syscall numbers (event/syscalls.go).
#define NR_open 2
#define NR_creat 85
#define NR_open_by_handle_at 304
#define NR_fcntl 72
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030
#define NR_socket 41
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_bind 49
#define NR_listen 50
#define NR_execve 59
#define NR_chdir 80
#define NR_fchdir 81
#define NR_rename 82
#define NR_mkdir 83
#define NR_link 86
#define NR_unlink 87
#define NR_symlink 88
#define NR_chmod 90
#define NR_fchmod 91
#define NR_ptrace 101
#define NR_setuid 105
#define NR_setgid 106
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_capset 126
#define NR_mount 165
#define NR_umount2 166
#define NR_init_module 175
#define NR_openat 257
#define NR_mkdirat 258
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_fchmodat 268
#define NR_unshare 272
#define NR_accept4 288
#define NR_dup 32
#define NR_dup2 33
#define NR_dup3 292
#define NR_setns 308
#define NR_finit_module 313
#define NR_renameat2 316
#define NR_memfd_create 319
#define NR_execveat 322
#define NR_openat2 437
#define NR_bpf 321
#define NR_userfaultfd 323
#define NR_fchmodat2 452
#define PF_IO_WORKER 0x00000010
#define IORING_OP_ACCEPT 13
#define IORING_OP_CONNECT 16
#define IORING_OP_OPENAT 18
#define IORING_OP_OPENAT2 28

// Fixed record header: 296 bytes, little endian, mirrored in decode.go.
struct ev_hdr {
	__u64 ts;        // 0   bpf_ktime_get_boot_ns
	__u64 cgroup_id; // 8
	__u64 cap_eff;   // 16
	__s64 ret;       // 24
	__u64 raw[6];    // 32
	__u64 arg3;      // 80
	__u64 exe_ino;   // 88
	__s64 exe_ctime; // 96  ns since epoch
	__s64 exe_mtime; // 104
	__u32 pid;       // 112
	__u32 tid;       // 116
	__u32 ppid;      // 120
	__u32 uid;       // 124
	__u32 gid;       // 128
	__u32 euid;      // 132
	__u32 egid;      // 136
	__u32 loginuid;  // 140
	__u32 pidns;     // 144
	__u32 mntns;     // 148
	__u32 tty;       // 152 new_encode_dev, as /proc/PID/stat tty_nr
	__u32 flags;     // 156
	__u32 mode;      // 160
	__s32 fd;        // 164
	__s32 fd2;       // 168
	__u32 flags2;    // 172
	__u32 exe_dev;   // 176 kernel dev_t (MAJOR<<20|MINOR)
	__u32 child_pid; // 180
	__u32 child_tid; // 184
	__u16 syscall;   // 188
	__u16 cpu;       // 190
	__u8 kind;       // 192
	__u8 sock_type;  // 193
	__u16 family;    // 194
	__u8 proto;      // 196
	__u8 version;    // 197
	__u16 sport;     // 198 host order
	__u16 dport;     // 200
	__u16 off[R_COUNT]; // 202 region offsets from the record start
	__u16 len[R_COUNT]; // 216 region lengths (bytes used)
	__u8 fd_type;       // 230 S_IFMT>>12 of the descriptor's inode (F_FILE), FT_ANON
	__u8 pad;           // 231
	__u8 saddr[16];     // 232 IPv4 in the first 4 bytes
	__u8 daddr[16];     // 248
	__u8 comm[16];      // 264
	__u64 file_ino;     // 280 inode of the descriptor's file (F_FILE)
	__u32 file_dev;     // 288 its kernel dev_t
	__u32 pad2;         // 292
	// exec: the new image's task; fork: the child's (like child_pid)
	__u32 vpid;    // 296 tgid in the task's own pid namespace
	__u32 vtid;    // 300 tid in it
	__u32 vpgid;   // 304 process group id in it (0: the group is outside it)
	__u16 env_off; // 308 environment region (exec), NUL-separated
	__u16 env_len; // 310
	__u64 cap_prm; // 312 permitted capabilities
	__u64 cap_inh; // 320 inheritable capabilities
};                     // 328

#define FT_ANON 15 // an inode without a type (anonymous inodes)

#define HDR_SIZE 328
#define REC_PLAIN HDR_SIZE
#define REC_NET (HDR_SIZE + UNIX_LEN)
// Records with paths are built in a per-CPU buffer (rec_map) and copied
// to the ring with their exact size: up to four PATH_MAX regions.
#define REC_MAX (HDR_SIZE + 5 * PATH_MAX_LEN)

_Static_assert(sizeof(struct ev_hdr) == HDR_SIZE, "ev_hdr layout");

// BTF anchor: an unused global pointer puts struct ev_hdr into the
// object's BTF (nothing else in the programs' types names it), where
// bpf/layout_test.go checks decode.go's offsets against it without root.
const struct ev_hdr *const dw_ev_hdr_btf __attribute__((unused)) = 0;

// Set by the loader before load.
const volatile __u32 ignore_tgid = 0;         // the sensor's own process
const volatile __u32 only_tgid = 0;           // non-zero: report only this process's syscalls
const volatile __u64 dedup_window_ns = 0;     // 0: no deduplication
const volatile __u64 dedup_window_jiffies = 0; // the same window in jiffies (see dedup_now)
const volatile __u64 dedup_k0 = 0, dedup_k1 = 0; // SipHash key, random per load

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); // rides out ~200 ms reader stalls at 100k events/s (docs/sensor.md)
} syscall_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} lifecycle_rb SEC(".maps");

// Per-syscall enable switch, filled from userspace: nonzero = report.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} syscall_enable SEC(".maps");

// Failed ring reservations per LOST_* slot.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

// In-kernel deduplication (docs/sensor.md "Deduplication"): an event whose
// key was delivered less than dedup_window_ns ago, in the current
// generation, is counted in dedup_count instead of delivered. The key holds
// everything that distinguishes what a rule or profile sees: process,
// credentials, syscall, result class, flags, mode and the path (its length
// and a keyed SipHash of its bytes) or the peer/local addresses.
#define DEDUP_PATH 64 // path bytes kept in the key itself (most paths)
struct dedup_key {
	__u64 path[DEDUP_PATH / 8]; // opens: the path's first bytes, zero-padded
	__u64 hash;     // SipHash-1-3 of a longer path
	__u64 root;     // opens: inode number of the process's root directory ...
	__u64 rootmnt;  // ... its device, and the mount namespace: chroot/setns make new keys
	__u64 ino;      // opens: the opened file's inode ...
	__u64 dev;      // ... and device: a retargeted symlink or a renamed file makes a new key
	__u32 tgid;
	__u32 uid;
	__u32 euid;
	__u32 flags;    // open flags / socket type and flags / accept4 flags
	__u32 mode;     // open mode / socket protocol argument
	__s32 ret;      // errno of a failure, 0 for any success
	__u32 len;      // path length
	__u32 nr;
};

// The "seen" table is a per-CPU direct-mapped cache: a key's slot is
// picked by a hash of the key, and the slot holds the whole key, so two
// keys are only ever merged when they are equal. A colliding key just
// replaces the slot (that key's next event is delivered again). Per CPU,
// nothing is shared or locked; a process that moves to another CPU has its
// next event delivered there once. (An LRU hash map measured slower: every
// delivered event of a new key inserts, and a full LRU evicts under a lock.)
#define DEDUP_SLOTS 4096
// SEEN_TABLE declares a "seen" table: the slot type (the key, then the
// jiffies (dedup_now) and generation (dedup_gen) of the key's last
// delivered event: the layout seen_in and mark_slot rely on) and its
// per-CPU direct-mapped array of DEDUP_SLOTS slots.
#define SEEN_TABLE(slot_type, key_type, map_name)                                                                 \
	struct slot_type {                                                                                        \
		struct key_type k;                                                                                \
		__u64 ts;                                                                                         \
		__u32 gen;                                                                                        \
		__u32 pad;                                                                                        \
	};                                                                                                        \
	struct {                                                                                                  \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                                          \
		__uint(max_entries, DEDUP_SLOTS);                                                                 \
		__type(key, __u32);                                                                               \
		__type(value, struct slot_type);                                                                  \
	} map_name SEC(".maps")

SEEN_TABLE(dedup_slot, dedup_key, dedup);

// Repeats of successful opens are recognised by the opened file's
// identity, a key of its own (72 bytes instead of dedup_key's 168): it is
// built, hashed and compared on every open of the open storm, so every
// word counts. Same direct-mapped per-CPU scheme as dedup.
struct file_key {
	__u64 ino;     // the opened file's inode ...
	__u64 name;    // ... the hash and length of its name (d_name.hash_len) ...
	__u64 parent;  // ... its directory's inode
	__u64 root;    // the process's root directory inode ...
	__u64 rootmnt; // ... its device, and the mount namespace << 32
	__u32 dev;     // the file's device
	__u32 mnt_id;  // the mount it was opened on (pointers may not be hashed)
	__u32 tgid;
	__u32 uid;
	__u32 euid;
	__u32 flags;   // open flags
	__u32 mode;    // open mode
	__u32 nr;      // the syscall
};
_Static_assert(sizeof(struct file_key) == 72, "file_key layout");
_Static_assert(sizeof(struct file_key) % 8 == 0, "file_key is compared in words");

SEEN_TABLE(file_slot, file_key, dedup_file);

// Repeats of socket(2), connect(2) and accept(2) have a key of their own
// (72 bytes): the socket's addresses, family, type and protocol, the
// process and credentials, flags and the result class. A successful
// connect or accept is keyed by what the kernel's socket holds, so a
// repeat is recognised inline in dw_sys_exit without reading user memory
// (net_repeat). Same direct-mapped per-CPU scheme as dedup.
struct net_key {
	__u8 addr[16];  // connect: peer address; accept: local address
	__u8 addr2[16]; // connect: local address; accept: client address
	__u64 hash;     // AF_UNIX: SipHash-1-3 of the path passed
	__u32 tgid;
	__u32 uid;
	__u32 euid;
	__u32 flags;    // socket type and flags / accept4 flags
	__u32 mode;     // socket protocol argument
	__u32 fam;      // family | type << 16 | protocol << 24
	__u16 nr;
	__u16 port;     // connect: peer port; accept: local port (ephemeral ports are left out)
	__s32 ret;      // errno of a failure, 0 for any success
};
_Static_assert(sizeof(struct net_key) == 72, "net_key layout");

SEEN_TABLE(net_slot, net_key, dedup_net);

// dedup_gen[0]: bumped by userspace (Sensor.ResetDedup) to forget every key.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} dedup_gen SEC(".maps");

// Deduplicated (not delivered) events per LOST_* slot.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} dedup_count SEC(".maps");

// Scratch space for building paths backwards (dentry walk) and for socket
// addresses: the walk writes [pos, PATH_MAX_LEN), a name of up to NAME_LEN
// bytes may start just below PATH_MAX_LEN.
struct walk {
	__u64 d;        // current dentry
	__u64 m;        // current struct mount
	__u64 root_d;   // the process's root dentry ...
	__u64 root_sb;  // ... and its filesystem
	__u32 pos;      // the path built so far is scratch[pos, PATH_MAX_LEN)
	__u32 done;     // reached the top of the mount tree (or a detached root)
	__u32 trunc;    // ran out of room
	__u32 beneath;  // climbing past a bind mount's root within its filesystem
	__u32 save_pos; // pos where that climb began
	__u32 anon;     // a nameless pseudo file (pipe, socket, anon inode): no path
};

struct scratch {
	char buf[2 * PATH_MAX_LEN];
	// The walk's state lives here, not on the stack: the verifier then
	// knows nothing about its values and checks the step once.
	struct walk w;
	// sys_p1's deduplication keys: off its stack, which dw_sys_exit's
	// inline repeat check shares (512 bytes for the whole call chain).
	struct dedup_key dk;
	struct file_key fk;
};

// Per-CPU scratch: slot 0 for the lifecycle programs, 1 for sys_exit.
#define SCRATCH_LIFECYCLE 0
#define SCRATCH_SYSCALL 1
#define SCRATCH_URING 2
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

// Per-CPU record buffers (same slots as scratch_map): records with path
// regions are assembled here and copied into the ring with their exact
// size, so no ring byte of an earlier record survives in a new one.
struct recbuf {
	char b[REC_MAX];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct recbuf);
} rec_map SEC(".maps");

// bpf_rdonly_cast turns an address into a read-only BTF pointer, so the
// fields behind it are read with plain loads instead of one
// bpf_probe_read_kernel call each. The verifier inlines it to a move.
extern void *bpf_rdonly_cast(const void *obj__ign, __u32 btf_id__k) __ksym;

static __always_inline void count_lost(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&lost, &slot);
	if (v)
		*v += 1;
}

// ------------------------------------------------------------ deduplication

#define ROTL(x, b) (__u64)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                        \
	do {                                                                                                            \
		v0 += v1;                                                                                               \
		v1 = ROTL(v1, 13);                                                                                      \
		v1 ^= v0;                                                                                               \
		v0 = ROTL(v0, 32);                                                                                      \
		v2 += v3;                                                                                               \
		v3 = ROTL(v3, 16);                                                                                      \
		v3 ^= v2;                                                                                               \
		v0 += v3;                                                                                               \
		v3 = ROTL(v3, 21);                                                                                      \
		v3 ^= v0;                                                                                               \
		v2 += v1;                                                                                               \
		v1 = ROTL(v1, 17);                                                                                      \
		v1 ^= v2;                                                                                               \
		v2 = ROTL(v2, 32);                                                                                      \
	} while (0)

// siphash13 is SipHash-1-3 (one compression, three finalization rounds, as
// the kernel's hsiphash on 64-bit) of the n bytes at buf (n <= PATH_LEN),
// keyed with the random per-load key: without the key nobody can choose a
// path that collides with another one.
static __always_inline __u64 siphash13(const char *buf, long n)
{
	__u64 v0 = dedup_k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = dedup_k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = dedup_k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = dedup_k1 ^ 0x7465646279746573ULL;
	__u64 last = (__u64)n << 56;
	for (int i = 0; i < PATH_LEN / 8; i++) {
		long off = i * 8;
		if (off >= n)
			break;
		__u64 m = *(const __u64 *)(buf + off);
		long rem = n - off;
		if (rem < 8) {
			// the tail goes into the last block with the length
			last |= m & ((1ULL << ((rem & 7) * 8)) - 1);
			break;
		}
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	v3 ^= last;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static __always_inline __u32 dedup_generation(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&dedup_gen, &zero);
	return g ? *g : 0;
}

#define DEDUP_KEY_WORDS (sizeof(struct dedup_key) / 8)
#define FILE_KEY_WORDS (sizeof(struct file_key) / 8)
#define NET_KEY_WORDS (sizeof(struct net_key) / 8)
_Static_assert(sizeof(struct dedup_key) % 8 == 0, "dedup_key is compared in words");

// The three "seen" tables share one slot layout (SEEN_TABLE); words is a
// constant at every call below.

// spread picks a key's slot: a cheap spread of its words (a collision
// only evicts: the evicted key's next event is delivered, so it need not
// resist anyone).
static __always_inline __u32 spread(const __u64 *w, const int words)
{
	__u64 x = 0;
#pragma unroll
	for (int i = 0; i < words; i++)
		x += w[i] ^ (w[i] >> 29);
	x *= 0x9E3779B97F4A7C15ULL;
	return (x >> 40) & (DEDUP_SLOTS - 1);
}

// slot_hit reports whether the stored key b equals the key a and, if so,
// counts the repeat under slot (the dedup_count index of the event's kind).
static __always_inline int slot_hit(const __u64 *a, const __u64 *b, const int words, __u32 slot)
{
#pragma unroll
	for (int i = 0; i < words; i++)
		if (a[i] != b[i])
			return 0;
	__u64 *c = bpf_map_lookup_elem(&dedup_count, &slot);
	if (c)
		*c += 1;
	return 1;
}

// seen_in reports whether key k, whose slot is d, was delivered within the
// window in this generation on this CPU; if so the event is counted (slot)
// and must not be delivered.
static __always_inline int seen_in(const __u64 *k, const __u64 *d, const int words, __u64 now, __u32 gen, __u32 slot)
{
	if (!d || *(const __u32 *)&d[words + 1] != gen || now - d[words] >= dedup_window_jiffies)
		return 0;
	return slot_hit(k, d, words, slot);
}

// mark_slot records in d (k's slot) that k was delivered at now. Called
// only once the record is reserved, so a lost record never hides the next.
static __always_inline void mark_slot(void *d, const void *k, const int words, __u64 now, __u32 gen)
{
	if (!d)
		return;
	__u64 *dw = d;
	const __u64 *kw = k;
#pragma unroll
	for (int i = 0; i < words; i++)
		dw[i] = kw[i];
	dw[words] = now;
	*(__u32 *)&dw[words + 1] = gen;
}

// dedup_seen: the path key k (*sp: its slot, for mark_slot).
static __always_inline int dedup_seen(const struct dedup_key *k, __u64 now, __u32 gen, __u32 slot,
				      struct dedup_slot **sp)
{
	__u32 idx = spread((const __u64 *)k, DEDUP_KEY_WORDS);
	struct dedup_slot *d = bpf_map_lookup_elem(&dedup, &idx);
	*sp = d;
	return seen_in((const __u64 *)k, (const __u64 *)d, DEDUP_KEY_WORDS, now, gen, slot);
}

// file_seen: the file identity key k.
static __always_inline int file_seen(const struct file_key *k, __u64 now, __u32 gen, __u32 slot,
				     struct file_slot **sp)
{
	// the slot: a spread of the words that vary most between opens
	__u64 x = k->ino ^ (k->name * 0x9E3779B97F4A7C15ULL) ^ ((__u64)k->tgid << 32) ^ k->flags;
	x *= 0x9E3779B97F4A7C15ULL;
	__u32 idx = (x >> 40) & (DEDUP_SLOTS - 1);
	struct file_slot *d = bpf_map_lookup_elem(&dedup_file, &idx);
	*sp = d;
	return seen_in((const __u64 *)k, (const __u64 *)d, FILE_KEY_WORDS, now, gen, slot);
}

// net_seen: the socket key k.
static __always_inline int net_seen(const struct net_key *k, __u64 now, __u32 gen, struct net_slot **sp)
{
	__u32 idx = spread((const __u64 *)k, NET_KEY_WORDS);
	struct net_slot *d = bpf_map_lookup_elem(&dedup_net, &idx);
	*sp = d;
	return seen_in((const __u64 *)k, (const __u64 *)d, NET_KEY_WORDS, now, gen, LOST_NET);
}

// dedup_now is the clock of the deduplication windows: jiffies, which
// the verifier inlines to one load. bpf_ktime_get_boot_ns reads the
// hardware clock, measured ~40 ns per call on the reference VM: on every
// repeat that was a fifth of the program's cost above the bare hook
// (docs/sensor.md "Overhead"). The loader converts the window with the
// kernel's HZ (bpf.Open); records still carry boot ns.
static __always_inline __u64 dedup_now(void)
{
	return bpf_jiffies64();
}

static __always_inline __u32 new_encode_dev(__u32 major, __u32 minor)
{
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
}

// fill_task fills identity and credentials of the current task t.
static __always_inline void fill_task(struct ev_hdr *h, struct task_struct *t, __u8 kind, __u64 now)
{
	// Plain BTF loads where a helper would do the same walk: each helper
	// call saved is ~10 ns on every event.
	h->version = EV_VERSION;
	h->kind = kind;
	h->ts = now;
	h->cpu = bpf_get_smp_processor_id();
	h->cgroup_id = t->cgroups->dfl_cgrp->kn->id; // = bpf_get_current_cgroup_id()
	h->pid = t->tgid;
	h->tid = t->pid;
	__builtin_memcpy(h->comm, t->comm, sizeof(h->comm));

	const struct cred *c = t->cred;
	h->uid = c->uid.val;
	h->gid = c->gid.val;
	h->euid = c->euid.val;
	h->egid = c->egid.val;
	h->cap_eff = c->cap_effective.val;
	h->ppid = t->real_parent->tgid;
	h->loginuid = t->loginuid.val;

	struct nsproxy *ns = t->nsproxy;
	if (ns) {
		h->mntns = ns->mnt_ns->ns.inum;
		h->pidns = ns->pid_ns_for_children->ns.inum;
	}
	struct pid *p = t->thread_pid;
	if (p) {
		unsigned int level = p->level;
		if (level < 32) {
			// The task's own pid namespace is numbers[level] (struct
			// pid ends in a flexible array: cast past its BTF size).
			unsigned long addr = (unsigned long)p + bpf_core_field_offset(struct pid, numbers) +
					     level * bpf_core_type_size(struct upid);
			struct upid *up = bpf_rdonly_cast((void *)addr, bpf_core_type_id_kernel(struct upid));
			struct pid_namespace *pns = up->ns;
			if (pns)
				h->pidns = pns->ns.inum;
		}
	}
	struct tty_struct *tty = t->signal->tty;
	if (tty) {
		struct tty_driver *drv = tty->driver;
		h->tty = new_encode_dev(drv->major, drv->minor_start + tty->index);
	}
}

// pid_nr_in returns p's number in the pid namespace ns at level (pid_nr_ns),
// 0 when p is not visible there.
static __always_inline __u32 pid_nr_in(struct pid *p, unsigned int level, struct pid_namespace *ns)
{
	if (!p || level >= 32 || p->level < level)
		return 0;
	// struct pid ends in a flexible array: cast past its BTF size.
	unsigned long addr =
		(unsigned long)p + bpf_core_field_offset(struct pid, numbers) + level * bpf_core_type_size(struct upid);
	struct upid *up = bpf_rdonly_cast((void *)addr, bpf_core_type_id_kernel(struct upid));
	if (up->ns != ns)
		return 0;
	return up->nr;
}

// fill_vids fills the virtual ids of task t (its pid, tid and process group
// in its own pid namespace, as getpid/gettid/getpgrp inside it return) and
// its permitted and inheritable capabilities.
static __always_inline void fill_vids(struct ev_hdr *h, struct task_struct *t)
{
	struct pid *tp = t->thread_pid;
	if (tp) {
		unsigned int level = tp->level;
		if (level < 32) {
			unsigned long addr = (unsigned long)tp + bpf_core_field_offset(struct pid, numbers) +
					     level * bpf_core_type_size(struct upid);
			struct upid *up = bpf_rdonly_cast((void *)addr, bpf_core_type_id_kernel(struct upid));
			struct pid_namespace *ns = up->ns;
			h->vtid = up->nr;
			struct signal_struct *sig = t->signal;
			h->vpid = pid_nr_in(sig->pids[PIDTYPE_TGID], level, ns);
			h->vpgid = pid_nr_in(sig->pids[PIDTYPE_PGID], level, ns);
		}
	}
	const struct cred *c = t->cred;
	h->cap_prm = c->cap_permitted.val;
	h->cap_inh = c->cap_inheritable.val;
}

// clear_hdr zeroes the whole header, padding included: ring memory holds
// the bytes of earlier records, and every field a program does not set
// must read as zero (an unset tty once showed another record's path bytes).
static __always_inline void clear_hdr(struct ev_hdr *h)
{
	__builtin_memset(h, 0, HDR_SIZE);
}

// clamp_path bounds a length to [0, PATH_MAX_LEN] where the verifier can
// see it.
static __always_inline __u32 clamp_path(long n)
{
	__u32 v = n < 0 ? 0 : n;
	if (v > PATH_MAX_LEN)
		v = PATH_MAX_LEN;
	asm volatile("" : "+r"(v));
	if (v > PATH_MAX_LEN)
		v = PATH_MAX_LEN;
	return v;
}

// rec_user_str reads a user string of up to PATH_MAX_LEN bytes into the
// record buffer at off as region r, and returns the offset after it (the
// NUL is not kept). A string that fills PATH_MAX_LEN is marked cut.
static __always_inline __u32 rec_user_str(struct ev_hdr *h, int r, __u32 off, const void *src)
{
	if (off > HDR_SIZE + 3 * PATH_MAX_LEN)
		return off;
	h->off[r] = off;
	if (!src)
		return off;
	long n = bpf_probe_read_user_str((char *)h + off, PATH_MAX_LEN, src);
	if (n <= 1)
		return off;
	if (n >= PATH_MAX_LEN)
		h->flags2 |= F_PATH_TRUNC;
	__u32 len = clamp_path(n - 1);
	h->len[r] = len;
	return off + len;
}

// rec_kernel_str is rec_user_str for a kernel string.
static __always_inline __u32 rec_kernel_str(struct ev_hdr *h, int r, __u32 off, const void *src)
{
	if (off > HDR_SIZE + 3 * PATH_MAX_LEN)
		return off;
	h->off[r] = off;
	if (!src)
		return off;
	long n = bpf_probe_read_kernel_str((char *)h + off, PATH_MAX_LEN, src);
	if (n <= 1)
		return off;
	if (n >= PATH_MAX_LEN)
		h->flags2 |= F_PATH_TRUNC;
	__u32 len = clamp_path(n - 1);
	h->len[r] = len;
	return off + len;
}

// rec_buf returns this CPU's record buffer of slot with a zeroed header.
static __always_inline struct ev_hdr *rec_buf(__u32 slot)
{
	struct ev_hdr *h = bpf_map_lookup_elem(&rec_map, &slot);
	if (h)
		__builtin_memset(h, 0, HDR_SIZE);
	return h;
}

// rec_submit copies the first size bytes of the record buffer into ring rb.
static __always_inline void rec_submit(void *rb, struct ev_hdr *h, __u32 size, __u32 lostslot)
{
	if (size < HDR_SIZE)
		size = HDR_SIZE;
	if (size > REC_MAX)
		size = REC_MAX;
	asm volatile("" : "+r"(size));
	if (size > REC_MAX)
		return;
	if (bpf_ringbuf_output(rb, h, size, BPF_RB_NO_WAKEUP))
		count_lost(lostslot);
}

// ---------------------------------------------------------------- exe facts

static __always_inline __s64 ts_ns(__s64 sec, __u32 nsec)
{
	// Multigrain timestamps keep a "queried" flag in bit 31 of the ctime
	// nanoseconds (I_CTIME_QUERIED); nanoseconds never exceed 30 bits.
	return sec * 1000000000LL + (nsec & 0x3fffffff);
}

struct inode___pre611 {
	struct timespec64 i_ctime;
	struct timespec64 i_mtime;
};

static __always_inline void exe_facts(struct ev_hdr *h, struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	if (!ino) {
		h->flags2 |= F_EXE_UNKNOWN;
		return;
	}
	h->exe_ino = BPF_CORE_READ(ino, i_ino);
	h->exe_dev = BPF_CORE_READ(ino, i_sb, s_dev);
	if (bpf_core_field_exists(ino->i_ctime_sec)) {
		h->exe_ctime = ts_ns(BPF_CORE_READ(ino, i_ctime_sec), BPF_CORE_READ(ino, i_ctime_nsec));
		h->exe_mtime = ts_ns(BPF_CORE_READ(ino, i_mtime_sec), BPF_CORE_READ(ino, i_mtime_nsec));
	} else {
		struct inode___pre611 *old = (void *)ino;
		if (bpf_core_field_exists(old->i_ctime)) {
			h->exe_ctime = ts_ns(BPF_CORE_READ(old, i_ctime.tv_sec), BPF_CORE_READ(old, i_ctime.tv_nsec));
			h->exe_mtime = ts_ns(BPF_CORE_READ(old, i_mtime.tv_sec), BPF_CORE_READ(old, i_mtime.tv_nsec));
		}
	}
	unsigned long magic = BPF_CORE_READ(ino, i_sb, s_magic);
	if (magic == OVERLAYFS_SUPER_MAGIC) {
		// struct ovl_inode keeps __upperdentry right after the VFS
		// inode: non-NULL means the file lives on (or was copied up
		// to) the upper, writable layer. Same test as Falco.
		struct dentry *upper = 0;
		bpf_probe_read_kernel(&upper, sizeof(upper), (void *)ino + bpf_core_type_size(struct inode));
		if (upper)
			h->flags2 |= F_EXE_UPPER;
	}
	// memfd: the dentry name starts with "memfd:".
	char pfx[6] = {};
	const unsigned char *name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	bpf_probe_read_kernel(pfx, sizeof(pfx), name);
	if (pfx[0] == 'm' && pfx[1] == 'e' && pfx[2] == 'm' && pfx[3] == 'f' && pfx[4] == 'd' && pfx[5] == ':')
		h->flags2 |= F_EXE_MEMFD;
}

// The dentry walk (resolve_path) runs under bpf_loop, one component per
// step, so that paths of PATH_MAX bytes (up to 2048 components) are
// resolved whole; the verifier checks one step, not thousands.
//
// It climbs dentries and, at a mount's root, continues at the mount point
// in the parent mount, up to the top of the mount namespace (not to the
// process's root: a chroot must not rename a file). One exception names
// the file behind a bind mount: at the root of a mount that binds a
// subtree of the filesystem the process's root lives on, the walk first
// climbs on within that filesystem; when it meets the process's root the
// path is complete (a bind of /etc at /mnt/e reads /etc/shadow, not
// /mnt/e/shadow). When it does not, the bytes written meanwhile are
// dropped and the walk continues at the mount point as usual.

// walk_name prepends "/" and d's name; returns 1 when out of room.
static __always_inline int walk_name(struct walk *w, struct scratch *s, struct dentry *d)
{
	__u32 len = d->d_name.len;
	const unsigned char *name = d->d_name.name;
	if (len > NAME_LEN - 1)
		len = NAME_LEN - 1;
	asm volatile("" : "+r"(len));
	__u32 pos = w->pos;
	if (pos > PATH_MAX_LEN)
		return 1;
	if (len + 1 > pos) {
		w->trunc = 1;
		return 1;
	}
	pos -= len + 1;
	pos &= PATH_MAX_LEN - 1;
	s->buf[pos] = '/';
	bpf_probe_read_kernel(&s->buf[(pos + 1) & (PATH_MAX_LEN - 1)], len & (NAME_LEN - 1), name);
	w->pos = pos;
	return 0;
}

// walk_hop continues the walk at mount m's mount point; 1 at the top.
static __always_inline long walk_hop(struct walk *w, struct mount *m)
{
	struct mount *mp = m->mnt_parent;
	if (m == mp || !mp) {
		w->done = 1;
		return 1;
	}
	w->d = (__u64)m->mnt_mountpoint;
	w->m = (__u64)mp;
	return 0;
}

static long walk_step(__u64 i, __u32 *slot)
{
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, slot);
	if (!s)
		return 1;
	struct walk *w = &s->w;
	struct dentry *d = bpf_rdonly_cast((void *)w->d, bpf_core_type_id_kernel(struct dentry));
	struct mount *m = bpf_rdonly_cast((void *)w->m, bpf_core_type_id_kernel(struct mount));
	if (!d || !m)
		return 1;
	struct dentry *parent = d->d_parent;
	if (w->beneath) {
		if ((__u64)d == w->root_d) {
			w->done = 1;
			return 1;
		}
		if (d == parent) {
			// the filesystem's root, and no process root on the way:
			// undo, and leave the bind mount by its mount point
			w->pos = w->save_pos;
			w->beneath = 0;
			return walk_hop(w, m);
		}
		if (walk_name(w, s, d))
			return 1;
		w->d = (__u64)parent;
		return 0;
	}
	if (d == m->mnt.mnt_root) {
		struct super_block *sb = m->mnt.mnt_sb;
		if (sb && d != sb->s_root && (__u64)sb == w->root_sb && w->root_d) {
			if ((__u64)d == w->root_d) {
				w->done = 1; // the process's root itself
				return 1;
			}
			w->beneath = 1;
			w->save_pos = w->pos;
			return 0; // next step: d's name, then up within sb
		}
		return walk_hop(w, m);
	}
	int detached = d == parent;
	if (detached) {
		// A root outside any mount tree (memfd, anon inode): its name
		// ("memfd:x") is the whole path.
		char c = 0;
		bpf_probe_read_kernel(&c, 1, d->d_name.name);
		if (c == '/' || d->d_name.len == 0) {
			// named only by d_dname ("pipe:[N]"): no path
			w->done = 1;
			w->anon = w->pos == PATH_MAX_LEN;
			return 1;
		}
	}
	if (walk_name(w, s, d))
		return 1;
	if (detached) {
		w->done = 1;
		// a dentry disconnected from its tree (a file opened by a
		// handle that was not in the cache): its directories are not
		// known, the path is only the name
		if (d->d_flags & DCACHE_DISCONNECTED)
			w->trunc = 1;
		return 1;
	}
	w->d = (__u64)parent;
	return 0;
}

// resolve_path writes the kernel's absolute path of the file at
// dentry/vm (see struct walk) into the record at off as region r and
// returns the offset after it. A path longer than PATH_MAX_LEN keeps its
// last bytes and is marked F_RPATH_TRUNC. slot selects the scratch.
static __always_inline __u32 resolve_path(struct ev_hdr *h, struct task_struct *t, int r, __u32 off,
					  struct dentry *dentry, struct vfsmount *vm, __u32 slot)
{
	if (off > HDR_SIZE + 3 * PATH_MAX_LEN)
		return off;
	h->off[r] = off;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &slot);
	if (!s || !dentry || !vm)
		return off;
	struct walk *w = &s->w;
	__builtin_memset(w, 0, sizeof(*w));
	w->d = (__u64)dentry;
	w->m = (__u64)vm - bpf_core_field_offset(struct mount, mnt);
	w->pos = PATH_MAX_LEN;
	struct fs_struct *fs = t->fs;
	if (fs) {
		w->root_d = (__u64)fs->root.dentry;
		struct vfsmount *rm = fs->root.mnt;
		if (rm)
			w->root_sb = (__u64)rm->mnt_sb;
	}
	__u32 key = slot;
	bpf_loop(WALK_STEPS, walk_step, &key, 0);
	__u32 pos = w->pos;
	if (w->anon)
		return off;
	if (!w->done || w->trunc)
		h->flags2 |= F_RPATH_TRUNC;
	if (pos >= PATH_MAX_LEN) {
		// the file is the root itself
		s->buf[PATH_MAX_LEN - 1] = '/';
		pos = PATH_MAX_LEN - 1;
	}
	__u32 n = clamp_path(PATH_MAX_LEN - pos);
	bpf_probe_read_kernel((char *)h + off, n, &s->buf[pos & (PATH_MAX_LEN - 1)]);
	h->len[r] = n;
	return off + n;
}

// file_facts records the type, inode and device of the descriptor's file.
static __always_inline void file_facts(struct ev_hdr *h, struct file *f)
{
	if (!f)
		return;
	struct inode *ino = f->f_inode;
	if (!ino)
		return;
	__u8 ty = (ino->i_mode & S_IFMT) >> 12;
	h->fd_type = ty ? ty : FT_ANON;
	h->file_ino = ino->i_ino;
	h->file_dev = ino->i_sb->s_dev;
	h->flags2 |= F_FILE;
}

// file_of returns task t's struct file of descriptor fd, or NULL.
static __always_inline struct file *file_of(struct task_struct *t, long fd)
{
	if (fd < 0)
		return 0;
	struct files_struct *files = t->files;
	if (!files)
		return 0;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return 0;
	// fdt->fd[fd] with a plain load instead of a bpf_probe_read_kernel
	// call (measured ~20 ns on every open): the slot is read through a
	// type whose first member is a struct file pointer (struct kiocb's
	// ki_filp has been first since 2.6), so the verifier makes it a
	// fault-safe load.
	unsigned long slotaddr = (unsigned long)fdt->fd + fd * sizeof(void *);
	struct file *fp = 0;
	if (bpf_core_field_offset(struct kiocb, ki_filp) == 0) {
		struct kiocb *slot = bpf_rdonly_cast((void *)slotaddr, bpf_core_type_id_kernel(struct kiocb));
		fp = slot->ki_filp;
	} else {
		bpf_probe_read_kernel(&fp, sizeof(fp), (void *)slotaddr);
		fp = bpf_rdonly_cast(fp, bpf_core_type_id_kernel(struct file));
	}
	if (!fp)
		return 0;
	return fp;
}

// sock_of_file returns the struct sock of a socket file, or NULL.
static __always_inline struct sock *sock_of_file(struct file *f)
{
	if (!f)
		return 0;
	struct inode *ino = f->f_inode;
	if (!ino || (ino->i_mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *so = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	if (!so)
		return 0;
	return so->sk;
}

// --------------------------------------------------------------- lifecycle

SEC("tp_btf/sched_process_exec")
int BPF_PROG(dw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct ev_hdr *h = rec_buf(SCRATCH_LIFECYCLE);
	if (!h)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	fill_task(h, t, KIND_EXEC, bpf_ktime_get_boot_ns());
	fill_vids(h, t);
	h->syscall = NR_execve;
	struct file *f = bprm->file;
	exe_facts(h, f);
	file_facts(h, f);
	// The exe path is the kernel's (the file really executed); the
	// filename is the string the process passed.
	__u32 off = resolve_path(h, t, R_EXE, HDR_SIZE, f->f_path.dentry, f->f_path.mnt, SCRATCH_LIFECYCLE);
	// The exe region is the resolved path: report its truncation as
	// F_RPATH_TRUNC only.
	struct fs_struct *fs = t->fs;
	if (fs)
		off = resolve_path(h, t, R_CWD, off, fs->pwd.dentry, fs->pwd.mnt, SCRATCH_LIFECYCLE);
	__u32 foff = off;
	off = rec_kernel_str(h, R_PATH, off, bprm->filename);
	// The syscall is not recoverable from the registers here (the loader
	// has reset them); execveat on a descriptor is named "/dev/fd/N[/...]"
	// by the kernel. execveat(AT_FDCWD, path) reads as execve.
	if (foff <= HDR_SIZE + 2 * PATH_MAX_LEN && h->len[R_PATH] > 8) {
		const char *fn = (const char *)h + foff;
		if (fn[0] == '/' && fn[1] == 'd' && fn[2] == 'e' && fn[3] == 'v' && fn[4] == '/' && fn[5] == 'f' &&
		    fn[6] == 'd' && fn[7] == '/')
			h->syscall = NR_execveat;
	}

	if (off > HDR_SIZE + 3 * PATH_MAX_LEN)
		return 0;
	h->off[R_ARGV] = off;
	struct mm_struct *mm = t->mm;
	if (mm) {
		unsigned long start = mm->arg_start, end = mm->arg_end;
		unsigned long len = end - start;
		if (end > start) {
			if (len > ARGV_LEN) {
				len = ARGV_LEN;
				h->flags2 |= F_ARGV_TRUNC;
			}
			__u32 l = clamp_path(len);
			if (bpf_probe_read_user((char *)h + off, l, (void *)start) == 0) {
				h->len[R_ARGV] = l;
				off += l;
			}
		}
		// The environment the new image starts with, read here, at
		// exec: a process that exits at once still has it.
		start = mm->env_start;
		end = mm->env_end;
		len = end - start;
		if (end > start && off <= HDR_SIZE + 4 * PATH_MAX_LEN) {
			if (len > ENV_LEN) {
				len = ENV_LEN;
				h->flags2 |= F_ENV_TRUNC;
			}
			__u32 l = clamp_path(len);
			if (bpf_probe_read_user((char *)h + off, l, (void *)start) == 0) {
				h->env_off = off;
				h->env_len = l;
				off += l;
			}
		}
	}
	rec_submit(&lifecycle_rb, h, off, LOST_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(dw_fork, struct task_struct *parent, struct task_struct *child)
{
	struct ev_hdr *h = bpf_ringbuf_reserve(&lifecycle_rb, REC_PLAIN, 0);
	if (!h) {
		count_lost(LOST_FORK);
		return 0;
	}
	struct task_struct *t = bpf_get_current_task_btf();
	clear_hdr(h);
	fill_task(h, t, KIND_FORK, bpf_ktime_get_boot_ns());
	h->child_pid = child->tgid;
	h->child_tid = child->pid;
	fill_vids(h, child);
	if (child->tgid == parent->tgid)
		h->flags2 |= F_THREAD;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (regs) {
		h->syscall = regs->orig_ax;
		h->flags = regs->di; // clone flags (clone(2) only)
	}
	bpf_ringbuf_submit(h, BPF_RB_NO_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(dw_exit, struct task_struct *p)
{
	struct ev_hdr *h = bpf_ringbuf_reserve(&lifecycle_rb, REC_PLAIN, 0);
	if (!h) {
		count_lost(LOST_EXIT);
		return 0;
	}
	struct task_struct *t = bpf_get_current_task_btf();
	clear_hdr(h);
	fill_task(h, t, KIND_EXIT, bpf_ktime_get_boot_ns());
	h->syscall = 231; // exit_group
	h->ret = t->exit_code;
	if (t->pid != t->tgid)
		h->flags2 |= F_THREAD;
	bpf_ringbuf_submit(h, BPF_RB_NO_WAKEUP);
	return 0;
}

// ---------------------------------------------------------------- syscalls

// No record wakes the reader: it polls (Config.PollInterval). A wake-up is
// an irq_work self-IPI, which in a VM measured ~3 us per lifecycle event
// (the programs themselves take well under 1 us), and deciding when to wake
// with bpf_ringbuf_query() touches the consumer's cache line (~90 ns).
static __always_inline void submit_sys(struct ev_hdr *h)
{
	bpf_ringbuf_submit(h, BPF_RB_NO_WAKEUP);
}

// fill_sys fills a syscall record's task, number, result and raw arguments.
static __always_inline void fill_sys(struct ev_hdr *h, struct task_struct *t, struct pt_regs *regs, long nr, long ret,
				     __u64 now)
{
	fill_task(h, t, KIND_SYSCALL, now);
	h->syscall = nr;
	h->ret = ret;
	h->raw[0] = regs->di;
	h->raw[1] = regs->si;
	h->raw[2] = regs->dx;
	h->raw[3] = regs->r10;
	h->raw[4] = regs->r8;
	h->raw[5] = regs->r9;
}

static __always_inline struct ev_hdr *reserve_sys(__u32 size, __u32 lostslot, struct task_struct *t, struct pt_regs *regs,
						  long nr, long ret, __u64 now)
{
	struct ev_hdr *h = bpf_ringbuf_reserve(&syscall_rb, size, 0);
	if (!h) {
		count_lost(lostslot);
		return 0;
	}
	clear_hdr(h);
	fill_sys(h, t, regs, nr, ret, now);
	return h;
}

// dedup_task fills the key fields every deduplicated syscall shares.
static __always_inline void dedup_task(struct dedup_key *k, struct task_struct *t, long nr, long ret)
{
	const struct cred *c = t->cred;
	k->tgid = t->tgid;
	k->uid = c->uid.val;
	k->euid = c->euid.val;
	k->nr = nr;
	k->ret = ret < 0 ? ret : 0;
}

// dedup_root adds the process's root directory (inode, device) and mount
// namespace to a key: a chroot or setns makes new keys.
static __always_inline void dedup_root(struct dedup_key *k, struct task_struct *t)
{
	struct fs_struct *fs = t->fs;
	if (fs) {
		struct inode *ri = fs->root.dentry->d_inode;
		if (ri) {
			k->root = ri->i_ino;
			k->rootmnt = ri->i_sb->s_dev;
		}
	}
	struct nsproxy *ns = t->nsproxy;
	if (ns)
		k->rootmnt |= (__u64)ns->mnt_ns->ns.inum << 32;
}

// sock_of returns the struct sock behind fd of task t, or NULL.
static __always_inline struct sock *sock_of(struct task_struct *t, long fd)
{
	return sock_of_file(file_of(t, fd));
}

// netfacts are a network event's fields, gathered before the record is
// reserved so that a duplicate costs no ring space.
struct netfacts {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 flags;
	__u32 mode;
	__s32 fd;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 proto;
	__u8 type;
};

static __always_inline void put_addr(__u8 *dst, struct sock *sk, int local, int v6)
{
	if (v6) {
		struct in6_addr a = local ? sk->__sk_common.skc_v6_rcv_saddr : sk->__sk_common.skc_v6_daddr;
		__builtin_memcpy(dst, &a, 16);
	} else {
		__u32 a = local ? sk->__sk_common.skc_rcv_saddr : sk->__sk_common.skc_daddr;
		__builtin_memcpy(dst, &a, 4);
	}
}

// sock_facts fills family, type, protocol and (when la/ra are non-NULL) the
// socket's local and remote address and port.
static __always_inline void sock_facts(struct netfacts *nf, struct sock *sk, __u8 *la, __u16 *lp, __u8 *ra, __u16 *rp)
{
	if (!sk)
		return;
	__u16 fam = sk->__sk_common.skc_family;
	if (!nf->family)
		nf->family = fam;
	nf->proto = sk->sk_protocol;
	nf->type = sk->sk_type;
	if (fam != AF_INET && fam != AF_INET6)
		return;
	int v6 = fam == AF_INET6;
	if (la) {
		put_addr(la, sk, 1, v6);
		*lp = sk->__sk_common.skc_num;
	}
	if (ra) {
		put_addr(ra, sk, 0, v6);
		*rp = bpf_ntohs(sk->__sk_common.skc_dport);
	}
}

struct sa_buf {
	__u16 family;
	__u8 data[UNIX_LEN];
};

// user_sockaddr reads a user sockaddr of alen bytes into sa (per-CPU
// scratch) and addr/port; returns the bytes read (0: none). An AF_UNIX
// path stays in sa until the record is written (put_unix).
static __always_inline long user_sockaddr(struct netfacts *nf, struct sa_buf *sa, const void *uaddr, long alen,
					  __u8 *addr, __u16 *port)
{
	if (!uaddr || alen < 2)
		return 0;
	if (alen > sizeof(*sa))
		alen = sizeof(*sa);
	if (bpf_probe_read_user(sa, alen & 0xff, uaddr))
		return 0;
	nf->family = sa->family;
	if (sa->family == AF_INET) {
		*port = ((__u16)sa->data[0] << 8) | sa->data[1];
		__builtin_memcpy(addr, &sa->data[2], 4);
	} else if (sa->family == AF_INET6) {
		*port = ((__u16)sa->data[0] << 8) | sa->data[1];
		__builtin_memcpy(addr, &sa->data[6], 16);
	}
	return alen;
}

// put_unix copies the AF_UNIX path of sa (alen bytes of sockaddr) into the
// record's unix region.
static __always_inline void put_unix(struct ev_hdr *h, struct sa_buf *sa, long alen)
{
	h->off[R_UNIX] = HDR_SIZE;
	long n = alen - 2;
	if (n <= 0)
		return;
	if (sa->data[0] != 0) {
		long m = bpf_probe_read_kernel_str((char *)h + HDR_SIZE, UNIX_LEN, sa->data);
		if (m > 0)
			h->len[R_UNIX] = m - 1;
	} else {
		// abstract: the name is every byte of the address
		if (n > UNIX_LEN)
			n = UNIX_LEN;
		bpf_probe_read_kernel((char *)h + HDR_SIZE, n & (UNIX_LEN - 1), sa->data);
		h->len[R_UNIX] = n & (UNIX_LEN - 1);
	}
}

// put_net writes a network event's facts (nf, the descriptor's file f,
// an AF_UNIX path from sa) into the record h.
static __always_inline void put_net(struct ev_hdr *h, const struct netfacts *nf, struct file *f, struct sa_buf *sa,
				    long salen)
{
	__builtin_memset((char *)h + HDR_SIZE, 0, UNIX_LEN);
	file_facts(h, f);
	h->fd = nf->fd;
	h->flags = nf->flags;
	h->mode = nf->mode;
	h->family = nf->family;
	h->proto = nf->proto;
	h->sock_type = nf->type;
	h->sport = nf->sport;
	h->dport = nf->dport;
	__builtin_memcpy(h->saddr, nf->saddr, 16);
	__builtin_memcpy(h->daddr, nf->daddr, 16);
	if (salen && sa->family == AF_UNIX)
		put_unix(h, sa, salen);
}

// connected reports whether a connect(2) result leaves the peer in the
// socket: success, or a non-blocking connect under way.
static __always_inline int connected(long ret)
{
	return ret == 0 || ret == -115; // -EINPROGRESS
}

// kernel_netfacts fills nf for the network events whose facts are all in
// the registers and the kernel's socket: socket(2), a successful accept,
// and a connect that left its peer in an IPv4/IPv6 socket (the peer is
// read from the socket, not from the caller's memory, which another
// thread may have rewritten by now). Returns 0 for any other event.
static __always_inline int kernel_netfacts(struct netfacts *nf, struct task_struct *t, struct pt_regs *regs, long nr,
					   long ret)
{
	nf->fd = regs->di;
	switch (nr) {
	case NR_socket:
		nf->family = regs->di;
		nf->type = regs->si & 0xf;
		nf->flags = regs->si;
		nf->mode = regs->dx;
		nf->proto = regs->dx;
		nf->fd = -1;
		return 1; // the new socket's facts are read after the dedup check
	case NR_accept:
	case NR_accept4:
		if (ret < 0)
			return 0;
		if (nr == NR_accept4)
			nf->flags = regs->r10;
		sock_facts(nf, sock_of(t, ret), nf->daddr, &nf->dport, nf->saddr, &nf->sport);
		return 1;
	case NR_connect: {
		if (!connected(ret))
			return 0;
		struct sock *sk = sock_of(t, regs->di);
		if (!sk)
			return 0;
		__u16 fam = sk->__sk_common.skc_family;
		if (fam != AF_INET && fam != AF_INET6)
			return 0;
		sock_facts(nf, sk, nf->saddr, &nf->sport, nf->daddr, &nf->dport);
		return 1;
	}
	}
	return 0;
}

// net_key_of fills the deduplication key of a network event of task t
// from its facts. The ephemeral port (connect: local, accept: the
// client's) is left out; every address, the peer/listening port, family,
// type, protocol, flags and the result class are in.
static __always_inline void net_key_of(struct net_key *k, const struct netfacts *nf, struct task_struct *t, long nr,
				       long ret)
{
	const struct cred *c = t->cred;
	__builtin_memcpy(k->addr, nf->daddr, 16);
	__builtin_memcpy(k->addr2, nf->saddr, 16);
	k->hash = 0;
	k->tgid = t->tgid;
	k->uid = c->uid.val;
	k->euid = c->euid.val;
	k->flags = nf->flags;
	k->mode = nf->mode;
	k->fam = (__u32)nf->family | (__u32)nf->type << 16 | (__u32)nf->proto << 24;
	k->nr = nr;
	k->port = nf->dport;
	k->ret = ret < 0 ? ret : 0;
}

static __always_inline int net_dedup(long nr)
{
	return nr == NR_socket || nr == NR_connect || nr == NR_accept || nr == NR_accept4;
}

// net_repeat reports whether a socket, accept or connect whose facts are
// all in the kernel (kernel_netfacts) repeats one delivered within the
// window (and counts it if so). Inline in dw_sys_exit, before any call,
// like open_repeat; everything else goes on to sys_net.
static __always_inline int net_repeat(struct task_struct *t, struct pt_regs *regs, long nr, long ret)
{
	if (!net_dedup(nr))
		return 0;
	struct netfacts nf = {};
	if (!kernel_netfacts(&nf, t, regs, nr, ret))
		return 0;
	struct net_key k;
	net_key_of(&k, &nf, t, nr, ret);
	struct net_slot *d;
	return net_seen(&k, dedup_now(), dedup_generation(), &d);
}

static __noinline int sys_net(struct task_struct *t, struct pt_regs *regs, long nr, long ret)
{
	__u32 skey = SCRATCH_SYSCALL;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &skey);
	if (!s)
		return 0;
	struct sa_buf *sa = (struct sa_buf *)s->buf;
	struct netfacts nf = {};
	long salen = 0;
	long fd = regs->di;
	nf.fd = fd;
	if (kernel_netfacts(&nf, t, regs, nr, ret))
		goto facts;
	switch (nr) {
	case NR_connect:
		salen = user_sockaddr(&nf, sa, (void *)regs->si, regs->dx, nf.daddr, &nf.dport);
		sock_facts(&nf, sock_of(t, fd), nf.saddr, &nf.sport, 0, 0);
		break;
	case NR_accept:
	case NR_accept4:
		if (nr == NR_accept4)
			nf.flags = regs->r10;
		sock_facts(&nf, sock_of(t, fd), 0, 0, 0, 0);
		break;
	case NR_bind:
		salen = user_sockaddr(&nf, sa, (void *)regs->si, regs->dx, nf.saddr, &nf.sport);
		sock_facts(&nf, sock_of(t, fd), 0, 0, 0, 0);
		break;
	case NR_listen:
		nf.mode = regs->si;
		sock_facts(&nf, sock_of(t, fd), nf.saddr, &nf.sport, 0, 0);
		break;
	case NR_sendto: {
		nf.flags = regs->r10;
		struct sock *sk = sock_of(t, fd);
		if (regs->r8 && (salen = user_sockaddr(&nf, sa, (void *)regs->r8, regs->r9, nf.daddr, &nf.dport)))
			sock_facts(&nf, sk, nf.saddr, &nf.sport, 0, 0);
		else
			sock_facts(&nf, sk, nf.saddr, &nf.sport, nf.daddr, &nf.dport);
		break;
	}
	case NR_sendmsg: {
		nf.flags = regs->dx;
		struct sock *sk = sock_of(t, fd);
		struct {
			void *name;
			int namelen;
		} msg = {};
		bpf_probe_read_user(&msg, sizeof(msg), (void *)regs->si);
		if (msg.name && (salen = user_sockaddr(&nf, sa, msg.name, msg.namelen, nf.daddr, &nf.dport)))
			sock_facts(&nf, sk, nf.saddr, &nf.sport, 0, 0);
		else
			sock_facts(&nf, sk, nf.saddr, &nf.sport, nf.daddr, &nf.dport);
		break;
	}
	}

facts:;
	__u64 dnow = 0;
	struct net_key k;
	struct net_slot *dslot = 0;
	__u32 gen = 0;
	int dedup = dedup_window_ns && net_dedup(nr);
	if (dedup) {
		net_key_of(&k, &nf, t, nr, ret);
		if (nf.family == AF_UNIX && salen > 2)
			k.hash = siphash13((const char *)sa->data, salen - 2);
		gen = dedup_generation();
		dnow = dedup_now();
		if (net_seen(&k, dnow, gen, &dslot))
			return 0;
	}

	if (nr == NR_socket && ret >= 0)
		sock_facts(&nf, sock_of(t, ret), 0, 0, 0, 0);
	struct ev_hdr *h = reserve_sys(REC_NET, LOST_NET, t, regs, nr, ret, bpf_ktime_get_boot_ns());
	if (!h)
		return 0;
	if (dedup)
		mark_slot(dslot, &k, NET_KEY_WORDS, dnow, gen);
	// The descriptor's own facts, read now: a socket's type, inode.
	put_net(h, &nf, file_of(t, (nr == NR_socket || nr == NR_accept || nr == NR_accept4) ? ret : fd), sa, salen);
	submit_sys(h);
	return 0;
}

// file_key_of fills the identity key of a successful open of f (inode
// fino) by task t.
static __always_inline void file_key_of(struct file_key *fk, struct task_struct *t, struct file *f, struct inode *fino,
					long nr, __u32 flags, __u32 mode)
{
	const struct cred *c = t->cred;
	struct dentry *fd_d = f->f_path.dentry;
	struct dentry *fd_p = fd_d->d_parent;
	struct mount *fd_m = bpf_rdonly_cast((void *)f->f_path.mnt - bpf_core_field_offset(struct mount, mnt),
					     bpf_core_type_id_kernel(struct mount));
	fk->ino = fino->i_ino;
	fk->name = fd_d->d_name.hash_len;
	fk->parent = 0;
	if (fd_p && fd_p->d_inode)
		fk->parent = fd_p->d_inode->i_ino;
	fk->root = 0;
	fk->rootmnt = 0;
	struct fs_struct *fs = t->fs;
	if (fs) {
		struct inode *ri = fs->root.dentry->d_inode;
		if (ri) {
			fk->root = ri->i_ino;
			fk->rootmnt = ri->i_sb->s_dev;
		}
	}
	struct nsproxy *ns = t->nsproxy;
	if (ns)
		fk->rootmnt |= (__u64)ns->mnt_ns->ns.inum << 32;
	fk->dev = fino->i_sb->s_dev;
	fk->mnt_id = fd_m->mnt_id;
	fk->tgid = t->tgid;
	fk->uid = c->uid.val;
	fk->euid = c->euid.val;
	fk->flags = flags;
	fk->mode = mode;
	fk->nr = nr;
}

// open_repeat reports whether a successful open(2), openat(2) or creat(2)
// repeats one delivered within the window (and counts it if so). It runs
// inline in dw_sys_exit, before any call: on this kernel every call and
// return pays a return thunk (retbleed/SRSO mitigations), and a repeat is
// the commonest event of all. Anything else, and every miss, goes on to
// sys_p1 (which builds the key again to mark it once the record is out).
static __always_inline int open_repeat(struct task_struct *t, struct pt_regs *regs, long nr, long ret)
{
	__u32 flags, mode;
	switch (nr) {
	case NR_open:
		flags = regs->si;
		mode = regs->dx;
		break;
	case NR_openat:
		flags = regs->dx;
		mode = regs->r10;
		break;
	case NR_creat:
		flags = 0100 | 01 | 01000;
		mode = regs->si;
		break;
	default:
		return 0;
	}
	struct file *f = file_of(t, ret);
	if (!f)
		return 0;
	struct inode *fino = f->f_inode;
	if (!fino)
		return 0;
	struct file_key fk;
	file_key_of(&fk, t, f, fino, nr, flags, mode);
	struct file_slot *fslot;
	return file_seen(&fk, dedup_now(), dedup_generation(), LOST_FILE, &fslot);
}

struct p1args {
	const void *path;
	__u64 arg3;
	__s32 fd;
	__u32 flags;
	__u32 mode;
};

static __always_inline int is_open(long nr)
{
	return nr == NR_open || nr == NR_openat || nr == NR_openat2 || nr == NR_creat || nr == NR_open_by_handle_at;
}

// sys_p1 reports syscalls with one path argument. The record is built in
// the per-CPU record buffer: the path as passed (up to PATH_MAX) and, for
// a successful open, the kernel's path of the opened file, then copied to
// the ring with its exact size.
static __noinline int sys_p1(struct task_struct *t, struct pt_regs *regs, long nr, long ret)
{
	__u32 slot = LOST_FILE;
	if (nr == NR_execve || nr == NR_execveat || nr == NR_memfd_create || nr == NR_init_module ||
	    nr == NR_finit_module || nr == NR_umount2)
		slot = LOST_PROC;
	struct p1args a = {.fd = AT_FDCWD};
	switch (nr) {
	case NR_open:
		a.path = (void *)regs->di;
		a.flags = regs->si;
		a.mode = regs->dx;
		break;
	case NR_open_by_handle_at:
		// no path: the file is named by a handle on the mount of fd
		a.fd = regs->di;
		a.flags = regs->dx;
		break;
	case NR_creat:
		// creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)
		a.path = (void *)regs->di;
		a.flags = 0100 | 01 | 01000;
		a.mode = regs->si;
		break;
	case NR_openat:
		a.fd = regs->di;
		a.path = (void *)regs->si;
		a.flags = regs->dx;
		a.mode = regs->r10;
		break;
	case NR_openat2: {
		struct {
			__u64 flags, mode, resolve;
		} how = {};
		a.fd = regs->di;
		a.path = (void *)regs->si;
		bpf_probe_read_user(&how, sizeof(how), (void *)regs->dx);
		a.flags = how.flags;
		a.mode = how.mode;
		a.arg3 = how.resolve;
		break;
	}
	case NR_execve:
		a.path = (void *)regs->di;
		break;
	case NR_execveat:
		a.fd = regs->di;
		a.path = (void *)regs->si;
		a.flags = regs->r8;
		break;
	case NR_unlink:
	case NR_chdir:
		a.path = (void *)regs->di;
		break;
	case NR_chmod:
	case NR_mkdir:
		a.path = (void *)regs->di;
		a.mode = regs->si;
		break;
	case NR_unlinkat:
		a.fd = regs->di;
		a.path = (void *)regs->si;
		a.flags = regs->dx;
		break;
	case NR_mkdirat:
	case NR_fchmodat:
	case NR_fchmodat2:
		a.fd = regs->di;
		a.path = (void *)regs->si;
		a.mode = regs->dx;
		if (nr == NR_fchmodat2)
			a.flags = regs->r10;
		break;
	case NR_memfd_create:
		a.fd = -1;
		a.path = (void *)regs->di;
		a.flags = regs->si;
		break;
	case NR_umount2:
		a.path = (void *)regs->di;
		a.flags = regs->si;
		break;
	case NR_init_module:
		a.fd = -1;
		a.path = (void *)regs->dx; // module parameters
		a.arg3 = regs->si;         // image length
		break;
	case NR_finit_module:
		a.fd = regs->di;
		a.path = (void *)regs->si; // module parameters
		a.flags = regs->dx;
		break;
	}
	// The opened file, read from the descriptor the open returned.
	struct file *f = 0;
	struct inode *fino = 0;
	if (is_open(nr) && ret >= 0) {
		f = file_of(t, ret);
		if (f)
			fino = f->f_inode;
	}

	// Deduplication of opens (docs/sensor.md "Deduplication"). A
	// successful open is a repeat when the same process opened the same
	// file (inode, device) by the same name (the name's hash and length
	// and its directory's inode) on the same mount, so with the same
	// resolved path, and the same flags and mode: the string it passed
	// is not even read for a repeat, and nothing else is looked up,
	// cleared or read (no record buffer, no boot clock) before the key
	// says so. A failed open has no file: it is keyed by its absolute
	// path string below.
	__u32 skey = SCRATCH_SYSCALL;
	struct scratch *sc = bpf_map_lookup_elem(&scratch_map, &skey);
	if (!sc)
		return 0;
	__u32 gen = 0;
	__u64 dnow = 0;
	struct file_key *fk = &sc->fk;
	struct file_slot *fslot = 0;
	int dd = dedup_window_ns && is_open(nr);
	if (dd && fino) {
		file_key_of(fk, t, f, fino, nr, a.flags, a.mode);
		gen = dedup_generation();
		dnow = dedup_now();
		if (file_seen(fk, dnow, gen, slot, &fslot))
			return 0;
	}

	// The path goes straight into the record buffer; the header is
	// cleared and filled only once the event is known not to be a repeat.
	__u32 rkey = SCRATCH_SYSCALL;
	struct ev_hdr *h = bpf_map_lookup_elem(&rec_map, &rkey);
	if (!h)
		return 0;
	const char *up = (const char *)h + HDR_SIZE;
	__u64 now = bpf_ktime_get_boot_ns();
	struct dedup_key *k = &sc->dk;
	struct dedup_key *kp = 0;
	struct dedup_slot *dslot = 0;

	long n = 0;
	if (a.path)
		n = bpf_probe_read_user_str((char *)up, PATH_MAX_LEN, a.path);
	n = n > 1 ? n - 1 : 0; // without the NUL

	if (dd && !fino && ret < 0 && (nr != NR_openat2 || a.arg3 == 0) && n > 0 && n < PATH_LEN && up[0] == '/') {
		__builtin_memset(k, 0, sizeof(*k));
		dedup_task(k, t, nr, ret);
		k->flags = a.flags;
		k->mode = a.mode;
		k->len = n;
		// Paths up to DEDUP_PATH bytes (most) are compared exactly;
		// longer ones by their first bytes and a keyed hash.
		const __u64 *pw = (const __u64 *)up;
#pragma unroll
		for (int i = 0; i < DEDUP_PATH / 8; i++) {
			long rem = n - i * 8;
			__u64 w = pw[i];
			if (rem <= 0)
				w = 0;
			else if (rem < 8)
				w &= (1ULL << ((rem & 7) * 8)) - 1;
			k->path[i] = w;
		}
		if (n > DEDUP_PATH)
			k->hash = siphash13(up, n);
		dedup_root(k, t);
		gen = dedup_generation();
		dnow = dedup_now();
		if (dedup_seen(k, dnow, gen, slot, &dslot))
			return 0;
		kp = k;
	}
	clear_hdr(h);
	fill_sys(h, t, regs, nr, ret, now);
	h->fd = a.fd;
	h->flags = a.flags;
	h->mode = a.mode;
	h->arg3 = a.arg3;
	h->off[R_PATH] = HDR_SIZE;
	__u32 plen = clamp_path(n);
	if (plen >= PATH_MAX_LEN - 1)
		h->flags2 |= F_PATH_TRUNC;
	h->len[R_PATH] = plen;
	__u32 off = HDR_SIZE + plen;
	file_facts(h, f);
	if (f)
		off = resolve_path(h, t, R_RPATH, off, f->f_path.dentry, f->f_path.mnt, SCRATCH_SYSCALL);
	if (kp)
		mark_slot(dslot, kp, DEDUP_KEY_WORDS, dnow, gen);
	if (fslot)
		mark_slot(fslot, fk, FILE_KEY_WORDS, dnow, gen);
	rec_submit(&syscall_rb, h, off, slot);
	return 0;
}

static __noinline int sys_p2(struct task_struct *t, struct pt_regs *regs, long nr, long ret)
{
	struct ev_hdr *h = rec_buf(SCRATCH_SYSCALL);
	if (!h)
		return 0;
	fill_sys(h, t, regs, nr, ret, bpf_ktime_get_boot_ns());
	const void *p1 = 0, *p2 = 0;
	h->fd = AT_FDCWD;
	h->fd2 = AT_FDCWD;
	switch (nr) {
	case NR_symlink:
	case NR_link:
	case NR_rename:
		p1 = (void *)regs->di;
		p2 = (void *)regs->si;
		break;
	case NR_symlinkat:
		p1 = (void *)regs->di;
		h->fd2 = regs->si;
		p2 = (void *)regs->dx;
		break;
	case NR_linkat:
	case NR_renameat:
	case NR_renameat2:
		h->fd = regs->di;
		p1 = (void *)regs->si;
		h->fd2 = regs->dx;
		p2 = (void *)regs->r10;
		if (nr != NR_renameat)
			h->flags = regs->r8;
		break;
	case NR_mount:
		p1 = (void *)regs->di;
		p2 = (void *)regs->si;
		h->flags = regs->r10;
		h->fd = -1;
		h->fd2 = -1;
		break;
	}
	__u32 off = rec_user_str(h, R_PATH, HDR_SIZE, p1);
	off = rec_user_str(h, R_PATH2, off, p2);
	rec_submit(&syscall_rb, h, off, nr == NR_mount ? LOST_PROC : LOST_FILE);
	return 0;
}

// fd_facts records what the kernel says about descriptor fd now: its type,
// inode and, for a socket, family, protocol and both ends (Src local, Dst
// remote), so no stale table in userspace can name it.
static __always_inline void fd_facts(struct ev_hdr *h, struct task_struct *t, long fd)
{
	struct file *f = file_of(t, fd);
	file_facts(h, f);
	struct sock *sk = sock_of_file(f);
	if (!sk)
		return;
	struct netfacts nf = {};
	sock_facts(&nf, sk, nf.saddr, &nf.sport, nf.daddr, &nf.dport);
	h->family = nf.family;
	h->proto = nf.proto;
	h->sock_type = nf.type;
	h->sport = nf.sport;
	h->dport = nf.dport;
	__builtin_memcpy(h->saddr, nf.saddr, 16);
	__builtin_memcpy(h->daddr, nf.daddr, 16);
}

static __noinline int sys_plain(struct task_struct *t, struct pt_regs *regs, long nr, long ret)
{
	int filenr = nr == NR_dup || nr == NR_dup2 || nr == NR_dup3 || nr == NR_fcntl || nr == NR_fchmod || nr == NR_fchdir;
	struct ev_hdr *h = reserve_sys(REC_PLAIN, filenr ? LOST_FILE : LOST_PROC, t, regs, nr, ret, bpf_ktime_get_boot_ns());
	if (!h)
		return 0;
	h->fd = -1;
	h->fd2 = -1;
	switch (nr) {
	case NR_dup:
	case NR_fchdir:
		h->fd = regs->di;
		break;
	case NR_dup2:
		h->fd = regs->di;
		h->fd2 = regs->si;
		break;
	case NR_dup3:
		h->fd = regs->di;
		h->fd2 = regs->si;
		h->flags = regs->dx;
		break;
	case NR_fcntl:
		// F_DUPFD / F_DUPFD_CLOEXEC only (see dw_sys_exit): a dup to
		// the lowest free number >= arg
		h->fd = regs->di;
		h->flags = regs->si; // the command
		h->arg3 = regs->dx;  // the lowest number
		break;
	case NR_fchmod:
		h->fd = regs->di;
		h->mode = regs->si;
		break;
	case NR_ptrace:
		h->flags = regs->di;
		h->arg3 = regs->si;
		break;
	case NR_setuid:
	case NR_setgid:
		h->mode = regs->di;
		break;
	case NR_setresuid:
	case NR_setresgid:
		h->mode = regs->di;
		h->flags = regs->si;
		h->arg3 = regs->dx;
		break;
	case NR_capset: {
		__u32 d[6] = {};
		bpf_probe_read_user(d, sizeof(d), (void *)regs->si);
		h->arg3 = (__u64)d[0] | ((__u64)d[3] << 32); // effective
		break;
	}
	case NR_unshare:
		h->flags = regs->di;
		break;
	case NR_bpf:
		// the command (BPF_PROG_LOAD ...) is Raw[0]; Ret the new fd or 0
		break;
	case NR_userfaultfd:
		h->flags = regs->di; // O_CLOEXEC, O_NONBLOCK, UFFD_USER_MODE_ONLY
		break;
	case NR_setns:
		h->fd = regs->di;
		h->flags = regs->si;
		h->arg3 = regs->si;
		break;
	}
	if (filenr) {
		// dup*: the new descriptor (the same open file); fchmod and
		// fchdir: the descriptor itself.
		long fd = (nr == NR_fchmod || nr == NR_fchdir) ? (long)regs->di : ret;
		if (ret >= 0 || nr == NR_fchmod || nr == NR_fchdir)
			fd_facts(h, t, fd);
	}
	submit_sys(h);
	return 0;
}

// ------------------------------------------------------------ io_uring

#define IORING_FILE_INDEX_ALLOC (~0U)
#define FFS_MASK (~3UL) // io_uring/filetable.h: FFS_NOWAIT | FFS_ISREG in the low bits

// fixed_file returns the file in slot idx of ring's fixed-file table, or
// NULL (kernels before 6.13 keep the table in another shape: not read).
static __always_inline struct file *fixed_file(struct io_ring_ctx *ring, __u32 idx)
{
	if (!bpf_core_field_exists(ring->file_table) || !bpf_core_field_exists(((struct io_rsrc_node *)0)->file_ptr))
		return 0;
	if (idx >= ring->file_table.data.nr)
		return 0;
	struct io_rsrc_node *node = 0;
	bpf_probe_read_kernel(&node, sizeof(node), ring->file_table.data.nodes + idx);
	if (!node)
		return 0;
	node = bpf_rdonly_cast(node, bpf_core_type_id_kernel(struct io_rsrc_node));
	unsigned long fp = node->file_ptr & FFS_MASK;
	if (!fp)
		return 0;
	return bpf_rdonly_cast((void *)fp, bpf_core_type_id_kernel(struct file));
}

// An open done by io_uring (IORING_OP_OPENAT, IORING_OP_OPENAT2) makes no
// open system call: the request runs inside io_uring_enter, an io-wq
// worker or the SQPOLL thread, all threads of the submitting process. It is
// reported at its completion as an openat with F_IO_URING, the flags and
// mode of the request and the kernel's path of the file installed in the
// descriptor table; the path string the process passed has been freed by
// then, so the resolved path stands for it too. A file installed in the
// ring's fixed-file table (file_slot) has no descriptor: it is read from
// that table, and ret is its index there (F_URING_FIXED).
// reported_task returns the current task when syscall nr is enabled and
// the task is reported (not the sensor itself, and the one process of
// only_tgid when that is set), else NULL.
static __always_inline struct task_struct *reported_task(__u32 nr)
{
	__u32 *on = bpf_map_lookup_elem(&syscall_enable, &nr);
	if (!on || !*on)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (t->tgid == ignore_tgid)
		return 0;
	if (only_tgid && t->tgid != only_tgid)
		return 0; // a constant: the verifier drops this when unset
	return t;
}

// fill_uring_task fills h's task fields for an io_uring request completed
// by t; an io-wq worker or the SQPOLL thread ("iou-wrk-N") is named by
// the process that submitted the request.
static __always_inline void fill_uring_task(struct ev_hdr *h, struct task_struct *t)
{
	fill_task(h, t, KIND_SYSCALL, bpf_ktime_get_boot_ns());
	if (t->flags & PF_IO_WORKER) {
		struct task_struct *leader = t->group_leader;
		if (leader)
			__builtin_memcpy(h->comm, leader->comm, sizeof(h->comm));
	}
}

// uring_net reports an io_uring connect or accept (IORING_OP_CONNECT,
// IORING_OP_ACCEPT) of task t as a connect or accept4 with F_IO_URING. The
// request's descriptor number is gone by its completion (Fd is -1); the
// socket is the request's file (connect) or the new descriptor or fixed
// slot (accept), and its tuple comes from the kernel's socket; a connect
// that did not connect names the peer from the request's address (the
// caller's memory, as for the system call).
static __noinline int uring_net(struct task_struct *t, struct io_kiocb *r, struct io_ring_ctx *ring, long res)
{
	__u8 op = r->opcode;
	long nr = op == IORING_OP_CONNECT ? NR_connect : NR_accept4;
	__u32 skey = SCRATCH_URING;
	struct scratch *sc = bpf_map_lookup_elem(&scratch_map, &skey);
	if (!sc)
		return 0;
	struct sa_buf *sa = (struct sa_buf *)sc->buf;
	struct netfacts nf = {};
	nf.fd = -1;
	long salen = 0;
	struct file *f = 0;
	__u32 fixed = 0;
	if (op == IORING_OP_CONNECT) {
		if (!bpf_core_type_exists(struct io_connect))
			return 0;
		f = r->file;
		struct sock *sk = sock_of_file(f);
		if (connected(res) && sk && (sk->__sk_common.skc_family == AF_INET || sk->__sk_common.skc_family == AF_INET6)) {
			sock_facts(&nf, sk, nf.saddr, &nf.sport, nf.daddr, &nf.dport);
		} else {
			struct io_connect *c = bpf_rdonly_cast(&r->cmd, bpf_core_type_id_kernel(struct io_connect));
			salen = user_sockaddr(&nf, sa, c->addr, c->addr_len, nf.daddr, &nf.dport);
			sock_facts(&nf, sk, nf.saddr, &nf.sport, 0, 0);
		}
	} else {
		if (!bpf_core_type_exists(struct io_accept))
			return 0;
		struct io_accept *a = bpf_rdonly_cast(&r->cmd, bpf_core_type_id_kernel(struct io_accept));
		nf.flags = a->flags;
		if (res >= 0) {
			__u32 slot = a->file_slot;
			if (slot == 0) {
				f = file_of(t, res);
			} else {
				fixed = F_URING_FIXED;
				f = fixed_file(ring, slot == IORING_FILE_INDEX_ALLOC ? res : slot - 1);
			}
			sock_facts(&nf, sock_of_file(f), nf.daddr, &nf.dport, nf.saddr, &nf.sport);
		} else {
			sock_facts(&nf, sock_of_file(r->file), 0, 0, 0, 0);
		}
	}
	struct ev_hdr *h = bpf_ringbuf_reserve(&syscall_rb, REC_NET, 0);
	if (!h) {
		count_lost(LOST_NET);
		return 0;
	}
	clear_hdr(h);
	fill_uring_task(h, t);
	h->syscall = nr;
	h->ret = res;
	h->flags2 |= F_IO_URING | fixed;
	put_net(h, &nf, f, sa, salen);
	submit_sys(h);
	return 0;
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(dw_uring_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
	// Kernels before 6.0 keep the request's data elsewhere: not read.
	if (!bpf_core_type_exists(struct io_open) || !bpf_core_field_exists(((struct io_kiocb *)0)->cmd))
		return 0;
	struct io_kiocb *r = bpf_rdonly_cast(req, bpf_core_type_id_kernel(struct io_kiocb));
	if (!r)
		return 0;
	__u8 op = r->opcode;
	if (op == IORING_OP_CONNECT || op == IORING_OP_ACCEPT) {
		struct task_struct *t = reported_task(op == IORING_OP_CONNECT ? NR_connect : NR_accept4);
		if (!t)
			return 0;
		return uring_net(t, r, ring, cqe->res);
	}
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2)
		return 0;
	long nr = op == IORING_OP_OPENAT2 ? NR_openat2 : NR_openat;
	struct task_struct *t = reported_task(nr);
	if (!t)
		return 0;
	long res = cqe->res;
	struct io_open *o = bpf_rdonly_cast(&r->cmd, bpf_core_type_id_kernel(struct io_open));
	struct ev_hdr *h = rec_buf(SCRATCH_URING);
	if (!h)
		return 0;
	fill_uring_task(h, t);
	h->syscall = nr;
	h->ret = res;
	h->fd = o->dfd;
	h->flags = o->how.flags;
	h->mode = o->how.mode;
	if (op == IORING_OP_OPENAT2)
		h->arg3 = o->how.resolve;
	h->flags2 |= F_IO_URING;
	h->raw[0] = o->dfd;
	h->raw[2] = o->how.flags;
	h->raw[3] = o->how.mode;
	__u32 off = HDR_SIZE;
	if (res >= 0) {
		__u32 slot = o->file_slot;
		struct file *f;
		if (slot == 0) {
			f = file_of(t, res);
		} else {
			// no descriptor: the file went to the fixed-file table
			h->flags2 |= F_URING_FIXED;
			f = fixed_file(ring, slot == IORING_FILE_INDEX_ALLOC ? res : slot - 1);
		}
		if (f) {
			file_facts(h, f);
			off = resolve_path(h, t, R_RPATH, off, f->f_path.dentry, f->f_path.mnt, SCRATCH_URING);
			h->off[R_PATH] = h->off[R_RPATH];
			h->len[R_PATH] = h->len[R_RPATH];
			if (h->flags2 & F_RPATH_TRUNC)
				h->flags2 |= F_PATH_TRUNC;
		}
	}
	rec_submit(&syscall_rb, h, off, LOST_FILE);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(dw_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	if ((unsigned long)nr >= NR_SYSCALLS)
		return 0;
	struct task_struct *t = reported_task(nr);
	if (!t)
		return 0;
	if (t->thread_info.status & TS_COMPAT)
		return 0; // ia32 numbering: not reported

	if (dedup_window_ns && ret >= 0 && open_repeat(t, regs, nr, ret))
		return 0;
	if (dedup_window_ns && net_repeat(t, regs, nr, ret))
		return 0;
	switch (nr) {
	case NR_execve:
	case NR_execveat:
		if (ret == 0)
			return 0; // reported by sched_process_exec
		/* fallthrough */
	case NR_open:
	case NR_creat:
	case NR_open_by_handle_at:
	case NR_openat:
	case NR_openat2:
	case NR_unlink:
	case NR_unlinkat:
	case NR_chdir:
	case NR_mkdir:
	case NR_mkdirat:
	case NR_chmod:
	case NR_fchmodat:
	case NR_fchmodat2:
	case NR_memfd_create:
	case NR_umount2:
	case NR_init_module:
	case NR_finit_module:
		return sys_p1(t, regs, nr, ret);
	case NR_symlink:
	case NR_symlinkat:
	case NR_link:
	case NR_linkat:
	case NR_rename:
	case NR_renameat:
	case NR_renameat2:
	case NR_mount:
		return sys_p2(t, regs, nr, ret);
	case NR_socket:
	case NR_connect:
	case NR_accept:
	case NR_accept4:
	case NR_bind:
	case NR_listen:
	case NR_sendto:
	case NR_sendmsg:
		return sys_net(t, regs, nr, ret);
	case NR_fcntl:
		if (regs->si != F_DUPFD && regs->si != F_DUPFD_CLOEXEC)
			return 0;
		return sys_plain(t, regs, nr, ret);
	case NR_dup:
	case NR_dup2:
	case NR_dup3:
	case NR_fchmod:
	case NR_fchdir:
	case NR_ptrace:
	case NR_setuid:
	case NR_setgid:
	case NR_setresuid:
	case NR_setresgid:
	case NR_capset:
	case NR_unshare:
	case NR_setns:
	case NR_bpf:
	case NR_userfaultfd:
		return sys_plain(t, regs, nr, ret);
	}
	return 0;
}
