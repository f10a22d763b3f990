package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// hugeError is an error as pip or a registry can make one: megabytes, many lines, terminal
// escapes, and the hint at the very end.
func hugeError() error {
	var b strings.Builder
	b.WriteString("installing the dependencies in requirements.txt failed:\n")
	for i := 0; b.Len() < 3<<20; i++ {
		b.WriteString("  ERROR: \x1b[31mno matching distribution\x1b[0m for pkg-é-")
		b.WriteString(strings.Repeat("x", i%50))
		b.WriteString("\r\x00\n")
	}
	b.WriteString("hint: check the requirements")
	return errors.New(b.String())
}

func TestPrintErrorIsBounded(t *testing.T) {
	huge := hugeError()
	for _, tc := range []struct {
		name     string
		err      error
		actions  bool
		maxBytes int
		want     []string
		cut      bool
	}{
		{name: "short", err: errors.New("reading \"pyproject.toml\": bad\nhint: fix it"), maxBytes: 200,
			want: []string{"pyship: reading \"pyproject.toml\": bad\nhint: fix it\n"}},
		{name: "huge", err: huge, maxBytes: 20 << 10, cut: true,
			want: []string{"pyship: installing the dependencies", "more bytes", "the whole message is in", "hint: check the requirements", `\x1b[31m`}},
		{name: "huge, in GitHub Actions", err: huge, actions: true, maxBytes: 30 << 10, cut: true,
			want: []string{"::error title=pyship::installing the dependencies", "hint: check the requirements"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			var w bytes.Buffer
			printError(&w, tc.err, "", tc.actions)
			out := w.String()
			if len(out) > tc.maxBytes {
				t.Errorf("printed %d bytes, want at most %d", len(out), tc.maxBytes)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output does not say %q", want)
				}
			}
			if strings.ContainsAny(out, "\x1b\r") || !utf8.ValidString(out) {
				t.Errorf("output carries raw control characters or broken UTF-8")
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "::error") && len(line) > 5<<10 {
					t.Errorf("annotation is %d bytes long", len(line))
				}
			}
			if tc.cut {
				_, path, ok := strings.Cut(out, "the whole message is in ")
				path, _, _ = strings.Cut(path, ")")
				whole, err := os.ReadFile(path)
				if !ok || err != nil || string(whole) != tc.err.Error() {
					t.Errorf("the whole message is not in %q: %v", path, err)
				}
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	for _, tc := range []struct {
		name               string
		in                 string
		maxBytes, maxLines int
		want               string
	}{
		{name: "fits", in: "a\nb", maxBytes: 10, maxLines: 5, want: "a\nb"},
		{name: "escapes", in: "a\x1b[0m\r\tb", maxBytes: 100, maxLines: 5, want: `a\x1b[0m\r` + "\tb"},
		{name: "CRLF line ends", in: "a\r\nb\r\n", maxBytes: 100, maxLines: 5, want: "a\nb\n"},
		{name: "invalid UTF-8", in: "a\xffb", maxBytes: 100, maxLines: 5, want: `a\xffb`},
		{name: "too many lines", in: "1\n2\n3\n4\n5\n6\n7\n8", maxBytes: 100, maxLines: 4, want: "1\n2\n3\n... (8 more bytes) ...\n8"},
		{name: "too many bytes, cut on a rune", in: strings.Repeat("é", 100), maxBytes: 41, maxLines: 4, want: strings.Repeat("é", 15) + "\n... (160 more bytes) ...\n" + strings.Repeat("é", 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := excerpt(tc.in, tc.maxBytes, tc.maxLines, func() string { return "" }); got != tc.want {
				t.Errorf("excerpt = %q, want %q", got, tc.want)
			}
		})
	}
}
