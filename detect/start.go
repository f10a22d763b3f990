package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

var (
	// procfileLineRe matches a Procfile line: a process type, a colon, the command.
	procfileLineRe = regexp.MustCompile(`^([A-Za-z0-9_-]+)\s*:(.*)$`)
	mainBlockRe    = regexp.MustCompile(`(?m)^if\s+__name__\s*==\s*['"]__main__['"]\s*:`)
	readsPortRe    = regexp.MustCompile(`(?:environ\.get|getenv|environ\[)\(?\s*['"]PORT['"]`)
	// hardPortRes find a literal port given to a server started from the script.
	hardPortRes = []*regexp.Regexp{
		regexp.MustCompile(`\.run\([^)]*\bport\s*=\s*(\d+)`),
		regexp.MustCompile(`\.run_server\([^)]*\bport\s*=\s*(\d+)`),
		regexp.MustCompile(`\brun_app\([^)]*\bport\s*=\s*(\d+)`),
		regexp.MustCompile(`\bserve\([^)]*\bport\s*=\s*(\d+)`),
		regexp.MustCompile(`\.launch\([^)]*\bserver_port\s*=\s*(\d+)`),
		regexp.MustCompile(`HTTPServer\(\s*\(\s*['"][^'"]*['"]\s*,\s*(\d+)\s*\)`),
	}
)

// Servers an app object is served by.
const (
	serveASGI  = "asgi"  // uvicorn, or the ASGI server among the dependencies
	serveWSGI  = "wsgi"  // gunicorn or waitress, else the module's own runner
	serveQuart = "quart" // hypercorn, which Quart installs
	serveSanic = "sanic" // Sanic's own server
)

// appKind is a kind of web application object pyship can find in source.
type appKind struct {
	framework string
	serve     string
	re        *regexp.Regexp
}

// appKinds are matched against module source as text: no Python is needed on the host.
var appKinds = []appKind{
	{"fastapi", serveASGI, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:fastapi\.)?FastAPI\(`)},
	{"starlette", serveASGI, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:starlette\.applications\.)?Starlette\(`)},
	{"litestar", serveASGI, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:litestar\.)?Litestar\(`)},
	{"quart", serveQuart, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:quart\.)?Quart\(`)},
	{"sanic", serveSanic, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:sanic\.)?Sanic\(`)},
	{"flask", serveWSGI, regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:flask\.)?Flask\(`)},
	{"falcon", serveWSGI, regexp.MustCompile(`(?m)^(\w+)\s*=\s*falcon\.(?:App|API)\(`)},
	{"bottle", serveWSGI, regexp.MustCompile(`(?m)^(\w+)\s*=\s*(?:bottle\.)?Bottle\(`)},
}

// factoryRe finds an application factory; the framework comes from the module's imports.
var factoryRe = regexp.MustCompile(`(?m)^def\s+(create_app|make_app|get_app|app_factory)\s*\(`)

// frameworks are the frameworks pyship recognises, by import name (which is also the name
// of the distribution that installs them).
var frameworks = []string{"fastapi", "starlette", "litestar", "quart", "sanic", "flask", "falcon", "bottle", "aiohttp", "tornado", "streamlit", "panel", "bokeh", "gradio", "dash", "django", "pyramid"}

// frameworkImportRe finds the import of each framework.
var frameworkImportRe = map[string]*regexp.Regexp{}

func init() {
	for _, f := range frameworks {
		frameworkImportRe[f] = regexp.MustCompile(`(?m)^[ \t]*(?:from|import)[ \t]+` + f + `\b`)
	}
}

// entryFiles are module names that usually hold the app, in order of preference.
var entryFiles = []string{"app.py", "main.py", "server.py", "wsgi.py", "asgi.py", "application.py", "api.py", "streamlit_app.py", "run.py", "index.py", "__init__.py"}

// scriptFiles are files that can be run as scripts, in order of preference.
var scriptFiles = []string{"main.py", "app.py", "server.py", "run.py", "wsgi.py", "asgi.py"}

// candidate is a module that may hold the application.
type candidate struct {
	file   string // path in the repository
	module string // dotted import name
	root   string // "", "src", or the candidate's own directory: where imports start
	src    string
	// sibling is "file:line" of an import of a module beside the candidate, in a package,
	// that the repository's top does not have: the app runs with its directory as the
	// top of its imports.
	sibling string
}

// startCommand fills res.Start, res.Framework and res.Port. In order: pyship config,
// Procfile, gunicorn.conf.py's wsgi_app, Django, a web app in the source, a script. Then
// it refuses a start command that cannot work in the image, and warns about one that
// should not serve production traffic.
func startCommand(fsys fs.FS, cfg *Config, proj *project, res *Result) error {
	res.Port = Port{Number: DefaultPort, Source: "default"}
	var err error
	if res.django, err = findDjango(fsys, cfg, res); err != nil {
		return err
	}
	gconf, err := readGunicornConf(fsys)
	if err != nil {
		return err
	}
	if err := chooseStart(fsys, cfg, proj, gconf, res); err != nil {
		return err
	}
	gconf.portOfCommand(res)
	if cfg != nil && cfg.Port != 0 {
		res.Port = Port{Number: cfg.Port, Source: cfg.Source("port")}
	}
	djangoNotes(cfg, res)
	if err := djangoMigrate(fsys, cfg, res); err != nil {
		return err
	}
	if r := res.release; r != nil {
		res.warnf("%s: the image does not run the release process (%s): an image has no release phase; run it where you deploy, or put it in front of the web command", r.source, excerpt(r.line))
	}
	warnDevServer(fsys, res)
	return checkStartable(fsys, proj, res)
}

func chooseStart(fsys fs.FS, cfg *Config, proj *project, gconf *gunicornConf, res *Result) error {
	if cfg != nil && len(cfg.Start) > 0 {
		res.Start = Start{Command: cfg.Start, Source: cfg.Source("start"), Reason: "set in " + cfg.File}
		return nil
	}
	if found, err := procfileCommand(fsys, res); found || err != nil {
		return err
	}
	if gconf != nil && gconf.wsgiApp != "" {
		gconf.command(res)
		return nil
	}
	if res.django != nil {
		djangoCommand(fsys, gconf, res)
		return nil
	}
	if found, err := pyramidCommand(fsys, res); found || err != nil {
		return err
	}
	cands, err := candidates(fsys)
	if err != nil {
		return err
	}
	if found, err := appCommand(cands, gconf, res); found || err != nil {
		return err
	}
	others := otherScripts(fsys)
	if found, err := scriptAppCommand(others, res); found || err != nil {
		return err
	}
	if err := tornadoUnserved(append(cands, others...)); err != nil {
		return err
	}
	if moduleAppCommand(cands, gconf, res) {
		return nil
	}
	if scriptCommand(fsys, cands, proj, res) {
		return nil
	}
	return &Error{
		Msg: "no start command found",
		Hint: "pyship looked for start in pyship.toml, a Procfile web: line, wsgi_app in gunicorn.conf.py, a Django manage.py, a Pyramid production.ini, a FastAPI/Starlette/Litestar/Quart/Sanic/Flask/aiohttp app, a Tornado, Streamlit, Panel, Bokeh or Gradio script in " +
			strings.Join(entryFiles, ", ") + " (at the top, in packages and under src/; Tornado, Panel and Bokeh in any top-level .py file), a script (" + strings.Join(scriptFiles, ", ") +
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
	if pf.ReleaseLine > 0 {
		res.release = &process{line: pf.Release, source: fmt.Sprintf("Procfile:%d", pf.ReleaseLine)}
	}
	return true, nil
}

// Procfile is what a Procfile declares.
type Procfile struct {
	// Web is the web process's command, and WebLine its line (0 when there is none).
	Web     string
	WebLine int
	// Release is the release process's command (Heroku runs it once before each
	// release), and ReleaseLine its line (0 when there is none).
	Release     string
	ReleaseLine int
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
		if m[1] == "release" && pf.ReleaseLine == 0 {
			pf.Release, pf.ReleaseLine = strings.TrimSpace(m[2]), n
		}
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
	// Modules directly under src/, imported from there (src/app.py beside src/util.py).
	for _, f := range entryFiles {
		if file := path.Join("src", f); f != "__init__.py" && exists(fsys, file) {
			if err := add(file, strings.TrimSuffix(f, ".py"), "src"); err != nil {
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
				if c := &out[len(out)-1]; f != "__init__.py" {
					if imp, line := siblingImport(fsys, path.Join(root, pkg), strings.TrimPrefix(root, "."), c.src); imp != "" {
						c.module, c.root = strings.TrimSuffix(f, ".py"), path.Join(strings.TrimPrefix(root, "."), pkg)
						c.sibling = fmt.Sprintf("%s:%d", file, line)
					}
				}
			}
		}
	}
	return out, nil
}

// importRe finds the first module of an absolute import statement.
var importRe = regexp.MustCompile(`(?m)^[ \t]*(?:from[ \t]+([A-Za-z_]\w*)[\w.]*[ \t]+import\b|import[ \t]+([A-Za-z_]\w*))`)

// siblingImport finds an absolute import, in src of a module in dir, of a module that is
// beside it in dir and not at the top of the imports (top): code written to run from its
// own directory (python app.py there, or gunicorn --pythonpath dir). It returns the module
// and the import's line.
func siblingImport(fsys fs.FS, dir, top, src string) (string, int) {
	has := func(d, name string) bool {
		return exists(fsys, path.Join(d, name+".py")) || isDir(fsys, path.Join(d, name))
	}
	for _, m := range importRe.FindAllStringSubmatchIndex(src, 200) {
		name := ""
		if m[2] >= 0 {
			name = src[m[2]:m[3]]
		} else {
			name = src[m[4]:m[5]]
		}
		if has(dir, name) && !has(path.Join(".", top), name) {
			return name, lineOf(src, m[0])
		}
	}
	return "", 0
}

// isDir reports whether name is a directory in fsys.
func isDir(fsys fs.FS, name string) bool {
	info, err := fs.Stat(fsys, name)
	return err == nil && info.IsDir()
}

// notPackages are directories that hold no application code.
var notPackages = map[string]bool{"tests": true, "test": true, "docs": true, "migrations": true, "node_modules": true, "venv": true, "build": true, "dist": true}

// packages lists the Python packages directly under root: directories with __init__.py,
// and namespace packages (PEP 420, importable all the same) that hold an entry file.
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
		for _, f := range entryFiles {
			if exists(fsys, path.Join(root, name, f)) {
				out = append(out, name)
				break
			}
		}
	}
	return out, nil
}

// appCommand serves the first web application found in the candidates. An app that
// pyship finds but that nothing can serve is an error.
func appCommand(cands []candidate, gconf *gunicornConf, res *Result) (bool, error) {
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
			res.app = &c
			source := fmt.Sprintf("%s:%d", c.file, line)
			cmd, reason := serverCommand(kind, target, factory, c, gconf, res)
			res.Start = Start{Command: cmd, Source: source, PythonPath: c.root, Dir: siblingDir(c),
				Reason: fmt.Sprintf("%s defines the %s %s %s; %s", c.file, kind.framework, what, target, reason)}
			siblingNote(c, res)
			return true, nil
		}
		if found, err := dashCommand(c, gconf, res); found || err != nil {
			return found, err
		}
		for _, find := range []func(candidate, *Result) (bool, error){aiohttpCommand, tornadoCommand, streamlitCommand, panelCommand, bokehCommand, gradioCommand} {
			if found, err := find(c, res); found || err != nil {
				if found {
					res.app = &c
					siblingNote(c, res)
				}
				return found, err
			}
		}
	}
	return false, nil
}

// maxOtherScripts bounds how many top-level scripts outside entryFiles are read.
const maxOtherScripts = 64

// otherScripts reads the .py files at the top of the repository that are not entry files,
// in sorted order: a Tornado, Panel or Bokeh app is often named for what it does
// (helloworld.py, dashboard.py). One that cannot be read is skipped: pyship only looks
// into these for such an app.
func otherScripts(fsys fs.FS) []candidate {
	names, _ := fs.Glob(fsys, "*.py")
	var out []candidate
	for _, name := range names {
		if len(out) == maxOtherScripts {
			break
		}
		if slices.Contains(entryFiles, name) || name == "setup.py" || name == "manage.py" || name == GunicornConf || strings.HasPrefix(name, "test_") || strings.HasSuffix(name, "_test.py") || name == "conftest.py" {
			continue
		}
		data, err := readSource(fsys, name)
		if err != nil {
			continue
		}
		out = append(out, candidate{file: name, module: strings.TrimSuffix(name, ".py"), src: string(data)})
	}
	return out
}

// scriptAppCommand serves the first of the other top-level scripts that is a Tornado,
// Panel or Bokeh app.
func scriptAppCommand(scripts []candidate, res *Result) (bool, error) {
	for _, c := range scripts {
		for _, find := range []func(candidate, *Result) (bool, error){tornadoCommand, panelCommand, bokehCommand} {
			if found, err := find(c, res); found || err != nil {
				if found {
					res.app = &c
					siblingNote(c, res)
				}
				return found, err
			}
		}
	}
	return false, nil
}

// siblingDir is the directory an app that imports the modules beside it runs in: its own,
// as its authors run it ("cd app && gunicorn app:app"). From the top of the repository, a
// module named like its directory (app/app.py) would import as the package instead.
func siblingDir(c candidate) string {
	if c.sibling == "" {
		return ""
	}
	return c.root
}

// siblingNote says why the app's own directory is the top of its imports.
func siblingNote(c candidate, res *Result) {
	if c.sibling == "" {
		return
	}
	res.Notes = append(res.Notes, Note{What: "python path", Value: path.Join("/app", c.root), Source: c.sibling,
		Reason: fmt.Sprintf("%s imports a module beside it in %s as a top-level one, so the app runs with %s as the top of its imports", c.file, c.root, c.root)})
	if dir := res.Start.Dir; dir != "" {
		res.Notes = append(res.Notes, Note{What: "working directory", Value: path.Join("/app", dir), Source: c.sibling,
			Reason: fmt.Sprintf("the server runs the app in its own directory, as its authors do (cd %s first): from /app, a module of %s named like a package or module at the top (app/app.py beside the package app/) would import that instead", dir, dir)})
	}
}

// serverCommand picks the server for an app: the production server among the
// dependencies, else the module's own __main__ runner, else the framework's own.
func serverCommand(kind appKind, target string, factory bool, c candidate, gconf *gunicornConf, res *Result) ([]string, string) {
	deps := res.Dependencies
	flag := func(name string) string {
		if factory {
			return "--" + name + " "
		}
		return ""
	}
	if loc := moduleRunRe.FindStringIndex(c.src); loc != nil && c.root == "" && !strings.Contains(c.module, ".") && (kind.framework == "flask" || kind.serve == serveQuart) {
		// app.run(...) outside any block starts the development server as soon as the
		// module is imported: a server that imported it would never get to serve.
		portOf(c.file, c.src, res)
		if !res.Port.HardCoded && !readsPortRe.MatchString(c.src) && !portArgRe.MatchString(c.src[loc[0]:]) {
			res.Port = Port{Number: 5000, Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, loc[0])), HardCoded: true}
			res.warnf("%s runs the development server on its default port, 5000, and ignores $PORT; the image exposes 5000", res.Port.Source)
		}
		return []string{"python", c.file}, fmt.Sprintf("it starts its server when imported (%s.run at line %d, outside any block)", strings.SplitN(c.src[loc[0]:loc[1]], ".", 2)[0], lineOf(c.src, loc[0]))
	}
	switch kind.serve {
	case serveQuart:
		return shell(fmt.Sprintf(`hypercorn %s --bind "0.0.0.0:$PORT"`, callTarget(target, factory))), "served by hypercorn, which Quart installs"
	case serveSanic:
		if c.root == "" && !strings.Contains(c.module, ".") && runsItself(c.src) && readsPortRe.MatchString(c.src) {
			return []string{"python", c.file}, "it runs itself (app.run) on $PORT"
		}
		return shell(fmt.Sprintf(`sanic %s %s--host 0.0.0.0 --port "$PORT"`, target, flag("factory"))), "served by Sanic's own server"
	case serveASGI:
		switch {
		case deps.Has("uvicorn") || !deps.Has("hypercorn") && !deps.Has("granian") && !deps.Has("daphne"):
			return shell(fmt.Sprintf(`uvicorn %s%s --host 0.0.0.0 --port "$PORT"`, flag("factory"), target)), "served by uvicorn"
		case deps.Has("hypercorn"):
			return shell(fmt.Sprintf(`hypercorn %s --bind "0.0.0.0:$PORT"`, callTarget(target, factory))), "served by hypercorn, a dependency"
		case deps.Has("granian"):
			return shell(fmt.Sprintf(`granian --interface asgi --host 0.0.0.0 --port "$PORT" %s%s`, flag("factory"), target)), "served by granian, a dependency"
		default:
			return shell(fmt.Sprintf(`daphne -b 0.0.0.0 -p "$PORT" %s`, target)), "served by daphne, a dependency"
		}
	}
	if kind.framework == "flask" {
		if cmd, why := socketIOCommand(target, factory, c, gconf, res); cmd != nil {
			return cmd, why
		}
	}
	switch {
	case deps.Has("gunicorn"):
		cmd, why := gconf.gunicorn("'"+strings.Trim(callTarget(target, factory), "'")+"'", res)
		return shell(cmd), "served by gunicorn, a dependency" + why
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
		// FLASK_APP rather than --app, which only Flask 2.2 and later take.
		return shell(fmt.Sprintf(`FLASK_APP=%s python -m flask run --host 0.0.0.0 --port "$PORT"`, target)), "served by flask run (no gunicorn among the dependencies)"
	default:
		cmd, why := gconf.gunicorn("'"+strings.Trim(callTarget(target, factory), "'")+"'", res)
		return shell(cmd), "served by gunicorn" + why
	}
}

var (
	socketIORe       = regexp.MustCompile(`\bSocketIO\(`)
	socketIORunRe    = regexp.MustCompile(`\b\w+\.run\(\s*(\w+)`)
	unsafeWerkzeugRe = regexp.MustCompile(`\ballow_unsafe_werkzeug\s*=`)
)

// socketIOCommand serves a Flask-SocketIO app whose __main__ block calls socketio.run(app)
// in threading mode (neither eventlet nor gevent is a dependency). Run without a terminal,
// socketio.run refuses to start Werkzeug's server unless told allow_unsafe_werkzeug, so the
// script is not run: gunicorn with threads (Flask-SocketIO's documented threading
// deployment) when it is a dependency, else flask run, the Werkzeug server socketio.run
// would have used. nil when the app is not of this shape.
func socketIOCommand(target string, factory bool, c candidate, gconf *gunicornConf, res *Result) ([]string, string) {
	deps := res.Dependencies
	main := mainBlockRe.FindStringIndex(c.src)
	if main == nil || !socketIORe.MatchString(c.src) || deps.Has("eventlet") || deps.Has("gevent") {
		return nil, ""
	}
	block := c.src[main[1]:]
	var run []int
	for _, m := range socketIORunRe.FindAllStringSubmatchIndex(block, -1) {
		if arg := block[m[2]:m[3]]; arg == "app" || arg == target[strings.LastIndex(target, ":")+1:] {
			run = m
			break
		}
	}
	if run == nil || unsafeWerkzeugRe.MatchString(block[run[0]:]) {
		return nil, ""
	}
	line := lineOf(c.src, main[1]+run[0])
	why := fmt.Sprintf("its __main__ block starts it with socketio.run (line %d), which refuses to start Werkzeug's server without a terminal", line)
	if deps.Has("gunicorn") {
		cmd, bind := gconf.gunicorn("'"+strings.Trim(callTarget(target, factory), "'")+"'", res)
		return shell(cmd + " --worker-class gthread --threads 100 -w 1"), why + "; served by gunicorn, a dependency, with one worker of 100 threads (Flask-SocketIO's threading deployment)" + bind
	}
	return shell(fmt.Sprintf(`FLASK_APP=%s python -m flask run --host 0.0.0.0 --port "$PORT"`, target)), why + "; served by flask run, the same Werkzeug server, on $PORT (no gunicorn among the dependencies)"
}

// callTarget writes a factory as a call, the way gunicorn and hypercorn take it, quoted
// for the shell.
func callTarget(target string, factory bool) string {
	if factory {
		return "'" + target + "()'"
	}
	return target
}

// runsItself reports whether a module starts its server when run: app.run(...).
func runsItself(src string) bool { return runCallRe.MatchString(src) }

var (
	runCallRe = regexp.MustCompile(`(?m)^[ \t]*\w+\.run\(`)
	// moduleRunRe is app.run( at the top level of a module, run on import.
	moduleRunRe = regexp.MustCompile(`(?m)^\w+\.run\(`)
	// portArgRe is a port given to a run call.
	portArgRe = regexp.MustCompile(`^\w+\.run\([^)]*\bport\s*=`)
)

// shell runs a command line pyship writes.
func shell(cmd string) []string { return shellCommand(cmd) }

// moduleAppRe finds an application object made by a call, like app = create_app(), in a
// wsgi.py, asgi.py or run.py whose framework pyship cannot tell.
var moduleAppRe = regexp.MustCompile(`(?m)^(application|app)\s*(?::\s*[\w.]+\s*)?=\s*[\w.]+\(`)

// moduleAppCommand serves the application object of a wsgi.py or asgi.py (or run.py, when
// a WSGI server is a dependency): the module is the app's entry point whatever makes it.
func moduleAppCommand(cands []candidate, gconf *gunicornConf, res *Result) bool {
	deps := res.Dependencies
	for _, c := range cands {
		base := path.Base(c.file)
		kind := appKind{serve: serveWSGI}
		switch {
		case base == "asgi.py":
			kind.serve = serveASGI
		case base == "wsgi.py":
		case base == "run.py" && (deps.Has("gunicorn") || deps.Has("waitress")):
		default:
			continue
		}
		m := moduleAppRe.FindStringSubmatchIndex(c.src)
		if m == nil {
			continue
		}
		target := c.module + ":" + c.src[m[2]:m[3]]
		cmd, reason := serverCommand(kind, target, false, c, gconf, res)
		res.Start = Start{Command: cmd, Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, m[0])), PythonPath: c.root,
			Reason: fmt.Sprintf("%s makes the %s application %s; %s", c.file, strings.ToUpper(kind.serve), target, reason)}
		return true
	}
	return false
}

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
		names := slices.Sorted(maps.Keys(proj.scripts))
		res.warnf("pyproject.toml has %d scripts (%s); set start in pyship.toml to pick one", len(names), strings.Join(names, ", "))
	}
	return false
}

// portOf notes a port the script hard-codes: the image exposes it, and the app ignores
// $PORT.
func portOf(file, src string, res *Result) { literalPort(file, src, hardPortRes, res) }

// literalPort notes the first literal port that one of res finds in a script that does
// not read $PORT, and reports whether it found one.
func literalPort(file, src string, portRes []*regexp.Regexp, res *Result) bool {
	if readsPortRe.MatchString(src) {
		return false
	}
	for _, re := range portRes {
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
		return true
	}
	return false
}
