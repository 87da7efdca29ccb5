package bpf

import (
	"strings"
	"testing"
	"time"
)

func TestParseHZ(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         int
		wantErr      bool
	}{
		{"250", "# comment\nCONFIG_NO_HZ=y\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n", 250, false},
		{"1000", "CONFIG_HZ=1000", 1000, false},
		{"missing", "CONFIG_NO_HZ=y\n# CONFIG_HZ is not set\n", 0, true},
		{"bad", "CONFIG_HZ=fast\n", 0, true},
		{"zero", "CONFIG_HZ=0\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHZ(strings.NewReader(tc.config))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseHZ = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestWindowJiffies(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		hz     int
		want   uint64
	}{
		{time.Second, 250, 250},
		{time.Second, 1000, 1000},
		{50 * time.Millisecond, 100, 5},
		{time.Millisecond, 100, 1},        // rounded up to one jiffy
		{4100 * time.Microsecond, 250, 2}, // 1.025 jiffies: up
		{0, 250, 0},
		{-time.Second, 250, 0},
	} {
		if got := windowJiffies(tc.window, tc.hz); got != tc.want {
			t.Errorf("windowJiffies(%v, %d) = %d, want %d", tc.window, tc.hz, got, tc.want)
		}
	}
}

func TestKernelHZ(t *testing.T) {
	hz, ok := kernelHZ()
	if !ok {
		if hz != fallbackHZ {
			t.Fatalf("kernelHZ without a config = %d, want the fallback %d", hz, fallbackHZ)
		}
		t.Skip("no kernel configuration readable (/proc/config.gz, /boot/config-*): fallback in use")
	}
	switch hz {
	case 100, 250, 300, 1000:
	default:
		t.Fatalf("kernelHZ = %d, not one of Linux's HZ choices", hz)
	}
}
