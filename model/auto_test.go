package model

import (
	"fmt"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// Auto mode: each category learns until the lifecycle finds it stable, then
// detects on its own and absorbs nothing more; only learn mode adds to it.
func TestAutoMode(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet, Window: time.Minute, MinStable: 2 * time.Minute,
		MinWindowObs: 5, WarmUp: time.Second, WarmUpEvents: 5})
	d := NewDetector(prof, Config{})
	var alerts []*event.Alert
	emit := func(a *event.Alert) { alerts = append(alerts, a) }
	known := func(e *event.Enriched) (yes bool) {
		prof.View(e, func(pr *profiler.Profile, fs []profiler.Feature) { yes = pr.Feature(fs[0].Cat, fs[0].Hash) != nil })
		return yes
	}
	state := func(c profiler.Category) (s profiler.State) {
		prof.WithProfile("web:1", func(pr *profiler.Profile) { s = pr.State(c) })
		return s
	}
	sec := func(s int) int64 { return t0 + int64(s)*int64(time.Second) }
	// Ten minutes of a steady file set; the outbound peers keep changing
	// (a new one every 20 s), so the network category keeps learning.
	for s := 0; s < 600; s++ {
		d.Handle(openE(sec(s), fmt.Sprintf("/etc/app/%c.conf", 'a'+s%3)), event.ModeAuto, emit)
		if s%20 == 0 {
			d.Handle(connectE(sec(s), fmt.Sprintf("10.0.%d.%d:443", s/20/250, s/20%250+1)), event.ModeAuto, emit)
		}
	}
	if len(alerts) != 0 {
		t.Fatalf("alerts while learning: %s", alerts[0].Output)
	}
	if !known(connectE(0, "10.0.0.1:443")) {
		t.Error("the learning network category did not learn")
	}
	if s := state(profiler.CatFile); s != profiler.StateDetecting {
		t.Fatalf("file category %s after 10 steady minutes, want detecting (stable, then scored)", s)
	}
	if s := state(profiler.CatNetwork); s.Ready() {
		t.Fatalf("network category %s, want still learning", s)
	}
	if d.Stats().ToDetecting[profiler.CatFile] != 1 {
		t.Errorf("ToDetecting %v", d.Stats().ToDetecting)
	}
	// A novelty in the detecting file category alerts and is not absorbed;
	// one in the learning network category is learned quietly.
	drop := openE(sec(700), "/tmp/x")
	d.Handle(drop, event.ModeAuto, emit)
	peer := connectE(sec(700), "192.0.2.7:4444")
	d.Handle(peer, event.ModeAuto, emit)
	if len(alerts) != 1 || alerts[0].OutputFields["anomaly.feature"] != "/tmp/x [read]" {
		t.Fatalf("alerts %v", alerts)
	}
	a := alerts[0]
	if a.OutputFields["anomaly.mode"] != "auto" || a.OutputFields["anomaly.profile_state"] != "detecting" || a.OutputFields["anomaly.detecting_since"] == nil {
		t.Errorf("alert does not show auto's decision: %v", a.OutputFields)
	}
	if known(drop) {
		t.Error("a detecting category absorbed a novelty in auto mode")
	}
	if !known(peer) {
		t.Error("a learning category did not learn in auto mode")
	}
	// Back to learn: the novelty is learned; in auto again it is known.
	d.Handle(drop, event.ModeLearn, emit)
	if !known(drop) {
		t.Error("learn mode did not add to a detecting category")
	}
	d.Handle(openE(sec(2000), "/tmp/x"), event.ModeAuto, emit)
	if len(alerts) != 1 {
		t.Errorf("known feature alerted: %s", alerts[len(alerts)-1].Output)
	}
}
