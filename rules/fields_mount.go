package rules

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/driftwatch/driftwatch/event"
)

// Falco's container.mount* fields read the container's mounts from its
// runtime metadata (event.ContainerInfo.Mounts, filled from the CRI's
// ContainerStatus). A container whose metadata carries no mounts list
// (the host, a container known only from its cgroup as with plain runc,
// or one whose runtime was not asked yet) has no mounts: the indexed
// fields are "<NA>" as for a container without a matching mount, so a
// condition `not container.mount.dest[/proc*] in ("<NA>","N/A")` is false
// for it, as in Falco.

// mountNA is what Falco prints for a mount that does not exist.
const mountNA = "<NA>"

// formatMount renders a mount as Falco's container.mount[i] does:
// source:dest:mode:rdwr:propagation.
func formatMount(b *strings.Builder, m event.Mount) {
	b.WriteString(m.Source)
	b.WriteByte(':')
	b.WriteString(m.Dest)
	b.WriteByte(':')
	b.WriteString(m.Mode)
	b.WriteByte(':')
	b.WriteString(strconv.FormatBool(m.RW))
	b.WriteByte(':')
	b.WriteString(m.Propagation)
}

func mountString(m event.Mount) string {
	var b strings.Builder
	formatMount(&b, m)
	return b.String()
}

// mountSelector picks a mount by its argument: a number is an index into
// the list; otherwise a glob (Falco's fnmatch) matched against the mount's
// source, or against its dest when byDest, first match wins.
func mountSelector(name, arg string, byDest bool) (func([]event.Mount) (event.Mount, bool), error) {
	if n, err := strconv.Atoi(arg); err == nil {
		if n < 0 {
			return nil, fmt.Errorf("%s[%s]: index must not be negative", name, arg)
		}
		return func(ms []event.Mount) (event.Mount, bool) {
			if n < len(ms) {
				return ms[n], true
			}
			return event.Mount{}, false
		}, nil
	}
	if arg == "" {
		return nil, fmt.Errorf("%s: needs an index or a path, e.g. %s[/proc*]", name, name)
	}
	if err := checkGlob(arg); err != nil {
		return nil, fmt.Errorf("%s[%s]: %w", name, arg, err)
	}
	return func(ms []event.Mount) (event.Mount, bool) {
		for _, m := range ms {
			s := m.Source
			if byDest {
				s = m.Dest
			}
			if globMatch(arg, s, false) {
				return m, true
			}
		}
		return event.Mount{}, false
	}, nil
}

// mountField registers an indexed container.mount* field: the value f
// gives for the selected mount, "<NA>" when no mount is selected.
func mountField(name, desc string, byDest bool, f func(event.Mount) string) {
	fieldTable[name] = &fieldDef{typ: tString, argMode: 2, desc: desc, make: func(arg string, hasArg bool) (getter, bool, error) {
		sel, err := mountSelector(name, arg, byDest)
		if err != nil {
			return nil, false, err
		}
		return func(c *evalCtx, _ int) (value, bool) {
			var ms []event.Mount
			if k := c.container(); k != nil {
				ms = k.Mounts
			}
			if m, ok := sel(ms); ok {
				return value{s: f(m)}, true
			}
			return value{s: mountNA}, true
		}, false, nil
	}}
}

func init() {
	str("container.mounts", "the container's mounts, source:dest:mode:rdwr:propagation comma-separated (from the CRI)", func(c *evalCtx) (string, bool) {
		k := c.container()
		if k == nil || k.Mounts == nil {
			return "", false
		}
		var b strings.Builder
		for i, m := range k.Mounts {
			if i > 0 {
				b.WriteByte(',')
			}
			formatMount(&b, m)
		}
		return b.String(), true
	})
	mountField("container.mount", "mount by index or source glob, as source:dest:mode:rdwr:propagation", false, mountString)
	mountField("container.mount.source", "host path of the mount by index or dest glob", true, func(m event.Mount) string { return m.Source })
	mountField("container.mount.dest", "container path of the mount by index or source glob", false, func(m event.Mount) string { return m.Dest })
	mountField("container.mount.mode", "mode of the mount by index or source glob (empty from the CRI)", false, func(m event.Mount) string { return m.Mode })
	mountField("container.mount.rdwr", "true for a read-write mount, by index or source glob", false, func(m event.Mount) string { return strconv.FormatBool(m.RW) })
	mountField("container.mount.propagation", "propagation of the mount by index or source glob", false, func(m event.Mount) string { return m.Propagation })
}
