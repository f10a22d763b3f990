package detect

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

const (
	tornadoHandlers = "import os\nimport tornado.ioloop\nimport tornado.web\n\nclass Hello(tornado.web.RequestHandler):\n    def get(self):\n        self.write('hi')\n\n" // 8 lines
	pyramidSetup    = "from setuptools import setup, find_packages\n\nrequires = [\n    'pyramid',\n    'waitress',\n]\n\nsetup(name='shop', packages=find_packages(), install_requires=requires,\n      entry_points={'paste.app_factory': ['main = shop:main']})\n"
	pyramidINI      = "###\n# app configuration\n###\n\n[app:main]\nuse = egg:shop\npyramid.reload_templates = false\n\n[server:main]\nuse = egg:waitress#main\nlisten = *:6543\n\n[loggers]\nkeys = root\n"
	socketIOApp     = "from flask import Flask\nfrom flask_socketio import SocketIO\n\napp = Flask(__name__)\nsocketio = SocketIO(app)\n\nif __name__ == '__main__':\n    socketio.run(app)\n"
)

// TestScriptServers covers the apps that their own server runs from a script or a
// configuration file: Tornado, Panel, Bokeh, Pyramid's pserve, and Flask-SocketIO's
// socketio.run.
func TestScriptServers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		files     map[string]string
		start     []string
		startFrom string
		port      Port
		framework string
		warned    string
	}{
		{
			name: "tornado in a top-level script of its own name, on PORT",
			files: map[string]string{"helloworld.py": tornadoHandlers + "def make_app():\n    return tornado.web.Application([(r'/', Hello)])\n\nif __name__ == '__main__':\n    app = make_app()\n    app.listen(os.environ['PORT'])\n    tornado.ioloop.IOLoop.current().start()\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "helloworld.py"},
			startFrom: "helloworld.py:14",
			framework: "tornado",
		},
		{
			name:      "tornado on a literal port",
			files:     map[string]string{"main.py": tornadoHandlers + "if __name__ == '__main__':\n    app = tornado.web.Application([(r'/', Hello)])\n    app.listen(8888)\n    tornado.ioloop.IOLoop.current().start()\n", "requirements.txt": "tornado\n"},
			start:     []string{"python", "main.py"},
			startFrom: "main.py:11",
			port:      Port{8888, "main.py:11", true},
			framework: "tornado",
			warned:    "main.py:11 hard-codes port 8888 and ignores $PORT",
		},
		{
			name: "tornado on the default of tornado.options' port",
			files: map[string]string{"server.py": "import tornado.web\nfrom tornado.options import define, options\n\ndefine('port', default=8000, help='port', type=int)\n\nif __name__ == '__main__':\n    options.parse_command_line()\n    tornado.web.Application([]).listen(options.port)\n    tornado.ioloop.IOLoop.current().start()\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "server.py"},
			startFrom: "server.py:8",
			port:      Port{8000, "server.py:4", true},
			framework: "tornado",
			warned:    "server.py:4 hard-codes port 8000",
		},
		{
			name: "tornado with asyncio.run, on PORT",
			files: map[string]string{"app.py": tornadoHandlers + "async def main():\n    app = tornado.web.Application([(r'/', Hello)])\n    app.listen(int(os.environ.get('PORT', '8888')))\n    await asyncio.Event().wait()\n\nif __name__ == '__main__':\n    asyncio.run(main())\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:11",
			framework: "tornado",
		},
		{
			name: "tornado through an HTTPServer",
			files: map[string]string{"serve.py": tornadoHandlers + "if __name__ == '__main__':\n    server = tornado.httpserver.HTTPServer(tornado.web.Application([]))\n    server.listen(9000)\n    tornado.ioloop.IOLoop.current().start()\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "serve.py"},
			startFrom: "serve.py:10",
			port:      Port{9000, "serve.py:11", true},
			framework: "tornado",
			warned:    "serve.py:11 hard-codes port 9000",
		},
		{
			name: "tornado on a port pyship cannot tell",
			files: map[string]string{"main.py": tornadoHandlers + "PORT_NUMBER = 8123\nif __name__ == '__main__':\n    tornado.web.Application([]).listen(PORT_NUMBER)\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "main.py"},
			startFrom: "main.py:11",
			framework: "tornado",
			warned:    "main.py:11: pyship cannot tell which port the Tornado application listens on",
		},
		{
			name: "an entry file comes before other scripts, which come in sorted order",
			files: map[string]string{
				"server.py":        tornadoHandlers + "tornado.web.Application([]).listen(int(os.environ['PORT']))\n",
				"aaa.py":           tornadoHandlers + "tornado.web.Application([]).listen(1111)\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "server.py"},
			startFrom: "server.py:9",
			framework: "tornado",
		},
		{
			name: "other scripts in sorted order",
			files: map[string]string{
				"zebra.py":         tornadoHandlers + "tornado.web.Application([]).listen(int(os.environ['PORT']))\n",
				"hello.py":         tornadoHandlers + "tornado.web.Application([]).listen(int(os.environ['PORT']))\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "hello.py"},
			startFrom: "hello.py:9",
			framework: "tornado",
		},
		{
			name: "tornado in a package runs as a module",
			files: map[string]string{"web/__init__.py": "", "web/server.py": tornadoHandlers + "if __name__ == '__main__':\n    tornado.web.Application([]).listen(int(os.environ['PORT']))\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "-m", "web.server"},
			startFrom: "web/server.py:10",
			framework: "tornado",
		},
		{
			name: "a tornado application another script listens on",
			files: map[string]string{"app.py": tornadoHandlers + "application = tornado.web.Application([(r'/', Hello)])\n",
				"serve_forever.py": "import os\nimport tornado.ioloop\nfrom app import application\n\napplication.listen(int(os.environ['PORT']))\ntornado.ioloop.IOLoop.current().start()\n",
				"requirements.txt": "tornado\n"},
			start:     []string{"python", "serve_forever.py"},
			startFrom: "serve_forever.py:5",
			framework: "tornado",
		},
		{
			name:      "panel",
			files:     map[string]string{"app.py": "import panel as pn\n\npn.extension()\npn.panel('# hello').servable()\n", "requirements.txt": "panel\n"},
			start:     sh(`panel serve app.py --address 0.0.0.0 --port "$PORT" --allow-websocket-origin '*'`),
			startFrom: "app.py:4",
			framework: "panel",
		},
		{
			name:      "panel in a script of its own name, with bokeh imported too",
			files:     map[string]string{"dashboard.py": "import panel as pn\nfrom bokeh.plotting import figure, curdoc\n\np = figure()\npn.Row(p).servable(title='x')\n", "requirements.txt": "panel\n"},
			start:     sh(`panel serve dashboard.py --address 0.0.0.0 --port "$PORT" --allow-websocket-origin '*'`),
			startFrom: "dashboard.py:5",
			framework: "panel",
		},
		{
			name:      "bokeh",
			files:     map[string]string{"main.py": "from bokeh.io import curdoc\nfrom bokeh.plotting import figure\n\np = figure()\ncurdoc().add_root(p)\n", "requirements.txt": "bokeh\n"},
			start:     sh(`bokeh serve main.py --address 0.0.0.0 --port "$PORT" --allow-websocket-origin '*'`),
			startFrom: "main.py:5",
			framework: "bokeh",
		},
		{
			name:      "panel that serves nothing is a script",
			files:     map[string]string{"main.py": "import panel as pn\npn.panel('hi').save('out.html')\n", "requirements.txt": "panel\n"},
			start:     []string{"python", "main.py"},
			startFrom: "main.py",
			warned:    "main.py has no __main__ block",
		},
		{
			name: "pyramid from production.ini, with a committed venv",
			files: map[string]string{"setup.py": pyramidSetup, "production.ini": pyramidINI, "development.ini": strings.Replace(pyramidINI, "*:6543", "localhost:6543", 1),
				"shop/__init__.py": "from pyramid.config import Configurator\n\ndef main(global_config, **settings):\n    pass\n",
				"venv/pyvenv.cfg":  "home = /usr/bin\n", "venv/lib/python3.9/site-packages/flask/app.py": flaskApp, "venv/bin/app.py": flaskApp},
			start:     []string{"pserve", "production.ini"},
			startFrom: "production.ini:5",
			port:      Port{6543, "production.ini:11", true},
			framework: "pyramid",
			warned:    "production.ini:11 hard-codes port 6543 and ignores $PORT",
		},
		{
			name: "pyramid from development.ini, host and port",
			files: map[string]string{"requirements.txt": "pyramid==2.1\nwaitress==3.0.2\n.\n", "setup.py": pyramidSetup,
				"development.ini": "[app:main]\nuse = egg:shop\npyramid.includes =\n    pyramid_debugtoolbar\n\n[server:main]\nuse = egg:waitress#main\nhost = 0.0.0.0\nport = 5000\n"},
			start:     []string{"pserve", "development.ini"},
			startFrom: "development.ini:1",
			port:      Port{5000, "development.ini:9", true},
			framework: "pyramid",
			warned:    "development.ini:1: pserve runs development.ini, the development configuration",
		},
		{
			name: "pyramid on waitress's default port",
			files: map[string]string{"requirements.txt": "pyramid\nwaitress\n.\n", "setup.py": pyramidSetup,
				"production.ini": "[app:main]\nuse = egg:shop\n[server:main]\nuse = egg:waitress#main\n"},
			start:     []string{"pserve", "production.ini"},
			startFrom: "production.ini:1",
			framework: "pyramid",
		},
		{
			name: "an app pserve cannot find is a warning",
			files: map[string]string{"requirements.txt": "pyramid\nwaitress\n", "production.ini": pyramidINI,
				"shop/__init__.py": "def main(global_config, **settings):\n    pass\n"},
			start:     []string{"pserve", "production.ini"},
			startFrom: "production.ini:5",
			port:      Port{6543, "production.ini:11", true},
			framework: "pyramid",
			warned:    "production.ini:6: use = egg:shop loads the app from the installed distribution shop, which no dependency input installs: list . in requirements.txt",
		},
		{
			name:      "an ini without pyramid is no pyramid app",
			files:     map[string]string{"production.ini": pyramidINI, "app.py": flaskApp, "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn 'app:app' --bind "0.0.0.0:$PORT"`),
			startFrom: "app.py:2",
			framework: "flask",
		},
		{
			name:      "flask-socketio without gunicorn runs on flask run",
			files:     map[string]string{"app.py": socketIOApp, "requirements.txt": "flask\nflask-socketio\n"},
			start:     sh(`env FLASK_APP=app:app python -m flask run --host 0.0.0.0 --port "$PORT"`),
			startFrom: "app.py:4",
			framework: "flask",
			warned:    "app.py:4: flask run is Flask's development server",
		},
		{
			name:      "flask-socketio with gunicorn runs on its threads",
			files:     map[string]string{"app.py": socketIOApp, "requirements.txt": "flask\nflask-socketio\ngunicorn\n"},
			start:     sh(`gunicorn 'app:app' --bind "0.0.0.0:$PORT" --worker-class gthread --threads 100 -w 1`),
			startFrom: "app.py:4",
			framework: "flask",
		},
		{
			name:      "flask-socketio allowed to run werkzeug runs itself",
			files:     map[string]string{"app.py": strings.Replace(socketIOApp, "socketio.run(app)", "socketio.run(app, host='0.0.0.0', port=int(os.environ['PORT']), allow_unsafe_werkzeug=True)", 1), "requirements.txt": "flask\nflask-socketio\n"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:4",
			framework: "flask",
			warned:    "app.py:8: app.run starts Flask's development server",
		},
		{
			name:      "flask-socketio on eventlet runs itself",
			files:     map[string]string{"app.py": socketIOApp, "requirements.txt": "flask\nflask-socketio\neventlet\n"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:4",
			framework: "flask",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Start.Command, tc.start) || res.Start.Source != tc.startFrom || res.Start.Reason == "" {
				t.Errorf("start %q from %q (%q), want %q from %q", res.Start.Command, res.Start.Source, res.Start.Reason, tc.start, tc.startFrom)
			}
			port := tc.port
			if port == (Port{}) {
				port = Port{8080, "default", false}
			}
			if res.Port != port || res.Framework != tc.framework {
				t.Errorf("port %+v framework %q, want %+v %q", res.Port, res.Framework, port, tc.framework)
			}
			warned := strings.Join(res.Warnings, "\n")
			if tc.warned == "" && warned != "" || !strings.Contains(warned, tc.warned) {
				t.Errorf("warnings %q, want %q", warned, tc.warned)
			}
		})
	}
}

// TestScriptServerErrors covers the shapes pyship refuses, with the file, line and fix.
func TestScriptServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"tornado application never listened on", map[string]string{"main.py": "import tornado.web\napp = tornado.web.Application([])\n", "requirements.txt": "tornado\n"},
			[]string{"main.py:2", "never listens on it", "hint: listen from the script", "app.listen(int(os.environ.get(\"PORT\""}},
		{"tornado application in a script of its own name never listened on", map[string]string{"hello.py": "from tornado import web\n\napp = web.Application([])\n", "requirements.txt": "tornado\n"},
			[]string{"hello.py:3", "never listens on it"}},
		{"pyramid listening on localhost", map[string]string{"setup.py": pyramidSetup, "production.ini": strings.Replace(pyramidINI, "*:6543", "localhost:6543", 1)},
			[]string{"production.ini:11", "loopback", "hint: listen on every address: listen = *:6543"}},
		{"pyramid listening on 127.0.0.1 by host", map[string]string{"requirements.txt": "pyramid\nwaitress\n.\n", "setup.py": pyramidSetup,
			"production.ini": "[app:main]\nuse = egg:shop\n[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = 6543\n"},
			[]string{"production.ini:5", "loopback", "listen = *:6543"}},
		{"pyramid without a server", map[string]string{"setup.py": pyramidSetup, "production.ini": "[app:main]\nuse = egg:shop\n"},
			[]string{"production.ini:1", "no [server:main] section", "listen = *:8080"}},
		{"no app at the top, one in src", map[string]string{"README.md": "hi", "src/app.py": flaskApp, "src/requirements.txt": "flask\n", "docs/conf.py": ""},
			[]string{"no Python application found", "(src/requirements.txt)", "run pyship src, or set path: src in the Action"}},
		{"no app at the top, some in subdirectories", map[string]string{"README.md": "hi", "backend/requirements.txt": "flask\n", "worker/tasks.py": "", "web/index.js": ""},
			[]string{"no Python application found", "(backend/requirements.txt, worker/tasks.py)", "run pyship backend"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(context.Background(), files(tc.files), Options{})
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *detect.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestPyramidNeedsWaitress: the server a PasteDeploy file names must be installed.
func TestPyramidNeedsWaitress(t *testing.T) {
	_, err := Detect(context.Background(), files(map[string]string{"requirements.txt": "pyramid\n", "production.ini": pyramidINI}), Options{})
	var ce *CannotStartError
	if !errors.As(err, &ce) || ce.Package != "waitress" || !strings.Contains(err.Error(), "production.ini:10") || !strings.Contains(err.Error(), "add waitress to requirements.txt") {
		t.Errorf("got %v, want waitress refused at production.ini:10", err)
	}
}

func TestParseINI(t *testing.T) {
	text := "; top\nloose = 1\n[app:main]\nuse = egg:shop\n# comment\npyramid.includes =\n    pyramid_tm\n\tpyramid_retry\nKey: value: with colon\n\n  [not a section]\n[server:main]\nlisten = *:6543 [::]:6543\n"
	got := parseINI(text)
	if len(got) != 2 || got[0].name != "app:main" || got[0].line != 3 || got[1].name != "server:main" || got[1].line != 12 {
		t.Fatalf("sections %+v", got)
	}
	for _, want := range []iniKey{{"use", "egg:shop", 4}, {"pyramid.includes", "pyramid_tm\npyramid_retry", 6}, {"key", "value: with colon", 9}} {
		if k, ok := got[0].get(want.name); !ok || k != want {
			t.Errorf("%s = %+v, want %+v", want.name, k, want)
		}
	}
	if k, ok := got[1].get("listen"); !ok || k.value != "*:6543 [::]:6543" || k.line != 13 {
		t.Errorf("listen = %+v", k)
	}
}

// TestServerAppPath checks that a Panel or Bokeh app is smoke-tested where the app is, not
// at "/", which their servers answer with a redirect whatever the script does.
func TestServerAppPath(t *testing.T) {
	for _, tc := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"board.py": "import panel as pn\npn.panel('hi').servable()\n", "requirements.txt": "panel\n"}, "/board"},
		{map[string]string{"main.py": "from bokeh.io import curdoc\ncurdoc().add_root(None)\n", "requirements.txt": "bokeh\n"}, "/main"},
		{map[string]string{"app.py": "from flask import Flask\napp = Flask(__name__)\n", "requirements.txt": "flask\ngunicorn\n"}, ""},
	} {
		res, err := Detect(context.Background(), files(tc.files), Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if res.SmokePath != nil {
			got = res.SmokePath.Value
		}
		if got != tc.want {
			t.Errorf("%v: smoke path %q, want %q", slices.Sorted(maps.Keys(tc.files)), got, tc.want)
		}
	}
}
