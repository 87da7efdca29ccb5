package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"

	"github.com/driftwatch/driftwatch/event"
)

// Limits that keep a damaged or hostile file from making the reader
// allocate without bound: a record's declared length is checked against
// them before anything is allocated for it.
const (
	// MaxEventRecord bounds one event record (paths, argv and cwd included).
	MaxEventRecord = 1 << 20
	// MaxMetaRecord bounds a snapshot, cgroup or container record.
	MaxMetaRecord = 256 << 20
)

// eventFixedSize is the size of the fixed-layout part of an event record.
const eventFixedSize = 1 + 2 + 2 + 8 + 8 + // kind, syscall, cpu, time, num
	4*8 + // pid tid ppid uid gid euid egid loginuid
	8 + 4 + 4 + 4 + 8 + 16 + // cgroup, pidns, mntns, tty, capeff, comm
	8 + 6*8 + // ret, raw
	4 + 4 + 4 + 4 + 8 + // fd fd2 flags mode arg3
	2 + 1 + 1 + // family proto socktype
	8 + 4 + 8 + 8 + 4 + 4 + 4 // exeino exedev exectime exemtime childpid childtid flags2

var le = binary.LittleEndian

// appendEvent appends the version-1 encoding of e to b.
func appendEvent(b []byte, e *event.Event) []byte {
	b = append(b, byte(e.Kind))
	b = le.AppendUint16(b, e.Syscall)
	b = le.AppendUint16(b, e.CPU)
	b = le.AppendUint64(b, uint64(e.Time))
	b = le.AppendUint64(b, e.Num)
	for _, v := range [...]uint32{e.Pid, e.Tid, e.Ppid, e.Uid, e.Gid, e.Euid, e.Egid, e.LoginUID} {
		b = le.AppendUint32(b, v)
	}
	b = le.AppendUint64(b, e.CgroupID)
	b = le.AppendUint32(b, e.PidNS)
	b = le.AppendUint32(b, e.MntNS)
	b = le.AppendUint32(b, e.Tty)
	b = le.AppendUint64(b, e.CapEff)
	b = append(b, e.Comm[:]...)
	b = le.AppendUint64(b, uint64(e.Ret))
	for _, v := range e.Raw {
		b = le.AppendUint64(b, v)
	}
	b = le.AppendUint32(b, uint32(e.Fd))
	b = le.AppendUint32(b, uint32(e.Fd2))
	b = le.AppendUint32(b, e.Flags)
	b = le.AppendUint32(b, e.Mode)
	b = le.AppendUint64(b, e.Arg3)
	b = le.AppendUint16(b, e.Family)
	b = append(b, e.Proto, e.SockType)
	b = le.AppendUint64(b, e.ExeIno)
	b = le.AppendUint32(b, e.ExeDev)
	b = le.AppendUint64(b, uint64(e.ExeCtime))
	b = le.AppendUint64(b, uint64(e.ExeMtime))
	b = le.AppendUint32(b, e.ChildPid)
	b = le.AppendUint32(b, e.ChildTid)
	b = le.AppendUint32(b, e.Flags2)
	b = appendAddrPort(b, e.Src)
	b = appendAddrPort(b, e.Dst)
	for _, s := range [...][]byte{e.Path, e.Path2, e.UnixPath, e.Exe, e.Argv, e.Cwd} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	// minor version 1: the kernel's resolved path and descriptor facts
	b = binary.AppendUvarint(b, uint64(len(e.RealPath)))
	b = append(b, e.RealPath...)
	b = append(b, byte(e.FileType))
	b = le.AppendUint64(b, e.FileIno)
	b = le.AppendUint32(b, e.FileDev)
	// format 2.1: ids in the task's pid namespace, permitted and
	// inheritable capabilities, the environment at exec
	b = le.AppendUint32(b, e.VPid)
	b = le.AppendUint32(b, e.VTid)
	b = le.AppendUint32(b, e.VPgid)
	b = le.AppendUint64(b, e.CapPrm)
	b = le.AppendUint64(b, e.CapInh)
	b = binary.AppendUvarint(b, uint64(len(e.Env)))
	b = append(b, e.Env...)
	return b
}

// Address encodings: a tag byte, then the address bytes and the port.
const (
	addrNone   = 0 // invalid netip.AddrPort
	addrV4     = 4 // 4 bytes + port
	addrV6     = 6 // 16 bytes + port
	addrV6Zone = 7 // 16 bytes + uvarint zone length + zone + port
)

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	switch {
	case !a.IsValid():
		return append(b, addrNone)
	case a.Is4():
		b = append(b, addrV4)
		v := a.As4()
		b = append(b, v[:]...)
	case a.Zone() != "":
		b = append(b, addrV6Zone)
		v := a.As16()
		b = append(b, v[:]...)
		b = binary.AppendUvarint(b, uint64(len(a.Zone())))
		b = append(b, a.Zone()...)
	default:
		b = append(b, addrV6)
		v := a.As16()
		b = append(b, v[:]...)
	}
	return le.AppendUint16(b, ap.Port())
}

var errShort = errors.New("record shorter than its fields")

// decoder walks one record's payload.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.b)-d.off < n {
		d.err = fmt.Errorf("at record byte %d: %w", d.off, errShort)
		return false
	}
	return true
}

func (d *decoder) u8() uint8 {
	if !d.need(1) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16() uint16 {
	if !d.need(2) {
		return 0
	}
	v := le.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := le.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := le.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = fmt.Errorf("at record byte %d: bad varint", d.off)
		return 0
	}
	d.off += n
	return v
}

// bytes returns a length-prefixed byte string aliasing the record buffer.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("at record byte %d: string length %d exceeds record: %w", d.off, n, errShort)
		return nil
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) addrPort() netip.AddrPort {
	switch tag := d.u8(); tag {
	case addrNone:
		return netip.AddrPort{}
	case addrV4:
		if !d.need(4) {
			return netip.AddrPort{}
		}
		a := netip.AddrFrom4([4]byte(d.b[d.off : d.off+4]))
		d.off += 4
		return netip.AddrPortFrom(a, d.u16())
	case addrV6, addrV6Zone:
		if !d.need(16) {
			return netip.AddrPort{}
		}
		a := netip.AddrFrom16([16]byte(d.b[d.off : d.off+16]))
		d.off += 16
		if tag == addrV6Zone {
			z := d.bytes()
			if len(z) == 0 && d.err == nil {
				d.err = fmt.Errorf("at record byte %d: empty IPv6 zone", d.off)
			}
			a = a.WithZone(string(z))
		}
		return netip.AddrPortFrom(a, d.u16())
	default:
		if d.err == nil {
			d.err = fmt.Errorf("at record byte %d: unknown address tag %d", d.off-1, tag)
		}
		return netip.AddrPort{}
	}
}

// decodeEvent decodes a version-1 event record into e, reusing e's byte
// slices. Bytes after the known fields are ignored (minor-version
// additions).
func decodeEvent(b []byte, e *event.Event) error {
	if len(b) < eventFixedSize {
		return fmt.Errorf("event record of %d bytes, want at least %d: %w", len(b), eventFixedSize, errShort)
	}
	d := decoder{b: b}
	e.Kind = event.Kind(d.u8())
	e.Syscall = d.u16()
	e.CPU = d.u16()
	e.Time = int64(d.u64())
	e.Num = d.u64()
	e.Pid = d.u32()
	e.Tid = d.u32()
	e.Ppid = d.u32()
	e.Uid = d.u32()
	e.Gid = d.u32()
	e.Euid = d.u32()
	e.Egid = d.u32()
	e.LoginUID = d.u32()
	e.CgroupID = d.u64()
	e.PidNS = d.u32()
	e.MntNS = d.u32()
	e.Tty = d.u32()
	e.CapEff = d.u64()
	copy(e.Comm[:], b[d.off:d.off+16])
	d.off += 16
	e.Ret = int64(d.u64())
	for i := range e.Raw {
		e.Raw[i] = d.u64()
	}
	e.Fd = int32(d.u32())
	e.Fd2 = int32(d.u32())
	e.Flags = d.u32()
	e.Mode = d.u32()
	e.Arg3 = d.u64()
	e.Family = d.u16()
	e.Proto = d.u8()
	e.SockType = d.u8()
	e.ExeIno = d.u64()
	e.ExeDev = d.u32()
	e.ExeCtime = int64(d.u64())
	e.ExeMtime = int64(d.u64())
	e.ChildPid = d.u32()
	e.ChildTid = d.u32()
	e.Flags2 = d.u32()
	e.Src = d.addrPort()
	e.Dst = d.addrPort()
	e.Path = append(e.Path[:0], d.bytes()...)
	e.Path2 = append(e.Path2[:0], d.bytes()...)
	e.UnixPath = append(e.UnixPath[:0], d.bytes()...)
	e.Exe = append(e.Exe[:0], d.bytes()...)
	e.Argv = append(e.Argv[:0], d.bytes()...)
	e.Cwd = append(e.Cwd[:0], d.bytes()...)
	// minor version 1 fields; absent in files of minor version 0
	e.RealPath = e.RealPath[:0]
	e.FileType, e.FileIno, e.FileDev = 0, 0, 0
	if d.err == nil && d.off < len(b) {
		e.RealPath = append(e.RealPath, d.bytes()...)
		e.FileType = event.FDType(d.u8())
		e.FileIno = d.u64()
		e.FileDev = d.u32()
	}
	// format 2.1 fields; absent in older files (zero: <NA> in rules)
	e.VPid, e.VTid, e.VPgid, e.CapPrm, e.CapInh = 0, 0, 0, 0, 0
	e.Env = e.Env[:0]
	if d.err == nil && d.off < len(b) {
		e.VPid = d.u32()
		e.VTid = d.u32()
		e.VPgid = d.u32()
		e.CapPrm = d.u64()
		e.CapInh = d.u64()
		e.Env = append(e.Env, d.bytes()...)
	}
	return d.err
}

// appendString appends a uvarint-length-prefixed string.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendSnapshot appends the binary encoding of a snapshot (see
// docs/trace-format.md). Map entries are written in sorted key order so
// the encoding is deterministic.
func appendSnapshot(b []byte, s *event.Snapshot) []byte {
	b = le.AppendUint64(b, uint64(s.Time))
	b = le.AppendUint64(b, uint64(s.BootTime))
	b = appendString(b, s.Hostname)
	b = binary.AppendUvarint(b, nilCount(s.Processes == nil, len(s.Processes)))
	for i := range s.Processes {
		b = appendProcess(b, &s.Processes[i])
	}
	b = binary.AppendUvarint(b, nilCount(s.Containers == nil, len(s.Containers)))
	for i := range s.Containers {
		b = appendContainer(b, &s.Containers[i])
	}
	b = appendCgroupMap(b, s.Cgroups)
	// format 2.1: each process's ids in its pid namespace and capability
	// sets, after everything 2.0 readers read (they ignore trailing bytes)
	b = binary.AppendUvarint(b, nilCount(false, len(s.Processes)))
	for i := range s.Processes {
		p := &s.Processes[i]
		b = le.AppendUint32(b, p.VPid)
		b = le.AppendUint32(b, p.VPgid)
		b = le.AppendUint64(b, p.CapPrm)
		b = le.AppendUint64(b, p.CapInh)
	}
	// format 2.2: each container's mounts, after the 2.1 section
	b = binary.AppendUvarint(b, nilCount(false, len(s.Containers)))
	for i := range s.Containers {
		b = appendMounts(b, s.Containers[i].Mounts)
	}
	return b
}

// nilCount encodes a slice/map length so nil and empty survive: 0 = nil,
// n+1 = n elements.
func nilCount(isNil bool, n int) uint64 {
	if isNil {
		return 0
	}
	return uint64(n) + 1
}

func appendProcess(b []byte, p *event.ProcessInfo) []byte {
	b = le.AppendUint32(b, p.Pid)
	b = le.AppendUint32(b, p.Ppid)
	b = le.AppendUint64(b, uint64(p.StartTime))
	b = appendString(b, p.Comm)
	b = appendString(b, p.Exe)
	b = binary.AppendUvarint(b, nilCount(p.Args == nil, len(p.Args)))
	for _, a := range p.Args {
		b = appendString(b, a)
	}
	b = appendString(b, p.Cwd)
	for _, v := range [...]uint32{p.Uid, p.Gid, p.Euid, p.LoginUID, p.Tty} {
		b = le.AppendUint32(b, v)
	}
	b = le.AppendUint64(b, p.CapEff)
	b = le.AppendUint64(b, p.CgroupID)
	b = le.AppendUint32(b, p.PidNS)
	b = le.AppendUint32(b, p.MntNS)
	b = le.AppendUint64(b, p.ExeIno)
	b = binary.AppendUvarint(b, nilCount(p.FDs == nil, len(p.FDs)))
	for _, f := range p.FDs {
		b = le.AppendUint32(b, uint32(f.Num))
		b = append(b, byte(f.Type))
		b = appendString(b, f.Name)
	}
	return b
}

func appendContainer(b []byte, c *event.ContainerInfo) []byte {
	for _, s := range [...]string{c.ID, c.Name, c.Image, c.ImageRepo, c.ImageTag, c.ImageDigest, c.PodName, c.PodUID, c.Namespace, c.CgroupPath, c.Runtime} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, nilCount(c.Labels == nil, len(c.Labels)))
	for _, k := range sortedKeys(c.Labels) {
		b = appendString(b, k)
		b = appendString(b, c.Labels[k])
	}
	if c.Privileged {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = le.AppendUint64(b, uint64(c.StartTime))
	b = le.AppendUint64(b, c.CgroupID)
	return b
}

// appendMounts appends a container's mounts (format 2.2): count, then
// each source, dest, mode, propagation and a read-write byte.
func appendMounts(b []byte, ms []event.Mount) []byte {
	b = binary.AppendUvarint(b, nilCount(ms == nil, len(ms)))
	for _, m := range ms {
		b = appendString(b, m.Source)
		b = appendString(b, m.Dest)
		b = appendString(b, m.Mode)
		b = appendString(b, m.Propagation)
		if m.RW {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

func decodeMounts(d *decoder) []event.Mount {
	n, isNil := d.count(5)
	if isNil {
		return nil
	}
	ms := make([]event.Mount, n)
	for i := 0; i < n && d.err == nil; i++ {
		ms[i].Source = d.str()
		ms[i].Dest = d.str()
		ms[i].Mode = d.str()
		ms[i].Propagation = d.str()
		ms[i].RW = d.u8() != 0
	}
	return ms
}

func appendCgroupMap(b []byte, m map[uint64]string) []byte {
	b = binary.AppendUvarint(b, nilCount(m == nil, len(m)))
	for _, id := range sortedIDs(m) {
		b = le.AppendUint64(b, id)
		b = appendString(b, m[id])
	}
	return b
}

// count reads a nilCount-encoded length, refusing counts that could not fit
// in what is left of the record at minSize bytes per element (so a damaged
// count cannot make the reader allocate a huge slice).
func (d *decoder) count(minSize int) (n int, isNil bool) {
	v := d.uvarint()
	if d.err != nil {
		return 0, true
	}
	if v == 0 {
		return 0, true
	}
	v--
	if v > math.MaxInt32 || int(v)*minSize > len(d.b)-d.off {
		d.err = fmt.Errorf("at record byte %d: count %d exceeds record: %w", d.off, v, errShort)
		return 0, true
	}
	return int(v), false
}

func decodeSnapshot(b []byte) (*event.Snapshot, error) {
	d := decoder{b: b}
	s := &event.Snapshot{}
	s.Time = int64(d.u64())
	s.BootTime = int64(d.u64())
	s.Hostname = d.str()
	if n, isNil := d.count(8); !isNil {
		s.Processes = make([]event.ProcessInfo, n)
		for i := 0; i < n && d.err == nil; i++ {
			decodeProcess(&d, &s.Processes[i])
		}
	}
	if n, isNil := d.count(12); !isNil {
		s.Containers = make([]event.ContainerInfo, n)
		for i := 0; i < n && d.err == nil; i++ {
			decodeContainer(&d, &s.Containers[i])
		}
	}
	s.Cgroups = decodeCgroupMap(&d)
	if d.err == nil && d.off < len(b) {
		// format 2.1 additions; absent from 2.0 snapshots
		if n, _ := d.count(24); d.err == nil && n == len(s.Processes) {
			for i := 0; i < n && d.err == nil; i++ {
				p := &s.Processes[i]
				p.VPid = d.u32()
				p.VPgid = d.u32()
				p.CapPrm = d.u64()
				p.CapInh = d.u64()
			}
		} else if d.err == nil {
			d.err = fmt.Errorf("process ids for %d processes, the snapshot has %d", n, len(s.Processes))
		}
	}
	if d.err == nil && d.off < len(b) {
		// format 2.2 additions: the containers' mounts
		if n, _ := d.count(1); d.err == nil && n == len(s.Containers) {
			for i := 0; i < n && d.err == nil; i++ {
				s.Containers[i].Mounts = decodeMounts(&d)
			}
		} else if d.err == nil {
			d.err = fmt.Errorf("mounts for %d containers, the snapshot has %d", n, len(s.Containers))
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("snapshot: %w", d.err)
	}
	return s, nil
}

func decodeProcess(d *decoder, p *event.ProcessInfo) {
	p.Pid = d.u32()
	p.Ppid = d.u32()
	p.StartTime = int64(d.u64())
	p.Comm = d.str()
	p.Exe = d.str()
	if n, isNil := d.count(1); !isNil {
		p.Args = make([]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			p.Args[i] = d.str()
		}
	}
	p.Cwd = d.str()
	p.Uid = d.u32()
	p.Gid = d.u32()
	p.Euid = d.u32()
	p.LoginUID = d.u32()
	p.Tty = d.u32()
	p.CapEff = d.u64()
	p.CgroupID = d.u64()
	p.PidNS = d.u32()
	p.MntNS = d.u32()
	p.ExeIno = d.u64()
	if n, isNil := d.count(6); !isNil {
		p.FDs = make([]event.FDInfo, n)
		for i := 0; i < n && d.err == nil; i++ {
			p.FDs[i].Num = int32(d.u32())
			p.FDs[i].Type = event.FDType(d.u8())
			p.FDs[i].Name = d.str()
		}
	}
}

func decodeContainer(d *decoder, c *event.ContainerInfo) {
	for _, s := range [...]*string{&c.ID, &c.Name, &c.Image, &c.ImageRepo, &c.ImageTag, &c.ImageDigest, &c.PodName, &c.PodUID, &c.Namespace, &c.CgroupPath, &c.Runtime} {
		*s = d.str()
	}
	if n, isNil := d.count(2); !isNil {
		c.Labels = make(map[string]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.str()
			c.Labels[k] = d.str()
		}
	}
	c.Privileged = d.u8() != 0
	c.StartTime = int64(d.u64())
	c.CgroupID = d.u64()
}

func decodeCgroupMap(d *decoder) map[uint64]string {
	n, isNil := d.count(9)
	if isNil {
		return nil
	}
	m := make(map[uint64]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.u64()
		m[id] = d.str()
	}
	return m
}
