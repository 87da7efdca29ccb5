package proctable

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/agent/container"
	"github.com/driftwatch/driftwatch/event"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat start times. It is 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicks = 100

// TakeSnapshot scans procRoot (normally /proc) for every process and the
// cgroup v2 tree under cgroupMount ("" when there is none) and returns the
// start-of-capture context a replay needs: processes with ancestry facts,
// credentials, namespaces, cgroup ids and open fds; the cgroup id → path
// map; the containers found in it; hostname and boot time. Processes that
// exit or deny access while being read are skipped or kept with the facts
// that could be read (kernel threads have no exe, argv or fds).
func TakeSnapshot(procRoot, cgroupMount string) (*event.Snapshot, error) {
	bootTime, err := readBootTime(filepath.Join(procRoot, "stat"))
	if err != nil {
		return nil, err
	}
	snap := &event.Snapshot{Time: time.Now().UnixNano(), BootTime: bootTime, Cgroups: map[uint64]string{}}
	snap.Hostname, _ = os.Hostname()

	byPath := map[string]uint64{}
	if cgroupMount != "" {
		cg, err := container.WalkCgroups(cgroupMount)
		if err != nil && len(cg) == 0 {
			return nil, fmt.Errorf("snapshot: cgroup tree %s: %w", cgroupMount, err)
		}
		snap.Cgroups = cg
		for id, p := range cg {
			byPath[p] = id
		}
	}

	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	sc := &scanner{procRoot: procRoot, cgroupMount: cgroupMount, bootTime: bootTime, byPath: byPath, nets: map[uint64]map[uint64]event.FDInfo{}}
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || !e.IsDir() {
			continue
		}
		pi, ok := sc.process(uint32(pid))
		if ok {
			snap.Processes = append(snap.Processes, pi)
		}
	}
	sort.Slice(snap.Processes, func(i, j int) bool { return snap.Processes[i].Pid < snap.Processes[j].Pid })

	seen := map[string]bool{}
	ids := make([]uint64, 0, len(snap.Cgroups))
	for id := range snap.Cgroups {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return snap.Cgroups[ids[i]] < snap.Cgroups[ids[j]] })
	for _, id := range ids {
		p := snap.Cgroups[id]
		cid, rt := container.ParseContainerID(p)
		if cid == event.HostContainerID || seen[cid] {
			continue
		}
		seen[cid] = true
		snap.Containers = append(snap.Containers, event.ContainerInfo{ID: cid, Runtime: rt, CgroupID: id, CgroupPath: p})
	}
	return snap, nil
}

// readBootTime returns the btime line of /proc/stat in ns since the epoch.
func readBootTime(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("boot time: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s line %d: btime: %w", path, i+1, err)
			}
			return s * int64(time.Second), nil
		}
	}
	return 0, fmt.Errorf("%s: no btime line", path)
}

type scanner struct {
	procRoot    string
	cgroupMount string
	bootTime    int64
	byPath      map[string]uint64
	// nets caches socket inode → description per network namespace inode.
	nets map[uint64]map[uint64]event.FDInfo
}

// process reads one /proc/PID; ok is false when it vanished or is unreadable.
func (s *scanner) process(pid uint32) (event.ProcessInfo, bool) {
	dir := filepath.Join(s.procRoot, strconv.FormatUint(uint64(pid), 10))
	pi := event.ProcessInfo{Pid: pid, LoginUID: 0xffffffff}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return pi, false
	}
	if err := parseStat(stat, &pi, s.bootTime); err != nil {
		return pi, false
	}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		parseStatus(b, &pi)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "loginuid")); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			pi.LoginUID = uint32(v)
		}
	}
	pi.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	if pi.Exe != "" {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(dir, "exe"), &st) == nil {
			pi.ExeIno = st.Ino
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		pi.Args = event.SplitNul(b)
	}
	pi.Cwd, _ = os.Readlink(filepath.Join(dir, "cwd"))
	pi.PidNS = uint32(nsInode(filepath.Join(dir, "ns", "pid")))
	pi.MntNS = uint32(nsInode(filepath.Join(dir, "ns", "mnt")))
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		pi.CgroupID = s.cgroupID(b)
	}
	pi.FDs = s.fds(dir)
	return pi, true
}

// parseStat fills ppid, comm, tty and start time from /proc/PID/stat. The
// comm is between the first '(' and the LAST ')' (it may contain ')').
func parseStat(b []byte, pi *event.ProcessInfo, bootTime int64) error {
	open := bytes.IndexByte(b, '(')
	closeP := bytes.LastIndexByte(b, ')')
	if open < 0 || closeP < open {
		return fmt.Errorf("stat of pid %d: no comm", pi.Pid)
	}
	pi.Comm = string(b[open+1 : closeP])
	f := strings.Fields(string(b[closeP+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return fmt.Errorf("stat of pid %d: %d fields after comm, want >= 20", pi.Pid, len(f))
	}
	ppid, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return fmt.Errorf("stat of pid %d: ppid: %w", pi.Pid, err)
	}
	pi.Ppid = uint32(ppid)
	if tty, err := strconv.ParseInt(f[4], 10, 64); err == nil {
		pi.Tty = uint32(tty)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return fmt.Errorf("stat of pid %d: starttime: %w", pi.Pid, err)
	}
	pi.StartTime = bootTime + int64(st)*(int64(time.Second)/clockTicks)
	return nil
}

// parseStatus fills uid/gid/euid, the capability sets and the ids in the
// process's pid namespace from /proc/PID/status.
func parseStatus(b []byte, pi *event.ProcessInfo) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Uid":
			if len(f) >= 2 {
				pi.Uid = parseU32(f[0])
				pi.Euid = parseU32(f[1])
			}
		case "Gid":
			if len(f) >= 1 {
				pi.Gid = parseU32(f[0])
			}
		case "CapEff":
			if len(f) == 1 {
				pi.CapEff, _ = strconv.ParseUint(f[0], 16, 64)
			}
		case "CapPrm":
			if len(f) == 1 {
				pi.CapPrm, _ = strconv.ParseUint(f[0], 16, 64)
			}
		case "CapInh":
			if len(f) == 1 {
				pi.CapInh, _ = strconv.ParseUint(f[0], 16, 64)
			}
		case "NSpid":
			// from the outermost namespace to the process's own
			if len(f) >= 1 {
				pi.VPid = parseU32(f[len(f)-1])
			}
		case "NSpgid":
			if len(f) >= 1 {
				pi.VPgid = parseU32(f[len(f)-1])
			}
		}
	}
}

func parseU32(s string) uint32 {
	v, _ := strconv.ParseUint(s, 10, 32)
	return uint32(v)
}

// nsInode reads a namespace link ("pid:[4026531836]") and returns its inode.
func nsInode(link string) uint64 {
	t, err := os.Readlink(link)
	if err != nil {
		return 0
	}
	return bracketNumber(t)
}

// bracketNumber returns N from "...[N]", 0 when absent.
func bracketNumber(s string) uint64 {
	i := strings.LastIndexByte(s, '[')
	j := strings.LastIndexByte(s, ']')
	if i < 0 || j < i {
		return 0
	}
	v, _ := strconv.ParseUint(s[i+1:j], 10, 64)
	return v
}

// cgroupID returns the id of the cgroup v2 path in /proc/PID/cgroup.
func (s *scanner) cgroupID(b []byte) uint64 {
	for _, line := range strings.Split(string(b), "\n") {
		p, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		if id, ok := s.byPath[p]; ok {
			return id
		}
		if s.cgroupMount == "" {
			return 0
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(s.cgroupMount, p), &st) == nil {
			s.byPath[p] = st.Ino
			return st.Ino
		}
		return 0
	}
	return 0
}

// fds lists /proc/PID/fd with Falco-like types and names.
func (s *scanner) fds(dir string) []event.FDInfo {
	fdDir := filepath.Join(dir, "fd")
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil
	}
	var out []event.FDInfo
	var sockets map[uint64]event.FDInfo
	for _, e := range ents {
		n, err := strconv.ParseInt(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		link := filepath.Join(fdDir, e.Name())
		target, err := os.Readlink(link)
		if err != nil {
			continue
		}
		fi := event.FDInfo{Num: int32(n), Name: target}
		switch {
		case strings.HasPrefix(target, "socket:["):
			if sockets == nil {
				sockets = s.socketTable(dir)
			}
			if d, ok := sockets[bracketNumber(target)]; ok {
				fi.Type, fi.Name = d.Type, d.Name
			}
		case strings.HasPrefix(target, "pipe:["):
			fi.Type = event.FDPipe
		case strings.HasPrefix(target, "anon_inode:"):
			fi.Type = anonType(target)
		case strings.HasPrefix(target, "/memfd:"):
			fi.Type = event.FDMemfd
		case strings.HasPrefix(target, "/"):
			fi.Type = event.FDFile
			var st syscall.Stat_t
			if syscall.Stat(link, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
				fi.Type = event.FDDirectory
			}
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Num < out[j].Num })
	return out
}

func anonType(t string) event.FDType {
	switch {
	case strings.Contains(t, "eventfd"):
		return event.FDEvent
	case strings.Contains(t, "eventpoll"):
		return event.FDEventPoll
	case strings.Contains(t, "inotify"):
		return event.FDInotify
	case strings.Contains(t, "timerfd"):
		return event.FDTimerFD
	case strings.Contains(t, "signalfd"):
		return event.FDSignalFD
	case strings.Contains(t, "bpf"):
		return event.FDBPF
	}
	return event.FDUnknown
}

// socketTable returns the socket descriptions of the network namespace the
// process in dir lives in, reading /proc/PID/net/* once per namespace.
func (s *scanner) socketTable(dir string) map[uint64]event.FDInfo {
	ns := nsInode(filepath.Join(dir, "ns", "net"))
	if t, ok := s.nets[ns]; ok && ns != 0 {
		return t
	}
	t := map[uint64]event.FDInfo{}
	net := filepath.Join(dir, "net")
	for _, f := range []struct {
		name  string
		proto string
	}{{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"}} {
		if b, err := os.ReadFile(filepath.Join(net, f.name)); err == nil {
			parseInetTable(b, f.proto, t)
		}
	}
	if b, err := os.ReadFile(filepath.Join(net, "unix")); err == nil {
		parseUnixTable(b, t)
	}
	if b, err := os.ReadFile(filepath.Join(net, "netlink")); err == nil {
		parseNetlinkTable(b, t)
	}
	if ns != 0 {
		s.nets[ns] = t
	}
	return t
}

type inetSock struct {
	ino           uint64
	local, remote netip.AddrPort
	listen        bool
}

// parseInetTable reads /proc/net/{tcp,tcp6,udp,udp6}. A listening (or
// unconnected) socket is named "ip:port"; a connected one
// "client:port->server:port" as Falco does, taking the local end as the
// server when its port is one this table listens on.
func parseInetTable(b []byte, proto string, out map[uint64]event.FDInfo) {
	var socks []inetSock
	listening := map[uint16]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		l, ok1 := parseHexAddr(f[1])
		r, ok2 := parseHexAddr(f[2])
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		st := f[3]
		listen := (proto == "tcp" && st == "0A") || (proto == "udp" && r.Port() == 0 && r.Addr().IsUnspecified())
		if listen {
			listening[l.Port()] = true
		}
		socks = append(socks, inetSock{ino: ino, local: l, remote: r, listen: listen})
	}
	for _, s := range socks {
		if s.ino == 0 {
			continue
		}
		typ := event.FDIPv4
		if s.local.Addr().Is6() {
			typ = event.FDIPv6
		}
		var name string
		switch {
		case s.listen:
			name = FormatEndpoint(s.local)
		case listening[s.local.Port()]:
			name = FormatTuple(s.remote, s.local)
		default:
			name = FormatTuple(s.local, s.remote)
		}
		out[s.ino] = event.FDInfo{Type: typ, Name: name}
	}
}

// parseHexAddr parses "0100007F:1F90" (IPv4) or 32 hex digits (IPv6) as the
// kernel prints them: the address as host-order 32-bit words.
func parseHexAddr(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	// Each 32-bit word is printed in host (little-endian) order.
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// parseUnixTable reads /proc/net/unix: sockets are named by their path.
func parseUnixTable(b []byte, out map[uint64]event.FDInfo) {
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[min(1, len(lines)):] {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		ino, err := strconv.ParseUint(f[6], 10, 64)
		if err != nil {
			continue
		}
		name := ""
		if len(f) >= 8 {
			name = f[7]
		}
		out[ino] = event.FDInfo{Type: event.FDUnix, Name: name}
	}
}

// parseNetlinkTable reads /proc/net/netlink (inode is the last column).
func parseNetlinkTable(b []byte, out map[uint64]event.FDInfo) {
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[min(1, len(lines)):] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		ino, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			continue
		}
		out[ino] = event.FDInfo{Type: event.FDNetlink}
	}
}

// FormatEndpoint renders one socket end as Falco does: "ip:port", IPv6
// addresses without brackets (inet_ntop form).
func FormatEndpoint(ap netip.AddrPort) string {
	return string(AppendEndpoint(nil, ap))
}

// AppendEndpoint is FormatEndpoint appending to b.
func AppendEndpoint(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	if !a.IsValid() {
		b = append(b, "0.0.0.0"...)
	} else {
		b = a.WithZone("").AppendTo(b)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

// FormatTuple renders a connected socket as Falco's fd.name:
// "clientip:clientport->serverip:serverport".
func FormatTuple(client, server netip.AddrPort) string {
	b := AppendEndpoint(make([]byte, 0, 48), client)
	b = append(b, "->"...)
	return string(AppendEndpoint(b, server))
}
