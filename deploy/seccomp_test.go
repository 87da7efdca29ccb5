package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/driftwatch/driftwatch/agent/harden"
)

// TestSeccompProfile: the DaemonSet runs the agent under its own Localhost
// profile, the committed profile is the one agent/harden generates (allow
// what the agent calls before and after hardening, nothing an attacker
// wants), and the runtime socket is mounted read-only.
func TestSeccompProfile(t *testing.T) {
	path := filepath.Join("seccomp", "driftwatch-agent.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := harden.ContainerProfile(); !bytes.Equal(b, want) {
		if os.Getenv("DRIFTWATCH_UPDATE_PROFILE") != "" {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("%s differs from harden.ContainerProfile(): regenerate with DRIFTWATCH_UPDATE_PROFILE=1 go test ./deploy -run TestSeccompProfile", path)
		}
	}
	var p struct {
		DefaultAction string `json:"defaultAction"`
		Syscalls      []struct {
			Names  []string `json:"names"`
			Action string   `json:"action"`
		} `json:"syscalls"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if p.DefaultAction != "SCMP_ACT_ERRNO" || len(p.Syscalls) != 1 || p.Syscalls[0].Action != "SCMP_ACT_ALLOW" {
		t.Fatalf("%s: want one allow list over an ERRNO default", path)
	}
	names := p.Syscalls[0].Names
	for _, n := range append(harden.Allowed(), "execve", "bpf", "seccomp", "capset", "bind", "listen") {
		if !slices.Contains(names, n) {
			t.Errorf("%s lacks %s", path, n)
		}
	}
	for _, n := range []string{"ptrace", "mount", "umount2", "init_module", "finit_module", "unshare", "setns", "setuid", "kexec_load", "process_vm_writev", "chroot", "pivot_root"} {
		if slices.Contains(names, n) {
			t.Errorf("%s allows %s", path, n)
		}
	}

	ds := find[*appsv1.DaemonSet](t, load(t))
	c := ds.Spec.Template.Spec.Containers[0]
	sp := c.SecurityContext.SeccompProfile
	if sp == nil || sp.Type != corev1.SeccompProfileTypeLocalhost || sp.LocalhostProfile == nil || *sp.LocalhostProfile != "driftwatch/agent.json" {
		t.Errorf("seccompProfile %+v, want Localhost driftwatch/agent.json", sp)
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "containerd" && !m.ReadOnly {
			t.Error("the runtime socket must be mounted read-only")
		}
	}
}
