package harden

import (
	"encoding/json"
	"slices"
)

// Startup are the calls the agent makes before Apply, besides Allowed:
// the runtime executing it, binding the metrics port, creating or setting
// aside the store (renameat, also allowed after start), and hardening
// itself.
var Startup = []string{"execve", "bind", "listen", "mkdirat", "prctl", "capset", "seccomp"}

// ContainerProfile is the OCI seccomp profile (Kubernetes Localhost
// profile, deploy/seccomp/driftwatch-agent.json) the agent's container
// runs under from its start: Allowed and Startup, anything else EPERM.
// After start the agent narrows it further with Apply.
func ContainerProfile() []byte {
	names := append(Allowed(), Startup...)
	// The other architecture's legacy names are listed too: runtimes skip
	// names the architecture lacks.
	names = append(names, "arch_prctl", "epoll_wait", "select", "poll", "pipe", "dup2", "stat", "lstat", "open", "readlink", "access", "time")
	slices.Sort(names)
	names = slices.Compact(names)
	p := map[string]any{
		"defaultAction":   "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 1,
		"architectures":   []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"},
		"syscalls":        []map[string]any{{"names": names, "action": "SCMP_ACT_ALLOW"}},
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}
