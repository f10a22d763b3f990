package detect

import (
	"encoding/json"
	"fmt"

	"github.com/BurntSushi/toml"
)

// maxNesting bounds how deep values nest in a TOML or JSON file pyship decodes. Real
// files nest a few levels; BurntSushi/toml's cost grows with the square of the depth, so
// a file of nothing but "{a = " exhausts memory.
const maxNesting = 64

// checkNesting refuses a TOML (or, with isJSON, JSON) document whose values nest deeper
// than maxNesting: it counts { and [ outside strings and comments, before any decoder
// sees the document.
func checkNesting(file string, data []byte, isJSON bool) error {
	depth, line := 0, 1
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '\n':
			line++
		case '#':
			if isJSON {
				continue
			}
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			if isJSON && c == '\'' {
				continue
			}
			end, lines := skipString(data, i, isJSON)
			i, line = end, line+lines
		case '{', '[':
			if depth++; depth > maxNesting {
				return &Error{File: file, Line: line, Msg: fmt.Sprintf("values nested more than %d levels deep ({ and [)", maxNesting),
					Hint: fmt.Sprintf("pyship reads files whose values nest at most %d levels; flatten this one", maxNesting)}
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// skipString returns the offset of the last byte of the string that starts at data[i]
// (TOML: basic, literal, and their multi-line forms; JSON: basic), and the newlines in it.
// An unterminated string runs to the end of its line (or of the data, when multi-line):
// the decoder reports it.
func skipString(data []byte, i int, isJSON bool) (int, int) {
	q := data[i]
	escapes := q == '"'
	multi := !isJSON && i+2 < len(data) && data[i+1] == q && data[i+2] == q
	lines := 0
	j := i + 1
	if multi {
		j = i + 3
	}
	for ; j < len(data); j++ {
		c := data[j]
		switch {
		case escapes && c == '\\':
			if j+1 < len(data) && data[j+1] == '\n' {
				lines++
			}
			j++
		case c == '\n':
			if !multi {
				return j - 1, lines
			}
			lines++
		case c == q && !multi:
			return j, lines
		case c == q && j+2 < len(data) && data[j+1] == q && data[j+2] == q:
			// Up to two more quotes may end the content: """a"""" is `a"`.
			j += 2
			for k := 0; k < 2 && j+1 < len(data) && data[j+1] == q; k++ {
				j++
			}
			return j, lines
		}
	}
	return len(data) - 1, lines
}

// decodeTOML decodes a TOML document after checking its nesting; a problem is an *Error
// with the file and line.
func decodeTOML(file string, data []byte, v any) (toml.MetaData, error) {
	if err := checkNesting(file, data, false); err != nil {
		return toml.MetaData{}, err
	}
	md, err := toml.Decode(string(data), v)
	if err != nil {
		return md, tomlError(file, data, err)
	}
	return md, nil
}

// decodeJSON decodes a JSON document after checking its nesting.
func decodeJSON(file string, data []byte, v any, hint string) error {
	if err := checkNesting(file, data, true); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &Error{File: file, Msg: "not valid JSON: " + clip(err.Error(), 200), Hint: hint}
	}
	return nil
}
