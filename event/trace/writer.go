package trace

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/driftwatch/driftwatch/event"
)

// CompressionLevel is the zstd level writers use: the fastest keeps the
// recorder cheap next to the sensor (see BenchmarkWrite).
const CompressionLevel = zstd.SpeedFastest

// Writer writes a trace. It is not safe for concurrent use; the recorder
// calls it from its single pipeline goroutine.
type Writer struct {
	zw     *zstd.Encoder
	bw     *bufio.Writer
	closer io.Closer // the file when made by Create
	rec    []byte    // scratch for one record's payload
	hdr    [1 + binary.MaxVarintLen64]byte
	sum    [4]byte
	events uint64
	err    error
	closed bool
}

// NewWriter writes the file header and the snapshot (nil means an empty
// snapshot) to w and returns a Writer for the records. Close flushes the
// compressor; it does not close w.
func NewWriter(w io.Writer, snap *event.Snapshot) (*Writer, error) {
	if _, err := w.Write(fileHeader()); err != nil {
		return nil, fmt.Errorf("trace: write header: %w", err)
	}
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(CompressionLevel), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true), zstd.WithWindowSize(1<<20))
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	tw := &Writer{zw: zw, bw: bufio.NewWriterSize(zw, 64<<10), rec: make([]byte, 0, 4096)}
	if snap == nil {
		snap = &event.Snapshot{}
	}
	tw.rec = appendSnapshot(tw.rec[:0], snap)
	if err := tw.writeRecord(recSnapshot, tw.rec); err != nil {
		return nil, err
	}
	return tw, nil
}

// Create creates (truncating) the file at path and writes a trace to it;
// Close also closes the file.
func Create(path string, snap *event.Snapshot) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	w, err := NewWriter(f, snap)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	w.closer = f
	return w, nil
}

func (w *Writer) writeRecord(kind byte, payload []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("trace: write after Close")
	}
	w.hdr[0] = kind
	n := binary.PutUvarint(w.hdr[1:], uint64(len(payload)))
	if _, err := w.bw.Write(w.hdr[:1+n]); err != nil {
		w.err = fmt.Errorf("trace: write: %w", err)
		return w.err
	}
	if _, err := w.bw.Write(payload); err != nil {
		w.err = fmt.Errorf("trace: write: %w", err)
		return w.err
	}
	le.PutUint32(w.sum[:], recordCRC(kind, payload))
	if _, err := w.bw.Write(w.sum[:]); err != nil {
		w.err = fmt.Errorf("trace: write: %w", err)
		return w.err
	}
	return nil
}

// Write appends one event with every field of ev.
func (w *Writer) Write(ev *event.Event) error {
	w.rec = appendEvent(w.rec[:0], ev)
	if len(w.rec) > MaxEventRecord {
		return fmt.Errorf("trace: event %d encodes to %d bytes, above the %d limit", ev.Num, len(w.rec), MaxEventRecord)
	}
	if err := w.writeRecord(recEvent, w.rec); err != nil {
		return err
	}
	w.events++
	return nil
}

// WriteCgroup records that cgroup id has path (relative to the cgroup v2
// mount), e.g. a cgroup created during the capture. Readers add it to their
// Snapshot's Cgroups map and call OnCgroup.
func (w *Writer) WriteCgroup(id uint64, path string) error {
	w.rec = le.AppendUint64(w.rec[:0], id)
	w.rec = appendString(w.rec, path)
	return w.writeRecord(recCgroup, w.rec)
}

// WriteContainer records what was learned about a container during the
// capture (metadata from the runtime or Kubernetes). Readers merge it into
// their Snapshot's Containers (replacing the entry with the same ID) and
// call OnContainer.
func (w *Writer) WriteContainer(info event.ContainerInfo) error {
	w.rec = appendContainer(w.rec[:0], &info)
	w.rec = appendMounts(w.rec, info.Mounts) // format 2.2
	return w.writeRecord(recContainer, w.rec)
}

// Flush pushes buffered records through the compressor to the underlying
// writer (a zstd block flush), so a capture killed later still leaves them
// readable. It costs compression ratio: call it every second or so, not per
// event.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("trace: flush: %w", err)
		return w.err
	}
	if err := w.zw.Flush(); err != nil {
		w.err = fmt.Errorf("trace: flush: %w", err)
		return w.err
	}
	return nil
}

// Events returns how many events were written.
func (w *Writer) Events() uint64 { return w.events }

// Close writes the end record, flushes the compressor and, for a Writer made
// by Create, closes the file.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.rec = binary.AppendUvarint(w.rec[:0], w.events)
	err := w.writeRecord(recEnd, w.rec)
	w.closed = true
	if err == nil {
		if err = w.bw.Flush(); err == nil {
			err = w.zw.Close()
		}
		if err != nil {
			err = fmt.Errorf("trace: close: %w", err)
		}
	}
	if w.closer != nil {
		if cerr := w.closer.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("trace: close: %w", cerr)
		}
	}
	return err
}

func putUvarint(b []byte, v uint64) int { return binary.PutUvarint(b, v) }
