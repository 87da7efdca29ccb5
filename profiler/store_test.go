package profiler

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(path, StoreOptions{Logger: quiet})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func learnSome(p *Profiler) {
	c := testCtr("c1", "web:1", "web", "1")
	for i := 0; i < 50; i++ {
		p.Learn(openEv(c, t0+int64(i)*int64(time.Second), fmt.Sprintf("/srv/www/page%d.html", i%7), 0))
		p.Learn(execEv(c, t0+int64(i)*int64(time.Second), "/usr/sbin/nginx", "nginx", "-g", "daemon off;"))
	}
	p.Learn(sysEv(c, t0+60*int64(time.Second), 42, tcpTo("10.0.0.7:5432")))
}

func exportString(t *testing.T, p *Profiler) string {
	t.Helper()
	var b bytes.Buffer
	if err := p.ExportJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path)
	p := New(s, Config{Logger: quiet})
	learnSome(p)
	p.Finalize(false)
	want := exportString(t, p)
	wantSum := p.Profiles()
	if err := p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, path)
	defer s2.Close()
	p2 := New(s2, Config{Logger: quiet})
	if got := exportString(t, p2); got != want {
		t.Errorf("reloaded export differs:\n%s\nwant\n%s", got, want)
	}
	gotSum := p2.Profiles()
	if fmt.Sprint(gotSum) != fmt.Sprint(wantSum) {
		t.Errorf("summaries differ:\n%v\n%v", gotSum, wantSum)
	}
	// Node counts are rebuilt exactly.
	p.WithProfile("web:1", func(a *Profile) {
		p2.WithProfile("web:1", func(b *Profile) {
			for c := range a.cats {
				if len(a.cats[c].nodes) != len(b.cats[c].nodes) {
					t.Errorf("%s: %d nodes vs %d", Category(c), len(a.cats[c].nodes), len(b.cats[c].nodes))
				}
				for h, n := range a.cats[c].nodes {
					if m := b.cats[c].nodes[h]; m == nil || *m != *n {
						t.Errorf("%s node %x: %+v vs %+v", Category(c), h, n, m)
					}
				}
			}
		})
	})
	// Reset removes the profile from the store at the next checkpoint.
	if !p2.Reset("web:1") || p2.Reset("web:1") {
		t.Fatal("reset")
	}
	if err := p2.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n, _ := s2.load(func(*Profile) {}); n != 0 {
		t.Errorf("%d profiles after reset", n)
	}
}

func TestCorruptStore(t *testing.T) {
	dir := t.TempDir()
	// A valid store to truncate.
	good := filepath.Join(dir, "good.db")
	s := openTest(t, good)
	p := New(s, Config{Logger: quiet})
	learnSome(p)
	if err := p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// A store whose profile record is garbage.
	badRec := filepath.Join(dir, "badrec.db")
	db, err := bolt.Open(badRec, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists(bucketProfiles)
		if _, err := tx.CreateBucketIfNotExists(bucketMeta); err != nil {
			return err
		}
		return b.Put([]byte("x"), []byte{1, 200, 1})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, tc := range []struct {
		name    string
		content []byte
		path    string
	}{
		{"garbage", bytes.Repeat([]byte("not a bbolt file "), 1000), ""},
		{"truncated", raw[:len(raw)/3], ""},
		{"empty-page", make([]byte, 4096), ""},
		{"bad-record", nil, badRec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = filepath.Join(dir, tc.name+".db")
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			orig, _ := os.ReadFile(path)
			s, err := OpenStore(path, StoreOptions{Logger: quiet})
			var sa *SetAsideError
			if !errors.As(err, &sa) {
				t.Fatalf("want SetAsideError, got %v", err)
			}
			if s == nil {
				t.Fatal("no fresh store returned")
			}
			defer s.Close()
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), sa.MovedTo) {
				t.Errorf("error does not name the files: %v", err)
			}
			moved, rerr := os.ReadFile(sa.MovedTo)
			if rerr != nil || !bytes.Equal(moved, orig) {
				t.Errorf("original not preserved at %s: %v", sa.MovedTo, rerr)
			}
			// The fresh store works.
			p := New(s, Config{Logger: quiet})
			learnSome(p)
			if err := p.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			if len(p.Profiles()) != 1 {
				t.Error("fresh store unusable")
			}
		})
	}
}

func TestSchemaMigrationAndNewer(t *testing.T) {
	dir := t.TempDir()
	// Version 0: a bbolt file without driftwatch's buckets.
	v0 := filepath.Join(dir, "v0.db")
	db, err := bolt.Open(v0, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, v0)
	if err := s.db.View(func(tx *bolt.Tx) error {
		v, err := schemaOf(tx)
		if v != SchemaVersion || tx.Bucket(bucketProfiles) == nil {
			return fmt.Errorf("schema %d, profiles bucket %v: %v", v, tx.Bucket(bucketProfiles) != nil, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	// Newer schema: refused, not set aside.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{99, 0, 0, 0})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := OpenStore(v0, StoreOptions{Logger: quiet})
	var sa *SetAsideError
	if s2 != nil || err == nil || errors.As(err, &sa) || !errors.Is(err, errNewerSchema) {
		t.Errorf("newer schema: store %v err %v", s2, err)
	}
	if _, err := os.Stat(v0); err != nil {
		t.Errorf("newer store was moved: %v", err)
	}
}

func TestExportImport(t *testing.T) {
	p := New(nil, Config{Logger: quiet})
	learnSome(p)
	p.Finalize(false)
	doc := exportString(t, p)

	q := New(nil, Config{Logger: quiet})
	keys, err := q.ImportJSON(strings.NewReader(doc))
	if err != nil || len(keys) != 1 || keys[0] != "web:1" {
		t.Fatalf("import: %v %v", keys, err)
	}
	if got := exportString(t, q); got != doc {
		t.Errorf("round trip differs:\n%s\nwant\n%s", got, doc)
	}
	// Importing again merges: counts add.
	if _, err := q.ImportJSON(strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	q.WithProfile("web:1", func(pr *Profile) {
		f := pr.Feature(CatProcess, HashString("/usr/sbin/nginx [nginx -g <str>]"))
		if f == nil || f.Count != 100 {
			t.Errorf("merged count %+v, want 100", f)
		}
		if n := pr.Node(CatProcess, RootHash); n.N != 100 || n.K != 1 {
			t.Errorf("merged root %+v", *n)
		}
	})
	for _, bad := range []struct{ doc, want string }{
		{`{"format":"x","profiles":[]}`, "format"},
		{`{"format":"driftwatch-profiles/v1","profiles":[{"key":"k","created":0,"updated":0,"categories":{"file":{"state":"stable","features":[{"feature":"/a [read]","levels":[1],"count":1,"first":0,"last":0}]}}}]}`, `profiles[0] ("k"): category file: features[0]`},
		{`{"format":"driftwatch-profiles/v1","profiles":[{"key":"k","created":0,"updated":0,"categories":{"nope":{"state":"stable","features":[]}}}]}`, "unknown category"},
	} {
		_, err := q.ImportJSON(strings.NewReader(bad.doc))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("import %s: err %v, want mention of %q", bad.doc, err, bad.want)
		}
	}
}

const crashEnv = "DRIFTWATCH_PROFILER_CRASH_HELPER"

// TestCrashHelper is the learning process of TestCrashResume; it does
// nothing unless started by it.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashResume")
	}
	s, err := OpenStore(path, StoreOptions{Logger: quiet})
	if err != nil {
		fmt.Println("open error", err)
		os.Exit(3)
	}
	p := New(s, Config{Logger: quiet, CheckpointInterval: 20 * time.Millisecond})
	go p.Run(context.Background()) // periodic checkpoints race with the explicit ones
	c := testCtr("c1", "app:1", "app", "1")
	for i := 1; ; i++ {
		p.Learn(openEv(c, t0+int64(i)*int64(time.Millisecond), "/var/lib/app/state", 0x2))
		if i%200 == 0 {
			if err := p.Checkpoint(); err != nil {
				fmt.Println("checkpoint error", err)
				os.Exit(4)
			}
			fmt.Println("checkpoint", i)
		}
	}
}

// TestCrashResume SIGKILLs a learning process mid-way and checks that the
// store reopens cleanly and learning resumes from the last checkpoint.
func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a helper process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last := 0
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "checkpoint "); ok {
			if last, err = strconv.Atoi(n); err != nil {
				t.Fatalf("helper: %q", line)
			}
			if last >= 2000 {
				break
			}
		} else if strings.Contains(line, "error") {
			t.Fatalf("helper: %s", line)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	cmd.Wait()
	if last < 2000 {
		t.Fatalf("helper stopped after checkpoint %d", last)
	}

	s, err := OpenStore(path, StoreOptions{Logger: quiet})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	p := New(s, Config{Logger: quiet})
	key := "app:1"
	var stored uint64
	p.WithProfile(key, func(pr *Profile) {
		if pr == nil {
			t.Fatal("profile lost")
		}
		stored = pr.Feature(CatFile, HashString("/var/lib/app/state [write]")).Count
	})
	if stored < uint64(last) {
		t.Fatalf("stored count %d is older than the last confirmed checkpoint %d", stored, last)
	}
	t.Logf("last confirmed checkpoint %d, store holds %d", last, stored)
	// Learning resumes on top of the stored counts.
	p.Learn(openEv(testCtr("c9", "app:1", "app", "1"), t0+int64(time.Hour), "/var/lib/app/state", 0x2))
	p.WithProfile(key, func(pr *Profile) {
		if got := pr.Feature(CatFile, HashString("/var/lib/app/state [write]")).Count; got != stored+1 {
			t.Errorf("after resume count %d, want %d", got, stored+1)
		}
	})
}

func TestReadOnlyOpen(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := OpenStore(missing, StoreOptions{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing store succeeded")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("read-only open created the store")
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	junk := bytes.Repeat([]byte{0xAB}, 8192)
	os.WriteFile(corrupt, junk, 0o600)
	_, err := OpenStore(corrupt, StoreOptions{ReadOnly: true})
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("corrupt read-only open: %v, want *CorruptError", err)
	}
	if b, _ := os.ReadFile(corrupt); !bytes.Equal(b, junk) {
		t.Fatal("read-only open changed the corrupt file")
	}
	if m, _ := filepath.Glob(corrupt + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("read-only open set the file aside: %v", m)
	}
	// A good store opens read-only and cannot be written.
	good := filepath.Join(dir, "good.db")
	s, err := OpenStore(good, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := OpenStore(good, StoreOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.write([]record{{key: "k", val: []byte("v")}}, nil, nil); err == nil {
		t.Fatal("write through a read-only store succeeded")
	}
}
