package datasets

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

const suiteDir = "containers-v1"

// maxSuiteBytes is the size bound for the committed suite.
const maxSuiteBytes = 30 << 20

func loadSuite(t *testing.T) *labels.Manifest {
	t.Helper()
	if _, err := os.Stat(filepath.Join(suiteDir, labels.ManifestFile)); err != nil {
		t.Fatalf("suite not committed: %v (run make datasets as root)", err)
	}
	m, err := labels.LoadManifest(suiteDir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSuiteShape(t *testing.T) {
	m := loadSuite(t)
	workloads := map[string]bool{}
	attacks := 0
	for _, sc := range m.Scenarios {
		workloads[sc.Workload] = true
		if sc.Kind == labels.KindAttack {
			attacks++
		}
	}
	if len(workloads) < 3 || attacks < 16 {
		t.Errorf("suite has %d workloads and %d attack scenarios, want at least 3 and 16", len(workloads), attacks)
	}
	var size int64
	err := filepath.WalkDir(suiteDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := d.Info(); err == nil && !d.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if size >= maxSuiteBytes {
		t.Errorf("suite is %d bytes, want under %d", size, maxSuiteBytes)
	}
}

// scanTrace reads a whole trace and returns its container ids (from the
// snapshot and updates) and, per pid, the times of its events.
func scanTrace(t *testing.T, path string) (containers []event.ContainerInfo, times map[uint32][]int64, n int) {
	t.Helper()
	r, err := trace.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	containers = append(containers, r.Snapshot().Containers...)
	r.SetUpdateHandlers(nil, func(info event.ContainerInfo) { containers = append(containers, info) })
	times = map[uint32][]int64{}
	var ev event.Event
	for {
		err := r.Next(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		n++
		times[ev.Pid] = append(times[ev.Pid], ev.Time)
	}
	return containers, times, n
}

// TestSuiteTracesAndLabels checks every trace decodes, holds exactly one
// container with image metadata, and that every labelled attack's root pid
// has events inside its window in that container's trace.
func TestSuiteTracesAndLabels(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes every trace of the suite")
	}
	m := loadSuite(t)
	trainImage := map[string]string{} // training trace -> its container's image digest
	for _, sc := range m.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			for _, tr := range sc.Train {
				if _, ok := trainImage[tr]; ok {
					continue
				}
				cs, _, n := scanTrace(t, filepath.Join(suiteDir, tr))
				if n == 0 || len(cs) != 1 || cs[0].ImageDigest == "" {
					t.Errorf("train %s: %d events, containers %+v", tr, n, cs)
					trainImage[tr] = ""
					continue
				}
				trainImage[tr] = cs[0].ImageDigest
			}
			cs, times, n := scanTrace(t, filepath.Join(suiteDir, sc.Test))
			if n == 0 || len(cs) != 1 || cs[0].ImageDigest == "" {
				t.Fatalf("test %s: %d events, containers %+v", sc.Test, n, cs)
			}
			// Profiles are keyed by image digest: a test trace of another
			// image would be scored against no profile.
			for _, tr := range sc.Train {
				if trainImage[tr] != cs[0].ImageDigest {
					t.Errorf("test container's image %s is not the image %q of training trace %s", cs[0].ImageDigest, trainImage[tr], tr)
				}
			}
			if sc.Labels == "" {
				if sc.Kind == labels.KindAttack {
					t.Fatalf("attack scenario without labels")
				}
				return
			}
			l, err := labels.Load(filepath.Join(suiteDir, sc.Labels))
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Base(sc.Test); l.Trace != want {
				t.Errorf("labels name trace %q, want %q", l.Trace, want)
			}
			if sc.Kind == labels.KindBenign {
				if len(l.Attacks) != 0 {
					t.Errorf("benign scenario has %d attacks", len(l.Attacks))
				}
				return
			}
			if len(l.Attacks) != 1 {
				t.Fatalf("attack scenario has %d attacks, want 1", len(l.Attacks))
			}
			a := l.Attacks[0]
			if a.ContainerID != cs[0].ID || len(a.Pids) != 1 {
				t.Errorf("attack in container %q pids %v; trace's container is %q", a.ContainerID, a.Pids, cs[0].ID)
			}
			if !slices.ContainsFunc(times[a.Pids[0]], func(ts int64) bool { return ts >= a.StartNs && ts <= a.EndNs }) {
				t.Errorf("root pid %d has no event inside [%d, %d]", a.Pids[0], a.StartNs, a.EndNs)
			}
		})
	}
}

// longBenignMin is the least span of a <workload>-benign-long test trace:
// the recorder's default long capture is 20 minutes, so three workloads
// give about one container-hour of benign test time.
const longBenignMin = 19 * time.Minute

// TestSuiteLongBenign checks that every workload has a long benign test
// trace, labelled with no attack, spanning at least longBenignMin.
func TestSuiteLongBenign(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes the long benign traces")
	}
	m := loadSuite(t)
	workloads := map[string]bool{}
	for _, sc := range m.Scenarios {
		workloads[sc.Workload] = true
	}
	for w := range workloads {
		t.Run(w, func(t *testing.T) {
			i := slices.IndexFunc(m.Scenarios, func(sc labels.Scenario) bool { return sc.Name == w+"-benign-long" })
			if i < 0 {
				t.Fatalf("no scenario %s-benign-long", w)
			}
			sc := m.Scenarios[i]
			if sc.Kind != labels.KindBenign || sc.Workload != w {
				t.Errorf("scenario %s: kind %q workload %q", sc.Name, sc.Kind, sc.Workload)
			}
			_, times, n := scanTrace(t, filepath.Join(suiteDir, sc.Test))
			first, last := int64(math.MaxInt64), int64(math.MinInt64)
			for _, ts := range times {
				first, last = min(first, slices.Min(ts)), max(last, slices.Max(ts))
			}
			if n == 0 || time.Duration(last-first) < longBenignMin {
				t.Errorf("%s: %d events spanning %v, want at least %v", sc.Test, n, time.Duration(last-first), longBenignMin)
			}
		})
	}
}

// TestSuiteDocumented checks that docs/datasets.md describes every scenario
// of the committed suite (its name in backquotes, as in the scenario
// tables).
func TestSuiteDocumented(t *testing.T) {
	m := loadSuite(t)
	doc, err := os.ReadFile(filepath.Join("..", "docs", "datasets.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range m.Scenarios {
		if !strings.Contains(string(doc), "`"+sc.Name+"`") {
			t.Errorf("docs/datasets.md does not describe scenario %q", sc.Name)
		}
	}
}
