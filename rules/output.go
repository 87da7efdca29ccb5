package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/driftwatch/driftwatch/event"
)

// outputFormat is a compiled Falco output string.
type outputFormat struct {
	parts []outPart
	// unavailable lists fields (unavailableFields) that render <NA>.
	unavailable []string
}

// containerInfoFormat replaces %container.info in outputs.
const containerInfoFormat = "container_id=%container.id container_name=%container.name"

type outPart struct {
	lit   string
	field *resolvedField
	key   string // output_fields key, e.g. proc.aname[2] or tolower(proc.name)
	width int
}

type outputError struct {
	msg   string
	field string
}

func (e *outputError) Error() string { return e.msg }

// parseOutput compiles "%field", "%field[arg]", "%tolower(field)" and
// "%Nfield" / "%<N>field" (value padded to N characters) placeholders.
func parseOutput(cp *compiler, s string) (*outputFormat, error) {
	// %container.info is Falco's placeholder for the configured container
	// details; without an extra format it stands for the id and name.
	s = strings.ReplaceAll(s, "%container.info", containerInfoFormat)
	of := &outputFormat{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			of.parts = append(of.parts, outPart{lit: lit.String()})
			lit.Reset()
		}
	}
	i := 0
	for i < len(s) {
		c := s[i]
		if c != '%' || i+1 >= len(s) {
			lit.WriteByte(c)
			i++
			continue
		}
		j := i + 1
		width := 0
		if s[j] == '<' {
			k := strings.IndexByte(s[j:], '>')
			if k > 1 {
				if n, err := strconv.Atoi(s[j+1 : j+k]); err == nil && n >= 0 && n < 4096 {
					width = n
					j += k + 1
				}
			}
		} else {
			k := j
			for k < len(s) && s[k] >= '0' && s[k] <= '9' && k-j < 4 {
				k++
			}
			if k > j && k < len(s) && isIdentStart(s[k]) {
				width, _ = strconv.Atoi(s[j:k])
				j = k
			}
		}
		if j >= len(s) || !isIdentStart(s[j]) {
			lit.WriteByte(c)
			i++
			continue
		}
		// Field expression: scan identifier chars, brackets and calls.
		k := j
		depth := 0
		for k < len(s) {
			ch := s[k]
			if isIdentChar(ch) || ch == '.' {
				k++
				continue
			}
			if ch == '[' {
				end := strings.IndexByte(s[k:], ']')
				if end < 0 {
					break
				}
				k += end + 1
				continue
			}
			if ch == '(' && transformers[s[j:k][strings.LastIndexAny(s[j:k], "(")+1:]] {
				depth++
				k++
				continue
			}
			if ch == ')' && depth > 0 {
				depth--
				k++
				continue
			}
			break
		}
		expr := strings.TrimRight(s[j:k], ".")
		k = j + len(expr)
		p := &parser{s: expr}
		fr, err := p.parseField()
		if err != nil || p.i != len(expr) {
			return nil, &outputError{msg: fmt.Sprintf("bad field expression %%%s", expr)}
		}
		rf, err := cp.resolveField(&fr)
		if ce, _ := err.(*CompileError); ce != nil && ce.Unavailable {
			of.unavailable = append(of.unavailable, ce.Field)
			rf, err = resolvedField{typ: tString, name: expr, get: func(*evalCtx, int) (value, bool) { return value{}, false }}, nil
		}
		if err != nil {
			ce, _ := err.(*CompileError)
			oe := &outputError{msg: err.Error()}
			if ce != nil {
				oe.msg, oe.field = ce.Msg, ce.Field
			}
			return nil, oe
		}
		flush()
		of.parts = append(of.parts, outPart{field: &rf, key: expr, width: width})
		i = k
	}
	flush()
	return of, nil
}

// render produces the output text and the typed output_fields map. Field
// values are the raw bytes, as Falco writes them: JSON encoding escapes
// them once (invalid UTF-8 becomes U+FFFD); text output escapes control
// characters (TextLine).
func (of *outputFormat) render(c *evalCtx) (string, map[string]any) {
	var b strings.Builder
	fields := make(map[string]any, len(of.parts))
	for _, p := range of.parts {
		if p.field == nil {
			b.WriteString(p.lit)
			continue
		}
		v, ok := p.field.get(c, 0)
		var text string
		var typed any
		if !ok {
			text = "<NA>"
		} else {
			switch p.field.typ {
			case tInt:
				text = strconv.FormatInt(v.n, 10)
				typed = v.n
			case tBool:
				text = strconv.FormatBool(v.n != 0)
				typed = v.n != 0
			case tIP:
				text = v.ip.String()
				typed = text
			default:
				// Values may view event buffers: copy before they escape Eval.
				text = strings.Clone(v.s)
				typed = text
			}
		}
		if p.width > 0 && len(text) < p.width {
			text += strings.Repeat(" ", p.width-len(text))
		}
		b.WriteString(text)
		fields[p.key] = typed
	}
	return b.String(), fields
}

// FormatText renders an alert as Falco's text line:
// "HH:MM:SS.nnnnnnnnn: Priority output" (time in UTC), the output passed
// through TextLine.
func FormatText(a *event.Alert) string {
	return a.Time.UTC().Format("15:04:05.000000000") + ": " + a.Priority.String() + " " + TextLine(a.Output)
}

// TextLine makes an alert's output safe for a text line or terminal:
// when it holds a control character (C0, DEL, C1) or invalid UTF-8 it is
// escaped with event.Escape (so one alert stays one line and carries no
// terminal escape sequence); otherwise it is returned unchanged.
func TextLine(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return event.EscapeString(s)
		}
	}
	return s
}

// jsonAlert fixes Falco's key order and time format.
type jsonAlert struct {
	Hostname     string         `json:"hostname"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
	Priority     string         `json:"priority"`
	Rule         string         `json:"rule"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Time         string         `json:"time"`
}

// FormatJSON renders an alert as Falco's JSON alert (one line, no newline):
// time is RFC 3339 UTC with nanoseconds, priority the long name, tags sorted.
func FormatJSON(a *event.Alert) ([]byte, error) {
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	fields := a.OutputFields
	if fields == nil {
		fields = map[string]any{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // JSON escaping only, as Falco writes alerts
	err := enc.Encode(jsonAlert{
		Hostname:     a.Hostname,
		Output:       a.Output,
		OutputFields: fields,
		Priority:     a.Priority.String(),
		Rule:         a.Rule,
		Source:       a.Source,
		Tags:         tags,
		Time:         a.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"),
	})
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), err
}
