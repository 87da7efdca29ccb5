// Package trace is driftwatch's trace file codec: `driftwatch record` writes
// the sensor's events to it and `driftwatch replay`, detection and the eval
// harness read them back as the same event.Event values the live sensor
// produces. A trace is a small uncompressed header (magic, version,
// compression) followed by one compressed stream (zstd since version 2.0,
// gzip in 1.x files, which are still read) holding the start-up snapshot
// (processes, containers, cgroups), then length-prefixed binary records:
// events, cgroup and container updates, and an end record. The layout,
// versioning rules and damage handling are specified in
// docs/trace-format.md.
//
// Decoding reuses the caller's Event buffers and allocates nothing per event
// in steady state. A damaged or truncated file yields the events before the
// damage and then a *CorruptError naming the byte offset.
package trace

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
)

// Magic is the first 8 bytes of every trace file.
var Magic = [8]byte{0x89, 'D', 'W', 'T', 'R', 'A', 'C', 'E'}

// Version of the format this package writes. Readers accept any file with
// the same major version (unknown record kinds and trailing bytes in known
// records are skipped) and refuse other majors.
const (
	VersionMajor = 2
	VersionMinor = 2 // 2.1: events end with VPid … Env; 2.2: container mounts
)

// OldestMajor is the oldest major version readers still accept: 1.x files
// (gzip) read as before.
const OldestMajor = 1

// HeaderSize is the size of the uncompressed file header.
const HeaderSize = 16

// Compression codes in the header.
const (
	// CompressionGzip: one gzip member (RFC 1952); version 1.x files.
	CompressionGzip = 1
	// CompressionZstd: one zstd frame (RFC 8878, content checksum on);
	// version 2.x files.
	CompressionZstd = 2
)

// Record kinds inside the compressed stream.
const (
	recSnapshot  = 1
	recEvent     = 2
	recCgroup    = 3
	recContainer = 4
	recEnd       = 0x7f
)

// ErrUnsupportedVersion is wrapped by NewReader for a file written with
// another major version or an unknown compression.
var ErrUnsupportedVersion = errors.New("unsupported trace version")

// ErrNotTrace is wrapped by NewReader when the magic is wrong.
var ErrNotTrace = errors.New("not a driftwatch trace (bad magic)")

// ErrTruncated is wrapped in a CorruptError when the stream ends without
// its end record (a capture killed before Close, or a cut file).
var ErrTruncated = errors.New("trace ends without end record (truncated)")

// CorruptError reports damage in a trace. Offset is the byte offset of the
// damaged record in the logical stream: the 16 header bytes followed by the
// decompressed record stream (for damage in the header it is a file offset).
type CorruptError struct {
	Offset int64
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt trace at byte offset %d: %v", e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// IsTrace reports whether header (the first bytes of a file, at least 8)
// starts with the trace magic.
func IsTrace(header []byte) bool {
	return len(header) >= len(Magic) && bytes.Equal(header[:len(Magic)], Magic[:])
}

func fileHeader() []byte {
	h := make([]byte, HeaderSize)
	copy(h, Magic[:])
	le.PutUint16(h[8:], VersionMajor)
	le.PutUint16(h[10:], VersionMinor)
	h[12] = CompressionZstd
	return h
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// kindBytes[k] == k: lets recordCRC hash the kind byte without allocating.
var kindBytes = func() (b [256]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// recordCRC is the CRC-32C of the kind byte followed by the payload.
func recordCRC(kind byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, kindBytes[kind:int(kind)+1])
	return crc32.Update(c, castagnoli, payload)
}
