package cluster

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/driftwatch/driftwatch/profiler"
)

// Config configures a Syncer. Zero fields take the documented defaults.
type Config struct {
	// Node is this agent's node name (required): the name of its slot.
	Node string
	// Namespace holds the merger's Lease (default "driftwatch").
	Namespace string
	// Period: a node writes its slot at most once per period, jittered by
	// ±10% (default 60s). A feature learned on one node reaches every
	// agent within two periods.
	Period time.Duration
	// Refresh: count changes that cross no power of two are published
	// when the last write is at least this old (default 10 periods).
	Refresh time.Duration
	// MergeInterval: the merger writes each ImageProfile at most once per
	// interval (default Period/2).
	MergeInterval time.Duration
	// Lease timing of the merger election (defaults 15s, 10s, 2s).
	LeaseName     string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// NoMerge keeps this agent out of the merger election.
	NoMerge bool
	// NoWatch skips the ImageProfile informer (publish-only; the load
	// program's simulated nodes): Merged stays empty.
	NoWatch bool
	// Retire folds the slots of nodes whose Node object is gone into the
	// ImageProfiles' retired totals and deletes them (default true; needs
	// nodes list/watch). RetireGrace is how old a slot must be first
	// (default 2m).
	NoRetire    bool
	RetireGrace time.Duration
	// States decides merged learning states (default from the local
	// profiler's configuration).
	States *StateConfig
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) fill(local *profiler.Profiler) {
	if c.Namespace == "" {
		c.Namespace = "driftwatch"
	}
	if c.Period == 0 {
		c.Period = time.Minute
	}
	if c.Refresh == 0 {
		c.Refresh = 10 * c.Period
	}
	if c.MergeInterval == 0 {
		c.MergeInterval = c.Period / 2
	}
	if c.LeaseName == "" {
		c.LeaseName = "driftwatch-profile-merger"
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = 15 * time.Second
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = 10 * time.Second
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = 2 * time.Second
	}
	if c.RetireGrace == 0 {
		c.RetireGrace = 2 * time.Minute
	}
	if c.States == nil {
		sc := StateConfigFrom(local.Config())
		c.States = &sc
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Stats are a Syncer's counters (cumulative).
type Stats struct {
	SlotWrites     uint64 // NodeProfile creates and updates
	ImageWrites    uint64 // ImageProfile creates and updates (as merger)
	Retired        uint64 // slots folded into retired totals (as merger)
	Conflicts      uint64 // 409 replies retried
	Errors         uint64 // failed API calls
	Omitted        uint64 // profiles left out of the slot (too large), last write
	SlotBytes      uint64 // JSON size of the last slot written
	MaxImageBytes  uint64 // largest ImageProfile JSON written
	MergedProfiles uint64 // merged profiles installed for scoring
	Leader         bool
}

// Syncer publishes a node's profiles, merges every node's slots while it
// holds the merger Lease, and keeps the merged profiles for scoring.
type Syncer struct {
	dyn    dynamic.Interface
	kube   kubernetes.Interface
	local  *profiler.Profiler
	merged *profiler.Profiler
	cfg    Config
	log    *slog.Logger

	pub publisher

	imgInf  cache.SharedIndexInformer
	watchMu sync.Mutex
	seen    map[string]string // ImageProfile name → status hash installed

	mstate *merger // used by the elect goroutine only

	statMu sync.Mutex
	stats  Stats
	leader atomic.Bool
}

// New returns a Syncer over local. kube may be nil with NoMerge (no Lease,
// no Node informer).
func New(dyn dynamic.Interface, kube kubernetes.Interface, local *profiler.Profiler, cfg Config) (*Syncer, error) {
	if cfg.Node == "" {
		return nil, errors.New("cluster sync: node name required (NODE_NAME)")
	}
	if kube == nil && !cfg.NoMerge {
		return nil, errors.New("cluster sync: the merger election needs a clientset")
	}
	if cfg.NoWatch && !cfg.NoMerge {
		return nil, errors.New("cluster sync: the merger needs the ImageProfile informer (NoWatch with NoMerge only)")
	}
	cfg.fill(local)
	s := &Syncer{dyn: dyn, kube: kube, local: local, cfg: cfg, log: cfg.Logger.With("component", "cluster-sync", "node", cfg.Node),
		merged: profiler.New(nil, profiler.Config{Gen: cfg.States.Gen, Logger: cfg.Logger}), seen: map[string]string{}}
	s.pub.s = s
	fac := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	s.imgInf = fac.ForResource(ImageProfileGVR).Informer()
	_, err := s.imgInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.onImage(o) },
		UpdateFunc: func(_, o any) { s.onImage(o) },
		DeleteFunc: func(o any) { s.onImageDelete(o) },
	})
	if err != nil {
		return nil, fmt.Errorf("cluster sync: %w", err)
	}
	return s, nil
}

// Merged is the profiler holding the cluster-wide profiles (scoring only).
func (s *Syncer) Merged() *profiler.Profiler { return s.merged }

// Stats returns the counters.
func (s *Syncer) Stats() Stats {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	st := s.stats
	st.Leader = s.leader.Load()
	return st
}

func (s *Syncer) count(fn func(*Stats)) {
	s.statMu.Lock()
	fn(&s.stats)
	s.statMu.Unlock()
}

// Run watches the merged profiles, publishes this node's slot every period
// and takes part in the merger election until ctx is done. API failures
// are logged and retried; learning continues in the local store.
func (s *Syncer) Run(ctx context.Context) error {
	if !s.cfg.NoWatch {
		go s.imgInf.Run(ctx.Done())
	}
	var wg sync.WaitGroup
	if !s.cfg.NoMerge {
		wg.Add(1)
		go func() { defer wg.Done(); s.elect(ctx) }()
	}
	t := time.NewTimer(s.jitter())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			if _, err := s.PublishOnce(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("profile slot not published; retrying next period", "err", err)
			}
			t.Reset(s.jitter())
		}
	}
}

func (s *Syncer) jitter() time.Duration {
	p := float64(s.cfg.Period)
	return time.Duration(p * (0.9 + 0.2*rand.Float64()))
}

// WaitForCacheSync waits until the ImageProfile informer has listed.
func (s *Syncer) WaitForCacheSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), s.imgInf.HasSynced)
}

// elect runs the merger election until ctx is done, merging while leading.
func (s *Syncer) elect(ctx context.Context) {
	id := s.cfg.Node + "_" + randHex(4)
	for ctx.Err() == nil {
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metaNS(s.cfg.LeaseName, s.cfg.Namespace),
			Client:     s.kube.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: s.cfg.LeaseDuration, RenewDeadline: s.cfg.RenewDeadline,
			RetryPeriod: s.cfg.RetryPeriod, ReleaseOnCancel: true, Name: s.cfg.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					s.leader.Store(true)
					s.log.Info("profile merger: leading")
					// The decoded slots survive a lost Lease: a new term
					// re-lists but re-decodes only what changed.
					if s.mstate == nil {
						s.mstate = newMerger(s)
					}
					s.mstate.run(lctx)
				},
				OnStoppedLeading: func() {
					if s.leader.Swap(false) {
						s.log.Info("profile merger: stopped leading")
					}
				},
			},
		})
		if err != nil {
			s.log.Error("profile merger election", "err", err)
			return
		}
		le.Run(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(s.cfg.RetryPeriod):
		}
	}
}

// onImage installs a merged profile for scoring when its content changed.
func (s *Syncer) onImage(o any) {
	ip, err := imageFrom(o)
	if err != nil {
		s.log.Warn("ImageProfile unreadable", "err", err)
		return
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.seen[ip.Name] == ip.Status.Hash && ip.Status.Hash != "" {
		return
	}
	if ip.Status.TooLarge || ip.Status.Profile == "" {
		// Score this key against the local profile.
		s.merged.Reset(ip.Spec.Key)
		s.seen[ip.Name] = ip.Status.Hash
		return
	}
	pr, err := decodeBlob(ip.Status.Profile)
	if err != nil {
		s.log.Warn("ImageProfile profile undecodable: scoring with the local profile", "name", ip.Name, "err", err)
		s.merged.Reset(ip.Spec.Key)
		return
	}
	if pr.Key != ip.Spec.Key {
		s.log.Warn("ImageProfile key mismatch: ignored", "name", ip.Name, "spec.key", ip.Spec.Key, "profile.key", pr.Key)
		return
	}
	s.merged.Install(pr)
	s.seen[ip.Name] = ip.Status.Hash
	s.count(func(st *Stats) { st.MergedProfiles++ })
}

func (s *Syncer) onImageDelete(o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	ip, err := imageFrom(o)
	if err != nil {
		return
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	delete(s.seen, ip.Name)
	s.merged.Reset(ip.Spec.Key)
}

func imageFrom(o any) (*ImageProfile, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", o)
	}
	var ip ImageProfile
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ip); err != nil {
		return nil, fmt.Errorf("ImageProfile %s: %w", u.GetName(), err)
	}
	return &ip, nil
}

func nodeProfileFrom(o any) (*NodeProfile, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", o)
	}
	var np NodeProfile
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &np); err != nil {
		return nil, fmt.Errorf("NodeProfile %s: %w", u.GetName(), err)
	}
	return &np, nil
}

func toUnstructured(obj any, kind string) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(Group + "/" + Version)
	u.SetKind(kind)
	// ToUnstructured writes a null creationTimestamp, which the API ignores.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := crand.Read(b); err != nil {
		return fmt.Sprint(os.Getpid())
	}
	return hex.EncodeToString(b)
}
