package model

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/driftwatch/driftwatch/event"
	"github.com/driftwatch/driftwatch/profiler"
)

// maxUsual is how many of the deepest known node's features an
// explanation lists.
const maxUsual = 3

// explain describes an unseen feature: where the back-off stopped and what
// the profile usually sees there.
func explain(pr *profiler.Profile, f *profiler.Feature) (string, []string) {
	// Deepest known node on the chain.
	j := 0
	for i := 0; i < f.Depth; i++ {
		if n := pr.Node(f.Cat, f.Chain[i]); n != nil && n.N > 0 {
			j = i
		} else {
			break
		}
	}
	where := "this category"
	prefix := ""
	if j > 0 {
		prefix = string(f.NodeText(j))
		where = event.Escape([]byte(prefix))
	}
	n := pr.Node(f.Cat, f.Chain[j])
	var obs, n1, k uint64
	if n != nil {
		obs, n1, k = n.N, n.N1, n.K
	}
	type kv struct {
		text  string
		count uint64
	}
	var usual []kv
	pr.EachFeature(f.Cat, func(_ uint64, fs *profiler.FeatureStat) {
		if strings.HasPrefix(fs.Text, prefix) {
			usual = append(usual, kv{fs.Text, fs.Count})
		}
	})
	sort.SliceStable(usual, func(a, b int) bool { return usual[a].count > usual[b].count })
	var list []string
	for i, u := range usual {
		if i == maxUsual {
			break
		}
		list = append(list, fmt.Sprintf("%s ×%d", event.Escape([]byte(u.text)), u.count))
	}
	var b strings.Builder
	if obs == 0 {
		fmt.Fprintf(&b, "the profile has never seen a %s event (%d observations in other categories)", f.Cat, pr.Total())
	} else {
		fmt.Fprintf(&b, "never seen in this profile; %s has %d known entries over %d observations, %d seen once (unseen probability %.3g)",
			where, k, obs, n1, profiler.UnseenMass(n1, obs))
		if len(list) > 0 {
			fmt.Fprintf(&b, "; usually: %s", strings.Join(list, ", "))
		}
	}
	return b.String(), list
}

func (d *Detector) buildAlert(e *event.Enriched, pr *profiler.Profile, f *profiler.Feature, st profiler.State, s float64, cal *Calibration) *event.Alert {
	feature := event.Escape(f.Text)
	expl, usual := explain(pr, f)
	if !st.Ready() {
		expl += fmt.Sprintf("; category %s is %s, threshold raised by %.2g bits", f.Cat, st, d.cfg.LearningMargin)
	}
	var since any
	if d.mode == event.ModeAuto {
		cst := pr.Stats(f.Cat)
		if cst.StableAt > 0 {
			since = time.Unix(0, cst.StableAt).UTC().Format(time.RFC3339)
			expl += fmt.Sprintf("; auto mode: %s learned from %s, detecting since %s", f.Cat,
				time.Unix(0, cst.LearnStart).UTC().Format(time.RFC3339), since)
		} else {
			expl += fmt.Sprintf("; auto mode: %s detecting (finalised offline)", f.Cat)
		}
	}
	mode := string(d.mode)
	if mode == "" {
		mode = string(event.ModeDetect)
	}
	var ctrID, ctrName, image, ns, pod string
	ctrID = event.HostContainerID
	if c := e.Container; c != nil {
		ctrID, ctrName, image, ns, pod = c.ID, c.Name, c.Image, c.Namespace, c.PodName
	}
	var cmdline, exe, pname string
	var pid, uid uint32
	if p := e.Proc; p != nil {
		cmdline = event.Escape([]byte(strings.Join(p.Args, " ")))
		exe, pname, pid, uid = event.Escape([]byte(p.Exe)), event.Escape([]byte(p.Comm)), p.Pid, p.Uid
	} else if e.Event != nil {
		pid, uid, pname = e.Pid, e.Uid, event.Escape([]byte(e.CommString()))
	}
	prio := Priority(s, cal.Threshold)
	fields := map[string]any{
		"anomaly.score":           round2(s),
		"anomaly.threshold":       round2(cal.Threshold),
		"anomaly.feature":         feature,
		"anomaly.category":        f.Cat.String(),
		"anomaly.explanation":     expl,
		"anomaly.usual":           usual,
		"anomaly.profile":         event.Escape([]byte(pr.Key)),
		"anomaly.profile_state":   st.String(),
		"anomaly.mode":            mode,
		"anomaly.detecting_since": since,
		"anomaly.calibration":     cal.Method,
		"anomaly.count":           uint64(1),
		"container.id":            event.Escape([]byte(ctrID)),
		"container.name":          nullable(ctrName),
		"container.image":         nullable(image),
		"k8s.ns.name":             nullable(ns),
		"k8s.pod.name":            nullable(pod),
		"proc.cmdline":            cmdline,
		"proc.exe":                exe,
		"proc.name":               pname,
		"proc.pid":                pid,
		"user.uid":                uid,
		"evt.type":                e.Type(),
		"evt.num":                 e.Num,
	}
	if f.Cat == profiler.CatFile {
		fields["anomaly.stratum"] = cal.Stratum.String()
	}
	out := fmt.Sprintf("%s (feature=%s score=%.1f threshold=%.1f category=%s profile=%s state=%s container_id=%s image=%s proc_cmdline=%s; %s)",
		RuleNames[f.Cat], feature, s, cal.Threshold, f.Cat, event.Escape([]byte(pr.Key)), st,
		event.Escape([]byte(ctrID)), event.Escape([]byte(image)), cmdline, expl)
	tags := []string{"anomaly", "driftwatch", categoryTags[f.Cat]}
	sort.Strings(tags)
	return &event.Alert{
		Time:         time.Unix(0, e.Time).UTC(),
		Rule:         RuleNames[f.Cat],
		Priority:     prio,
		Source:       "syscall",
		Tags:         tags,
		Hostname:     e.Hostname,
		Output:       out,
		OutputFields: fields,
		Namespace:    ns,
		ContainerID:  ctrID,
		Pid:          pid,
		Score:        s,
		EventNum:     e.Num,
		EventTime:    e.Time,
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return event.Escape([]byte(s))
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
