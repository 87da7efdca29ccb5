package event

import "strconv"

// The one escaper for untrusted strings (paths, argv, comm, error text
// from inside containers): Escape for a log line or terminal, and
// AppendEscape, which event/format and the alert formatters use for text
// and, with json set, for JSON string bodies.

// Escape renders untrusted bytes safe for a log line or terminal:
// printable UTF-8 is kept, backslash is doubled, and control characters,
// DEL, C1 controls, invalid UTF-8 bytes and a literal U+FFFD become \n,
// \t, \r or \xNN escapes. The result never contains a newline or an
// escape sequence a terminal would act on.
func Escape(b []byte) string {
	if clean(b) {
		return string(b)
	}
	return string(AppendEscape(make([]byte, 0, len(b)+8), b, false))
}

// EscapeString is Escape for a string.
func EscapeString(s string) string {
	if clean(s) {
		return s
	}
	return string(AppendEscape(make([]byte, 0, len(s)+8), s, false))
}

// clean reports whether AppendEscape would copy s unchanged.
func clean[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c < 0x20 || c == 0x7f || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, n := decodeRune(s, i)
		if n == 0 || (r >= 0x80 && r < 0xa0) || r == 0xfffd {
			return false
		}
		i += n
	}
	return true
}

// AppendEscape appends s escaped as Escape does. With json set, the result
// is additionally a valid JSON string body: '"' and the backslashes of the
// escapes are themselves escaped, so a JSON decoder yields exactly the
// Escape text. Never produces U+FFFD for invalid input.
func AppendEscape[T ~string | ~[]byte](b []byte, s T, json bool) []byte {
	bs := "\\"
	if json {
		bs = "\\\\"
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			switch {
			case c == '\\':
				b = append(b, bs...)
				b = append(b, bs...)
			case c == '"' && json:
				b = append(b, '\\', '"')
			case c == '\n':
				b = append(b, bs...)
				b = append(b, 'n')
			case c == '\t':
				b = append(b, bs...)
				b = append(b, 't')
			case c == '\r':
				b = append(b, bs...)
				b = append(b, 'r')
			case c < 0x20 || c == 0x7f:
				b = appendHexEsc(b, c, bs)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := decodeRune(s, i)
		if n == 0 || (r >= 0x80 && r < 0xa0) || r == 0xfffd {
			if n == 0 {
				n = 1
			}
			for j := 0; j < n; j++ {
				b = appendHexEsc(b, s[i+j], bs)
			}
		} else {
			for j := 0; j < n; j++ {
				b = append(b, s[i+j])
			}
		}
		i += n
	}
	return b
}

func appendHexEsc(b []byte, c byte, bs string) []byte {
	b = append(b, bs...)
	b = append(b, 'x')
	if c < 0x10 {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, uint64(c), 16)
}

// decodeRune decodes the UTF-8 sequence at s[i] (s[i] >= 0x80). It returns
// n == 0 for invalid input (bad lead or continuation byte, overlong form,
// surrogate, above U+10FFFF, truncated).
func decodeRune[T ~string | ~[]byte](s T, i int) (rune, int) {
	c := s[i]
	var n int
	var r rune
	var lo rune
	switch {
	case c&0xe0 == 0xc0:
		n, r, lo = 2, rune(c&0x1f), 0x80
	case c&0xf0 == 0xe0:
		n, r, lo = 3, rune(c&0x0f), 0x800
	case c&0xf8 == 0xf0:
		n, r, lo = 4, rune(c&0x07), 0x10000
	default:
		return 0, 0
	}
	if i+n > len(s) {
		return 0, 0
	}
	for j := 1; j < n; j++ {
		cc := s[i+j]
		if cc&0xc0 != 0x80 {
			return 0, 0
		}
		r = r<<6 | rune(cc&0x3f)
	}
	if r < lo || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff) {
		return 0, 0
	}
	return r, n
}
