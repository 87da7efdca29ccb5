// Package datasets holds driftwatch's labelled container dataset suite
// (containers-v1: recorded traces, labels sidecars, manifest) and the
// programs that record it: recorder (the scenarios), tracefilter (cuts a
// system-wide recording to the scenario's containers) and helpers/dwhelper
// (attack steps busybox cannot do). docs/datasets.md describes every
// workload and scenario; record-all.sh reproduces the suite as root.
//
// The package's tests check the committed suite against its format and the
// promises docs/datasets.md makes.
package datasets
