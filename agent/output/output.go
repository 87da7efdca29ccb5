// Package output delivers alerts in Falco's shape to stdout (text or JSON),
// a file (JSON lines, reopened for rotation) and HTTP endpoints
// (falcosidekick). Each output has a bounded queue drained by its own
// goroutine: Emit never blocks, overflow is dropped and counted, and an
// internal alert reports the drops (rate-limited), so a slow or dead endpoint
// never stalls the pipeline.
package output

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/internal/safefile"
)

// Sink writes one alert somewhere. Write is called from the output's own
// goroutine only.
type Sink interface {
	Write(ctx context.Context, a *event.Alert) error
	Close() error
}

// Reopener is a Sink that can reopen its file (log rotation).
type Reopener interface {
	Reopen() error
}

// Options configure a Manager.
type Options struct {
	// QueueLen is each output's queue length (default 1024).
	QueueLen int
	// HTTPTimeout bounds one POST (default 5s).
	HTTPTimeout time.Duration
	// DropAlertInterval rate-limits the internal drop alert per output (default 10s).
	DropAlertInterval time.Duration
	// Hostname is put on internal alerts.
	Hostname string
	// Stdout replaces os.Stdout (tests).
	Stdout io.Writer
	// OnDrop is called for each dropped alert with the output's name (metrics).
	OnDrop func(output string)
	// OnError is called when a sink fails to write an alert.
	OnError func(output string, err error)
	// Logger for write errors (rate-limited); nil means slog.Default().
	Logger *slog.Logger
	// HTTPClient replaces the default client (tests).
	HTTPClient *http.Client
}

// Manager fans alerts out to its outputs.
type Manager struct {
	opts   Options
	outs   []*queue
	mu     sync.RWMutex // Emit holds it shared; Close exclusively to close the queues
	closed bool
	wg     sync.WaitGroup
	log    *slog.Logger
}

type queue struct {
	name     string
	sink     Sink
	ch       chan *event.Alert
	dropped  atomic.Uint64
	reported atomic.Uint64 // drops already reported by an internal alert
	lastDrop atomic.Int64  // unix ns of the last drop alert
	reopen   atomic.Bool
	errs     atomic.Uint64
	lastErr  atomic.Int64
}

// New parses specs (stdout, stdout:json, file:PATH, http:URL) and opens the
// outputs. Call Start to begin delivery and Close to flush.
func New(specs []string, opts Options) (*Manager, error) {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 1024
	}
	if opts.HTTPTimeout <= 0 {
		opts.HTTPTimeout = 5 * time.Second
	}
	if opts.DropAlertInterval <= 0 {
		opts.DropAlertInterval = 10 * time.Second
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	m := &Manager{opts: opts, log: opts.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	seen := map[string]bool{}
	for _, spec := range specs {
		if seen[spec] {
			continue
		}
		seen[spec] = true
		s, err := m.open(spec)
		if err != nil {
			for _, q := range m.outs {
				q.sink.Close()
			}
			return nil, err
		}
		m.outs = append(m.outs, &queue{name: spec, sink: s, ch: make(chan *event.Alert, opts.QueueLen)})
	}
	return m, nil
}

// NewWithSinks builds a Manager over ready sinks keyed by name (tests and
// embedders).
func NewWithSinks(sinks map[string]Sink, opts Options) *Manager {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 1024
	}
	if opts.DropAlertInterval <= 0 {
		opts.DropAlertInterval = 10 * time.Second
	}
	m := &Manager{opts: opts, log: opts.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	names := make([]string, 0, len(sinks))
	for n := range sinks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m.outs = append(m.outs, &queue{name: n, sink: sinks[n], ch: make(chan *event.Alert, opts.QueueLen)})
	}
	return m
}

func (m *Manager) open(spec string) (Sink, error) {
	switch {
	case spec == "stdout", spec == "stdout:text":
		return &textSink{w: m.opts.Stdout}, nil
	case spec == "stdout:json":
		return &jsonSink{w: m.opts.Stdout}, nil
	case strings.HasPrefix(spec, "file:"):
		return OpenFile(strings.TrimPrefix(spec, "file:"))
	case strings.HasPrefix(spec, "http:"):
		u := strings.TrimPrefix(spec, "http:")
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("output %q: http: needs an http:// or https:// URL", spec)
		}
		c := m.opts.HTTPClient
		if c == nil {
			c = &http.Client{Timeout: m.opts.HTTPTimeout}
		}
		return &HTTPSink{URL: u, Client: c}, nil
	}
	return nil, fmt.Errorf("output %q: want stdout, stdout:json, file:PATH or http:URL", spec)
}

// Names lists the outputs in order.
func (m *Manager) Names() []string {
	out := make([]string, len(m.outs))
	for i, q := range m.outs {
		out[i] = q.name
	}
	return out
}

// Start starts one delivery goroutine per output.
func (m *Manager) Start() {
	for _, q := range m.outs {
		m.wg.Add(1)
		go m.drain(q)
	}
}

func (m *Manager) drain(q *queue) {
	defer m.wg.Done()
	for a := range q.ch {
		if q.reopen.CompareAndSwap(true, false) {
			if r, ok := q.sink.(Reopener); ok {
				if err := r.Reopen(); err != nil {
					m.failed(q, fmt.Errorf("reopen: %w", err))
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.opts.HTTPTimeout+time.Second)
		err := q.sink.Write(ctx, a)
		cancel()
		if err != nil {
			m.failed(q, err)
		}
	}
}

// failed counts a write (or reopen) failure of q, logs it and raises the
// internal alert, both at most once per DropAlertInterval.
func (m *Manager) failed(q *queue, err error) {
	q.errs.Add(1)
	if m.opts.OnError != nil {
		m.opts.OnError(q.name, err)
	}
	now := time.Now().UnixNano()
	if last := q.lastErr.Load(); (last == 0 || now-last >= int64(m.opts.DropAlertInterval)) && q.lastErr.CompareAndSwap(last, now) {
		m.log.Warn("output write failed", "output", q.name, "err", err, "failed_total", q.errs.Load())
		m.reportError(q, err)
	}
}

// Emit queues a for every output without blocking; a full queue drops the
// alert and counts it. Safe for concurrent use.
func (m *Manager) Emit(a *event.Alert) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	var overflowed []*queue
	for _, q := range m.outs {
		select {
		case q.ch <- a:
		default:
			q.dropped.Add(1)
			if m.opts.OnDrop != nil {
				m.opts.OnDrop(q.name)
			}
			overflowed = append(overflowed, q)
		}
	}
	for _, q := range overflowed {
		m.reportDrops(q)
	}
}

// reportDrops emits an internal alert about q's drops, at most once per
// DropAlertInterval per output.
func (m *Manager) reportDrops(q *queue) {
	now := time.Now().UnixNano()
	last := q.lastDrop.Load()
	if last != 0 && now-last < int64(m.opts.DropAlertInterval) {
		return
	}
	if !q.lastDrop.CompareAndSwap(last, now) {
		return
	}
	total := q.dropped.Load()
	since := total - q.reported.Swap(total)
	a := event.InternalAlert("Driftwatch internal: output queue overflow", event.PriorityCritical,
		fmt.Sprintf("Driftwatch internal: output %s dropped %d alerts (%d in total): the endpoint is slow or down (output=%s n_drops=%d n_drops_total=%d)",
			q.name, since, total, q.name, since, total),
		map[string]any{"output": q.name, "n_drops": since, "n_drops_total": total}, m.opts.Hostname)
	m.log.Warn("output queue overflow", "output", q.name, "dropped", since, "dropped_total", total)
	// Delivered to every output with room (the full one drops it again, counted).
	for _, o := range m.outs {
		select {
		case o.ch <- a:
		default:
			if o != q {
				o.dropped.Add(1)
				if m.opts.OnDrop != nil {
					m.opts.OnDrop(o.name)
				}
			}
		}
	}
}

// WriteErrorRule names the internal alert about a failing output.
const WriteErrorRule = "Driftwatch internal: output write failed"

// reportError raises the internal alert about q's write failure (the
// caller rate-limits it per DropAlertInterval) on every output, q
// included: a recovered file takes it, a dead one fails it again without
// a new alert within the interval.
func (m *Manager) reportError(q *queue, err error) {
	var rec *RecoveredError
	what := "alerts are being lost"
	if errors.As(err, &rec) {
		what = "recovered"
	}
	a := event.InternalAlert(WriteErrorRule, event.PriorityCritical,
		fmt.Sprintf("Driftwatch internal: output %s failed (%s): %s (output=%s n_errors_total=%d)",
			q.name, what, err.Error(), q.name, q.errs.Load()),
		map[string]any{"output": q.name, "error": err.Error(), "n_errors_total": q.errs.Load()}, m.opts.Hostname)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return
	}
	for _, o := range m.outs {
		select {
		case o.ch <- a:
		default:
			o.dropped.Add(1)
			if m.opts.OnDrop != nil {
				m.opts.OnDrop(o.name)
			}
		}
	}
}

// Errors returns the write error count per output.
func (m *Manager) Errors() map[string]uint64 {
	out := make(map[string]uint64, len(m.outs))
	for _, q := range m.outs {
		out[q.name] = q.errs.Load()
	}
	return out
}

// Dropped returns the drop count per output.
func (m *Manager) Dropped() map[string]uint64 {
	out := make(map[string]uint64, len(m.outs))
	for _, q := range m.outs {
		out[q.name] = q.dropped.Load()
	}
	return out
}

// Reopen asks every file output to reopen its file before its next write
// (SIGUSR1, after a log rotation).
func (m *Manager) Reopen() {
	for _, q := range m.outs {
		if r, ok := q.sink.(Reopener); ok {
			q.reopen.Store(true)
			if len(q.ch) == 0 {
				// Nothing queued: reopen now so the rotated file is released at once.
				if q.reopen.CompareAndSwap(true, false) {
					if err := r.Reopen(); err != nil {
						m.failed(q, fmt.Errorf("reopen: %w", err))
					}
				}
			}
		}
	}
}

// Close stops accepting alerts and waits, until ctx ends, for the queues to
// drain; then it closes the sinks. Alerts still queued at the deadline are
// abandoned.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for _, q := range m.outs {
		close(q.ch)
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n := 0
		for _, q := range m.outs {
			n += len(q.ch)
		}
		err = fmt.Errorf("outputs: %d alerts not delivered before the flush deadline: %w", n, ctx.Err())
	}
	for _, q := range m.outs {
		if cerr := q.sink.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("output %s: %w", q.name, cerr)
		}
	}
	return err
}

type textSink struct{ w io.Writer }

func (s *textSink) Write(_ context.Context, a *event.Alert) error {
	_, err := s.w.Write(append(event.AppendAlertText(nil, a), '\n'))
	return err
}
func (s *textSink) Close() error { return nil }

type jsonSink struct{ w io.Writer }

func (s *jsonSink) Write(_ context.Context, a *event.Alert) error {
	b, err := event.AppendAlertJSON(nil, a)
	if err != nil {
		return err
	}
	_, err = s.w.Write(append(b, '\n'))
	return err
}
func (s *jsonSink) Close() error { return nil }

// FileSink appends JSON lines to a file and reopens it on request. The
// file is opened without following symbolic links (see safefile) and
// created 0640. Before each write it checks that the file is still linked
// into the file system: a file deleted underneath it (or its directory
// removed) is recreated at its path when possible, and either way the
// write reports a *RecoveredError or an error, so the loss is counted and
// alerted instead of alerts going to an unlinked inode.
type FileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
	// broken: the last write failed; reopen before the next.
	broken bool
}

// RecoveredError reports a file output problem the sink worked around:
// the alert was written (to the reopened file), but the problem is still
// counted and alerted.
type RecoveredError struct{ Err error }

func (e *RecoveredError) Error() string { return e.Err.Error() }
func (e *RecoveredError) Unwrap() error { return e.Err }

// OpenFile opens (creating 0640, appending) a JSON-lines alert file; a
// symbolic link at path or at its directory is refused.
func OpenFile(path string) (*FileSink, error) {
	s := &FileSink{path: path}
	if err := s.Reopen(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSink) open() (*os.File, error) {
	f, err := safefile.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("output file %s: %w", s.path, err)
	}
	return f, nil
}

// Reopen closes and reopens the file (after rotation).
func (s *FileSink) Reopen() error {
	f, err := s.open()
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.broken = false
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// unlinkedLocked reports whether the open file has no name left.
func (s *FileSink) unlinkedLocked() bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(s.f.Fd()), &st); err != nil {
		return true
	}
	return st.Nlink == 0
}

// Write appends one JSON line, first recreating the file if it was
// deleted or the previous write failed.
func (s *FileSink) Write(_ context.Context, a *event.Alert) error {
	b, err := event.AppendAlertJSON(nil, a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var problem error
	if s.f == nil || s.broken || s.unlinkedLocked() {
		problem = fmt.Errorf("output file %s was deleted or failed", s.path)
		if s.f != nil && !s.broken {
			problem = fmt.Errorf("output file %s was deleted (or its directory removed)", s.path)
		}
		f, err := s.open()
		if err != nil {
			s.broken = true
			return fmt.Errorf("%w; reopening failed, alert lost: %w", problem, err)
		}
		if s.f != nil {
			s.f.Close()
		}
		s.f, s.broken = f, false
		problem = fmt.Errorf("%w; recreated it", problem)
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		s.broken = true
		return fmt.Errorf("output file %s: %w", s.path, err)
	}
	if problem != nil {
		return &RecoveredError{Err: problem}
	}
	return nil
}

// Close closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// HTTPSink POSTs one JSON alert per request, as falcosidekick's / endpoint
// accepts.
type HTTPSink struct {
	URL    string
	Client *http.Client
}

// Write posts a; a non-2xx status is an error.
func (s *HTTPSink) Write(ctx context.Context, a *event.Alert) error {
	b, err := event.AppendAlertJSON(nil, a)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "driftwatch")
	resp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", s.URL, resp.Status)
	}
	return nil
}

// Close releases idle connections.
func (s *HTTPSink) Close() error {
	s.Client.CloseIdleConnections()
	return nil
}
