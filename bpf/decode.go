package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/driftwatch/driftwatch/event"
)

// Record layout, mirrored from struct ev_hdr in sensor.bpf.c.
const (
	recVersion = 3
	hdrSize    = 328

	offTs       = 0
	offCgroup   = 8
	offCapEff   = 16
	offRet      = 24
	offRaw      = 32
	offArg3     = 80
	offExeIno   = 88
	offExeCtime = 96
	offExeMtime = 104
	offPid      = 112
	offTid      = 116
	offPpid     = 120
	offUID      = 124
	offGID      = 128
	offEUID     = 132
	offEGID     = 136
	offLoginUID = 140
	offPidNS    = 144
	offMntNS    = 148
	offTty      = 152
	offFlags    = 156
	offMode     = 160
	offFd       = 164
	offFd2      = 168
	offFlags2   = 172
	offExeDev   = 176
	offChildPid = 180
	offChildTid = 184
	offSyscall  = 188
	offCPU      = 190
	offKind     = 192
	offSockType = 193
	offFamily   = 194
	offProto    = 196
	offVersion  = 197
	offSport    = 198
	offDport    = 200
	offRegions  = 202 // u16 off[7], then u16 len[7]
	offFdType   = 230
	offSaddr    = 232
	offDaddr    = 248
	offComm     = 264
	offFileIno  = 280
	offFileDev  = 288
	offVPid     = 296
	offVTid     = 300
	offVPgid    = 304
	offEnvOff   = 308 // u16 offset, then u16 length of the environment
	offEnvLen   = 310
	offCapPrm   = 312
	offCapInh   = 320
)

// Kernel file types in the record's fd_type: S_IFMT>>12 of the inode, or
// ftAnon for an inode without a type.
const (
	ftFIFO = 0o01
	ftChr  = 0o02
	ftDir  = 0o04
	ftBlk  = 0o06
	ftReg  = 0o10
	ftLnk  = 0o12
	ftSock = 0o14
	ftAnon = 15
)

// String regions, in the order of off[]/len[].
const (
	regPath = iota
	regPath2
	regUnix
	regExe
	regCwd
	regArgv
	regRealPath
	regCount
)

// ErrShortRecord and ErrBadRecord are returned by Decode for records that
// are not a complete, current-version sensor record.
var (
	ErrShortRecord = errors.New("bpf: record shorter than its header")
	ErrBadRecord   = errors.New("bpf: malformed record")
)

// Clock converts the kernel's boot-time nanoseconds (bpf_ktime_get_boot_ns)
// to wall-clock nanoseconds since the Unix epoch.
type Clock struct {
	// BootToWall is CLOCK_REALTIME − CLOCK_BOOTTIME in nanoseconds.
	BootToWall int64
}

// Wall returns the wall-clock time of a boot-time timestamp.
func (c Clock) Wall(boot uint64) int64 { return int64(boot) + c.BootToWall }

var le = binary.LittleEndian

// Decode decodes one ring-buffer record into ev. It reuses ev's byte
// slices (ev.Reset) and allocates nothing once they have grown to size.
// It sets every field but Num, which the Sensor assigns.
func Decode(raw []byte, ev *event.Event, clk Clock) error {
	if len(raw) < hdrSize {
		return ErrShortRecord
	}
	if raw[offVersion] != recVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadRecord, raw[offVersion], recVersion)
	}
	kind := event.Kind(raw[offKind])
	if kind >= event.KindCount {
		return fmt.Errorf("%w: kind %d", ErrBadRecord, kind)
	}
	// Validate the string regions before touching ev.
	var offs, lens [regCount]int
	for i := 0; i < regCount; i++ {
		o := int(le.Uint16(raw[offRegions+2*i:]))
		n := int(le.Uint16(raw[offRegions+2*regCount+2*i:]))
		if n > 0 && (o < hdrSize || o+n > len(raw)) {
			return fmt.Errorf("%w: region %d [%d,+%d) outside %d bytes", ErrBadRecord, i, o, n, len(raw))
		}
		offs[i], lens[i] = o, n
	}
	envOff, envLen := int(le.Uint16(raw[offEnvOff:])), int(le.Uint16(raw[offEnvLen:]))
	if envLen > 0 && (envOff < hdrSize || envOff+envLen > len(raw)) {
		return fmt.Errorf("%w: environment [%d,+%d) outside %d bytes", ErrBadRecord, envOff, envLen, len(raw))
	}

	ev.Reset()
	ev.Kind = kind
	ev.Syscall = le.Uint16(raw[offSyscall:])
	ev.CPU = le.Uint16(raw[offCPU:])
	ev.Time = clk.Wall(le.Uint64(raw[offTs:]))
	ev.Pid = le.Uint32(raw[offPid:])
	ev.Tid = le.Uint32(raw[offTid:])
	ev.Ppid = le.Uint32(raw[offPpid:])
	ev.Uid = le.Uint32(raw[offUID:])
	ev.Gid = le.Uint32(raw[offGID:])
	ev.Euid = le.Uint32(raw[offEUID:])
	ev.Egid = le.Uint32(raw[offEGID:])
	ev.LoginUID = le.Uint32(raw[offLoginUID:])
	ev.CgroupID = le.Uint64(raw[offCgroup:])
	ev.PidNS = le.Uint32(raw[offPidNS:])
	ev.MntNS = le.Uint32(raw[offMntNS:])
	ev.Tty = le.Uint32(raw[offTty:])
	ev.CapEff = le.Uint64(raw[offCapEff:])
	copy(ev.Comm[:], raw[offComm:offComm+16])
	ev.Ret = int64(le.Uint64(raw[offRet:]))
	for i := range ev.Raw {
		ev.Raw[i] = le.Uint64(raw[offRaw+8*i:])
	}
	ev.Fd = int32(le.Uint32(raw[offFd:]))
	ev.Fd2 = int32(le.Uint32(raw[offFd2:]))
	ev.Flags = le.Uint32(raw[offFlags:])
	ev.Mode = le.Uint32(raw[offMode:])
	ev.Arg3 = le.Uint64(raw[offArg3:])
	ev.Flags2 = le.Uint32(raw[offFlags2:])

	ev.Family = le.Uint16(raw[offFamily:])
	ev.Proto = raw[offProto]
	ev.SockType = raw[offSockType]
	if ev.Family == event.AFInet || ev.Family == event.AFInet6 {
		ev.Src = addrPort(raw[offSaddr:offSaddr+16], le.Uint16(raw[offSport:]), ev.Family)
		ev.Dst = addrPort(raw[offDaddr:offDaddr+16], le.Uint16(raw[offDport:]), ev.Family)
	}

	ev.ExeIno = le.Uint64(raw[offExeIno:])
	ev.ExeDev = encodeDev(le.Uint32(raw[offExeDev:]))
	ev.ExeCtime = int64(le.Uint64(raw[offExeCtime:]))
	ev.ExeMtime = int64(le.Uint64(raw[offExeMtime:]))
	ev.ChildPid = le.Uint32(raw[offChildPid:])
	ev.ChildTid = le.Uint32(raw[offChildTid:])
	ev.VPid = le.Uint32(raw[offVPid:])
	ev.VTid = le.Uint32(raw[offVTid:])
	ev.VPgid = le.Uint32(raw[offVPgid:])
	ev.CapPrm = le.Uint64(raw[offCapPrm:])
	ev.CapInh = le.Uint64(raw[offCapInh:])
	ev.Env = appendRegion(ev.Env, raw, envOff, envLen)

	ev.Path = appendRegion(ev.Path, raw, offs[regPath], lens[regPath])
	ev.Path2 = appendRegion(ev.Path2, raw, offs[regPath2], lens[regPath2])
	ev.UnixPath = appendRegion(ev.UnixPath, raw, offs[regUnix], lens[regUnix])
	ev.Exe = appendRegion(ev.Exe, raw, offs[regExe], lens[regExe])
	ev.Cwd = appendRegion(ev.Cwd, raw, offs[regCwd], lens[regCwd])
	ev.Argv = appendRegion(ev.Argv, raw, offs[regArgv], lens[regArgv])
	ev.RealPath = appendRegion(ev.RealPath, raw, offs[regRealPath], lens[regRealPath])
	if ev.Flags2&event.FlagFileFacts != 0 {
		ev.FileType = fileType(raw[offFdType], ev.Family)
		ev.FileIno = le.Uint64(raw[offFileIno:])
		ev.FileDev = encodeDev(le.Uint32(raw[offFileDev:]))
	}
	return nil
}

// fileType maps the kernel's inode type (and a socket's family) to the
// descriptor type rules see as fd.type.
func fileType(ft byte, family uint16) event.FDType {
	switch ft {
	case ftReg, ftChr, ftBlk, ftLnk:
		return event.FDFile
	case ftDir:
		return event.FDDirectory
	case ftFIFO:
		return event.FDPipe
	case ftSock:
		return event.SocketFDType(family)
	}
	return event.FDUnknown
}

func appendRegion(dst, raw []byte, off, n int) []byte {
	if n == 0 {
		return dst[:0]
	}
	return append(dst[:0], raw[off:off+n]...)
}

// addrPort builds an address from the record's 16 address bytes; the zero
// AddrPort when both address and port are unset.
func addrPort(b []byte, port uint16, family uint16) netip.AddrPort {
	var a netip.Addr
	if family == event.AFInet {
		v4 := [4]byte(b[:4])
		if v4 == [4]byte{} && port == 0 {
			return netip.AddrPort{}
		}
		a = netip.AddrFrom4(v4)
	} else {
		v6 := [16]byte(b[:16])
		if v6 == [16]byte{} && port == 0 {
			return netip.AddrPort{}
		}
		a = netip.AddrFrom16(v6)
	}
	return netip.AddrPortFrom(a, port)
}

// encodeDev turns a kernel dev_t (MAJOR<<20 | MINOR) into the encoding that
// stat(2) and /proc use (new_encode_dev).
func encodeDev(kdev uint32) uint32 {
	major, minor := kdev>>20, kdev&0xfffff
	return (minor & 0xff) | (major << 8) | ((minor &^ 0xff) << 12)
}
