package profiler

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Binary record format of one profile (little-endian varints), version 1:
//
//	u8 version | str key, image, repo, tag, digest, inherited | vi created, updated | u8 flags
//	per category (NumCategories times):
//	  u8 state | vi learnStart, belowSince, stableAt, postStart, postEnd | uv postN
//	  windowBuckets × (vi start | uv obs | uv new)
//	  uv nCollapsed × str dir
//	  uv nFeatures × (str text | uv nLevels × uv level | uv count | vi first, last | u8 warm)
//
// Node counts are not stored: they are rebuilt from the features on load.
const recordVersion = 1

func putStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeProfile(b []byte, pr *Profile) []byte {
	b = append(b, recordVersion)
	for _, s := range []string{pr.Key, pr.Image, pr.Repo, pr.Tag, pr.Digest, pr.InheritedFrom} {
		b = putStr(b, s)
	}
	b = binary.AppendVarint(b, pr.Created)
	b = binary.AppendVarint(b, pr.Updated)
	var flags byte
	if pr.TooLarge {
		flags |= 1
	}
	b = append(b, flags)
	for _, cd := range pr.cats {
		b = append(b, byte(cd.state))
		for _, v := range []int64{cd.learnStart, cd.belowSince, cd.stableAt, cd.postStart, cd.postEnd} {
			b = binary.AppendVarint(b, v)
		}
		b = binary.AppendUvarint(b, cd.postN)
		for _, w := range cd.window {
			b = binary.AppendVarint(b, w.Start)
			b = binary.AppendUvarint(b, w.Obs)
			b = binary.AppendUvarint(b, w.New)
		}
		b = binary.AppendUvarint(b, uint64(len(cd.collapsed)))
		for _, d := range cd.collapsed {
			b = putStr(b, d)
		}
		b = binary.AppendUvarint(b, uint64(len(cd.feats)))
		for _, f := range cd.feats {
			b = putStr(b, f.Text)
			b = binary.AppendUvarint(b, uint64(len(f.Levels)))
			for _, l := range f.Levels {
				b = binary.AppendUvarint(b, uint64(l))
			}
			b = binary.AppendUvarint(b, f.Count)
			b = binary.AppendVarint(b, f.First)
			b = binary.AppendVarint(b, f.Last)
			w := byte(0)
			if f.Warm {
				w = 1
			}
			b = append(b, w)
		}
	}
	return b
}

var errShort = errors.New("truncated")

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("field %s at byte %d: %w", field, d.off, err)
	}
}

func (d *decoder) u8(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(field, errShort)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uv(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, errShort)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) vi(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail(field, errShort)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) str(field string) string {
	n := d.uv(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(field, errShort)
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

// count reads a collection length, bounded by the bytes left (each element
// takes at least one byte).
func (d *decoder) count(field string) int {
	n := d.uv(field)
	if d.err == nil && n > uint64(len(d.b)-d.off) {
		d.fail(field, fmt.Errorf("count %d exceeds the %d bytes left", n, len(d.b)-d.off))
		return 0
	}
	return int(n)
}

func decodeProfile(b []byte) (*Profile, error) {
	d := &decoder{b: b}
	if v := d.u8("version"); d.err == nil && v != recordVersion {
		return nil, fmt.Errorf("profile record version %d not supported (want %d)", v, recordVersion)
	}
	pr := newProfile(d.str("key"))
	pr.Image, pr.Repo, pr.Tag, pr.Digest, pr.InheritedFrom = d.str("image"), d.str("repo"), d.str("tag"), d.str("digest"), d.str("inherited_from")
	pr.Created, pr.Updated = d.vi("created"), d.vi("updated")
	pr.TooLarge = d.u8("flags")&1 != 0
	for c := range pr.cats {
		cd := pr.cats[c]
		name := Category(c).String()
		st := d.u8(name + ".state")
		if d.err == nil && int(st) >= len(stateNames) {
			d.fail(name+".state", fmt.Errorf("unknown state %d", st))
		}
		cd.state = State(st)
		cd.learnStart, cd.belowSince, cd.stableAt = d.vi(name+".learn_start"), d.vi(name+".below_since"), d.vi(name+".stable_at")
		cd.postStart, cd.postEnd = d.vi(name+".post_start"), d.vi(name+".post_end")
		cd.postN = d.uv(name + ".post_n")
		for i := range cd.window {
			cd.window[i] = bucket{Start: d.vi(name + ".window"), Obs: d.uv(name + ".window"), New: d.uv(name + ".window")}
		}
		if n := d.count(name + ".collapsed"); n > 0 {
			cd.collapsed = make(map[uint64]string, n)
			for i := 0; i < n && d.err == nil; i++ {
				s := d.str(name + ".collapsed")
				cd.collapsed[hashString(RootHash, s)] = s
			}
		}
		n := d.count(name + ".features")
		for i := 0; i < n && d.err == nil; i++ {
			text := d.str(name + ".feature.text")
			nl := d.count(name + ".feature.levels")
			if d.err == nil && nl > MaxLevels {
				d.fail(name+".feature.levels", fmt.Errorf("%d levels exceed %d", nl, MaxLevels))
			}
			levels := make([]uint16, 0, nl)
			for j := 0; j < nl && d.err == nil; j++ {
				l := d.uv(name + ".feature.levels")
				if d.err == nil && (l > uint64(len(text)) || (j > 0 && uint16(l) < levels[j-1])) {
					d.fail(name+".feature.levels", fmt.Errorf("level %d out of order or beyond text length %d", l, len(text)))
				}
				levels = append(levels, uint16(l))
			}
			count := d.uv(name + ".feature.count")
			first, last := d.vi(name+".feature.first"), d.vi(name+".feature.last")
			warm := d.u8(name+".feature.warm") == 1
			if d.err == nil && (len(levels) == 0 || levels[0] != 0 || count == 0) {
				d.fail(name+".feature", fmt.Errorf("feature %q: empty chain or zero count", text))
			}
			if d.err != nil {
				break
			}
			cd.add(text, levels, hashString(RootHash, text), count, first, last, warm)
		}
	}
	if d.err == nil && d.off != len(b) {
		d.fail("end", fmt.Errorf("%d trailing bytes", len(b)-d.off))
	}
	if d.err != nil {
		return nil, d.err
	}
	pr.recount()
	pr.dirty = false
	return pr, nil
}
