package layers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// AlwaysExcluded are names that never belong in an application layer: version control,
// virtualenvs, byte code, tool caches and environment files that usually hold secrets.
var AlwaysExcluded = []string{
	".git", ".hg", ".svn", ".venv", "__pycache__", "*.pyc", "*.pyo", ".env", ".env.*",
	".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".DS_Store",
}

// ignoreRule is one pattern line of an ignore file.
type ignoreRule struct {
	re      *regexp.Regexp
	negate  bool
	dirOnly bool
	source  string // file:line, for messages
}

// Ignorer decides which repository paths stay out of the application layer. It combines
// pyship's built-in exclusions, .dockerignore (Docker's rules: patterns anchored at the
// root) and .gitignore (git's rules: a pattern without a slash matches at any depth).
type Ignorer struct {
	rules []ignoreRule
}

// NewIgnorer reads .dockerignore and .gitignore at the root of fsys, when present.
func NewIgnorer(fsys fs.FS) (*Ignorer, error) {
	ig := &Ignorer{}
	for _, p := range AlwaysExcluded {
		if err := ig.add(p, false, "built-in"); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name     string
		anchored bool
	}{{".gitignore", false}, {".dockerignore", true}} {
		data, err := fs.ReadFile(fsys, f.name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading %q: %w", f.name, err)
		}
		if err := ig.parse(f.name, data, f.anchored); err != nil {
			return nil, err
		}
	}
	return ig, nil
}

func (ig *Ignorer) parse(file string, data []byte, anchored bool) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if anchored {
			line = strings.TrimLeft(line, " \t")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := ig.add(line, anchored, fmt.Sprintf("%s:%d", file, n)); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (ig *Ignorer) add(pattern string, anchored bool, source string) error {
	r := ignoreRule{source: source}
	if strings.HasPrefix(pattern, "!") {
		r.negate = true
		pattern = pattern[1:]
	}
	if strings.HasSuffix(pattern, "/") {
		r.dirOnly = true
		pattern = strings.TrimRight(pattern, "/")
	}
	if anchored {
		pattern = path.Clean(strings.TrimPrefix(pattern, "/"))
	} else if strings.HasPrefix(pattern, "/") || strings.Contains(pattern, "/") {
		pattern = strings.TrimPrefix(pattern, "/")
	} else {
		pattern = "**/" + pattern
	}
	re, err := globToRegexp(pattern)
	if err != nil {
		return fmt.Errorf("%s: bad pattern %q: %w", source, pattern, err)
	}
	r.re = re
	ig.rules = append(ig.rules, r)
	return nil
}

// Configure adds the user's own patterns from source (like "pyship.toml"): exclude
// leaves paths out, include brings them back, after every other rule.
func (ig *Ignorer) Configure(source string, exclude, include []string) error {
	for _, p := range exclude {
		if err := ig.add(p, true, source+" exclude"); err != nil {
			return err
		}
	}
	for _, p := range include {
		if err := ig.add("!"+strings.TrimPrefix(p, "!"), true, source+" include"); err != nil {
			return err
		}
	}
	return nil
}

// Ignored reports whether rel (slash-separated, relative to the root) is excluded. The
// last matching rule wins, so a later "!pattern" brings a path back.
func (ig *Ignorer) Ignored(rel string, isDir bool) bool {
	ignored := false
	for _, r := range ig.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.re.MatchString(rel) {
			ignored = !r.negate
		}
	}
	return ignored
}

// globToRegexp translates a gitignore-style glob: "*" and "?" stay within one path
// segment, "**" spans segments, "[...]" is a class.
func globToRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch {
		case strings.HasPrefix(glob[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(glob[i:], "/**") && i+3 == len(glob):
			b.WriteString("/.*")
			i += 2
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated character class")
			}
			class := glob[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		case c == '\\' && i+1 < len(glob):
			i++
			b.WriteString(regexp.QuoteMeta(string(glob[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	// A pattern that names a directory also covers everything below it.
	b.WriteString("(?:/.*)?$")
	return regexp.Compile(b.String())
}
