package bpf

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

// TestResolvedPathLength: the kernel path of an opened file is read whole
// up to PATH_MAX (4096) bytes, as is the path string passed; a file whose
// path is longer is reported by its last bytes and marked
// FlagRealPathTruncated.
func TestResolvedPathLength(t *testing.T) {
	c := sensor(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("d", 200)
	// A path of just under 4096 bytes, and one far beyond.
	fits := (4000 - len(dir)) / 201
	tests := []struct {
		name   string
		levels int
	}{
		{"under PATH_MAX", fits},
		{"over PATH_MAX", 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cg := newCgroup(t)
			c.watch(cg.id)
			base := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.Mkdir(base, 0o755); err != nil {
				t.Fatal(err)
			}
			_, cmd := cg.run(t, helper(t), "deep", base, strconv.Itoa(tc.levels))
			evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
			full := base + strings.Repeat("/"+name, tc.levels) + "/f"
			rel := find(evs, func(e *event.Event) bool { return isSys(event.SysOpenat)(e) && string(e.Path) == "f" })
			if rel == nil {
				t.Fatalf("no openat of f:\n%s", dump(evs))
			}
			if len(full) < 4096 {
				if string(rel.RealPath) != full || rel.Flags2&event.FlagRealPathTruncated != 0 {
					t.Errorf("relative open: resolved %d bytes (flags2 %#x), want the whole %d-byte path", len(rel.RealPath), rel.Flags2, len(full))
				}
				abs := find(evs, func(e *event.Event) bool { return isSys(event.SysOpenat)(e) && string(e.Path) == full })
				if abs == nil {
					t.Fatalf("no openat of the %d-byte absolute path (user string cut?)", len(full))
				}
				if abs.Flags2&event.FlagPathTruncated != 0 || string(abs.RealPath) != full {
					t.Errorf("absolute open of %d bytes: flags2 %#x, resolved %d bytes", len(full), abs.Flags2, len(abs.RealPath))
				}
				return
			}
			if rel.Flags2&event.FlagRealPathTruncated == 0 {
				t.Errorf("%d-byte path not marked truncated (resolved %d bytes)", len(full), len(rel.RealPath))
			}
			if len(rel.RealPath) > 4096 || len(rel.RealPath) < 4096-201 || !strings.HasSuffix(full, string(rel.RealPath)) {
				t.Errorf("truncated path: %d bytes, want the last bytes (<= 4096) of the %d-byte path", len(rel.RealPath), len(full))
			}
		})
	}
}

// TestResolvedPathOfPipe: a pipe re-opened by /proc/self/fd/N has no path;
// RealPath stays empty (not "/") and the file facts say pipe.
func TestResolvedPathOfPipe(t *testing.T) {
	c := sensor(t)
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "pipeopen")
	evs := c.waitFor(t, cg.id, "helper's exit", hasExit(cmd.Process.Pid))
	op := find(evs, func(e *event.Event) bool {
		return isSys(event.SysOpenat)(e) && strings.HasPrefix(string(e.Path), "/proc/self/fd/") && e.Ret == int64(atoi(t, out["fd"]))
	})
	if op == nil {
		t.Fatalf("no openat of /proc/self/fd/N:\n%s", dump(evs))
	}
	if len(op.RealPath) != 0 || op.FileType != event.FDPipe {
		t.Errorf("re-opened pipe: resolved %q, type %v; want no path, pipe", op.RealPath, op.FileType)
	}
}

// TestIOURingOpen: a file opened by an io_uring request (no open system
// call) is reported as an openat flagged FlagIOURing, with the kernel's
// path of the file (through a symlink: its target), the descriptor and the
// file's facts, attributed to the process that submitted it.
func TestIOURingOpen(t *testing.T) {
	for _, op := range []string{"uring", "uring-async", "uring-fixed"} {
		t.Run(op, func(t *testing.T) { testIOURingOpen(t, op) })
	}
}

// testIOURingOpen: op "uring" runs the request inline in io_uring_enter,
// "uring-async" in an io-wq worker thread of the helper, "uring-fixed"
// installs the file in the ring's fixed-file table (Ret: slot 0,
// FlagIOURingFixed).
func testIOURingOpen(t *testing.T, op string) {
	c := sensor(t)
	if !c.s.Features()["io_uring"] {
		testutil.NeedBPF(t, "no io_uring_complete tracepoint on this kernel")
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "secret")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "innocent")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), op, link)
	fd := atoi(t, out["fd"])
	pid := uint32(cmd.Process.Pid)
	evs := c.waitFor(t, cg.id, "the io_uring open", func(evs []*event.Event) bool {
		return find(evs, func(e *event.Event) bool { return e.Flags2&event.FlagIOURing != 0 }) != nil
	})
	e := find(evs, func(e *event.Event) bool { return e.Flags2&event.FlagIOURing != 0 })
	t.Logf("%s", describe(e))
	if e.Kind != event.KindSyscall || e.Syscall != event.SysOpenat || e.Pid != pid || e.Ret != int64(fd) {
		t.Errorf("io_uring open: %s, want openat by pid %d returning %d", describe(e), pid, fd)
	}
	if fixed := e.Flags2&event.FlagIOURingFixed != 0; fixed != (op == "uring-fixed") {
		t.Errorf("io_uring open: FlagIOURingFixed %v, want %v", fixed, op == "uring-fixed")
	}
	if string(e.RealPath) != target || string(e.Path) != target {
		t.Errorf("io_uring open: path %q, resolved %q, want %q for both", e.Path, e.RealPath, target)
	}
	if e.Flags2&event.FlagFileFacts == 0 || e.FileType != event.FDFile {
		t.Errorf("io_uring open: file facts %#x, type %v, want a regular file", e.Flags2, e.FileType)
	}
	if strings.HasPrefix(e.CommString(), "iou-") {
		t.Errorf("io_uring open: comm %q, want the submitting process's", e.CommString())
	}
	// The helper made no open system call of the file.
	if sys := find(evs, func(e *event.Event) bool {
		return e.Flags2&event.FlagIOURing == 0 && isSys(event.SysOpenat)(e) && strings.HasPrefix(string(e.Path), dir)
	}); sys != nil {
		t.Errorf("an open system call of the file was reported: %s", describe(sys))
	}
}

// TestIOURingConnect: a connect and an accept done by io_uring requests
// (no connect or accept system call) are reported as connect and accept4
// flagged FlagIOURing, with the tuple from the kernel's socket.
func TestIOURingConnect(t *testing.T) {
	c := sensor(t)
	if !c.s.Features()["io_uring"] {
		testutil.NeedBPF(t, "no io_uring_complete tracepoint on this kernel")
	}
	cg := newCgroup(t)
	c.watch(cg.id)
	out, cmd := cg.run(t, helper(t), "uring-conn")
	lport := uint16(atoi(t, out["lport"]))
	uringEv := func(nr uint16) func(*event.Event) bool {
		return func(e *event.Event) bool { return isSys(nr)(e) && e.Flags2&event.FlagIOURing != 0 }
	}
	evs := c.waitFor(t, cg.id, "the io_uring connect and accept", func(evs []*event.Event) bool {
		return find(evs, uringEv(event.SysConnect)) != nil && find(evs, uringEv(event.SysAccept4)) != nil
	})
	pid := uint32(cmd.Process.Pid)
	conn, acc := find(evs, uringEv(event.SysConnect)), find(evs, uringEv(event.SysAccept4))
	t.Logf("%s\n%s", describe(conn), describe(acc))
	if conn.Pid != pid || conn.Ret != 0 || conn.Dst.String() != "127.0.0.1:"+strconv.Itoa(int(lport)) || !conn.Src.IsValid() {
		t.Errorf("io_uring connect: %s, want pid %d to 127.0.0.1:%d from a local port", describe(conn), pid, lport)
	}
	if acc.Pid != pid || acc.Ret != int64(atoi(t, out["afd"])) || acc.Dst.Port() != lport || acc.Src.Port() != conn.Src.Port() {
		t.Errorf("io_uring accept: %s, want fd %s, local port %d, client %s", describe(acc), out["afd"], lport, conn.Src)
	}
	// no connect or accept system call was made
	if sys := find(evs, func(e *event.Event) bool {
		return (isSys(event.SysConnect)(e) || isSys(event.SysAccept4)(e) || isSys(event.SysAccept)(e)) && e.Flags2&event.FlagIOURing == 0
	}); sys != nil {
		t.Errorf("a connect or accept system call was reported: %s", describe(sys))
	}
}
