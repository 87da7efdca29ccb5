package testinfra

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// T is the part of testing.TB the helpers use. *testing.T and *testing.B
// satisfy it; Scope implements it for programs that are not tests.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Scope is a T for programs that are not tests: Fatalf panics with a
// *ScopeError (recover it with Scope.Run), and Close runs the cleanups in
// reverse order of registration and removes the temporary directories.
type Scope struct {
	mu       sync.Mutex
	cleanups []func()
	tmp      []string
	log      *slog.Logger
}

// ScopeError is the panic value of Scope.Fatalf.
type ScopeError struct{ Msg string }

func (e *ScopeError) Error() string { return e.Msg }

// NewScope returns a Scope logging to log (slog.Default when nil).
func NewScope(log *slog.Logger) *Scope {
	if log == nil {
		log = slog.Default()
	}
	return &Scope{log: log}
}

// Helper does nothing; it exists to satisfy T.
func (s *Scope) Helper() {}

// Logf logs at info level.
func (s *Scope) Logf(format string, args ...any) { s.log.Info(fmt.Sprintf(format, args...)) }

// Fatalf panics with a *ScopeError.
func (s *Scope) Fatalf(format string, args ...any) {
	panic(&ScopeError{Msg: fmt.Sprintf(format, args...)})
}

// Cleanup registers f to run at Close, after the functions registered later.
func (s *Scope) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// TempDir creates a new temporary directory removed at Close.
func (s *Scope) TempDir() string {
	dir, err := os.MkdirTemp("", "driftwatch-scope-")
	if err != nil {
		s.Fatalf("testinfra: temp dir: %v", err)
	}
	s.mu.Lock()
	s.tmp = append(s.tmp, dir)
	s.mu.Unlock()
	return dir
}

// Run calls f and turns a Fatalf inside it into an error. Cleanups are not
// run; call Close.
func (s *Scope) Run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			var se *ScopeError
			if e, ok := r.(error); ok && errors.As(e, &se) {
				err = se
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

// Close runs the registered cleanups in reverse order and removes the
// temporary directories. It is safe to call more than once.
func (s *Scope) Close() {
	s.mu.Lock()
	cleanups := s.cleanups
	s.cleanups = nil
	tmp := s.tmp
	s.tmp = nil
	s.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Warn("testinfra: cleanup failed", "err", r)
				}
			}()
			cleanups[i]()
		}()
	}
	for _, d := range tmp {
		if err := os.RemoveAll(d); err != nil {
			s.log.Warn("testinfra: remove temp dir", "dir", d, "err", err)
		}
	}
}

// randHex returns n random bytes as 2n lowercase hex digits.
func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("testinfra: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// NewContainerID returns a random 64-hex-digit id shaped like a runtime's
// container id.
func NewContainerID() string { return randHex(32) }

// NewPodUID returns a random UUID-shaped pod uid.
func NewPodUID() string {
	h := randHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// run executes argv and returns its combined output, or an error naming the
// command and carrying its output.
func run(argv ...string) ([]byte, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// mustRun is run that calls t.Fatalf on failure.
func mustRun(t T, argv ...string) []byte {
	t.Helper()
	out, err := run(argv...)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	return out
}

// NeedTool fails the test (through t.Fatalf) when name is not on PATH,
// saying which package provides it.
func NeedTool(t T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testinfra: %s not found on PATH (apt-get install -y --no-install-recommends runc containerd busybox-static iproute2): %v", name, err)
	}
	return p
}
