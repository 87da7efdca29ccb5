package labels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftwatch/driftwatch/event"
)

func TestParseValidate(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"ok", `{"version":1,"trace":"a.dwt","attacks":[{"name":"x","start_ns":10,"end_ns":20,"pids":[5]}]}`, ""},
		{"benign", `{"version":1,"trace":"a.dwt","attacks":[]}`, ""},
		{"future version", `{"version":2,"trace":"a.dwt","attacks":[]}`, "unsupported version 2"},
		{"no version", `{"trace":"a.dwt","attacks":[]}`, "unsupported version 0"},
		{"end before start", `{"version":1,"attacks":[{"name":"x","start_ns":30,"end_ns":20}]}`, "end_ns 20 is before start_ns 30"},
		{"zero start", `{"version":1,"attacks":[{"name":"x","start_ns":0,"end_ns":20}]}`, "start_ns must be > 0"},
		{"unknown field", `{"version":1,"attackz":[]}`, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in), "t.json")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "t.json") {
				t.Fatalf("error %v, want one containing %q and the file name", err, tc.wantErr)
			}
		})
	}
}

func TestAttribute(t *testing.T) {
	// Process tree: 1 (init) -> 100 (shell, attack root) -> 200 (nc); 1 -> 300 (nginx).
	initP := &event.Process{Pid: 1}
	shell := &event.Process{Pid: 100, Parent: initP}
	nc := &event.Process{Pid: 200, Parent: shell}
	nginx := &event.Process{Pid: 300, Parent: initP}
	l := &Labels{Version: 1, Attacks: []Attack{
		{Name: "rs", StartNs: 1000, EndNs: 2000, ContainerID: "c1", Pids: []uint32{100}},
		{Name: "any", StartNs: 5000, EndNs: 6000, ContainerID: "c2"},
	}}
	grace := 100 * time.Nanosecond
	tests := []struct {
		name string
		t    int64
		cid  string
		pid  uint32
		proc *event.Process
		want int
	}{
		{"root in window", 1500, "c1", 100, shell, 0},
		{"descendant", 1500, "c1", 200, nc, 0},
		{"descendant without record", 1500, "c1", 100, nil, 0},
		{"unrelated process", 1500, "c1", 300, nginx, -1},
		{"before window", 999, "c1", 200, nc, -1},
		{"within grace", 2100, "c1", 200, nc, 0},
		{"after grace", 2101, "c1", 200, nc, -1},
		{"other container", 1500, "c9", 200, nc, -1},
		{"any process in container", 5500, "c2", 300, nginx, 1},
		{"any process wrong container", 5500, "c1", 300, nginx, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Attribute(tc.t, tc.cid, tc.pid, tc.proc, grace); got != tc.want {
				t.Fatalf("Attribute = %d, want %d", got, tc.want)
			}
		})
	}
	var nilL *Labels
	if nilL.Attribute(1500, "c1", 100, shell, 0) != -1 || nilL.AttackTime(1500, 0) {
		t.Fatal("nil labels attributed an event")
	}
	if !l.AttackTime(2050, grace) || l.AttackTime(3000, grace) {
		t.Fatal("AttackTime window wrong")
	}
}

func TestManifest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("web/rs.labels.json", `{"version":1,"trace":"rs.dwt","attacks":[{"name":"rs","start_ns":5,"end_ns":9}]}`)
	write("web/empty.labels.json", `{"version":1,"trace":"rs.dwt","attacks":[]}`)
	good := `{"version":1,"name":"s","scenarios":[
	 {"name":"web-rs","workload":"web","kind":"attack","train":["web/train.dwt"],"test":"web/rs.dwt","labels":"web/rs.labels.json"},
	 {"name":"web-benign","workload":"web","kind":"benign","train":["web/train.dwt"],"test":"web/b.dwt"}]}`
	write(ManifestFile, good)
	m, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Scenarios) != 2 || m.Path("web/rs.dwt") != filepath.Join(dir, "web", "rs.dwt") {
		t.Fatalf("manifest %+v", m)
	}
	l, err := m.LoadLabels(m.Scenarios[0])
	if err != nil || len(l.Attacks) != 1 {
		t.Fatalf("labels %v %v", l, err)
	}
	if l, err := m.LoadLabels(m.Scenarios[1]); err != nil || len(l.Attacks) != 0 {
		t.Fatalf("benign labels %v %v", l, err)
	}
	bad := []struct{ name, manifest, want string }{
		{"escape", `{"version":1,"scenarios":[{"name":"a","kind":"benign","test":"../x.dwt"}]}`, "stay inside"},
		{"kind", `{"version":1,"scenarios":[{"name":"a","kind":"evil","test":"x.dwt"}]}`, "field kind"},
		{"dup", `{"version":1,"scenarios":[{"name":"a","kind":"benign","test":"x"},{"name":"a","kind":"benign","test":"y"}]}`, "duplicate"},
		{"no labels", `{"version":1,"scenarios":[{"name":"a","kind":"attack","test":"x"}]}`, "labels is required"},
		{"empty", `{"version":1,"scenarios":[]}`, "empty"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			write(ManifestFile, tc.manifest)
			if _, err := LoadManifest(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// An attack scenario whose labels list nothing is refused.
	write(ManifestFile, good)
	m, _ = LoadManifest(dir)
	s := m.Scenarios[0]
	s.Labels = "web/empty.labels.json"
	if _, err := m.LoadLabels(s); err == nil {
		t.Fatal("attack scenario with empty labels accepted")
	}
}

func TestWriteRoundTrip(t *testing.T) {
	l := &Labels{Version: 1, Trace: "a.dwt", Attacks: []Attack{{Name: "n", StartNs: 1, EndNs: 2, ContainerID: "host", Pids: []uint32{7}}}}
	p := filepath.Join(t.TempDir(), "a.labels.json")
	if err := l.Write(p); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != l.String() || got.Attacks[0].Pids[0] != 7 {
		t.Fatalf("round trip %v != %v", got, l)
	}
}
