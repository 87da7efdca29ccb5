package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

func TestDefaultMatchesDocumentedValues(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"db", c.DB, "/var/lib/driftwatch/driftwatch.db"},
		{"metrics_addr", c.MetricsAddr, "127.0.0.1:9464"},
		{"outputs", c.Outputs, []string{"stdout"}},
		{"modes.default", c.Modes.Default, event.ModeLearn},
		{"modes.host", c.Modes.Host, event.ModeOff},
		{"kubernetes.mode_label", c.Kubernetes.ModeLabel, "driftwatch.io/mode"},
		{"cri.timeout", c.CRI.Timeout.D(), 2 * time.Second},
		{"output_queue", c.OutputQueue, 1024},
		{"suppression.enabled", c.Suppression.Enabled, true},
		{"suppression.priority_floor", c.Suppression.PriorityFloor, "critical"},
		{"suppression.any_rule", c.Suppression.AnyRule, false},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte("outputs: [\"stdout:json\", \"http:http://127.0.0.1:1/\"]\nmodes:\n  default: detect\n  namespaces:\n    prod: \"off\"\noutput_timeout: 250ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Outputs, []string{"stdout:json", "http:http://127.0.0.1:1/"}) {
		t.Errorf("outputs = %v", c.Outputs)
	}
	if c.Modes.Default != event.ModeDetect || c.Modes.Namespaces["prod"] != event.ModeOff {
		t.Errorf("modes = %+v", c.Modes)
	}
	if c.Modes.Host != event.ModeOff {
		t.Errorf("unset host mode lost its default: %q", c.Modes.Host)
	}
	if c.OutputTimeout.D() != 250*time.Millisecond {
		t.Errorf("output_timeout = %v", c.OutputTimeout.D())
	}
	if c.DB != Default().DB {
		t.Errorf("unset db lost its default: %q", c.DB)
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	c, err := Parse("empty.yaml", []byte("# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("empty file differs from defaults:\n%+v\n%+v", c, Default())
	}
}

func TestBadConfigNamesFileAndLine(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "db: x\nbogus: 1\n", "line 2: field bogus not found"},
		{"bad mode", "modes:\n  default: watch\n", "line 2: modes.default: unknown mode \"watch\""},
		{"bad namespace mode", "modes:\n  namespaces:\n    a: learn\n    b: nope\n", "line 4: modes.namespaces.b"},
		{"bad duration", "db: x\noutput_timeout: soon\n", "line 2: time: invalid duration"},
		{"bad output", "outputs:\n  - kafka:x\n", "line 2: outputs[0]: output \"kafka:x\""},
		{"bad syntax", "db: [\n", "line 1: did not find expected"},
		{"wrong type", "output_queue: many\n", "line 1: cannot unmarshal"},
		{"zero queue", "output_queue: 0\n", "line 1: output_queue: must be at least 1"},
		{"bad kube", "kubernetes:\n  enabled: maybe\n", "line 2: kubernetes.enabled"},
		{"bad metrics addr", "metrics_addr: nocolon\n", "line 1: metrics_addr"},
		{"bad log level", "log_level: loud\n", "line 1: log_level"},
		{"bad suppression floor", "suppression:\n  priority_floor: severe\n", "line 2: suppression.priority_floor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("agent.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error for %q", tc.yaml)
			}
			if !strings.HasPrefix(err.Error(), "config agent.yaml: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the file and contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v does not name %s", err, p)
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	if err := os.WriteFile(good, []byte("modes: {default: \"off\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil || c.Modes.Default != event.ModeOff {
		t.Fatalf("Load = %+v, %v", c.Modes, err)
	}
}

func TestCheckOutputSpec(t *testing.T) {
	for spec, ok := range map[string]bool{
		"stdout": true, "stdout:json": true, "file:/tmp/a": true, "http:http://127.0.0.1:2801/": true,
		"https://x": false, "file:": false, "http:ftp://x": false, "": false, "syslog": false,
	} {
		if err := CheckOutputSpec(spec); (err == nil) != ok {
			t.Errorf("CheckOutputSpec(%q) = %v, want ok=%v", spec, err, ok)
		}
	}
}
