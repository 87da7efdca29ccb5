package main

import (
	"github.com/driftwatch/driftwatch/eval/input"
)

// openInput opens path as an event source in the given input format
// ("" or "auto" detects it from the content: driftwatch trace, LID-DS
// recording, ADFA-LD trace).
func openInput(path, format string) (input.Source, error) {
	return input.Open(path, format)
}

// inputFormatHelp documents --input-format.
const inputFormatHelp = "input format: auto, trace, lidds or adfa (auto detects from the content)"
