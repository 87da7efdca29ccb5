package event

import (
	"strings"
	"testing"
	"time"
)

// TestAlertFormats checks the one JSON and the one text rendering: Falco's
// key order, sorted tags, defaults, and escaping of control characters
// only in the text line.
func TestAlertFormats(t *testing.T) {
	a := &Alert{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Rule: "r", Priority: PriorityWarning,
		Tags: []string{"b", "a"}, Hostname: "h", Output: "x\x1b[0m\\y <NA>"}
	b, err := AppendAlertJSON(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"hostname":"h","output":"x\u001b[0m\\y <NA>","output_fields":{},"priority":"Warning","rule":"r","source":"syscall","tags":["a","b"],"time":"2026-01-02T03:04:05.000000006Z"}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	if a.Tags[0] != "b" {
		t.Error("AppendAlertJSON sorted the caller's tags in place")
	}
	if m, _ := a.MarshalJSON(); string(m) != want {
		t.Errorf("MarshalJSON differs from AppendAlertJSON: %s", m)
	}
	if got := AlertText(a); got != `2026-01-02T03:04:05.000000006+0000: Warning x\x1b[0m\\y <NA>` {
		t.Errorf("text %q", got)
	}
	a.Output = `clean \ backslash`
	if got := AlertText(a); !strings.HasSuffix(got, `Warning clean \ backslash`) {
		t.Errorf("clean output changed: %q", got)
	}
}

// TestInternalAlert checks the one constructor of internal alerts.
func TestInternalAlert(t *testing.T) {
	a := InternalAlert("R", PriorityCritical, "file /tmp/\nx failed", nil, "node")
	if a.Source != SourceInternal || len(a.Tags) != 1 || a.Tags[0] != InternalTag || a.ContainerID != HostContainerID ||
		a.Output != `file /tmp/\nx failed` || a.OutputFields == nil || a.Hostname != "node" || a.Time.IsZero() {
		t.Errorf("internal alert %+v", a)
	}
}
