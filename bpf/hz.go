package bpf

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fallbackHZ is assumed when the kernel's configuration cannot be read: the
// smallest HZ Linux offers, so the window in jiffies can only come out
// shorter than asked (more events delivered), never longer.
const fallbackHZ = 100

// kernelHZ returns the running kernel's CONFIG_HZ from /proc/config.gz or
// /boot/config-RELEASE, and whether it was found.
func kernelHZ() (int, bool) {
	var u unix.Utsname
	paths := []string{"/proc/config.gz"}
	if unix.Uname(&u) == nil {
		paths = append(paths, "/boot/config-"+unix.ByteSliceToString(u.Release[:]))
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				continue
			}
			r = zr
		}
		hz, err := parseHZ(r)
		f.Close()
		if err == nil {
			return hz, true
		}
	}
	return fallbackHZ, false
}

// parseHZ reads CONFIG_HZ from a kernel configuration.
func parseHZ(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ=")
		if !ok {
			continue
		}
		hz, err := strconv.Atoi(v)
		if err != nil || hz <= 0 {
			return 0, fmt.Errorf("line %d: CONFIG_HZ=%q is not a positive number", line, v)
		}
		return hz, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no CONFIG_HZ line")
}

// windowJiffies converts a deduplication window to jiffies at hz, rounded
// up (at least one jiffy for a positive window; 0 for none).
func windowJiffies(window time.Duration, hz int) uint64 {
	if window <= 0 || hz <= 0 {
		return 0
	}
	n := (uint64(window)*uint64(hz) + uint64(time.Second) - 1) / uint64(time.Second)
	if n == 0 {
		n = 1
	}
	return n
}
