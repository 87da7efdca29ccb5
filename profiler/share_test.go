package profiler

import "testing"

func TestInstallUpdatesInPlace(t *testing.T) {
	c := testCtr("c1", "web:1", "web", "1")
	src := New(nil, Config{})
	src.Learn(openEv(c, t0, "/etc/a", 0))
	key := KeyFor(c)
	build := func() *Profile {
		pr, err := ProfileFromJSON(src.Snapshot(key)[0])
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	dst := New(nil, Config{})
	dst.Install(build())
	var first *Profile
	var v1 uint64
	dst.WithProfile(key, func(pr *Profile) { first, v1 = pr, pr.Version })
	src.Learn(openEv(c, t0+1, "/etc/b", 0))
	dst.Install(build())
	dst.WithProfile(key, func(pr *Profile) {
		if pr != first {
			t.Error("Install replaced the profile pointer: holders of the old one leak and see stale content")
		}
		if pr.Version <= v1 || pr.NumFeatures() != 2 {
			t.Errorf("version %d (was %d), %d features, want 2", pr.Version, v1, pr.NumFeatures())
		}
	})
	if !dst.Has(key) || dst.Has("other") {
		t.Error("Has")
	}
}
