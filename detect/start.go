package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

var (
	// procfileLineRe matches a Procfile line: a process type, a colon, the command.
	procfileLineRe = regexp.MustCompile(`^([A-Za-z0-9_-]+)\s*:(.*)$`)
	mainBlockRe    = regexp.MustCompile(`(?m)^if\s+__name__\s*==\s*['"]__main__['"]\s*:`)
	settingsRe     = regexp.MustCompile(`DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([A-Za-z_][\w.]*)['"]`)
	readsPortRe    = regexp.MustCompile(`(?:environ\.get|getenv|environ\[)\(?\s*['"]PORT['"]`)
	// hardPortRes find a literal port given to a server started from the script.
	hardPortRes = []*regexp.Regexp{
		regexp.MustCompile(`\.run\([^)]*\bport\s*=\s*(\d+)`),
		regexp.MustCompile(`\brun_app\([^)]*\bport\s*=\s*(\d+)`),
		regexp.MustCompile(`\bserve\([^)]*\bport\s*=\s*(\d+)`),
		regexp.MustCompile(`HTTPServer\(\s*\(\s*['"][^'"]*['"]\s*,\s*(\d+)\s*\)`),
	}
)

// appKind is a kind of web application object pyship can find in source.
type appKind struct {
	framework string
	asgi      bool
	re        *regexp.Regexp
}

// appKinds are matched against module source as text: no Python is needed on the host.
var appKinds = []appKind{
	{"fastapi", true, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:fastapi\.)?FastAPI\(`)},
	{"starlette", true, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:starlette\.applications\.)?Starlette\(`)},
	{"quart", true, regexp.MustCompile(`(?m)^(\w+)\s*=\s*(?:quart\.)?Quart\(`)},
	{"flask", false, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:flask\.)?Flask\(`)},
	{"falcon", false, regexp.MustCompile(`(?m)^(\w+)\s*=\s*falcon\.(?:App|API)\(`)},
	{"bottle", false, regexp.MustCompile(`(?m)^(\w+)\s*=\s*(?:bottle\.)?Bottle\(`)},
}

// factoryRe finds an application factory; the framework comes from the module's imports.
var factoryRe = regexp.MustCompile(`(?m)^def\s+(create_app|make_app|get_app|app_factory)\s*\(`)

var frameworkImportRe = map[string]*regexp.Regexp{}

func init() {
	for _, k := range appKinds {
		frameworkImportRe[k.framework] = regexp.MustCompile(`(?m)^\s*(?:from|import)\s+` + k.framework + `\b`)
	}
}

// entryFiles are module names that usually hold the app, in order of preference.
var entryFiles = []string{"app.py", "main.py", "server.py", "wsgi.py", "asgi.py", "application.py", "api.py", "__init__.py"}

// scriptFiles are files that can be run as scripts, in order of preference.
var scriptFiles = []string{"main.py", "app.py", "server.py", "wsgi.py", "asgi.py"}

// candidate is a module that may hold the application.
type candidate struct {
	file   string // path in the repository
	module string // dotted import name
	root   string // "" or "src": where imports start
	src    string
}

// startCommand fills res.Start, res.Framework and res.Port. In order: pyship config,
// Procfile, Django, a web app object, a script.
func startCommand(fsys fs.FS, cfg *Config, proj *project, res *Result) error {
	res.Port = Port{Number: DefaultPort, Source: "default"}
	defer func() {
		if cfg != nil && cfg.Port != 0 {
			res.Port = Port{Number: cfg.Port, Source: cfg.Source("port")}
		}
	}()
	if cfg != nil && len(cfg.Start) > 0 {
		res.Start = Start{Command: cfg.Start, Source: cfg.Source("start"), Reason: "set in " + cfg.File}
		return nil
	}
	if found, err := procfileCommand(fsys, res); found || err != nil {
		return err
	}
	if found, err := djangoCommand(fsys, res); found || err != nil {
		return err
	}
	cands, err := candidates(fsys)
	if err != nil {
		return err
	}
	if appCommand(cands, res) {
		return nil
	}
	if scriptCommand(fsys, cands, proj, res) {
		return nil
	}
	return &Error{
		Msg: "no start command found",
		Hint: "pyship looked for start in pyship.toml, a Procfile web: line, a Django manage.py, a FastAPI/Starlette/Flask app in " +
			strings.Join(entryFiles, ", ") + " (at the top, in packages and under src/), a script (" + strings.Join(scriptFiles, ", ") +
			", a package's __main__.py) and a single [project.scripts] entry; add one, or set start = \"...\" in pyship.toml",
	}
}

// procfileCommand takes the Procfile's web process, if there is one.
func procfileCommand(fsys fs.FS, res *Result) (bool, error) {
	data, err := readOptional(fsys, "Procfile")
	if err != nil || data == nil {
		return false, err
	}
	pf, err := ParseProcfile(data)
	if err != nil {
		return false, err
	}
	res.Warnings = append(res.Warnings, pf.Warnings...)
	if pf.WebLine == 0 {
		return false, nil
	}
	// A shell, so that $PORT in the command expands as it does on Heroku.
	res.Start = Start{Command: shellCommand(pf.Web), Source: fmt.Sprintf("Procfile:%d", pf.WebLine), Reason: "Procfile declares a web process"}
	return true, nil
}

// Procfile is what a Procfile declares.
type Procfile struct {
	// Web is the web process's command, and WebLine its line (0 when there is none).
	Web     string
	WebLine int
	// Warnings name the lines that are not "name: command", which are ignored.
	Warnings []string
}

// ParseProcfile reads a Procfile: lines "name: command", blank lines and # comments. A
// line of another form is a warning, or an error when no line is a process.
func ParseProcfile(data []byte) (*Procfile, error) {
	text, err := decodeText("Procfile", data, false)
	if err != nil {
		return nil, err
	}
	pf := &Procfile{}
	processes, firstBad := 0, 0
	var bad string
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := procfileLineRe.FindStringSubmatch(line)
		if m == nil {
			if firstBad == 0 {
				firstBad, bad = n, line
			}
			pf.Warnings = append(pf.Warnings, fmt.Sprintf("Procfile:%d: %s is not a process line (name: command); ignored", n, excerpt(line)))
			continue
		}
		processes++
		if m[1] != "web" {
			continue
		}
		if pf.WebLine > 0 {
			return nil, &Error{File: "Procfile", Line: n, Msg: fmt.Sprintf("a second web process (the first is on line %d)", pf.WebLine),
				Hint: "keep one web: line"}
		}
		pf.Web, pf.WebLine = strings.TrimSpace(m[2]), n
	}
	if processes == 0 && firstBad > 0 {
		return nil, &Error{File: "Procfile", Line: firstBad, Msg: fmt.Sprintf("%s is not a process line, and no line is: a Procfile holds lines of the form name: command", excerpt(bad)),
			Hint: "write the web process as web: COMMAND, or delete the Procfile"}
	}
	if pf.WebLine > 0 && pf.Web == "" {
		return nil, &Error{File: "Procfile", Line: pf.WebLine, Msg: "the web process has no command", Hint: "write the command after web:"}
	}
	return pf, nil
}

// djangoCommand serves a Django project's WSGI (or ASGI) application.
func djangoCommand(fsys fs.FS, res *Result) (bool, error) {
	data, err := readOptional(fsys, "manage.py")
	if err != nil || data == nil {
		return false, err
	}
	m := settingsRe.FindSubmatchIndex(data)
	if m == nil {
		res.warnf("manage.py does not set DJANGO_SETTINGS_MODULE; not treated as a Django project")
		return false, nil
	}
	settings := string(data[m[2]:m[3]])
	pkg, _, _ := strings.Cut(settings, ".")
	res.Framework = "django"
	res.django = &djangoProject{settings: settings}
	source := fmt.Sprintf("manage.py:%d", lineOf(string(data), m[0]))
	deps := res.Dependencies
	wsgi, asgi := exists(fsys, pkg+"/wsgi.py"), exists(fsys, pkg+"/asgi.py")
	switch {
	case wsgi && deps.Has("gunicorn"):
		res.Start = Start{Command: shell(fmt.Sprintf(`gunicorn %s.wsgi:application --bind "0.0.0.0:$PORT"`, pkg)), Source: source,
			Reason: fmt.Sprintf("Django project %s (settings %s) served by gunicorn, a dependency", pkg, settings)}
	case asgi && deps.Has("uvicorn"):
		res.Start = Start{Command: shell(fmt.Sprintf(`uvicorn %s.asgi:application --host 0.0.0.0 --port "$PORT"`, pkg)), Source: source,
			Reason: fmt.Sprintf("Django project %s (settings %s) served by uvicorn, a dependency", pkg, settings)}
	default:
		res.Start = Start{Command: shell(`python manage.py runserver "0.0.0.0:$PORT" --noreload`), Source: source,
			Reason: fmt.Sprintf("Django project %s (settings %s) without gunicorn", pkg, settings)}
		res.warnf("%s: Django runs on its development server; add gunicorn to the dependencies for production", source)
	}
	return true, nil
}

// candidates lists the modules that may hold the app: top-level files, then packages under
// src/, then top-level packages.
func candidates(fsys fs.FS) ([]candidate, error) {
	var out []candidate
	add := func(file, module, root string) error {
		data, err := readSource(fsys, file)
		if err != nil {
			return readError(file, err)
		}
		out = append(out, candidate{file: file, module: module, root: root, src: string(data)})
		return nil
	}
	for _, f := range entryFiles {
		if f != "__init__.py" && exists(fsys, f) {
			if err := add(f, strings.TrimSuffix(f, ".py"), ""); err != nil {
				return nil, err
			}
		}
	}
	for _, root := range []string{"src", "."} {
		pkgs, err := packages(fsys, root)
		if err != nil {
			return nil, err
		}
		for _, pkg := range pkgs {
			for _, f := range entryFiles {
				file := path.Join(root, pkg, f)
				if !exists(fsys, file) {
					continue
				}
				module := pkg + "." + strings.TrimSuffix(f, ".py")
				if f == "__init__.py" {
					module = pkg
				}
				if err := add(file, module, strings.TrimPrefix(root, ".")); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// notPackages are directories that hold no application code.
var notPackages = map[string]bool{"tests": true, "test": true, "docs": true, "migrations": true, "node_modules": true, "venv": true, "build": true, "dist": true}

// packages lists the Python packages (directories with __init__.py) directly under root.
func packages(fsys fs.FS, root string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, root)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, readError(root, err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || notPackages[name] {
			continue
		}
		if exists(fsys, path.Join(root, name, "__init__.py")) {
			out = append(out, name)
		}
	}
	return out, nil
}

// appCommand serves the first web application object found.
func appCommand(cands []candidate, res *Result) bool {
	for _, c := range cands {
		for _, kind := range appKinds {
			var target, what string
			var line int
			factory := false
			if m := kind.re.FindStringSubmatchIndex(c.src); m != nil {
				target, what, line = c.module+":"+c.src[m[2]:m[3]], "app", lineOf(c.src, m[0])
			} else if m := factoryRe.FindStringSubmatchIndex(c.src); m != nil && frameworkImportRe[kind.framework].MatchString(c.src) {
				target, what, line, factory = c.module+":"+c.src[m[2]:m[3]], "app factory", lineOf(c.src, m[0]), true
			} else {
				continue
			}
			res.Framework = kind.framework
			source := fmt.Sprintf("%s:%d", c.file, line)
			cmd, reason := serverCommand(kind, target, factory, c, res)
			res.Start = Start{Command: cmd, Source: source, PythonPath: c.root,
				Reason: fmt.Sprintf("%s defines the %s %s %s; %s", c.file, kind.framework, what, target, reason)}
			return true
		}
	}
	return false
}

// serverCommand picks the server for an app: the production server among the
// dependencies, else the module's own __main__ runner, else the framework's own.
func serverCommand(kind appKind, target string, factory bool, c candidate, res *Result) ([]string, string) {
	deps := res.Dependencies
	if kind.asgi {
		switch {
		case deps.Has("uvicorn") || deps.Has("fastapi") && !deps.Has("hypercorn") && !deps.Has("granian") && !deps.Has("daphne"):
			f := ""
			if factory {
				f = "--factory "
			}
			if !deps.Has("uvicorn") {
				res.warnf("uvicorn is not among the declared dependencies; the start command needs it (add uvicorn, or fastapi[standard])")
			}
			return shell(fmt.Sprintf(`uvicorn %s%s --host 0.0.0.0 --port "$PORT"`, f, target)), "served by uvicorn"
		case deps.Has("hypercorn"):
			return shell(fmt.Sprintf(`hypercorn %s --bind "0.0.0.0:$PORT"`, callTarget(target, factory))), "served by hypercorn, a dependency"
		case deps.Has("granian"):
			f := ""
			if factory {
				f = "--factory "
			}
			return shell(fmt.Sprintf(`granian --interface asgi --host 0.0.0.0 --port "$PORT" %s%s`, f, target)), "served by granian, a dependency"
		case deps.Has("daphne"):
			return shell(fmt.Sprintf(`daphne -b 0.0.0.0 -p "$PORT" %s`, target)), "served by daphne, a dependency"
		default:
			res.warnf("no ASGI server among the declared dependencies; the start command uses uvicorn: add it")
			return shell(fmt.Sprintf(`uvicorn %s --host 0.0.0.0 --port "$PORT"`, target)), "served by uvicorn"
		}
	}
	switch {
	case deps.Has("gunicorn"):
		return shell(fmt.Sprintf(`gunicorn '%s' --bind "0.0.0.0:$PORT"`, callTarget(target, factory))), "served by gunicorn, a dependency"
	case deps.Has("waitress"):
		call := ""
		if factory {
			call = "--call "
		}
		return shell(fmt.Sprintf(`waitress-serve --listen="0.0.0.0:$PORT" %s%s`, call, target)), "served by waitress, a dependency"
	case mainBlockRe.MatchString(c.src) && c.root == "" && !strings.Contains(c.module, "."):
		portOf(c.file, c.src, res)
		return []string{"python", c.file}, "its __main__ block runs it (no gunicorn among the dependencies)"
	case kind.framework == "flask":
		return shell(fmt.Sprintf(`python -m flask --app %s run --host 0.0.0.0 --port "$PORT"`, target)), "served by flask run (no gunicorn among the dependencies)"
	default:
		res.warnf("no WSGI server among the declared dependencies; the start command uses gunicorn: add it")
		return shell(fmt.Sprintf(`gunicorn '%s' --bind "0.0.0.0:$PORT"`, callTarget(target, factory))), "served by gunicorn"
	}
}

// callTarget writes a factory as a call, the way gunicorn and hypercorn take it.
func callTarget(target string, factory bool) string {
	if factory {
		return target + "()"
	}
	return target
}

// shell runs a command line pyship writes, which is one simple command.
func shell(cmd string) []string { return shellCommand(cmd) }

// scriptCommand runs a script: a top-level one, a package's __main__.py, or the one
// [project.scripts] entry.
func scriptCommand(fsys fs.FS, cands []candidate, proj *project, res *Result) bool {
	for _, name := range scriptFiles {
		data, err := readSource(fsys, name)
		if err != nil {
			continue
		}
		src := string(data)
		res.Start = Start{Command: []string{"python", name}, Source: name, Reason: name + " is the first script found"}
		if loc := mainBlockRe.FindStringIndex(src); loc != nil {
			res.Start.Source = fmt.Sprintf("%s:%d", name, lineOf(src, loc[0]))
			res.Start.Reason = name + ` runs itself under if __name__ == "__main__"`
		} else {
			res.warnf("%s has no __main__ block or web app that pyship recognises; it is run as a script", name)
		}
		portOf(name, src, res)
		return true
	}
	for _, root := range []string{"src", "."} {
		pkgs, _ := packages(fsys, root)
		for _, pkg := range pkgs {
			file := path.Join(root, pkg, "__main__.py")
			if data, err := readSource(fsys, file); err == nil {
				res.Start = Start{Command: []string{"python", "-m", pkg}, Source: file, PythonPath: strings.TrimPrefix(root, "."),
					Reason: "package " + pkg + " has a __main__.py"}
				portOf(file, string(data), res)
				return true
			}
		}
	}
	if len(proj.scripts) == 1 && proj.installable() {
		for name, entry := range proj.scripts {
			res.Start = Start{Command: []string{name}, Source: "pyproject.toml", Reason: fmt.Sprintf("the one [project.scripts] entry, %s = %q", name, entry)}
		}
		return true
	}
	if len(proj.scripts) > 1 {
		names := sortedKeys(proj.scripts)
		res.warnf("pyproject.toml has %d scripts (%s); set start in pyship.toml to pick one", len(names), strings.Join(names, ", "))
	}
	return false
}

// portOf notes a port the script hard-codes: the image exposes it, and the app ignores
// $PORT.
func portOf(file, src string, res *Result) {
	if readsPortRe.MatchString(src) {
		return
	}
	for _, re := range hardPortRes {
		m := re.FindStringSubmatchIndex(src)
		if m == nil {
			continue
		}
		port, err := strconv.Atoi(src[m[2]:m[3]])
		if err != nil || port < 1 || port > 65535 {
			continue
		}
		res.Port = Port{Number: port, Source: fmt.Sprintf("%s:%d", file, lineOf(src, m[0])), HardCoded: true}
		if port != DefaultPort {
			res.warnf("%s hard-codes port %d and ignores $PORT; the image exposes %d", res.Port.Source, port, port)
		}
		return
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
