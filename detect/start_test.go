package detect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

const (
	litestarApp = "from litestar import Litestar, get\n\n@get('/')\nasync def index() -> str:\n    return 'hi'\n\napp = Litestar(route_handlers=[index])\n"
	flaskApp    = "from flask import Flask\napp = Flask(__name__)\n"
)

// TestDetectFrameworks covers each shape of app pyship serves, and the server it picks.
func TestDetectFrameworks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		files     map[string]string
		start     []string
		startFrom string
		port      Port
		framework string
		env       []string
		warned    string
	}{
		{
			name:      "litestar with uvicorn",
			files:     map[string]string{"app.py": litestarApp, "requirements.txt": "litestar\nuvicorn\n"},
			start:     sh(`uvicorn app:app --host 0.0.0.0 --port "$PORT"`),
			startFrom: "app.py:7",
			framework: "litestar",
		},
		{
			name:      "litestar factory",
			files:     map[string]string{"main.py": "from litestar import Litestar\n\ndef create_app():\n    return Litestar([])\n", "requirements.txt": "litestar[standard]\n"},
			start:     sh(`uvicorn --factory main:create_app --host 0.0.0.0 --port "$PORT"`),
			startFrom: "main.py:3",
			framework: "litestar",
		},
		{
			name:      "sanic that never runs itself",
			files:     map[string]string{"server.py": "from sanic import Sanic\napp = Sanic('hello')\n", "requirements.txt": "sanic\n"},
			start:     sh(`sanic server:app --host 0.0.0.0 --port "$PORT"`),
			startFrom: "server.py:2",
			framework: "sanic",
		},
		{
			name: "sanic that runs itself on PORT",
			files: map[string]string{"server.py": "import os\nfrom sanic import Sanic\napp = Sanic('hello')\n\nif __name__ == '__main__':\n    app.run(host='0.0.0.0', port=int(os.environ.get('PORT', 8000)))\n",
				"requirements.txt": "sanic\n"},
			start:     []string{"python", "server.py"},
			startFrom: "server.py:3",
			framework: "sanic",
		},
		{
			name: "sanic that runs itself on a fixed port is started by sanic",
			files: map[string]string{"server.py": "from sanic import Sanic\napp = Sanic('hello')\n\nif __name__ == '__main__':\n    app.run(port=8000)\n",
				"requirements.txt": "sanic\n"},
			start:     sh(`sanic server:app --host 0.0.0.0 --port "$PORT"`),
			startFrom: "server.py:2",
			framework: "sanic",
		},
		{
			name:      "sanic factory",
			files:     map[string]string{"app.py": "from sanic import Sanic\n\ndef create_app():\n    return Sanic('x')\n", "requirements.txt": "sanic\n"},
			start:     sh(`sanic app:create_app --factory --host 0.0.0.0 --port "$PORT"`),
			startFrom: "app.py:3",
			framework: "sanic",
		},
		{
			name: "aiohttp script that reads PORT",
			files: map[string]string{"app.py": "import os\nfrom aiohttp import web\n\napp = web.Application()\n\nif __name__ == '__main__':\n    web.run_app(app, port=int(os.environ['PORT']))\n",
				"requirements.txt": "aiohttp\n"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:7",
			framework: "aiohttp",
		},
		{
			name:      "aiohttp factory taking argv",
			files:     map[string]string{"app.py": "from aiohttp import web\n\nasync def make_app(argv):\n    return web.Application()\n", "requirements.txt": "aiohttp\n"},
			start:     sh(`python -m aiohttp.web -H 0.0.0.0 -P "$PORT" app:make_app`),
			startFrom: "app.py:3",
			framework: "aiohttp",
		},
		{
			name:      "aiohttp factory taking nothing",
			files:     map[string]string{"service/__init__.py": "", "service/app.py": "from aiohttp import web\n\ndef create_app():\n    return web.Application()\n", "requirements.txt": "aiohttp\n"},
			start:     sh(`python -c 'import os; from aiohttp import web; import service.app as m; web.run_app(m.create_app(), host="0.0.0.0", port=int(os.environ["PORT"]))'`),
			startFrom: "service/app.py:3",
			framework: "aiohttp",
		},
		{
			name:      "aiohttp script on a fixed port",
			files:     map[string]string{"server.py": "from aiohttp import web\napp = web.Application()\nweb.run_app(app, port=9000)\n", "requirements.txt": "aiohttp\n"},
			start:     []string{"python", "server.py"},
			startFrom: "server.py:3",
			port:      Port{9000, "server.py:3", true},
			framework: "aiohttp",
			warned:    "server.py:3 hard-codes port 9000",
		},
		{
			name:      "aiohttp script on run_app's default port",
			files:     map[string]string{"server.py": "from aiohttp import web\napp = web.Application()\nweb.run_app(app)\n", "requirements.txt": "aiohttp\n"},
			start:     []string{"python", "server.py"},
			startFrom: "server.py:3",
			port:      Port{8080, "server.py:3", true},
			framework: "aiohttp",
		},
		{
			name:      "aiohttp app object with gunicorn",
			files:     map[string]string{"app.py": "from aiohttp import web\napp = web.Application()\n", "requirements.txt": "aiohttp\ngunicorn\n"},
			start:     sh(`gunicorn 'app:app' --worker-class aiohttp.GunicornWebWorker --bind "0.0.0.0:$PORT"`),
			startFrom: "app.py:2",
			framework: "aiohttp",
		},
		{
			name:      "streamlit",
			files:     map[string]string{"streamlit_app.py": "import streamlit as st\nst.write('hi')\n", "requirements.txt": "streamlit\n"},
			start:     sh(`streamlit run streamlit_app.py --server.port "$PORT" --server.address 0.0.0.0 --server.headless true`),
			startFrom: "streamlit_app.py:1",
			framework: "streamlit",
		},
		{
			name:      "gradio",
			files:     map[string]string{"app.py": "import gradio as gr\n\ndemo = gr.Interface(fn=str, inputs='text', outputs='text')\ndemo.launch()\n", "requirements.txt": "gradio\n"},
			start:     []string{"/bin/sh", "-c", `exec env GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT="$PORT" python app.py`},
			startFrom: "app.py:4",
			framework: "gradio",
		},
		{
			name: "gradio blocks on a fixed port",
			files: map[string]string{"app.py": "import gradio as gr\n\nwith gr.Blocks() as ui:\n    gr.Markdown('hi')\n\nif __name__ == '__main__':\n    ui.launch(server_name='127.0.0.1', server_port=7860)\n",
				"requirements.txt": "gradio\n"},
			start:     []string{"/bin/sh", "-c", `exec env GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT="$PORT" python app.py`},
			startFrom: "app.py:7",
			port:      Port{7860, "app.py:7", true},
			framework: "gradio",
			warned:    "binds the loopback address",
		},
		{
			name:      "quart runs on hypercorn, which it installs",
			files:     map[string]string{"app.py": "from quart import Quart\napp = Quart(__name__)\n", "requirements.txt": "quart\n"},
			start:     sh(`hypercorn app:app --bind "0.0.0.0:$PORT"`),
			startFrom: "app.py:2",
			framework: "quart",
		},
		{
			name:      "quart runs on hypercorn even with uvicorn listed",
			files:     map[string]string{"app.py": "from quart import Quart\n\ndef create_app():\n    return Quart(__name__)\n", "requirements.txt": "quart\nuvicorn\n"},
			start:     sh(`hypercorn 'app:create_app()' --bind "0.0.0.0:$PORT"`),
			startFrom: "app.py:3",
			framework: "quart",
		},
		{
			name:      "wsgi.py made by a factory",
			files:     map[string]string{"wsgi.py": "from shop import create_app\n\napp = create_app()\n", "shop/__init__.py": "def create_app(): ...\n", "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn 'wsgi:app' --bind "0.0.0.0:$PORT"`),
			startFrom: "wsgi.py:3",
		},
		{
			name:      "asgi.py",
			files:     map[string]string{"asgi.py": "from svc.factory import build\n\napplication = build()\n", "requirements.txt": "starlette\nuvicorn\n"},
			start:     sh(`uvicorn asgi:application --host 0.0.0.0 --port "$PORT"`),
			startFrom: "asgi.py:3",
		},
		{
			name:      "run.py with gunicorn",
			files:     map[string]string{"run.py": "from blog import create_app\napp = create_app()\nif __name__ == '__main__':\n    app.run()\n", "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn 'run:app' --bind "0.0.0.0:$PORT"`),
			startFrom: "run.py:2",
		},
		{
			name:      "run.py without a server is a script on Flask's development server",
			files:     map[string]string{"run.py": "from flask import Flask\nfrom blog import create_app\napp = create_app()\nif __name__ == '__main__':\n    app.run(host='0.0.0.0')\n", "requirements.txt": "flask\n"},
			start:     []string{"python", "run.py"},
			startFrom: "run.py:4",
			warned:    "run.py:5: app.run starts Flask's development server",
		},
		{
			name:      "gunicorn.conf.py names the app",
			files:     map[string]string{"gunicorn.conf.py": "wsgi_app = 'web.service:app'\nworkers = 4\n", "web/__init__.py": "", "web/service.py": flaskApp, "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn --bind "0.0.0.0:$PORT"`),
			startFrom: "gunicorn.conf.py:1",
		},
		{
			name:      "gunicorn.conf.py binds a fixed port",
			files:     map[string]string{"gunicorn.conf.py": "# served\nwsgi_app = \"app:app\"\nbind = \"0.0.0.0:8000\"\n", "app.py": flaskApp, "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn`),
			startFrom: "gunicorn.conf.py:2",
			port:      Port{8000, "gunicorn.conf.py:3", true},
			warned:    "gunicorn.conf.py:3 binds port 8000 and ignores $PORT",
		},
		{
			name:      "gunicorn.conf.py binds PORT",
			files:     map[string]string{"gunicorn.conf.py": "import os\nwsgi_app = 'app:app'\nbind = f\"0.0.0.0:{os.environ.get('PORT', '8000')}\"\n", "app.py": flaskApp, "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn`),
			startFrom: "gunicorn.conf.py:2",
		},
		{
			name:      "gunicorn.conf.py binds the loopback address",
			files:     map[string]string{"gunicorn.conf.py": "bind = ['127.0.0.1:8000']\n", "app.py": flaskApp, "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn 'app:app' --bind "0.0.0.0:$PORT"`),
			startFrom: "app.py:2",
			framework: "flask",
			warned:    `gunicorn.conf.py:1 binds "['127.0.0.1:8000']", which nothing outside the container can reach`,
		},
		{
			name:      "gunicorn.conf.py bind applies to a Procfile's gunicorn",
			files:     map[string]string{"gunicorn.conf.py": "bind = '0.0.0.0:5000'\n", "Procfile": "web: gunicorn app:app\n", "app.py": flaskApp, "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn app:app`),
			startFrom: "Procfile:1",
			port:      Port{5000, "gunicorn.conf.py:1", true},
			warned:    "gunicorn.conf.py:1 binds port 5000 and ignores $PORT",
		},
		{
			name:      "a Procfile's --bind beats gunicorn.conf.py",
			files:     map[string]string{"gunicorn.conf.py": "bind = '0.0.0.0:5000'\n", "Procfile": "web: gunicorn app:app -b 0.0.0.0:$PORT\n", "app.py": flaskApp, "requirements.txt": "flask\ngunicorn\n"},
			start:     sh(`gunicorn app:app -b 0.0.0.0:$PORT`),
			startFrom: "Procfile:1",
		},
		{
			name:      "procfile flask run is a development server",
			files:     map[string]string{"Procfile": "web: flask run --host 0.0.0.0 --port $PORT\n", "app.py": flaskApp, "requirements.txt": "flask\n"},
			start:     sh(`flask run --host 0.0.0.0 --port $PORT`),
			startFrom: "Procfile:1",
			warned:    "Procfile:1: flask run is Flask's development server",
		},
		{
			name:      "procfile runserver is a development server",
			files:     map[string]string{"Procfile": "web: python manage.py runserver 0.0.0.0:$PORT\n", "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.settings')\nfrom django.core.management import execute_from_command_line\n", "a/__init__.py": "", "a/settings.py": "", "requirements.txt": "django\n"},
			start:     sh(`python manage.py runserver 0.0.0.0:$PORT`),
			startFrom: "Procfile:1",
			warned:    "Procfile:1: Django runs on its development server",
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
			if !slices.Equal(res.Start.Env, tc.env) {
				t.Errorf("env %q, want %q", res.Start.Env, tc.env)
			}
			warned := strings.Join(res.Warnings, "\n")
			if tc.warned == "" && warned != "" || !strings.Contains(warned, tc.warned) {
				t.Errorf("warnings %q, want %q", warned, tc.warned)
			}
		})
	}
}

// TestDjangoSettingsVariable covers manage.py setting DJANGO_SETTINGS_MODULE from a
// variable: the module picked, why, and that the image uses it.
func TestDjangoSettingsVariable(t *testing.T) {
	project := func(manage string, modules ...string) map[string]string {
		m := map[string]string{"manage.py": manage, "site1/__init__.py": "", "site1/wsgi.py": "", "site1/settings/__init__.py": "", "requirements.txt": "django\ngunicorn\n"}
		for _, mod := range modules {
			m["site1/settings/"+mod+".py"] = ""
		}
		return m
	}
	const ternary = "import os\n\ndef main():\n    settings_module = 'site1.settings.prod' if os.environ.get('ENV') == 'production' else 'site1.settings.dev'\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', settings_module)\n    from django.core.management import execute_from_command_line\n"
	const branches = "import os\nif os.environ.get('CI'):\n    target = \"site1.settings.test\"\nelse:\n    target = \"site1.settings.local\"\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", target)\nimport django\n"
	for _, tc := range []struct {
		name     string
		files    map[string]string
		settings string
		source   string
		why      string
		env      []string
		warned   string
	}{
		{"a choice by the environment, made as in the image", project(ternary, "prod", "dev"), "site1.settings.dev", "manage.py:4", "picks site1.settings.dev when ENV is not set, as in the image; site1.settings.prod otherwise",
			nil, ""},
		{"the environment pyship.toml gives", func() map[string]string {
			m := project(ternary, "prod", "dev")
			m["pyship.toml"] = "[env]\nENV = \"production\"\n"
			return m
		}(), "site1.settings.prod", "manage.py:4", `picks site1.settings.prod when ENV is "production" ([env] in pyship.toml)`, []string{"DJANGO_SETTINGS_MODULE=site1.settings.prod"}, ""},
		{"a membership test", project("import os\ns = 'site1.settings.prod' if 'WEBSITE_HOSTNAME' in os.environ else 'site1.settings.dev'\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', s)\n", "prod", "dev"),
			"site1.settings.dev", "manage.py:2", "when WEBSITE_HOSTNAME is not set", nil, ""},
		{"production wins where the choice cannot be followed", project(strings.Replace(ternary, "os.environ.get('ENV') == 'production'", "is_prod()", 1), "prod", "dev"), "site1.settings.prod", "manage.py:4", "site1.settings.prod looks like the production settings",
			[]string{"DJANGO_SETTINGS_MODULE=site1.settings.prod"}, ""},
		{"production that does not exist loses", project(strings.Replace(ternary, "os.environ.get('ENV') == 'production'", "is_prod()", 1), "dev"), "site1.settings.dev", "manage.py:4", "site1.settings.dev is the first that exists",
			[]string{"DJANGO_SETTINGS_MODULE=site1.settings.dev"}, ""},
		{"first existing of two branches", project(branches, "local", "test"), "site1.settings.test", "manage.py:3", "one of site1.settings.test, site1.settings.local",
			[]string{"DJANGO_SETTINGS_MODULE=site1.settings.test"}, ""},
		{"none exists", project(branches), "site1.settings.test", "manage.py:3", "none exists",
			[]string{"DJANGO_SETTINGS_MODULE=site1.settings.test"}, "none of the settings modules site1.settings.test, site1.settings.local exists"},
		{"[env] wins", func() map[string]string {
			m := project(ternary, "prod", "dev")
			m["pyship.toml"] = "[env]\nDJANGO_SETTINGS_MODULE = \"site1.settings.dev\"\n"
			return m
		}(), "site1.settings.dev", "pyship.toml:2", "set in [env]", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Framework != "django" || res.django == nil || res.django.settings != tc.settings {
				t.Fatalf("framework %q, django %+v; want settings %s", res.Framework, res.django, tc.settings)
			}
			if len(res.Notes) != 1 || res.Notes[0].What != "django settings" || res.Notes[0].Value != tc.settings || res.Notes[0].Source != tc.source || !strings.Contains(res.Notes[0].Reason, tc.why) {
				t.Errorf("notes %+v, want %s from %s because %q", res.Notes, tc.settings, tc.source, tc.why)
			}
			if !slices.Equal(res.Start.Env, tc.env) {
				t.Errorf("env %q, want %q", res.Start.Env, tc.env)
			}
			if !slices.Equal(res.Start.Command, sh(`gunicorn site1.wsgi:application --bind "0.0.0.0:$PORT"`)) {
				t.Errorf("start %q", res.Start.Command)
			}
			warned := strings.Join(res.Warnings, "\n")
			if tc.warned == "" && warned != "" || !strings.Contains(warned, tc.warned) {
				t.Errorf("warnings %q, want %q", warned, tc.warned)
			}
		})
	}
	// A literal settings module needs no note and no variable.
	res, err := Detect(context.Background(), files(project("os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings.prod')\n", "prod")), Options{})
	if err != nil || len(res.Notes) != 0 || len(res.Start.Env) != 0 {
		t.Errorf("literal settings: notes %+v env %q err %v", res.Notes, res.Start.Env, err)
	}
}

// TestRefusals covers images that cannot start: pyship refuses them at plan time when it
// is sure, and warns when something it cannot see into may install what is missing.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		// missing is the package refused, with the error's place and fix; empty when
		// there is no refusal.
		missing, where, fix string
		warned              string
	}{
		{name: "fastapi without uvicorn", files: map[string]string{"main.py": "from fastapi import FastAPI\napp = FastAPI()\n", "requirements.txt": "fastapi==0.115.0\n"},
			missing: "uvicorn", where: "main.py:2", fix: "add uvicorn to requirements.txt"},
		{name: "fastapi[standard] installs uvicorn", files: map[string]string{"main.py": "from fastapi import FastAPI\napp = FastAPI()\n", "requirements.txt": "fastapi[standard]==0.115.0\n"}},
		{name: "uvicorn[standard] is uvicorn", files: map[string]string{"main.py": "from fastapi import FastAPI\napp = FastAPI()\n", "requirements.txt": "fastapi\nuvicorn[standard]\n"}},
		{name: "litestar without uvicorn", files: map[string]string{"app.py": litestarApp, "requirements.txt": "litestar==2.12.0\n"},
			missing: "uvicorn", where: "app.py:7", fix: "add uvicorn to requirements.txt"},
		{name: "litestar[standard] installs uvicorn", files: map[string]string{"app.py": litestarApp, "requirements.txt": "litestar[standard]==2.12.0\n"}},
		{name: "an include lists the server", files: map[string]string{"app.py": litestarApp, "requirements.txt": "-r requirements/base.txt\n", "requirements/base.txt": "litestar\nuvicorn\n"}},
		{name: "a constraint installs nothing", files: map[string]string{"app.py": litestarApp, "requirements.txt": "litestar\n-c constraints.txt\n", "constraints.txt": "uvicorn==0.30\n"},
			missing: "uvicorn", where: "app.py:7", fix: "add uvicorn to requirements.txt"},
		{name: "pyproject extras", files: map[string]string{"app.py": litestarApp, "pyproject.toml": "[project]\nname = 'a'\nversion = '1'\ndependencies = ['litestar[standard]>=2']\n"}},
		{name: "pyproject without the server", files: map[string]string{"app.py": litestarApp, "pyproject.toml": "[project]\nname = 'a'\nversion = '1'\ndependencies = ['litestar>=2']\n"},
			missing: "uvicorn", where: "app.py:7", fix: "add uvicorn to the dependencies in pyproject.toml"},
		{name: "poetry extras", files: map[string]string{"app.py": litestarApp, "pyproject.toml": "[tool.poetry]\nname = 'a'\n[tool.poetry.dependencies]\npython = '^3.11'\nlitestar = {version = '^2', extras = ['standard']}\n[build-system]\nbuild-backend = 'poetry.core.masonry.api'\n"}},
		{name: "quart installs hypercorn", files: map[string]string{"app.py": "from quart import Quart\napp = Quart(__name__)\n", "requirements.txt": "quart\n"}},
		{name: "procfile server nothing installs", files: map[string]string{"Procfile": "web: python manage.py migrate && uvicorn app:app --port $PORT\n", "app.py": flaskApp, "requirements.txt": "flask\n"},
			missing: "uvicorn", where: "Procfile:1", fix: "add uvicorn to requirements.txt"},
		{name: "procfile python -m server", files: map[string]string{"Procfile": "web: python -m gunicorn app:app\n", "app.py": flaskApp, "requirements.txt": "flask\n"},
			missing: "gunicorn", where: "Procfile:1", fix: "add gunicorn to requirements.txt"},
		{name: "configured start", files: map[string]string{"pyship.toml": "\nstart = \"gunicorn app:app\"\n", "app.py": flaskApp, "requirements.txt": "flask\n"},
			missing: "gunicorn", where: "pyship.toml:2", fix: "add gunicorn to requirements.txt"},
		{name: "framework nothing installs", files: map[string]string{"app.py": "# the app\nimport os\nfrom flask import Flask\napp = Flask(__name__)\n", "requirements.txt": "gunicorn\n"},
			missing: "flask", where: "app.py:3", fix: "add flask to requirements.txt"},
		{name: "a project that lists nothing", files: map[string]string{"app.py": "import streamlit as st\nst.write(1)\n", "pyproject.toml": "[project]\nname = \"a\"\nversion = \"1\"\n"},
			missing: "streamlit", where: "app.py:1", fix: "add streamlit to the dependencies in pyproject.toml"},
		{name: "django nothing installs", files: map[string]string{"manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.settings')\nfrom django.core.management import execute_from_command_line\n", "requirements.txt": "requests\n"},
			missing: "django", where: "manage.py:3", fix: "add django to requirements.txt"},
		{name: "a flask extension may install flask", files: map[string]string{"app.py": flaskApp, "requirements.txt": "flask-login\ngunicorn\n"},
			warned: "app.py:1: imports flask, which no dependency input lists; it may come from flask-login: list flask in requirements.txt to be sure"},
		{name: "a local path may install anything", files: map[string]string{"app.py": litestarApp, "requirements.txt": "litestar\n./libs/common\n", "libs/common/setup.py": ""},
			warned: "it may come from requirements.txt:2 (./libs/common)"},
		{name: "setup.py dependencies are code", files: map[string]string{"app.py": litestarApp, "setup.py": "from setuptools import setup\nsetup(name='a', install_requires=open('deps.txt').read().split())\n"},
			warned: "it may come from setup.py"},
		{name: "setup.py lists its dependencies as text", files: map[string]string{"app.py": litestarApp, "setup.py": "from setuptools import setup\nsetup(name='a', install_requires=['litestar', 'Uvicorn[standard]>=0.30'])\n"}},
		{name: "setup.cfg lists its dependencies as text", files: map[string]string{"app.py": litestarApp, "setup.cfg": "[metadata]\nname = a\n[options]\ninstall_requires =\n    litestar\n    uvicorn >= 0.30\n"}},
		{name: "a name in setup.py is not a longer one", files: map[string]string{"app.py": litestarApp, "setup.py": "from setuptools import setup\nsetup(name='a', install_requires=['litestar', 'uvicorn-worker'])\n"},
			warned: "it may come from setup.py"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if tc.missing == "" {
				if err != nil {
					t.Fatal(err)
				}
				warned := strings.Join(res.Warnings, "\n")
				if tc.warned == "" && warned != "" || !strings.Contains(warned, tc.warned) {
					t.Errorf("warnings %q, want %q", warned, tc.warned)
				}
				return
			}
			var ce *CannotStartError
			var de *Error
			if !errors.As(err, &ce) || !errors.As(err, &de) {
				t.Fatalf("got %v, want a *CannotStartError that is a *detect.Error", err)
			}
			if ce.Package != tc.missing || !strings.HasPrefix(err.Error(), tc.where+": ") || !strings.Contains(err.Error(), "hint: "+tc.fix) {
				t.Errorf("refused %q with %q; want %s at %s and %q", ce.Package, err, tc.missing, tc.where, tc.fix)
			}
		})
	}
}

// TestAppNeverServed covers scripts that define an app that nothing runs.
func TestAppNeverServed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"aiohttp app never run", map[string]string{"app.py": "from aiohttp import web\n\napp = web.Application()\napp.router.add_get('/', h)\n", "requirements.txt": "aiohttp\n"},
			[]string{"app.py:3", "never runs it", "hint: run it from the script: add web.run_app(app"}},
		{"gradio never launched", map[string]string{"app.py": "import gradio as gr\ndemo = gr.Interface(fn=str, inputs='text', outputs='text')\n", "requirements.txt": "gradio\n"},
			[]string{"app.py:2", "defines the Gradio app demo but never launches it", "hint: add demo.launch()"}},
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
	// Mounted in a FastAPI app, a Gradio app that is never launched is served.
	res, err := Detect(context.Background(), files(map[string]string{
		"app.py":           "import gradio as gr\nfrom fastapi import FastAPI\ndemo = gr.Blocks()\napp = FastAPI()\napp = gr.mount_gradio_app(app, demo, path='/')\n",
		"requirements.txt": "gradio\nfastapi\nuvicorn\n",
	}), Options{})
	if err != nil || res.Framework != "fastapi" {
		t.Errorf("mounted gradio: framework %q, err %v", res.Framework, err)
	}
}

// TestCollectstatic covers Django's collectstatic whatever gives the start command, and
// django.collectstatic = true, which runs or says why it cannot.
func TestCollectstatic(t *testing.T) {
	django := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"manage.py":          "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings')\nfrom django.core.management import execute_from_command_line\n",
			"site1/__init__.py":  "",
			"site1/wsgi.py":      "",
			"site1/settings.py":  "BASE_DIR = 1\nSTATIC_ROOT = BASE_DIR / 'static'\n",
			"requirements.txt":   "django\ngunicorn\n",
			"static/placeholder": "",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		files  map[string]string
		source string // the step's source; "" when there is no step
		warned string
		err    []string
	}{
		{name: "procfile start", files: django(map[string]string{"Procfile": "web: gunicorn site1.wsgi --bind 0.0.0.0:$PORT\n"}), source: "site1/settings.py:2"},
		{name: "configured start", files: django(map[string]string{"pyship.toml": "start = \"gunicorn site1.wsgi\"\n"}), source: "site1/settings.py:2"},
		{name: "procfile collectstatic at start", files: django(map[string]string{"Procfile": "web: python manage.py collectstatic --noinput && gunicorn site1.wsgi\n"}),
			source: "site1/settings.py:2", warned: "Procfile:1: the start command runs collectstatic too"},
		{name: "forced without STATIC_ROOT", files: django(map[string]string{"site1/settings.py": "DEBUG = False\n", "pyship.toml": "[django]\ncollectstatic = true\n"}),
			source: "pyship.toml:2", warned: "pyship.toml:2: pyship finds no STATIC_ROOT in the settings (site1.settings)"},
		{name: "forced with a manage.py pyship cannot read", files: django(map[string]string{"manage.py": "import os, django\nos.environ.update(load_env())\n", "pyship.toml": "[django]\ncollectstatic = true\n", "Procfile": "web: gunicorn site1.wsgi\n"}),
			source: "pyship.toml:2", warned: "manage.py names no settings module pyship can read"},
		{name: "forced without manage.py", files: map[string]string{"app.py": flaskApp, "requirements.txt": "flask\n", "pyship.toml": "python = \"3.12\"\n[django]\ncollectstatic = true\n"},
			err: []string{"pyship.toml:3", "no manage.py", "hint:"}},
		{name: "forced without django", files: django(map[string]string{"requirements.txt": "gunicorn\n", "pyship.toml": "start = \"gunicorn site1.wsgi\"\n[django]\ncollectstatic = true\n", "manage.py": "print('not django')\n"}),
			err: []string{"pyship.toml:3", "none of the dependency inputs installs Django (requirements.txt)", "hint: add django"}},
		{name: "turned off", files: django(map[string]string{"pyship.toml": "[django]\ncollectstatic = false\n"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if len(tc.err) > 0 {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("got %v, want a *detect.Error", err)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.source == "" && len(res.BuildSteps) != 0:
				t.Errorf("steps %+v, want none", res.BuildSteps)
			case tc.source != "" && (len(res.BuildSteps) != 1 || res.BuildSteps[0].Name != "collectstatic" || res.BuildSteps[0].Source != tc.source):
				t.Errorf("steps %+v, want collectstatic from %s", res.BuildSteps, tc.source)
			}
			warned := strings.Join(res.Warnings, "\n")
			if !strings.Contains(warned, tc.warned) {
				t.Errorf("warnings %q, want %q", warned, tc.warned)
			}
		})
	}
}

// TestRefusalsWithALock checks that a lock file counts as the whole list of what is
// installed: a transitive package is there, a package it lacks is surely missing.
func TestRefusalsWithALock(t *testing.T) {
	base := map[string]string{}
	for _, f := range []string{"pyproject.toml", "uv.lock", "notes/__init__.py", "notes/main.py"} {
		data, err := os.ReadFile("../fixtures/uv-lock/" + f)
		if err != nil {
			t.Fatal(err)
		}
		base[f] = string(data)
	}
	with := func(extra map[string]string) map[string]string {
		m := maps.Clone(base)
		maps.Copy(m, extra)
		return m
	}
	// starlette is locked only as FastAPI's dependency.
	res, err := Detect(context.Background(), files(with(map[string]string{"notes/main.py": "from starlette.applications import Starlette\napp = Starlette()\n"})), Options{})
	if err != nil || res.Framework != "starlette" {
		t.Errorf("transitive starlette: framework %q, err %v", res.Framework, err)
	}
	_, err = Detect(context.Background(), files(with(map[string]string{"Procfile": "web: gunicorn -k uvicorn.workers.UvicornWorker notes.main:app\n"})), Options{})
	var ce *CannotStartError
	if !errors.As(err, &ce) || ce.Package != "gunicorn" || !strings.HasPrefix(err.Error(), "Procfile:1: the start command runs gunicorn, which none of the dependency inputs installs (uv.lock)") ||
		!strings.Contains(err.Error(), "hint: add gunicorn to pyproject.toml's dependencies, then run uv lock") {
		t.Errorf("got %v, want gunicorn refused with the uv lock fix", err)
	}
}

// TestFlaskInitDB covers a Flask app's init-db command, run at build time, as Flask's
// tutorial has the user do before the first start.
func TestFlaskInitDB(t *testing.T) {
	tutorial := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"pyproject.toml":     "[project]\nname = \"blog\"\nversion = \"1.0\"\ndependencies = [\"flask\"]\n",
			"blog/__init__.py":   "from flask import Flask\n\ndef create_app():\n    app = Flask(__name__, instance_relative_config=True)\n    from . import db\n    db.init_app(app)\n    return app\n",
			"blog/db.py":         "import click\nfrom flask import current_app\n\n\n@click.command(\"init-db\")\ndef init_db_command():\n    pass\n\n\ndef init_app(app):\n    app.cli.add_command(init_db_command)\n",
			"blog/schema.sql":    "CREATE TABLE post (id INTEGER PRIMARY KEY);\n",
			"blog/templates/x.j": "",
		}
		for k, v := range extra {
			if v == "" {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		files   map[string]string
		command []string
		source  string
		data    string
		err     []string
	}{
		{name: "tutorial", files: tutorial(nil),
			command: []string{"env", "FLASK_APP=blog", "python", "-m", "flask", "init-db"}, source: "blog/db.py:5", data: "instance"},
		{name: "app.cli.command on a module app", files: map[string]string{"app.py": "from flask import Flask\napp = Flask(__name__)\n\n@app.cli.command('initdb')\ndef initdb():\n    pass\n", "requirements.txt": "flask\n"},
			command: []string{"env", "FLASK_APP=app", "python", "-m", "flask", "initdb"}, source: "app.py:4", data: "instance"},
		{name: "no command", files: tutorial(map[string]string{"blog/db.py": "def init_db():\n    pass\n"})},
		{name: "a command of another name", files: tutorial(map[string]string{"blog/db.py": "import click\n@click.command(\"seed\")\ndef seed():\n    pass\n"})},
		{name: "turned off", files: tutorial(map[string]string{"pyship.toml": "[flask]\ninit-db = false\n"})},
		{name: "forced", files: tutorial(map[string]string{"pyship.toml": "[flask]\ninit-db = true\n"}),
			command: []string{"env", "FLASK_APP=blog", "python", "-m", "flask", "init-db"}, source: "pyship.toml:2", data: "instance"},
		{name: "forced without a command", files: tutorial(map[string]string{"blog/db.py": "x = 1\n", "pyship.toml": "[flask]\ninit-db = true\n"}),
			err: []string{"pyship.toml:2", "no init-db command beside the Flask app (blog/__init__.py)", "hint:"}},
		{name: "forced without flask", files: map[string]string{"main.py": "print('hi')\n", "pyship.toml": "[flask]\ninit-db = true\n"},
			err: []string{"pyship.toml:2", "no Flask app", "hint:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if len(tc.err) > 0 {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("got %v, want a *detect.Error", err)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.command == nil {
				if len(res.BuildSteps) != 0 {
					t.Errorf("steps %+v, want none", res.BuildSteps)
				}
				return
			}
			if len(res.BuildSteps) != 1 {
				t.Fatalf("steps %+v, want one", res.BuildSteps)
			}
			st := res.BuildSteps[0]
			if !slices.Equal(st.Command, tc.command) || st.Source != tc.source || st.Data != tc.data {
				t.Errorf("step %+v, want %q from %s with data in %s", st, tc.command, tc.source, tc.data)
			}
		})
	}
}

// TestSiblingImports covers an app in a directory that imports the modules beside it as
// top-level ones (run from its own directory, or with gunicorn --pythonpath DIR).
func TestSiblingImports(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		start []string
		path  string
	}{
		{"falcon api beside its middlewares",
			map[string]string{"requirements.txt": "falcon\ngunicorn\n", "api/__init__.py": "", "api/app.py": "import falcon\nimport middlewares\nfrom hooks import auth\n\napi = falcon.App()\n", "api/middlewares/__init__.py": "", "api/hooks/__init__.py": "", "api/hooks/auth.py": ""},
			sh(`gunicorn 'app:api' --bind "0.0.0.0:$PORT"`), "api"},
		{"a package that imports itself as a package",
			map[string]string{"requirements.txt": "flask\ngunicorn\n", "web/__init__.py": "", "web/app.py": "from flask import Flask\nfrom web import views\napp = Flask(__name__)\n", "web/views.py": ""},
			sh(`gunicorn 'web.app:app' --bind "0.0.0.0:$PORT"`), ""},
		{"a name the top has too is the top's",
			map[string]string{"requirements.txt": "flask\ngunicorn\n", "config.py": "", "web/__init__.py": "", "web/app.py": "from flask import Flask\nimport config\napp = Flask(__name__)\n", "web/config.py": ""},
			sh(`gunicorn 'web.app:app' --bind "0.0.0.0:$PORT"`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Start.Command, tc.start) || res.Start.PythonPath != tc.path {
				t.Errorf("start %q on path %q, want %q on %q", res.Start.Command, res.Start.PythonPath, tc.start, tc.path)
			}
			noted := slices.ContainsFunc(res.Notes, func(n Note) bool { return n.What == "python path" })
			if noted != (tc.path != "") {
				t.Errorf("notes %+v: python path noted %v", res.Notes, noted)
			}
		})
	}
}

// TestLockWithoutTheFramework covers a lock that holds only test tools beside a
// requirements.txt that holds the app's dependencies: requirements.txt is installed.
func TestLockWithoutTheFramework(t *testing.T) {
	lock := `{"_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6, "requires": {"python_version": "3.11"}, "sources": []}, "default": {"pytest": {"hashes": ["sha256:aa"], "version": "==7.3.1"}}, "develop": {}}`
	fsys := files(map[string]string{
		"Pipfile":          "[packages]\npytest = \"*\"\n",
		"Pipfile.lock":     lock,
		"requirements.txt": "Flask==2.3.2\ngunicorn==21.2.0\n",
		"app.py":           "from flask import Flask\napp = Flask(__name__)\n",
	})
	res, err := Detect(context.Background(), fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dependencies.Lock != nil || !slices.Equal(res.Dependencies.Requirements, []string{"requirements.txt"}) {
		t.Errorf("dependencies %+v, want requirements.txt", res.Dependencies)
	}
	warned := strings.Join(res.Warnings, "\n")
	if !strings.Contains(warned, "Pipfile.lock does not install flask, which the app needs to start (app.py:1)") || strings.Contains(warned, "requirements.txt is ignored") {
		t.Errorf("warnings:\n%s", warned)
	}
	// Without requirements.txt, the lock's refusal stands.
	delete(fsys, "requirements.txt")
	if _, err := Detect(context.Background(), fsys, Options{}); err == nil || !strings.Contains(err.Error(), "none of the dependency inputs installs (Pipfile.lock)") {
		t.Errorf("without requirements.txt: %v", err)
	}
}

// TestInferImports covers a repository with no dependency file: the well-known packages
// its code imports are installed, its own modules and the standard library are not, and
// an unknown import is named, not guessed.
func TestInferImports(t *testing.T) {
	res, err := Detect(context.Background(), files(map[string]string{
		"src/app.py":         "import os\nimport aiohttp_jinja2\nfrom aiohttp import web\nfrom PIL import Image\nimport blockinator\nimport zzmystery\n\napp = web.Application()\nweb.run_app(app, port=int(os.environ['PORT']))\n",
		"src/blockinator.py": "import json\n",
		"tests/test_app.py":  "import pytest\n",
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range res.Dependencies.Inferred {
		got = append(got, i.Name+"="+i.Import+"@"+i.Source)
	}
	want := []string{"aiohttp=aiohttp@src/app.py:3", "aiohttp-jinja2=aiohttp_jinja2@src/app.py:2", "Pillow=PIL@src/app.py:4"}
	if !slices.Equal(got, want) || res.Dependencies.Source != "imports" {
		t.Errorf("inferred %q from %q, want %q", got, res.Dependencies.Source, want)
	}
	warned := strings.Join(res.Warnings, "\n")
	if !strings.Contains(warned, "zzmystery (src/app.py:6)") || strings.Contains(warned, "pytest") || strings.Contains(warned, "blockinator") {
		t.Errorf("warnings:\n%s", warned)
	}
	// A dependency file, even one that lists nothing the code imports, is the authors' word.
	_, err = Detect(context.Background(), files(map[string]string{"app.py": "import flask\napp = flask.Flask(__name__)\n", "requirements.txt": "requests\n"}), Options{})
	if err == nil {
		t.Errorf("a requirements.txt without flask: no refusal")
	}
}

// TestInferImportsIsBounded checks that a repository of many files with no dependency
// file is looked at only so far.
func TestInferImportsIsBounded(t *testing.T) {
	fsys := fstest.MapFS{
		"app.py":       {Data: []byte("import flask\nimport helper\napp = flask.Flask(__name__)\n")},
		"zz/helper.py": {Data: []byte("")}, // walked after data/, so never reached
	}
	for i := range 3 * maxImportEntries {
		fsys[fmt.Sprintf("data/d%d/x%d.py", i%500, i)] = &fstest.MapFile{Data: []byte("import requests\n")}
	}
	res, err := Detect(context.Background(), fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Dependencies.Inferred); n == 0 || n > 2 {
		t.Errorf("inferred %+v", res.Dependencies.Inferred)
	}
	// The walk stopped before zz/, so helper reads as an import of unknown origin.
	if warned := strings.Join(res.Warnings, "\n"); !strings.Contains(warned, "helper (app.py:2)") {
		t.Errorf("the walk went past its bound: warnings\n%s", warned)
	}
}
