package pyindex

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pyship/pyship/detect"
)

// Choice is the Python version picked for a repository, and why.
type Choice struct {
	Python string
	// Source is where the requirement that ruled the next newer version out is pinned.
	Source string
	// Reason names the requirements that ruled newer versions out; empty when the
	// preferred version was kept.
	Reason string
	// Warnings are for the user: an index that could not be asked, requirements that no
	// candidate version has a wheel for.
	Warnings []string
	// SourceBuilds are the pins that have no wheel for any candidate version but a source
	// distribution: they are built from source whichever version is picked.
	SourceBuilds []detect.Pin
}

// runtimeLimit is a requirement that installs on a Python where it cannot run: nothing in
// its metadata says so, so the index cannot tell.
type runtimeLimit struct {
	name   string
	below  string // versions before this one are affected
	python string // the newest Python they run on
	why    string
}

var runtimeLimits = []runtimeLimit{
	{"gunicorn", "21", "3.11", "imports pkg_resources, which a Python 3.12+ venv lacks (setuptools is no longer seeded)"},
	{"falcon", "2", "3.9", "uses collections.MutableMapping and inspect.getargspec, which Pythons 3.10 and 3.11 removed"},
	// Flask's stack as pinned in 2017-2018: each imports an ABC from collections, which
	// Python 3.10 removed (checked on 3.10: Werkzeug 0.15, Jinja2 2.11 and MarkupSafe 1.1
	// import cleanly).
	{"werkzeug", "0.15", "3.9", "imports collections.Container, which Python 3.10 removed"},
	// After the one above: the first entry whose versions hold the pin rules.
	{"werkzeug", "0.15.5", "3.7", "compiles its routes to an AST without type_ignores, which Python 3.8 requires"},
	{"jinja2", "2.11", "3.9", "imports collections.Mapping, which Python 3.10 removed"},
	{"markupsafe", "1.1", "3.9", "imports collections.Mapping, which Python 3.10 removed"},
}

// verdict is what one pin says about one Python version.
type verdict struct {
	ok     bool
	python string
	wheel  bool   // ruled out for want of a wheel for python
	sdist  bool   // a source distribution of the release installs on python
	reason string // why not, like "has no cp313 wheel"
}

// Choose picks the Python version for res: among res.PythonChoices (newest first), the
// newest that is not newer than res.Python.Value and for which every pinned requirement
// has a wheel, or a source distribution that needs no compiler. When the repository names
// one version, or pins nothing, res.Python is kept. When the index cannot be asked, the
// preferred version is kept with a warning.
func Choose(ctx context.Context, c *Client, res *detect.Result) Choice {
	preferred := res.Python.Value
	keep := Choice{Python: preferred}
	pins := res.Dependencies.Pins
	i := slices.Index(res.PythonChoices, preferred)
	if i < 0 || len(pins) == 0 {
		return keep
	}
	candidates := res.PythonChoices[i:]

	pages := make([][]File, len(pins))
	errs := make([]error, len(pins))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, p := range pins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pages[i], errs[i] = c.Files(ctx, p.Name)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		if IsNotFound(err) {
			keep.Warnings = append(keep.Warnings, fmt.Sprintf("%s (%s) is on no package index pyship asked, so Python %s is kept", pins[i].Name, pins[i].Source, preferred))
		} else {
			keep.Warnings = append(keep.Warnings, fmt.Sprintf("cannot ask the package index which Python versions the pinned requirements support, so Python %s is kept: %v", preferred, err))
		}
		return keep
	}

	// verdicts[pi][ci] is what pin pi says about candidate ci.
	verdicts := make([][]verdict, len(pins))
	for pi, p := range pins {
		for _, m := range candidates {
			verdicts[pi] = append(verdicts[pi], judge(p, pages[pi], m))
		}
		if sourceOnly(verdicts[pi]) {
			keep.SourceBuilds = append(keep.SourceBuilds, p)
			// No candidate has a wheel, and the release has a source distribution: it is
			// built from source (in a builder, when it needs a compiler) whichever
			// version is picked, so it picks none.
			for ci := range verdicts[pi] {
				verdicts[pi][ci] = verdict{ok: true}
			}
		}
	}
	// blocked[pi] are the versions pin pi rules out, newest first, with the reasons.
	blocked := make([][]verdict, len(pins))
	for ci, m := range candidates {
		fits := true
		for pi := range pins {
			if v := verdicts[pi][ci]; !v.ok {
				blocked[pi] = append(blocked[pi], v)
				fits = false
			}
		}
		if !fits {
			continue
		}
		if ci == 0 {
			return keep
		}
		chosen := Choice{Python: m, SourceBuilds: keep.SourceBuilds}
		var why []string
		source := ""
		for pi, p := range pins {
			if len(blocked[pi]) > 0 {
				why = append(why, fmt.Sprintf("%s %s (%s) %s", p.Name, p.Version, p.Source, summarize(blocked[pi])))
				if last := blocked[pi][len(blocked[pi])-1]; source == "" && last.python == candidates[ci-1] {
					// The pin that rules out the next newer version says why this one.
					source = p.Source
				}
			}
		}
		chosen.Source, chosen.Reason = source, "the newest version the pinned requirements support: "+strings.Join(why, "; ")
		return chosen
	}
	var why []string
	for pi, p := range pins {
		if len(blocked[pi]) == len(candidates) {
			why = append(why, fmt.Sprintf("%s %s (%s) %s", p.Name, p.Version, p.Source, summarize(blocked[pi])))
		}
	}
	if len(why) == 0 {
		for pi, p := range pins {
			if len(blocked[pi]) > 0 && blocked[pi][0].python == preferred {
				why = append(why, fmt.Sprintf("%s %s (%s) %s", p.Name, p.Version, p.Source, summarize(blocked[pi])))
			}
		}
	}
	keep.Warnings = append(keep.Warnings, fmt.Sprintf("no Python version pyship builds for suits every pinned requirement, so Python %s is kept and these may fail to install or run: %s; pin newer versions of them, or set base in pyship.toml to an image with an older Python",
		preferred, strings.Join(why, "; ")))
	return keep
}

// sourceOnly reports whether a pin is ruled out of every candidate only for want of a
// wheel, while it has a source distribution.
func sourceOnly(vs []verdict) bool {
	for _, v := range vs {
		if v.ok || !v.wheel || !v.sdist {
			return false
		}
	}
	return len(vs) > 0
}

// summarize merges one pin's verdicts over several versions: "has no cp314 or cp313 wheel".
func summarize(vs []verdict) string {
	var tags, other []string
	for _, v := range vs {
		if v.wheel {
			tags = append(tags, cpTag(v.python))
		} else if !slices.Contains(other, v.reason) {
			other = append(other, v.reason)
		}
	}
	if len(tags) > 0 {
		other = append([]string{"has no " + strings.Join(tags, " or ") + " wheel"}, other...)
	}
	return strings.Join(other, ", ")
}

// judge says whether pin p, whose project's files are files, installs and runs on Python
// minor version m.
func judge(p detect.Pin, files []File, m string) verdict {
	if applies, ok := detect.MarkerApplies(p.Marker, m); !ok || !applies {
		// Not installed on m, or a marker pyship cannot evaluate: pip decides.
		return verdict{ok: true}
	}
	for _, l := range runtimeLimits {
		if l.name != normalize(p.Name) || !versionLess(p.Version, l.below) {
			continue
		}
		if minorAbove(m, l.python) {
			return verdict{python: m, reason: fmt.Sprintf("runs on Python %s at most: it %s", l.python, l.why)}
		}
		break // the first entry that matches the pin rules
	}
	var release []File
	for _, f := range files {
		if v, ok := fileVersion(f.Name, p.Name); ok && sameVersion(v, p.Version) {
			release = append(release, f)
		}
	}
	if len(release) == 0 {
		// An unknown version fails in the install, with pip's own message; it says
		// nothing about Python versions.
		return verdict{ok: true}
	}
	native, sdist, excluded := false, false, ""
	for _, f := range release {
		if f.RequiresPython != "" {
			if spec, err := detect.ParseSpecifier(f.RequiresPython); err == nil && !spec.AllowsMinor(m) {
				excluded = f.RequiresPython
				continue
			}
		}
		w, ok := parseWheel(f.Name)
		if !ok {
			sdist = sdist || isSdist(f.Name)
			continue
		}
		if w.supports(m) {
			return verdict{ok: true}
		}
	}
	for _, f := range release {
		if w, ok := parseWheel(f.Name); ok && !w.pure() {
			native = true
		}
	}
	switch {
	case sdist && !native:
		// Pure Python published only as source: pip builds it without a compiler.
		return verdict{ok: true}
	case native:
		return verdict{python: m, wheel: true, sdist: sdist, reason: fmt.Sprintf("has no %s wheel", cpTag(m))}
	case excluded != "":
		return verdict{python: m, reason: fmt.Sprintf("requires Python %s", excluded)}
	default:
		return verdict{python: m, reason: fmt.Sprintf("has no file for Python %s", m)}
	}
}

// wheel is the part of a wheel's file name that says where it installs.
type wheel struct {
	pythons, abis, platforms []string
}

// parseWheel reads a wheel file name: name-version[-build]-python-abi-platform.whl, each
// tag possibly a dot-separated set.
func parseWheel(file string) (wheel, bool) {
	base, ok := strings.CutSuffix(file, ".whl")
	if !ok {
		return wheel{}, false
	}
	parts := strings.Split(base, "-")
	if len(parts) != 5 && len(parts) != 6 {
		return wheel{}, false
	}
	n := len(parts)
	return wheel{
		pythons:   strings.Split(parts[n-3], "."),
		abis:      strings.Split(parts[n-2], "."),
		platforms: strings.Split(parts[n-1], "."),
	}, true
}

func (w wheel) pure() bool { return slices.Contains(w.platforms, "any") }

// maxGlibc is the oldest glibc among the bases (Debian bookworm's 2.36): a manylinux wheel
// that needs a newer one does not install everywhere.
const maxGlibc = 36

// supports reports whether the wheel installs on CPython m on linux/amd64.
func (w wheel) supports(m string) bool {
	platform := false
	for _, p := range w.platforms {
		if p == "any" || linuxAMD64(p) {
			platform = true
		}
	}
	if !platform {
		return false
	}
	minor, ok := minorOf(m)
	if !ok {
		return false
	}
	for _, py := range w.pythons {
		for _, abi := range w.abis {
			if tagSupports(py, abi, minor) {
				return true
			}
		}
	}
	return false
}

// tagSupports reports whether python tag py with ABI tag abi installs on CPython 3.minor,
// as pip's tag list has it.
func tagSupports(py, abi string, minor int) bool {
	switch {
	case py == "py3":
		return abi == "none"
	case strings.HasPrefix(py, "py3"):
		n, err := strconv.Atoi(py[3:])
		return err == nil && n <= minor && abi == "none"
	case strings.HasPrefix(py, "cp3"):
		n, err := strconv.Atoi(py[3:])
		if err != nil {
			return false
		}
		switch abi {
		case "abi3":
			return n <= minor
		case "none":
			return n == minor
		default:
			return n == minor && (abi == py || abi == py+"m")
		}
	}
	return false
}

// linuxAMD64 reports whether platform tag p installs on glibc Linux on amd64.
func linuxAMD64(p string) bool {
	switch p {
	case "linux_x86_64", "manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64":
		return true
	}
	rest, ok := strings.CutPrefix(p, "manylinux_2_")
	if !ok {
		return false
	}
	glibc, ok := strings.CutSuffix(rest, "_x86_64")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(glibc)
	return err == nil && n <= maxGlibc
}

// sdistExts are the file name endings of source distributions.
var sdistExts = []string{".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar"}

func isSdist(file string) bool {
	for _, ext := range sdistExts {
		if strings.HasSuffix(file, ext) {
			return true
		}
	}
	return false
}

// fileVersion reads the version from a wheel or sdist file name of project name.
func fileVersion(file, name string) (string, bool) {
	if w, ok := strings.CutSuffix(file, ".whl"); ok {
		parts := strings.Split(w, "-")
		if len(parts) < 5 || normalize(parts[0]) != normalize(name) {
			return "", false
		}
		return parts[1], true
	}
	for _, ext := range sdistExts {
		if base, ok := strings.CutSuffix(file, ext); ok {
			// The name part may itself hold dashes ("python-dateutil-2.9.0.tar.gz").
			for i := strings.LastIndex(base, "-"); i > 0; i = strings.LastIndex(base[:i], "-") {
				if normalize(base[:i]) == normalize(name) {
					return base[i+1:], true
				}
			}
			return "", false
		}
	}
	return "", false
}

// sameVersion compares release versions as PEP 440's == does for plain versions: trailing
// zeros do not count ("2.0" == "2.0.0"), nor does case.
func sameVersion(a, b string) bool { return trimZeros(a) == trimZeros(b) }

func trimZeros(v string) string {
	v = strings.TrimPrefix(strings.ToLower(v), "v")
	for strings.HasSuffix(v, ".0") {
		v = strings.TrimSuffix(v, ".0")
	}
	return v
}

// versionLess compares the leading numeric parts of two versions.
func versionLess(a, b string) bool {
	pa, pb := numbers(a), numbers(b)
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func numbers(v string) []int {
	var out []int
	for _, part := range strings.Split(v, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

func minorOf(m string) (int, bool) {
	rest, ok := strings.CutPrefix(m, "3.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// minorAbove reports whether minor version a is newer than b.
func minorAbove(a, b string) bool {
	x, ok1 := minorOf(a)
	y, ok2 := minorOf(b)
	return ok1 && ok2 && x > y
}

func cpTag(m string) string { return "cp" + strings.ReplaceAll(m, ".", "") }
