package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// LockFiles are the lock files pyship installs from, in order of precedence.
var LockFiles = []string{"pylock.toml", "uv.lock", "poetry.lock", "Pipfile.lock"}

// Lock is a lock file translated for pip: every package of the default groups, pinned,
// with its hashes and the marker pip evaluates in the image.
type Lock struct {
	File     string          `json:"file"`
	Format   string          `json:"format"`
	Packages []LockedPackage `json:"packages"`
	// Local are directories (relative to the repository) the lock installs from source,
	// "." for the project itself; they cannot be hash-checked, and are installed after the
	// packages, without their dependencies.
	Local []string `json:"local,omitempty"`
}

// LockedPackage is one pinned package.
type LockedPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// URL is set for a package locked to a direct URL instead of an index.
	URL    string   `json:"url,omitempty"`
	Marker string   `json:"marker,omitempty"`
	Hashes []string `json:"hashes"`
}

// Requirements renders the lock as a pip requirements file for --require-hashes --no-deps.
func (l *Lock) Requirements() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Translated by pyship from %s (%s); every package pinned and hashed.\n", l.File, l.Format)
	for _, p := range l.Packages {
		if p.URL != "" {
			fmt.Fprintf(&b, "%s @ %s", p.Name, p.URL)
		} else {
			fmt.Fprintf(&b, "%s==%s", p.Name, p.Version)
		}
		if p.Marker != "" {
			fmt.Fprintf(&b, " ; %s", p.Marker)
		}
		for _, h := range p.Hashes {
			fmt.Fprintf(&b, " \\\n    --hash=%s", h)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Names returns the locked packages' names.
func (l *Lock) Names() []string {
	set := map[string]bool{}
	for _, p := range l.Packages {
		set[NormalizeName(p.Name)] = true
	}
	return sortedKeys(set)
}

// readLock reads the first lock file present. It reports the others it ignores.
func readLock(fsys fs.FS, proj *project, res *Result) (*Lock, error) {
	var found []string
	for _, f := range LockFiles {
		if exists(fsys, f) {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	if len(found) > 1 {
		res.warnf("%s is installed; %s ignored (pyship takes the first of %s)", found[0], strings.Join(found[1:], " and "), strings.Join(LockFiles, ", "))
	}
	file := found[0]
	data, err := readFile(fsys, file)
	if err != nil {
		return nil, readError(file, err)
	}
	var lock *Lock
	switch file {
	case "pylock.toml":
		lock, err = parsePylock(data)
	case "uv.lock":
		lock, err = parseUVLock(data, proj)
	case "poetry.lock":
		lock, err = parsePoetryLock(data, proj)
	case "Pipfile.lock":
		lock, err = parsePipfileLock(data, proj)
	}
	if err != nil {
		return nil, err
	}
	for _, l := range lock.Local {
		if !insideRepository(l) {
			return nil, &Error{File: file, Msg: fmt.Sprintf("installs from %s, which is outside the repository", excerpt(l)), Hint: outsideHint}
		}
	}
	sort.Slice(lock.Packages, func(i, j int) bool {
		a, b := lock.Packages[i], lock.Packages[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	sort.Strings(lock.Local)
	return lock, nil
}

// vcsError explains why a package from version control cannot be installed as locked.
func vcsError(file, name, url string) error {
	return &Error{File: file, Msg: fmt.Sprintf("package %s is locked to a version-control source (%s)", excerpt(name), excerpt(withoutCredentials(url))),
		Hint: "the slim base image has no git, and pip cannot hash-check a checkout: publish the package to an index, or vendor it into the repository"}
}

// hashList returns "algo:digest" strings from a map of algorithm to digest.
func hashList(m map[string]string) []string {
	var out []string
	for _, algo := range sortedKeys(m) {
		out = append(out, algo+":"+m[algo])
	}
	return out
}

// pylock.toml (PEP 751).

type pylockFile struct {
	URL    string            `toml:"url"`
	Path   string            `toml:"path"`
	Hashes map[string]string `toml:"hashes"`
}

type pylockDoc struct {
	LockVersion   string   `toml:"lock-version"`
	DefaultGroups []string `toml:"default-groups"`
	Packages      []struct {
		Name      string                 `toml:"name"`
		Version   string                 `toml:"version"`
		Marker    string                 `toml:"marker"`
		Sdist     *pylockFile            `toml:"sdist"`
		Wheels    []pylockFile           `toml:"wheels"`
		Archive   *pylockFile            `toml:"archive"`
		Directory *struct{ Path string } `toml:"directory"`
		VCS       *struct{ URL string }  `toml:"vcs"`
	} `toml:"packages"`
}

func parsePylock(data []byte) (*Lock, error) {
	var doc pylockDoc
	if _, err := decodeTOML("pylock.toml", data, &doc); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(doc.LockVersion, "1.") {
		return nil, &Error{File: "pylock.toml", Msg: fmt.Sprintf("lock-version %s is not one pyship reads", excerpt(doc.LockVersion)),
			Hint: "pyship reads PEP 751 lock files of version 1.x"}
	}
	groups := map[string]bool{}
	for _, g := range doc.DefaultGroups {
		groups[NormalizeName(g)] = true
	}
	lock := &Lock{File: "pylock.toml", Format: "pylock"}
	for _, p := range doc.Packages {
		marker := ""
		if p.Marker != "" {
			m, err := parseMarker(p.Marker)
			if err != nil {
				return nil, &Error{File: "pylock.toml", Msg: fmt.Sprintf("package %s: %v", excerpt(p.Name), err), Hint: "regenerate the lock file"}
			}
			switch d := decide(m, nil, groups).(type) {
			case markerConst:
				if !d {
					continue
				}
			default:
				marker = d.String()
			}
		}
		switch {
		case p.VCS != nil:
			return nil, vcsError("pylock.toml", p.Name, p.VCS.URL)
		case p.Directory != nil:
			lock.Local = append(lock.Local, path.Clean(p.Directory.Path))
			continue
		}
		lp := LockedPackage{Name: p.Name, Version: p.Version, Marker: marker}
		files := p.Wheels
		if p.Sdist != nil {
			files = append(files, *p.Sdist)
		}
		if p.Archive != nil {
			lp.URL = p.Archive.URL
			files = append(files, *p.Archive)
		}
		for _, f := range files {
			lp.Hashes = append(lp.Hashes, hashList(f.Hashes)...)
		}
		if len(lp.Hashes) == 0 {
			return nil, &Error{File: "pylock.toml", Msg: fmt.Sprintf("package %s %s has no hashes", p.Name, p.Version), Hint: "regenerate the lock file with hashes"}
		}
		lock.Packages = append(lock.Packages, lp)
	}
	return lock, nil
}

// uv.lock.

type uvDep struct {
	Name    string   `toml:"name"`
	Version string   `toml:"version"`
	Marker  string   `toml:"marker"`
	Extra   []string `toml:"extra"`
}

type uvFile struct {
	URL  string `toml:"url"`
	Hash string `toml:"hash"`
}

type uvPackage struct {
	Name                 string             `toml:"name"`
	Version              string             `toml:"version"`
	Source               map[string]string  `toml:"source"`
	Dependencies         []uvDep            `toml:"dependencies"`
	OptionalDependencies map[string][]uvDep `toml:"optional-dependencies"`
	Sdist                *uvFile            `toml:"sdist"`
	Wheels               []uvFile           `toml:"wheels"`
	Metadata             struct {
		RequiresDist []struct {
			Name      string   `toml:"name"`
			Specifier string   `toml:"specifier"`
			Marker    string   `toml:"marker"`
			Extra     []string `toml:"extra"`
		} `toml:"requires-dist"`
	} `toml:"metadata"`
}

func parseUVLock(data []byte, proj *project) (*Lock, error) {
	var doc struct {
		Version int         `toml:"version"`
		Package []uvPackage `toml:"package"`
	}
	if _, err := decodeTOML("uv.lock", data, &doc); err != nil {
		return nil, err
	}
	if doc.Version != 1 {
		return nil, &Error{File: "uv.lock", Msg: fmt.Sprintf("lock version %d is not one pyship reads", doc.Version), Hint: "pyship reads uv.lock version 1"}
	}
	byName := map[string][]int{}
	root := -1
	for i, p := range doc.Package {
		name := NormalizeName(p.Name)
		byName[name] = append(byName[name], i)
		if (p.Source["editable"] == "." || p.Source["virtual"] == ".") && (proj.name == "" || NormalizeName(proj.name) == name) {
			root = i
		}
	}
	if root < 0 {
		return nil, &Error{File: "uv.lock", Msg: "the lock has no package for the project in this directory", Hint: "run `uv lock` here"}
	}
	if err := uvFresh(doc.Package[root], proj); err != nil {
		return nil, err
	}
	find := func(d uvDep) (int, error) {
		cands := byName[NormalizeName(d.Name)]
		for _, i := range cands {
			if d.Version == "" || doc.Package[i].Version == d.Version {
				return i, nil
			}
		}
		return 0, &Error{File: "uv.lock", Msg: fmt.Sprintf("a dependency on %s %s that the lock does not hold", d.Name, d.Version), Hint: "run `uv lock`"}
	}
	conds, err := reach(len(doc.Package), root, func(i int) ([]edge, error) {
		p := doc.Package[i]
		deps := append([]uvDep(nil), p.Dependencies...)
		var edges []edge
		for _, d := range deps {
			j, err := find(d)
			if err != nil {
				return nil, err
			}
			edges = append(edges, edge{to: j, marker: d.Marker})
			for _, extra := range d.Extra {
				for _, od := range doc.Package[j].OptionalDependencies[extra] {
					k, err := find(od)
					if err != nil {
						return nil, err
					}
					edges = append(edges, edge{to: k, marker: od.Marker})
				}
			}
		}
		return edges, nil
	})
	var de *Error
	switch {
	case errors.As(err, &de):
		return nil, err
	case err != nil:
		return nil, &Error{File: "uv.lock", Msg: err.Error(), Hint: "run `uv lock`"}
	}
	lock := &Lock{File: "uv.lock", Format: "uv"}
	if doc.Package[root].Source["editable"] != "" {
		// The project itself, installed after its dependencies.
		lock.Local = append(lock.Local, ".")
	}
	for i, cond := range conds {
		if i == root || cond == nil {
			continue
		}
		p := doc.Package[i]
		switch {
		case p.Source["git"] != "":
			return nil, vcsError("uv.lock", p.Name, p.Source["git"])
		case p.Source["editable"] != "" || p.Source["directory"] != "" || p.Source["path"] != "" || p.Source["virtual"] != "":
			for _, k := range []string{"editable", "directory", "path", "virtual"} {
				if v := p.Source[k]; v != "" {
					lock.Local = append(lock.Local, path.Clean(v))
				}
			}
			continue
		}
		lp := LockedPackage{Name: p.Name, Version: p.Version, Marker: markerText(cond)}
		if u := p.Source["url"]; u != "" {
			lp.URL = u
		}
		if p.Sdist != nil && p.Sdist.Hash != "" {
			lp.Hashes = append(lp.Hashes, p.Sdist.Hash)
		}
		for _, w := range p.Wheels {
			if w.Hash != "" {
				lp.Hashes = append(lp.Hashes, w.Hash)
			}
		}
		if len(lp.Hashes) == 0 {
			return nil, &Error{File: "uv.lock", Msg: fmt.Sprintf("package %s %s has no hashes", p.Name, p.Version), Hint: "run `uv lock`"}
		}
		lock.Packages = append(lock.Packages, lp)
	}
	return lock, nil
}

// uvFresh checks that the lock was made from the current pyproject.toml: uv records the
// project's requirements in the lock, so they must be the same.
func uvFresh(root uvPackage, proj *project) error {
	if !proj.pep621 {
		return nil
	}
	locked := map[string]string{}
	for _, r := range root.Metadata.RequiresDist {
		locked[NormalizeName(r.Name)] = canonicalSpec(r.Specifier)
	}
	declared := map[string]string{}
	for _, d := range proj.requirements {
		declared[d.name] = canonicalSpec(d.spec)
	}
	for _, name := range sortedKeys(declared) {
		spec, ok := locked[name]
		switch {
		case !ok:
			return staleLock("uv.lock", proj, name, fmt.Sprintf("pyproject.toml requires %s, which the lock does not know", name), "uv lock")
		case spec != declared[name]:
			return staleLock("uv.lock", proj, name, fmt.Sprintf("pyproject.toml requires %s%s, the lock was made for %s%s", name, declared[name], name, spec), "uv lock")
		}
	}
	for _, name := range sortedKeys(locked) {
		if _, ok := declared[name]; !ok {
			return staleLock("uv.lock", proj, "", fmt.Sprintf("the lock still requires %s, which pyproject.toml no longer lists", name), "uv lock")
		}
	}
	return nil
}

func staleLock(file string, proj *project, name, msg, fix string) error {
	e := &Error{File: file, Msg: "out of date with pyproject.toml: " + msg, Hint: fmt.Sprintf("run `%s` and commit %s", fix, file)}
	if line := proj.requirementLine(name); line > 0 {
		e.Msg += fmt.Sprintf(" (pyproject.toml:%d)", line)
	}
	return e
}

// canonicalSpec normalises a version specifier for comparison: no spaces, clauses sorted.
func canonicalSpec(s string) string {
	clauses := strings.Split(strings.ReplaceAll(s, " ", ""), ",")
	sort.Strings(clauses)
	return strings.Trim(strings.Join(clauses, ","), ",")
}

// poetry.lock.

type poetryPackage struct {
	Name     string   `toml:"name"`
	Version  string   `toml:"version"`
	Category string   `toml:"category"`
	Groups   []string `toml:"groups"`
	Optional bool     `toml:"optional"`
	Markers  any      `toml:"markers"`
	Files    []struct {
		File string `toml:"file"`
		Hash string `toml:"hash"`
	} `toml:"files"`
	Source *struct {
		Type string `toml:"type"`
		URL  string `toml:"url"`
	} `toml:"source"`
}

func parsePoetryLock(data []byte, proj *project) (*Lock, error) {
	var doc struct {
		Package  []poetryPackage `toml:"package"`
		Metadata struct {
			LockVersion string `toml:"lock-version"`
		} `toml:"metadata"`
	}
	if _, err := decodeTOML("poetry.lock", data, &doc); err != nil {
		return nil, err
	}
	lock := &Lock{File: "poetry.lock", Format: "poetry"}
	if proj.installable() {
		// The project itself, installed after its dependencies.
		lock.Local = append(lock.Local, ".")
	}
	lockedVersions := map[string]string{}
	for _, p := range doc.Package {
		main := p.Category == "main"
		for _, g := range p.Groups {
			main = main || g == "main"
		}
		if !main || p.Optional {
			continue
		}
		lockedVersions[NormalizeName(p.Name)] = p.Version
		if p.Source != nil {
			switch p.Source.Type {
			case "git":
				return nil, vcsError("poetry.lock", p.Name, p.Source.URL)
			case "directory", "file":
				lock.Local = append(lock.Local, path.Clean(p.Source.URL))
				continue
			case "url":
				// The URL below, with its hash.
			}
		}
		lp := LockedPackage{Name: p.Name, Version: p.Version}
		switch m := p.Markers.(type) {
		case string:
			lp.Marker = m
		case map[string]any:
			if s, ok := m["main"].(string); ok {
				lp.Marker = s
			}
		}
		if p.Source != nil && p.Source.Type == "url" {
			lp.URL = p.Source.URL
		}
		for _, f := range p.Files {
			lp.Hashes = append(lp.Hashes, f.Hash)
		}
		if len(lp.Hashes) == 0 {
			return nil, &Error{File: "poetry.lock", Msg: fmt.Sprintf("package %s %s has no file hashes", p.Name, p.Version), Hint: "run `poetry lock`"}
		}
		lock.Packages = append(lock.Packages, lp)
	}
	// Out of date: a declared dependency missing from the lock, or locked at a version its
	// declared range excludes.
	for _, d := range proj.requirements {
		v, ok := lockedVersions[d.name]
		if !ok {
			return nil, staleLock("poetry.lock", proj, d.name, fmt.Sprintf("pyproject.toml requires %s, which the lock does not hold", d.name), "poetry lock")
		}
		if spec, err := ParseSpecifier(d.spec); err == nil && d.spec != "" && !spec.AllowsVersion(v) {
			return nil, staleLock("poetry.lock", proj, d.name, fmt.Sprintf("pyproject.toml requires %s %s, the lock holds %s", d.name, d.spec, v), "poetry lock")
		}
	}
	return lock, nil
}

// Pipfile.lock.

func parsePipfileLock(data []byte, proj *project) (*Lock, error) {
	var doc struct {
		Default map[string]struct {
			Version  string   `json:"version"`
			Hashes   []string `json:"hashes"`
			Markers  string   `json:"markers"`
			Path     string   `json:"path"`
			Git      string   `json:"git"`
			File     string   `json:"file"`
			Editable bool     `json:"editable"`
		} `json:"default"`
	}
	if err := decodeJSON("Pipfile.lock", data, &doc, "run `pipenv lock` to regenerate it"); err != nil {
		return nil, err
	}
	lock := &Lock{File: "Pipfile.lock", Format: "pipenv"}
	for _, name := range sortedKeys(doc.Default) {
		p := doc.Default[name]
		switch {
		case p.Git != "":
			return nil, vcsError("Pipfile.lock", name, p.Git)
		case p.Path != "":
			lock.Local = append(lock.Local, path.Clean(p.Path))
			continue
		}
		version := strings.TrimPrefix(p.Version, "==")
		if version == "" || len(p.Hashes) == 0 {
			return nil, &Error{File: "Pipfile.lock", Msg: fmt.Sprintf("package %s has no pinned version and hashes", name), Hint: "run `pipenv lock`"}
		}
		lp := LockedPackage{Name: name, Version: version, Marker: p.Markers, Hashes: p.Hashes}
		if p.File != "" {
			lp.URL = p.File
		}
		lock.Packages = append(lock.Packages, lp)
	}
	if proj.pipfile != nil {
		for _, name := range proj.pipfile.packages {
			if _, ok := doc.Default[name]; !ok {
				if _, ok := doc.Default[strings.ReplaceAll(name, "-", "_")]; !ok {
					return nil, &Error{File: "Pipfile.lock", Msg: fmt.Sprintf("out of date with Pipfile: Pipfile lists %s, which the lock does not hold", name),
						Hint: "run `pipenv lock` and commit Pipfile.lock"}
				}
			}
		}
	}
	return lock, nil
}

// Reachability with markers, for locks that record a graph (uv.lock).

type edge struct {
	to     int
	marker string
}

// reach walks the dependency graph from root and returns, for every package, the
// condition under which it is needed (nil: not needed; markerConst(true): always).
func reach(n, root int, edges func(int) ([]edge, error)) ([]marker, error) {
	conds := make([]marker, n)
	conds[root] = markerConst(true)
	queue := []int{root}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 50*n+100 {
			break
		}
		i := queue[0]
		queue = queue[1:]
		out, err := edges(i)
		if err != nil {
			return nil, err
		}
		for _, e := range out {
			cond := conds[i]
			if e.marker != "" {
				m, err := parseMarker(e.marker)
				if err != nil {
					return nil, err
				}
				cond = and(cond, m)
			}
			next := or(conds[e.to], cond)
			if conds[e.to] == nil || next.String() != conds[e.to].String() {
				conds[e.to] = next
				queue = append(queue, e.to)
			}
		}
	}
	return conds, nil
}

// maxMarker bounds a combined condition; past it the package is simply installed.
const maxMarker = 1000

func and(a, b marker) marker {
	if c, ok := a.(markerConst); ok && bool(c) {
		return b
	}
	return markerAnd{a, b}
}

func or(a, b marker) marker {
	switch {
	case a == nil:
		return b
	case a.String() == b.String():
		return a
	}
	if c, ok := a.(markerConst); ok && bool(c) {
		return a
	}
	if c, ok := b.(markerConst); ok && bool(c) {
		return b
	}
	m := markerOr{a, b}
	if len(m.String()) > maxMarker {
		return markerConst(true)
	}
	return m
}

func markerText(m marker) string {
	if c, ok := m.(markerConst); ok && bool(c) {
		return ""
	}
	return m.String()
}
