package publish

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxQuoted is how much of an underlying error an Error quotes: enough for a registry's
// JSON error, not for a whole HTML error page.
const maxQuoted = 2 << 10

// excerpt escapes the control characters of s (a registry's text could drive a terminal)
// and cuts it to about max bytes, saying how much was left out. It cuts at a space or line
// end where it can, so that a word (a token a registry echoed back, say) is not split.
func excerpt(s string, max int) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r):
			q := fmt.Sprintf("%+q", r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	if len(out) <= max {
		return out
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	if sp := strings.LastIndexAny(out[:cut], " \n\t"); sp > max-256 {
		cut = sp
	}
	return fmt.Sprintf("%s ... (%d more bytes)", out[:cut], len(out)-cut)
}
