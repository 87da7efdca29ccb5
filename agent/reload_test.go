package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/driftwatch/driftwatch/agent/metrics"
	"github.com/driftwatch/driftwatch/agent/modes"
	"github.com/driftwatch/driftwatch/event"
)

// TestReloadModesKeepsDefaultModeOverride: a SIGHUP reload of the file's
// modes keeps --default-mode; without the flag the file's default wins.
func TestReloadModesKeepsDefaultModeOverride(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte("modes: {default: learn, host: \"off\", namespaces: {prod: detect}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		override, want event.Mode
	}{
		{event.ModeOff, event.ModeOff},
		{"", event.ModeLearn},
	}
	for _, tc := range cases {
		a := &agent{
			opts: Options{ConfigPath: cfg, DefaultMode: tc.override},
			log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			m:    metrics.New(10, "test"),
			tab:  modes.New(event.ModeDetect, event.ModeOff, nil),
		}
		a.reloadModes()
		if got := a.tab.Default(); got != tc.want {
			t.Errorf("override %q: default after reload %q, want %q", tc.override, got, tc.want)
		}
		if got := a.tab.NamespaceMode("prod"); got != event.ModeDetect {
			t.Errorf("override %q: namespace prod %q, want the file's detect", tc.override, got)
		}
	}
}
