package sandbox

import (
	"slices"
	"strings"
	"testing"
)

func TestLinesCutsLongLines(t *testing.T) {
	type line struct {
		text string
		cut  bool
	}
	var got []line
	l := &Lines{Emit: func(text string, cut bool) { got = append(got, line{text, cut}) }}
	l.Write([]byte("one\ntw"))
	l.Write([]byte("o\n" + strings.Repeat("x", 3*MaxLine)))
	if p := l.Partial(); len(p) != MaxLine {
		t.Errorf("a line without its end kept %d bytes, want %d", len(p), MaxLine)
	}
	l.Write([]byte("\nlast"))
	want := []line{{"one", false}, {"two", false}, {strings.Repeat("x", MaxLine), true}}
	if !slices.Equal(got, want) || l.Partial() != "last" {
		t.Errorf("lines %d (first %q), partial %q", len(got), got[0].text, l.Partial())
	}
}
