package bpf

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestRecordLayoutMatchesBTF checks decode.go's offsets against struct
// ev_hdr in the BTF of the committed object (sensor.bpf.c anchors the type
// with dw_ev_hdr_btf). Needs no root and no clang: a C change that moves
// a field, regenerated without updating decode.go, fails here.
func TestRecordLayoutMatchesBTF(t *testing.T) {
	spec, err := loadSensor()
	if err != nil {
		t.Fatal(err)
	}
	var hdr *btf.Struct
	if err := spec.Types.TypeByName("ev_hdr", &hdr); err != nil {
		t.Fatalf("struct ev_hdr not in the object's BTF (is the dw_ev_hdr_btf anchor gone?): %v", err)
	}
	if hdr.Size != hdrSize {
		t.Errorf("sizeof(struct ev_hdr) = %d, decode.go's hdrSize = %d", hdr.Size, hdrSize)
	}
	// member → decode.go offset and the size decode.go reads there.
	want := map[string]struct{ off, size int }{
		"ts": {offTs, 8}, "cgroup_id": {offCgroup, 8}, "cap_eff": {offCapEff, 8}, "ret": {offRet, 8},
		"raw": {offRaw, 6 * 8}, "arg3": {offArg3, 8}, "exe_ino": {offExeIno, 8},
		"exe_ctime": {offExeCtime, 8}, "exe_mtime": {offExeMtime, 8},
		"pid": {offPid, 4}, "tid": {offTid, 4}, "ppid": {offPpid, 4}, "uid": {offUID, 4}, "gid": {offGID, 4},
		"euid": {offEUID, 4}, "egid": {offEGID, 4}, "loginuid": {offLoginUID, 4}, "pidns": {offPidNS, 4},
		"mntns": {offMntNS, 4}, "tty": {offTty, 4}, "flags": {offFlags, 4}, "mode": {offMode, 4},
		"fd": {offFd, 4}, "fd2": {offFd2, 4}, "flags2": {offFlags2, 4}, "exe_dev": {offExeDev, 4},
		"child_pid": {offChildPid, 4}, "child_tid": {offChildTid, 4},
		"syscall": {offSyscall, 2}, "cpu": {offCPU, 2}, "kind": {offKind, 1}, "sock_type": {offSockType, 1},
		"family": {offFamily, 2}, "proto": {offProto, 1}, "version": {offVersion, 1},
		"sport": {offSport, 2}, "dport": {offDport, 2},
		"off": {offRegions, 2 * regCount}, "len": {offRegions + 2*regCount, 2 * regCount},
		"fd_type": {offFdType, 1}, "saddr": {offSaddr, 16}, "daddr": {offDaddr, 16}, "comm": {offComm, 16},
		"file_ino": {offFileIno, 8}, "file_dev": {offFileDev, 4},
		"vpid": {offVPid, 4}, "vtid": {offVTid, 4}, "vpgid": {offVPgid, 4},
		"env_off": {offEnvOff, 2}, "env_len": {offEnvLen, 2}, "cap_prm": {offCapPrm, 8}, "cap_inh": {offCapInh, 8},
	}
	padding := map[string]bool{"pad": true, "pad2": true}
	seen := map[string]bool{}
	for _, m := range hdr.Members {
		w, ok := want[m.Name]
		if !ok {
			if !padding[m.Name] {
				t.Errorf("ev_hdr.%s: not decoded by decode.go (add an off* constant and a row here)", m.Name)
			}
			continue
		}
		seen[m.Name] = true
		if got := int(m.Offset.Bytes()); got != w.off {
			t.Errorf("ev_hdr.%s at offset %d in BTF, decode.go reads %d", m.Name, got, w.off)
		}
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			t.Errorf("ev_hdr.%s: %v", m.Name, err)
			continue
		}
		if size != w.size {
			t.Errorf("ev_hdr.%s is %d bytes in BTF, decode.go reads %d", m.Name, size, w.size)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("decode.go reads ev_hdr.%s, which the object's struct lacks", name)
		}
	}
}
