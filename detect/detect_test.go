package detect

import (
	"context"
	"errors"
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

func files(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, content := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name       string
		files      map[string]string
		python     Fact
		start      []string
		startFrom  string
		port       int
		framework  string
		reqs       []string
		wantWarned string
	}{
		{
			name:      "seed app",
			files:     map[string]string{"app.py": seedApp, "requirements.txt": "Flask\n"},
			python:    Fact{DefaultPythonVersion, "default"},
			start:     []string{"python", "app.py"},
			startFrom: "app.py:8",
			port:      8080,
			framework: "flask",
			reqs:      []string{"requirements.txt"},
		},
		{
			name:       "hard-coded port",
			files:      map[string]string{"app.py": strings.Replace(seedApp, "8080", "5000", 1), "requirements.txt": "Flask\n"},
			python:     Fact{DefaultPythonVersion, "default"},
			start:      []string{"python", "app.py"},
			startFrom:  "app.py:8",
			port:       5000,
			framework:  "flask",
			reqs:       []string{"requirements.txt"},
			wantWarned: "app.py:9 hard-codes port 5000",
		},
		{
			name:      "flask app without runner",
			files:     map[string]string{"main.py": "import flask\napplication = flask.Flask(__name__)\n", "requirements.txt": "flask", ".python-version": "3.11.4\n"},
			python:    Fact{"3.11", ".python-version:1"},
			start:     []string{"/bin/sh", "-c", `exec python -m flask --app main:application run --host 0.0.0.0 --port "$PORT"`},
			startFrom: "main.py:2",
			port:      8080,
			framework: "flask",
			reqs:      []string{"requirements.txt"},
		},
		{
			name:      "procfile wins",
			files:     map[string]string{"app.py": seedApp, "Procfile": "# web server\nworker: celery\nweb: gunicorn app:app\n", "runtime.txt": "python-3.12.1"},
			python:    Fact{"3.12", "runtime.txt:1"},
			start:     []string{"/bin/sh", "-c", "exec gunicorn app:app"},
			startFrom: "Procfile:3",
			port:      8080,
		},
		{
			name:       "plain script",
			files:      map[string]string{"main.py": "print('hi')\n"},
			python:     Fact{DefaultPythonVersion, "default"},
			start:      []string{"python", "main.py"},
			startFrom:  "main.py",
			port:       8080,
			wantWarned: "main.py has no __main__ block",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Python != tc.python {
				t.Errorf("python %+v, want %+v", res.Python, tc.python)
			}
			if !slices.Equal(res.Start.Command, tc.start) || res.Start.Source != tc.startFrom || res.Start.Reason == "" {
				t.Errorf("start %q from %q (%q), want %q from %q", res.Start.Command, res.Start.Source, res.Start.Reason, tc.start, tc.startFrom)
			}
			if res.Port != tc.port || res.Framework != tc.framework || !slices.Equal(res.Requirements, tc.reqs) {
				t.Errorf("port %d framework %q requirements %v", res.Port, res.Framework, res.Requirements)
			}
			warned := strings.Join(res.Warnings, "\n")
			if tc.wantWarned == "" && warned != "" || !strings.Contains(warned, tc.wantWarned) {
				t.Errorf("warnings %q, want %q", warned, tc.wantWarned)
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
		{"no python", map[string]string{"README.md": "hi", "index.js": ""}, []string{"no Python application found", "requirements.txt", "app.py"}},
		{"no start command", map[string]string{"requirements.txt": "flask"}, []string{"no start command", "Procfile", "app.py", "main.py"}},
		{"bad python version", map[string]string{"app.py": seedApp, ".python-version": "\n# pinned\npypy3.10\n"}, []string{".python-version:3", "pypy3.10", "hint:"}},
		{"empty python version", map[string]string{"app.py": seedApp, ".python-version": "\n"}, []string{".python-version", "empty"}},
		{"two web processes", map[string]string{"app.py": seedApp, "Procfile": "web: a\nweb: b\n"}, []string{"Procfile:2", "second web process", "line 1"}},
		{"empty web process", map[string]string{"app.py": seedApp, "Procfile": "web:\n"}, []string{"Procfile:1", "no command"}},
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
	if !slices.Equal(res.Start.Command, []string{"python", "app.py"}) || res.Port != 8080 || res.Framework != "flask" {
		t.Errorf("flask-hello: %+v", res)
	}
}
