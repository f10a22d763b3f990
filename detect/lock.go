package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// LockFiles are the lock files pyship installs from, in order of precedence.
var LockFiles = []string{"pylock.toml", "uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock"}

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

// Names returns the locked packages' names.
func (l *Lock) Names() []string {
	set := map[string]bool{}
	for _, p := range l.Packages {
		set[NormalizeName(p.Name)] = true
	}
	return slices.Sorted(maps.Keys(set))
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
	case "pdm.lock":
		lock, err = parsePDMLock(data, proj)
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
		if na, nb := NormalizeName(a.Name), NormalizeName(b.Name); na != nb {
			return na < nb
		}
		return a.Version < b.Version
	})
	sort.Strings(lock.Local)
	if len(found) > 1 {
		res.warnf("%s", otherLocks(fsys, proj, lock, found[1:]))
	}
	return lock, nil
}

// otherLocks explains which lock is installed when there are several, and where the
// ignored ones disagree with it: two locks that disagree are a build that depends on which
// tool ran last.
func otherLocks(fsys fs.FS, proj *project, used *Lock, others []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is installed; %s ignored: pyship takes the first of %s", used.File, strings.Join(others, " and "), strings.Join(LockFiles, ", "))
	disagree := false
	for _, file := range others {
		var other *Lock
		data, err := readFile(fsys, file)
		if err == nil {
			switch file {
			case "uv.lock":
				other, err = parseUVLock(data, proj)
			case "poetry.lock":
				other, err = parsePoetryLock(data, proj)
			case "pdm.lock":
				other, err = parsePDMLock(data, proj)
			case "Pipfile.lock":
				other, err = parsePipfileLock(data, proj)
			}
		}
		if err != nil {
			msg := err.Error()
			var de *Error
			if errors.As(err, &de) {
				msg = de.Msg
			}
			fmt.Fprintf(&b, "; %s cannot be compared with it: %s", file, clip(msg, 200))
			continue
		}
		if diffs := lockDiff(used, other); len(diffs) > 0 {
			disagree = true
			fmt.Fprintf(&b, "; %s disagrees: %s", file, diffs)
		} else {
			fmt.Fprintf(&b, "; %s locks the same versions", file)
		}
	}
	if disagree {
		b.WriteString(" (delete the lock you no longer use)")
	}
	return b.String()
}

// lockVersions maps each locked package's normalised name to its versions.
func lockVersions(l *Lock) map[string][]string {
	out := map[string][]string{}
	for _, p := range l.Packages {
		n := NormalizeName(p.Name)
		if !slices.Contains(out[n], p.Version) {
			out[n] = append(out[n], p.Version)
			sort.Strings(out[n])
		}
	}
	return out
}

// maxDiffs bounds the differences a warning lists.
const maxDiffs = 5

// lockDiff lists, by package name, where lock b differs from lock a.
func lockDiff(a, b *Lock) string {
	va, vb := lockVersions(a), lockVersions(b)
	names := map[string]bool{}
	for n := range va {
		names[n] = true
	}
	for n := range vb {
		names[n] = true
	}
	var diffs []string
	for _, n := range slices.Sorted(maps.Keys(names)) {
		x, y := strings.Join(va[n], ", "), strings.Join(vb[n], ", ")
		switch {
		case x == y:
		case y == "":
			diffs = append(diffs, fmt.Sprintf("%s only in %s", n, a.File))
		case x == "":
			diffs = append(diffs, fmt.Sprintf("%s only in %s", n, b.File))
		default:
			diffs = append(diffs, fmt.Sprintf("%s %s there, %s here", n, y, x))
		}
	}
	return joinDiffs(diffs)
}

func joinDiffs(diffs []string) string {
	if len(diffs) > maxDiffs {
		return strings.Join(diffs[:maxDiffs], ", ") + fmt.Sprintf(" and %d more", len(diffs)-maxDiffs)
	}
	return strings.Join(diffs, ", ")
}

// requirementsNote is the warning for a requirements.txt next to a lock: the lock is
// installed, and where requirements.txt pins other versions or lists other packages.
func requirementsNote(fsys fs.FS, lock *Lock) string {
	note := fmt.Sprintf("%s is installed; requirements.txt is ignored (a lock pins every package with its hashes)", lock.File)
	data, err := readFile(fsys, "requirements.txt")
	if err != nil {
		return note
	}
	rf, err := ParseRequirements("requirements.txt", data)
	if err != nil {
		return note
	}
	held := lockVersions(lock)
	byName := map[string]string{}
	for _, r := range rf.Requirements {
		if r.Kind != "name" || r.Name == "" {
			continue
		}
		versions, ok := held[r.Name]
		pin := ""
		if p, ok := requirementPin("requirements.txt", r); ok {
			pin = p.Version
		}
		switch {
		case !ok:
			byName[r.Name] = fmt.Sprintf("%s is not in %s", r.Name, lock.File)
		case pin != "" && !slices.Contains(versions, pin):
			byName[r.Name] = fmt.Sprintf("%s %s there, %s here", r.Name, pin, strings.Join(versions, ", "))
		}
	}
	if len(byName) == 0 {
		return note
	}
	var diffs []string
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		diffs = append(diffs, byName[n])
	}
	return note + "; requirements.txt disagrees: " + joinDiffs(diffs) + " (delete requirements.txt, or export it from the lock)"
}

// vcsError explains why a package from version control cannot be installed as locked.
func vcsError(file, name, url string) error {
	return &Error{File: file, Msg: fmt.Sprintf("package %s is locked to a version-control source (%s)", excerpt(name), excerpt(WithoutCredentials(url))),
		Hint: "the slim base image has no git, and pip cannot hash-check a checkout: publish the package to an index, or vendor it into the repository"}
}

// hashList returns "algo:digest" strings from a map of algorithm to digest.
func hashList(m map[string]string) []string {
	var out []string
	for _, algo := range slices.Sorted(maps.Keys(m)) {
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
	pkgs := doc.Package
	root := uvRoot(pkgs, proj)
	if root < 0 {
		return nil, &Error{File: "uv.lock", Msg: "the lock has no package for the project in this directory", Hint: "run `uv lock` here"}
	}
	if err := uvFresh(pkgs[root], proj); err != nil {
		return nil, err
	}
	conds, err := uvReach(pkgs, root)
	if err != nil {
		return nil, err
	}
	lock := &Lock{File: "uv.lock", Format: "uv"}
	if pkgs[root].Source["editable"] != "" {
		// The project itself, installed after its dependencies.
		lock.Local = append(lock.Local, ".")
	}
	for i, cond := range conds {
		if i == root || cond == nil {
			continue
		}
		p := pkgs[i]
		if p.Source["git"] != "" {
			return nil, vcsError("uv.lock", p.Name, p.Source["git"])
		}
		if local := uvLocal(p); len(local) > 0 {
			lock.Local = append(lock.Local, local...)
			continue
		}
		lp, err := uvLocked(p, cond)
		if err != nil {
			return nil, err
		}
		lock.Packages = append(lock.Packages, lp)
	}
	return lock, nil
}

// uvRoot finds the package that is the project in this directory, -1 when none is.
func uvRoot(pkgs []uvPackage, proj *project) int {
	root := -1
	for i, p := range pkgs {
		if (p.Source["editable"] == "." || p.Source["virtual"] == ".") && (proj.name == "" || NormalizeName(proj.name) == NormalizeName(p.Name)) {
			root = i
		}
	}
	return root
}

// uvReach follows the dependencies (and the extras they ask for) from the root, and
// returns the condition under which each package is installed, nil for those never.
func uvReach(pkgs []uvPackage, root int) ([]marker, error) {
	byName := map[string][]int{}
	for i, p := range pkgs {
		name := NormalizeName(p.Name)
		byName[name] = append(byName[name], i)
	}
	find := func(d uvDep) (int, error) {
		for _, i := range byName[NormalizeName(d.Name)] {
			if d.Version == "" || pkgs[i].Version == d.Version {
				return i, nil
			}
		}
		return 0, &Error{File: "uv.lock", Msg: fmt.Sprintf("a dependency on %s %s that the lock does not hold", d.Name, d.Version), Hint: "run `uv lock`"}
	}
	conds, err := reach(len(pkgs), root, func(i int) ([]edge, error) {
		var edges []edge
		for _, d := range pkgs[i].Dependencies {
			j, err := find(d)
			if err != nil {
				return nil, err
			}
			edges = append(edges, edge{to: j, marker: d.Marker})
			for _, extra := range d.Extra {
				for _, od := range pkgs[j].OptionalDependencies[extra] {
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
	return conds, nil
}

// uvLocal lists the local directories a package installs from, none for one from an
// index or a URL.
func uvLocal(p uvPackage) []string {
	var local []string
	for _, k := range []string{"editable", "directory", "path", "virtual"} {
		if v := p.Source[k]; v != "" {
			local = append(local, path.Clean(v))
		}
	}
	return local
}

// uvLocked pins a package from an index or a URL with every hash the lock has for it.
func uvLocked(p uvPackage, m marker) (LockedPackage, error) {
	lp := LockedPackage{Name: p.Name, Version: p.Version, Marker: markerText(m), URL: p.Source["url"]}
	if p.Sdist != nil && p.Sdist.Hash != "" {
		lp.Hashes = append(lp.Hashes, p.Sdist.Hash)
	}
	for _, w := range p.Wheels {
		if w.Hash != "" {
			lp.Hashes = append(lp.Hashes, w.Hash)
		}
	}
	if len(lp.Hashes) == 0 {
		return lp, &Error{File: "uv.lock", Msg: fmt.Sprintf("package %s %s has no hashes", p.Name, p.Version), Hint: "run `uv lock`"}
	}
	return lp, nil
}

// extraMarkerRe finds a marker that names an extra.
var extraMarkerRe = regexp.MustCompile(`\bextra\s*==`)

// uvFresh checks that the lock was made from the current pyproject.toml: uv records the
// project's requirements in the lock, so they must be the same.
func uvFresh(root uvPackage, proj *project) error {
	if !proj.pep621 {
		return nil
	}
	locked := map[string]string{}
	for _, r := range root.Metadata.RequiresDist {
		if extraMarkerRe.MatchString(r.Marker) {
			// An optional dependency ([project.optional-dependencies]), which the
			// project's requirements here leave out, as the install does.
			continue
		}
		locked[NormalizeName(r.Name)] = canonicalSpec(r.Specifier)
	}
	declared := map[string]string{}
	for _, d := range proj.requirements {
		declared[d.name] = canonicalSpec(d.spec)
	}
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		spec, ok := locked[name]
		switch {
		case !ok:
			return staleLock("uv.lock", proj, name, fmt.Sprintf("pyproject.toml requires %s, which the lock does not know", name), "uv lock")
		case spec != declared[name]:
			return staleLock("uv.lock", proj, name, fmt.Sprintf("pyproject.toml requires %s%s, the lock was made for %s%s", name, declared[name], name, spec), "uv lock")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(locked)) {
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

type poetryFile struct {
	File string `toml:"file"`
	Hash string `toml:"hash"`
}

type poetryPackage struct {
	Name     string   `toml:"name"`
	Version  string   `toml:"version"`
	Category string   `toml:"category"`
	Groups   []string `toml:"groups"`
	Optional bool     `toml:"optional"`
	Markers  any      `toml:"markers"`
	// Files is absent before lock-version 2.0: the hashes are in [metadata.files].
	Files []poetryFile `toml:"files"`
	// Dependencies map a name to a version string, a table (version, markers, optional,
	// extras) or an array of those.
	Dependencies map[string]any      `toml:"dependencies"`
	Extras       map[string][]string `toml:"extras"`
	Source       *struct {
		Type string `toml:"type"`
		URL  string `toml:"url"`
	} `toml:"source"`
}

// How a poetry.lock says which packages the main group needs.
const (
	poetryGroups   = "groups"   // Poetry 2: groups = ["main", ...] and markers per group
	poetryCategory = "category" // Poetry 1.0 to 1.4: category = "main" or "dev"
	poetryGraph    = "graph"    // Poetry 1.5 to 1.8: neither; only the dependency graph tells
)

func parsePoetryLock(data []byte, proj *project) (*Lock, error) {
	var doc struct {
		Package  []poetryPackage `toml:"package"`
		Metadata struct {
			LockVersion string `toml:"lock-version"`
			// lock-version 1.x keeps the files and hashes here, by package name.
			Files map[string][]poetryFile `toml:"files"`
			// Before Poetry 1.0: bare sha256 digests, by package name.
			Hashes map[string][]string `toml:"hashes"`
		} `toml:"metadata"`
	}
	if _, err := decodeTOML("poetry.lock", data, &doc); err != nil {
		return nil, err
	}
	lockVersion := doc.Metadata.LockVersion
	if lockVersion == "" {
		lockVersion = "1.0" // what Poetry assumes of a lock without one
	}
	if major, _, _ := strings.Cut(lockVersion, "."); major != "1" && major != "2" {
		return nil, &Error{File: "poetry.lock", Msg: fmt.Sprintf("lock-version %s is not one pyship reads", excerpt(lockVersion)),
			Hint: "pyship reads poetry.lock versions 1.x and 2.x (Poetry 1.0 to 2.x); run `poetry lock` with one of those"}
	}
	mode := poetryGraph
	for _, p := range doc.Package {
		switch {
		case p.Groups != nil:
			mode = poetryGroups
		case p.Category != "" && mode == poetryGraph:
			mode = poetryCategory
		}
	}
	roots, err := projectRoots(proj, "poetry.lock")
	if err != nil {
		return nil, err
	}
	if mode == poetryGraph && roots == nil {
		return nil, &Error{File: "poetry.lock", Msg: "the lock says neither the group nor the category of its packages, and there is no pyproject.toml with the project's dependencies to find the main ones from",
			Hint: "commit pyproject.toml next to poetry.lock, or run `poetry lock` with Poetry 2"}
	}

	g := newLockGraph("poetry.lock", "poetry lock", len(doc.Package))
	deps := make([][]lockDep, len(doc.Package))
	for i, p := range doc.Package {
		g.add(i, NormalizeName(p.Name), p.Version)
		for _, name := range slices.Sorted(maps.Keys(p.Dependencies)) {
			deps[i] = append(deps[i], poetryDeps(name, p.Dependencies[name])...)
		}
		for _, extra := range slices.Sorted(maps.Keys(p.Extras)) {
			g.addExtra(i, NormalizeName(extra))
		}
	}
	g.deps = func(i int, extra string) []lockDep {
		if extra == "" {
			var out []lockDep
			for _, d := range deps[i] {
				if !d.optional {
					out = append(out, d)
				}
			}
			return out
		}
		// An extra turns on the optional dependencies it lists in [package.extras].
		listed := map[string]bool{}
		for k, reqs := range doc.Package[i].Extras {
			if NormalizeName(k) != extra {
				continue
			}
			for _, r := range reqs {
				if d, ok := parsePEP508(r); ok {
					listed[d.name] = true
				}
			}
		}
		var out []lockDep
		for _, d := range deps[i] {
			if d.optional && (listed[d.name] || mentionsExtra(d.marker, extra)) {
				out = append(out, d)
			}
		}
		return out
	}
	// The graph gives every package the condition it is needed under: the whole answer
	// for a lock that records no groups, and the markers for one that records categories
	// (Poetry 1 wrote no markers per package; pip must not install pywin32 on Linux).
	var conds []marker
	if roots != nil && mode != poetryGroups {
		if conds, err = g.walk(roots, proj); err != nil {
			return nil, err
		}
	}

	lock := &Lock{File: "poetry.lock", Format: "poetry"}
	if proj.installable() && proj.noPackage == "" {
		// The project itself, installed after its dependencies.
		lock.Local = append(lock.Local, ".")
	}
	held := map[string][]string{}
	for i, p := range doc.Package {
		var mark string
		switch mode {
		case poetryGroups:
			if !slices.Contains(p.Groups, "main") || p.Optional {
				continue
			}
			switch m := p.Markers.(type) {
			case string:
				mark = m
			case map[string]any:
				mark, _ = m["main"].(string)
			}
		case poetryCategory:
			if p.Category != "main" || p.Optional {
				continue
			}
			if conds != nil && conds[i] != nil {
				mark = markerText(conds[i])
			}
		case poetryGraph:
			if conds[i] == nil {
				continue
			}
			mark = markerText(conds[i])
		}
		name := NormalizeName(p.Name)
		held[name] = append(held[name], p.Version)
		if p.Source != nil {
			switch p.Source.Type {
			case "git":
				return nil, vcsError("poetry.lock", p.Name, p.Source.URL)
			case "directory", "file":
				lock.Local = append(lock.Local, path.Clean(p.Source.URL))
				continue
			}
		}
		lp := LockedPackage{Name: p.Name, Version: p.Version, Marker: mark}
		if p.Source != nil && p.Source.Type == "url" {
			lp.URL = p.Source.URL
		}
		files := p.Files
		if files == nil {
			files = byPackageName(doc.Metadata.Files, p.Name)
		}
		for _, f := range files {
			if f.Hash != "" {
				lp.Hashes = append(lp.Hashes, f.Hash)
			}
		}
		if len(lp.Hashes) == 0 {
			for _, h := range byPackageName(doc.Metadata.Hashes, p.Name) {
				if !strings.Contains(h, ":") {
					h = "sha256:" + h
				}
				lp.Hashes = append(lp.Hashes, h)
			}
		}
		if len(lp.Hashes) == 0 {
			return nil, &Error{File: "poetry.lock", Msg: fmt.Sprintf("package %s %s has no file hashes", clip(p.Name, maxExcerpt), clip(p.Version, maxExcerpt)), Hint: "run `poetry lock`"}
		}
		lock.Packages = append(lock.Packages, lp)
	}
	if err := checkRoots("poetry.lock", "poetry lock", proj, roots, held); err != nil {
		return nil, err
	}
	return lock, nil
}

// byPackageName finds a package's entry in a table keyed by package name, as written or
// normalised.
func byPackageName[V any](m map[string][]V, name string) []V {
	if v, ok := m[name]; ok {
		return v
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if NormalizeName(k) == NormalizeName(name) {
			return m[k]
		}
	}
	return nil
}

// poetryDeps reads one entry of a Poetry dependency table: a version string, a table, or
// an array of tables (one per marker).
func poetryDeps(name string, v any) []lockDep {
	switch v := v.(type) {
	case string:
		return []lockDep{{name: NormalizeName(name), spec: v}}
	case map[string]any:
		d := lockDep{name: NormalizeName(name)}
		d.spec, _ = v["version"].(string)
		d.marker, _ = v["markers"].(string)
		if py, ok := v["python"].(string); ok {
			d.marker = andMarkers(d.marker, pythonMarker(py))
		}
		d.optional, _ = v["optional"].(bool)
		if xs, ok := v["extras"].([]any); ok {
			for _, x := range xs {
				if s, ok := x.(string); ok {
					d.extras = append(d.extras, NormalizeName(s))
				}
			}
		}
		for _, k := range []string{"git", "path", "url", "file"} {
			if s, ok := v[k].(string); ok {
				d.url = s
			}
		}
		return []lockDep{d}
	case []any:
		var out []lockDep
		for _, e := range v {
			switch e.(type) {
			case string, map[string]any:
				out = append(out, poetryDeps(name, e)...)
			}
		}
		return out
	}
	return nil
}

// pythonMarker turns a Poetry python constraint ("^3.8", ">=3.7,<3.11", "~3.9 || ^3.11")
// into a PEP 508 marker for pip; "" when it allows every version, or cannot be read (the
// dependency is then installed on every Python).
func pythonMarker(constraint string) string {
	var alts []string
	for _, alt := range strings.Split(constraint, "||") {
		spec, err := ParseSpecifier(strings.TrimSpace(alt))
		if err != nil {
			return ""
		}
		var clauses []string
		if lo := spec.allowed.lo; lo != anyVersion.lo {
			clauses = append(clauses, fmt.Sprintf(`python_full_version >= "%d.%d.%d"`, lo[0], lo[1], lo[2]))
		}
		if hi := spec.allowed.hi; hi != anyVersion.hi {
			clauses = append(clauses, fmt.Sprintf(`python_full_version < "%d.%d.%d"`, hi[0], hi[1], hi[2]))
		}
		var excluded []string
		for m := range spec.excluded {
			excluded = append(excluded, fmt.Sprintf(`python_version != "%d.%d"`, m[0], m[1]))
		}
		sort.Strings(excluded)
		clauses = append(clauses, excluded...)
		if len(clauses) == 0 {
			return ""
		}
		alts = append(alts, strings.Join(clauses, " and "))
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return "(" + strings.Join(alts, ") or (") + ")"
}

func andMarkers(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + ") and (" + b + ")"
}

// mentionsExtra reports whether a marker holds only when extra is selected.
func mentionsExtra(text, extra string) bool {
	m, err := parseMarker(text)
	if err != nil || text == "" {
		return false
	}
	without, with := decide(m, nil, nil), decide(m, map[string]bool{extra: true}, nil)
	return without.String() == "false" && with.String() != "false"
}

// pdm.lock.

type pdmFile struct {
	File string `toml:"file"`
	URL  string `toml:"url"`
	Hash string `toml:"hash"`
}

type pdmPackage struct {
	Name    string `toml:"name"`
	Version string `toml:"version"`
	// Extras is set on the entry PDM writes for a package installed with extras: its
	// dependencies are the package itself and what the extras add.
	Extras       []string  `toml:"extras"`
	Editable     bool      `toml:"editable"`
	Path         string    `toml:"path"`
	URL          string    `toml:"url"`
	Git          string    `toml:"git"`
	Hg           string    `toml:"hg"`
	Svn          string    `toml:"svn"`
	Bzr          string    `toml:"bzr"`
	Dependencies []string  `toml:"dependencies"`
	Groups       []string  `toml:"groups"`
	Marker       string    `toml:"marker"`
	Files        []pdmFile `toml:"files"`
}

// pdmKey names a PDM lock entry: the name, and its extras as PDM writes them in brackets.
func pdmKey(name string, extras []string) string {
	key := NormalizeName(name)
	if len(extras) == 0 {
		return key
	}
	norm := make([]string, len(extras))
	for i, x := range extras {
		norm[i] = NormalizeName(x)
	}
	sort.Strings(norm)
	return key + "[" + strings.Join(norm, ",") + "]"
}

func parsePDMLock(data []byte, proj *project) (*Lock, error) {
	// The version first: an older layout may not decode into the newer one.
	var head struct {
		Metadata struct {
			LockVersion string   `toml:"lock_version"`
			Groups      []string `toml:"groups"`
		} `toml:"metadata"`
	}
	if _, err := decodeTOML("pdm.lock", data, &head); err != nil {
		return nil, err
	}
	if major, _, _ := strings.Cut(head.Metadata.LockVersion, "."); major != "3" && major != "4" {
		return nil, &Error{File: "pdm.lock", Msg: fmt.Sprintf("lock_version %s is not one pyship reads", excerpt(head.Metadata.LockVersion)),
			Hint: "pyship reads pdm.lock versions 3.x and 4.x (PDM 2); run `pdm lock` with PDM 2"}
	}
	if len(head.Metadata.Groups) > 0 && !slices.Contains(head.Metadata.Groups, "default") {
		return nil, &Error{File: "pdm.lock", Msg: fmt.Sprintf("the lock holds the groups %s but not default, the project's dependencies", excerpt(strings.Join(head.Metadata.Groups, ", "))),
			Hint: "run `pdm lock` without --no-default, and commit pdm.lock"}
	}
	var doc struct {
		Metadata struct {
			// Before lock_version 4.x the files are here, keyed "name version".
			Files map[string][]pdmFile `toml:"files"`
		} `toml:"metadata"`
		Package []pdmPackage `toml:"package"`
	}
	if _, err := decodeTOML("pdm.lock", data, &doc); err != nil {
		return nil, err
	}
	grouped := false
	for _, p := range doc.Package {
		grouped = grouped || p.Groups != nil
	}
	roots, err := projectRoots(proj, "pdm.lock")
	if err != nil {
		return nil, err
	}
	var conds []marker
	if !grouped {
		// Locked without the inherit_metadata strategy: the default group is what the
		// project's dependencies reach.
		if roots == nil {
			return nil, &Error{File: "pdm.lock", Msg: "the lock does not say the groups of its packages, and there is no pyproject.toml with the project's dependencies to find the default ones from",
				Hint: "commit pyproject.toml next to pdm.lock, or run `pdm lock --strategy inherit_metadata`"}
		}
		g := newLockGraph("pdm.lock", "pdm lock", len(doc.Package))
		for i, p := range doc.Package {
			g.add(i, pdmKey(p.Name, p.Extras), p.Version)
		}
		g.deps = func(i int, extra string) []lockDep {
			var out []lockDep
			for _, s := range doc.Package[i].Dependencies {
				if d, ok := parsePEP508(s); ok {
					// PDM writes a separate entry per set of extras, named with them.
					d.name, d.extras = pdmKey(d.name, d.extras), nil
					out = append(out, d)
				}
			}
			return out
		}
		keyed := make([]lockDep, len(roots))
		for i, r := range roots {
			keyed[i] = r
			keyed[i].name, keyed[i].extras = pdmKey(r.name, r.extras), nil
		}
		if conds, err = g.walk(keyed, proj); err != nil {
			return nil, err
		}
	}

	lock := &Lock{File: "pdm.lock", Format: "pdm"}
	if pdmInstallsProject(proj) && proj.noPackage == "" {
		lock.Local = append(lock.Local, ".")
	}
	// One package may have several entries (one per set of extras): install it once,
	// under the union of their conditions.
	type entry struct {
		pkg  LockedPackage
		cond marker
	}
	merged := map[string]*entry{}
	local := map[string]bool{}
	held := map[string][]string{}
	for i, p := range doc.Package {
		var cond marker
		switch {
		case grouped:
			if !slices.Contains(p.Groups, "default") {
				continue
			}
			cond = markerConst(true)
			if p.Marker != "" {
				m, err := parseMarker(p.Marker)
				if err != nil {
					return nil, &Error{File: "pdm.lock", Msg: fmt.Sprintf("package %s: %v", excerpt(p.Name), err), Hint: "run `pdm lock`"}
				}
				cond = m
			}
		case conds[i] == nil:
			continue
		default:
			cond = conds[i]
		}
		name := NormalizeName(p.Name)
		held[name] = append(held[name], p.Version)
		switch {
		case p.Git != "" || p.Hg != "" || p.Svn != "" || p.Bzr != "":
			return nil, vcsError("pdm.lock", p.Name, p.Git+p.Hg+p.Svn+p.Bzr)
		case p.Path != "":
			local[path.Clean(p.Path)] = true
			continue
		case strings.HasPrefix(p.URL, "file:///${PROJECT_ROOT}/"):
			local[path.Clean(strings.TrimPrefix(p.URL, "file:///${PROJECT_ROOT}/"))] = true
			continue
		}
		key := name + " " + p.Version
		e := merged[key]
		if e == nil {
			e = &entry{pkg: LockedPackage{Name: p.Name, Version: p.Version, URL: p.URL}}
			merged[key] = e
		}
		e.cond = or(e.cond, cond)
		files := p.Files
		if files == nil {
			files = doc.Metadata.Files[pdmKey(p.Name, p.Extras)+" "+p.Version]
		}
		if files == nil {
			files = doc.Metadata.Files[name+" "+p.Version]
		}
		for _, f := range files {
			if f.Hash != "" && !slices.Contains(e.pkg.Hashes, f.Hash) {
				e.pkg.Hashes = append(e.pkg.Hashes, f.Hash)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(merged)) {
		e := merged[key]
		if len(e.pkg.Hashes) == 0 {
			return nil, &Error{File: "pdm.lock", Msg: fmt.Sprintf("package %s %s has no file hashes", clip(e.pkg.Name, maxExcerpt), clip(e.pkg.Version, maxExcerpt)), Hint: "run `pdm lock --refresh`"}
		}
		e.pkg.Marker = markerText(e.cond)
		lock.Packages = append(lock.Packages, e.pkg)
	}
	lock.Local = append(lock.Local, slices.Sorted(maps.Keys(local))...)
	if err := checkRoots("pdm.lock", "pdm lock", proj, roots, held); err != nil {
		return nil, err
	}
	return lock, nil
}

// pdmInstallsProject reports whether PDM installs the project itself: [tool.pdm]
// distribution says so, else a project with a build backend is a distribution.
func pdmInstallsProject(proj *project) bool {
	if proj.pyproject == nil || !proj.pep621 {
		return false
	}
	var doc struct {
		Tool struct {
			PDM struct {
				Distribution *bool `toml:"distribution"`
			} `toml:"pdm"`
		} `toml:"tool"`
	}
	if _, err := decodeTOML("pyproject.toml", proj.pyproject, &doc); err == nil && doc.Tool.PDM.Distribution != nil {
		return *doc.Tool.PDM.Distribution
	}
	return proj.buildBackend != ""
}

// Walking a lock's dependency graph from the project's main dependencies, for the locks
// that record the graph but not which group needs a package.

// lockDep is one dependency as a lock or pyproject.toml writes it.
type lockDep struct {
	name     string   // normalised
	spec     string   // version range, empty for any
	extras   []string // normalised
	marker   string
	optional bool
	url      string // a direct reference instead of a version
}

// parsePEP508 reads a requirement like `uvicorn[standard] (>=0.30) ; python_version < "3.11"`.
func parsePEP508(s string) (lockDep, bool) {
	req, mark, _ := strings.Cut(s, ";")
	m := reqNameRe.FindStringSubmatch(strings.TrimSpace(req))
	if m == nil {
		return lockDep{}, false
	}
	d := lockDep{name: NormalizeName(m[1]), marker: strings.TrimSpace(mark)}
	for _, x := range strings.Split(strings.Trim(m[2], "[]"), ",") {
		if x = strings.TrimSpace(x); x != "" {
			d.extras = append(d.extras, NormalizeName(x))
		}
	}
	rest := strings.TrimSpace(m[3])
	if u, ok := strings.CutPrefix(rest, "@"); ok {
		d.url = strings.TrimSpace(u)
	} else {
		d.spec = strings.ReplaceAll(strings.Trim(rest, "()"), " ", "")
	}
	return d, true
}

// projectRoots reads the project's main dependencies from pyproject.toml: [project]
// dependencies, else Poetry's [tool.poetry.dependencies] without python and optional
// ones. nil when pyproject.toml declares neither (or there is none).
func projectRoots(proj *project, file string) ([]lockDep, error) {
	if proj.pyproject == nil {
		return nil, nil
	}
	doc, err := proj.declared()
	if err != nil {
		return nil, err
	}
	var roots []lockDep
	switch {
	case doc.pep621 != nil:
		roots = []lockDep{}
		for _, s := range doc.pep621 {
			d, ok := parsePEP508(s)
			if !ok {
				return nil, &Error{File: "pyproject.toml", Line: proj.requirementLine(NormalizeName(strings.TrimSpace(s))),
					Msg: fmt.Sprintf("dependency %s is not a PEP 508 requirement", excerpt(s)), Hint: fmt.Sprintf("fix it, then run `%s`", lockFix(file))}
			}
			roots = append(roots, d)
		}
	case doc.poetry != nil:
		roots = []lockDep{}
		for _, name := range slices.Sorted(maps.Keys(doc.poetry)) {
			if NormalizeName(name) == "python" {
				continue
			}
			for _, d := range poetryDeps(name, doc.poetry[name]) {
				if !d.optional {
					roots = append(roots, d)
				}
			}
		}
	}
	sort.SliceStable(roots, func(i, j int) bool { return roots[i].name < roots[j].name })
	return roots, nil
}

func lockFix(file string) string {
	switch file {
	case "poetry.lock":
		return "poetry lock"
	case "pdm.lock":
		return "pdm lock"
	}
	return "uv lock"
}

// checkRoots refuses a lock out of date with pyproject.toml: a main dependency it does
// not hold, or holds at a version outside the declared range. held maps the names
// installed to their versions. A dependency with a marker may be missing: the locker
// leaves out what no Python the project supports needs.
func checkRoots(file, fix string, proj *project, roots []lockDep, held map[string][]string) error {
	for _, r := range roots {
		if r.url != "" {
			continue
		}
		versions, ok := held[r.name]
		if !ok {
			if r.marker != "" {
				continue
			}
			return staleLock(file, proj, r.name, fmt.Sprintf("pyproject.toml requires %s, which the lock does not hold", r.name), fix)
		}
		if !slices.ContainsFunc(versions, func(v string) bool { return specAllows(r.spec, v) }) {
			return staleLock(file, proj, r.name, fmt.Sprintf("pyproject.toml requires %s %s, the lock holds %s", r.name, clip(r.spec, maxExcerpt), strings.Join(versions, ", ")), fix)
		}
	}
	return nil
}

// specAllows reports whether version v satisfies a range (PEP 440 or Poetry's, with ||
// alternatives); a range pyship cannot read allows it.
func specAllows(spec, v string) bool {
	if spec == "" || spec == "*" {
		return true
	}
	for _, alt := range strings.Split(spec, "||") {
		s, err := ParseSpecifier(strings.TrimSpace(alt))
		if err != nil || s.AllowsVersion(v) {
			return true
		}
	}
	return false
}

// lockGraph is a lock's packages as nodes (each package, and each package with one of
// its extras) that pyship walks from the project's main dependencies.
type lockGraph struct {
	file, fix string
	pkgs      int
	names     []string         // the key of each package: its normalised name (PDM: with extras)
	versions  []string         // the version of each package
	byName    map[string][]int // packages by key
	nodes     []lockNode       // 0..pkgs-1 are the packages themselves
	extraNode map[lockNode]int
	// deps lists what package i needs, or what its extra adds when extra is set.
	deps func(i int, extra string) []lockDep
}

type lockNode struct {
	pkg   int
	extra string
}

func newLockGraph(file, fix string, n int) *lockGraph {
	g := &lockGraph{file: file, fix: fix, pkgs: n, names: make([]string, n), versions: make([]string, n),
		byName: map[string][]int{}, extraNode: map[lockNode]int{}}
	for i := range n {
		g.nodes = append(g.nodes, lockNode{pkg: i})
	}
	return g
}

func (g *lockGraph) add(i int, name, version string) {
	g.names[i], g.versions[i] = name, version
	g.byName[name] = append(g.byName[name], i)
}

func (g *lockGraph) addExtra(i int, extra string) {
	n := lockNode{pkg: i, extra: extra}
	if _, ok := g.extraNode[n]; !ok {
		g.extraNode[n] = len(g.nodes)
		g.nodes = append(g.nodes, n)
	}
}

// pick finds the package a dependency resolves to: the only one of its name, or the one
// whose version its range allows.
func (g *lockGraph) pick(d lockDep) (int, bool) {
	cands := g.byName[d.name]
	if len(cands) == 1 {
		return cands[0], true
	}
	for _, i := range cands {
		if specAllows(d.spec, g.versions[i]) {
			return i, true
		}
	}
	return 0, false
}

// walk returns, for every package, the condition under which the main dependencies need
// it (nil: not needed). A dependency the lock does not hold makes it out of date, unless
// a marker makes it conditional: the locker leaves out what no supported Python needs.
func (g *lockGraph) walk(roots []lockDep, proj *project) ([]marker, error) {
	root := len(g.nodes)
	missing := map[string]string{} // name -> the package that requires it ("" for the project)
	edges := func(id int) ([]edge, error) {
		var deps []lockDep
		var extras map[string]bool
		var out []edge
		from := ""
		switch {
		case id == root:
			deps = roots
		default:
			n := g.nodes[id]
			from = g.names[n.pkg]
			deps = g.deps(n.pkg, n.extra)
			if n.extra != "" {
				extras = map[string]bool{n.extra: true}
				out = append(out, edge{to: n.pkg})
			}
		}
		for _, d := range deps {
			mark := ""
			if d.marker != "" {
				m, err := parseMarker(d.marker)
				if err != nil {
					return nil, &Error{File: g.file, Msg: fmt.Sprintf("a dependency of %s on %s: %v", excerpt(from), excerpt(d.name), err), Hint: fmt.Sprintf("run `%s`", g.fix)}
				}
				switch m := decide(m, extras, nil).(type) {
				case markerConst:
					if !m {
						continue
					}
				default:
					mark = m.String()
				}
			}
			t, ok := g.pick(d)
			if !ok {
				// The requirer reported is the project, else the first by name: the same on
				// every run.
				if prev, seen := missing[d.name]; mark == "" && (!seen || from < prev) {
					missing[d.name] = from
				}
				continue
			}
			out = append(out, edge{to: t, marker: mark})
			for _, x := range d.extras {
				if n, ok := g.extraNode[lockNode{pkg: t, extra: x}]; ok {
					out = append(out, edge{to: n, marker: mark})
				}
			}
		}
		return out, nil
	}
	conds, err := reach(root+1, root, edges)
	var de *Error
	switch {
	case errors.As(err, &de):
		return nil, err
	case err != nil:
		return nil, &Error{File: g.file, Msg: err.Error(), Hint: fmt.Sprintf("run `%s`", g.fix)}
	}
	if len(missing) > 0 {
		names := slices.Sorted(maps.Keys(missing))
		for _, n := range names {
			if missing[n] == "" {
				return nil, staleLock(g.file, proj, n, fmt.Sprintf("pyproject.toml requires %s, which the lock does not hold", n), g.fix)
			}
		}
		var what []string
		for _, n := range names {
			what = append(what, fmt.Sprintf("%s (required by %s)", n, missing[n]))
		}
		return nil, &Error{File: g.file, Msg: "out of date: the lock does not hold " + clip(strings.Join(what, ", "), 2000),
			Hint: fmt.Sprintf("run `%s` and commit %s", g.fix, g.file)}
	}
	// The package nodes come first; the extras only lead to them.
	return conds[:g.pkgs], nil
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
	for _, name := range slices.Sorted(maps.Keys(doc.Default)) {
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
	if a == nil {
		return b
	}
	if c, ok := a.(markerConst); ok && bool(c) {
		return a
	}
	if c, ok := b.(markerConst); ok && bool(c) {
		return b
	}
	// Each term once: the same condition reached by two paths is one condition.
	m := a
	for _, t := range disjuncts(b) {
		if !hasDisjunct(m, t.String()) {
			m = markerOr{m, t}
		}
	}
	if len(m.String()) > maxMarker {
		return markerConst(true)
	}
	return m
}

func disjuncts(m marker) []marker {
	if o, ok := m.(markerOr); ok {
		return append(disjuncts(o.l), disjuncts(o.r)...)
	}
	return []marker{m}
}

// hasDisjunct reports whether m is text, or an "or" with text as one of its terms: adding
// it again changes nothing.
func hasDisjunct(m marker, text string) bool {
	for {
		o, ok := m.(markerOr)
		if !ok {
			return m.String() == text
		}
		if o.r.String() == text {
			return true
		}
		m = o.l
	}
}

func markerText(m marker) string {
	if c, ok := m.(markerConst); ok && bool(c) {
		return ""
	}
	return m.String()
}
