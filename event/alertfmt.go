package event

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
)

// The one text and the one JSON rendering of an alert: every output
// (stdout, files, HTTP) and every command writes alerts through these.

// AlertTimeFormat is the time layout of text alert lines: ISO 8601 in UTC
// with nanoseconds (Falco's time_format_iso_8601).
const AlertTimeFormat = "2006-01-02T15:04:05.000000000+0000"

// AppendAlertText appends Falco's text line for a (no newline):
// "<time>: <Priority> <output>". Rule outputs carry raw bytes, as Falco's
// JSON does; here control characters (C0, DEL, C1) and invalid UTF-8 are
// escaped as Escape does, so one alert is one line and carries no
// terminal escape sequence. Clean outputs are written unchanged.
func AppendAlertText(b []byte, a *Alert) []byte {
	b = a.Time.UTC().AppendFormat(b, AlertTimeFormat)
	b = append(b, ": "...)
	b = append(b, a.Priority.String()...)
	b = append(b, ' ')
	if needsEscape(a.Output) {
		return AppendEscape(b, a.Output, false)
	}
	return append(b, a.Output...)
}

// AlertText returns AppendAlertText(nil, a) as a string.
func AlertText(a *Alert) string { return string(AppendAlertText(nil, a)) }

// needsEscape reports whether s holds a control character (C0, DEL, C1) or
// invalid UTF-8. A clean output keeps its backslashes undoubled.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, n := decodeRune(s, i)
		if n == 0 || (r >= 0x80 && r < 0xa0) || r == 0xfffd {
			return true
		}
		i += n
	}
	return false
}

// AppendAlertJSON appends Falco's JSON alert for a (one line, no newline):
// keys in Falco's (alphabetical) order, time RFC 3339 UTC with nine
// fractional digits, priority the long name, tags sorted ([] when none),
// output_fields always an object, source "syscall" when unset. Strings are
// escaped as JSON only (no HTML escaping: "<NA>" stays as is); invalid
// UTF-8 becomes U+FFFD.
func AppendAlertJSON(b []byte, a *Alert) ([]byte, error) {
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	} else if !slices.IsSorted(tags) {
		tags = slices.Clone(tags)
		slices.Sort(tags)
	}
	fields := a.OutputFields
	if fields == nil {
		fields = map[string]any{}
	}
	src := a.Source
	if src == "" {
		src = "syscall"
	}
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(alertJSON{
		Hostname: a.Hostname, Output: a.Output, OutputFields: fields, Priority: a.Priority,
		Rule: a.Rule, Source: src, Tags: tags, Time: a.Time.UTC().Format(FalcoTimeFormat),
	})
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), err
}

// SourceInternal is the source of driftwatch's alerts about itself.
const SourceInternal = "internal"

// InternalTag tags every internal alert.
const InternalTag = "driftwatch_internal"

// InternalAlert builds an alert about driftwatch itself (source
// "internal", tag driftwatch_internal, the host's container id): a failed
// rules reload, an output that drops or fails. msg may hold untrusted
// text (file names, error strings): it is escaped here, as a whole.
func InternalAlert(rule string, pri Priority, msg string, fields map[string]any, hostname string) *Alert {
	if fields == nil {
		fields = map[string]any{}
	}
	return &Alert{
		Time:         time.Now().UTC(),
		Rule:         rule,
		Priority:     pri,
		Source:       SourceInternal,
		Tags:         []string{InternalTag},
		Hostname:     hostname,
		Output:       EscapeString(msg),
		OutputFields: fields,
		ContainerID:  HostContainerID,
	}
}
