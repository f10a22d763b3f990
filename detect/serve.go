package detect

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Frameworks whose apps are scripts rather than objects a server imports: aiohttp, which
// runs itself or is started by its own module; Tornado, whose script listens; Streamlit,
// Panel and Bokeh, whose script their own server runs; Gradio, whose script launches its
// server.

var (
	aiohttpAppRe = regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:aiohttp\.)?(?:web\.)?Application\(`)
	// aiohttpFactoryRe finds a function that makes the application: one with a factory's
	// name, or one annotated to return an Application.
	aiohttpFactoryRe = regexp.MustCompile(`(?m)^(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(([^)]*)\)[ \t]*(->[ \t]*[\w.]*Application)?`)
	factoryNameRe    = regexp.MustCompile(`^(?:create|make|get|build|init|setup)_?app(?:lication)?$|^app_factory$|^init$`)
	runAppRe         = regexp.MustCompile(`\brun_app\(`)
	gradioAppRe      = regexp.MustCompile(`(?m)^(\w+)\s*=\s*(?:gr|gradio)\.(?:Blocks|Interface|ChatInterface|TabbedInterface)\(|\bwith\s+(?:gr|gradio)\.Blocks\([^\n]*\)\s+as\s+(\w+)\s*:`)
	launchRe         = regexp.MustCompile(`\.launch\(`)
	mountGradioRe    = regexp.MustCompile(`\bmount_gradio_app\(`)
	gradioLocalRe    = regexp.MustCompile(`\.launch\([^)]*\bserver_name\s*=\s*['"](127\.0\.0\.1|localhost)['"]`)
	// tornadoAppRe is the making of a Tornado Application, and tornadoListenRe what
	// starts one listening: app.listen, an HTTPServer, server.bind.
	tornadoAppRe    = regexp.MustCompile(`\b(?:tornado\.)?(?:web\.)?Application\(`)
	tornadoListenRe = regexp.MustCompile(`\.listen\(|\bHTTPServer\(|\.bind\(`)
	// tornadoPortRes find the literal port a Tornado script listens on: .listen(8888),
	// server.bind(8888), or the default of tornado.options' port.
	tornadoPortRes = []*regexp.Regexp{
		regexp.MustCompile(`\.listen\(\s*(\d+)\s*[,)]`),
		regexp.MustCompile(`\.bind\(\s*(\d+)\s*[,)]`),
		regexp.MustCompile(`\bdefine\(\s*['"]port['"][^)]*\bdefault\s*=\s*(\d+)`),
	}
	servableRe = regexp.MustCompile(`\.servable\(`)
	curdocRe   = regexp.MustCompile(`\bcurdoc\(\)`)
)

// scriptArgs runs a candidate as a script: python FILE at the top, python -m MODULE in a
// package.
func scriptArgs(c candidate) []string {
	if c.root == "" && !strings.Contains(c.module, ".") {
		return []string{"python", c.file}
	}
	return []string{"python", "-m", c.module}
}

// aiohttpCommand serves an aiohttp application: the script that runs it on $PORT, else
// aiohttp's own runner on its factory, else the script on the port it fixes. An
// application that nothing runs is an error.
func aiohttpCommand(c candidate, res *Result) (bool, error) {
	imp := frameworkImportRe["aiohttp"].FindStringIndex(c.src)
	if imp == nil || !strings.Contains(c.src, "Application(") && !runAppRe.MatchString(c.src) {
		return false, nil
	}
	res.Framework = "aiohttp"
	run := runAppRe.FindStringIndex(c.src)
	factory, params, factoryLine := "", "", 0
	for _, m := range aiohttpFactoryRe.FindAllStringSubmatchIndex(c.src, -1) {
		name := c.src[m[2]:m[3]]
		if factoryNameRe.MatchString(name) || m[6] >= 0 {
			factory, params, factoryLine = name, strings.TrimSpace(c.src[m[4]:m[5]]), lineOf(c.src, m[0])
			break
		}
	}
	switch {
	case run != nil && readsPortRe.MatchString(c.src):
		res.Start = Start{Command: scriptArgs(c), Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, run[0])), PythonPath: c.root,
			Reason: c.file + " runs its aiohttp application with web.run_app on $PORT"}
		return true, nil
	case factory != "":
		target := c.module + ":" + factory
		source := fmt.Sprintf("%s:%d", c.file, factoryLine)
		if params != "" {
			// aiohttp's runner calls the factory with the command line's extra arguments.
			res.Start = Start{Command: shell(fmt.Sprintf(`python -m aiohttp.web -H 0.0.0.0 -P "$PORT" %s`, target)), Source: source, PythonPath: c.root,
				Reason: fmt.Sprintf("%s defines the aiohttp app factory %s; served by aiohttp's runner (python -m aiohttp.web) on $PORT", c.file, factory)}
		} else {
			// aiohttp's runner passes an argument the factory does not take: run_app is
			// called directly instead.
			res.Start = Start{Command: shell(fmt.Sprintf(`python -c 'import os; from aiohttp import web; import %s as m; web.run_app(m.%s(), host="0.0.0.0", port=int(os.environ["PORT"]))'`, c.module, factory)),
				Source: source, PythonPath: c.root,
				Reason: fmt.Sprintf("%s defines the aiohttp app factory %s, which takes no argument; served by web.run_app on $PORT", c.file, factory)}
		}
		if run != nil {
			res.Start.Reason += fmt.Sprintf(" (the web.run_app on line %d ignores $PORT)", lineOf(c.src, run[0]))
		}
		return true, nil
	case run != nil:
		line := lineOf(c.src, run[0])
		res.Start = Start{Command: scriptArgs(c), Source: fmt.Sprintf("%s:%d", c.file, line), PythonPath: c.root,
			Reason: c.file + " runs its aiohttp application with web.run_app"}
		portOf(c.file, c.src, res)
		if !res.Port.HardCoded {
			// run_app listens on 8080 when it is given no port.
			res.Port = Port{Number: 8080, Source: fmt.Sprintf("%s:%d", c.file, line), HardCoded: true}
		}
		return true, nil
	}
	m := aiohttpAppRe.FindStringSubmatchIndex(c.src)
	if m == nil {
		res.Framework = ""
		return false, nil
	}
	name := c.src[m[2]:m[3]]
	if res.Dependencies.Has("gunicorn") {
		target := c.module + ":" + name
		res.Start = Start{Command: shell(fmt.Sprintf(`gunicorn '%s' --worker-class aiohttp.GunicornWebWorker --bind "0.0.0.0:$PORT"`, target)),
			Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, m[0])), PythonPath: c.root,
			Reason: fmt.Sprintf("%s defines the aiohttp application %s; served by gunicorn, a dependency, with aiohttp's worker", c.file, target)}
		return true, nil
	}
	return false, &Error{File: c.file, Line: lineOf(c.src, m[0]),
		Msg:  fmt.Sprintf("defines the aiohttp application %s but never runs it, and no server can import it", name),
		Hint: fmt.Sprintf(`run it from the script: add web.run_app(%s, port=int(os.environ.get("PORT", "8080"))) under if __name__ == "__main__":, or make it in a factory (def create_app(argv): ...) that python -m aiohttp.web can call`, name)}
}

// tornadoCommand runs a script that imports Tornado and starts listening, on $PORT when
// it reads it, else on the port it fixes. A Tornado Application it never listens on is
// left to tornadoUnserved, since another script may listen on it.
func tornadoCommand(c candidate, res *Result) (bool, error) {
	if !frameworkImportRe["tornado"].MatchString(c.src) || path.Base(c.file) == "__init__.py" {
		return false, nil
	}
	// A script that imports Tornado and calls .listen( listens on an application made
	// here or imported; .bind( is a socket's unless the script makes an application.
	listen := tornadoListenRe.FindStringIndex(c.src)
	if listen == nil || !tornadoAppRe.MatchString(c.src) && !strings.Contains(c.src, ".listen(") {
		return false, nil
	}
	res.Framework = "tornado"
	source := fmt.Sprintf("%s:%d", c.file, lineOf(c.src, listen[0]))
	res.Start = Start{Command: scriptArgs(c), Source: source, PythonPath: c.root}
	if readsPortRe.MatchString(c.src) {
		res.Start.Reason = c.file + " starts its Tornado application listening (line " + strconv.Itoa(lineOf(c.src, listen[0])) + ") on $PORT"
		return true, nil
	}
	res.Start.Reason = c.file + " starts its Tornado application listening (line " + strconv.Itoa(lineOf(c.src, listen[0])) + ")"
	if !literalPort(c.file, c.src, tornadoPortRes, res) {
		res.warnf("%s: pyship cannot tell which port the Tornado application listens on; the image exposes %d: listen on int(os.environ.get(\"PORT\", \"%d\")), or set port in pyship.toml", source, DefaultPort, DefaultPort)
	}
	return true, nil
}

// tornadoUnserved is the error for a Tornado Application that no script listens on: the
// first module that makes one, after every script was tried.
func tornadoUnserved(cands []candidate) error {
	for _, c := range cands {
		if !frameworkImportRe["tornado"].MatchString(c.src) {
			continue
		}
		m := tornadoAppRe.FindStringIndex(c.src)
		if m == nil {
			continue
		}
		return &Error{File: c.file, Line: lineOf(c.src, m[0]),
			Msg:  "makes a Tornado Application but never listens on it, and no server can import it",
			Hint: `listen from the script: under if __name__ == "__main__":, call app.listen(int(os.environ.get("PORT", "8888"))) and then tornado.ioloop.IOLoop.current().start()`}
	}
	return nil
}

// panelCommand serves a script that imports Panel and marks something .servable() with
// panel serve.
func panelCommand(c candidate, res *Result) (bool, error) {
	return serveScript(c, res, "panel", servableRe, "marks a component .servable(): a Panel app")
}

// bokehCommand serves a script that imports Bokeh and builds its document with curdoc()
// with bokeh serve. A Panel script is Panel's.
func bokehCommand(c candidate, res *Result) (bool, error) {
	if frameworkImportRe["panel"].MatchString(c.src) {
		return false, nil
	}
	return serveScript(c, res, "bokeh", curdocRe, "builds its document with curdoc(): a Bokeh server app")
}

// serveScript serves a script that imports framework and has what marks (Panel's and
// Bokeh's servers take the script itself: FRAMEWORK serve FILE).
func serveScript(c candidate, res *Result, framework string, marks *regexp.Regexp, what string) (bool, error) {
	if !frameworkImportRe[framework].MatchString(c.src) || path.Base(c.file) == "__init__.py" {
		return false, nil
	}
	m := marks.FindStringIndex(c.src)
	if m == nil {
		return false, nil
	}
	res.Framework = framework
	res.Start = Start{Command: shell(fmt.Sprintf(`%s serve %s --address 0.0.0.0 --port "$PORT" --allow-websocket-origin '*'`, framework, c.file)),
		Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, m[0])), PythonPath: c.root,
		Reason: fmt.Sprintf("%s imports %s and %s, served by %s serve on $PORT", c.file, framework, what, framework)}
	res.SmokePath = appPath(c, framework+" serve")
	return true, nil
}

// appPath is where panel serve and bokeh serve put the app of a script: at its name. They
// answer "/" with a redirect, which says nothing of whether the script runs.
func appPath(c candidate, server string) *Fact {
	p := "/" + strings.TrimSuffix(path.Base(c.file), ".py")
	return &Fact{Value: p, Source: c.file, Reason: fmt.Sprintf("%s serves the script at %s and answers / with only a redirect", server, p)}
}

// streamlitCommand runs a script that imports Streamlit with streamlit run.
func streamlitCommand(c candidate, res *Result) (bool, error) {
	m := frameworkImportRe["streamlit"].FindStringIndex(c.src)
	if m == nil || path.Base(c.file) == "__init__.py" {
		return false, nil
	}
	res.Framework = "streamlit"
	res.Start = Start{Command: shell(fmt.Sprintf(`streamlit run %s --server.port "$PORT" --server.address 0.0.0.0 --server.headless true`, c.file)),
		Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, m[0])), PythonPath: c.root,
		Reason: c.file + " imports streamlit: a Streamlit script, run by streamlit run on $PORT"}
	return true, nil
}

// gradioCommand runs a script that launches a Gradio app, telling Gradio the address and
// port through the variables it reads. A Gradio app that is never launched (nor mounted
// in another app) is an error.
func gradioCommand(c candidate, res *Result) (bool, error) {
	if !frameworkImportRe["gradio"].MatchString(c.src) {
		return false, nil
	}
	m := gradioAppRe.FindStringSubmatchIndex(c.src)
	if m == nil {
		return false, nil
	}
	name := ""
	if m[2] >= 0 {
		name = c.src[m[2]:m[3]]
	} else {
		name = c.src[m[4]:m[5]]
	}
	line := lineOf(c.src, m[0])
	launch := launchRe.FindStringIndex(c.src)
	if launch == nil {
		if mountGradioRe.MatchString(c.src) {
			return false, nil // the app that mounts it is what serves
		}
		return false, &Error{File: c.file, Line: line, Msg: fmt.Sprintf("defines the Gradio app %s but never launches it", name),
			Hint: fmt.Sprintf("add %s.launch() at the end of %s (pyship sets GRADIO_SERVER_NAME and GRADIO_SERVER_PORT), or mount it in a FastAPI app with gr.mount_gradio_app", name, c.file)}
	}
	res.Framework = "gradio"
	args := scriptArgs(c)
	res.Start = Start{Command: shell(`GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT="$PORT" ` + strings.Join(args, " ")),
		Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, launch[0])), PythonPath: c.root,
		Reason: fmt.Sprintf("%s launches the Gradio app %s (line %d); GRADIO_SERVER_NAME and GRADIO_SERVER_PORT make it listen on 0.0.0.0:$PORT", c.file, name, line)}
	portOf(c.file, c.src, res)
	if loc := gradioLocalRe.FindStringIndex(c.src); loc != nil {
		res.warnf("%s:%d: launch(server_name=...) binds the loopback address, which nothing outside the container can reach; remove server_name", c.file, lineOf(c.src, loc[0]))
	}
	return true, nil
}

// warnDevServer warns when the start command serves with a framework's development
// server: Flask's app.run or flask run, Django's runserver. They serve one request at a
// time and say themselves that they are not for production.
func warnDevServer(fsys fs.FS, res *Result) {
	for _, words := range startCommands(res.Start.Command) {
		name, args := programOf(words)
		var a []string
		for _, w := range args {
			a = append(a, unquote(w))
		}
		switch {
		case name == "flask" && slices.Contains(a, "run"),
			(name == "python" || name == "python3") && len(a) > 1 && a[0] == "-m" && a[1] == "flask" && slices.Contains(a, "run"):
			res.warnf("%s: flask run is Flask's development server, not made for production; add gunicorn to the dependencies and pyship serves the app with it", res.Start.Source)
		case (name == "python" || name == "python3") && len(a) > 1 && path.Base(a[0]) == "manage.py" && a[1] == "runserver":
			res.warnf("%s: Django runs on its development server (manage.py runserver), not made for production; add gunicorn to the dependencies", res.Start.Source)
		case (name == "python" || name == "python3") && len(a) > 0 && strings.HasSuffix(a[0], ".py"):
			data, err := readSource(fsys, a[0])
			if err != nil {
				continue
			}
			src := string(data)
			if !frameworkImportRe["flask"].MatchString(src) {
				continue
			}
			if socketIORe.MatchString(src) && (res.Dependencies.Has("eventlet") || res.Dependencies.Has("gevent")) {
				continue // socketio.run serves on eventlet's or gevent's server
			}
			if m := runCallRe.FindStringIndex(src); m != nil {
				res.warnf("%s:%d: app.run starts Flask's development server, not made for production; add gunicorn to the dependencies and pyship serves the app with it", a[0], lineOf(src, m[0]))
			}
		}
	}
}

// dashRe finds a Dash app: app = Dash(__name__) or dash.Dash(...).
var dashRe = regexp.MustCompile(`(?m)^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:dash\.)?Dash\(`)

// dashRunRe finds a Dash app run by its own server: app.run(...) or app.run_server(...).
var dashRunRe = regexp.MustCompile(`(?m)^[ \t]+(\w+)\.run(?:_server)?\(`)

// dashCommand serves a Dash app whose module gives it its layout: its Flask server, as
// Dash's deployment guide has it (server = app.server, served by gunicorn or waitress), else
// the script that runs it, with HOST set so that Dash's server listens on every interface
// (it reads PORT itself).
func dashCommand(c candidate, gconf *gunicornConf, res *Result) (bool, error) {
	m := dashRe.FindStringSubmatchIndex(c.src)
	if m == nil || !frameworkImportRe["dash"].MatchString(c.src) {
		return false, nil
	}
	app := c.src[m[2]:m[3]]
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(app) + `\.layout\s*=`).MatchString(c.src) {
		// The app's pages are made elsewhere (an index.py that imports it): serving this
		// module alone would serve a Dash app without a layout.
		return false, nil
	}
	source := fmt.Sprintf("%s:%d", c.file, lineOf(c.src, m[0]))
	deps := res.Dependencies
	server := ""
	if s := regexp.MustCompile(`(?m)^(\w+)\s*=\s*` + regexp.QuoteMeta(app) + `\.server\b`).FindStringSubmatch(c.src); s != nil {
		server = s[1]
	}
	var target string
	switch {
	case server != "" && (deps.Has("gunicorn") || deps.Has("waitress")):
		target = c.module + ":" + server
	case deps.Has("waitress"):
		target = c.module + ":" + app + ".server" // waitress resolves attributes; gunicorn does not
	}
	res.Framework = "dash"
	res.app = &c
	if target != "" {
		cmd, reason := serverCommand(appKind{framework: "dash", serve: serveWSGI}, target, false, c, gconf, res)
		res.Start = Start{Command: cmd, Source: source, PythonPath: c.root, Dir: siblingDir(c),
			Reason: fmt.Sprintf("%s defines the Dash app %s, whose Flask server is %s; %s", c.file, app, target, reason)}
		siblingNote(c, res)
		return true, nil
	}
	run := dashRunRe.FindStringSubmatchIndex(c.src)
	if run == nil || c.src[run[2]:run[3]] != app || !mainBlockRe.MatchString(c.src) {
		return false, &Error{File: c.file, Line: lineOf(c.src, m[0]), Msg: fmt.Sprintf("defines the Dash app %s but nothing serves it", app),
			Hint: fmt.Sprintf("add server = %s.server below it and gunicorn to the dependencies (pyship serves %s:server with it), or run it under if __name__ == \"__main__\": with %s.run()", app, c.module, app)}
	}
	portOf(c.file, c.src, res)
	res.Start = Start{Command: scriptArgs(c), Source: fmt.Sprintf("%s:%d", c.file, lineOf(c.src, run[0])), PythonPath: c.root,
		Env:    []string{"HOST=0.0.0.0"},
		Reason: fmt.Sprintf("%s runs the Dash app %s with its own server (no server = %s.server served by gunicorn or waitress); HOST=0.0.0.0 makes it listen on every interface, and it reads PORT", c.file, app, app)}
	return true, nil
}
