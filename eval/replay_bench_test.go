package eval_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/agent/pipeline"
	"github.com/driftwatch/driftwatch/eval/metrics"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
	"github.com/driftwatch/driftwatch/rules"
)

// BenchmarkReplayPipeline replays every test trace of the suite
// (datasets/containers-v1, train.dwt excluded) through the whole pipeline
// as eval and detect do: trace decoding, enrichment, the default rules and
// the profile model in detect mode against profiles learned from the
// workloads' training traces. It reports events per CPU-second of this
// process (getrusage user+system, so GC and decompression goroutines
// count): "events/cpu-s" is events/s per core.
func BenchmarkReplayPipeline(b *testing.B) {
	suite := filepath.Join("..", "datasets", "containers-v1")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	learner := model.NewDetector(prof, model.Config{})
	var tests []string
	for _, w := range []string{"web", "batch", "worker"} {
		files, _ := filepath.Glob(filepath.Join(suite, w, "*.dwt"))
		for _, f := range files {
			if filepath.Base(f) == "train.dwt" {
				replayOnce(b, f, pipeline.Config{Detector: learner, DefaultMode: event.ModeLearn})
				continue
			}
			tests = append(tests, f)
		}
	}
	if len(tests) == 0 {
		b.Skipf("no traces under %s", suite)
	}
	prof.Finalize(false)
	rs, _, err := rules.LoadDefault(rules.Options{Logger: quiet, UnknownFieldsAsWarnings: true})
	if err != nil {
		b.Fatal(err)
	}
	zstdDir := b.TempDir()
	var zstdTests []string
	for _, f := range tests {
		out := filepath.Join(zstdDir, filepath.Base(filepath.Dir(f))+"-"+filepath.Base(f))
		recompress(b, f, out)
		zstdTests = append(zstdTests, out)
	}
	for _, tc := range []struct {
		name  string
		files []string
	}{{"format=1.0-gzip", tests}, {"format=2.0-zstd", zstdTests}} {
		b.Run(tc.name, func(b *testing.B) {
			det := model.NewDetector(prof, model.Config{})
			alerts := 0
			cfg := pipeline.Config{Rules: rs, Detector: det, DefaultMode: event.ModeDetect, Emit: func(*event.Alert) { alerts++ }}
			var events int64
			b.ReportAllocs()
			m0 := mallocs()
			cpu0 := metrics.CPUTime()
			for b.Loop() {
				for _, f := range tc.files {
					events += replayOnce(b, f, cfg)
				}
			}
			cpu := metrics.CPUTime() - cpu0
			reportRates(b, events, cpu, mallocs()-m0)
			if alerts == 0 {
				b.Fatal("no alert over the suite's attack traces")
			}
		})
	}
	// steady-state: the agent's case, one pipeline running on. The three
	// 20-minute benign traces are replayed into one pipeline per
	// workload, once before the timer (its process table, free lists and
	// intern maps reach their working set), then again per iteration,
	// shifted in time past the previous pass.
	b.Run("steady-state", func(b *testing.B) {
		type run struct {
			file       string
			p          *pipeline.Pipeline
			span, pass int64
		}
		var runs []*run
		for _, f := range zstdTests {
			if !strings.HasSuffix(f, "-benign-long.dwt") {
				continue
			}
			det := model.NewDetector(prof, model.Config{})
			r := &run{file: f, p: pipeline.New(pipeline.Config{Rules: rs, Detector: det, DefaultMode: event.ModeDetect, Emit: func(*event.Alert) {}})}
			_, span := replayShifted(b, r.p, f, 0, true)
			r.span, r.pass = span+int64(time.Minute), 1
			runs = append(runs, r)
		}
		if len(runs) == 0 {
			b.Skip("no benign-long traces")
		}
		var events int64
		b.ReportAllocs()
		m0 := mallocs()
		cpu0 := metrics.CPUTime()
		for b.Loop() {
			for _, r := range runs {
				n, _ := replayShifted(b, r.p, r.file, r.pass*r.span, false)
				events += n
				r.pass++
			}
		}
		reportRates(b, events, metrics.CPUTime()-cpu0, mallocs()-m0)
	})
}

// reportRates reports events per CPU-second, CPU ns and heap allocations
// per event, and events per iteration.
func reportRates(b *testing.B, events int64, cpu time.Duration, allocs uint64) {
	b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "cpu-ns/event")
	b.ReportMetric(float64(allocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}

// mallocs returns the process's heap allocations so far.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// shifted is a trace whose event times are moved by off.
type shifted struct {
	r           *trace.Reader
	off         int64
	first, last int64
}

func (s *shifted) Next(ev *event.Event) error {
	if err := s.r.Next(ev); err != nil {
		return err
	}
	ev.Time += s.off
	if s.first == 0 {
		s.first = ev.Time
	}
	s.last = ev.Time
	return nil
}

// replayShifted replays path into p with event times moved by off (the
// snapshot loaded when first) and returns the events and the time span.
func replayShifted(b *testing.B, p *pipeline.Pipeline, path string, off int64, first bool) (int64, int64) {
	b.Helper()
	r, err := trace.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if first {
		p.LoadSnapshot(r.Snapshot())
	}
	src := &shifted{r: r, off: off}
	if err := p.Run(context.Background(), src); err != nil && !strings.Contains(err.Error(), "EOF") {
		b.Fatalf("%s: %v", path, err)
	}
	return int64(r.Events()), src.last - src.first
}

// recompress rewrites a trace with this build's writer (format 2.0, zstd),
// cgroup and container records where they were.
func recompress(b *testing.B, src, dst string) {
	b.Helper()
	r, err := trace.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	w, err := trace.Create(dst, r.Snapshot())
	if err != nil {
		b.Fatal(err)
	}
	r.OnCgroup = func(id uint64, path string) { w.WriteCgroup(id, path) }
	r.OnContainer = func(info event.ContainerInfo) { w.WriteContainer(info) }
	var ev event.Event
	for {
		err := r.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Write(&ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

func replayOnce(b *testing.B, path string, cfg pipeline.Config) int64 {
	b.Helper()
	r, err := trace.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	p := pipeline.New(cfg)
	p.LoadSnapshot(r.Snapshot())
	if err := p.Run(context.Background(), r); err != nil && !strings.Contains(err.Error(), "EOF") {
		b.Fatalf("%s: %v", path, err)
	}
	return int64(r.Events())
}
