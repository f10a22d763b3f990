package detect

import (
	"fmt"
	"strings"
)

// marker is a parsed PEP 508 environment marker. pyship does not evaluate markers about
// the interpreter or platform (pip does that, inside the image); it only decides the ones
// about what is being installed: extras and dependency groups (PEP 751).
type marker interface {
	String() string
}

type (
	markerAnd   struct{ l, r marker }
	markerOr    struct{ l, r marker }
	markerConst bool
	// markerCmp is "left op right"; each side is a variable name or a quoted string.
	markerCmp struct {
		left, op, right string
	}
)

// Bounds on a marker pyship parses: real ones are a few hundred bytes, with a few levels of
// parentheses. The parser recurses on parentheses.
const (
	maxMarkerLen   = 8 << 10
	maxMarkerDepth = 64
)

func (m markerAnd) String() string   { return markerString(m) }
func (m markerOr) String() string    { return markerString(m) }
func (m markerConst) String() string { return fmt.Sprint(bool(m)) }
func (m markerCmp) String() string   { return m.left + " " + m.op + " " + m.right }

// markerString writes a marker into one buffer: concatenating at every level of a long
// chain of "or" would cost the square of its length.
func markerString(m marker) string {
	var b strings.Builder
	writeMarker(&b, m, false)
	return b.String()
}

// writeMarker writes m, parenthesising an "or" inside an "and".
func writeMarker(b *strings.Builder, m marker, inAnd bool) {
	switch m := m.(type) {
	case markerAnd:
		writeMarker(b, m.l, true)
		b.WriteString(" and ")
		writeMarker(b, m.r, true)
	case markerOr:
		if inAnd {
			b.WriteString("(")
		}
		writeMarker(b, m.l, false)
		b.WriteString(" or ")
		writeMarker(b, m.r, false)
		if inAnd {
			b.WriteString(")")
		}
	default:
		b.WriteString(m.String())
	}
}

// parseMarker parses a marker expression.
func parseMarker(s string) (marker, error) {
	if len(s) > maxMarkerLen {
		return nil, fmt.Errorf("marker %s is longer than %d KiB", excerpt(s), maxMarkerLen>>10)
	}
	p := &markerParser{toks: tokenizeMarker(s), text: s}
	if p.toks == nil {
		return nil, fmt.Errorf("marker %s: bad quoting", excerpt(s))
	}
	m, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("marker %s: unexpected %s", excerpt(s), excerpt(p.toks[p.pos]))
	}
	return m, nil
}

type markerParser struct {
	toks  []string
	pos   int
	text  string
	depth int // parentheses open
}

func (p *markerParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *markerParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *markerParser) or() (marker, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == "or" {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = markerOr{l, r}
	}
	return l, nil
}

func (p *markerParser) and() (marker, error) {
	l, err := p.atom()
	if err != nil {
		return nil, err
	}
	for p.peek() == "and" {
		p.next()
		r, err := p.atom()
		if err != nil {
			return nil, err
		}
		l = markerAnd{l, r}
	}
	return l, nil
}

var markerOps = map[string]bool{"<": true, "<=": true, "==": true, "!=": true, ">=": true, ">": true, "~=": true, "===": true, "in": true, "not in": true}

func (p *markerParser) atom() (marker, error) {
	if p.peek() == "(" {
		p.next()
		if p.depth++; p.depth > maxMarkerDepth {
			return nil, fmt.Errorf("marker %s: parentheses nested more than %d levels deep", excerpt(p.text), maxMarkerDepth)
		}
		m, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("marker %s: missing )", excerpt(p.text))
		}
		p.depth--
		return m, nil
	}
	left, op, right := p.next(), p.next(), p.next()
	if op == "not" && right == "in" {
		op, right = "not in", p.next()
	}
	if !markerOps[op] || !isMarkerValue(left) || !isMarkerValue(right) {
		return nil, fmt.Errorf("marker %s: expected VALUE OP VALUE near %s", excerpt(p.text), excerpt(strings.TrimSpace(left+" "+op+" "+right)))
	}
	return markerCmp{left, op, right}, nil
}

func isMarkerValue(t string) bool {
	if t == "" || t == "(" || t == ")" || t == "and" || t == "or" || markerOps[t] || t == "not" {
		return false
	}
	if t[0] == '"' || t[0] == '\'' {
		return true
	}
	for _, c := range t {
		if !(c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// tokenizeMarker splits a marker into words, quoted strings, operators and parentheses.
// It returns nil when a quote is not closed.
func tokenizeMarker(s string) []string {
	toks := []string{}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		case strings.ContainsRune("<>=!~", rune(c)):
			j := i
			for j < len(s) && strings.ContainsRune("<>=!~", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()<>=!~\"'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// decide evaluates what pyship knows: "'x' in extras", "extra == 'x'" and
// "'g' in dependency_groups" (against the selected extras and groups), and simplifies.
// What is left is for pip.
func decide(m marker, extras, groups map[string]bool) marker {
	switch m := m.(type) {
	case markerAnd:
		l, r := decide(m.l, extras, groups), decide(m.r, extras, groups)
		if lc, ok := l.(markerConst); ok {
			if !lc {
				return lc
			}
			return r
		}
		if rc, ok := r.(markerConst); ok {
			if !rc {
				return rc
			}
			return l
		}
		return markerAnd{l, r}
	case markerOr:
		l, r := decide(m.l, extras, groups), decide(m.r, extras, groups)
		if lc, ok := l.(markerConst); ok {
			if lc {
				return lc
			}
			return r
		}
		if rc, ok := r.(markerConst); ok {
			if rc {
				return rc
			}
			return l
		}
		return markerOr{l, r}
	case markerCmp:
		set, value, ok := selectionAtom(m, extras, groups)
		if !ok {
			return m
		}
		in := set[NormalizeName(value)]
		if m.op == "not in" || m.op == "!=" {
			in = !in
		}
		return markerConst(in)
	}
	return m
}

// selectionAtom recognises a comparison about extras or dependency groups and returns the
// selected set and the name compared.
func selectionAtom(m markerCmp, extras, groups map[string]bool) (map[string]bool, string, bool) {
	unquote := func(s string) (string, bool) {
		if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') {
			return s[1 : len(s)-1], true
		}
		return "", false
	}
	switch {
	case (m.op == "in" || m.op == "not in") && (m.right == "extras" || m.right == "dependency_groups"):
		v, ok := unquote(m.left)
		if !ok {
			return nil, "", false
		}
		if m.right == "extras" {
			return extras, v, true
		}
		return groups, v, true
	case (m.op == "==" || m.op == "!=") && m.left == "extra":
		v, ok := unquote(m.right)
		return extras, v, ok
	}
	return nil, "", false
}
