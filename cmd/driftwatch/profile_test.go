package main

// CLI tests of "driftwatch profile list|show|diff|export|import|reset" over
// profiles learned from synthetic traces (learn_test.go's generator).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	lpWebKey = "registry.local/web:1"
	lpAPIKey = "registry.local/api:1"
)

// lpLearned returns a store with the web and api profiles learned.
func lpLearned(t *testing.T) (dir, db string) {
	t.Helper()
	dir = t.TempDir()
	tr := lpWriteTrace(t, dir, "a.dwt", lpWeb(), lpAPI())
	db = filepath.Join(dir, "p.db")
	lpMust(t, "learn", "--db", db, tr)
	return dir, db
}

func TestProfileList(t *testing.T) {
	_, db := lpLearned(t)
	cats, images := lpSummaries(t, lpMust(t, "profile", "list", "--db", db, "--json"))
	if len(cats) != 2 || images[lpWebKey] != lpWebKey || images[lpAPIKey] != lpAPIKey {
		t.Fatalf("profile list --json: %v %v", images, cats)
	}
	if c := cats[lpAPIKey]["file"]; c.State != "detecting" || c.Observations != 120 || c.Features != 3 {
		t.Errorf("api file category %+v", c)
	}
	text := lpMust(t, "profile", "list", "--db", db)
	rows := strings.Split(strings.TrimSpace(text), "\n")
	// Sorted by key, after the header.
	if len(rows) != 3 || !strings.HasPrefix(rows[1], lpAPIKey+" ") || !strings.HasPrefix(rows[2], lpWebKey+" ") {
		t.Fatalf("profile list:\n%s", text)
	}
	// PROFILE IMAGE FEATURES OBSERVATIONS: web has 3+3+3+1 features over 180×3+60 observations.
	if f := strings.Fields(rows[2]); len(f) < 4 || f[2] != "10" || f[3] != "600" {
		t.Errorf("web row %q: want 10 features, 600 observations", rows[2])
	}
}

func TestProfileShow(t *testing.T) {
	_, db := lpLearned(t)
	out := lpMust(t, "profile", "show", "--db", db, lpWebKey)
	first := time.Unix(0, lpStart).UTC().Format(time.RFC3339)
	last := time.Unix(0, lpStart+59*lpStep).UTC().Format(time.RFC3339)
	for _, want := range []string{
		"profile " + lpWebKey + " image " + lpWebKey + "\n",
		"[process] state=detecting observations=180 features=3 singletons=0",
		"[network] state=detecting observations=60 features=1 singletons=0",
		"[privilege] state=detecting observations=0 features=0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	// Feature rows: count, first and last seen, text.
	for _, feature := range []string{"/usr/bin/cat [cat <path>]", "/bin/sh -> /usr/bin/date", "/etc/resolv.conf [read]", "tcp 10.0.0.7 :443"} {
		re := regexp.MustCompile(`(?m)^\s+60\s+` + regexp.QuoteMeta(first) + `\s+` + regexp.QuoteMeta(last) + `\s+` + regexp.QuoteMeta(feature) + `$`)
		if !re.MatchString(out) {
			t.Errorf("show has no row 60 %s %s %s:\n%s", first, last, feature, out)
		}
	}

	// --category keeps one section.
	out = lpMust(t, "profile", "show", "--db", db, "--category", "file", lpAPIKey)
	if strings.Count(out, "\n[") != 1 || !strings.Contains(out, "[file] state=detecting observations=120 features=3") ||
		!strings.Contains(out, "/etc/passwd [read]") || strings.Contains(out, "/usr/bin/id") {
		t.Errorf("show --category file:\n%s", out)
	}
}

func TestProfileErrors(t *testing.T) {
	dir, db := lpLearned(t)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"show unknown", []string{"profile", "show", "--db", db, "nginx:9"}, 1, `no profile "nginx:9"`},
		{"show bad category", []string{"profile", "show", "--db", db, "--category", "disk", lpWebKey}, 2, `unknown category "disk"`},
		{"diff unknown", []string{"profile", "diff", "--db", db, lpWebKey, "nginx:9"}, 1, `no profile "nginx:9"`},
		{"reset unknown", []string{"profile", "reset", "--db", db, "nginx:9"}, 1, `no profile "nginx:9"`},
		{"reset nothing", []string{"profile", "reset", "--db", db}, 2, "--all"},
		{"list without db", []string{"profile", "list"}, 2, "--db is required"},
		{"import missing file", []string{"profile", "import", "--db", db, filepath.Join(dir, "absent.json")}, 1, "absent.json"},
		{"import not json", []string{"profile", "import", "--db", db, filepath.Join(dir, "a.dwt")}, 1, "a.dwt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := lpRun(t, tc.args...)
			if code := lpExitCode(err); code != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("driftwatch %s: exit %d (%v), want exit %d mentioning %q", strings.Join(tc.args, " "), code, err, tc.code, tc.msg)
			}
		})
	}
	// The failed commands changed nothing.
	if cats, _ := lpSummaries(t, lpMust(t, "profile", "list", "--db", db, "--json")); len(cats) != 2 {
		t.Errorf("profiles after failed commands: %v", cats)
	}
}

// lpDecodeExport decodes an export document, failing on a wrong format tag.
func lpDecodeExport(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if doc["format"] != "driftwatch-profiles/v1" {
		t.Fatalf("export format %v", doc["format"])
	}
	return doc
}

// lpExportKeys lists the profile keys of an export document.
func lpExportKeys(t *testing.T, doc map[string]any) []string {
	t.Helper()
	ps, _ := doc["profiles"].([]any)
	var keys []string
	for _, p := range ps {
		m, _ := p.(map[string]any)
		k, _ := m["key"].(string)
		keys = append(keys, k)
	}
	return keys
}

func TestProfileExportImportRoundTrip(t *testing.T) {
	dir, db := lpLearned(t)
	exported := filepath.Join(dir, "all.json")
	lpMust(t, "profile", "export", "--db", db, "-o", exported)
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	doc := lpDecodeExport(t, data)
	if keys := lpExportKeys(t, doc); !reflect.DeepEqual(keys, []string{lpAPIKey, lpWebKey}) {
		t.Fatalf("export keys %v", keys)
	}

	// Import into a fresh store: same summaries, same features, same export.
	db2 := filepath.Join(dir, "other.db")
	out := lpMust(t, "profile", "import", "--db", db2, exported)
	if out != "imported "+lpAPIKey+"\nimported "+lpWebKey+"\n" {
		t.Errorf("import printed %q", out)
	}
	// The summaries agree except size_bytes: the store also keeps the
	// lifecycle's sliding-window buckets, which the export does not carry.
	summaries := func(db string) []map[string]any {
		var s []map[string]any
		if err := json.Unmarshal([]byte(lpMust(t, "profile", "list", "--json", "--db", db)), &s); err != nil {
			t.Fatal(err)
		}
		for _, m := range s {
			delete(m, "size_bytes")
		}
		return s
	}
	if a, b := summaries(db), summaries(db2); !reflect.DeepEqual(a, b) {
		t.Errorf("profile list --json differs after export/import:\n%v\n%v", a, b)
	}
	for _, args := range [][]string{
		{"profile", "show", lpWebKey},
		{"profile", "show", lpAPIKey},
	} {
		a := lpMust(t, append(args, "--db", db)...)
		b := lpMust(t, append(args, "--db", db2)...)
		if a != b {
			t.Errorf("%s differs after export/import:\n--- original\n%s\n--- imported\n%s", strings.Join(args, " "), a, b)
		}
	}
	again := lpDecodeExport(t, []byte(lpMust(t, "profile", "export", "--db", db2)))
	if !reflect.DeepEqual(doc, again) {
		t.Errorf("re-export of the imported store differs from the export")
	}

	// Export of one profile to stdout; importing it again (from stdin)
	// merges into the existing profile: counts add.
	one := lpMust(t, "profile", "export", "--db", db, lpAPIKey)
	if keys := lpExportKeys(t, lpDecodeExport(t, []byte(one))); !reflect.DeepEqual(keys, []string{lpAPIKey}) {
		t.Fatalf("export %s: keys %v", lpAPIKey, keys)
	}
	root := newRootCmd()
	var sink strings.Builder
	root.SetOut(&sink)
	root.SetErr(&sink)
	root.SetIn(strings.NewReader(one))
	root.SetArgs([]string{"profile", "import", "--db", db2})
	if err := root.Execute(); err != nil {
		t.Fatalf("import from stdin: %v\n%s", err, sink.String())
	}
	cats, _ := lpSummaries(t, lpMust(t, "profile", "list", "--db", db2, "--json"))
	if c := cats[lpAPIKey]["file"]; c.Observations != 240 || c.Features != 3 {
		t.Errorf("api file after merging the same export twice: %+v, want 240 observations of 3 features", c)
	}
	if c := cats[lpWebKey]["file"]; c.Observations != 180 {
		t.Errorf("web file changed by importing api: %+v", c)
	}
}

func TestProfileDiff(t *testing.T) {
	_, db := lpLearned(t)
	out := lpMust(t, "profile", "diff", "--db", db, lpWebKey, lpAPIKey)
	want := `[process]
  ~ /usr/bin/cat [cat <path>] (×60 → ×40)
  - /usr/bin/curl [curl -s <path>] (×60)
  - /usr/bin/date [date] (×60)
  + /usr/bin/id [id] (×40)
[edge]
  ~ /bin/sh -> /usr/bin/cat (×60 → ×40)
  - /bin/sh -> /usr/bin/curl (×60)
  - /bin/sh -> /usr/bin/date (×60)
  + /bin/sh -> /usr/bin/id (×40)
[file]
  + /etc/group [read] (×40)
  ~ /etc/hostname [read] (×60 → ×40)
  - /etc/localtime [read] (×60)
  + /etc/passwd [read] (×40)
  - /etc/resolv.conf [read] (×60)
[network]
  - tcp 10.0.0.7 :443 (×60)
`
	if out != want {
		t.Errorf("diff web api:\n%s\nwant:\n%s", out, want)
	}
	if out := lpMust(t, "profile", "diff", "--db", db, lpAPIKey, lpAPIKey); out != "no differences in features or counts\n" {
		t.Errorf("diff of a profile with itself: %q", out)
	}
}

func TestProfileReset(t *testing.T) {
	_, db := lpLearned(t)
	if out := lpMust(t, "profile", "reset", "--db", db, lpWebKey); out != "reset "+lpWebKey+"\n" {
		t.Errorf("reset printed %q", out)
	}
	cats, _ := lpSummaries(t, lpMust(t, "profile", "list", "--db", db, "--json"))
	if _, ok := cats[lpWebKey]; ok || len(cats) != 1 {
		t.Errorf("after reset %s: %v", lpWebKey, cats)
	}
	if _, _, err := lpRun(t, "profile", "show", "--db", db, lpWebKey); lpExitCode(err) != 1 {
		t.Errorf("show of a reset profile: %v, want exit 1", err)
	}
	// A reset profile is learned afresh.
	dir := t.TempDir()
	tr := lpWriteTrace(t, dir, "b.dwt", lpWeb())
	lpMust(t, "learn", "--db", db, tr)
	cats, _ = lpSummaries(t, lpMust(t, "profile", "list", "--db", db, "--json"))
	if c := cats[lpWebKey]["process"]; c.Observations != 180 {
		t.Errorf("web process after reset and relearn: %+v, want 180 observations", c)
	}

	if out := lpMust(t, "profile", "reset", "--db", db, "--all"); out != "reset "+lpAPIKey+"\nreset "+lpWebKey+"\n" {
		t.Errorf("reset --all printed %q", out)
	}
	if cats, _ := lpSummaries(t, lpMust(t, "profile", "list", "--db", db, "--json")); len(cats) != 0 {
		t.Errorf("profiles after reset --all: %v", cats)
	}
}

// profile show lists the static-rule alerts the agent suppressed with the
// profile (from DB.suppressed.json), only this profile's.
func TestProfileShowSuppressions(t *testing.T) {
	_, db := lpLearned(t)
	if out := lpMust(t, "profile", "show", "--db", db, lpWebKey); !strings.Contains(out, "[suppressed static-rule alerts] 0 rules") {
		t.Errorf("no suppression file: output lacks the empty section:\n%s", out)
	}
	doc := `{"version":1,"entries":[
 {"profile":"` + lpWebKey + `","rule":"Redirect STDOUT/STDIN to Network Connection in Container","priority":"Notice","count":29558,"first":1,"last":2,"features":["file: /dev/null"]},
 {"profile":"other:1","rule":"Other rule","priority":"Warning","count":3,"first":1,"last":2}]}`
	if err := os.WriteFile(db+".suppressed.json", []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := lpMust(t, "profile", "show", "--db", db, lpWebKey)
	if !strings.Contains(out, "[suppressed static-rule alerts] 1 rules") || !strings.Contains(out, "29558") ||
		!strings.Contains(out, "Redirect STDOUT/STDIN to Network Connection in Container") || strings.Contains(out, "Other rule") {
		t.Errorf("suppressions not shown:\n%s", out)
	}
}
