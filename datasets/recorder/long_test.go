package main

import (
	"reflect"
	"testing"

	"github.com/driftwatch/driftwatch/eval/labels"
)

func TestMergeScenarios(t *testing.T) {
	sc := func(name, test string) labels.Scenario { return labels.Scenario{Name: name, Test: test} }
	tests := []struct {
		name          string
		old, recorded []labels.Scenario
		want          []labels.Scenario
	}{
		{"append new", []labels.Scenario{sc("a", "a1")}, []labels.Scenario{sc("b", "b1")}, []labels.Scenario{sc("a", "a1"), sc("b", "b1")}},
		{"replace in place", []labels.Scenario{sc("a", "a1"), sc("b", "b1")}, []labels.Scenario{sc("a", "a2")}, []labels.Scenario{sc("a", "a2"), sc("b", "b1")}},
		{"replace and append", []labels.Scenario{sc("a", "a1")}, []labels.Scenario{sc("c", "c1"), sc("a", "a2"), sc("c", "c2")}, []labels.Scenario{sc("a", "a2"), sc("c", "c2")}},
		{"nothing recorded", []labels.Scenario{sc("a", "a1")}, nil, []labels.Scenario{sc("a", "a1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := append([]labels.Scenario(nil), tt.old...)
			if got := mergeScenarios(tt.old, tt.recorded); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(old, tt.old) {
				t.Errorf("old modified: %+v", tt.old)
			}
		})
	}
}

func TestMergeStats(t *testing.T) {
	old := []traceStat{{Trace: "web/train.dwt", Kept: 1}, {Trace: "web/benign.dwt", Kept: 2}}
	got := mergeStats(old, []traceStat{{Trace: "web/benign.dwt", Kept: 3}, {Trace: "web/benign-long.dwt", Kept: 4}})
	want := []traceStat{{Trace: "web/train.dwt", Kept: 1}, {Trace: "web/benign.dwt", Kept: 3}, {Trace: "web/benign-long.dwt", Kept: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLongBenignScenarios(t *testing.T) {
	var runs []*running
	for _, w := range workloads("/bin/true") {
		runs = append(runs, &running{w: w})
	}
	scs := longBenignScenarios(runs)
	if len(scs) != len(runs) {
		t.Fatalf("%d scenarios for %d workloads", len(scs), len(runs))
	}
	m := labels.Manifest{Version: labels.Version, Name: "t", Scenarios: scs}
	if err := m.Validate(); err != nil {
		t.Fatalf("manifest of the long benign scenarios: %v", err)
	}
	for i, sc := range scs {
		w := runs[i].w.name
		want := labels.Scenario{
			Name: w + "-benign-long", Workload: w, Kind: labels.KindBenign,
			Train: []string{w + "/train.dwt"}, Test: w + "/benign-long.dwt", Labels: w + "/benign-long.labels.json",
		}
		if !reflect.DeepEqual(sc, want) {
			t.Errorf("scenario %d = %+v, want %+v", i, sc, want)
		}
		if selected("benign", sc.Name) != true || selected("web-benign,batch-benign,worker-benign", sc.Name) != true {
			t.Errorf("%s not selected by -only benign", sc.Name)
		}
	}
}

func TestCheckSubnet(t *testing.T) {
	tests := []struct {
		subnet string
		ok     bool
	}{
		{"", true},
		{"10.251.91", true},
		{"10.0.0", true},
		{"10.251.256", false},
		{"10.251.091", false},
		{"192.168.1", false},
		{"10.251", false},
		{"10.251.91.0", false},
		{"10.251.x", false},
	}
	for _, tt := range tests {
		if err := checkSubnet(tt.subnet); (err == nil) != tt.ok {
			t.Errorf("checkSubnet(%q) = %v, want ok=%v", tt.subnet, err, tt.ok)
		}
	}
}

func TestVethName(t *testing.T) {
	tests := []struct {
		out, want string
		ok        bool
	}{
		{"2: dwabc123a@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 1a:2b brd ff:ff\n", "dwabc123a", true},
		{"5: veth0: <BROADCAST> mtu 1500\n", "veth0", true},
		{"", "", false},
		{"2: a@if3: <UP>\n3: b@if4: <UP>\n", "", false},
		{"2:\n", "", false},
	}
	for _, tt := range tests {
		got, err := vethName(tt.out)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("vethName(%q) = %q, %v; want %q ok=%v", tt.out, got, err, tt.want, tt.ok)
		}
	}
}
