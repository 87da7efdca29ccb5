package seq

import (
	"math/rand/v2"
	"testing"

	"github.com/driftwatch/driftwatch/event"
)

func learn(m *Model, tid uint32, calls ...uint16) {
	for _, c := range calls {
		m.Learn(tid, c)
	}
}

func TestScoreHandComputed(t *testing.T) {
	m, err := New(Config{N: 3, Window: 4, ThreadAware: true})
	if err != nil {
		t.Fatal(err)
	}
	learn(m, 1, 1, 2, 3, 4, 1, 2, 3, 4)
	// Distinct 3-grams: 123 234 341 412.
	if m.Size() != 4 || m.Trained() != 6 {
		t.Fatalf("size %d trained %d, want 4 and 6", m.Size(), m.Trained())
	}
	s := m.NewScorer()
	// 1 2 3 4 9 1 2 3 → n-grams 123 234 349 491 912 123;
	// window of 4: 0/4 0/4 1/4 2/4 3/4, then 234 leaves → still 3/4.
	calls := []uint16{1, 2, 3, 4, 9, 1, 2, 3}
	wantOK := []bool{false, false, true, true, true, true, true, true}
	wantScore := []float64{0, 0, 0, 0, 0.25, 0.5, 0.75, 0.75}
	for i, c := range calls {
		score, ok := s.Score(7, c)
		if ok != wantOK[i] || score != wantScore[i] {
			t.Fatalf("call %d: score %v ok %v, want %v %v", i, score, ok, wantScore[i], wantOK[i])
		}
	}
	if s.Max != 0.75 {
		t.Fatalf("max %v", s.Max)
	}
	// Known n-grams push the unseen ones out of the window.
	for _, c := range []uint16{4, 1, 2, 3} {
		s.Score(7, c)
	}
	if score, _ := s.Score(7, 4); score != 0 {
		t.Fatalf("after four known n-grams score %v, want 0", score)
	}
	s.Reset()
	if score, ok := s.Score(7, 1); ok || score != 0 || s.Max != 0 {
		t.Fatal("Reset kept state")
	}
}

func TestThreadAware(t *testing.T) {
	for _, threads := range []bool{true, false} {
		m, _ := New(Config{N: 2, Window: 10, ThreadAware: threads})
		learn(m, 1, 1, 2, 3)
		s := m.NewScorer()
		// Two threads interleaved, each 1 2 3: per thread all n-grams are
		// known; interleaved the order is 1 1 2 2 3 3 and 11, 12... are new.
		var last float64
		for _, c := range []uint16{1, 2, 3} {
			last, _ = s.Score(10, c)
			last, _ = s.Score(11, c)
		}
		if threads && last != 0 {
			t.Fatalf("thread-aware score %v, want 0", last)
		}
		// Interleaved 2-grams: 11 12 22 23 33 → known: 12 and 23 → 3 unseen of window 10.
		if !threads && last != 0.3 {
			t.Fatalf("interleaved score %v, want 0.3", last)
		}
	}
}

func TestEndRecording(t *testing.T) {
	m, _ := New(Config{N: 2, Window: 4})
	learn(m, 0, 1, 2)
	m.EndRecording()
	learn(m, 0, 3, 4)
	// Without EndRecording 2→3 would have been learned.
	if m.Size() != 2 {
		t.Fatalf("size %d, want 2 (12 and 34)", m.Size())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{N: 0, Window: 1}, {N: 3, Window: 0}, {N: 65, Window: 10}} {
		if _, err := New(c); err == nil {
			t.Fatalf("config %+v accepted", c)
		}
	}
}

func TestDetector(t *testing.T) {
	m, _ := New(Config{N: 2, Window: 2, ThreadAware: true})
	d := NewDetector(m)
	ev := &event.Event{Kind: event.KindSyscall, Pid: 5, Tid: 5}
	e := &event.Enriched{Event: ev, Container: &event.Container{ContainerInfo: event.ContainerInfo{ID: "c1"}}}
	var alerts []*event.Alert
	emit := func(a *event.Alert) { alerts = append(alerts, a) }
	for _, c := range []uint16{0, 1, 0, 1} {
		ev.Syscall = c
		d.Handle(e, event.ModeLearn, emit)
	}
	m.SetThreshold(0.4)
	d.NewRecording()
	for i, c := range []uint16{0, 1, 59, 1} { // 01 known, 1→59 and 59→1 unseen
		ev.Syscall, ev.Num, ev.Time = c, uint64(i+1), int64(1000+i)
		d.Handle(e, event.ModeDetect, emit)
	}
	// Scores: -, 0, 0.5 (alarm), 1.0 (alarm).
	if len(alerts) != 2 || alerts[0].Score != 0.5 || alerts[1].Score != 1 || alerts[1].EventNum != 4 ||
		alerts[0].ContainerID != "c1" || alerts[0].Rule != RuleName || d.LastScore() != 1 || d.MaxScore() != 1 {
		t.Fatalf("alerts %+v last %v", alerts, d.LastScore())
	}
	ev.Kind = event.KindExec
	d.Handle(e, event.ModeDetect, emit)
	if len(alerts) != 2 || d.LastScore() != 0 {
		t.Fatal("lifecycle event scored")
	}
}

func BenchmarkScore(b *testing.B) {
	m, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		m.Learn(uint32(r.IntN(8)), uint16(r.IntN(40)))
	}
	calls := make([]uint16, 4096)
	for i := range calls {
		calls[i] = uint16(r.IntN(40))
	}
	s := m.NewScorer()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Score(uint32(i&7), calls[i&4095])
	}
}

func BenchmarkLearn(b *testing.B) {
	m, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(1, 2))
	calls := make([]uint16, 4096)
	for i := range calls {
		calls[i] = uint16(r.IntN(40))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Learn(uint32(i&7), calls[i&4095])
	}
}
