package cluster

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	dynfake "k8s.io/client-go/dynamic/fake"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/model"
	"github.com/driftwatch/driftwatch/profiler"
)

func TestObjectNameIsValidAndUnique(t *testing.T) {
	dns := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	seen := map[string]string{}
	for _, key := range []string{
		"registry.example/shop/web@sha256:" + strings.Repeat("ab", 32),
		"registry.example/shop/web@sha256:" + strings.Repeat("cd", 32),
		"docker.io/library/nginx:1.27",
		"localhost:5000/Team_A/API.Server:v2",
		"host",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"ÄÖÜ/@@@",
		strings.Repeat("x", 300),
	} {
		n := ObjectName(key)
		if !dns.MatchString(n) || len(n) > 63 {
			t.Errorf("ObjectName(%q) = %q: not a DNS label", key, n)
		}
		if o, dup := seen[n]; dup {
			t.Errorf("ObjectName(%q) = ObjectName(%q) = %q", key, o, n)
		}
		seen[n] = key
	}
}

func TestBlobRoundTripAndDeterminism(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	learn(prof, t0+int64(time.Minute), 5, 0, 1, 2)
	pj := prof.Snapshot(webKey)[0]
	a, err := encodeBlob(pj)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := encodeBlob(prof.Snapshot(webKey)[0])
	if a != b {
		t.Error("equal profiles encode differently: every sync would write")
	}
	pr, err := decodeBlob(a)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffCounts(countsOf(pr), counts(prof, webKey)); d != "" {
		t.Errorf("round trip: %s", d)
	}
	for _, bad := range []string{"!!", "aGVsbG8=", a[:len(a)/2]} {
		if _, err := decodeBlob(bad); err == nil {
			t.Errorf("decodeBlob(%.10q…) accepted garbage", bad)
		}
	}
}

func countsOf(pr *profiler.Profile) map[string]uint64 {
	out := map[string]uint64{}
	for c := profiler.Category(0); c < profiler.NumCategories; c++ {
		pr.EachFeature(c, func(_ uint64, f *profiler.FeatureStat) { out[c.String()+" "+f.Text] = f.Count })
	}
	return out
}

func TestMergeSumsAndDecidesStates(t *testing.T) {
	sc := StateConfigFrom(profiler.Config{UnseenBound: 0.01, MinWindowObs: 20, MinStable: time.Minute, MaxLearn: time.Hour})
	var slots []*profiler.Profile
	var want []map[string]uint64
	for i := 1; i <= 3; i++ {
		prof := profiler.New(nil, profiler.Config{Logger: quiet})
		learn(prof, t0+int64(time.Minute), 30, 0, i)
		pr, err := profiler.ProfileFromJSON(prof.Snapshot(webKey)[0])
		if err != nil {
			t.Fatal(err)
		}
		slots = append(slots, pr)
		want = append(want, counts(prof, webKey))
	}
	m := mergeProfiles(webKey, nil, slots, CategoryStates{}, sc)
	if d := diffCounts(countsOf(m), sumCounts(want...)); d != "" {
		t.Fatalf("merged counts: %s", d)
	}
	st, summary := statesOf(m)
	if summary != "stable" || st.Privilege != "stable" {
		t.Errorf("states %+v (%s): 5 minutes without new features should be stable, empty categories too", st, summary)
	}
	// Too little time: learning; and a stable category stays stable.
	short := profiler.New(nil, profiler.Config{Logger: quiet})
	learn(short, t0+int64(time.Minute), 3, 0)
	sp, _ := profiler.ProfileFromJSON(short.Snapshot(webKey)[0])
	if _, s := statesOf(mergeProfiles(webKey, nil, []*profiler.Profile{sp}, CategoryStates{}, sc)); s != "learning" {
		t.Errorf("30 s of observations: %s, want learning", s)
	}
	prev := CategoryStates{Process: "stable", Edge: "stable", File: "stable", Network: "stable"}
	if st, _ := statesOf(mergeProfiles(webKey, nil, []*profiler.Profile{sp}, prev, sc)); st.Process != "stable" {
		t.Errorf("a stable category fell back to %s", st.Process)
	}
	// Retired contributions count like live ones.
	m2 := mergeProfiles(webKey, slots[2], slots[:2], CategoryStates{}, sc)
	if d := diffCounts(countsOf(m2), sumCounts(want...)); d != "" {
		t.Errorf("retired + live: %s", d)
	}
}

func TestPublishTrigger(t *testing.T) {
	prof := profiler.New(nil, profiler.Config{Logger: quiet})
	learn(prof, t0+int64(time.Minute), 5, 0)
	pe := newPubEntry(prof.Snapshot(webKey)[0], NodeImage{})
	for _, tc := range []struct {
		name            string
		learn           func()
		material, minor bool
	}{
		{"nothing learned", func() {}, false, false},
		{"counts 5→7, no power of two crossed", func() { learn(prof, t0+int64(time.Hour), 2, 0) }, false, true},
		{"counts 7→8 cross a power of two", func() { learn(prof, t0+int64(2*time.Hour), 1, 0) }, true, true},
	} {
		tc.learn()
		mat, min := pe.changed(prof.Snapshot(webKey)[0])
		if mat != tc.material || min != tc.minor {
			t.Errorf("%s: material %v minor %v, want %v %v", tc.name, mat, min, tc.material, tc.minor)
		}
	}
	pe = newPubEntry(prof.Snapshot(webKey)[0], NodeImage{})
	prof.Learn(openE(t0+int64(3*time.Hour), "/etc/new"))
	if mat, _ := pe.changed(prof.Snapshot(webKey)[0]); !mat {
		t.Error("a new feature is not a material change")
	}
}

func TestFitSlotOmitsLargestProfiles(t *testing.T) {
	np := &NodeProfile{Spec: NodeProfileSpec{Node: "n", Epoch: "e"}}
	np.Name = "n"
	np.Spec.Images = []NodeImage{
		{Key: "small", Data: strings.Repeat("a", 1000)},
		{Key: "huge", Data: strings.Repeat("b", MaxObjectBytes)},
		{Key: "big", Data: strings.Repeat("c", MaxObjectBytes*2/3)},
		{Key: "medium", Data: strings.Repeat("d", MaxObjectBytes/3)},
	}
	omitted, size, err := fitSlot(np)
	if err != nil {
		t.Fatal(err)
	}
	if size > MaxObjectBytes || strings.Join(omitted, ",") != "big,huge" || len(np.Spec.Images) != 2 {
		t.Errorf("omitted %v, size %d, kept %d", omitted, size, len(np.Spec.Images))
	}
}

// TestDetectorScoresMergedElseLocal: the agent's detector scores with the
// merged profile of an image once the watch delivered one, and with the
// local profile before; learning always goes to the local store.
func TestDetectorScoresMergedElseLocal(t *testing.T) {
	local := profiler.New(nil, profiler.Config{Logger: quiet})
	learn(local, t0+int64(time.Minute), 30, 0) // only the common behaviour
	local.Finalize(false)
	s, err := New(dynfake.NewSimpleDynamicClient(runtime.NewScheme()), nil, local, Config{Node: "n", NoMerge: true, NoWatch: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(model.NewDetector(local, model.Config{}), s, model.Config{})
	tm := t0 + int64(time.Hour)
	if al := detect(d, part(1)[0](tm)); len(al) == 0 {
		t.Fatal("local profile: part 1's behaviour should be new")
	}
	// The merged profile (all parts, stable) arrives.
	other := profiler.New(nil, profiler.Config{Logger: quiet})
	learn(other, t0+int64(time.Minute), 30, 0, 1, 2, 3)
	other.Finalize(false)
	pr, err := profiler.ProfileFromJSON(other.Snapshot(webKey)[0])
	if err != nil {
		t.Fatal(err)
	}
	s.Merged().Install(pr)
	if al := detect(d, allParts(tm+int64(time.Hour))...); len(al) != 0 {
		t.Errorf("merged profile: %d alerts for learned behaviour, first %s", len(al), al[0].Output)
	}
	d.Handle(openE(tm, "/etc/learned-locally"), event.ModeLearn, func(*event.Alert) {})
	if !hasText(local, webKey, "/etc/learned-locally") || hasText(s.Merged(), webKey, "/etc/learned-locally") {
		t.Error("learning must go to the local store only")
	}
}

func hasText(p *profiler.Profiler, key, sub string) bool {
	for k := range counts(p, key) {
		if strings.Contains(k, sub) {
			return true
		}
	}
	return false
}
