package detect

import (
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
)

// An image whose start command runs a server nothing installs, or whose app imports a
// framework nothing installs, builds fine and dies at its first start. Detection refuses
// it when it is sure, and warns when a package it cannot see into may install what is
// missing: pip installs dependencies of dependencies, which only a lock file lists.

// CannotStartError is a refusal: the image would not start, because a package that the
// start command runs or the app imports is installed by none of the dependency inputs.
// Err carries the file and line that need the package and the fix.
type CannotStartError struct {
	// Package is the distribution that is missing, like "uvicorn".
	Package string
	Err     *Error
}

func (e *CannotStartError) Error() string { return e.Err.Error() }
func (e *CannotStartError) Unwrap() error { return e.Err }

// installs is what the dependency inputs install, as far as pyship can tell without
// resolving them.
type installs struct {
	// declared maps each listed distribution to its extras.
	declared map[string][]string
	// complete is true when every installed distribution is listed: a lock file, or no
	// dependency input at all.
	complete bool
	// opaque names an input whose dependencies pyship cannot see (a local path, a URL,
	// a project whose metadata is code): what is missing may come from it.
	opaque string
	// addTo says where a missing package goes.
	addTo string
	// setup holds setup.py and setup.cfg, whose dependencies are code but usually
	// written out as text.
	setup map[string]string
}

// pullers are distributions known to install another one (with an extra, when only the
// extra does). A distribution that starts with the other's name and a dash (flask-login,
// uvicorn-worker) is taken to need it too, but only as a maybe.
var pullers = map[string][]string{
	"uvicorn": {"fastapi[standard]", "fastapi[all]", "fastapi[standard-no-fastapi-cloud-cli]", "fastapi-cli[standard]", "litestar[standard]",
		"gradio", "streamlit", "chainlit", "mcp", "python-fasthtml", "nicegui", "reflex", "shiny", "datasette"},
	"hypercorn": {"quart"},
	"gunicorn":  {"uvicorn-worker", "mlflow"},
	"daphne":    {"channels[daphne]"},
	"starlette": {"fastapi", "sse-starlette", "gradio", "streamlit", "chainlit", "mcp", "python-fasthtml", "nicegui", "reflex", "shiny"},
	"flask":     {"quart", "dash", "connexion[flask]", "mlflow", "apache-airflow"},
	"django":    {"djangorestframework", "wagtail", "channels", "django-cms"},
	"aiohttp":   {"discord-py", "aiobotocore", "gcsfs", "s3fs", "slack-bolt"},
	"tornado":   {"bokeh", "panel", "jupyter-server", "notebook"},
	"bokeh":     {"panel"},
}

var extrasRe = regexp.MustCompile(`^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?`)

// splitExtras reads "name[a,b]" into the normalised name and extras.
func splitExtras(req string) (string, []string) {
	m := extrasRe.FindStringSubmatch(req)
	if m == nil {
		return "", nil
	}
	var extras []string
	for _, e := range strings.Split(m[2], ",") {
		if e = strings.TrimSpace(e); e != "" {
			extras = append(extras, NormalizeName(e))
		}
	}
	return NormalizeName(m[1]), extras
}

// readInstalls gathers what the dependency inputs list.
func readInstalls(fsys fs.FS, proj *project, res *Result) *installs {
	deps := res.Dependencies
	in := &installs{declared: map[string][]string{}}
	switch {
	case deps.Lock != nil:
		in.complete = true
		for _, n := range deps.Lock.Names() {
			in.declared[n] = nil
		}
		in.addTo = map[string]string{
			"uv":     "pyproject.toml's dependencies, then run uv lock",
			"poetry": "pyproject.toml with poetry add, which updates poetry.lock",
			"pipenv": "the Pipfile with pipenv install, which updates Pipfile.lock",
		}[deps.Lock.Format]
		if in.addTo == "" {
			in.addTo = "the project's dependencies, and regenerate " + deps.Lock.File
		}
	case len(deps.Requirements) > 0:
		in.addTo = deps.Requirements[0]
		in.readRequirements(fsys, deps.Requirements[0])
		if deps.Project && in.opaque == "" {
			in.opaque = "the project itself"
		}
	case deps.Project:
		in.addTo = "the dependencies in " + deps.Source
		in.readProject(proj, deps.Source)
		if !proj.pep621 && !proj.poetry {
			in.setup = map[string]string{}
			for _, file := range []string{"setup.py", "setup.cfg"} {
				if data, err := readSource(fsys, file); err == nil {
					in.setup[file] = string(data)
				}
			}
		}
	default:
		in.complete = true
		in.addTo = "a requirements.txt"
		for _, n := range deps.Names {
			in.declared[n] = nil
		}
	}
	return in
}

// readRequirements walks a requirements file and the files it includes with -r.
func (in *installs) readRequirements(fsys fs.FS, root string) {
	seen := map[string]bool{}
	var visit func(file string)
	visit = func(file string) {
		file = path.Clean(file)
		if seen[file] {
			return
		}
		seen[file] = true
		data, err := readFile(fsys, file)
		if err != nil {
			in.opaque = file
			return
		}
		rf, err := ParseRequirements(file, data)
		if err != nil {
			in.opaque = file
			return
		}
		for _, r := range rf.Requirements {
			if r.Name != "" && (r.Kind == "name" || r.Kind == "url") {
				_, extras := splitExtras(r.Text)
				in.declared[r.Name] = append(in.declared[r.Name], extras...)
				continue
			}
			if in.opaque == "" {
				in.opaque = fmt.Sprintf("%s:%d (%s)", file, r.Line, clip(r.Text, maxExcerpt))
			}
		}
		for _, inc := range rf.Includes {
			if !inc.Constraint {
				visit(path.Join(path.Dir(file), inc.Path))
			}
		}
	}
	visit(root)
}

// readProject reads the dependencies pyproject.toml declares, with their extras.
func (in *installs) readProject(proj *project, source string) {
	if !proj.pep621 && !proj.poetry {
		in.opaque = source // setup.py: its dependencies are code
		return
	}
	doc, err := proj.declared()
	if err != nil {
		in.opaque = "pyproject.toml"
		return
	}
	for _, d := range doc.pep621 {
		name, extras := splitExtras(d)
		if name != "" {
			in.declared[name] = append(in.declared[name], extras...)
		}
	}
	if doc.dynamic {
		in.opaque = "pyproject.toml (dynamic dependencies)"
	}
	if doc.poetry != nil {
		p := doc.poetry
		for name, spec := range p {
			var extras []string
			if m, ok := spec.(map[string]any); ok {
				if list, ok := m["extras"].([]any); ok {
					for _, e := range list {
						if s, ok := e.(string); ok {
							extras = append(extras, NormalizeName(s))
						}
					}
				}
			}
			in.declared[NormalizeName(name)] = append(in.declared[NormalizeName(name)], extras...)
		}
	}
}

// has reports whether dist is installed. When it is not listed and pyship cannot be sure
// it is missing, maybe names what may install it.
func (in *installs) has(dist string) (found bool, maybe string) {
	if _, ok := in.declared[dist]; ok {
		return true, ""
	}
	for file, text := range in.setup {
		if setupListsRe(file, dist).MatchString(text) {
			return true, ""
		}
	}
	for _, p := range pullers[dist] {
		name, extras := splitExtras(p)
		got, ok := in.declared[name]
		if ok && (len(extras) == 0 || containsAll(got, extras)) {
			return true, ""
		}
	}
	if in.complete {
		return false, ""
	}
	for _, n := range slices.Sorted(maps.Keys(in.declared)) {
		if strings.HasPrefix(n, dist+"-") {
			return false, n
		}
	}
	return false, in.opaque
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// need is a distribution the image needs to start, and what needs it.
type need struct {
	dist   string
	what   string // "the start command runs uvicorn", "imports litestar"
	source string // file:line
}

// serverPrograms map a program a start command runs to the distribution that installs it.
var serverPrograms = map[string]string{
	"uvicorn": "uvicorn", "gunicorn": "gunicorn", "hypercorn": "hypercorn", "daphne": "daphne", "granian": "granian",
	"waitress-serve": "waitress", "streamlit": "streamlit", "sanic": "sanic", "flask": "flask", "celery": "celery",
	"panel": "panel", "bokeh": "bokeh", "pserve": "pyramid",
}

// serverModules map a module run with python -m to its distribution.
var serverModules = map[string]string{
	"uvicorn": "uvicorn", "gunicorn": "gunicorn", "hypercorn": "hypercorn", "daphne": "daphne", "granian": "granian",
	"waitress": "waitress", "streamlit": "streamlit", "sanic": "sanic", "flask": "flask", "aiohttp.web": "aiohttp",
}

// needs lists what the app and the start command need installed.
func needs(fsys fs.FS, res *Result) []need {
	// The imports first: they name the line that needs the package.
	var out []need
	if a := res.app; a != nil && res.Framework != "" {
		if m := frameworkImportRe[res.Framework].FindStringIndex(a.src); m != nil {
			out = append(out, need{dist: res.Framework, what: "imports " + res.Framework, source: fmt.Sprintf("%s:%d", a.file, lineOf(a.src, m[0]))})
		}
	}
	if res.django != nil {
		if data, err := readSource(fsys, "manage.py"); err == nil {
			if m := frameworkImportRe["django"].FindIndex(data); m != nil {
				out = append(out, need{dist: "django", what: "imports django", source: fmt.Sprintf("manage.py:%d", lineOf(string(data), m[0]))})
			}
		}
	}
	out = append(out, res.needs...)
	for _, words := range startCommands(res.Start.Command) {
		name, args := programOf(words)
		dist, what := serverPrograms[path.Base(name)], path.Base(name)
		if (name == "python" || name == "python3") && len(args) > 0 {
			switch a := unquote(args[0]); {
			case a == "-m" && len(args) > 1:
				what = "python -m " + unquote(args[1])
				dist = serverModules[unquote(args[1])]
			case a == "manage.py" && res.django != nil:
				dist, what = "django", "python manage.py"
			}
		}
		if dist != "" {
			out = append(out, need{dist: dist, what: "the start command runs " + what, source: res.Start.Source})
		}
	}
	return out
}

// checkStartable refuses an image whose start command or app needs a package that
// nothing installs, and warns when that package may come from something pyship cannot
// see into.
func checkStartable(fsys fs.FS, proj *project, res *Result) error {
	in := readInstalls(fsys, proj, res)
	done := map[string]bool{}
	for _, n := range needs(fsys, res) {
		if done[n.dist] {
			continue
		}
		done[n.dist] = true
		found, maybe := in.has(n.dist)
		switch {
		case found:
		case maybe != "":
			res.warnf("%s: %s, which no dependency input lists; it may come from %s: list %s in %s to be sure", n.source, n.what, maybe, n.dist, in.addTo)
		default:
			file, line := ParseSource(n.source)
			return &CannotStartError{Package: n.dist, Err: &Error{File: file, Line: line,
				Msg:  fmt.Sprintf("%s, which none of the dependency inputs installs (%s); the image would not start", n.what, inputsOf(res)),
				Hint: fmt.Sprintf("add %s to %s", n.dist, in.addTo)}}
		}
	}
	return nil
}

// inputsOf names the dependency inputs, for a message.
func inputsOf(res *Result) string {
	deps := res.Dependencies
	switch {
	case deps.Lock != nil:
		return deps.Lock.File
	case len(deps.Requirements) > 0:
		return strings.Join(deps.Files, ", ")
	case len(deps.Inferred) > 0:
		return "what the code imports, for want of a dependency file"
	case deps.Source != "":
		return deps.Source
	}
	return "there are none"
}
