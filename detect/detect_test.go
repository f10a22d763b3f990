package detect

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// seedApp is the article's app.py, as in fixtures/flask-hello.
var seedApp = func() string {
	data, err := os.ReadFile("../fixtures/flask-hello/app.py")
	if err != nil {
		panic(err)
	}
	return string(data)
}()

// union returns the files of a, replaced and added to by those of b.
func union(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

func files(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, content := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

func sh(cmd string) []string { return []string{"/bin/sh", "-c", "exec " + cmd} }

func TestDetectStart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		files      map[string]string
		start      []string
		startFrom  string
		pythonPath string
		port       Port
		framework  string
		warned     string
	}{
		{
			name:      "seed app runs itself",
			files:     map[string]string{"app.py": seedApp, "requirements.txt": "Flask\n"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:2",
			port:      Port{8080, "app.py:9", true},
			framework: "flask",
			warned:    "app.py:9: app.run starts Flask's development server",
		},
		{
			name:      "hard-coded port",
			files:     map[string]string{"app.py": strings.Replace(seedApp, "8080", "5000", 1), "requirements.txt": "Flask\n"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:2",
			port:      Port{5000, "app.py:9", true},
			framework: "flask",
			warned:    "app.py:9 hard-codes port 5000",
		},
		{
			name:      "flask with gunicorn",
			files:     map[string]string{"app.py": seedApp, "requirements.txt": "Flask\ngunicorn==23.0.0\n"},
			start:     sh(`gunicorn 'app:app' --bind "0.0.0.0:$PORT"`),
			startFrom: "app.py:2",
			port:      Port{8080, "default", false},
			framework: "flask",
		},
		{
			name:      "flask app without runner",
			files:     map[string]string{"main.py": "import flask\napplication = flask.Flask(__name__)\n", "requirements.txt": "flask"},
			start:     sh(`env FLASK_APP=main:application python -m flask run --host 0.0.0.0 --port "$PORT"`),
			startFrom: "main.py:2",
			port:      Port{8080, "default", false},
			framework: "flask",
			warned:    "main.py:2: flask run is Flask's development server",
		},
		{
			name: "flask factory in a package with gunicorn",
			files: map[string]string{
				"requirements.txt":    "flask\ngunicorn\n",
				"webapp/__init__.py":  "from flask import Flask\n\ndef create_app(config=None):\n    app = Flask(__name__)\n    return app\n",
				"webapp/views.py":     "",
				"tests/test_views.py": "from flask import Flask\napp = Flask('t')\n",
			},
			start:     sh(`gunicorn 'webapp:create_app()' --bind "0.0.0.0:$PORT"`),
			startFrom: "webapp/__init__.py:3",
			port:      Port{8080, "default", false},
			framework: "flask",
		},
		{
			name: "fastapi in a src layout",
			files: map[string]string{
				"pyproject.toml":             "[project]\nname = \"svc\"\nversion = \"1\"\ndependencies = [\"fastapi\", \"uvicorn[standard]>=0.30\"]\n",
				"src/svc/__init__.py":        "",
				"src/svc/main.py":            "from fastapi import FastAPI\n\napp = FastAPI(title=\"svc\")\n",
				"src/svc/routes/__init__.py": "",
			},
			start:      sh(`uvicorn svc.main:app --host 0.0.0.0 --port "$PORT"`),
			startFrom:  "src/svc/main.py:3",
			pythonPath: "src",
			port:       Port{8080, "default", false},
			framework:  "fastapi",
		},
		{
			name:      "starlette with hypercorn",
			files:     map[string]string{"asgi.py": "from starlette.applications import Starlette\napi = Starlette()\n", "requirements.txt": "starlette\nhypercorn\n"},
			start:     sh(`hypercorn asgi:api --bind "0.0.0.0:$PORT"`),
			startFrom: "asgi.py:2",
			port:      Port{8080, "default", false},
			framework: "starlette",
		},
		{
			name: "django with gunicorn",
			files: map[string]string{
				"manage.py":          "import os\n\ndef main():\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n",
				"mysite/__init__.py": "", "mysite/settings.py": "", "mysite/wsgi.py": "",
				"requirements.txt": "Django==5.1\ngunicorn\n",
			},
			start:     sh(`gunicorn mysite.wsgi:application --bind "0.0.0.0:$PORT"`),
			startFrom: "manage.py:4",
			port:      Port{8080, "default", false},
			framework: "django",
		},
		{
			name: "django without gunicorn",
			files: map[string]string{
				"manage.py":          "os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"config.settings.prod\")\n",
				"config/__init__.py": "", "config/wsgi.py": "",
				"requirements.txt": "Django==5.1\n",
			},
			start:     sh(`python manage.py runserver "0.0.0.0:$PORT" --noreload`),
			startFrom: "manage.py:1",
			port:      Port{8080, "default", false},
			framework: "django",
			warned:    "development server",
		},
		{
			name:      "procfile wins",
			files:     map[string]string{"app.py": seedApp, "Procfile": "# web server\nworker: celery\nweb: gunicorn app:app\n", "requirements.txt": "flask\ngunicorn\n"},
			start:     sh("gunicorn app:app"),
			startFrom: "Procfile:3",
			port:      Port{8080, "default", false},
		},
		{
			name:      "config wins",
			files:     map[string]string{"app.py": seedApp, "requirements.txt": "flask\n", "Procfile": "web: a\n", "pyship.toml": "# pyship\nstart = [\"python\", \"-m\", \"app\"]\nport = 9000\n"},
			start:     []string{"python", "-m", "app"},
			startFrom: "pyship.toml:2",
			port:      Port{9000, "pyship.toml:3", false},
		},
		{
			name:      "stdlib script reading PORT",
			files:     map[string]string{"server.py": "import os\nfrom http.server import HTTPServer\nport = int(os.environ.get('PORT', '8000'))\nif __name__ == '__main__':\n    HTTPServer(('', port), H).serve_forever()\n"},
			start:     []string{"python", "server.py"},
			startFrom: "server.py:4",
			port:      Port{8080, "default", false},
		},
		{
			name:      "plain script",
			files:     map[string]string{"main.py": "print('hi')\n"},
			start:     []string{"python", "main.py"},
			startFrom: "main.py",
			port:      Port{8080, "default", false},
			warned:    "main.py has no __main__ block",
		},
		{
			name:      "a server started on import",
			files:     map[string]string{"requirements.txt": "flask\ngunicorn\n", "app.py": "from flask import Flask\napp = Flask(__name__)\n\napp.run(host='0.0.0.0')\n"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:2",
			port:      Port{5000, "app.py:4", true},
			framework: "flask",
			warned:    "app.py:4 runs the development server on its default port, 5000",
		},
		{
			name:      "app in a namespace package",
			files:     map[string]string{"requirements.txt": "fastapi\nuvicorn\n", "app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n"},
			start:     []string{"/bin/sh", "-c", `exec uvicorn app.main:app --host 0.0.0.0 --port "$PORT"`},
			startFrom: "app/main.py:2",
			port:      Port{8080, "default", false},
			framework: "fastapi",
		},
		{
			name:      "package main",
			files:     map[string]string{"setup.py": "from setuptools import setup\nsetup(name='tool')\n", "tool/__init__.py": "", "tool/__main__.py": "print(1)\n"},
			start:     []string{"python", "-m", "tool"},
			startFrom: "tool/__main__.py",
			port:      Port{8080, "default", false},
		},
		{
			name:      "one project script",
			files:     map[string]string{"pyproject.toml": "[project]\nname = \"x\"\nversion = \"1\"\n[project.scripts]\nserve-x = \"x.cli:main\"\n", "x/__init__.py": ""},
			start:     []string{"serve-x"},
			startFrom: "pyproject.toml",
			port:      Port{8080, "default", false},
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
			if res.Start.PythonPath != tc.pythonPath {
				t.Errorf("python path %q, want %q", res.Start.PythonPath, tc.pythonPath)
			}
			if res.Port != tc.port || res.Framework != tc.framework {
				t.Errorf("port %+v framework %q, want %+v %q", res.Port, res.Framework, tc.port, tc.framework)
			}
			warned := strings.Join(res.Warnings, "\n")
			if tc.warned == "" && warned != "" || !strings.Contains(warned, tc.warned) {
				t.Errorf("warnings %q, want %q", warned, tc.warned)
			}
		})
	}
}

func TestDetectPython(t *testing.T) {
	// The seed app imports flask: an image without it would be refused.
	app := map[string]string{"app.py": seedApp, "requirements.txt": "flask\n"}
	with := func(extra map[string]string) map[string]string { return union(app, extra) }
	for _, tc := range []struct {
		name   string
		files  map[string]string
		want   Fact
		warned string
	}{
		{"default", app, Fact{DefaultPythonVersion, "default", ""}, ""},
		{"python-version", with(map[string]string{".python-version": "# pinned\n3.11.9\n"}), Fact{"3.11", ".python-version:2", ""}, ""},
		{"runtime.txt", with(map[string]string{"runtime.txt": "python-3.12.1\n"}), Fact{"3.12", "runtime.txt:1", ""}, ""},
		{"python-version beats runtime.txt", with(map[string]string{".python-version": "3.11", "runtime.txt": "python-3.12.1"}), Fact{"3.11", ".python-version:1", ""}, ""},
		{"config beats all", with(map[string]string{".python-version": "3.11", "pyship.toml": "\npython = \"3.12\"\n"}), Fact{"3.12", "pyship.toml:2", ""}, ""},
		{"tool.pyship", with(map[string]string{"pyproject.toml": "[project]\nname='a'\nversion='1'\n\n[tool.pyship]\npython = \"3.12\"\n"}), Fact{"3.12", "pyproject.toml:6", ""}, ""},
		{"requires-python range", with(map[string]string{"pyproject.toml": "[project]\nname = \"a\"\nrequires-python = \">=3.9,<3.13\"\n"}), Fact{"3.12", "pyproject.toml:3", ""}, ""},
		{"poetry python", with(map[string]string{"pyproject.toml": "[tool.poetry]\nname = \"a\"\n\n[tool.poetry.dependencies]\npython = \"~3.11\"\nflask = \"^3\"\n"}), Fact{"3.11", "pyproject.toml:5", ""}, ""},
		{"pipfile python", with(map[string]string{"Pipfile": "[packages]\nflask = \"*\"\n\n[requires]\npython_version = \"3.12\"\n", "requirements.txt": "flask\n"}), Fact{"3.12", "Pipfile:5", ""}, ""},
		{"setup.cfg python_requires", with(map[string]string{"setup.cfg": "[options]\npackages = find:\npython_requires = >=3.11, <3.12\n"}), Fact{"3.11", "setup.cfg:3", ""}, ""},
		{"python-version conflicts with requires-python", with(map[string]string{".python-version": "3.11", "pyproject.toml": "[project]\nname = \"a\"\nrequires-python = \">=3.12\"\n"}),
			Fact{"3.11", ".python-version:1", ""}, ".python-version:1 picks Python 3.11, which pyproject.toml:3 (>=3.12) does not allow"},
		{"a floor picks the default, not the newest", with(map[string]string{"pyproject.toml": "[project]\nname = \"a\"\nrequires-python = \">=3.10\"\n"}), Fact{DefaultPythonVersion, "pyproject.toml:3", ""}, ""},
		{"a floor above the default", with(map[string]string{"pyproject.toml": "[project]\nname = \"a\"\nrequires-python = \">=3.15\"\n"}), Fact{"3.15", "pyproject.toml:3", ""}, ""},
		{"end of life", with(map[string]string{".python-version": "3.10.13\n"}), Fact{"3.10", ".python-version:1", ""}, ".python-version:1 picks Python 3.10, which reached its end of life in October 2026"},
		{"past end of life: the closest supported", with(map[string]string{"runtime.txt": "python-3.6.8\n"}), Fact{"3.9", "runtime.txt:1", ""}, "runtime.txt:1 picks Python 3.6, which is past its end of life and has no base image: building on 3.9"},
		{"a range only of old versions", with(map[string]string{"Pipfile": "[packages]\nflask = \"*\"\n\n[requires]\npython_version = \"3.6\"\n"}), Fact{"3.9", "Pipfile:5", ""}, "Pipfile:5 (3.6) allows only Pythons past their end of life"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := (Fact{Value: res.Python.Value, Source: res.Python.Source}); got != tc.want {
				t.Errorf("python %+v, want %+v", res.Python, tc.want)
			}
			warned := strings.Join(res.Warnings, "\n")
			if tc.warned != "" && !strings.Contains(warned, tc.warned) {
				t.Errorf("warnings %q, want %q", warned, tc.warned)
			}
		})
	}
}

func TestDetectDependencies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  Dependencies
	}{
		{
			name: "requirements with includes",
			files: map[string]string{"app.py": seedApp, "requirements.txt": "-r requirements/base.txt\n-c constraints.txt\ngunicorn ; sys_platform == 'linux'\n",
				"requirements/base.txt": "Flask[async]==3.1.3 \\\n    --hash=sha256:abc\n", "constraints.txt": "click<9\n"},
			want: Dependencies{Source: "requirements.txt", Requirements: []string{"requirements.txt"},
				Files: []string{"constraints.txt", "requirements.txt", "requirements/base.txt"}, Names: []string{"click", "flask", "gunicorn"}},
		},
		{
			name:  "pep 621 project",
			files: map[string]string{"pyproject.toml": "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n[project]\nname = \"a\"\nversion = \"1\"\ndependencies = [\"FastAPI>=0.110\", \"uvicorn\"]\n", "main.py": ""},
			want:  Dependencies{Source: "pyproject.toml", Project: true, Files: []string{"pyproject.toml"}, Names: []string{"fastapi", "uvicorn"}},
		},
		{
			name:  "setup.py only",
			files: map[string]string{"setup.py": "from setuptools import setup\nsetup(name='a', install_requires=['flask'])\n", "app.py": seedApp},
			want:  Dependencies{Source: "setup.py", Project: true, Files: []string{"setup.py"}},
		},
		{
			name:  "local path requirement",
			files: map[string]string{"app.py": seedApp, "requirements.txt": "-e .\n./libs/common\nflask\n", "setup.py": "", "libs/common/setup.py": ""},
			want:  Dependencies{Source: "requirements.txt", Requirements: []string{"requirements.txt"}, Files: []string{"requirements.txt"}, Names: []string{"flask"}, Local: []string{"libs/common"}},
		},
		{
			name:  "no dependencies",
			files: map[string]string{"main.py": ""},
			want:  Dependencies{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := res.Dependencies
			if got.Source != tc.want.Source || got.Project != tc.want.Project || !slices.Equal(got.Requirements, tc.want.Requirements) ||
				!slices.Equal(got.Files, tc.want.Files) || !slices.Equal(got.Names, tc.want.Names) || !slices.Equal(got.Local, tc.want.Local) {
				t.Errorf("dependencies %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDetectErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"no python", map[string]string{"README.md": "hi", "index.js": ""}, []string{"no Python application found", "requirements.txt", "hint:"}},
		{"no start command", map[string]string{"requirements.txt": "flask"}, []string{"no start command", "Procfile", "manage.py", "pyship.toml"}},
		{"bad python version", map[string]string{"app.py": seedApp, ".python-version": "\n# pinned\npypy3.10\n"}, []string{".python-version:3", "pypy3.10", "hint:"}},
		{"empty python version", map[string]string{"app.py": seedApp, ".python-version": "\n"}, []string{".python-version", "names no Python version"}},
		{"unsupported python", map[string]string{"app.py": seedApp, "requirements.txt": "flask\n", "pyship.toml": "python = \"3.8\"\n"}, []string{"pyship.toml:1", "Python 3.8 has no base image", "past its end of life", "3.9 to 3.15", "move the app to Python 3.9 or newer (3.11, still maintained"}},
		{"unreleased python", map[string]string{"app.py": seedApp, ".python-version": "3.16\n"}, []string{".python-version:1", "Python 3.16 has no base image", "not released yet", "write 3.15 or older"}},
		{"requires-python allows none", map[string]string{"app.py": seedApp, "pyproject.toml": "[project]\nname = 'a'\nrequires-python = '>=3.16'\ndependencies = ['flask']\n"}, []string{"pyproject.toml:3", "allows none", "3.15, 3.14, 3.13, 3.12, 3.11, 3.10, 3.9"}},
		{"bad requires-python", map[string]string{"app.py": seedApp, "pyproject.toml": "[project]\nname = 'a'\nrequires-python = '>=three'\n"}, []string{"pyproject.toml:3", "not a version"}},
		{"two web processes", map[string]string{"app.py": seedApp, "Procfile": "web: a\nweb: b\n"}, []string{"Procfile:2", "second web process", "line 1"}},
		{"empty web process", map[string]string{"app.py": seedApp, "Procfile": "web:\n"}, []string{"Procfile:1", "no command"}},
		{"requirements syntax", map[string]string{"app.py": seedApp, "requirements.txt": "flask\n\nfoo==>1\n"}, []string{"requirements.txt:3", `"foo==>1" is not a valid requirement`}},
		{"requirements unknown option", map[string]string{"app.py": seedApp, "requirements.txt": "--frobnicate\n"}, []string{"requirements.txt:1", "unknown option"}},
		{"missing include", map[string]string{"app.py": seedApp, "requirements.txt": "flask\n-r nope.txt\n"}, []string{"requirements.txt:2", `"nope.txt"`}},
		{"vcs requirement", map[string]string{"app.py": seedApp, "requirements.txt": "flask\ngit+https://example.com/lib.git@v1#egg=lib\n"}, []string{"requirements.txt:2", "needs git", "hint:"}},
		{"include outside", map[string]string{"app.py": seedApp, "requirements.txt": "-r ../secrets.txt\n"}, []string{"requirements.txt:1", "outside the repository"}},
		{"malformed pyship.toml", map[string]string{"app.py": seedApp, "pyship.toml": "python = \"3.12\"\nport = = 5\n"}, []string{"pyship.toml:2", "column"}},
		{"unknown config key", map[string]string{"app.py": seedApp, "pyship.toml": "python = \"3.12\"\n\n[smoke]\npth = \"/health\"\n"}, []string{"pyship.toml:4", `unknown key "smoke.pth"`, `did you mean "path"`}},
		{"unknown tool.pyship key", map[string]string{"app.py": seedApp, "pyproject.toml": "[project]\nname = 'a'\n\n[tool.pyship]\nprot = 8000\n"}, []string{"pyproject.toml:5", `unknown key "prot"`, `did you mean "port"`}},
		{"config wrong type", map[string]string{"app.py": seedApp, "pyship.toml": "port = \"8000\"\n"}, []string{"pyship.toml", "port"}},
		{"config bad user", map[string]string{"app.py": seedApp, "pyship.toml": "user = \"app\"\n"}, []string{"pyship.toml:1", "not numeric"}},
		{"pipfile without lock", map[string]string{"app.py": seedApp, "Pipfile": "[packages]\nflask = '*'\n"}, []string{"Pipfile", "pipenv lock"}},
		{"malformed pyproject", map[string]string{"app.py": seedApp, "pyproject.toml": "[project\nname = 'a'\n"}, []string{"pyproject.toml:1", "column", "table name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(context.Background(), files(tc.files), Options{})
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *detect.Error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestDetectFixture(t *testing.T) {
	res, err := Detect(context.Background(), os.DirFS("../fixtures/flask-hello"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Start.Command, []string{"python", "app.py"}) || res.Port.Number != 8080 || res.Framework != "flask" {
		t.Errorf("flask-hello: %+v", res)
	}
}

func TestDjangoBuildSteps(t *testing.T) {
	project := map[string]string{
		"manage.py":                  "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings.prod')\n",
		"site1/__init__.py":          "",
		"site1/wsgi.py":              "",
		"site1/settings/__init__.py": "",
		"site1/settings/base.py":     "BASE_DIR = 1\n\nSTATIC_ROOT = BASE_DIR / 'static'\n",
		"site1/settings/prod.py":     "from .base import *\n",
		"requirements.txt":           "django\ngunicorn\n",
	}
	res, err := Detect(context.Background(), files(project), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BuildSteps) != 1 || res.BuildSteps[0].Name != "collectstatic" || res.BuildSteps[0].Source != "site1/settings/base.py:3" {
		t.Errorf("build steps %+v", res.BuildSteps)
	}
	project["pyship.toml"] = "[django]\ncollectstatic = false\n"
	if res, err = Detect(context.Background(), files(project), Options{}); err != nil || len(res.BuildSteps) != 0 {
		t.Errorf("collectstatic = false: steps %+v, err %v", res.BuildSteps, err)
	}
	delete(project, "pyship.toml")
	project["site1/settings/base.py"] = "DEBUG = True\n"
	if res, err = Detect(context.Background(), files(project), Options{}); err != nil || len(res.BuildSteps) != 0 {
		t.Errorf("no STATIC_ROOT: steps %+v, err %v", res.BuildSteps, err)
	}
}

func TestDjangoMigrate(t *testing.T) {
	const gunicorn = `gunicorn site1.wsgi:application --bind "0.0.0.0:$PORT"`
	project := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"manage.py":         "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings')\n",
			"site1/__init__.py": "",
			"site1/wsgi.py":     "",
			"site1/settings.py": "BASE_DIR = 1\n\nDATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': BASE_DIR / 'db.sqlite3'}}\n",
			"requirements.txt":  "django\ngunicorn\n",
		}
		for k, v := range extra {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		extra  map[string]string
		start  []string
		source string // of the note, "" for none
		warned string
		err    string
	}{
		{name: "derived start", start: shellCommand(migrateCommand + " && " + gunicorn), source: "manage.py:1"},
		{name: "no database", extra: map[string]string{"site1/settings.py": "DEBUG = True\n"}, start: shellCommand(gunicorn)},
		{name: "database server", extra: map[string]string{"site1/settings.py": "DATABASES = {'default': dj_database_url.config(default='postgres://db/site')}\n"},
			start: shellCommand(gunicorn), source: "site1/settings.py:1"},
		{name: "sqlite by url", extra: map[string]string{"site1/settings.py": "DATABASES = {'default': dj_database_url.config(default='sqlite:///db.sqlite3')}\n"},
			start: shellCommand(migrateCommand + " && " + gunicorn), source: "manage.py:1"},
		{name: "databases empty", extra: map[string]string{"site1/settings.py": "DATABASES = {}  # none\n"}, start: shellCommand(gunicorn)},
		{name: "turned off", extra: map[string]string{"pyship.toml": "[django]\nmigrate = false\n"}, start: shellCommand(gunicorn)},
		{name: "procfile web only", extra: map[string]string{"Procfile": "web: gunicorn site1.wsgi\n"}, start: shellCommand("gunicorn site1.wsgi")},
		{name: "procfile release migrate", extra: map[string]string{"Procfile": "release: python manage.py migrate\nweb: gunicorn site1.wsgi\n"},
			start: shellCommand("python manage.py migrate && gunicorn site1.wsgi"), source: "Procfile:1"},
		{name: "procfile release other", extra: map[string]string{"Procfile": "release: ./tasks.sh\nweb: gunicorn site1.wsgi\n"},
			start: shellCommand("gunicorn site1.wsgi"), warned: "does not run the release process"},
		{name: "start migrates already", extra: map[string]string{"Procfile": "web: python manage.py migrate && gunicorn site1.wsgi\n", "pyship.toml": "[django]\nmigrate = true\n"},
			start: shellCommand("python manage.py migrate && gunicorn site1.wsgi")},
		{name: "forced with a list", extra: map[string]string{"pyship.toml": "start = [\"gunicorn\", \"site1.wsgi\", \"--bind\", \"0.0.0.0:8080\"]\n[django]\nmigrate = true\n", "site1/settings.py": "DEBUG = True\n"},
			start: shellCommand(migrateCommand + " && gunicorn site1.wsgi --bind 0.0.0.0:8080"), source: "pyship.toml:3"},
		{name: "forced without django", extra: map[string]string{"manage.py": "", "app.py": seedApp, "requirements.txt": "flask\n", "pyship.toml": "[django]\nmigrate = true\n"},
			err: "pyship.toml:2: django.migrate = true, but pyship finds no Django project"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(project(tc.extra)), Options{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Start.Command, tc.start) {
				t.Errorf("start %q, want %q", res.Start.Command, tc.start)
			}
			var note *Note
			for i, n := range res.Notes {
				if n.What == "django migrate" {
					note = &res.Notes[i]
				}
			}
			switch {
			case tc.source == "" && note != nil:
				t.Errorf("unexpected note %+v", *note)
			case tc.source != "" && (note == nil || note.Source != tc.source):
				t.Errorf("note %+v, want from %s", note, tc.source)
			}
			if tc.warned != "" && !strings.Contains(strings.Join(res.Warnings, "\n"), tc.warned) {
				t.Errorf("warnings %q lack %q", res.Warnings, tc.warned)
			}
		})
	}
}

func TestScriptInitDB(t *testing.T) {
	project := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"pyproject.toml":   "[project]\nname = \"blog\"\nversion = \"1\"\ndependencies = [\"quart\"]\n\n[project.scripts]\nstart = \"blog:run\"\ninit_db = \"blog:init_db\"\n",
			"blog/__init__.py": "from quart import Quart\napp = Quart(__name__)\n",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		extra   map[string]string
		command string // of the step, "" for none
		source  string
		err     string
	}{
		{name: "project script", command: "import sys; from blog import init_db; sys.exit(init_db())", source: "pyproject.toml:8"},
		{name: "poetry script", extra: map[string]string{"pyproject.toml": "[tool.poetry]\nname = \"blog\"\n\n[tool.poetry.dependencies]\nquart = \"*\"\n\n[tool.poetry.scripts]\n\"create-db\" = \"blog.db:create\"\n\n[build-system]\nrequires = [\"poetry-core\"]\nbuild-backend = \"poetry.core.masonry.api\"\n"},
			command: "import sys; from blog.db import create; sys.exit(create())", source: "pyproject.toml:8"},
		{name: "turned off", extra: map[string]string{"pyship.toml": "[scripts]\ninit-db = false\n"}},
		{name: "not an entry point", extra: map[string]string{"pyproject.toml": "[project]\nname = \"blog\"\nversion = \"1\"\ndependencies = [\"quart\"]\n\n[project.scripts]\ninit_db = \"blog:init_db [extra]\"\n"}},
		{name: "forced without one", extra: map[string]string{"pyproject.toml": "[project]\nname = \"blog\"\nversion = \"1\"\ndependencies = [\"quart\"]\n", "pyship.toml": "\n[scripts]\ninit-db = true\n"},
			err: "pyship.toml:3: scripts.init-db = true, but the project declares no script that makes a database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(project(tc.extra)), Options{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.command == "" {
				if len(res.BuildSteps) != 0 {
					t.Errorf("steps %+v, want none", res.BuildSteps)
				}
				return
			}
			if len(res.BuildSteps) != 1 || !slices.Equal(res.BuildSteps[0].Command, []string{"python", "-c", tc.command}) || res.BuildSteps[0].Source != tc.source {
				t.Errorf("steps %+v, want python -c %q from %s", res.BuildSteps, tc.command, tc.source)
			}
		})
	}
}

func TestDashStart(t *testing.T) {
	const layout = "from dash import Dash, html\napp = Dash(__name__)\napp.layout = html.Div('hi')\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		start []string
		env   []string
		err   string
	}{
		{name: "server with gunicorn", files: map[string]string{"app.py": layout + "server = app.server\n", "requirements.txt": "dash\ngunicorn\n"},
			start: shellCommand(`gunicorn 'app:server' --bind "0.0.0.0:$PORT"`)},
		{name: "waitress without server", files: map[string]string{"app.py": layout, "requirements.txt": "dash\nwaitress\n"},
			start: shellCommand(`waitress-serve --listen="0.0.0.0:$PORT" app:app.server`)},
		{name: "runs itself", files: map[string]string{"app.py": layout + "\nif __name__ == '__main__':\n    app.run(debug=True)\n", "requirements.txt": "dash\n"},
			start: []string{"python", "app.py"}, env: []string{"HOST=0.0.0.0"}},
		{name: "nothing serves it", files: map[string]string{"app.py": layout, "requirements.txt": "dash\ngunicorn\n"},
			err: "app.py:2: defines the Dash app app but nothing serves it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Start.Command, tc.start) || !slices.Equal(res.Start.Env, tc.env) || res.Framework != "dash" {
				t.Errorf("start %q env %q framework %q, want %q %q dash", res.Start.Command, res.Start.Env, res.Framework, tc.start, tc.env)
			}
		})
	}
}
