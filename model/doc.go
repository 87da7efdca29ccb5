// Package model scores events against learned per-image profiles: the
// surprise of each generalised feature (−log₂ of its back-off probability
// under the profile), a threshold per profile and category calibrated on
// the profile's own post-warm-up learning data to a target false-alarm
// rate, a decayed per-container score, and Falco-shaped anomaly alerts that
// explain themselves. It does no I/O; profiles come from package profiler.
//
// See docs/scoring.md for the formulas and a worked example.
package model
