package sensortruth

import (
	"strings"
	"testing"
)

// Rules about a socket on a standard stream: driftwatch's and Falco's.
var redirectRules = map[string]bool{
	"Reverse shell": true,
	"Redirect STDOUT/STDIN to Network Connection in Container": true,
}

// TestPipeIsNotASocket: a shell whose descriptors 3-5 held sockets that
// were closed unseen (no close hook) runs `cat /proc/self/status | grep
// CapEff`: the pipe dup2'ed onto stdout reuses a number the process table
// knew as a socket. The kernel's facts on the dup2 say pipe, so no
// redirect rule fires; a socket really dup2'ed onto stdout still fires.
func TestPipeIsNotASocket(t *testing.T) {
	c := evasionContainer(t)
	l := startLive(t, c, "pipes")

	out, err := c.Command("evade", "stalepipe", "/bin/sh", "-c", "cat /proc/self/status | grep CapEff").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CapEff") {
		t.Fatalf("pipeline: %v\n%s", err, out)
	}
	if out, err := c.Command("/tmp/python3", "revshell", "/bin/sh", "-c", "exit 0").CombinedOutput(); err != nil {
		t.Fatalf("revshell: %v\n%s", err, out)
	}
	alerts := l.wait(t, "the real socket's Reverse shell alert", func(got []seen) bool {
		for _, a := range got {
			if a.alert.Rule == "Reverse shell" && strings.Contains(a.alert.Output, "process=python3") {
				return true
			}
		}
		return false
	})
	for _, a := range alerts {
		if redirectRules[a.alert.Rule] {
			t.Logf("%s: %s", a.alert.Rule, a.alert.Output)
			if !strings.Contains(a.alert.Output, "python3") {
				t.Errorf("%s raised for a pipe: %s", a.alert.Rule, a.alert.Output)
			}
		}
	}
}
