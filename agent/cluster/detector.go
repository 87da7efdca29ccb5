package cluster

import (
	"sync"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
)

// Detector learns into the local profiles and scores against the merged
// cluster-wide profile of a container's image when one exists, else
// against the local profile (API down, before the first sync, a profile
// too large to share). It implements pipeline.Detector.
type Detector struct {
	local  *model.Detector
	merged *model.Detector
	mp     *profiler.Profiler

	mu   sync.Mutex
	keys map[*event.Container]string
}

// NewDetector returns a detector over local (learning and fall-back) and
// the Syncer's merged profiles, scored with cfg.
func NewDetector(local *model.Detector, s *Syncer, cfg model.Config) *Detector {
	return &Detector{local: local, merged: model.NewDetector(s.Merged(), cfg), mp: s.Merged(), keys: map[*event.Container]string{}}
}

// maxKeys bounds the container → key cache; it is cleared when full.
const maxKeys = 16384

func (d *Detector) pick(e *event.Enriched) *model.Detector {
	d.mu.Lock()
	k, ok := d.keys[e.Container]
	if !ok {
		if len(d.keys) >= maxKeys {
			clear(d.keys)
		}
		k = profiler.KeyFor(e.Container)
		d.keys[e.Container] = k
	}
	d.mu.Unlock()
	if d.mp.Has(k) {
		return d.merged
	}
	return d.local
}

// Handle learns in learn mode (locally) and scores in detect mode.
func (d *Detector) Handle(e *event.Enriched, mode event.Mode, emit func(*event.Alert)) {
	if mode == event.ModeLearn {
		d.local.Handle(e, mode, emit)
		return
	}
	d.pick(e).Handle(e, mode, emit)
}

// Suppress asks the detector that scores e's container.
func (d *Detector) Suppress(a *event.Alert, e *event.Enriched) bool { return d.pick(e).Suppress(a, e) }

// ContainerScores returns the scores of both detectors; a container scored
// by both (its profile became shared) reports the newer.
func (d *Detector) ContainerScores() []model.ContainerScore {
	by := map[string]model.ContainerScore{}
	for _, s := range append(d.local.ContainerScores(), d.merged.ContainerScores()...) {
		if o, ok := by[s.ContainerID]; !ok || s.Time > o.Time {
			by[s.ContainerID] = s
		}
	}
	out := make([]model.ContainerScore, 0, len(by))
	for _, s := range by {
		out = append(out, s)
	}
	return out
}

// Stats returns the local and merged detectors' counters.
func (d *Detector) Stats() (local, merged model.Stats) { return d.local.Stats(), d.merged.Stats() }
