package adfa

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

var root = filepath.Join("testdata", "ADFA-LD")

func TestScan(t *testing.T) {
	tr, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range tr {
		got = append(got, string(x.Split)+":"+filepath.Base(x.Path)+":"+x.AttackType)
	}
	want := []string{
		"training:UTD-0001.txt:", "training:UTD-0002.txt:", "validation:UVD-0001.txt:",
		"attack:UAD-Adduser-1-1.txt:Adduser", "attack:UAD-WS2-1.txt:Web_Shell",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("scan\n got %v\nwant %v", got, want)
	}
	if _, err := Scan(t.TempDir()); err == nil {
		t.Fatal("empty dir accepted as ADFA-LD")
	}
}

func TestParseTrace(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr string
	}{
		{"3 4  5\n6\t7 \n", []uint16{3, 4, 5, 6, 7}, ""},
		{"", nil, ""},
		{"3 x 5", nil, "token 2"},
		{"3 -1", nil, "token 2"},
		{"70000", nil, "token 1"},
	}
	for _, tc := range tests {
		got, err := ParseTrace(strings.NewReader(tc.in), "f.txt")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "f.txt") {
				t.Fatalf("%q: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slicesEqual(got, tc.want) {
			t.Fatalf("%q: got %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func slicesEqual(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSyscallNumber(t *testing.T) {
	tests := []struct {
		nr32 uint16
		want uint16
	}{
		{3, event.SysRead}, {4, event.SysWrite}, {5, event.SysOpen}, {11, event.SysExecve},
		{23, event.SysSetuid}, {102, ReservedBase + 102}, {192, ReservedBase + 192}, {999, ReservedBase + 999},
	}
	for _, tc := range tests {
		if got := SyscallNumber(tc.nr32); got != tc.want {
			t.Errorf("SyscallNumber(%d) = %d, want %d", tc.nr32, got, tc.want)
		}
	}
}

func TestReader(t *testing.T) {
	if !Detect(root) || !Detect(filepath.Join(root, TrainingDir, "UTD-0001.txt")) || Detect("adfa.go") || Detect(t.TempDir()) {
		t.Fatal("Detect")
	}
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	counts := map[uint32]int{}
	var last int64
	var attackEvents, n int
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if ev.Time <= last {
			t.Fatalf("time not increasing at event %d", n)
		}
		last = ev.Time
		counts[ev.Pid]++
		if r.Labels().Attribute(ev.Time, "host", ev.Pid, nil, 0) >= 0 {
			attackEvents++
		}
		if n == 1 && (ev.Time != BaseTime || ev.Syscall != event.SysRead || ev.CommString() != "adfa") {
			t.Fatalf("first event %+v", ev)
		}
	}
	// 16 + 17 + 12 + 13 + 8 syscalls in five traces, pids 1000..1004.
	want := map[uint32]int{1000: 16, 1001: 17, 1002: 12, 1003: 13, 1004: 8}
	for pid, c := range want {
		if counts[pid] != c {
			t.Fatalf("pid %d: %d events, want %d (all %v)", pid, counts[pid], c, counts)
		}
	}
	if n != 66 || attackEvents != 21 {
		t.Fatalf("%d events, %d attack; want 66, 21", n, attackEvents)
	}
	l := r.Labels()
	if len(l.Attacks) != 2 || l.Attacks[0].Name != "Adduser" || l.Attacks[0].Pids[0] != 1003 ||
		l.Attacks[0].EndNs-l.Attacks[0].StartNs != 12*int64(time.Millisecond) {
		t.Fatalf("labels %v", l)
	}
}

func TestSingleFile(t *testing.T) {
	p := filepath.Join(root, AttackDir, "Web_Shell_2", "UAD-WS2-1.txt")
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	n := 0
	for r.Next(&ev) == nil {
		n++
	}
	if n != 8 || len(r.Labels().Attacks) != 1 {
		t.Fatalf("%d events, labels %v", n, r.Labels())
	}
	bad := filepath.Join(t.TempDir(), "bad.txt")
	os.WriteFile(bad, []byte("1 2 three"), 0o644)
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), "token 3") {
		t.Fatalf("error %v", err)
	}
}

func TestDevSplit(t *testing.T) {
	fnv32a := func(s string) uint32 { // FNV-1a 32, written out as the spec
		h := uint32(2166136261)
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
		return h
	}
	for _, tc := range []struct {
		tr   Trace
		want bool
	}{
		{Trace{Path: "x/Training_Data_Master/UTD-0001.txt", Split: SplitTraining}, true},
		{Trace{Split: SplitAttack, AttackType: "Adduser", Run: "Adduser_3"}, true},
		{Trace{Split: SplitAttack, AttackType: "Hydra_FTP"}, true},
		{Trace{Split: SplitAttack, AttackType: "Java_Meterpreter"}, true},
		{Trace{Split: SplitAttack, AttackType: "Hydra_SSH"}, false},
		{Trace{Split: SplitAttack, AttackType: "Meterpreter"}, false},
		{Trace{Split: SplitAttack, AttackType: "Web_Shell"}, false},
	} {
		if got := Dev(tc.tr); got != tc.want {
			t.Errorf("%+v: dev %v, want %v", tc.tr, got, tc.want)
		}
	}
	// Validation traces: by the base name's hash only, about half each way.
	dev := 0
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("UVD-%04d.txt", i)
		got := Dev(Trace{Path: "/a/b/" + ValidationDir + "/" + name, Split: SplitValidation})
		if want := fnv32a(name)%2 == 0; got != want {
			t.Fatalf("%s: dev %v, want %v", name, got, want)
		}
		if got != Dev(Trace{Path: "elsewhere/" + name, Split: SplitValidation}) {
			t.Fatalf("%s: split depends on the directory", name)
		}
		if got {
			dev++
		}
	}
	if dev < 400 || dev > 600 {
		t.Errorf("%d of 1000 validation names dev, want about half", dev)
	}
}
