package bpf

// Test-only helpers: compiled into the package's tests, not into driftwatch.

import (
	"net/netip"

	"github.com/driftwatch/driftwatch/event"
)

// EncodeRecord is Decode's inverse for tests, fuzz seeds and benchmarks:
// it lays ev out as the kernel would, strings after the header.
func EncodeRecord(ev *event.Event, clk Clock) []byte {
	regions := [regCount][]byte{ev.Path, ev.Path2, ev.UnixPath, ev.Exe, ev.Cwd, ev.Argv, ev.RealPath}
	size := hdrSize
	for _, r := range regions {
		size += len(r)
	}
	size += len(ev.Env)
	raw := make([]byte, size)
	le.PutUint64(raw[offTs:], uint64(ev.Time-clk.BootToWall))
	le.PutUint64(raw[offCgroup:], ev.CgroupID)
	le.PutUint64(raw[offCapEff:], ev.CapEff)
	le.PutUint64(raw[offRet:], uint64(ev.Ret))
	for i, r := range ev.Raw {
		le.PutUint64(raw[offRaw+8*i:], r)
	}
	le.PutUint64(raw[offArg3:], ev.Arg3)
	le.PutUint64(raw[offExeIno:], ev.ExeIno)
	le.PutUint64(raw[offExeCtime:], uint64(ev.ExeCtime))
	le.PutUint64(raw[offExeMtime:], uint64(ev.ExeMtime))
	for off, v := range map[int]uint32{
		offPid: ev.Pid, offTid: ev.Tid, offPpid: ev.Ppid, offUID: ev.Uid, offGID: ev.Gid,
		offEUID: ev.Euid, offEGID: ev.Egid, offLoginUID: ev.LoginUID, offPidNS: ev.PidNS,
		offMntNS: ev.MntNS, offTty: ev.Tty, offFlags: ev.Flags, offMode: ev.Mode,
		offFd: uint32(ev.Fd), offFd2: uint32(ev.Fd2), offFlags2: ev.Flags2,
		offExeDev: decodeDev(ev.ExeDev), offChildPid: ev.ChildPid, offChildTid: ev.ChildTid,
		offVPid: ev.VPid, offVTid: ev.VTid, offVPgid: ev.VPgid,
	} {
		le.PutUint32(raw[off:], v)
	}
	le.PutUint16(raw[offSyscall:], ev.Syscall)
	le.PutUint16(raw[offCPU:], ev.CPU)
	raw[offKind] = byte(ev.Kind)
	raw[offSockType] = ev.SockType
	le.PutUint16(raw[offFamily:], ev.Family)
	raw[offProto] = ev.Proto
	raw[offVersion] = recVersion
	putAddr := func(off, portOff int, ap netip.AddrPort) {
		if !ap.IsValid() {
			return
		}
		if ap.Addr().Is4() {
			a := ap.Addr().As4()
			copy(raw[off:], a[:])
		} else {
			a := ap.Addr().As16()
			copy(raw[off:], a[:])
		}
		le.PutUint16(raw[portOff:], ap.Port())
	}
	putAddr(offSaddr, offSport, ev.Src)
	putAddr(offDaddr, offDport, ev.Dst)
	copy(raw[offComm:offComm+16], ev.Comm[:])
	if ev.Flags2&event.FlagFileFacts != 0 {
		raw[offFdType] = kernelFileType(ev.FileType)
		le.PutUint64(raw[offFileIno:], ev.FileIno)
		le.PutUint32(raw[offFileDev:], decodeDev(ev.FileDev))
	}
	pos := hdrSize
	for i, r := range regions {
		if len(r) == 0 {
			continue
		}
		le.PutUint16(raw[offRegions+2*i:], uint16(pos))
		le.PutUint16(raw[offRegions+2*regCount+2*i:], uint16(len(r)))
		pos += copy(raw[pos:], r)
	}
	le.PutUint64(raw[offCapPrm:], ev.CapPrm)
	le.PutUint64(raw[offCapInh:], ev.CapInh)
	if len(ev.Env) > 0 {
		le.PutUint16(raw[offEnvOff:], uint16(pos))
		le.PutUint16(raw[offEnvLen:], uint16(len(ev.Env)))
		copy(raw[pos:], ev.Env)
	}
	return raw
}

func decodeDev(dev uint32) uint32 {
	major := (dev >> 8) & 0xfff
	minor := (dev & 0xff) | ((dev >> 12) & 0xfff00)
	return major<<20 | minor
}

// kernelFileType is fileType's inverse for EncodeRecord.
func kernelFileType(t event.FDType) byte {
	switch t {
	case event.FDFile:
		return ftReg
	case event.FDDirectory:
		return ftDir
	case event.FDPipe:
		return ftFIFO
	case event.FDIPv4, event.FDIPv6, event.FDUnix, event.FDNetlink:
		return ftSock
	}
	return ftAnon
}
