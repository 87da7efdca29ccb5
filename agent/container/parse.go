// Package container attributes processes to containers: it finds the cgroup
// v2 mount, maps cgroup ids (directory inodes, as bpf_get_current_cgroup_id
// reports them) to cgroup paths, parses container ids out of those paths and
// keeps one shared event.Container record per container, optionally filled
// with metadata from a pluggable provider (Kubernetes, CRI).
package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/driftwatch/driftwatch/event"
)

// ErrNoCgroupV2 is returned by CgroupV2Mount when no cgroup2 filesystem is mounted.
var ErrNoCgroupV2 = errors.New("no cgroup2 filesystem in mount table")

// CgroupV2Mount returns the mount point of the cgroup v2 hierarchy, read from
// /proc/mounts (the first mount whose filesystem type is cgroup2).
func CgroupV2Mount() (string, error) {
	return cgroupV2MountFrom("/proc/mounts")
}

func cgroupV2MountFrom(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cgroup v2 mount: %w", err)
	}
	defer f.Close()
	mnt, err := parseMounts(f, path)
	if err != nil {
		return "", err
	}
	return mnt, nil
}

// parseMounts scans a /proc/mounts-format table for the first cgroup2 entry.
func parseMounts(r io.Reader, name string) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		if fields[2] == "cgroup2" {
			return unescapeMount(fields[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s line %d: %w", name, line, err)
	}
	return "", fmt.Errorf("%s: %w", name, ErrNoCgroupV2)
}

// unescapeMount decodes the octal escapes (\040 for space etc.) the kernel
// uses in /proc/mounts.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// Runtime names reported by ParseContainerID.
const (
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
	RuntimeUnknown    = "unknown" // a container id without a runtime marker (bare id, kubepods/…/<id>)
	RuntimeHost       = "host"
)

// ParseContainerID extracts the container id from a cgroup v2 path (relative
// to the cgroup mount, as /proc/PID/cgroup shows it). It recognises the
// systemd scope layouts (docker-<id>.scope, cri-containerd-<id>.scope,
// crio-<id>.scope, libpod-<id>.scope), the cgroupfs layouts
// (/docker/<id>, /kubepods/<qos>/pod<uid>/<id>, containerd's /k8s.io/<id>)
// and any bare 64-hex path component. The innermost (last) match wins, so
// nested layouts attribute to the innermost container. Paths with no
// container id (/, init.scope, system.slice, user.slice …) give
// ("host", "host"). ParseContainerID returns the full 64-hex id.
func ParseContainerID(cgroupPath string) (id, runtime string) {
	parts := strings.Split(cgroupPath, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if p == "" {
			continue
		}
		if id, rt := parseComponent(p); id != "" {
			if rt == RuntimeUnknown {
				rt = inferRuntime(parts[:i])
			}
			return id, rt
		}
	}
	return event.HostContainerID, RuntimeHost
}

var scopePrefixes = []struct{ prefix, runtime string }{
	{"docker-", RuntimeDocker},
	{"cri-containerd-", RuntimeContainerd},
	{"crio-conmon-", ""}, // conmon's own cgroup: not the container
	{"crio-", RuntimeCRIO},
	{"libpod-conmon-", ""},
	{"libpod-", RuntimePodman},
	{"containerd-", RuntimeContainerd},
}

// parseComponent recognises one path component holding a container id.
func parseComponent(p string) (id, runtime string) {
	if strings.HasSuffix(p, ".scope") {
		base := strings.TrimSuffix(p, ".scope")
		for _, sp := range scopePrefixes {
			if strings.HasPrefix(base, sp.prefix) {
				rest := base[len(sp.prefix):]
				if sp.runtime == "" || !isHexID(rest) {
					return "", ""
				}
				return rest, sp.runtime
			}
		}
		return "", ""
	}
	if isHexID(p) {
		return p, RuntimeUnknown
	}
	return "", ""
}

// inferRuntime guesses the runtime of a bare id from its ancestors.
func inferRuntime(ancestors []string) string {
	for i := len(ancestors) - 1; i >= 0; i-- {
		switch a := ancestors[i]; {
		case a == "docker" || a == "docker.slice" || a == "moby":
			return RuntimeDocker
		case a == "k8s.io":
			return RuntimeContainerd
		case a == "machine.slice" || a == "libpod_parent":
			return RuntimePodman
		}
	}
	return RuntimeUnknown
}

// isHexID reports whether s is a 64-character lowercase hex container id.
func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
