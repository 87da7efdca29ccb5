package rules

import (
	"fmt"
	"unsafe"
)

// globMatch matches s against a shell glob as Falco's glob operator does
// (fnmatch without FNM_PATHNAME): '*' matches any sequence including '/',
// '?' one byte, '[...]' a class ('!' or '^' negates, ranges allowed), and
// '\' escapes. fold compares ASCII case-insensitively (iglob).
func globMatch(pattern, s string, fold bool) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			c := pattern[px]
			switch c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				if sx < len(s) {
					if ok, width := matchClass(pattern[px:], s[sx], fold); width > 0 && ok {
						px += width
						sx++
						continue
					}
				}
			default:
				if c == '\\' && px+1 < len(pattern) {
					c = pattern[px+1]
					if sx < len(s) && eqFold(c, s[sx], fold) {
						px += 2
						sx++
						continue
					}
					break
				}
				if sx < len(s) && eqFold(c, s[sx], fold) {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

func eqFold(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	if a >= 'A' && a <= 'Z' {
		a += 32
	}
	if b >= 'A' && b <= 'Z' {
		b += 32
	}
	return a == b
}

// matchClass matches c against the class at the start of p; width is the
// class's length in p (0 when p holds no complete class).
func matchClass(p string, c byte, fold bool) (bool, int) {
	i := 1
	neg := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		neg = true
		i++
	}
	match := false
	first := true
	for i < len(p) && (p[i] != ']' || first) {
		first = false
		lo := p[i]
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			i += 3
		} else {
			i++
		}
		if lo <= c && c <= hi || fold && (eqFold(lo, c, true) || (lo <= c|0x20 && c|0x20 <= hi)) {
			match = true
		}
	}
	if i >= len(p) {
		return false, 0
	}
	return match != neg, i + 1
}

// checkGlob rejects patterns with an unterminated class.
func checkGlob(p string) error {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '[':
			if _, w := matchClass(p[i:], 0, false); w == 0 {
				return fmt.Errorf("glob %q: unterminated '['", p)
			}
		}
	}
	return nil
}

func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
