package layers

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/pyship/pyship/detect"
)

// AlwaysExcluded are names that never belong in an application layer: version control,
// virtualenvs, byte code, tool caches and environment files that usually hold secrets.
var AlwaysExcluded = []string{
	".git", ".hg", ".svn", ".venv", "__pycache__", "*.pyc", "*.pyo", ".env", ".env.*",
	".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".DS_Store",
}

// Secrets are files that hold credentials by the convention of the tool that writes them.
// They match at any depth, stay out whatever the ignore files say, and come back only by an
// include pattern in pyship's configuration. A "!" line keeps a name the lines before it
// caught. Files ending in .pem or .key are not here by name (a .pem is as often a CA bundle
// the app needs): they are secrets when they hold a PEM private key (see PrivateKey).
var Secrets = []string{
	// Environment files, but not the templates projects commit beside them.
	".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template", "!.env.dist",
	// Cloud and container tools.
	".aws/credentials", ".docker/config.json", ".kube/config", ".config/gcloud/**",
	"application_default_credentials.json", "credentials.json", ".azure/accessTokens.json",
	".azure/msal_token_cache.json",
	// Package indexes, version control and databases.
	".netrc", "_netrc", ".git-credentials", ".npmrc", ".pypirc", ".pgpass", ".vault-token",
	// SSH and GnuPG keys: the well-known key names anywhere, and all of ~/.ssh and ~/.gnupg.
	"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", ".ssh/**", ".gnupg/**",
}

// privateKeySuffixes are the names checked for a private key by content.
var privateKeySuffixes = []string{".pem", ".key"}

// maxKeySniff caps how much of a .pem or .key file is read to look for a private key.
const maxKeySniff = 1 << 20

var privateKeyHeader = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)

// PrivateKey reports whether r holds a PEM private key within its first MiB.
func PrivateKey(r io.Reader) (bool, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeySniff))
	if err != nil {
		return false, err
	}
	return privateKeyHeader.Match(data), nil
}

// Reason says why a path is or is not in the application layer.
type Reason int

const (
	// Kept paths go into the layer.
	Kept Reason = iota
	// Excluded paths are left out by a built-in rule, an ignore file or the configuration.
	Excluded
	// Secret paths are credential files, left out unless the configuration includes them.
	Secret
)

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
	// secrets are the Secrets rules; includes are the configuration's include patterns,
	// the only rules that override them.
	secrets  []ignoreRule
	includes []ignoreRule
}

// NewIgnorer reads .dockerignore and .gitignore at the root of fsys, when present.
func NewIgnorer(fsys fs.FS) (*Ignorer, error) {
	ig := &Ignorer{}
	for _, p := range AlwaysExcluded {
		if err := ig.add(p, false, "built-in"); err != nil {
			return nil, err
		}
	}
	for _, p := range Secrets {
		// A secret is one wherever it sits: services/api/.aws/credentials too.
		neg, body := "", p
		if b, ok := strings.CutPrefix(p, "!"); ok {
			neg, body = "!", b
		}
		r, err := newRule(neg+"**/"+body, false, "built-in secrets")
		if err != nil {
			return nil, err
		}
		ig.secrets = append(ig.secrets, r)
	}
	for _, f := range []struct {
		name     string
		anchored bool
	}{{".gitignore", false}, {".dockerignore", true}} {
		// Read as detection reads: an ignore file that is a link out of the repository,
		// or a FIFO, is refused with its name.
		data, err := detect.ReadFile(fsys, f.name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			var de *detect.Error
			if errors.As(err, &de) {
				return nil, err
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
	r, err := newRule(pattern, anchored, source)
	if err != nil {
		return err
	}
	ig.rules = append(ig.rules, r)
	return nil
}

// newRule compiles one pattern: anchored at the root (Docker's rule), or, as git has it,
// at any depth when the pattern has no slash but a trailing one.
func newRule(pattern string, anchored bool, source string) (ignoreRule, error) {
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
		return r, fmt.Errorf("%s: bad pattern %q: %w", source, pattern, err)
	}
	r.re = re
	return r, nil
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
		r, err := newRule("!"+strings.TrimPrefix(p, "!"), true, source+" include")
		if err != nil {
			return err
		}
		ig.rules = append(ig.rules, r)
		ig.includes = append(ig.includes, r)
	}
	return nil
}

// Ignored reports whether rel (slash-separated, relative to the root) is left out, by any
// rule but the content of .pem and .key files.
func (ig *Ignorer) Ignored(rel string, isDir bool) bool {
	why, _ := ig.Why(rel, isDir, nil)
	return why != Kept
}

// Why says whether rel is left out and why. The ignore rules come first: the last
// matching one wins, so a later "!pattern" brings a path back. A file they keep is a
// Secret when it matches Secrets, or when it is a .pem or .key file and open (when not nil)
// gives a private key, unless an include pattern of the configuration names it.
func (ig *Ignorer) Why(rel string, isDir bool, open func() (io.ReadCloser, error)) (Reason, error) {
	if matchLast(ig.rules, rel, isDir) {
		return Excluded, nil
	}
	if isDir || matchAny(ig.includes, rel) {
		return Kept, nil
	}
	if matchLast(ig.secrets, rel, false) {
		return Secret, nil
	}
	if open == nil || !hasSuffix(rel, privateKeySuffixes) {
		return Kept, nil
	}
	rc, err := open()
	if err != nil {
		return Kept, err
	}
	defer rc.Close()
	if key, err := PrivateKey(rc); err != nil || !key {
		return Kept, err
	}
	return Secret, nil
}

// matchLast reports whether the last rule that matches rel leaves it out.
func matchLast(rules []ignoreRule, rel string, isDir bool) bool {
	out := false
	for _, r := range rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.re.MatchString(rel) {
			out = !r.negate
		}
	}
	return out
}

func matchAny(rules []ignoreRule, rel string) bool {
	for _, r := range rules {
		if r.re.MatchString(rel) {
			return true
		}
	}
	return false
}

func hasSuffix(name string, suffixes []string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
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
