package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/profiler"
)

func TestProfileState(t *testing.T) {
	cat := func(st profiler.State, obs uint64) profiler.CategoryStats {
		return profiler.CategoryStats{State: st, Observations: obs, PostObservations: obs}
	}
	// warmOnly: a category that saw only the container's start-up.
	warmOnly := func(st profiler.State, obs uint64) profiler.CategoryStats {
		return profiler.CategoryStats{State: st, Observations: obs}
	}
	cases := []struct {
		name string
		s    profiler.ProfileSummary
		want string
	}{
		{"empty", profiler.ProfileSummary{}, "learning"},
		{"too large", profiler.ProfileSummary{TooLarge: true, Categories: []profiler.CategoryStats{cat(profiler.StateStable, 100)}}, "too_large"},
		{"one learning", profiler.ProfileSummary{Categories: []profiler.CategoryStats{cat(profiler.StateStable, 100), cat(profiler.StateLearning, 50)}}, "learning"},
		{"sparse category ignored", profiler.ProfileSummary{Categories: []profiler.CategoryStats{cat(profiler.StateStable, 100), cat(profiler.StateLearning, 3)}}, "stable"},
		{"warm-up-only category ignored", profiler.ProfileSummary{Categories: []profiler.CategoryStats{cat(profiler.StateStable, 100), warmOnly(profiler.StateLearning, 40)}}, "stable"},
		{"only sparse", profiler.ProfileSummary{Categories: []profiler.CategoryStats{cat(profiler.StateStable, 5)}}, "learning"},
		{"unstable", profiler.ProfileSummary{Categories: []profiler.CategoryStats{cat(profiler.StateUnstable, 100), cat(profiler.StateDetecting, 50)}}, "unstable"},
		{"detecting", profiler.ProfileSummary{Categories: []profiler.CategoryStats{cat(profiler.StateDetecting, 100), cat(profiler.StateDetecting, 50)}}, "detecting"},
		{"stable and detecting", profiler.ProfileSummary{Categories: []profiler.CategoryStats{cat(profiler.StateStable, 100), cat(profiler.StateDetecting, 50)}}, "stable"},
	}
	for _, tc := range cases {
		if got := ProfileState(tc.s); got != tc.want {
			t.Errorf("%s: ProfileState = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLossMessageAndFields(t *testing.T) {
	m := LossMessage(map[string]uint64{"net": 7, "file": 3}, 10*time.Second)
	if !strings.Contains(m, "10 events lost in the last 10s (file=3 net=7)") {
		t.Errorf("message %q", m)
	}
	f := LossFields(map[string]uint64{"net": 7, "file": 3})
	if f["n_drops"] != uint64(10) || f["n_drops_net"] != uint64(7) || f["n_drops_file"] != uint64(3) {
		t.Errorf("fields %v", f)
	}
}
