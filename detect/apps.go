package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Bounds on the search for applications under a root: a monorepo's apps sit a few levels
// down, and a tree that runs deeper or wider is most likely data or a vendored checkout.
const (
	// MaxAppDepth is how many directories below the root FindApps looks for an app; a
	// deeper one is found only when [matrix] include names it.
	MaxAppDepth = 6
	// MaxAppEntries caps the directory entries FindApps lists in all.
	MaxAppEntries = 100_000
)

// NotApps are the directory names FindApps does not look into, at any depth, unless
// [matrix] include names what is below them: tests, examples, documentation and vendored
// trees hold Python projects that are not the repository's apps.
var NotApps = []string{
	"tests", "test", "examples", "example", "docs", "vendor", "third_party", "node_modules",
	"site-packages", "__pycache__",
}

// dependencyFiles are the files that make a directory a candidate for an app: an app
// declares what it installs.
var dependencyFiles = []string{
	"requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "Pipfile.lock",
	"poetry.lock", "uv.lock", "pylock.toml", "pdm.lock",
}

// Matrix is the [matrix] table of the root's configuration: which directories
// `pyship plan --matrix` adds to the apps it finds, and which it leaves out. Both hold
// paths relative to the root, or patterns of them as path.Match takes them
// ("services/*").
type Matrix struct {
	// Include are directories that are apps even where FindApps does not look: inside a
	// directory it skips (examples/demo), inside another app, or deeper than MaxAppDepth.
	Include []string `toml:"include" json:"include,omitempty"`
	// Exclude are directories that FindApps leaves out, with everything below them.
	Exclude []string `toml:"exclude" json:"exclude,omitempty"`
}

// App is an application FindApps found.
type App struct {
	// Path is its directory, relative to the root ("." for the root itself).
	Path string `json:"path"`
	// Name is unique among the apps and valid as a component of an image reference:
	// the directory's name, lower-cased, or as much of its path as tells it apart.
	Name string `json:"name"`
}

// FindOptions tune FindApps.
type FindOptions struct {
	Logger hclog.Logger
	// Ignored reports whether the repository's ignore files leave out a path relative to
	// the root; nil when nothing is ignored.
	Ignored func(rel string, isDir bool) bool
}

// FindApps finds the applications under the root fsys: the directories that hold a
// dependency file and that Detect accepts, sorted by path. It does not look inside an app
// (its subdirectories belong to it), nor into NotApps, hidden directories, virtualenvs,
// directories the ignore files leave out, or below MaxAppDepth; the root's configuration
// ([matrix] in pyship.toml or [tool.pyship.matrix]) adds and removes directories. Links
// are not followed. A directory that looks like an app (an entry point beside its
// dependency file) but that Detect refuses is an error: a matrix without it would hide it.
func FindApps(ctx context.Context, fsys fs.FS, opts FindOptions) ([]App, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	repo := confine(fsys)
	m, err := matrixConfig(repo)
	if err != nil {
		return nil, err
	}
	f := &finder{raw: fsys, repo: repo, cfg: m, ignored: opts.Ignored, log: log, found: map[string]bool{}}
	if err := f.walk(ctx, ".", 0); err != nil {
		return nil, err
	}
	if err := f.includes(ctx); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(f.found))
	for p := range f.found {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return nameApps(paths)
}

// matrixSettings are the root's [matrix] table and the configuration that holds it (nil
// when there is none).
type matrixSettings struct {
	*Matrix
	cfg *Config
}

// matrixConfig reads the root's [matrix] table and checks its patterns.
func matrixConfig(fsys *repoFS) (matrixSettings, error) {
	pyproject, err := readOptional(fsys, "pyproject.toml")
	if err != nil {
		return matrixSettings{}, err
	}
	cfg, err := loadConfig(fsys, pyproject)
	if err != nil || cfg == nil || cfg.Matrix == nil {
		return matrixSettings{Matrix: &Matrix{}}, err
	}
	for _, key := range []string{"include", "exclude"} {
		patterns := cfg.Matrix.Include
		if key == "exclude" {
			patterns = cfg.Matrix.Exclude
		}
		for _, p := range patterns {
			if err := checkMatrixPattern(p); err != nil {
				return matrixSettings{}, &Error{File: cfg.File, Line: cfg.Line("matrix." + key),
					Msg:  fmt.Sprintf("matrix.%s: %s %s", key, excerpt(p), err),
					Hint: `write directories relative to the repository's top, like "services/api" or "services/*"`}
			}
		}
	}
	return matrixSettings{Matrix: cfg.Matrix, cfg: cfg}, nil
}

func checkMatrixPattern(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("names no directory below the top")
	case strings.HasPrefix(p, "/"):
		return errors.New("is an absolute path")
	case !fs.ValidPath(p):
		return errors.New("is not a clean relative path (no .., no ./, no trailing /)")
	}
	if _, err := path.Match(p, ""); err != nil {
		return errors.New("is not a valid pattern")
	}
	return nil
}

// finder is one search for apps.
type finder struct {
	raw     fs.FS
	repo    *repoFS
	cfg     matrixSettings
	ignored func(string, bool) bool
	log     hclog.Logger
	entries int
	found   map[string]bool
}

// excluded reports whether [matrix] exclude names dir.
func (f *finder) excluded(dir string) bool {
	for _, p := range f.cfg.Exclude {
		if ok, _ := path.Match(p, dir); ok {
			return true
		}
	}
	return false
}

// walk looks for apps in dir and below it.
func (f *finder) walk(ctx context.Context, dir string, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := f.repo.ReadDir(dir)
	if err != nil {
		return readError(dir, err)
	}
	if f.entries += len(entries); f.entries > MaxAppEntries {
		return &Error{File: dir, Msg: fmt.Sprintf("more than %d files and directories to look through for apps", MaxAppEntries),
			Hint: "give pyship plan --matrix the directory that holds the apps, or list the trees that hold none in [matrix] exclude in pyship.toml"}
	}
	app, err := f.isApp(ctx, dir, entries)
	if err != nil {
		return err
	}
	if app {
		f.found[dir] = true
		// What is below an app is the app's.
		return nil
	}
	if depth == MaxAppDepth {
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		// A link is not a directory here: a tree reached through one is not searched.
		if !e.IsDir() {
			continue
		}
		rel := path.Join(dir, name)
		switch {
		case strings.HasPrefix(name, "."), slices.Contains(NotApps, name), f.excluded(rel):
			continue
		case f.ignored != nil && f.ignored(rel, true):
			continue
		case exists(f.repo, path.Join(rel, "pyvenv.cfg")):
			continue
		}
		if err := f.walk(ctx, rel, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// isApp reports whether dir, whose entries are given, is an application: it holds a
// dependency file and Detect accepts it. When Detect refuses a directory that also holds
// an entry point, the error is returned, naming the directory.
func (f *finder) isApp(ctx context.Context, dir string, entries []fs.DirEntry) (bool, error) {
	candidate := slices.ContainsFunc(entries, func(e fs.DirEntry) bool {
		return !e.IsDir() && slices.Contains(dependencyFiles, e.Name())
	})
	if !candidate {
		return false, nil
	}
	sub := confine(subFS{f.raw, dir})
	_, err := Detect(ctx, sub, Options{})
	if err == nil {
		return true, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	if !hasEntryPoint(sub) {
		f.log.Debug("not an app", "dir", dir, "reason", err)
		return false, nil
	}
	return false, &AppError{Dir: dir, Err: err}
}

// hasEntryPoint reports whether the directory holds what starts an app: an entry file at
// its top or under src/, manage.py, a Procfile or pyship.toml.
func hasEntryPoint(fsys fs.FS) bool {
	for _, name := range []string{"manage.py", "Procfile", ConfigFile} {
		if exists(fsys, name) {
			return true
		}
	}
	for _, name := range entryFiles {
		if name != "__init__.py" && (exists(fsys, name) || exists(fsys, path.Join("src", name))) {
			return true
		}
	}
	return false
}

// includes adds the directories [matrix] include names. A path must be an app; a
// pattern adds the apps among the directories it matches, and must match one.
func (f *finder) includes(ctx context.Context) error {
	for _, p := range f.cfg.Include {
		where := func(format string, args ...any) *Error {
			// f.cfg.cfg is set: only a configuration has patterns to include.
			return &Error{File: f.cfg.cfg.File, Line: f.cfg.cfg.Line("matrix.include"), Msg: "matrix.include: " + fmt.Sprintf(format, args...),
				Hint: "name directories that hold an app (a dependency file and an entry point), relative to the repository's top"}
		}
		if !strings.ContainsAny(p, `*?[\`) {
			if st, err := f.repo.Stat(p); err != nil || !st.IsDir() {
				return where("%s names no directory", excerpt(p))
			}
			if _, err := Detect(ctx, confine(subFS{f.raw, p}), Options{}); err != nil {
				e := where("%s is no app pyship can build: %s", excerpt(p), (&AppError{Dir: p, Err: err}).cause())
				var de *Error
				if errors.As(err, &de) && de.Hint != "" {
					e.Hint = de.Hint
				}
				return e
			}
			f.found[p] = true
			continue
		}
		dirs, err := fs.Glob(f.repo, p)
		if err != nil {
			return readError(p, err)
		}
		matched := false
		for _, dir := range dirs {
			// A file the pattern matches is no app, and a link is not followed.
			if st, err := fs.Lstat(f.raw, dir); err != nil || !st.IsDir() {
				continue
			}
			entries, err := f.repo.ReadDir(dir)
			if err != nil {
				return readError(dir, err)
			}
			app, err := f.isApp(ctx, dir, entries)
			if err != nil {
				return err
			}
			if app {
				f.found[dir], matched = true, true
			}
		}
		if !matched {
			return where("%s matches no directory that holds an app", excerpt(p))
		}
	}
	return nil
}

// AppError is an app under a root that Detect refuses: Err says why, with the file
// relative to Dir.
type AppError struct {
	Dir string
	Err error
}

func (e *AppError) Error() string {
	msg := e.Err.Error()
	var de *Error
	if errors.As(e.Err, &de) {
		c := *de
		c.File = path.Join(e.Dir, de.File)
		msg = c.Error()
	}
	return msg + "\n(" + clip(e.Dir, maxExcerpt) + " holds a dependency file and an entry point, so pyship plan --matrix takes it for an app: fix it, or leave it out with [matrix] exclude = [" + excerpt(e.Dir) + "] in pyship.toml)"
}

func (e *AppError) Unwrap() error { return e.Err }

// cause is the problem without its hint, with the file named from the root.
func (e *AppError) cause() string {
	var de *Error
	if errors.As(e.Err, &de) {
		c := *de
		c.File, c.Hint = path.Join(e.Dir, de.File), ""
		return c.Error()
	}
	return clip(e.Err.Error(), 4096)
}

// subFS is the directory dir of fsys as a file system of its own, so that Detect resolves
// links against it: one that leads out of dir is refused, as building dir refuses it.
type subFS struct {
	fsys fs.FS
	dir  string
}

var _ fs.ReadLinkFS = subFS{}

func (s subFS) full(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return path.Join(s.dir, name), nil
}

func (s subFS) Open(name string) (fs.File, error) {
	full, err := s.full("open", name)
	if err != nil {
		return nil, err
	}
	return s.fsys.Open(full)
}

func (s subFS) Lstat(name string) (fs.FileInfo, error) {
	full, err := s.full("lstat", name)
	if err != nil {
		return nil, err
	}
	return fs.Lstat(s.fsys, full)
}

func (s subFS) ReadLink(name string) (string, error) {
	full, err := s.full("readlink", name)
	if err != nil {
		return "", err
	}
	return fs.ReadLink(s.fsys, full)
}

// nameApps names the apps at paths: each by its directory's name, made valid in an image
// reference; apps whose names collide by their whole paths; the root by "app".
func nameApps(paths []string) ([]App, error) {
	short := map[string]int{}
	for _, p := range paths {
		short[imageName(path.Base(p))]++
	}
	apps := make([]App, len(paths))
	byName := map[string]string{}
	for i, p := range paths {
		n := imageName(path.Base(p))
		if short[n] > 1 {
			n = imageName(p)
		}
		if other, ok := byName[n]; ok {
			return nil, &Error{File: p, Msg: fmt.Sprintf("the apps %s and %s would both be named %q in the matrix", excerpt(other), excerpt(p), n),
				Hint: "rename one of the directories, or leave one out with [matrix] exclude in pyship.toml"}
		}
		byName[n] = p
		apps[i] = App{Path: p, Name: n}
	}
	return apps, nil
}

// maxNameLen bounds an app's name: a registry takes at most 255 characters for the whole
// repository, of which the name is the last part.
const maxNameLen = 63

// imageName makes s valid as a component of an image reference's path: lower case,
// letters and digits joined by ".", "_", "__" or runs of "-"; any other run of characters
// becomes "-". Empty (the root's ".") is "app". A name longer than maxNameLen keeps its
// start and ends in a hash of s, so that it stays unique.
func imageName(s string) string {
	n := cleanName(s)
	if len(n) <= maxNameLen {
		return n
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(n[:maxNameLen-9], "._-") + "-" + hex.EncodeToString(sum[:4])
}

func cleanName(s string) string {
	var b strings.Builder
	sep := ""
	flush := func() {
		if b.Len() == 0 {
			sep = ""
			return
		}
		switch sep {
		case "":
		case ".", "_", "__":
			b.WriteString(sep)
		default:
			b.WriteString("-")
		}
		sep = ""
	}
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			flush()
			b.WriteRune(r)
			continue
		}
		sep += string(r)
	}
	if b.Len() == 0 {
		return "app"
	}
	return b.String()
}
