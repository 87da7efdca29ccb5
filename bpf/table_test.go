package bpf

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// TestSupportedMatchesProgram checks that the syscalls event's table marks
// Sensor are exactly those sensor.bpf.c names (#define NR_x), with the same
// numbers: a row added without BPF code, or BPF code without a row, fails.
func TestSupportedMatchesProgram(t *testing.T) {
	src, err := os.ReadFile("sensor.bpf.c")
	if err != nil {
		t.Fatal(err)
	}
	var inC []uint16
	for _, m := range regexp.MustCompile(`(?m)^#define NR_([a-z0-9_]+) (\d+)$`).FindAllStringSubmatch(string(src), -1) {
		if m[1] == "SYSCALLS" {
			continue
		}
		nr, _ := strconv.Atoi(m[2])
		if name := event.SyscallName(uint16(nr)); name != m[1] {
			t.Errorf("sensor.bpf.c: NR_%s is %d, which is %q", m[1], nr, name)
		}
		inC = append(inC, uint16(nr))
	}
	slices.Sort(inC)
	if got := SupportedSyscalls(); !slices.Equal(got, inC) {
		t.Errorf("table rows marked Sensor %v, sensor.bpf.c defines %v", got, inC)
	}
}
