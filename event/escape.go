package event

import (
	"strconv"
	"unicode/utf8"
)

// Escape renders untrusted bytes (paths, argv, comm from inside containers)
// safe for a log line or terminal: printable UTF-8 is kept, backslash is
// doubled, and control characters, DEL and invalid UTF-8 bytes become
// \n, \t, \r or \xNN escapes. The result never contains a newline or an
// escape sequence a terminal would act on.
func Escape(b []byte) string {
	clean := true
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x20 || c == 0x7f || c == '\\' {
			clean = false
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\\':
				out = append(out, '\\', '\\')
			case c == '\n':
				out = append(out, '\\', 'n')
			case c == '\t':
				out = append(out, '\\', 't')
			case c == '\r':
				out = append(out, '\\', 'r')
			case c < 0x20 || c == 0x7f:
				out = appendHex(out, c)
			default:
				out = append(out, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
			for j := 0; j < n; j++ {
				out = appendHex(out, b[i+j])
			}
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return string(out)
}

// EscapeString is Escape for a string.
func EscapeString(s string) string { return Escape([]byte(s)) }

func appendHex(out []byte, c byte) []byte {
	out = append(out, '\\', 'x')
	if c < 0x10 {
		out = append(out, '0')
	}
	return strconv.AppendUint(out, uint64(c), 16)
}
