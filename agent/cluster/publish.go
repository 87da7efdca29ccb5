package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/driftwatch/driftwatch/profiler"
)

// Meta keys in the local store.
const (
	metaEpoch = "cluster.epoch"
	// metaPublished is "1" once this store's slot was written: a slot that
	// is then missing was retired by the merger.
	metaPublished = "cluster.published"
)

// pubEntry is what the slot holds for one profile: the entry and the
// figures that decide whether a newer local state is worth a write.
type pubEntry struct {
	entry  NodeImage
	counts map[string]uint64 // category + "\x00" + feature → count
	states [profiler.NumCategories]string
}

// publisher owns this node's slot.
type publisher struct {
	s       *Syncer
	ready   bool // the slot was read and the epoch settled
	epoch   string
	gen     int64
	rv      string
	last    time.Time // last successful write
	pub     map[string]*pubEntry
	omitted map[string]*pubEntry
}

func newPubEntry(pj profiler.ProfileJSON, e NodeImage) *pubEntry {
	p := &pubEntry{entry: e, counts: map[string]uint64{}}
	for name, cj := range pj.Categories {
		c, _ := profiler.ParseCategory(name)
		p.states[c] = cj.State
		for _, f := range cj.Features {
			p.counts[name+"\x00"+f.Feature] = f.Count
		}
	}
	return p
}

// changed compares pj with what was published. material is a change worth
// a write now: a new feature, a count that crossed a power of two, or a
// state change. minor is any other count change: it waits for the refresh
// (Config.Refresh), so a node whose profiles only repeat what they know
// writes rarely and a node that learns nothing writes nothing.
func (p *pubEntry) changed(pj profiler.ProfileJSON) (material, minor bool) {
	n := 0
	for name, cj := range pj.Categories {
		c, _ := profiler.ParseCategory(name)
		if p.states[c] != cj.State {
			return true, true
		}
		for _, f := range cj.Features {
			old, ok := p.counts[name+"\x00"+f.Feature]
			if !ok || bits.Len64(old) != bits.Len64(f.Count) {
				return true, true
			}
			if old != f.Count {
				minor = true
			}
			n++
		}
	}
	if n != len(p.counts) {
		return true, true
	}
	return false, minor
}

func (pub *publisher) slotGet(ctx context.Context) (*NodeProfile, error) {
	u, err := pub.s.dyn.Resource(NodeProfileGVR).Get(ctx, pub.s.cfg.Node, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return nodeProfileFrom(u)
}

// init reads the slot and settles the epoch. A slot written by another
// store (this node's disk was replaced) is adopted: its profiles are
// imported into the local store, checkpointed together with the epoch, so
// what the cluster acknowledged from this node is never lost nor counted
// twice. A slot missing although this store published before was retired
// (the node had left): the store starts a new epoch whose contribution
// excludes what was retired (its profiles are reset; the cluster profile
// keeps them).
func (pub *publisher) init(ctx context.Context) error {
	s := pub.s
	np, err := pub.slotGet(ctx)
	local := s.local.Meta(metaEpoch)
	switch {
	case apierrors.IsNotFound(err):
		if local != "" && s.local.Meta(metaPublished) == "1" {
			s.log.Warn("this node's profile slot was retired (the node had left the cluster): its profiles are in the cluster profiles; starting a new contribution")
			for _, k := range s.local.Keys() {
				s.local.Reset(k)
			}
			local = ""
		}
		if local == "" {
			local = randHex(8)
			s.local.SetMeta(metaEpoch, local)
			s.local.SetMeta(metaPublished, "0")
			if err := s.local.Checkpoint(); err != nil {
				return fmt.Errorf("checkpoint before first publish: %w", err)
			}
		}
		pub.epoch, pub.gen, pub.rv, pub.pub = local, 0, "", map[string]*pubEntry{}
	case err != nil:
		s.count(func(st *Stats) { st.Errors++ })
		return fmt.Errorf("read NodeProfile %s: %w", s.cfg.Node, err)
	default:
		entries := map[string]*pubEntry{}
		var adopt []profiler.ProfileJSON
		for i, im := range np.Spec.Images {
			pj, err := decodeJSON(im.Data)
			if err != nil {
				return fmt.Errorf("NodeProfile %s images[%d] (%q): %w", s.cfg.Node, i, im.Key, err)
			}
			entries[im.Key] = newPubEntry(pj, im)
			adopt = append(adopt, pj)
		}
		if np.Spec.Epoch != local {
			s.log.Warn("this node's profile slot came from another store: importing it into the local store",
				"slot_epoch", np.Spec.Epoch, "local_epoch", local, "profiles", len(adopt))
			var buf bytes.Buffer
			if err := json.NewEncoder(&buf).Encode(profiler.Export{Format: profiler.ExportFormat, Profiles: adopt}); err != nil {
				return fmt.Errorf("adopt slot: %w", err)
			}
			if _, err := s.local.ImportJSON(&buf); err != nil {
				return fmt.Errorf("adopt slot: %w", err)
			}
			s.local.SetMeta(metaEpoch, np.Spec.Epoch)
			s.local.SetMeta(metaPublished, "1")
			if err := s.local.Checkpoint(); err != nil {
				return fmt.Errorf("adopt slot: checkpoint: %w", err)
			}
		}
		pub.epoch, pub.gen, pub.rv, pub.pub = np.Spec.Epoch, np.Spec.Generation, np.ResourceVersion, entries
	}
	pub.omitted = map[string]*pubEntry{}
	pub.ready = true
	return nil
}

// PublishOnce writes this node's slot if a local profile changed in a way
// worth a write (see pubEntry.changed) and reports whether it wrote.
func (s *Syncer) PublishOnce(ctx context.Context) (bool, error) { return s.pub.once(ctx) }

func (pub *publisher) once(ctx context.Context) (bool, error) {
	s := pub.s
	if !pub.ready {
		if err := pub.init(ctx); err != nil {
			return false, err
		}
	}
	snap := s.local.Snapshot()
	s.log.Debug("publish round", "profiles", len(snap))
	next := map[string]*pubEntry{}
	dirty := false
	refresh := time.Since(pub.last) >= s.cfg.Refresh
	for _, pj := range snap {
		old := pub.pub[pj.Key]
		if old == nil {
			old = pub.omitted[pj.Key]
		}
		if old != nil {
			material, minor := old.changed(pj)
			if !material && (!minor || !refresh) {
				next[pj.Key] = old
				continue
			}
		}
		data, err := encodeBlob(pj)
		if err != nil {
			return false, err
		}
		var nf, obs int64
		for _, cj := range pj.Categories {
			nf += int64(len(cj.Features))
			for _, f := range cj.Features {
				obs += int64(f.Count)
			}
		}
		next[pj.Key] = newPubEntry(pj, NodeImage{Key: pj.Key, Image: pj.Image, Features: nf, Observations: obs, Hash: digest(data), Data: data})
		dirty = true
	}
	if len(next) != len(pub.pub)+len(pub.omitted) {
		dirty = true // a profile was reset locally
	}
	if !dirty {
		return false, nil
	}
	// The local store must hold at least what the slot will claim before
	// the slot claims it: a crash after the write then never publishes
	// smaller counts.
	if err := s.local.Checkpoint(); err != nil {
		return false, fmt.Errorf("checkpoint before publish: %w", err)
	}
	np := &NodeProfile{Spec: NodeProfileSpec{Node: s.cfg.Node, Epoch: pub.epoch, Generation: pub.gen + 1}}
	np.Name = s.cfg.Node
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		np.Spec.Images = append(np.Spec.Images, next[k].entry)
	}
	omitted, size, err := fitSlot(np)
	if err != nil {
		return false, err
	}
	if len(omitted) > 0 {
		s.log.Warn("profiles too large for this node's slot stay local", "profiles", omitted, "limit_bytes", MaxObjectBytes)
	}
	if err := pub.write(ctx, np); err != nil {
		return false, err
	}
	s.log.Debug("NodeProfile written", "generation", np.Spec.Generation, "profiles", len(np.Spec.Images), "bytes", size)
	pub.gen = np.Spec.Generation
	pub.last = time.Now()
	pub.pub, pub.omitted = map[string]*pubEntry{}, map[string]*pubEntry{}
	for k, e := range next {
		pub.pub[k] = e
	}
	for _, k := range omitted {
		pub.omitted[k] = pub.pub[k]
		delete(pub.pub, k)
	}
	if s.local.Meta(metaPublished) != "1" {
		s.local.SetMeta(metaPublished, "1")
	}
	s.count(func(st *Stats) { st.SlotWrites++; st.SlotBytes = uint64(size); st.Omitted = uint64(len(omitted)) })
	return true, nil
}

// fitSlot drops the largest profiles from np until its JSON fits
// MaxObjectBytes, returning their keys and the final size.
func fitSlot(np *NodeProfile) ([]string, int, error) {
	var omitted []string
	for {
		u, err := toUnstructured(np, "NodeProfile")
		if err != nil {
			return nil, 0, err
		}
		b, err := u.MarshalJSON()
		if err != nil {
			return nil, 0, fmt.Errorf("NodeProfile: %w", err)
		}
		if len(b) <= MaxObjectBytes || len(np.Spec.Images) == 0 {
			np.Spec.Omitted = omitted
			return omitted, len(b), nil
		}
		big := 0
		for i, im := range np.Spec.Images {
			if len(im.Data) > len(np.Spec.Images[big].Data) {
				big = i
			}
		}
		omitted = append(omitted, np.Spec.Images[big].Key)
		np.Spec.Images = append(np.Spec.Images[:big:big], np.Spec.Images[big+1:]...)
		sort.Strings(omitted)
		np.Spec.Omitted = omitted
	}
}

// write creates or updates the slot, guarded by its resourceVersion; a
// 409 re-reads the slot and retries (the slot holds absolute state, so
// writing it again is harmless).
func (pub *publisher) write(ctx context.Context, np *NodeProfile) error {
	s := pub.s
	res := s.dyn.Resource(NodeProfileGVR)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		np.ResourceVersion = pub.rv
		u, cerr := toUnstructured(np, "NodeProfile")
		if cerr != nil {
			return cerr
		}
		var out interface{ GetResourceVersion() string }
		if pub.rv == "" {
			out, err = res.Create(ctx, u, metav1.CreateOptions{FieldManager: "driftwatch-agent"})
		} else {
			out, err = res.Update(ctx, u, metav1.UpdateOptions{FieldManager: "driftwatch-agent"})
		}
		if err == nil {
			pub.rv = out.GetResourceVersion()
			return nil
		}
		switch {
		case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
			s.count(func(st *Stats) { st.Conflicts++ })
			cur, gerr := pub.slotGet(ctx)
			if gerr != nil {
				s.count(func(st *Stats) { st.Errors++ })
				return fmt.Errorf("write NodeProfile %s: %w (re-read: %v)", s.cfg.Node, err, gerr)
			}
			if cur.Spec.Epoch != pub.epoch {
				s.log.Warn("another store wrote this node's slot (two agents with one node name?)", "slot_epoch", cur.Spec.Epoch, "epoch", pub.epoch)
			}
			if cur.Spec.Generation >= np.Spec.Generation {
				np.Spec.Generation = cur.Spec.Generation + 1
			}
			pub.rv = cur.ResourceVersion
		case apierrors.IsNotFound(err):
			if pub.rv != "" {
				// The slot existed and is gone: the merger retired it (this
				// node's Node object was missing for RetireGrace) and its
				// counts are in the retired totals. Writing it again under
				// the same epoch would either be ignored (while the merger
				// remembers the slot) or count twice (once it forgot):
				// start a new epoch as init does after a restart.
				s.local.SetMeta(metaPublished, "1")
				pub.ready = false
				s.count(func(st *Stats) { st.Errors++ })
				return fmt.Errorf("write NodeProfile %s: slot retired by the merger; starting a new contribution next period", s.cfg.Node)
			}
		default:
			s.count(func(st *Stats) { st.Errors++ })
			return fmt.Errorf("write NodeProfile %s: %w", s.cfg.Node, err)
		}
	}
	s.count(func(st *Stats) { st.Errors++ })
	return fmt.Errorf("write NodeProfile %s: %w (gave up after 5 attempts)", s.cfg.Node, err)
}

// decodeJSON decodes an Encoding blob to its JSON form.
func decodeJSON(s string) (profiler.ProfileJSON, error) {
	var pj profiler.ProfileJSON
	z, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return pj, fmt.Errorf("profile blob: base64: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return pj, fmt.Errorf("profile blob: gzip: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxBlobBytes+1))
	if err != nil {
		return pj, fmt.Errorf("profile blob: gzip: %w", err)
	}
	if len(raw) > maxBlobBytes {
		return pj, fmt.Errorf("profile blob: more than %d bytes decompressed", maxBlobBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj); err != nil {
		return pj, fmt.Errorf("profile blob: %w", err)
	}
	return pj, nil
}
