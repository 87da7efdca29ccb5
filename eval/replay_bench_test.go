package eval_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

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
			cpu0 := metrics.CPUTime()
			for b.Loop() {
				for _, f := range tc.files {
					events += replayOnce(b, f, cfg)
				}
			}
			cpu := metrics.CPUTime() - cpu0
			b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "cpu-ns/event")
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
			if alerts == 0 {
				b.Fatal("no alert over the suite's attack traces")
			}
		})
	}
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
