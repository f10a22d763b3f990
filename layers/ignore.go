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

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

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

// Bounds on what a repository's ignore files may ask of pyship. Every path is matched
// against the patterns of the .gitignore files above it and of .dockerignore, so the
// patterns are capped as a whole, and the .gitignore files by number (each is a read).
// Each file is read up to detect.MaxFileSize.
const (
	// MaxIgnoreFiles caps the .gitignore files read in one repository.
	MaxIgnoreFiles = 1000
	// MaxIgnorePatterns caps the patterns of all ignore files and the configuration together.
	MaxIgnorePatterns = 10000
)

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

// Ignorer decides which repository paths stay out of the application layer. Its rules,
// each able to overrule the ones before it:
//
//   - pyship's built-in exclusions (AlwaysExcluded), which match at any depth;
//   - .gitignore files at any depth, with git's rules: a file's patterns apply in its
//     directory and below, a pattern without a slash matches at any depth there, a leading
//     slash anchors it to that directory, a trailing one matches directories only, and a
//     "!" line cannot bring back a path whose parent directory is excluded;
//   - .dockerignore at the top, then the configuration's exclude and include patterns, with
//     Docker's rules (its own matcher, github.com/moby/patternmatcher): patterns are anchored
//     at the top, the last one that matches a path or one of its parents wins, so a "!" line
//     brings back a file inside an excluded directory.
//
// Credential files (Secrets, private keys) stay out whatever these say, unless an include
// pattern of the configuration names them. An Ignorer is not safe for concurrent use.
type Ignorer struct {
	// builtIn are the AlwaysExcluded rules, git the .gitignore files by directory ("" for
	// the top).
	builtIn *gitRules
	git     map[string]*gitRules
	// gitDirs remembers which directories the git rules exclude, so that a path's parents
	// are matched once, not once per path below them.
	gitDirs map[string]bool

	// docker are the .dockerignore and configuration patterns in order, includes the
	// configuration's include patterns, which alone bring a secret back.
	docker, includes []string
	// kept and excluded match docker starting from a path the rules before them keep or
	// exclude; included matches includes.
	kept, excluded, included *patternmatcher.PatternMatcher

	secrets  *patternmatcher.PatternMatcher
	patterns int // read so far, against MaxIgnorePatterns
}

// gitRules are the patterns of one .gitignore, as Docker patterns anchored at its
// directory: all of them for a directory, those without a trailing slash for a file.
type gitRules struct {
	all, files *patternmatcher.PatternMatcher
}

// NewIgnorer reads the ignore files of the repository fsys: .dockerignore at the top and
// .gitignore in every directory that is not left out (so that a repository's ignored trees,
// node_modules say, are not walked). Bad patterns are *detect.Error naming file and line.
func NewIgnorer(fsys fs.FS) (*Ignorer, error) {
	ig := &Ignorer{git: map[string]*gitRules{}, gitDirs: map[string]bool{}}
	var err error
	if ig.builtIn, err = newGitRules("", AlwaysExcluded, nil, "built-in"); err != nil {
		return nil, err
	}
	var secrets []string
	for _, p := range Secrets {
		// A secret is one wherever it sits: services/api/.aws/credentials too.
		if body, ok := strings.CutPrefix(p, "!"); ok {
			secrets = append(secrets, "!**/"+body)
		} else {
			secrets = append(secrets, "**/"+p)
		}
	}
	if ig.secrets, err = patternmatcher.New(secrets); err != nil {
		return nil, err
	}

	data, err := readIgnoreFile(fsys, ".dockerignore")
	if err != nil {
		return nil, err
	}
	if err := ig.parseDockerignore(".dockerignore", data); err != nil {
		return nil, err
	}
	if err := ig.compile(); err != nil {
		return nil, err
	}

	files := 0
	err = fs.WalkDir(fsys, ".", func(dir string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if dir != "." {
			// What is left out is not walked: below a directory that .dockerignore
			// excludes, its patterns decide; below one git's rules exclude, git's
			// patterns cannot bring anything back.
			if why, _ := ig.Why(dir, true, nil); why == Excluded {
				return fs.SkipDir
			}
			if ig.gitExcluded(dir, true) {
				return nil
			}
		}
		name := path.Join(dir, ".gitignore")
		data, err := readIgnoreFile(fsys, name)
		if err != nil || data == nil {
			return err
		}
		if files++; files > MaxIgnoreFiles {
			return &detect.Error{File: name, Msg: fmt.Sprintf("more than %d .gitignore files", MaxIgnoreFiles),
				Hint: "list the trees pyship should not look into in .dockerignore at the top of the repository"}
		}
		return ig.parseGitignore(name, data)
	})
	if err != nil {
		return nil, err
	}
	return ig, nil
}

// readIgnoreFile reads an ignore file as detection reads files: one that is a link out of
// the repository, a FIFO or too large is refused with its name. A missing one is nil.
func readIgnoreFile(fsys fs.FS, name string) ([]byte, error) {
	data, err := detect.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var de *detect.Error
	if err != nil && !errors.As(err, &de) {
		return nil, fmt.Errorf("reading %q: %w", name, err)
	}
	return data, err
}

// lines calls fn with each line of an ignore file and its number.
func lines(file string, data []byte, fn func(line string, n int) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if err := fn(sc.Text(), n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &detect.Error{File: file, Msg: err.Error()}
	}
	return nil
}

// count adds one pattern from file:line against MaxIgnorePatterns.
func (ig *Ignorer) count(file string, line int) error {
	if ig.patterns++; ig.patterns > MaxIgnorePatterns {
		return &detect.Error{File: file, Line: line, Msg: fmt.Sprintf("more than %d ignore patterns in all", MaxIgnorePatterns),
			Hint: "pyship reads this many patterns from .dockerignore, the .gitignore files and the configuration together"}
	}
	return nil
}

// parseDockerignore reads each line as Docker does (ignorefile), keeping its number for
// messages.
func (ig *Ignorer) parseDockerignore(file string, data []byte) error {
	return lines(file, data, func(line string, n int) error {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			return nil
		}
		return ig.addDocker(line, file, n)
	})
}

// addDocker adds what one .dockerignore line holds, with Docker's clean-up of it.
func (ig *Ignorer) addDocker(line, file string, n int) error {
	patterns, err := ignorefile.ReadAll(strings.NewReader(line))
	if err != nil {
		return err
	}
	for _, p := range patterns {
		if err := ig.count(file, n); err != nil {
			return err
		}
		if err := checkPattern(p); err != nil {
			return &detect.Error{File: file, Line: n, Msg: fmt.Sprintf("bad pattern %q: %v", p, err)}
		}
		ig.docker = append(ig.docker, p)
	}
	return nil
}

// checkPattern reports a pattern Docker's matcher would fail on: it compiles patterns on
// first use, and would otherwise fail in the middle of the walk.
func checkPattern(p string) error {
	probe := []string{p}
	if strings.HasPrefix(p, "!") {
		// An exception is only tried on a path something excluded.
		probe = []string{"**", p}
	}
	pm, err := patternmatcher.New(probe)
	if err != nil {
		return err
	}
	_, err = pm.MatchesOrParentMatches("probe")
	return err
}

// compile builds the matchers for the Docker patterns read so far.
func (ig *Ignorer) compile() error {
	var err error
	if ig.kept, err = patternmatcher.New(ig.docker); err != nil {
		return err
	}
	// "**" matches every path: the patterns then start from one already excluded.
	if ig.excluded, err = patternmatcher.New(append([]string{"**"}, ig.docker...)); err != nil {
		return err
	}
	ig.included, err = patternmatcher.New(ig.includes)
	return err
}

// parseGitignore adds the .gitignore at name.
func (ig *Ignorer) parseGitignore(name string, data []byte) error {
	var patterns []string
	var linesOf []int
	err := lines(name, data, func(line string, n int) error {
		// Git drops trailing blanks (and a carriage return) but keeps leading ones, and
		// a blank escaped with a backslash.
		trimmed := strings.TrimRight(line, " \t\r")
		if strings.HasSuffix(trimmed, `\`) && len(trimmed) < len(line) {
			trimmed = line[:len(trimmed)+1]
		}
		line = trimmed
		if line == "" || strings.HasPrefix(line, "#") {
			return nil
		}
		if err := ig.count(name, n); err != nil {
			return err
		}
		patterns = append(patterns, line)
		linesOf = append(linesOf, n)
		return nil
	})
	if err != nil {
		return err
	}
	dir := path.Dir(name)
	if dir == "." {
		dir = ""
	}
	r, err := newGitRules(dir, patterns, linesOf, name)
	if err != nil {
		return err
	}
	// What gitDirs holds stays true: the walk reads a directory's .gitignore before it
	// matches anything below that directory.
	ig.git[dir] = r
	return nil
}

// newGitRules turns the patterns of a .gitignore in dir ("" for the top) into Docker
// patterns with git's meaning.
func newGitRules(dir string, patterns []string, linesOf []int, file string) (*gitRules, error) {
	var all, files []string
	for i, p := range patterns {
		neg := false
		if body, ok := strings.CutPrefix(p, "!"); ok {
			neg, p = true, body
		}
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimRight(p, "/")
		if p == "" {
			continue // "/" or "!": git matches nothing with it
		}
		if strings.Contains(p, "/") {
			// A slash anchors the pattern to the directory of its .gitignore.
			p = strings.TrimPrefix(p, "/")
		} else {
			p = "**/" + p
		}
		if dir != "" {
			p = dir + "/" + p
			// Docker's matcher cleans patterns; git never lets a pattern reach above
			// its own directory.
			if c := path.Clean(p); !strings.HasPrefix(c, dir+"/") {
				continue
			}
		}
		if neg {
			p = "!" + p
		}
		if err := checkPattern(p); err != nil {
			line := 0
			if linesOf != nil {
				line = linesOf[i]
			}
			return nil, &detect.Error{File: file, Line: line, Msg: fmt.Sprintf("bad pattern %q: %v", patterns[i], err)}
		}
		all = append(all, p)
		if !dirOnly {
			files = append(files, p)
		}
	}
	r := &gitRules{}
	var err error
	if r.all, err = patternmatcher.New(all); err != nil {
		return nil, err
	}
	if r.files, err = patternmatcher.New(files); err != nil {
		return nil, err
	}
	return r, nil
}

// Configure adds the user's own patterns from source (like "pyship.toml"), read as
// .dockerignore lines after .dockerignore's: exclude leaves paths out, include brings them
// back, credential files too.
func (ig *Ignorer) Configure(source string, exclude, include []string) error {
	for _, p := range exclude {
		if err := ig.addConfig(source, "exclude", p); err != nil {
			return err
		}
	}
	for _, p := range include {
		if err := ig.addConfig(source, "include", "!"+strings.TrimPrefix(p, "!")); err != nil {
			return err
		}
	}
	return ig.compile()
}

func (ig *Ignorer) addConfig(source, kind, p string) error {
	patterns, err := ignorefile.ReadAll(strings.NewReader(p))
	if err != nil {
		return err
	}
	for _, p := range patterns {
		if err := ig.count(source, 0); err != nil {
			return err
		}
		if err := checkPattern(p); err != nil {
			return &detect.Error{File: source, Msg: fmt.Sprintf("bad %s pattern %q: %v", kind, p, err)}
		}
		ig.docker = append(ig.docker, p)
		if body, ok := strings.CutPrefix(p, "!"); ok && kind == "include" {
			ig.includes = append(ig.includes, body)
		}
	}
	return nil
}

// Ignored reports whether rel (slash-separated, relative to the root) is left out, by any
// rule but the content of .pem and .key files.
func (ig *Ignorer) Ignored(rel string, isDir bool) bool {
	why, _ := ig.Why(rel, isDir, nil)
	return why != Kept
}

// Why says whether rel is left out and why. The ignore rules come first (see Ignorer). A
// file they keep is a Secret when it matches Secrets, or when it is a .pem or .key file and
// open (when not nil) gives a private key, unless an include pattern of the configuration
// names it.
func (ig *Ignorer) Why(rel string, isDir bool, open func() (io.ReadCloser, error)) (Reason, error) {
	m := ig.kept
	if ig.gitExcluded(rel, isDir) {
		m = ig.excluded
	}
	// The patterns were all tried when they were read: no error is left to come.
	if out, _ := m.MatchesOrParentMatches(rel); out {
		return Excluded, nil
	}
	if isDir {
		return Kept, nil
	}
	if in, _ := ig.included.MatchesOrParentMatches(rel); in {
		return Kept, nil
	}
	if secret, _ := ig.secrets.MatchesOrParentMatches(rel); secret {
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

// Descend reports whether a walk must go into dir, which Why leaves out, because a "!" line
// of .dockerignore or an include pattern of the configuration may bring back a path below
// it: "data/" then "!data/keep.txt" keeps data/keep.txt, as Docker does. Docker itself
// looks only for exceptions that start with dir; this also follows wildcards ("!*/keep.txt",
// "!**/keep.txt"), so that the walk finds every path Docker's matcher keeps. It never goes
// into a directory the built-in rules leave out (.git, __pycache__): an exception that names
// one brings it back whole, but "!**/*.log" does not bring back .git/x.log.
func (ig *Ignorer) Descend(dir string) bool {
	if !ig.kept.Exclusions() || ig.builtIn.match(dir, true, false) {
		return false
	}
	for _, p := range ig.docker {
		if body, ok := strings.CutPrefix(p, "!"); ok && mayMatchBelow(body, dir) {
			return true
		}
	}
	return false
}

// mayMatchBelow reports whether the Docker pattern could match a path below dir. A pattern
// with fewer segments than dir (and no "**") matches dir's parents at most; an exception
// that matches them matches dir too, and dir is left out by a pattern after it.
func mayMatchBelow(pattern, dir string) bool {
	segs := strings.Split(pattern, "/")
	for i, d := range strings.Split(dir, "/") {
		if i >= len(segs) {
			return false
		}
		if strings.Contains(segs[i], "**") {
			return true
		}
		if ok, err := path.Match(segs[i], d); !ok || err != nil {
			return false
		}
	}
	return true
}

// gitExcluded reports whether the built-in rules and the .gitignore files leave rel out: a
// parent directory they exclude, or the last of their patterns that matches rel itself.
func (ig *Ignorer) gitExcluded(rel string, isDir bool) bool {
	if dir := path.Dir(rel); dir != "." {
		out, ok := ig.gitDirs[dir]
		if !ok {
			out = ig.gitExcluded(dir, true)
			ig.gitDirs[dir] = out
		}
		if out {
			return true
		}
	}
	// The built-in rules, then the .gitignore files from the top down: a deeper one
	// overrules the ones above it.
	out := ig.builtIn.match(rel, isDir, false)
	out = ig.git[""].match(rel, isDir, out)
	for i := range len(rel) {
		if rel[i] == '/' {
			out = ig.git[rel[:i]].match(rel, isDir, out)
		}
	}
	return out
}

// match matches rel against the rules (none when r is nil), from the verdict so far.
func (r *gitRules) match(rel string, isDir, out bool) bool {
	if r == nil {
		return out
	}
	m := r.files
	if isDir {
		m = r.all
	}
	// Git matches a path itself: its parents were matched on their own above.
	out, _ = m.MatchesUsingParentResult(rel, out)
	return out
}

func hasSuffix(name string, suffixes []string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
