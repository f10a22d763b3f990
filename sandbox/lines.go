package sandbox

import "bytes"

// MaxLine is the longest line Lines hands on; the rest of a longer one is dropped, so a
// program that prints without a newline cannot grow pyship.
const MaxLine = 16 << 10

// Lines splits what a program writes into lines for Emit, each cut at MaxLine bytes (cut
// says so). It is not safe for concurrent use.
type Lines struct {
	Emit    func(line string, cut bool)
	partial []byte
	cut     bool
}

func (l *Lines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := MaxLine - len(l.partial); room > 0 {
			l.partial = append(l.partial, chunk[:min(len(chunk), room)]...)
		}
		if len(chunk) > 0 && len(l.partial) >= MaxLine {
			l.cut = true
		}
		if i < 0 {
			break
		}
		l.Emit(string(l.partial), l.cut)
		l.partial, l.cut = l.partial[:0], false
		p = p[i+1:]
	}
	return n, nil
}

// Partial is the line written so far, not yet ended.
func (l *Lines) Partial() string { return string(l.partial) }
