package input

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/event/trace"
	"github.com/driftwatch/driftwatch/internal/testutil"
)

func writeTrace(t *testing.T, path string, n int) {
	t.Helper()
	w, err := trace.Create(path, &event.Snapshot{Time: 1, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := event.Event{Kind: event.KindSyscall, Syscall: event.SysOpenat, Time: int64(100 + i), Pid: 7, Tid: 7, Path: []byte("/etc/x")}
		if err := w.Write(&ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, src Source) int {
	t.Helper()
	defer src.Close()
	var ev event.Event
	n := 0
	for {
		err := src.Next(&ev)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

func TestDetectAndOpen(t *testing.T) {
	dir := t.TempDir()
	tr := filepath.Join(dir, "x.dwt")
	writeTrace(t, tr, 5)
	junk := filepath.Join(dir, "junk.bin")
	os.WriteFile(junk, []byte("hello world"), 0o644)
	adfaRoot := filepath.Join("..", "adfa", "testdata", "ADFA-LD")
	liddsDir := filepath.Join("..", "lidds", "testdata", "rec2021")
	tests := []struct {
		path, format, want string
		events             int
	}{
		{tr, "", Trace, 5},
		{tr, Trace, Trace, 5},
		{adfaRoot, Auto, ADFA, 66},
		{filepath.Join(adfaRoot, "Training_Data_Master", "UTD-0001.txt"), "", ADFA, 16},
		{liddsDir, "", LIDDS, 6},
		{liddsDir, LIDDS, LIDDS, 6},
	}
	for _, tc := range tests {
		t.Run(tc.path+"/"+tc.format, func(t *testing.T) {
			if tc.format == "" {
				got, err := Detect(tc.path)
				if err != nil || got != tc.want {
					t.Fatalf("Detect = %q %v, want %q", got, err, tc.want)
				}
			}
			src, err := Open(tc.path, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if src.Snapshot() == nil {
				t.Fatal("nil snapshot")
			}
			_, labelled := src.(Labelled)
			if labelled != (tc.want != Trace) {
				t.Fatalf("Labelled = %v for %s", labelled, tc.want)
			}
			if n := count(t, src); n != tc.events {
				t.Fatalf("%d events, want %d", n, tc.events)
			}
		})
	}
	if _, err := Detect(junk); err == nil {
		t.Fatal("junk detected")
	}
	if src, err := Open(junk, Trace); err == nil || src != nil {
		t.Fatalf("junk opened as trace: %v %v", src, err)
	}
	if _, err := Open(tr, "pcap"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestSharedLIDDS(t *testing.T) {
	zip := filepath.Join(testutil.SharedDir(t), "datasets", "lid-ds-2021-sample", "aggressive_nightingale_1018.zip")
	src, err := Open(zip, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, src); n < 11727 || n > 11741 {
		t.Fatalf("%d events, want 11727..11741", n)
	}
}
