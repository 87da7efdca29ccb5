// Package adfa reads the ADFA-LD dataset (Creech and Hu, UNSW Canberra,
// 2013) as driftwatch events. Its layout is
//
//	Training_Data_Master/*.txt              benign training traces
//	Validation_Data_Master/*.txt            benign validation traces
//	Attack_Data_Master/<Type>_<n>/*.txt     attack traces, grouped by attack run
//
// and each file is one trace: whitespace-separated 32-bit x86 syscall
// numbers, nothing else. The files carry no time, process or argument, so
// the reader synthesises them (documented in docs/eval.md):
//   - every trace is one process: pid = tid = FirstPid + the trace's index in
//     reading order (Training, then Validation, then Attack; files sorted by
//     name), comm "adfa";
//   - times are monotonic: the first trace starts at BaseTime, consecutive
//     syscalls are SyscallGap apart and traces are TraceGap apart;
//   - syscall numbers are translated to x86_64 by name (event.Syscall32Name,
//     event.SyscallNumber); an i386 call without an x86_64 namesake (socketcall,
//     mmap2, stat64 …) or an unknown number maps to ReservedBase+nr, so the
//     mapping stays one-to-one and the sequence model sees the original alphabet.
//
// Labels: an attack trace is an attack over its whole time span, restricted
// to its pid.
package adfa

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/event"
)

// Directory names of the ADFA-LD layout.
const (
	TrainingDir   = "Training_Data_Master"
	ValidationDir = "Validation_Data_Master"
	AttackDir     = "Attack_Data_Master"
)

// Synthesised identity and time.
const (
	FirstPid     = 1000
	ReservedBase = 1000
	SyscallGap   = time.Millisecond
	TraceGap     = time.Second
)

// BaseTime is the synthetic start of the first trace: 2013-01-01T00:00:00Z.
var BaseTime = time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// Split says which part of the dataset a trace belongs to.
type Split string

const (
	SplitTraining   Split = "training"
	SplitValidation Split = "validation"
	SplitAttack     Split = "attack"
)

// Trace is one ADFA-LD trace file.
type Trace struct {
	Path  string
	Split Split
	// AttackType is the attack directory's type ("Hydra_FTP" of
	// "Hydra_FTP_3"); empty for benign traces.
	AttackType string
	// Run is the attack directory's name ("Hydra_FTP_3").
	Run string
}

// Scan lists the traces under an ADFA-LD root in reading order. A split
// directory that is absent is skipped; a root with none of them is an error.
func Scan(root string) ([]Trace, error) {
	var out []Trace
	found := 0
	for _, d := range []struct {
		dir   string
		split Split
	}{{TrainingDir, SplitTraining}, {ValidationDir, SplitValidation}} {
		files, err := filepath.Glob(filepath.Join(root, d.dir, "*.txt"))
		if err != nil {
			return nil, fmt.Errorf("adfa: %w", err)
		}
		if _, err := os.Stat(filepath.Join(root, d.dir)); err == nil {
			found++
		}
		slices.Sort(files)
		for _, f := range files {
			out = append(out, Trace{Path: f, Split: d.split})
		}
	}
	runs, err := os.ReadDir(filepath.Join(root, AttackDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("adfa: %w", err)
	}
	if err == nil {
		found++
	}
	for _, run := range runs {
		if !run.IsDir() {
			continue
		}
		typ := run.Name()
		if i := strings.LastIndexByte(typ, '_'); i > 0 {
			if _, err := strconv.Atoi(typ[i+1:]); err == nil {
				typ = typ[:i]
			}
		}
		files, err := filepath.Glob(filepath.Join(root, AttackDir, run.Name(), "*.txt"))
		if err != nil {
			return nil, fmt.Errorf("adfa: %w", err)
		}
		slices.Sort(files)
		for _, f := range files {
			out = append(out, Trace{Path: f, Split: SplitAttack, AttackType: typ, Run: run.Name()})
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("adfa: %s: none of %s, %s, %s found", root, TrainingDir, ValidationDir, AttackDir)
	}
	return out, nil
}

// ReadTrace reads one trace file's 32-bit syscall numbers.
func ReadTrace(path string) ([]uint16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("adfa: %w", err)
	}
	defer f.Close()
	return ParseTrace(f, path)
}

// ParseTrace parses whitespace-separated syscall numbers; name is used in errors.
func ParseTrace(r io.Reader, name string) ([]uint16, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	sc.Split(bufio.ScanWords)
	var out []uint16
	for sc.Scan() {
		v, err := strconv.ParseUint(sc.Text(), 10, 16)
		if err != nil || v > math.MaxUint16-ReservedBase {
			return nil, fmt.Errorf("adfa: %s: token %d %q: not a syscall number", name, len(out)+1, event.EscapeString(sc.Text()))
		}
		out = append(out, uint16(v))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("adfa: %s: %w", name, err)
	}
	return out, nil
}

// SyscallNumber maps an i386 syscall number to the event's x86_64 number
// by name, or to ReservedBase+nr when there is no x86_64 namesake.
func SyscallNumber(nr32 uint16) uint16 {
	if name := event.Syscall32Name(nr32); name != "" {
		if nr, ok := event.SyscallNumber(name); ok {
			return nr
		}
	}
	return ReservedBase + nr32
}

// Detect reports whether path is an ADFA-LD root (one of the three split
// directories inside) or a single trace file (only decimal numbers).
func Detect(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if st.IsDir() {
		for _, d := range []string{TrainingDir, ValidationDir, AttackDir} {
			if s, err := os.Stat(filepath.Join(path, d)); err == nil && s.IsDir() {
				return true
			}
		}
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadFull(f, buf)
	if n == 0 {
		return false
	}
	digits := 0
	for _, c := range buf[:n] {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == ' ' || c == '\n' || c == '\t' || c == '\r':
		default:
			return false
		}
	}
	return digits > 0
}

// Reader streams the traces of an ADFA-LD root, or one trace file, as
// events. It implements event.SnapshotSource.
type Reader struct {
	traces []Trace
	cur    []uint16
	ti, si int
	t      int64
	num    uint64
	labels *labels.Labels
	starts []int64
}

// Open opens an ADFA-LD root directory or a single trace file.
func Open(path string) (*Reader, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("adfa: %w", err)
	}
	var traces []Trace
	if st.IsDir() {
		if traces, err = Scan(path); err != nil {
			return nil, err
		}
	} else {
		traces = []Trace{{Path: path, Split: splitOf(path)}}
	}
	r := &Reader{traces: traces, ti: -1, t: BaseTime}
	if err := r.computeLabels(); err != nil {
		return nil, err
	}
	return r, nil
}

// splitOf guesses a single file's split from its parent directories.
func splitOf(path string) Split {
	dir := filepath.ToSlash(filepath.Dir(path))
	switch {
	case strings.Contains(dir, AttackDir):
		return SplitAttack
	case strings.Contains(dir, ValidationDir):
		return SplitValidation
	}
	return SplitTraining
}

// computeLabels lays out the synthetic timeline up front (it needs every
// trace's length) so Labels is known before the first event.
func (r *Reader) computeLabels() error {
	l := &labels.Labels{Version: labels.Version, Attacks: []labels.Attack{}}
	t := BaseTime
	for i, tr := range r.traces {
		calls, err := ReadTrace(tr.Path)
		if err != nil {
			return err
		}
		start := t
		end := start + int64(max(len(calls)-1, 0))*int64(SyscallGap)
		r.starts = append(r.starts, start)
		if tr.Split == SplitAttack {
			l.Attacks = append(l.Attacks, labels.Attack{
				Name: tr.AttackType, StartNs: start, EndNs: end, Pids: []uint32{uint32(FirstPid + i)},
			})
		}
		t = end + int64(TraceGap)
	}
	r.labels = l
	return nil
}

// Traces returns the traces in reading order (their pid is FirstPid+index).
func (r *Reader) Traces() []Trace { return r.traces }

// Labels returns the attack windows of the attack traces.
func (r *Reader) Labels() *labels.Labels { return r.labels }

// Snapshot returns an empty snapshot at the synthetic start.
func (r *Reader) Snapshot() *event.Snapshot {
	return &event.Snapshot{Time: BaseTime, Hostname: "adfa-ld"}
}

// Next returns the next syscall as an event.
func (r *Reader) Next(ev *event.Event) error {
	for r.ti < 0 || r.si >= len(r.cur) {
		r.ti++
		if r.ti >= len(r.traces) {
			return io.EOF
		}
		calls, err := ReadTrace(r.traces[r.ti].Path)
		if err != nil {
			return err
		}
		r.cur, r.si = calls, 0
	}
	ev.Reset()
	r.num++
	pid := uint32(FirstPid + r.ti)
	ev.Kind = event.KindSyscall
	ev.Num = r.num
	ev.Time = r.starts[r.ti] + int64(r.si)*int64(SyscallGap)
	ev.Syscall = SyscallNumber(r.cur[r.si])
	ev.Pid, ev.Tid = pid, pid
	ev.Fd, ev.Fd2 = -1, -1
	ev.LoginUID = math.MaxUint32
	ev.SetComm("adfa")
	r.si++
	return nil
}

// Close releases nothing (each trace file is read whole and closed); it lets
// callers treat every reader alike.
func (r *Reader) Close() error { return nil }

// DevAttackFamilies are the attack types of the dev part of the attack
// traces; the other three (Hydra_SSH, Meterpreter, Web_Shell) are held out.
// One Hydra and one Meterpreter family on each side. Model variants and
// hyperparameters of driftwatch's sequence model were chosen on the
// training traces and the dev part only (docs/eval.md).
var DevAttackFamilies = []string{"Adduser", "Hydra_FTP", "Java_Meterpreter"}

// Dev reports whether t belongs to the dev part of the test traces: an
// attack trace of a DevAttackFamilies type, or a validation trace whose
// file name (base name) hashes (FNV-1a 32) to an even number. Training
// traces are dev by definition; the rest is held out.
func Dev(t Trace) bool {
	switch t.Split {
	case SplitAttack:
		return slices.Contains(DevAttackFamilies, t.AttackType)
	case SplitValidation:
		h := fnv.New32a()
		h.Write([]byte(filepath.Base(t.Path)))
		return h.Sum32()%2 == 0
	}
	return true
}
