// Package input opens any trace driftwatch accepts — its own trace format,
// LID-DS recordings and ADFA-LD data — as an event.SnapshotSource, detecting
// the format by content or taking it from --input-format. replay, learn,
// detect and eval all open their inputs here.
package input

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/driftwatch/driftwatch/eval/adfa"
	"github.com/driftwatch/driftwatch/eval/labels"
	"github.com/driftwatch/driftwatch/eval/lidds"
	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

// Format names.
const (
	Auto  = "auto"
	Trace = "trace"
	LIDDS = "lidds"
	ADFA  = "adfa"
)

// Formats returns the accepted --input-format values.
func Formats() []string { return []string{Auto, Trace, LIDDS, ADFA} }

// Labelled is implemented by sources whose format carries ground truth
// (LID-DS exploit time, ADFA-LD attack traces).
type Labelled interface {
	Labels() *labels.Labels
}

// Source is what Open returns: a snapshot source that must be closed.
type Source interface {
	event.SnapshotSource
	io.Closer
}

// Detect returns the format of path by content: the trace magic, a LID-DS
// recording (zip with .sc, directory with .sc + .json, .sc file, LID-DS 2019
// .txt), or ADFA-LD (layout directory or a file of syscall numbers).
func Detect(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("input: %w", err)
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("input: %w", err)
		}
		hdr := make([]byte, len(trace.Magic))
		n, _ := io.ReadFull(f, hdr)
		f.Close()
		if trace.IsTrace(hdr[:n]) {
			return Trace, nil
		}
	}
	if lidds.Detect(path) {
		return LIDDS, nil
	}
	if adfa.Detect(path) {
		return ADFA, nil
	}
	return "", fmt.Errorf("input: %s: unknown format (not a driftwatch trace, LID-DS recording or ADFA-LD data); choose one with --input-format (%s)", path, strings.Join(Formats(), ", "))
}

// Open opens path in format ("" or "auto" detects it).
func Open(path, format string) (Source, error) {
	if format == "" {
		format = Auto
	}
	if !slices.Contains(Formats(), format) {
		return nil, fmt.Errorf("input: unknown format %q (want one of %s)", format, strings.Join(Formats(), ", "))
	}
	if format == Auto {
		f, err := Detect(path)
		if err != nil {
			return nil, err
		}
		format = f
	}
	// Each branch checks err itself so a failed open returns a nil interface,
	// not a typed nil pointer.
	switch format {
	case Trace:
		r, err := trace.Open(path)
		if err != nil {
			return nil, err
		}
		return r, nil
	case LIDDS:
		r, err := lidds.Open(path)
		if err != nil {
			return nil, err
		}
		return r, nil
	default:
		r, err := adfa.Open(path)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}
