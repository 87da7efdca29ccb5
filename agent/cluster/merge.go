package cluster

import (
	"time"

	"github.com/driftwatch/driftwatch/profiler"
)

// StateConfig decides the learning state of merged categories. It takes
// the bound, minimum observations and periods of the local lifecycle
// (profiler.Config), applied to the merged counts.
type StateConfig struct {
	UnseenBound     float64
	MinObservations uint64
	MinStable       time.Duration
	MaxLearn        time.Duration
	Gen             profiler.GenConfig
}

// StateConfigFrom takes the lifecycle settings of a profiler configuration
// (with its defaults filled in).
func StateConfigFrom(c profiler.Config) StateConfig {
	return StateConfig{UnseenBound: c.UnseenBound, MinObservations: c.MinWindowObs,
		MinStable: c.MinStable, MaxLearn: c.MaxLearn, Gen: c.Gen}
}

// mergeProfiles sums the retired contributions and the live slots of one
// key into a new profile and decides its states (prev: the states of the
// current merged object; stable categories stay stable).
func mergeProfiles(key string, retired *profiler.Profile, slots []*profiler.Profile, prev CategoryStates, cfg StateConfig) *profiler.Profile {
	m := profiler.NewDetachedProfile(key)
	for _, s := range append([]*profiler.Profile{retired}, slots...) {
		if s == nil {
			continue
		}
		m.Merge(s, cfg.Gen)
		if m.Image == "" {
			m.Image, m.Repo, m.Tag, m.Digest = s.Image, s.Repo, s.Tag, s.Digest
		}
		m.TooLarge = m.TooLarge || s.TooLarge
	}
	decideStates(m, prev, cfg)
	return m
}

// decideStates sets every category's state from the merged counts:
//
//   - stable (kept once reached) when the category has at least
//     MinObservations post-warm-up observations, the share of them that were
//     singletons first seen after warm-up is at or below UnseenBound, and
//     those observations span at least MinStable of event time;
//   - unstable when they span MaxLearn without becoming stable;
//   - learning otherwise.
//
// A category nobody observed is stable once every observed category is:
// the image demonstrably never does it, so anything there is new (as
// Finalize decides offline).
func decideStates(m *profiler.Profile, prev CategoryStates, cfg StateConfig) {
	var out [profiler.NumCategories]profiler.State
	observed, stable := 0, 0
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		st := m.Stats(c)
		if st.Observations == 0 {
			continue
		}
		observed++
		p, _ := profiler.ParseState(prev.get(c))
		obs, singles := st.PostObservations, st.PostSingletons
		if obs == 0 {
			obs, singles = st.Observations, st.Singletons
		}
		span := time.Duration(st.PostEnd - st.PostStart)
		switch {
		case p.Ready():
			out[c] = profiler.StateStable
		case obs >= cfg.MinObservations && float64(singles) <= cfg.UnseenBound*float64(obs) && span >= cfg.MinStable:
			out[c] = profiler.StateStable
		case p == profiler.StateUnstable || span >= cfg.MaxLearn:
			out[c] = profiler.StateUnstable
		default:
			out[c] = profiler.StateLearning
		}
		if out[c] == profiler.StateStable {
			stable++
		}
	}
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		if m.Stats(c).Observations == 0 && observed > 0 && stable == observed {
			out[c] = profiler.StateStable
		}
		m.SetState(c, out[c])
	}
}

func (s CategoryStates) get(c profiler.Category) string {
	switch c {
	case profiler.CatProcess:
		return s.Process
	case profiler.CatEdge:
		return s.Edge
	case profiler.CatFile:
		return s.File
	case profiler.CatNetwork:
		return s.Network
	case profiler.CatListen:
		return s.Listen
	case profiler.CatPrivilege:
		return s.Privilege
	}
	return ""
}

func (s *CategoryStates) set(c profiler.Category, v string) {
	switch c {
	case profiler.CatProcess:
		s.Process = v
	case profiler.CatEdge:
		s.Edge = v
	case profiler.CatFile:
		s.File = v
	case profiler.CatNetwork:
		s.Network = v
	case profiler.CatListen:
		s.Listen = v
	case profiler.CatPrivilege:
		s.Privilege = v
	}
}

// statesOf returns the profile's category states and their summary.
func statesOf(m *profiler.Profile) (CategoryStates, string) {
	var cs CategoryStates
	learning, unstable := false, false
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		st := m.State(c)
		cs.set(c, st.String())
		switch st {
		case profiler.StateLearning:
			learning = true
		case profiler.StateUnstable:
			unstable = true
		}
	}
	switch {
	case m.TooLarge:
		return cs, "too_large"
	case learning:
		return cs, "learning"
	case unstable:
		return cs, "unstable"
	}
	return cs, "stable"
}
