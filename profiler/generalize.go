package profiler

import (
	"net/netip"
	"strconv"
	"strings"
)

// GenConfig controls generalisation. The zero value is completed by
// defaults (see DefaultGenConfig).
type GenConfig struct {
	// CollapseThreshold is the number of distinct children a directory may
	// have before it collapses to "<dir>/*" (default 50).
	CollapseThreshold int
	// CollapseOverrides sets the threshold per directory prefix ("/var/log/");
	// the longest matching prefix wins; a value ≤ 0 means "never collapse".
	CollapseOverrides map[string]int
	// EphemeralLow..EphemeralHigh is the port range collapsed to "eph"
	// (default 32768..65535, the Linux ip_local_port_range upper end).
	EphemeralLow, EphemeralHigh uint16
	// IPv4Prefix / IPv6Prefix group peers into CIDRs of that length
	// (0: exact addresses, the default).
	IPv4Prefix, IPv6Prefix int
	// NoTemplates turns off name templates mined per directory (see
	// AppendSkeleton): by default, once a directory has received two
	// different names of one template ("temp-123.rdb", "temp-982.rdb"),
	// every name of that template in it becomes the template
	// ("temp-<id>.rdb").
	NoTemplates bool
}

// DefaultGenConfig returns the documented defaults.
func DefaultGenConfig() GenConfig {
	return GenConfig{CollapseThreshold: 50, EphemeralLow: 32768, EphemeralHigh: 65535}
}

func (g *GenConfig) fill() {
	d := DefaultGenConfig()
	if g.CollapseThreshold == 0 {
		g.CollapseThreshold = d.CollapseThreshold
	}
	if g.EphemeralLow == 0 && g.EphemeralHigh == 0 {
		g.EphemeralLow, g.EphemeralHigh = d.EphemeralLow, d.EphemeralHigh
	}
}

// threshold returns the collapse threshold for a directory prefix ending
// in '/'; ≤ 0 means never.
func (g *GenConfig) threshold(dir string) int {
	best, bestLen := g.CollapseThreshold, -1
	for p, v := range g.CollapseOverrides {
		if len(p) > bestLen && strings.HasPrefix(dir, p) {
			best, bestLen = v, len(p)
		}
	}
	return best
}

// Placeholders written in place of generated-looking tokens.
const (
	tokNum  = "<n>"
	tokPid  = "<pid>"
	tokHex  = "<hex>"
	tokUUID = "<uuid>"
	tokRand = "<rand>"
	tokStar = "*"
	tokID   = "<id>"
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isSep(c byte) bool {
	return c == '.' || c == '-' || c == '_' || c == '@' || c == ':' || c == '+' || c == ','
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// hexID: at least 12 hex characters with at least one digit and one letter
// (container ids, hashes, inode-style names).
func hexID(b []byte) bool {
	if len(b) < 12 {
		return false
	}
	digit, letter := false, false
	for _, c := range b {
		switch {
		case isDigit(c):
			digit = true
		case isHex(c):
			letter = true
		default:
			return false
		}
	}
	return digit && letter
}

// isUUID matches 8-4-4-4-12 hex digits.
func isUUID(b []byte) bool {
	if len(b) < 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := b[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !isHex(c) {
			return false
		}
	}
	return true
}

// randomish: ≥ 8 characters of [A-Za-z0-9+/=] with upper, lower and digit
// (mktemp suffixes, base64 tokens, generated pod-name hashes are caught by
// hexID or this).
func randomish(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	up, lo, dg := false, false, false
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			lo = true
		case isDigit(c):
			dg = true
		case c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return up && lo && dg
}

// appendToken generalises one token (no separators inside).
func appendToken(dst, tok []byte) []byte {
	switch {
	case len(tok) >= 4 && allDigits(tok):
		return append(dst, tokNum...)
	case hexID(tok):
		return append(dst, tokHex...)
	case randomish(tok):
		return append(dst, tokRand...)
	}
	// Digit runs of four or more inside a token (timestamps, pids).
	for i := 0; i < len(tok); {
		if isDigit(tok[i]) {
			j := i
			for j < len(tok) && isDigit(tok[j]) {
				j++
			}
			if j-i >= 4 {
				dst = append(dst, tokNum...)
			} else {
				dst = append(dst, tok[i:j]...)
			}
			i = j
			continue
		}
		dst = append(dst, tok[i])
		i++
	}
	return dst
}

// AppendName generalises one path component or name: whole-number names
// become <n> (<pid> directly under /proc), UUIDs <uuid>, long hex ids <hex>,
// random-looking tokens <rand>, and digit runs of four or more <n>.
func AppendName(dst, comp []byte, underProc bool) []byte {
	if allDigits(comp) {
		if underProc {
			return append(dst, tokPid...)
		}
		return append(dst, tokNum...)
	}
	if hexID(comp) {
		return append(dst, tokHex...)
	}
	for i := 0; i < len(comp); {
		if isUUID(comp[i:]) {
			dst = append(dst, tokUUID...)
			i += 36
			continue
		}
		if isSep(comp[i]) {
			dst = append(dst, comp[i])
			i++
			continue
		}
		j := i
		for j < len(comp) && !isSep(comp[j]) {
			j++
		}
		if i > 0 && mkstempSuffix(comp[i:j]) {
			dst = append(dst, tokRand...)
		} else {
			dst = appendToken(dst, comp[i:j])
		}
		i = j
	}
	return dst
}

// mkstempSuffix: six letters and digits with both cases, the suffix
// mkstemp(3) draws for a "name.XXXXXX" template (Redis's CONFIG REWRITE
// writes redis.conf.KlrOMQ, then redis.conf.k26QP1, and renames it over
// redis.conf). Only after a separator: a name's first token ("Readme")
// is a word.
func mkstempSuffix(b []byte) bool {
	if len(b) != 6 {
		return false
	}
	up, lo := false, false
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			lo = true
		case isDigit(c):
		default:
			return false
		}
	}
	return up && lo
}

// slotPlaceholder reports the length of a placeholder at the start of b that
// stands for a generated number or id (<n>, <pid>, <hex>, <id>), 0 if none.
func slotPlaceholder(b []byte) int {
	for _, p := range [...]string{tokNum, tokPid, tokHex, tokID} {
		if len(b) >= len(p) && string(b[:len(p)]) == p {
			return len(p)
		}
	}
	return 0
}

// AppendSkeleton writes the name template of a generalised name component
// (the output of AppendName) and reports whether it has a variable slot.
// The component is split into tokens at separators (. - _ @ : + ,); a
// token made only of hex digits and number placeholders, with at least one
// decimal digit or placeholder, becomes one slot "<id>" (short hex keys
// "2e42fb", sequence numbers "2", pids "982", "<n>ac"); in any other token
// each digit run or number placeholder becomes "<id>" ("v2" → "v<id>").
// <rand>, <uuid> and literal words are kept. A component that is a single
// placeholder already (all digits, long hex ids) has no template.
func AppendSkeleton(dst, comp []byte) ([]byte, bool) { return appendSkeleton(dst, comp, false) }

// minLetterKey is the shortest hex token without a digit that fills a
// learned template's slot ("acebfe").
const minLetterKey = 4

// appendSkeleton is AppendSkeleton; with letterKeys a token of at least
// minLetterKey hex letters of one case and no digit is a slot too. Such a
// name is only matched against a template its directory learned from names
// with digits: a generated 6-hex key is all letters once in 150 draws
// (cache-acebfe beside cache-2e42fb), and a word made of a–f ("facade")
// is not a template of its own.
func appendSkeleton(dst, comp []byte, letterKeys bool) ([]byte, bool) {
	if n := slotPlaceholder(comp); n > 0 && n == len(comp) {
		return dst, false
	}
	slot := false
	for i := 0; i < len(comp); {
		if isSep(comp[i]) {
			dst = append(dst, comp[i])
			i++
			continue
		}
		j := i
		for j < len(comp) && !isSep(comp[j]) {
			j++
		}
		tok := comp[i:j]
		i = j
		hexy, num, lower, upper := true, false, false, false
		for k := 0; k < len(tok); {
			if n := slotPlaceholder(tok[k:]); n > 0 {
				num = true
				k += n
				continue
			}
			if !isHex(tok[k]) {
				hexy = false
				break
			}
			switch c := tok[k]; {
			case isDigit(c):
				num = true
			case c >= 'a':
				lower = true
			default:
				upper = true
			}
			k++
		}
		if hexy && (num || (letterKeys && len(tok) >= minLetterKey && lower != upper)) {
			dst = append(dst, tokID...)
			slot = true
			continue
		}
		for k := 0; k < len(tok); {
			if n := slotPlaceholder(tok[k:]); n > 0 {
				dst = append(dst, tokID...)
				slot = true
				k += n
				continue
			}
			if isDigit(tok[k]) {
				for k < len(tok) && isDigit(tok[k]) {
					k++
				}
				dst = append(dst, tokID...)
				slot = true
				continue
			}
			dst = append(dst, tok[k])
			k++
		}
	}
	return dst, slot
}

// cleanPath resolves "." and ".." and duplicate slashes of p (joined to cwd
// when relative and cwd is absolute) into dst, without allocating beyond
// dst's capacity. The result starts with '/' unless p was relative and no
// absolute cwd was known.
func cleanPath(dst, p, cwd []byte) []byte {
	dst = dst[:0]
	if len(p) > 0 && p[0] != '/' && len(cwd) > 0 && cwd[0] == '/' {
		dst = cleanInto(dst, cwd)
	}
	dst = cleanInto(dst, p)
	if len(dst) == 0 && len(p) > 0 && p[0] == '/' {
		dst = append(dst, '/')
	}
	return dst
}

func cleanInto(dst, p []byte) []byte {
	for i := 0; i < len(p); {
		for i < len(p) && p[i] == '/' {
			i++
		}
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		comp := p[i:j]
		i = j
		switch {
		case len(comp) == 0 || (len(comp) == 1 && comp[0] == '.'):
		case len(comp) == 2 && comp[0] == '.' && comp[1] == '.':
			k := len(dst) - 1
			for k >= 0 && dst[k] != '/' {
				k--
			}
			if k < 0 {
				k = 0
			}
			dst = dst[:k]
		default:
			dst = append(dst, '/')
			dst = append(dst, comp...)
		}
	}
	return dst
}

// AppendPort writes a port, collapsing the ephemeral range to "eph".
func (g *GenConfig) AppendPort(dst []byte, port uint16) []byte {
	if port >= g.EphemeralLow && port <= g.EphemeralHigh && g.EphemeralHigh != 0 {
		return append(dst, "eph"...)
	}
	return strconv.AppendUint(dst, uint64(port), 10)
}

// AppendAddr writes an address, grouped to a CIDR when configured.
func (g *GenConfig) AppendAddr(dst []byte, a netip.Addr) []byte {
	a = a.Unmap()
	bits := g.IPv4Prefix
	if a.Is6() {
		bits = g.IPv6Prefix
	}
	if bits > 0 && bits < a.BitLen() {
		if p, err := a.Prefix(bits); err == nil {
			return p.AppendTo(dst)
		}
	}
	return a.AppendTo(dst)
}

// GeneralizePath returns the generalised form of a path with no collapsed
// directories (token shapes only); a convenience for tools and tests.
func (g *GenConfig) GeneralizePath(p string) string {
	var f Feature
	var scratch []byte
	f.buf = g.appendPath(f.buf, &f, &scratch, []byte(p), nil, nil)
	return string(f.buf)
}

// appendPath writes the generalised path into dst, recording a chain level
// after every directory ("/usr/lib/") and after the full path. Components
// following a collapsed directory become "*".
func (g *GenConfig) appendPath(dst []byte, f *Feature, scratch *[]byte, p, cwd []byte, collapsed map[uint64]string) []byte {
	*scratch = cleanPath((*scratch)[:0], p, cwd)
	c := *scratch
	base := len(dst)
	h := f.hashAt(dst, base)
	if len(c) == 0 {
		dst = append(dst, '?')
		h = hashBytes(h, dst[base:])
		f.addLevel(len(dst), h)
		return dst
	}
	underProc := false
	for i := 0; i < len(c); {
		if c[i] == '/' {
			i++
		}
		j := i
		for j < len(c) && c[j] != '/' {
			j++
		}
		comp := c[i:j]
		i = j
		start := len(dst)
		dst = append(dst, '/')
		dirH := hashBytes(h, dst[start:])
		if _, ok := collapsed[dirH]; ok && collapsed != nil {
			dst = append(dst, tokStar...)
		} else {
			dst = AppendName(dst, comp, underProc)
			if len(collapsed) > 0 {
				// A name template the directory has learned.
				var buf [128]byte
				sk, ok := AppendSkeleton(buf[:0], dst[start+1:])
				if _, known := collapsed[hashBytes(dirH, sk)]; !ok || !known {
					// A key drawn without a digit fits a learned template.
					sk, ok = appendSkeleton(buf[:0], dst[start+1:], true)
					if _, known = collapsed[hashBytes(dirH, sk)]; !known {
						ok = false
					}
				}
				if ok {
					dst = append(dst[:start+1], sk...)
				}
			}
		}
		underProc = start == base && string(comp) == "proc"
		h = hashBytes(h, dst[start:])
		if i < len(c) {
			// A directory level: the prefix including its trailing slash.
			f.addLevel(len(dst)+1, hashBytes(h, slash))
		}
	}
	f.addLevel(len(dst), h)
	return dst
}

var slash = []byte{'/'}
