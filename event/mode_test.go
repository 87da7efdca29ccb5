package event

import "testing"

func TestParseMode(t *testing.T) {
	for _, m := range Modes {
		if got, err := ParseMode(string(m)); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
	}
	if len(Modes) != 4 || Modes[3] != ModeAuto {
		t.Errorf("Modes = %v", Modes)
	}
	for _, bad := range []string{"", "Auto", "detecting"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
}
