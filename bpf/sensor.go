// Package bpf is driftwatch's live kernel sensor: the eBPF programs in
// sensor.bpf.c (CO-RE against the committed vmlinux.h, compiled by bpf2go
// into the committed sensor_x86_bpfel.o) and the loader that attaches them
// and turns their ring-buffer records into event.Event values.
//
// Open loads and attaches everything and returns a Sensor, an event.Source:
// Next decodes the next record without allocating. Syscall events come from
// one hook on every syscall's exit (tp_btf/sys_exit) that ends at once for
// syscalls not enabled in the per-syscall switch; process lifecycle (exec,
// fork, exit) comes from the scheduler tracepoints into a ring of its own,
// so a flood of file or network events never costs an exec or exit. Failed
// ring reservations are counted per kind (Lost). Repeated identical opens,
// sockets, connects and accepts of a process are deduplicated in the kernel
// within Config.DedupWindow and counted (Deduplicated). See docs/sensor.md.
//
// Only x86_64 is supported. Environment problems (no privileges, no kernel
// BTF, a missing tracepoint) are reported as *EnvError.
package bpf

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/event"
)

// Sentinel causes carried by *EnvError.
var (
	// ErrPermission: the process may not load BPF programs (not root, or
	// without CAP_BPF and CAP_PERFMON).
	ErrPermission = errors.New("not permitted to load BPF programs: run as root (or with CAP_BPF and CAP_PERFMON)")
	// ErrNoBTF: the kernel exposes no BTF (CONFIG_DEBUG_INFO_BTF).
	ErrNoBTF = errors.New("kernel BTF not available (needs CONFIG_DEBUG_INFO_BTF)")
	// ErrMissingHook: a tracepoint the sensor needs does not exist.
	ErrMissingHook = errors.New("kernel tracepoint not available")
	// ErrBadConfig: a Config value the sensor cannot use.
	ErrBadConfig = errors.New("bad sensor configuration")
	// ErrUnsupportedSyscall: Config.Syscalls names a syscall the sensor
	// does not capture. It wraps ErrBadConfig.
	ErrUnsupportedSyscall = fmt.Errorf("%w: syscall not supported by the sensor", ErrBadConfig)
)

// EnvError says what the environment lacks for the sensor to run. The CLI
// exits with status 2 for it.
type EnvError struct {
	// What names the missing piece: "privileges", a BTF path, a tracepoint.
	What string
	Err  error
}

func (e *EnvError) Error() string { return fmt.Sprintf("%s: %v", e.What, e.Err) }
func (e *EnvError) Unwrap() error { return e.Err }

// DefaultBTFPath is where the kernel exposes its BTF.
const DefaultBTFPath = "/sys/kernel/btf/vmlinux"

// Config selects what the sensor captures.
type Config struct {
	// Syscalls lists the x86_64 syscall numbers to report (event.Sys*);
	// nil means all of SupportedSyscalls. An empty non-nil slice reports
	// lifecycle events only.
	Syscalls []uint16
	// RingSizeSyscall and RingSizeLifecycle are the ring buffer sizes in
	// bytes (powers of two, multiples of the page size); 0 means 8 MiB and
	// 4 MiB. A smaller syscall ring stays in the CPU caches and is a little
	// cheaper for the traced programs; a larger one rides out longer
	// reader stalls (docs/sensor.md "Bursts").
	RingSizeSyscall, RingSizeLifecycle int
	// PollInterval bounds the delivery delay: records never wake the
	// reader (a wake-up costs the traced program an IPI), it polls; 0
	// means 5 ms. It polls every millisecond while a ring is over a
	// quarter full.
	PollInterval time.Duration
	// KernelBTF is the kernel BTF to check and relocate against; "" means
	// DefaultBTFPath.
	KernelBTF string
	// IncludeSelf reports the sensor process's own syscalls too (they are
	// filtered in the kernel by default).
	IncludeSelf bool
	// OnlyTgid, when non-zero, reports the syscalls of that process only
	// (filtered in the kernel, before anything is read; lifecycle events
	// stay machine-wide). For tests and benchmarks that must not share
	// the syscall ring with the rest of the machine.
	OnlyTgid uint32
	// DedupWindow is the in-kernel deduplication window: an open of an
	// absolute path, a socket, connect or accept identical to one the
	// same process made less than DedupWindow earlier (same path or
	// addresses, flags, mode, credentials and result class, in the same
	// generation, see ResetDedup) is counted (Deduplicated) instead of
	// delivered. The first event of a key in each window is always
	// delivered; the table is per CPU, so a process moving between CPUs
	// may see one more. 0 means DefaultDedupWindow; a negative value turns
	// deduplication off. Lifecycle events are never deduplicated.
	DedupWindow time.Duration
}

// DefaultDedupWindow is the deduplication window of a zero Config.
const DefaultDedupWindow = time.Second

// hook is one program and the kernel tracepoint it needs.
type hook struct {
	prog     string // program name in sensor.bpf.c
	target   string // BTF tracepoint (btf_trace_<target>)
	feature  string // Features key
	optional bool
}

var hooks = []hook{
	{prog: "dw_sys_exit", target: "sys_exit", feature: "syscalls"},
	{prog: "dw_exec", target: "sched_process_exec", feature: "exec"},
	{prog: "dw_fork", target: "sched_process_fork", feature: "fork"},
	{prog: "dw_exit", target: "sched_process_exit", feature: "exit"},
	// opens done by io_uring requests, reported at their completion
	{prog: "dw_uring_complete", target: "io_uring_complete", feature: "io_uring", optional: true},
}

// supported lists the syscalls sensor.bpf.c decodes (its sys_exit
// switch): the rows of event's syscall table marked Sensor.
// TestSupportedMatchesProgram checks them against sensor.bpf.c.
var supported = func() []uint16 {
	var s []uint16
	for _, sp := range event.Specs() {
		if sp.Sensor {
			s = append(s, sp.Nr)
		}
	}
	return s
}()

// SupportedSyscalls returns the x86_64 numbers of the syscalls the sensor
// can report, in ascending order.
func SupportedSyscalls() []uint16 {
	s := slices.Clone(supported)
	slices.Sort(s)
	return s
}

// LostKinds names the loss counters, in the order of the kernel's slots.
var LostKinds = []string{"exec", "fork", "exit", "file", "net", "process"}

// Sensor is the loaded and attached sensor. Next must be called from one
// goroutine at a time; Close may be called from any.
type Sensor struct {
	objs     sensorObjects
	links    []link.Link
	features map[string]bool
	warnings []string

	lifeRd, sysRd *ringbuf.Reader
	epfd, wakefd  int
	poll          time.Duration
	nextPoll      time.Duration

	mu      sync.Mutex // held by Next while reading; Close waits for it
	closed  atomic.Bool
	clock   Clock
	num     uint64
	lifeRec ringbuf.Record
	sysRec  ringbuf.Record
	lifeOK  bool // lifeRec holds an undelivered record
	sysOK   bool
	events  [4]unix.EpollEvent

	lostAtClose, dedupAtClose map[string]uint64
	dedupWindow               time.Duration
}

// hookTarget lets tests pretend a tracepoint is missing.
var hookTarget = func(h hook) string { return h.target }

// Open loads the programs, fills the syscall switch and attaches every hook.
func Open(cfg Config) (*Sensor, error) {
	btfPath := cfg.KernelBTF
	if btfPath == "" {
		btfPath = DefaultBTFPath
	}
	if _, err := os.Stat(btfPath); err != nil {
		return nil, &EnvError{What: "kernel BTF at " + btfPath, Err: ErrNoBTF}
	}
	var kspec *btf.Spec
	var err error
	if cfg.KernelBTF == "" {
		kspec, err = btf.LoadKernelSpec() // parsed once per process
	} else {
		kspec, err = btf.LoadSpec(btfPath)
	}
	if err != nil {
		return nil, &EnvError{What: "kernel BTF at " + btfPath, Err: fmt.Errorf("%w: %v", ErrNoBTF, err)}
	}
	if os.Geteuid() != 0 && !haveBPFCaps() {
		return nil, &EnvError{What: "privileges", Err: ErrPermission}
	}

	for name, size := range map[string]int{"RingSizeSyscall": cfg.RingSizeSyscall, "RingSizeLifecycle": cfg.RingSizeLifecycle} {
		if size != 0 && (size < os.Getpagesize() || size&(size-1) != 0) {
			return nil, fmt.Errorf("%w: %s %d is not a power of two of at least the page size", ErrBadConfig, name, size)
		}
	}
	syscalls := cfg.Syscalls
	if syscalls == nil {
		syscalls = supported
	}
	for _, nr := range syscalls {
		if !slices.Contains(supported, nr) {
			return nil, fmt.Errorf("%w: %s (%d)", ErrUnsupportedSyscall, event.SyscallName(nr), nr)
		}
	}

	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("bpf: parse embedded objects: %w", err)
	}
	features := map[string]bool{}
	var warnings []string
	for _, h := range hooks {
		var fn *btf.Typedef
		ok := kspec.TypeByName("btf_trace_"+hookTarget(h), &fn) == nil
		features[h.feature] = ok
		if ok {
			continue
		}
		if !h.optional {
			return nil, &EnvError{What: "tracepoint " + hookTarget(h), Err: ErrMissingHook}
		}
		warnings = append(warnings, fmt.Sprintf("tracepoint %s missing: %s events are off", hookTarget(h), h.feature))
		delete(spec.Programs, h.prog)
	}
	features["loginuid"] = hasMember(kspec, "task_struct", "loginuid")
	features["exe_upper_layer"] = hasType(kspec, "ovl_inode")
	features["exe_times"] = hasMember(kspec, "inode", "i_ctime_sec") || hasMember(kspec, "inode", "i_ctime")

	// Typed views of the specs (bpf2go's): a name missing from the object
	// fails here, not at a nil map later.
	var specs struct {
		sensorMapSpecs
		sensorVariableSpecs
	}
	if err := spec.Assign(&specs); err != nil {
		return nil, fmt.Errorf("bpf: embedded objects: %w", err)
	}
	if size := cfg.RingSizeSyscall; size > 0 {
		specs.SyscallRb.MaxEntries = uint32(size)
	}
	if size := cfg.RingSizeLifecycle; size > 0 {
		specs.LifecycleRb.MaxEntries = uint32(size)
	}
	window := cfg.DedupWindow
	if window == 0 {
		window = DefaultDedupWindow
	}
	if window < 0 {
		window = 0
	}
	if err := specs.DedupWindowNs.Set(uint64(window.Nanoseconds())); err != nil {
		return nil, fmt.Errorf("bpf: set dedup_window_ns: %w", err)
	}
	// The kernel times windows in jiffies (one load instead of a clock
	// read on every repeat); without the kernel's configuration the
	// smallest HZ is assumed, which can only shorten the window.
	hz, hzKnown := kernelHZ()
	if err := specs.DedupWindowJiffies.Set(windowJiffies(window, hz)); err != nil {
		return nil, fmt.Errorf("bpf: set dedup_window_jiffies: %w", err)
	}
	if !hzKnown && window > 0 {
		warnings = append(warnings, fmt.Sprintf("kernel configuration not readable (/proc/config.gz, /boot/config-*): deduplication assumes HZ=%d, so the window may be shorter than %v", fallbackHZ, window))
	}
	if window > 0 {
		// A random SipHash key per load: nobody can pick a path whose
		// hash collides with another one's.
		var key [16]byte
		if _, err := rand.Read(key[:]); err != nil {
			return nil, fmt.Errorf("bpf: dedup key: %w", err)
		}
		for i, v := range []*ebpf.VariableSpec{specs.DedupK0, specs.DedupK1} {
			if err := v.Set(le.Uint64(key[8*i:])); err != nil {
				return nil, fmt.Errorf("bpf: set %s: %w", v.Name, err)
			}
		}
	}
	if !cfg.IncludeSelf {
		if err := specs.IgnoreTgid.Set(uint32(os.Getpid())); err != nil {
			return nil, fmt.Errorf("bpf: set ignore_tgid: %w", err)
		}
	}
	if cfg.OnlyTgid != 0 {
		if err := specs.OnlyTgid.Set(cfg.OnlyTgid); err != nil {
			return nil, fmt.Errorf("bpf: set only_tgid: %w", err)
		}
	}

	_ = rlimit.RemoveMemlock() // needed before 5.11 only; harmless after

	s := &Sensor{features: features, warnings: warnings, epfd: -1, wakefd: -1, poll: cfg.PollInterval, dedupWindow: window}
	if s.poll <= 0 {
		s.poll = 5 * time.Millisecond
	}
	s.nextPoll = s.poll
	opts := ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kspec}}
	if err := loadObjects(spec, &s.objs, &opts); err != nil {
		return nil, loadError(err)
	}
	fail := func(err error) (*Sensor, error) {
		s.release()
		return nil, err
	}

	for _, nr := range syscalls {
		if err := s.objs.SyscallEnable.Put(uint32(nr), uint32(1)); err != nil {
			return fail(fmt.Errorf("bpf: enable syscall %d: %w", nr, err))
		}
	}

	if err := s.Attach(); err != nil {
		return fail(err)
	}

	if s.lifeRd, err = ringbuf.NewReader(s.objs.LifecycleRb); err != nil {
		return fail(fmt.Errorf("bpf: lifecycle ring reader: %w", err))
	}
	if s.sysRd, err = ringbuf.NewReader(s.objs.SyscallRb); err != nil {
		return fail(fmt.Errorf("bpf: syscall ring reader: %w", err))
	}
	past := time.Unix(1, 0) // ReadInto then never blocks: Next does the waiting
	s.lifeRd.SetDeadline(past)
	s.sysRd.SetDeadline(past)
	if err := s.setupPoll(); err != nil {
		return fail(err)
	}
	s.clock = bootClock()
	return s, nil
}

// loadObjects loads spec into objs with CollectionSpec.LoadAndAssign
// (bpf2go's typed objects, no string keys): every map and variable, and
// each program spec still holds. The programs of optional hooks that Open
// removed because their tracepoint is missing stay nil.
func loadObjects(spec *ebpf.CollectionSpec, objs *sensorObjects, opts *ebpf.CollectionOptions) error {
	fields := []reflect.StructField{
		{Name: "Maps", Type: reflect.TypeOf(&objs.sensorMaps)},
		{Name: "Variables", Type: reflect.TypeOf(&objs.sensorVariables)},
	}
	pt := reflect.TypeOf(objs.sensorPrograms)
	var present []int
	for i := 0; i < pt.NumField(); i++ {
		if _, ok := spec.Programs[pt.Field(i).Tag.Get("ebpf")]; ok {
			f := pt.Field(i)
			fields = append(fields, reflect.StructField{Name: f.Name, Type: f.Type, Tag: f.Tag})
			present = append(present, i)
		}
	}
	dst := reflect.New(reflect.StructOf(fields)).Elem()
	dst.Field(0).Set(reflect.ValueOf(&objs.sensorMaps))
	dst.Field(1).Set(reflect.ValueOf(&objs.sensorVariables))
	if err := spec.LoadAndAssign(dst.Addr().Interface(), opts); err != nil {
		return err
	}
	progs := reflect.ValueOf(&objs.sensorPrograms).Elem()
	for j, i := range present {
		progs.Field(i).Set(dst.Field(2 + j))
	}
	return nil
}

func (s *Sensor) setupPoll() error {
	var err error
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("bpf: epoll: %w", err)
	}
	if s.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("bpf: eventfd: %w", err)
	}
	for _, fd := range []int{s.wakefd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fmt.Errorf("bpf: epoll add: %w", err)
		}
	}
	return nil
}

// loadError classifies a collection load failure.
func loadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		// The verifier answers EACCES: a bug in the programs or a kernel
		// they were not written for, not a matter of privileges.
		return fmt.Errorf("bpf: the kernel's verifier rejected the sensor: %w", err)
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EPERM) {
		return &EnvError{What: "privileges", Err: fmt.Errorf("%w: %v", ErrPermission, err)}
	}
	return fmt.Errorf("bpf: load: %w", err)
}

func hasType(spec *btf.Spec, name string) bool {
	_, err := spec.AnyTypeByName(name)
	return err == nil
}

func hasMember(spec *btf.Spec, typ, member string) bool {
	var st *btf.Struct
	if spec.TypeByName(typ, &st) != nil {
		return false
	}
	for _, m := range st.Members {
		if m.Name == member {
			return true
		}
	}
	return false
}

// haveBPFCaps reports whether the effective set holds CAP_BPF and CAP_PERFMON.
func haveBPFCaps() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	const capPerfmon, capBPF, capSysAdmin = 38, 39, 21
	return eff&(1<<capSysAdmin) != 0 || (eff&(1<<capBPF) != 0 && eff&(1<<capPerfmon) != 0)
}

// bootClock measures CLOCK_REALTIME − CLOCK_BOOTTIME.
func bootClock() Clock {
	var rt, bt unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &rt)
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt)
	return Clock{BootToWall: rt.Nano() - bt.Nano()}
}

// Features reports which hooks and kernel facts are available.
func (s *Sensor) Features() map[string]bool {
	out := make(map[string]bool, len(s.features))
	for k, v := range s.features {
		out[k] = v
	}
	return out
}

// Warnings describes optional hooks that were missing and skipped.
func (s *Sensor) Warnings() []string { return slices.Clone(s.warnings) }

// Clock returns the boot-to-wall conversion the sensor uses.
func (s *Sensor) Clock() Clock { return s.clock }

// Next decodes the next event into ev, blocking until one arrives. Of the
// two rings' next records the older is delivered first (lifecycle on a
// tie), so a process's exec precedes its syscalls; while the lifecycle ring
// is over a quarter full it is drained first, so a slow reader loses
// syscall records, never lifecycle ones. Returns os.ErrClosed after Close.
func (s *Sensor) Next(ev *event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return os.ErrClosed
		}
		if !s.lifeOK {
			ok, err := fill(s.lifeRd, &s.lifeRec)
			if err != nil {
				return s.readErr(err)
			}
			s.lifeOK = ok
		}
		if !s.sysOK {
			ok, err := fill(s.sysRd, &s.sysRec)
			if err != nil {
				return s.readErr(err)
			}
			s.sysOK = ok
		}
		var rec *ringbuf.Record
		switch {
		case s.lifeOK && s.sysOK:
			// Time order, unless the lifecycle ring is filling up: then
			// it is drained first and the syscall ring takes the loss.
			if recTime(s.sysRec.RawSample) < recTime(s.lifeRec.RawSample) &&
				s.lifeRd.AvailableBytes() < s.lifeRd.BufferSize()/4 {
				rec, s.sysOK = &s.sysRec, false
			} else {
				rec, s.lifeOK = &s.lifeRec, false
			}
		case s.lifeOK:
			rec, s.lifeOK = &s.lifeRec, false
		case s.sysOK:
			rec, s.sysOK = &s.sysRec, false
		}
		if rec != nil {
			if err := Decode(rec.RawSample, ev, s.clock); err != nil {
				return err
			}
			s.num++
			ev.Num = s.num
			return nil
		}
		s.wait()
	}
}

// fill reads the next record of rd into rec; false when the ring is empty.
func fill(rd *ringbuf.Reader, rec *ringbuf.Record) (bool, error) {
	if rd.AvailableBytes() == 0 {
		return false, nil
	}
	err := rd.ReadInto(rec)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil
	}
	return false, err
}

func recTime(raw []byte) uint64 {
	if len(raw) < 8 {
		return 0
	}
	return le.Uint64(raw)
}

func (s *Sensor) readErr(err error) error {
	if s.closed.Load() || errors.Is(err, os.ErrClosed) {
		return os.ErrClosed
	}
	return fmt.Errorf("bpf: read ring: %w", err)
}

// wait blocks until Close is called or the poll interval passes (records
// are submitted without wake-ups). While a ring fills faster than a quarter
// per interval it polls every millisecond.
func (s *Sensor) wait() {
	ms := int(s.nextPoll / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	_, _ = unix.EpollWait(s.epfd, s.events[:], ms)
	if s.sysRd.AvailableBytes() > s.sysRd.BufferSize()/4 || s.lifeRd.AvailableBytes() > s.lifeRd.BufferSize()/4 {
		s.nextPoll = time.Millisecond
	} else {
		s.nextPoll = s.poll
	}
	s.clock = bootClock()
}

// Lost returns the failed ring reservations per kind (LostKinds), summed
// over CPUs. After Close it returns the counts read at Close.
func (s *Sensor) Lost() map[string]uint64 {
	if s.closed.Load() && s.lostAtClose != nil {
		return s.lostAtClose
	}
	return s.readLost()
}

func (s *Sensor) readLost() map[string]uint64 { return sumPerCPU(s.objs.Lost) }

// Deduplicated returns how many events per kind (LostKinds; only "file"
// and "net" are ever deduplicated) the kernel counted instead of
// delivering because an identical one was delivered within DedupWindow,
// summed over CPUs. After Close it returns the counts read at Close.
func (s *Sensor) Deduplicated() map[string]uint64 {
	if s.closed.Load() && s.dedupAtClose != nil {
		return s.dedupAtClose
	}
	return sumPerCPU(s.objs.DedupCount)
}

// DedupWindow returns the deduplication window in effect (0: off).
func (s *Sensor) DedupWindow() time.Duration { return s.dedupWindow }

// ResetDedup makes the kernel forget every deduplication key (it bumps the
// generation counter), so the next event of each key is delivered again.
// Call it when every event is needed again, e.g. after the rules change.
func (s *Sensor) ResetDedup() error {
	if s.closed.Load() {
		return os.ErrClosed
	}
	var gen uint32
	if err := s.objs.DedupGen.Lookup(uint32(0), &gen); err != nil {
		return fmt.Errorf("bpf: read dedup generation: %w", err)
	}
	if err := s.objs.DedupGen.Put(uint32(0), gen+1); err != nil {
		return fmt.Errorf("bpf: bump dedup generation: %w", err)
	}
	return nil
}

// sumPerCPU sums a per-CPU counter array indexed like LostKinds.
func sumPerCPU(m *ebpf.Map) map[string]uint64 {
	out := make(map[string]uint64, len(LostKinds))
	for i, name := range LostKinds {
		var perCPU []uint64
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			continue
		}
		var sum uint64
		for _, v := range perCPU {
			sum += v
		}
		out[name] = sum
	}
	return out
}

// Close detaches the programs and frees the rings; a blocked Next returns
// os.ErrClosed.
func (s *Sensor) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	lost, dedup := s.readLost(), sumPerCPU(s.objs.DedupCount)
	if s.wakefd >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(s.wakefd, one[:])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lostAtClose, s.dedupAtClose = lost, dedup
	return s.release()
}

func (s *Sensor) release() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	if s.lifeRd != nil {
		errs = append(errs, s.lifeRd.Close())
	}
	if s.sysRd != nil {
		errs = append(errs, s.sysRd.Close())
	}
	if s.epfd >= 0 {
		unix.Close(s.epfd)
		s.epfd = -1
	}
	if s.wakefd >= 0 {
		unix.Close(s.wakefd)
		s.wakefd = -1
	}
	// release runs once (Close or a failed Open); nil objects close as
	// no-ops. objs is
	// left as is so that a concurrent Lost or Deduplicated reads no torn
	// struct (they use the values saved at Close).
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}

// Detach removes the programs from their hooks without unloading them; the
// rings and counters stay. The overhead benchmark uses it for its runs
// without the sensor.
func (s *Sensor) Detach() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	s.links = nil
	return errors.Join(errs...)
}

// Attach (re)attaches every available hook after Detach.
func (s *Sensor) Attach() error {
	if len(s.links) > 0 {
		return nil
	}
	progs := map[string]*ebpf.Program{
		"dw_sys_exit": s.objs.DwSysExit, "dw_exec": s.objs.DwExec,
		"dw_fork": s.objs.DwFork, "dw_exit": s.objs.DwExit,
		"dw_uring_complete": s.objs.DwUringComplete,
	}
	for _, h := range hooks {
		p := progs[h.prog]
		if p == nil || !s.features[h.feature] {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			s.Detach()
			if errors.Is(err, os.ErrPermission) {
				return &EnvError{What: "privileges", Err: fmt.Errorf("%w: attach %s: %v", ErrPermission, h.target, err)}
			}
			return &EnvError{What: "tracepoint " + h.target, Err: fmt.Errorf("%w: %v", ErrMissingHook, err)}
		}
		s.links = append(s.links, l)
	}
	return nil
}

// ProgramStat is the kernel's run count and total run time of one program;
// both stay zero unless BPF statistics are enabled (EnableStats).
type ProgramStat struct {
	Runs    uint64
	Runtime time.Duration
}

// ProgramStats returns the run statistics of each program by name.
func (s *Sensor) ProgramStats() map[string]ProgramStat {
	out := map[string]ProgramStat{}
	for name, p := range map[string]*ebpf.Program{
		"sys_exit": s.objs.DwSysExit, "exec": s.objs.DwExec, "fork": s.objs.DwFork, "exit": s.objs.DwExit,
		"io_uring": s.objs.DwUringComplete,
	} {
		if p == nil {
			continue
		}
		if st, err := p.Stats(); err == nil {
			out[name] = ProgramStat{Runs: st.RunCount, Runtime: st.Runtime}
		}
	}
	return out
}

// EnableStats turns on the kernel's per-program run-time accounting
// (kernel.bpf_stats_enabled) until the returned closer is closed. It costs
// two clock reads per program run.
func EnableStats() (io.Closer, error) {
	return ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
}
