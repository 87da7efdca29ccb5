package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/driftwatch/driftwatch/profiler"
)

func metaNS(name, ns string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

// slotEntry is one decoded profile of one slot.
type slotEntry struct {
	hash string
	prof *profiler.Profile
}

// slotRef is a live slot's contribution to one key.
type slotRef struct {
	id    string // node/epoch
	entry *slotEntry
	image string
}

// merger runs while this agent holds the Lease.
type merger struct {
	s       *Syncer
	shards  cache.SharedIndexInformer
	nodes   cache.SharedIndexInformer // nil with NoRetire
	decoded map[string]*slotEntry     // node/epoch/key → entry
	retired map[string]*profiler.Profile
	done    map[string]string // key → input signature already reconciled
	// written is the object this merger last wrote per key and the
	// resourceVersion it replaced: the informer may still show the older one.
	written map[string]writtenObj
	// liveSlots are the node/epoch ids of the NodeProfiles seen this round.
	liveSlots map[string]bool
	// goneSince is when this merger first saw a RetiredSlots entry without
	// its NodeProfile. An entry gone for RetireGrace is dropped (compacted)
	// at the key's next write: by then no merger's view still holds the
	// slot, and a retired slot never comes back under its epoch (its agent
	// starts a new one).
	goneSince map[string]time.Time
	now       time.Time // of this round
}

type writtenObj struct {
	prevRV string
	obj    *ImageProfile
}

func newMerger(s *Syncer) *merger {
	return &merger{s: s, decoded: map[string]*slotEntry{}, retired: map[string]*profiler.Profile{}, done: map[string]string{},
		written: map[string]writtenObj{}, goneSince: map[string]time.Time{}}
}

func (m *merger) run(ctx context.Context) {
	fac := dynamicinformer.NewDynamicSharedInformerFactory(m.s.dyn, 0)
	m.shards = fac.ForResource(NodeProfileGVR).Informer()
	go m.shards.Run(ctx.Done())
	synced := []cache.InformerSynced{m.shards.HasSynced, m.s.imgInf.HasSynced}
	if !m.s.cfg.NoRetire {
		nf := informers.NewSharedInformerFactory(m.s.kube, 0)
		m.nodes = nf.Core().V1().Nodes().Informer()
		go m.nodes.Run(ctx.Done())
		synced = append(synced, m.nodes.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	t := time.NewTicker(m.s.cfg.MergeInterval)
	defer t.Stop()
	for {
		if err := m.round(ctx); err != nil && ctx.Err() == nil {
			m.s.log.Warn("profile merge round incomplete; retrying next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round reconciles every key with live slots, then retires departed nodes.
func (m *merger) round(ctx context.Context) error {
	byKey := map[string][]slotRef{}
	live := map[string]bool{}
	var firstErr error
	var slots []*NodeProfile
	for _, o := range m.shards.GetStore().List() {
		np, err := nodeProfileFrom(o)
		if err != nil {
			m.s.log.Warn("NodeProfile unreadable: skipped", "err", err)
			continue
		}
		slots = append(slots, np)
		id := np.Name + "/" + np.Spec.Epoch
		for i, im := range np.Spec.Images {
			dk := id + "/" + im.Key
			live[dk] = true
			e := m.decoded[dk]
			if e == nil || e.hash != im.Hash {
				pr, err := decodeBlob(im.Data)
				if err != nil {
					m.s.log.Warn("NodeProfile entry undecodable: skipped", "node", np.Name, "index", i, "key", im.Key, "err", err)
					continue
				}
				if pr.Key != im.Key {
					m.s.log.Warn("NodeProfile entry key mismatch: skipped", "node", np.Name, "key", im.Key, "profile_key", pr.Key)
					continue
				}
				e = &slotEntry{hash: im.Hash, prof: pr}
				m.decoded[dk] = e
			}
			byKey[im.Key] = append(byKey[im.Key], slotRef{id: id, entry: e, image: im.Image})
		}
	}
	for dk := range m.decoded {
		if !live[dk] {
			delete(m.decoded, dk)
		}
	}
	m.now = time.Now()
	m.liveSlots = map[string]bool{}
	for _, np := range slots {
		m.liveSlots[np.Name+"/"+np.Spec.Epoch] = true
	}
	compact := m.expiredTombstones()
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	for k := range compact {
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k) // only retired contributions left
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		refs := byKey[k]
		sort.Slice(refs, func(i, j int) bool { return refs[i].id < refs[j].id })
		if compact[k] {
			delete(m.done, k) // rewrite although the inputs did not change
		}
		if err := m.reconcile(ctx, k, refs, nil); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if m.nodes != nil {
		if err := m.retire(ctx, slots, byKey); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// expiredTombstones updates goneSince from the ImageProfiles' RetiredSlots
// and returns the keys listing a slot gone for at least RetireGrace.
func (m *merger) expiredTombstones() map[string]bool {
	keys := map[string]bool{}
	seen := map[string]bool{}
	for _, o := range m.s.imgInf.GetStore().List() {
		ip, err := imageFrom(o)
		if err != nil {
			continue
		}
		for _, id := range ip.Status.RetiredSlots {
			if m.liveSlots[id] {
				continue
			}
			seen[id] = true
			if _, ok := m.goneSince[id]; !ok {
				m.goneSince[id] = m.now
			}
			if m.expired(id) {
				keys[ip.Spec.Key] = true
			}
		}
	}
	for id := range m.goneSince {
		if !seen[id] && !m.liveSlots[id] {
			delete(m.goneSince, id)
		}
	}
	return keys
}

// expired reports whether the retired slot id may leave RetiredSlots: its
// NodeProfile has been absent from this merger's view for RetireGrace.
func (m *merger) expired(id string) bool {
	since, ok := m.goneSince[id]
	return ok && !m.liveSlots[id] && m.now.Sub(since) >= m.s.cfg.RetireGrace
}

func inputSig(refs []slotRef) string {
	parts := make([]string, 0, 2*len(refs))
	for _, r := range refs {
		parts = append(parts, r.id, r.entry.hash)
	}
	return digest(parts...)
}

// reconcile writes the ImageProfile of key if its merged content differs
// from what the object holds. fold, when set, is a slot to move into the
// retired total in the same write. Conflicts re-read and recompute.
func (m *merger) reconcile(ctx context.Context, key string, refs []slotRef, fold *slotRef) error {
	name := ObjectName(key)
	sig := inputSig(refs)
	var cur *ImageProfile
	if o, ok, _ := m.s.imgInf.GetStore().GetByKey(name); ok {
		if ip, err := imageFrom(o); err == nil {
			cur = ip
		}
	}
	if w, ok := m.written[key]; ok && ((cur == nil && w.prevRV == "") || (cur != nil && cur.ResourceVersion == w.prevRV)) {
		cur = w.obj
	}
	if fold == nil && cur != nil && m.done[key] == sig+"/"+cur.Status.Hash {
		return nil
	}
	res := m.s.dyn.Resource(ImageProfileGVR)
	for attempt := 0; attempt < 8; attempt++ {
		want, err := m.desired(key, name, cur, refs, fold)
		if err != nil {
			return err
		}
		if want == nil {
			return nil // nothing to fold: already retired
		}
		if cur != nil && cur.Status.Hash == want.Status.Hash && slices.Equal(cur.Status.RetiredSlots, want.Status.RetiredSlots) {
			m.done[key] = sig + "/" + cur.Status.Hash
			return nil
		}
		u, err := toUnstructured(want, "ImageProfile")
		if err != nil {
			return err
		}
		b, _ := u.MarshalJSON()
		var werr error
		var out *unstructured.Unstructured
		prevRV := ""
		if cur == nil {
			out, werr = res.Create(ctx, u, metav1.CreateOptions{FieldManager: "driftwatch-merger"})
		} else {
			prevRV = cur.ResourceVersion
			out, werr = res.Update(ctx, u, metav1.UpdateOptions{FieldManager: "driftwatch-merger"})
		}
		m.s.log.Debug("ImageProfile write", "name", name, "key", key, "create", cur == nil, "nodes", want.Status.Nodes, "observations", want.Status.Observations, "err", werr)
		if werr == nil {
			if ip, err := imageFrom(out); err == nil {
				m.written[key] = writtenObj{prevRV: prevRV, obj: ip}
			}
			m.done[key] = sig + "/" + want.Status.Hash
			m.s.count(func(st *Stats) {
				st.ImageWrites++
				st.MaxImageBytes = max(st.MaxImageBytes, uint64(len(b)))
			})
			return nil
		}
		if !apierrors.IsConflict(werr) && !apierrors.IsAlreadyExists(werr) {
			m.s.count(func(st *Stats) { st.Errors++ })
			return fmt.Errorf("write ImageProfile %s (%q): %w", name, key, werr)
		}
		m.s.count(func(st *Stats) { st.Conflicts++ })
		fresh, gerr := res.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			cur = nil
		case gerr != nil:
			m.s.count(func(st *Stats) { st.Errors++ })
			return fmt.Errorf("re-read ImageProfile %s: %w", name, gerr)
		default:
			if cur, err = imageFrom(fresh); err != nil {
				return err
			}
		}
	}
	m.s.count(func(st *Stats) { st.Errors++ })
	return fmt.Errorf("write ImageProfile %s (%q): gave up after conflicts", name, key)
}

// desired computes the ImageProfile of key from the current object (its
// retired total and retired slots) and the live slots. It returns nil when
// fold is already retired.
func (m *merger) desired(key, name string, cur *ImageProfile, refs []slotRef, fold *slotRef) (*ImageProfile, error) {
	var retired *profiler.Profile
	var retiredBlob string
	var retiredSlots []string
	var prev CategoryStates
	retiredNodes := int64(0)
	if cur != nil {
		prev = cur.Status.States
		for _, id := range cur.Status.RetiredSlots {
			if !m.expired(id) {
				retiredSlots = append(retiredSlots, id)
			}
		}
		retiredNodes = cur.Status.RetiredNodes
		if retiredBlob = cur.Status.Retired; retiredBlob != "" {
			h := digest(retiredBlob)
			retired = m.retired[h]
			if retired == nil {
				pr, err := decodeBlob(retiredBlob)
				if err != nil {
					return nil, fmt.Errorf("ImageProfile %s: retired: %w", name, err)
				}
				retired, m.retired[h] = pr, pr
			}
		}
	}
	if fold != nil {
		if slices.Contains(retiredSlots, fold.id) {
			return nil, nil
		}
		nr := profiler.NewDetachedProfile(key)
		if retired != nil {
			nr.Merge(retired, m.s.cfg.States.Gen)
		}
		nr.Merge(fold.entry.prof, m.s.cfg.States.Gen)
		blob, err := encodeBlob(nr.JSON())
		if err != nil {
			return nil, err
		}
		retired, retiredBlob = nr, blob
		retiredSlots = append(retiredSlots, fold.id)
		sort.Strings(retiredSlots)
		retiredNodes++
	}
	var live []*profiler.Profile
	image := ""
	for _, r := range refs {
		if slices.Contains(retiredSlots, r.id) {
			continue
		}
		live = append(live, r.entry.prof)
		if image == "" {
			image = r.image
		}
	}
	if image == "" && cur != nil {
		image = cur.Spec.Image
	}
	merged := mergeProfiles(key, retired, live, prev, *m.s.cfg.States)
	blob, err := encodeBlob(merged.JSON())
	if err != nil {
		return nil, err
	}
	states, summary := statesOf(merged)
	ip := &ImageProfile{Spec: ImageProfileSpec{Key: key, Image: image}}
	ip.Name = name
	ip.Labels = map[string]string{KeyLabel: keyHash(key), "app.kubernetes.io/name": "driftwatch"}
	if cur != nil {
		ip.ResourceVersion = cur.ResourceVersion
		ip.UID = cur.UID
	}
	ip.Status = ImageProfileStatus{
		State: summary, States: states, Features: int64(merged.NumFeatures()), Observations: int64(merged.Total()),
		Nodes: int64(len(live)), RetiredNodes: retiredNodes, Encoding: Encoding, Profile: blob,
		Retired: retiredBlob, RetiredSlots: retiredSlots, Bytes: int64(len(blob)), TooLarge: merged.TooLarge,
	}
	if merged.Updated > 0 {
		ip.Status.LastLearned = time.Unix(0, merged.Updated).UTC().Format(time.RFC3339)
	}
	ip.Status.Hash = digest(blob, retiredBlob, strings.Join(retiredSlots, ","), fmt.Sprint(len(live)))
	u, err := toUnstructured(ip, "ImageProfile")
	if err != nil {
		return nil, err
	}
	b, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("ImageProfile %s: %w", name, err)
	}
	if len(b) > MaxObjectBytes {
		// Too large to share: the object keeps the summary and the retired
		// total; agents score this key with their local profiles.
		ip.Status.TooLarge, ip.Status.State, ip.Status.Profile = true, "too_large", ""
		ip.Status.Hash = digest("too-large", retiredBlob, strings.Join(retiredSlots, ","), fmt.Sprint(len(live)), fmt.Sprint(merged.Total()))
		u, err = toUnstructured(ip, "ImageProfile")
		if err != nil {
			return nil, err
		}
		if b, err = u.MarshalJSON(); err == nil && len(b) > MaxObjectBytes {
			return nil, fmt.Errorf("ImageProfile %s (%q): retired total alone exceeds %d bytes", name, key, MaxObjectBytes)
		}
	}
	return ip, nil
}

// retire folds the slots of nodes that left (no Node object, slot older
// than RetireGrace) into each of their keys' retired totals, then deletes
// the slot, guarded by its UID and resourceVersion. A fold is recorded in
// the same write as the retired total (RetiredSlots), so a merger that
// dies between the folds and the delete never folds a slot twice.
func (m *merger) retire(ctx context.Context, slots []*NodeProfile, byKey map[string][]slotRef) error {
	for _, np := range slots {
		if _, ok, _ := m.nodes.GetStore().GetByKey(np.Name); ok {
			continue
		}
		if time.Since(np.CreationTimestamp.Time) < m.s.cfg.RetireGrace {
			continue
		}
		id := np.Name + "/" + np.Spec.Epoch
		m.s.log.Info("node left the cluster: folding its profile slot into the retired totals", "slot", id, "profiles", len(np.Spec.Images))
		for _, im := range np.Spec.Images {
			var fold *slotRef
			for i, r := range byKey[im.Key] {
				if r.id == id {
					fold = &byKey[im.Key][i]
				}
			}
			if fold == nil {
				return fmt.Errorf("retire %s: profile %q not decoded", id, im.Key)
			}
			if err := m.reconcile(ctx, im.Key, byKey[im.Key], fold); err != nil {
				return fmt.Errorf("retire %s: %w", id, err)
			}
		}
		uid, rv := types.UID(np.UID), np.ResourceVersion
		err := m.s.dyn.Resource(NodeProfileGVR).Delete(ctx, np.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) {
			m.s.count(func(st *Stats) { st.Errors++ })
			return fmt.Errorf("retire %s: delete NodeProfile: %w", id, err)
		}
		m.s.count(func(st *Stats) { st.Retired++ })
	}
	return nil
}
