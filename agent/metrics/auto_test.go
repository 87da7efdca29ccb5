package metrics

import (
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

// What auto mode decided: profile categories per state, and namespaces in auto.
func TestProfileCategoriesAndAutoNamespaces(t *testing.T) {
	m := New(10, "test")
	cats, states := []string{"process", "file"}, []string{"learning", "detecting"}
	m.SetProfileCategories(cats, states, map[string]map[string]int{"file": {"detecting": 2}, "process": {"learning": 1}})
	m.SetProfileCategories(cats, states, map[string]map[string]int{"file": {"detecting": 3}})
	for _, tc := range []struct {
		cat, state string
		want       float64
	}{{"file", "detecting", 3}, {"file", "learning", 0}, {"process", "learning", 0}} {
		if v := value(t, m.ProfileCategories.WithLabelValues(tc.cat, tc.state)); v != tc.want {
			t.Errorf("%s/%s = %v, want %v", tc.cat, tc.state, v, tc.want)
		}
	}
	m.SetNamespaceModes(map[event.Mode]int{event.ModeAuto: 2})
	if v := value(t, m.Namespaces.WithLabelValues("auto")); v != 2 {
		t.Errorf("namespaces{mode=auto} = %v", v)
	}
}
