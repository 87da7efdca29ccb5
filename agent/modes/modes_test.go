package modes

import (
	"sync"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

func ctr(ns string) *event.Container {
	return &event.Container{ContainerInfo: event.ContainerInfo{ID: "abc", Namespace: ns}}
}

func TestModePrecedence(t *testing.T) {
	tab := New(event.ModeLearn, event.ModeOff, map[string]event.Mode{"cfg": event.ModeDetect, "both": event.ModeOff})
	tab.SetCluster(map[string]event.Mode{"labelled": event.ModeDetect, "both": event.ModeLearn, "plain": ""})
	host := &event.Container{ContainerInfo: event.ContainerInfo{ID: event.HostContainerID}}
	cases := []struct {
		name string
		c    *event.Container
		want event.Mode
	}{
		{"host", host, event.ModeOff},
		{"nil is host", nil, event.ModeOff},
		{"no namespace", ctr(""), event.ModeLearn},
		{"config only", ctr("cfg"), event.ModeDetect},
		{"label only", ctr("labelled"), event.ModeDetect},
		{"label wins over config", ctr("both"), event.ModeLearn},
		{"unlabelled cluster namespace", ctr("plain"), event.ModeLearn},
		{"unknown", ctr("other"), event.ModeLearn},
	}
	for _, tc := range cases {
		if got := tab.Mode(tc.c); got != tc.want {
			t.Errorf("%s: Mode = %q, want %q", tc.name, got, tc.want)
		}
	}
	counts := tab.Counts()
	if counts[event.ModeDetect] != 2 || counts[event.ModeLearn] != 2 || counts[event.ModeOff] != 0 {
		t.Errorf("Counts = %v", counts)
	}
}

func TestChangesApplyAtOnce(t *testing.T) {
	tab := New(event.ModeLearn, event.ModeOff, nil)
	c := ctr("team")
	if tab.Mode(c) != event.ModeLearn {
		t.Fatal("initial")
	}
	tab.SetCluster(map[string]event.Mode{"team": event.ModeDetect})
	if got := tab.Mode(c); got != event.ModeDetect {
		t.Errorf("after label: %q", got)
	}
	tab.SetConfig(event.ModeOff, event.ModeLearn, nil)
	if got := tab.Mode(c); got != event.ModeDetect {
		t.Errorf("config reload dropped the cluster label: %q", got)
	}
	if got := tab.Mode(ctr("x")); got != event.ModeOff {
		t.Errorf("new default: %q", got)
	}
}

func TestConcurrentReadsAndWrites(t *testing.T) {
	tab := New(event.ModeLearn, event.ModeOff, nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 1000; i++ {
			m := event.ModeLearn
			if i%2 == 0 {
				m = event.ModeDetect
			}
			tab.SetCluster(map[string]event.Mode{"a": m})
		}
	}()
	go func() {
		defer wg.Done()
		c := ctr("a")
		for i := 0; i < 10000; i++ {
			if m := tab.Mode(c); m != event.ModeLearn && m != event.ModeDetect {
				t.Errorf("torn read: %q", m)
				return
			}
		}
	}()
	wg.Wait()
}

func BenchmarkMode(b *testing.B) {
	tab := New(event.ModeLearn, event.ModeOff, map[string]event.Mode{"x": event.ModeDetect})
	tab.SetCluster(map[string]event.Mode{"a": event.ModeDetect, "b": event.ModeLearn})
	c := ctr("b")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tab.Mode(c)
	}
}
