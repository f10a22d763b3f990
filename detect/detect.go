package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// DefaultPort is the port the application is told to listen on through $PORT.
const DefaultPort = 8080

// Fact is one detected value and where it came from: "file" or "file:line", or "default".
type Fact struct {
	Value  string `json:"value"`
	Source string `json:"source"`
	// Reason says why, where the source alone does not.
	Reason string `json:"reason,omitempty"`
}

// Start is the command that starts the application, and why it was chosen.
type Start struct {
	// Command is the argv. When it needs $PORT expanded it runs under /bin/sh -c.
	Command []string `json:"command"`
	Source  string   `json:"source"`
	Reason  string   `json:"reason"`
	// PythonPath is a directory (relative to the repository) the app's modules are
	// imported from, like "src"; empty for the root.
	PythonPath string `json:"python_path,omitempty"`
	// Dir is the directory (relative to the repository) the app runs in, when not the top:
	// an app that imports the modules beside it runs from its own directory.
	Dir string `json:"dir,omitempty"`
	// Env are variables ("NAME=value") the app and the build steps need, like the
	// DJANGO_SETTINGS_MODULE pyship picked.
	Env []string `json:"env,omitempty"`
}

// Note is a decision detection made besides the facts above, like which of the Django
// settings modules manage.py names is used: what, the value, the file and line, and why.
type Note struct {
	What   string `json:"what"`
	Value  string `json:"value"`
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Port is the port the application listens on.
type Port struct {
	Number int    `json:"number"`
	Source string `json:"source"`
	// HardCoded is true when the source fixes the port instead of reading $PORT.
	HardCoded bool `json:"hard_coded,omitempty"`
}

// Dependencies says what pip installs and from which files.
type Dependencies struct {
	// Source is the file that decided, like "requirements.txt"; empty when there are none.
	Source string `json:"source,omitempty"`
	// Requirements are the requirement files given to pip -r.
	Requirements []string `json:"requirements,omitempty"`
	// Files are every file the install reads: the requirement files, the ones they include,
	// the project metadata. A change to one of them reinstalls the dependencies.
	Files []string `json:"files,omitempty"`
	// Project is true when the repository itself is installed (pip install .).
	Project bool `json:"project,omitempty"`
	// Local are the local directories and archives the requirements install from (not
	// editable): their code is copied into the venv.
	Local []string `json:"local,omitempty"`
	// Lock is the lock file the dependencies are installed from, translated for pip.
	Lock *Lock `json:"lock,omitempty"`
	// Names are the declared dependencies' normalised names.
	Names []string `json:"names,omitempty"`
	// Pins are the requirements pinned to one version (all of a lock's packages), in file
	// order: what the Python version must suit.
	Pins []Pin `json:"pins,omitempty"`
	// Inferred are the packages installed for want of a dependency file: well-known ones
	// the code imports.
	Inferred []Inferred `json:"inferred,omitempty"`
}

// Has reports whether name (any spelling) is a declared dependency.
func (d Dependencies) Has(name string) bool {
	name = NormalizeName(name)
	for _, n := range d.Names {
		if n == name {
			return true
		}
	}
	return false
}

// Result is what detection found.
type Result struct {
	// Python is the Python minor version, like "3.11".
	Python Fact `json:"python"`
	// PythonChoices are the supported versions the repository allows, newest first, when it
	// names a range or nothing; empty when it names one version. A later phase may move
	// Python among them (to one that the pinned requirements have wheels for).
	PythonChoices []string     `json:"python_choices,omitempty"`
	Dependencies  Dependencies `json:"dependencies"`
	// Framework is the web framework the start command was derived from, if any.
	Framework string `json:"framework,omitempty"`
	Start     Start  `json:"start"`
	Port      Port   `json:"port"`
	// System are Debian packages to install into the image, when the repository asks.
	System *System `json:"system,omitempty"`
	// BuildSteps run at build time, in the build sandbox, after the dependencies.
	BuildSteps []BuildStep `json:"build_steps,omitempty"`
	// SmokePath, when set, is where the app itself answers, when the server answers "/"
	// with only a redirect.
	SmokePath *Fact `json:"smoke_path,omitempty"`
	// Config is the user's pyship.toml or [tool.pyship], nil when there is none.
	Config *Config `json:"config,omitempty"`
	// Notes are other decisions, with their sources and reasons.
	Notes    []Note   `json:"notes,omitempty"`
	Warnings []string `json:"warnings,omitempty"`

	django *djangoProject
	// release is the Procfile's release process, when it has one.
	release *process
	// app is the module the start command serves, when pyship found it.
	app *candidate
	// needs are packages the chosen start needs besides its program and the app's
	// framework, like the server a PasteDeploy file names.
	needs []need
}

// process is a command line of a Procfile and where it is.
type process struct {
	line, source string
}

func (r *Result) warnf(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// BuildStep is a command run at build time with the dependencies installed and the
// repository at /app; the files it writes under /app go into the image.
type BuildStep struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Source  string   `json:"source"`
	Reason  string   `json:"reason"`
	// Data is a directory, relative to the repository, where the step makes data the app
	// changes at run time (a database): what is there belongs to the app's user.
	Data string `json:"data,omitempty"`
}

// Options tune detection.
type Options struct {
	Logger hclog.Logger
}

// Error is a problem with the repository that the user has to fix. It names the file (and
// line) at fault and says what to do.
type Error struct {
	File string
	Line int
	Msg  string
	Hint string
}

// Error formats the problem for a log: control characters in it (a file name, a decoder's
// message) are escaped, so that the message cannot rewrite the terminal or the CI log.
func (e *Error) Error() string {
	var b strings.Builder
	file := clip(e.File, 512)
	switch {
	case file != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", file, e.Line)
	case file != "":
		fmt.Fprintf(&b, "%s: ", file)
	}
	b.WriteString(clip(e.Msg, 4096))
	if e.Hint != "" {
		b.WriteString("\nhint: " + clip(e.Hint, 4096))
	}
	return b.String()
}

// pythonMarkers are files whose presence makes a directory a Python project.
var pythonMarkers = []string{
	"requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "Pipfile.lock",
	"poetry.lock", "uv.lock", "pylock.toml", "pdm.lock", "manage.py",
}

// Detect inspects the repository in fsys.
func Detect(ctx context.Context, fsys fs.FS, opts Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	fsys = confine(fsys)
	if !isPythonProject(fsys) {
		hint := "pyship looks for " + strings.Join(pythonMarkers[:5], ", ") + " or a .py file at the top of the directory; "
		if found := pythonSubdirs(fsys); len(found) > 0 {
			dir, _, _ := strings.Cut(found[0], "/")
			hint += "here they are in a subdirectory (" + strings.Join(found, ", ") + "): run pyship " + dir + ", or set path: " + dir + " in the Action"
		} else {
			hint += "point it at the directory that holds them"
		}
		return nil, &Error{Msg: "no Python application found", Hint: hint}
	}
	proj, err := readProject(fsys)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConfig(fsys, proj.pyproject)
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg}
	if res.Python, err = pythonVersion(fsys, cfg, proj, res); err != nil {
		return nil, err
	}
	if err := dependenciesAndStart(fsys, cfg, proj, res); err != nil {
		return nil, err
	}
	if err := buildSteps(fsys, cfg, proj, res); err != nil {
		return nil, err
	}
	if res.System, err = systemPackages(fsys, cfg); err != nil {
		return nil, err
	}
	log.Debug("detected", "python", res.Python.Value, "start", res.Start.Command, "reason", res.Start.Reason)
	return res, nil
}

func isPythonProject(fsys fs.FS) bool {
	for _, name := range pythonMarkers {
		if exists(fsys, name) {
			return true
		}
	}
	matches, _ := fs.Glob(fsys, "*.py")
	if len(matches) > 0 {
		return true
	}
	// An app under src/ (src/app.py, as some keep it), unless src/ is a project of its
	// own (its own requirements.txt: pyship runs there), or a package at the top.
	for _, f := range entryFiles {
		if f != "__init__.py" && exists(fsys, path.Join("src", f)) {
			for _, m := range pythonMarkers {
				if exists(fsys, path.Join("src", m)) {
					return false
				}
			}
			return true
		}
	}
	pkgs, _ := packages(fsys, ".")
	return len(pkgs) > 0
}

// maxSubdirs bounds how many entries of the top directory pythonSubdirs looks at.
const maxSubdirs = 256

// pythonSubdirs names, for an error's hint, a Python marker or .py file in each directory
// just under the top that holds one ("src/app.py"), at most three, in sorted order.
func pythonSubdirs(fsys fs.FS) []string {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil
	}
	var out []string
	for i, e := range entries {
		name := e.Name()
		if i == maxSubdirs || len(out) == 3 {
			break
		}
		if !e.IsDir() || strings.HasPrefix(name, ".") || notPackages[name] || name == "__pycache__" {
			continue
		}
		if f := pythonFileIn(fsys, name); f != "" {
			out = append(out, clip(path.Join(name, f), maxExcerpt))
		}
	}
	return out
}

// pythonFileIn names the first Python marker, else entry file, else .py file in dir.
func pythonFileIn(fsys fs.FS, dir string) string {
	for _, name := range slices.Concat(pythonMarkers, entryFiles) {
		if exists(fsys, path.Join(dir, name)) {
			return name
		}
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return ""
	}
	for i, e := range entries {
		if i == maxSubdirs {
			break
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".py") {
			return e.Name()
		}
	}
	return ""
}

// pythonVersion picks the Python version: pyship config, .python-version, runtime.txt,
// then the project's requirement (requires-python, Poetry's python, Pipfile), else the
// default. A version from a file must have a base image.
func pythonVersion(fsys fs.FS, cfg *Config, proj *project, res *Result) (Fact, error) {
	var chosen Fact
	switch {
	case cfg != nil && cfg.Python != "":
		minor, _ := pythonMinor(cfg.Python)
		chosen = Fact{Value: minor, Source: cfg.Source("python")}
	default:
		for _, name := range []string{".python-version", "runtime.txt"} {
			data, err := readOptional(fsys, name)
			if err != nil {
				return Fact{}, err
			}
			if data == nil {
				continue
			}
			text, err := decodeText(name, data, false)
			if err != nil {
				return Fact{}, err
			}
			line, n := firstLine(text)
			if line == "" {
				return Fact{}, &Error{File: name, Msg: "the file names no Python version", Hint: `write a version like "3.12" in it, or delete it`}
			}
			minor, ok := pythonMinor(line)
			if !ok {
				return Fact{}, &Error{File: name, Line: n, Msg: fmt.Sprintf("%s is not a CPython version", excerpt(line)),
					Hint: `write a version like "3.12" or "3.12.4"; pyship builds on CPython`}
			}
			chosen = Fact{Value: minor, Source: fmt.Sprintf("%s:%d", name, n)}
			break
		}
	}
	req, reqSource := proj.requiresPython, proj.pythonSource
	if req == "" && proj.pipfile != nil {
		req, reqSource = proj.pipfile.python, proj.pipfile.pythonSource
	}
	var spec Specifier
	if req != "" {
		var err error
		if spec, err = ParseSpecifier(req); err != nil {
			file, line := ParseSource(reqSource)
			return Fact{}, &Error{File: file, Line: line, Msg: err.Error(), Hint: `write a range like ">=3.11" or ">=3.11,<3.14"`}
		}
	}
	switch {
	case chosen.Value != "":
		if req != "" && !spec.AllowsMinor(chosen.Value) {
			res.warnf("%s picks Python %s, which %s (%s) does not allow; pip refuses to install a project on a Python it excludes", chosen.Source, clip(chosen.Value, maxExcerpt), reqSource, clip(req, maxExcerpt))
		}
	case req != "":
		allowed := spec.Allowed()
		oldest := SupportedPythons[len(SupportedPythons)-1]
		if len(allowed) == 0 && spec.allowsBelow(oldest) {
			// Written for a Python past its end of life: the closest one pyship builds.
			res.warnf("%s (%s) allows only Pythons past their end of life, which have no base image: building on %s, the oldest pyship supports; if the app needs the old version, set base in pyship.toml to an image of your own, else widen the requirement", reqSource, clip(req, maxExcerpt), oldest)
			return Fact{Value: oldest, Source: reqSource, Reason: fmt.Sprintf("the closest supported version to %s, which has no base image", clip(req, maxExcerpt))}, nil
		}
		if len(allowed) == 0 {
			file, line := ParseSource(reqSource)
			return Fact{}, &Error{File: file, Line: line,
				Msg:  fmt.Sprintf("the Python requirement %s allows none of the versions pyship builds for (%s)", excerpt(req), strings.Join(SupportedPythons, ", ")),
				Hint: "widen the requirement, or pin a version in .python-version"}
		}
		chosen = Fact{Value: Preferred(allowed), Source: reqSource}
		if chosen.Value != allowed[0] {
			chosen.Reason = fmt.Sprintf("the newest allowed version with broad wheel coverage (%s is newer)", strings.Join(allowed[:slices.Index(allowed, chosen.Value)], ", "))
		}
		res.PythonChoices = allowed
	default:
		res.PythonChoices = slices.Clone(SupportedPythons)
		return Fact{Value: DefaultPythonVersion, Source: "default", Reason: "the newest version with broad wheel coverage; the repository names none"}, nil
	}
	if !supported(chosen.Value) && (cfg == nil || cfg.Base == "") {
		oldest := SupportedPythons[len(SupportedPythons)-1]
		file, line := ParseSource(chosen.Source)
		_, _, parsed := parseVersion(chosen.Value)
		if parsed && minorLess(chosen.Value, oldest) && (cfg == nil || cfg.Python == "") {
			// A file written for a Python past its end of life (a runtime.txt from
			// 2019, say): the closest one pyship builds, rather than no image at all.
			// pyship.toml's own python is the user's word for pyship, and stays refused.
			res.warnf("%s picks Python %s, which is past its end of life and has no base image: building on %s, the oldest pyship supports; write %s (or newer) in %s to say so, or set base in pyship.toml to an image of your own", chosen.Source, clip(chosen.Value, maxExcerpt), oldest, oldest, orFile(file))
			return Fact{Value: oldest, Source: chosen.Source, Reason: fmt.Sprintf("the closest supported version to %s, which has no base image", clip(chosen.Value, maxExcerpt))}, nil
		}
		return Fact{}, unsupportedPython(file, line, chosen.Value)
	}
	if eol := EndOfLife(chosen.Value); eol != "" {
		res.warnf("%s picks Python %s, which reached its end of life in %s and gets no security fixes: move to %s or newer", chosen.Source, chosen.Value, eol, OldestMaintained())
	}
	return chosen, nil
}

// unsupportedPython is the error for a version pyship has no base image for.
func unsupportedPython(file string, line int, minor string) error {
	oldest, newest := SupportedPythons[len(SupportedPythons)-1], SupportedPythons[0]
	e := &Error{File: file, Line: line, Msg: fmt.Sprintf("Python %s has no base image", clip(minor, maxExcerpt))}
	_, _, parsed := parseVersion(minor)
	switch {
	case !parsed:
		e.Msg += fmt.Sprintf(": it is no CPython release; pyship builds for Python %s to %s", oldest, newest)
		e.Hint = fmt.Sprintf("write a version like %s in %s", DefaultPythonVersion, orFile(file))
	case minorLess(minor, oldest):
		e.Msg += fmt.Sprintf(": it is past its end of life, and pyship builds for Python %s to %s", oldest, newest)
		e.Hint = fmt.Sprintf("move the app to Python %s or newer (%s, still maintained, if you can) and write that version in %s (or set base in pyship.toml to an image of your own)", oldest, OldestMaintained(), orFile(file))
	case minorLess(newest, minor):
		e.Msg += fmt.Sprintf(": it is not released yet; pyship builds for Python %s to %s", oldest, newest)
		e.Hint = fmt.Sprintf("write %s or older in %s (or set base in pyship.toml)", newest, orFile(file))
	default:
		e.Hint = fmt.Sprintf("pyship builds on python:X.Y-slim for %s; pick one of those, or set base in pyship.toml", strings.Join(SupportedPythons, ", "))
	}
	return e
}

func orFile(file string) string {
	if file == "" || file == "default" {
		return ".python-version"
	}
	return file
}

// ParseSource splits a source like "file:line" into the file and the line (0 when there
// is none).
func ParseSource(s string) (string, int) {
	file, line, ok := strings.Cut(s, ":")
	if !ok {
		return s, 0
	}
	var n int
	fmt.Sscanf(line, "%d", &n)
	return file, n
}

// firstLine returns the first line that is neither blank nor a comment, and its number.
func firstLine(text string) (string, int) {
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return line, n + 1
		}
	}
	return "", 0
}

// dependencies decides what pip installs. requirements.txt wins over the project's own
// metadata; a project that pip can build is installed itself after its requirements.
// dependenciesAndStart decides the dependencies, then the start command. When the lock
// leaves out what the app needs to start (a Pipfile.lock that holds only pytest) and
// requirements.txt installs it, requirements.txt is what the authors meant: it is
// installed instead, with a warning, and what was said of the lock is dropped.
func dependenciesAndStart(fsys fs.FS, cfg *Config, proj *project, res *Result) error {
	warnings, notes := len(res.Warnings), len(res.Notes)
	var err error
	if res.Dependencies, err = dependencies(fsys, proj, res, false); err != nil {
		return err
	}
	err = startCommand(fsys, cfg, proj, res)
	var cannot *CannotStartError
	if !errors.As(err, &cannot) || res.Dependencies.Lock == nil || !exists(fsys, "requirements.txt") {
		return err
	}
	lockDeps := res.Dependencies
	res.Warnings, res.Notes = res.Warnings[:warnings:warnings], res.Notes[:notes:notes]
	deps, derr := dependencies(fsys, proj, res, true)
	if derr != nil {
		res.Dependencies = lockDeps
		return err
	}
	res.Dependencies = deps
	if again := startCommand(fsys, cfg, proj, res); again != nil {
		res.Dependencies = lockDeps
		return err
	}
	res.warnf("%s does not install %s, which the app needs to start (%s:%d), and requirements.txt does: requirements.txt is installed and %s ignored; add %s to the lock, or delete it",
		lockDeps.Lock.File, cannot.Package, cannot.Err.File, cannot.Err.Line, lockDeps.Lock.File, cannot.Package)
	return nil
}

// dependencies decides what the install reads. A lock comes first, unless
// preferRequirements.
func dependencies(fsys fs.FS, proj *project, res *Result, preferRequirements bool) (Dependencies, error) {
	deps := Dependencies{}
	var lock *Lock
	if !preferRequirements {
		var err error
		if lock, err = readLock(fsys, proj, res); err != nil {
			return deps, err
		}
	}
	switch {
	case lock != nil:
		deps.Source, deps.Lock, deps.Names, deps.Pins = lock.File, lock, lock.Names(), lockPins(lock)
		if proj.noPackage != "" && proj.installable() && lock.Format != "uv" {
			res.Notes = append(res.Notes, Note{What: "project", Value: "not installed, only its dependencies", Source: "pyproject.toml",
				Reason: proj.noPackage + "; the app runs from " + "/app" + " as it is"})
		}
		deps.Files = []string{lock.File}
		for _, f := range []string{"pyproject.toml", "setup.py", "setup.cfg", "Pipfile"} {
			if exists(fsys, f) {
				deps.Files = append(deps.Files, f)
			}
		}
		sort.Strings(deps.Files)
		if exists(fsys, "requirements.txt") {
			res.warnf("%s", requirementsNote(fsys, lock))
		}
	case exists(fsys, "requirements.txt"):
		// The default slim base has no git; a base the user chose may.
		allowVCS := res.Config != nil && res.Config.Base != ""
		tree, err := requirementsTree(fsys, "requirements.txt", allowVCS)
		if err != nil {
			return deps, err
		}
		deps.Source, deps.Requirements, deps.Files, deps.Names, deps.Local, deps.Pins = "requirements.txt", []string{"requirements.txt"}, tree.files, tree.names, tree.local, tree.pins
		if proj.pep621 && len(proj.dependencies) > 0 {
			res.warnf("requirements.txt is installed; the dependencies in pyproject.toml's [project] table are not (list \".\" in requirements.txt to install the project too)")
		}
		if proj.pipfile != nil {
			res.warnf("requirements.txt is installed; Pipfile is ignored")
		}
	case proj.installable():
		deps.Source, deps.Project, deps.Names = "pyproject.toml", true, proj.dependencies
		deps.Pins = projectPins(proj)
		if !proj.pep621 && !proj.poetry {
			deps.Source = "setup.py"
			if !exists(fsys, "setup.py") {
				deps.Source = "setup.cfg"
			}
		}
		for _, f := range []string{"pyproject.toml", "setup.py", "setup.cfg"} {
			if exists(fsys, f) {
				deps.Files = append(deps.Files, f)
			}
		}
	case proj.pipfile != nil:
		deps.Names = proj.pipfile.packages
		return deps, &Error{File: "Pipfile", Msg: "a Pipfile without Pipfile.lock",
			Hint: "run `pipenv lock` and commit Pipfile.lock, so the image gets exactly the versions you tested"}
	case !exists(fsys, "pyproject.toml") && !exists(fsys, "setup.py") && !exists(fsys, "setup.cfg"):
		inferred, err := inferImports(fsys, res)
		if err != nil {
			return deps, err
		}
		if len(inferred) > 0 {
			deps.Source, deps.Inferred, deps.Names = "imports", inferred, inferredNames(inferred)
		}
	}
	return deps, nil
}

// reqTree is what a requirements file and its includes hold.
type reqTree struct {
	files []string // every file involved, sorted
	names []string // every requirement's name, sorted
	local []string // local paths installed (not editable)
	pins  []Pin    // exact pins, in the order read
}

// requirementsTree parses a requirements file and everything it includes.
func requirementsTree(fsys fs.FS, root string, allowVCS bool) (reqTree, error) {
	seen := map[string]bool{}
	nameSet := map[string]bool{}
	var local []string
	var pins []Pin
	// A constraint file's pins apply only to packages something else requires.
	constraints := map[string]bool{}
	var visit func(file, from string, line int) error
	visit = func(file, from string, line int) error {
		file = path.Clean(file)
		if seen[file] {
			return nil
		}
		if path.IsAbs(file) {
			return &Error{File: from, Line: line, Msg: fmt.Sprintf("includes %s, an absolute path outside the repository", excerpt(file)),
				Hint: "keep every requirements file inside the repository, and name it relative to the including file"}
		}
		if file == ".." || strings.HasPrefix(file, "../") {
			return &Error{File: from, Line: line, Msg: fmt.Sprintf("includes %s, which is outside the repository", excerpt(file)),
				Hint: "keep every requirements file inside the repository"}
		}
		data, err := readFile(fsys, file)
		var de *Error
		switch {
		case err == nil:
		case from == "":
			return readError(file, err)
		case errors.As(err, &de):
			// The included file itself is at fault (a link out, a FIFO, too large):
			// say where it is included, and what is wrong with it.
			return &Error{File: from, Line: line, Msg: fmt.Sprintf("includes %s: %s", excerpt(file), de.Msg), Hint: de.Hint}
		default:
			return &Error{File: from, Line: line, Msg: fmt.Sprintf("includes %s, which cannot be read: %v", excerpt(file), cause(err)),
				Hint: "fix the path after -r or -c; it is relative to the including file"}
		}
		seen[file] = true
		rf, err := ParseRequirements(file, data)
		if err != nil {
			return err
		}
		for _, r := range rf.Requirements {
			if r.Name != "" {
				nameSet[r.Name] = true
			}
			if p, ok := requirementPin(file, r); ok && !constraints[file] {
				pins = append(pins, p)
			}
			if r.Kind == "path" {
				local = append(local, path.Join(path.Dir(file), localPath(r.Text)))
			}
			if r.Kind == "vcs" && !allowVCS {
				return &Error{File: file, Line: r.Line, Msg: fmt.Sprintf("%s installs from version control, which needs git; the python:X.Y-slim base has none", excerpt(r.Text)),
					Hint: "point at a wheel or sdist URL (https://.../pkg-1.0.tar.gz), vendor the package into the repository, or set base in pyship.toml to an image with git"}
			}
		}
		for _, inc := range rf.Includes {
			target := inc.Path
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(file), target)
			}
			if inc.Constraint {
				constraints[path.Clean(target)] = true
			}
			if err := visit(target, file, inc.Line); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(root, "", 0); err != nil {
		return reqTree{}, err
	}
	return reqTree{files: slices.Sorted(maps.Keys(seen)), names: slices.Sorted(maps.Keys(nameSet)), local: local, pins: pins}, nil
}

func lineOf(src string, offset int) int {
	return strings.Count(src[:offset], "\n") + 1
}
