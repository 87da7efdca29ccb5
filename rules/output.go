package rules

import (
	"fmt"
	"strconv"
	"strings"
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
// characters (event.AppendAlertText).
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
