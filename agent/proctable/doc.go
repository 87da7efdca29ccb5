// Package proctable is driftwatch's process table: pid → process record
// (image, argv, cwd, credentials, parent, start time, container) with a
// per-process fd table, built from a start-up /proc scan (TakeSnapshot,
// LoadSnapshot) and kept current by the sensor's lifecycle and syscall
// events (Apply), so processes older than the agent have full ancestry and
// e.g. a socket dup2'ed onto stdin is known as a socket. Exited processes are
// reaped once nothing refers to them, with a hard cap on memory.
package proctable
