// Command recorder records driftwatch's labelled container dataset suite:
// three benign workloads in runc containers on a private test host, a
// benign training trace per workload, and test traces with one attack each
// run inside the workload's container at a known time, labelled with the
// attack's window, container and root pid. It needs root, runc, busybox and
// iproute2; datasets/record-all.sh builds its inputs and runs it.
//
// Each capture is a system-wide `driftwatch record`; the trace kept in the
// suite is cut down (package tracefilter) to the workload's container.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/testinfra"
)

type config struct {
	out       string
	suite     string
	bin       string
	helper    string
	train     time.Duration
	pre, post time.Duration
	only      string
	retries   int
	// longBenign is the length of the long benign capture (all workloads
	// at once, cut into one <workload>-benign-long trace each); 0 = none.
	longBenign time.Duration
	// keepTrain reuses the suite's training traces, manifest and
	// recording.json instead of making a training capture.
	keepTrain bool
	// subnet is the test hosts' /24 ("10.251.91"); empty = random.
	subnet string
}

// traceStat is one line of recording.json.
type traceStat struct {
	Trace   string `json:"trace"`
	Kept    uint64 `json:"events"`
	Read    uint64 `json:"events_recorded_system_wide"`
	Summary string `json:"recorder_summary"`
	Seconds int64  `json:"seconds"`
}

func main() {
	var cfg config
	flag.StringVar(&cfg.out, "out", "datasets/containers-v1", "suite directory to write")
	flag.StringVar(&cfg.suite, "name", "containers-v1", "suite name")
	flag.StringVar(&cfg.bin, "driftwatch", "bin/driftwatch", "driftwatch binary (for record)")
	flag.StringVar(&cfg.helper, "helper", "", "static dwhelper binary to install in the images (required)")
	flag.DurationVar(&cfg.train, "train", 3*time.Minute, "length of each benign training capture")
	flag.DurationVar(&cfg.pre, "pre", 25*time.Second, "benign time before the attack in a test capture")
	flag.DurationVar(&cfg.post, "post", 15*time.Second, "benign time after the attack in a test capture")
	flag.StringVar(&cfg.only, "only", "", "record only scenarios whose name contains one of these comma-separated strings (the training captures are always made)")
	flag.IntVar(&cfg.retries, "retries", 2, "re-record a test capture up to this many times while the recorder reports lost events (the machine may be shared); the capture with the fewest losses is kept")
	flag.DurationVar(&cfg.longBenign, "long-benign", 0, "also record one long benign capture of this length while all workloads run, cut into a <workload>-benign-long test trace per workload (0 = none)")
	flag.BoolVar(&cfg.keepTrain, "keep-train", false, "make no training capture: keep the suite's training traces and merge the recorded scenarios into its manifest.json and recording.json (needs -subnet of the suite's recording, so the images and addresses are the same)")
	flag.StringVar(&cfg.subnet, "subnet", "", "test hosts' private /24 as three octets (e.g. 10.251.91); default random")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if cfg.helper == "" {
		log.Error("recorder: -helper is required")
		os.Exit(2)
	}
	if err := checkSubnet(cfg.subnet); err != nil {
		log.Error("recorder: -subnet", "err", err)
		os.Exit(2)
	}
	if cfg.keepTrain && cfg.subnet == "" {
		log.Error("recorder: -keep-train needs -subnet (the images embed host B's address)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scope := testinfra.NewScope(log)
	err := scope.Run(func() { recordSuite(ctx, scope, log, cfg) })
	scope.Close()
	if err != nil {
		log.Error("recorder failed", "err", err)
		os.Exit(1)
	}
}

// running is a started workload. A restart (restart.go) replaces c and
// info under mu and adds the new container's cgroup to keep; keep is read
// only between captures.
type running struct {
	w    workload
	mu   sync.Mutex
	c    *testinfra.Container
	info event.ContainerInfo
	keep map[uint64]event.ContainerInfo

	// What a restart needs: the first container's options (rootfs, mounts,
	// pod) and its image.
	opts     testinfra.RuncOptions
	image    string
	digest   string
	restarts int
}

func recordSuite(ctx context.Context, s *testinfra.Scope, log *slog.Logger, cfg config) {
	v2 := cfg.suite == "containers-v2"
	tools := []string{"runc", "ip", "busybox"}
	if v2 {
		tools = append(tools, "mmdebstrap", "python3", "psql", "pgbench", "curl")
	}
	for _, tool := range tools {
		testinfra.NeedTool(s, tool)
	}
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		s.Fatalf("%v", err)
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		s.Fatalf("%v", err)
	}
	a, b := testinfra.NewNetnsPair(s)
	h := hosts{A: a.IP(), B: b.IP()}
	if cfg.subnet != "" {
		h = hosts{A: cfg.subnet + ".1", B: cfg.subnet + ".2"}
		addAddress(s, a, h.A)
		addAddress(s, b, h.B)
	}
	log.Info("test hosts", "A", h.A, "B", h.B)
	work := s.TempDir()

	// Test host B: the attackers' payload server (payload, recon.sh) and
	// the worker's cache.
	www := filepath.Join(work, "b-www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		s.Fatalf("%v", err)
	}
	if err := writeFiles(www, served(cfg.helper)); err != nil {
		s.Fatalf("%v", err)
	}
	b.Start(s, "busybox", "httpd", "-f", "-p", strconv.Itoa(payloadPort), "-h", www)
	var runs []*running
	wls := workloads(cfg.helper)
	if v2 {
		wls = workloadsV2(cfg.helper)
		writeJSON(s, filepath.Join(cfg.out, "attacks.json"), v2Attacks(wls))
	} else {
		b.Start(s, "busybox", "nc", "-ll", "-p", "6379", "-e", "/bin/cat")
	}
	// startLoad starts the clients on test host B and the exec probes and
	// life events in the containers.
	startLoad := func() {
		if !v2 {
			b.Start(s, "sh", "-c", fmt.Sprintf(webLoop, h.A))
			return
		}
		for _, r := range runs {
			if r.w.load != nil {
				b.Start(s, r.w.load(h)...)
			}
			startExecs(ctx, s, log, r)
		}
	}
	var stats []traceStat

	if cfg.keepTrain {
		// The suite's training traces stay; the workloads start with no
		// capture running and settle before the first test capture, as
		// they do after a training capture.
		for _, w := range wls {
			r := startWorkload(s, log, w, h, a, work)
			if err := checkSameImage(cfg.out, r); err != nil {
				s.Fatalf("-keep-train: %v", err)
			}
			runs = append(runs, r)
		}
		startLoad()
		log.Info("workloads settling (no training capture: -keep-train)", "duration", settle)
		sleep(ctx, s, settle)
	} else {
		// Training capture: the containers start after the recorder is
		// ready, so their whole life is in the trace.
		raw := filepath.Join(work, "train.raw.dwt")
		rec, err := startRecording(ctx, bin, raw)
		if err != nil {
			s.Fatalf("%v", err)
		}
		started := time.Now()
		for _, w := range wls {
			runs = append(runs, startWorkload(s, log, w, h, a, work))
		}
		startLoad()
		log.Info("training capture", "duration", cfg.train)
		sleepWith(ctx, s, log, cfg.train, restartEvents(s, log, runs, cfg.train, false))
		summary, err := rec.stop()
		if err != nil {
			s.Fatalf("%v", err)
		}
		stats = append(stats, recordSplit(s, log, cfg.out, raw, runs, "train.dwt", summary, started)...)
		os.Remove(raw)
	}

	manifest := labels.Manifest{Version: labels.Version, Name: cfg.suite}
	for _, r := range runs {
		train := []string{filepath.Join(r.w.name, "train.dwt")}
		scenarios := append([]attack{{scenario: r.w.name + "-benign"}}, r.w.attacks...)
		for _, at := range scenarios {
			kind := labels.KindAttack
			if at.argv == nil && at.fromB == nil {
				kind = labels.KindBenign
			}
			sc := labels.Scenario{
				Name: at.scenario, Workload: r.w.name, Kind: kind, Train: train,
				Test:   filepath.Join(r.w.name, strings.TrimPrefix(at.scenario, r.w.name+"-")+".dwt"),
				Labels: filepath.Join(r.w.name, strings.TrimPrefix(at.scenario, r.w.name+"-")+".labels.json"),
				Split:  scenarioSplit(r.w, at),
			}
			manifest.Scenarios = append(manifest.Scenarios, sc)
			if !selected(cfg.only, at.scenario) {
				continue
			}
			var best traceStat
			for try := 0; try <= cfg.retries; try++ {
				st := recordScenario(ctx, s, log, cfg, bin, work, r, at, b, h, sc, try)
				if try == 0 || lostOf(st.Summary) < lostOf(best.Summary) {
					best = st
					if err := keepAttempt(cfg.out, sc, try); err != nil {
						s.Fatalf("%v", err)
					}
				} else {
					for _, name := range []string{sc.Test, sc.Labels} {
						_ = os.Remove(filepath.Join(cfg.out, attemptName(name, try)))
					}
				}
				if lostOf(best.Summary) == 0 {
					break
				}
				log.Info("recorder lost events; recording the scenario again", "scenario", at.scenario, "recorder", st.Summary)
			}
			stats = append(stats, best)
		}
	}
	if cfg.longBenign > 0 && selected(cfg.only, "benign-long") {
		manifest.Scenarios = append(manifest.Scenarios, longBenignScenarios(runs)...)
		stats = append(stats, recordLongBenign(ctx, s, log, cfg, bin, work, runs, b, h)...)
	}
	_, statErr := os.Stat(filepath.Join(cfg.out, labels.ManifestFile))
	switch {
	case cfg.only != "" && !cfg.keepTrain && os.IsNotExist(statErr):
		// A first partial run (a smoke recording): its own manifest.
		var recorded []labels.Scenario
		for _, sc := range manifest.Scenarios {
			if selected(cfg.only, sc.Name) {
				recorded = append(recorded, sc)
			}
		}
		manifest.Scenarios = recorded
		writeJSON(s, filepath.Join(cfg.out, labels.ManifestFile), manifest)
		writeJSON(s, filepath.Join(cfg.out, "recording.json"), stats)
	case cfg.keepTrain || cfg.only != "":
		// A partial run: the scenarios recorded now replace their entries
		// in the suite's manifest and recording.json (new ones are added).
		old, err := labels.LoadManifest(cfg.out)
		if err != nil {
			s.Fatalf("partial run needs the suite's manifest: %v", err)
		}
		var recorded []labels.Scenario
		for _, sc := range manifest.Scenarios {
			if selected(cfg.only, sc.Name) && (!strings.HasSuffix(sc.Name, "-benign-long") || cfg.longBenign > 0) {
				recorded = append(recorded, sc)
			}
		}
		old.Scenarios = mergeScenarios(old.Scenarios, recorded)
		writeJSON(s, filepath.Join(cfg.out, labels.ManifestFile), old)
		var oldStats []traceStat
		if err := readJSON(filepath.Join(cfg.out, "recording.json"), &oldStats); err != nil {
			s.Fatalf("partial run needs the suite's recording.json: %v", err)
		}
		writeJSON(s, filepath.Join(cfg.out, "recording.json"), mergeStats(oldStats, stats))
		log.Info("partial run: recorded scenarios merged into manifest.json and recording.json")
	default:
		writeJSON(s, filepath.Join(cfg.out, labels.ManifestFile), manifest)
		writeJSON(s, filepath.Join(cfg.out, "recording.json"), stats)
	}
}

// startWorkload builds the workload's image root and starts its container
// on test host A.
func startWorkload(s *testinfra.Scope, log *slog.Logger, w workload, h hosts, a *testinfra.Netns, work string) *running {
	rootfs := filepath.Join(work, "rootfs-"+w.name)
	if err := buildRootfs(rootfs, w, h); err != nil {
		s.Fatalf("workload %s: %v", w.name, err)
	}
	image := "driftwatch.test/" + w.name + ":1"
	img, err := testinfra.WriteOCIImage(io.Discard, image, rootfs, testinfra.ImageConfig{Cmd: w.args(h)})
	if err != nil {
		s.Fatalf("workload %s: %v", w.name, err)
	}
	var mounts []testinfra.Mount
	if w.debian != nil {
		// Kubernetes mounts the service-account token over the image's
		// /run (a tmpfs in the container): so does the recorder.
		sa := filepath.Join(work, "sa-"+w.name)
		if err := writeFiles(sa, serviceAccountFiles()); err != nil {
			s.Fatalf("workload %s: %v", w.name, err)
		}
		mounts = append(mounts, testinfra.Mount{Source: sa, Destination: "/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
	}
	opts := testinfra.RuncOptions{
		Args: w.args(h), Rootfs: rootfs, Writable: true, NetNS: a.Path(), Hostname: w.name, Mounts: mounts,
	}
	c := testinfra.NewRuncContainer(s, opts)
	opts.PodUID = c.PodUID()
	r := &running{w: w, opts: opts, image: image, digest: img.ConfigDigest, keep: map[uint64]event.ContainerInfo{}}
	r.adopt(c)
	log.Info("workload started", "name", w.name, "container", c.ID()[:12], "pid", c.Pid(), "image", img.ConfigDigest[:19])
	return r
}

// recordScenario makes one test capture: benign time, the attack (none for
// a benign scenario), benign time; it writes the trace and its labels.
func recordScenario(ctx context.Context, s *testinfra.Scope, log *slog.Logger, cfg config, bin, work string, r *running, at attack, b *testinfra.Netns, h hosts, sc labels.Scenario, try int) traceStat {
	// Attempts are written beside the final files and kept by keepAttempt.
	sc.Test, sc.Labels = attemptName(sc.Test, try), attemptName(sc.Labels, try)
	raw := filepath.Join(work, at.scenario+".raw.dwt")
	defer os.Remove(raw)
	rec, err := startRecording(ctx, bin, raw)
	if err != nil {
		s.Fatalf("%v", err)
	}
	started := time.Now()
	log.Info("test capture", "scenario", at.scenario)
	sleep(ctx, s, cfg.pre)
	lab := labels.Labels{Version: labels.Version, Trace: filepath.Base(attemptName(sc.Test, -1)), Attacks: []labels.Attack{}}
	if at.argv != nil || at.fromB != nil {
		lab.Attacks = append(lab.Attacks, runAttack(ctx, s, log, r, at, b, h, work))
	}
	sleep(ctx, s, cfg.post)
	summary, err := rec.stop()
	if err != nil {
		s.Fatalf("%v", err)
	}
	st, err := filterTrace(raw, filepath.Join(cfg.out, sc.Test), r.keep)
	if err != nil {
		s.Fatalf("%v", err)
	}
	if err := lab.Validate(); err != nil {
		s.Fatalf("labels of %s: %v", at.scenario, err)
	}
	if err := lab.Write(filepath.Join(cfg.out, sc.Labels)); err != nil {
		s.Fatalf("%v", err)
	}
	log.Info("wrote", "trace", sc.Test, "events", st.Kept, "recorder", summary)
	return traceStat{Trace: attemptName(sc.Test, -1), Kept: st.Kept, Read: st.Read, Summary: summary, Seconds: int64(time.Since(started).Seconds())}
}

// selected reports whether scenario is recorded with -only: only is empty,
// or one of its comma-separated items is part of the name.
func selected(only, scenario string) bool {
	if only == "" {
		return true
	}
	for _, item := range strings.Split(only, ",") {
		if item = strings.TrimSpace(item); item != "" && strings.Contains(scenario, item) {
			return true
		}
	}
	return false
}

// attemptName is the file name of attempt try ("x.dwt" -> "x.try1.dwt");
// try < 0 gives the final name.
func attemptName(name string, try int) string {
	const suffix = ".try"
	if i := strings.Index(name, suffix); i >= 0 {
		j := strings.IndexByte(name[i+1:], '.')
		name = name[:i] + name[i+1+j:]
	}
	if try < 0 {
		return name
	}
	ext := ".dwt"
	if strings.HasSuffix(name, ".labels.json") {
		ext = ".labels.json"
	}
	return strings.TrimSuffix(name, ext) + suffix + strconv.Itoa(try) + ext
}

// keepAttempt makes attempt try the scenario's trace and labels.
func keepAttempt(out string, sc labels.Scenario, try int) error {
	for _, name := range []string{sc.Test, sc.Labels} {
		if err := os.Rename(filepath.Join(out, attemptName(name, try)), filepath.Join(out, name)); err != nil {
			return fmt.Errorf("keep attempt %d: %w", try, err)
		}
	}
	return nil
}

// lostOf reads the total from the recorder's summary ("...; lost N (...)");
// an unreadable summary counts as a loss.
func lostOf(summary string) uint64 {
	_, rest, ok := strings.Cut(summary, "; lost ")
	if !ok {
		return 1<<63 - 1
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return 1<<63 - 1
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 1<<63 - 1
	}
	return n
}

// runAttack runs the attack with `runc exec --pid-file` and returns its
// label: the window from just before the exec to just after it returned,
// the container, and the exec'd process's host pid as the subtree root.
func runAttack(ctx context.Context, s *testinfra.Scope, log *slog.Logger, r *running, at attack, b *testinfra.Netns, h hosts, work string) labels.Attack {
	if at.listen != nil {
		l := b.Command(at.listen...)
		l.Stdin = strings.NewReader(at.listenStdin)
		if at.listenFile != "" {
			f, err := os.Open(at.listenFile)
			if err != nil {
				s.Fatalf("%s: listener: %v", at.scenario, err)
			}
			defer f.Close()
			l.Stdin = f
		}
		l.Stdout, l.Stderr = io.Discard, io.Discard
		if err := l.Start(); err != nil {
			s.Fatalf("%s: listener: %v", at.scenario, err)
		}
		defer func() { _ = l.Process.Kill(); _ = l.Wait() }()
		time.Sleep(500 * time.Millisecond)
	}
	pidFile := filepath.Join(work, at.scenario+".pid")
	outFile := filepath.Join(work, at.scenario+".out")
	out, err := os.Create(outFile)
	if err != nil {
		s.Fatalf("%v", err)
	}
	defer out.Close()
	var cmd *exec.Cmd
	if at.fromB != nil {
		// A request to the service from test host B: the attack's
		// processes are the service's own and their children, known by
		// container and window only (no pid in the label).
		cmd = b.Command(at.fromB(h)...)
	} else {
		cmd = r.container().CommandWith(testinfra.ExecOptions{User: at.user, PidFile: pidFile}, at.argv(h)...)
	}
	cmd.Stdin = strings.NewReader(at.stdin)
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now().UnixNano()
	if err := cmd.Start(); err != nil {
		s.Fatalf("%s: %v", at.scenario, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("killed after 30s: %w", <-done)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		s.Fatalf("interrupted")
	}
	// Let the subtree's last events (exits) land inside the window.
	time.Sleep(500 * time.Millisecond)
	end := time.Now().UnixNano()
	output, _ := os.ReadFile(outFile)
	// A failing attack (the escape attempt is refused) is still an attack.
	log.Info("attack ran", "scenario", at.scenario, "exit", errString(err), "output", strings.TrimSpace(string(output)))
	if at.fromB != nil {
		return labels.Attack{Name: at.name, StartNs: start, EndNs: end, ContainerID: r.container().ID()}
	}
	pidData, perr := os.ReadFile(pidFile)
	pid, aerr := strconv.ParseUint(strings.TrimSpace(string(pidData)), 10, 32)
	if perr != nil || aerr != nil {
		s.Fatalf("%s: runc pid file %s: %v %v", at.scenario, pidFile, perr, aerr)
	}
	return labels.Attack{Name: at.name, StartNs: start, EndNs: end, ContainerID: r.container().ID(), Pids: []uint32{uint32(pid)}}
}

func errString(err error) string {
	if err == nil {
		return "0"
	}
	var ee *exec.ExitError
	if e, ok := err.(*exec.ExitError); ok {
		ee = e
		return strconv.Itoa(ee.ExitCode())
	}
	return err.Error()
}

func sleep(ctx context.Context, s *testinfra.Scope, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
		s.Fatalf("interrupted")
	}
}

func writeJSON(s *testinfra.Scope, path string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.Fatalf("%v", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		s.Fatalf("%v", err)
	}
}
