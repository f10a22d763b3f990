package detect

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Text files are decoded as pip decodes a requirements file (pip._internal.utils.encoding):
// a byte order mark decides (UTF-8, UTF-16), else a "# coding: X" comment on one of the
// first two lines, else the locale's encoding, which in python:X.Y-slim is UTF-8.

var (
	bomUTF8    = []byte("\xef\xbb\xbf")
	bomUTF16LE = []byte("\xff\xfe")
	bomUTF16BE = []byte("\xfe\xff")
	bomUTF32LE = []byte("\xff\xfe\x00\x00")
	bomUTF32BE = []byte("\x00\x00\xfe\xff")
	codingRe   = regexp.MustCompile(`coding[:=]\s*([-\w.]+)`)
)

// decodeText turns a text file into UTF-8. With codingLine, a "# coding: X" comment on the
// first two lines names the encoding, as pip reads it in a requirements file.
func decodeText(file string, data []byte, codingLine bool) (string, error) {
	encodingError := func(line int, msg string) error {
		return &Error{File: file, Line: line, Msg: msg,
			Hint: "save it as UTF-8 (most editors: \"Save with encoding\"); pip also reads UTF-16 with a byte order mark"}
	}
	switch {
	case bytes.HasPrefix(data, bomUTF8):
		data = data[len(bomUTF8):]
	case bytes.HasPrefix(data, bomUTF32LE), bytes.HasPrefix(data, bomUTF32BE):
		// pip takes a UTF-32 LE mark for UTF-16 and reads the file wrong.
		return "", encodingError(0, "the file is UTF-32, which pip does not read")
	case bytes.HasPrefix(data, bomUTF16LE), bytes.HasPrefix(data, bomUTF16BE):
		return decodeUTF16(data[2:], bytes.HasPrefix(data, bomUTF16BE), encodingError)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return "", encodingError(lineAt(data, i), "the file holds NUL bytes: UTF-16 or UTF-32 without a byte order mark, or not text at all")
	}
	if codingLine {
		lines := bytes.SplitN(data, []byte("\n"), 3)
		for n, line := range lines[:min(2, len(lines))] {
			if !bytes.HasPrefix(line, []byte("#")) {
				continue
			}
			if m := codingRe.FindSubmatch(line); m != nil {
				return decodeDeclared(data, string(m[1]), n+1, encodingError)
			}
		}
	}
	if !utf8.Valid(data) {
		i := invalidUTF8(data)
		return "", encodingError(lineAt(data, i), fmt.Sprintf("the file is not UTF-8: the byte 0x%02x cannot start or continue a character", data[i]))
	}
	return string(data), nil
}

// decodeUTF16 decodes UTF-16 text after its byte order mark.
func decodeUTF16(data []byte, bigEndian bool, encodingError func(int, string) error) (string, error) {
	if len(data)%2 != 0 {
		return "", encodingError(0, "the file is UTF-16 (it starts with its byte order mark) but has an odd number of bytes")
	}
	units := make([]uint16, len(data)/2)
	for i := range units {
		if bigEndian {
			units[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		} else {
			units[i] = uint16(data[2*i]) | uint16(data[2*i+1])<<8
		}
	}
	return string(utf16.Decode(units)), nil
}

// decodeDeclared decodes text in the encoding its coding comment names, for the
// encodings pyship can decode without tables: UTF-8, ASCII and Latin-1.
func decodeDeclared(data []byte, name string, line int, encodingError func(int, string) error) (string, error) {
	switch norm := strings.ReplaceAll(strings.ToLower(name), "_", "-"); norm {
	case "utf-8", "utf8", "u8", "utf", "utf-8-sig":
		data = bytes.TrimPrefix(data, bomUTF8)
		if !utf8.Valid(data) {
			i := invalidUTF8(data)
			return "", encodingError(lineAt(data, i), fmt.Sprintf("the file says it is %s, but the byte 0x%02x is not UTF-8", excerpt(name), data[i]))
		}
		return string(data), nil
	case "ascii", "us-ascii", "646":
		for i, c := range data {
			if c >= 0x80 {
				return "", encodingError(lineAt(data, i), fmt.Sprintf("the file says it is %s, but the byte 0x%02x is not ASCII", excerpt(name), c))
			}
		}
		return string(data), nil
	case "latin-1", "latin1", "l1", "iso-8859-1", "iso8859-1", "8859", "cp819", "latin", "iso-ir-100":
		runes := make([]rune, len(data))
		for i, c := range data {
			runes[i] = rune(c)
		}
		return string(runes), nil
	}
	return "", encodingError(line, fmt.Sprintf("the file says it is %s, an encoding pyship does not decode (it reads UTF-8, UTF-16, ASCII and Latin-1)", excerpt(name)))
}

// invalidUTF8 returns the offset of the first byte that is not UTF-8.
func invalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return 0
}

// lineAt is the line of the byte at offset i.
func lineAt(data []byte, i int) int {
	return bytes.Count(data[:i], []byte("\n")) + 1
}
