package main

import (
	"fmt"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
)

// inputSource is an opened trace or dataset recording.
type inputSource interface {
	event.SnapshotSource
	Close() error
}

// openInput opens path as an event source in the given input format
// ("" or "auto" detects it from the content).
func openInput(path, format string) (inputSource, error) {
	switch format {
	case "", "auto", "trace":
		r, err := trace.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("unknown input format %q", format)
}
