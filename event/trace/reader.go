package trace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/driftwatch/driftwatch/event"
)

// Reader reads a trace. It is not safe for concurrent use.
//
// Cgroup and container records met between events are applied to the
// Snapshot (Cgroups gains the entry; Containers gains or replaces the entry
// with the same ID) and passed to OnCgroup / OnContainer when set, before
// Next returns the following event.
type Reader struct {
	// OnCgroup, when set, is called for each cgroup record.
	OnCgroup func(id uint64, path string)
	// OnContainer, when set, is called for each container record.
	OnContainer func(info event.ContainerInfo)

	br     *bufio.Reader
	closer io.Closer
	zr     *zstd.Decoder // released by Close (2.x files)
	snap   *event.Snapshot
	buf    []byte
	off    int64 // logical offset of the next unread byte
	events uint64
	err    error // sticky: returned by every later Next
}

// NewReader reads the header and snapshot from r. Errors: ErrNotTrace or
// ErrUnsupportedVersion wrapped, or a *CorruptError.
func NewReader(r io.Reader) (*Reader, error) {
	var h [HeaderSize]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if !bytes.HasPrefix(Magic[:], h[:min(n, len(Magic))]) {
			return nil, fmt.Errorf("trace: %w", ErrNotTrace)
		}
		return nil, &CorruptError{Offset: int64(n), Err: fmt.Errorf("header: %w", noEOF(err))}
	}
	if !IsTrace(h[:]) {
		return nil, fmt.Errorf("trace: %w", ErrNotTrace)
	}
	major, minor := le.Uint16(h[8:]), le.Uint16(h[10:])
	if major < OldestMajor || major > VersionMajor {
		return nil, fmt.Errorf("trace: version %d.%d (this build reads %d.x to %d.x): %w", major, minor, OldestMajor, VersionMajor, ErrUnsupportedVersion)
	}
	switch {
	case major == 1 && h[12] == CompressionGzip:
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, &CorruptError{Offset: HeaderSize, Err: fmt.Errorf("gzip header: %w", noEOF(err))}
		}
		gz.Multistream(false)
		return newStreamReader(gz)
	case major == 2 && h[12] == CompressionZstd:
		// One goroutine-free decoder per trace: decoding runs on the
		// caller's goroutine, so CPU time stays with the replay.
		zr, err := getDecoder(r)
		if err != nil {
			return nil, &CorruptError{Offset: HeaderSize, Err: fmt.Errorf("zstd: %w", err)}
		}
		tr, err := newStreamReader(zr)
		if err != nil {
			putDecoder(zr)
			return nil, err
		}
		tr.zr = zr
		return tr, nil
	}
	return nil, fmt.Errorf("trace: version %d.%d with compression %d: %w", major, minor, h[12], ErrUnsupportedVersion)
}

// newStreamReader reads the decompressed record stream (snapshot first).
func newStreamReader(stream io.Reader) (*Reader, error) {
	tr := &Reader{br: bufio.NewReaderSize(stream, 64<<10), off: HeaderSize, buf: make([]byte, 0, 4096)}
	kind, payload, err := tr.record()
	if err != nil {
		return nil, err
	}
	if kind != recSnapshot {
		return nil, &CorruptError{Offset: HeaderSize, Err: fmt.Errorf("first record is kind %d, want snapshot (%d)", kind, recSnapshot)}
	}
	snap, err := decodeSnapshot(payload)
	if err != nil {
		return nil, &CorruptError{Offset: HeaderSize, Err: err}
	}
	if snap.Cgroups == nil {
		snap.Cgroups = map[uint64]string{}
	}
	tr.snap = snap
	return tr, nil
}

// Open opens the trace file at path; Close closes it.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	r, err := NewReader(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// Snapshot returns the capture's start-up snapshot, updated with the
// cgroup and container records read so far.
func (r *Reader) Snapshot() *event.Snapshot { return r.snap }

// Events returns how many events Next has returned.
func (r *Reader) Events() uint64 { return r.events }

// Offset returns the logical byte offset of the next record.
func (r *Reader) Offset() int64 { return r.off }

// Close releases the reader (and the file, for Open).
func (r *Reader) Close() error {
	if r.zr != nil {
		putDecoder(r.zr)
		r.zr = nil
	}
	if r.closer != nil {
		err := r.closer.Close()
		r.closer = nil
		return err
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// record reads the next record. On failure it returns a *CorruptError at
// the record's start and makes it sticky.
func (r *Reader) record() (kind byte, payload []byte, err error) {
	if r.err != nil {
		return 0, nil, r.err
	}
	start := r.off
	fail := func(e error) (byte, []byte, error) {
		r.err = &CorruptError{Offset: start, Err: e}
		return 0, nil, r.err
	}
	kind, err = r.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			return fail(ErrTruncated)
		}
		return fail(err)
	}
	n, err := binary.ReadUvarint(r.br)
	if err != nil {
		return fail(fmt.Errorf("record length: %w", noEOF(err)))
	}
	limit := uint64(MaxMetaRecord)
	if kind == recEvent {
		limit = MaxEventRecord
	}
	if n > limit {
		return fail(fmt.Errorf("record kind %d declares %d bytes, above the %d limit", kind, n, limit))
	}
	hlen := int64(1 + uvarintLen(n))
	if r.buf, err = readBounded(r.br, r.buf[:0], int(n)+4); err != nil {
		return fail(fmt.Errorf("record kind %d of %d bytes: %w", kind, n, noEOF(err)))
	}
	payload = r.buf[:n]
	if got, want := recordCRC(kind, payload), le.Uint32(r.buf[n:]); got != want {
		return fail(fmt.Errorf("record kind %d of %d bytes: checksum %08x, want %08x", kind, n, got, want))
	}
	r.off += hlen + int64(n) + 4
	return kind, payload, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// readBounded reads exactly n bytes into buf, growing it only as data
// actually arrives (so a bogus length at the end of a file costs no more
// memory than the file holds).
func readBounded(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	for len(buf) < n {
		chunk := min(n-len(buf), max(len(buf), 64<<10))
		if cap(buf)-len(buf) < chunk {
			nb := make([]byte, len(buf), len(buf)+chunk)
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Next decodes the next event into ev, reusing ev's byte slices. It returns
// io.EOF after the end record, and a *CorruptError (the same one on every
// later call) when the stream is damaged or truncated.
func (r *Reader) Next(ev *event.Event) error {
	err := r.next(ev)
	if err != nil && r.zr != nil {
		// The stream is over (EOF or damage, both sticky): release the
		// decoder now rather than only at Close.
		putDecoder(r.zr)
		r.zr = nil
	}
	return err
}

func (r *Reader) next(ev *event.Event) error {
	for {
		start := r.off
		kind, payload, err := r.record()
		if err != nil {
			return err
		}
		switch kind {
		case recEvent:
			if err := decodeEvent(payload, ev); err != nil {
				r.err = &CorruptError{Offset: start, Err: fmt.Errorf("event record: %w", err)}
				return r.err
			}
			r.events++
			return nil
		case recCgroup:
			d := decoder{b: payload}
			id := d.u64()
			path := d.str()
			if d.err != nil {
				r.err = &CorruptError{Offset: start, Err: fmt.Errorf("cgroup record: %w", d.err)}
				return r.err
			}
			r.snap.Cgroups[id] = path
			if r.OnCgroup != nil {
				r.OnCgroup(id, path)
			}
		case recContainer:
			d := decoder{b: payload}
			var info event.ContainerInfo
			decodeContainer(&d, &info)
			if d.err == nil && d.off < len(payload) {
				info.Mounts = decodeMounts(&d) // format 2.2
			}
			if d.err != nil {
				r.err = &CorruptError{Offset: start, Err: fmt.Errorf("container record: %w", d.err)}
				return r.err
			}
			r.mergeContainer(info)
			if r.OnContainer != nil {
				r.OnContainer(info)
			}
		case recEnd:
			d := decoder{b: payload}
			count := d.uvarint()
			if d.err != nil {
				r.err = &CorruptError{Offset: start, Err: fmt.Errorf("end record: %w", d.err)}
				return r.err
			}
			if count != r.events {
				r.err = &CorruptError{Offset: start, Err: fmt.Errorf("end record counts %d events, read %d", count, r.events)}
				return r.err
			}
			// Reading past the end makes gzip / zstd verify its checksum.
			if _, err := r.br.ReadByte(); err != io.EOF {
				if err == nil {
					err = errors.New("data after end record")
				}
				r.err = &CorruptError{Offset: r.off, Err: err}
				return r.err
			}
			r.err = io.EOF
			return io.EOF
		case recSnapshot:
			r.err = &CorruptError{Offset: start, Err: errors.New("second snapshot record")}
			return r.err
		default:
			// Unknown kind from a newer minor version: skip.
		}
	}
}

func (r *Reader) mergeContainer(info event.ContainerInfo) {
	for i := range r.snap.Containers {
		if r.snap.Containers[i].ID == info.ID {
			r.snap.Containers[i] = info
			return
		}
	}
	r.snap.Containers = append(r.snap.Containers, info)
}

// decoders recycles zstd decoders (and their window-sized buffers) across
// traces: a replay of many traces, or eval, opens one reader per trace.
// Decoders decode synchronously on the caller's goroutine (concurrency 1).
var decoders sync.Pool

func getDecoder(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
}

func putDecoder(d *zstd.Decoder) {
	if d.Reset(nil) == nil {
		decoders.Put(d)
	}
}
