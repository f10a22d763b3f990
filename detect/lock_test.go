package detect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// fixtureFS reads a fixture into memory, with some files replaced or added.
func fixtureFS(t *testing.T, name string, replace map[string]string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	root := filepath.Join("..", "fixtures", name)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fsys[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range replace {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return fsys
}

func TestLockFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture, format string
		local           []string
		has, hasNot     []string
		marker          map[string]string
	}{
		{"uv-lock", "uv", []string{"."}, []string{"fastapi", "pydantic-core", "uvicorn"}, []string{"pytest", "notes"}, nil},
		{"poetry-lock", "poetry", nil, []string{"flask", "gunicorn", "packaging"}, []string{"pytest", "colorama"}, nil},
		{"pipenv-lock", "pipenv", nil, []string{"flask", "gunicorn"}, []string{"pytest"}, map[string]string{"click": "python_version >= '3.10'"}},
		{"pylock", "pylock", nil, []string{"starlette", "uvicorn"}, []string{"pytest"}, nil},
		// Poetry 1.1: category says main or dev, [metadata.files] holds the hashes, and the
		// dependency graph gives the markers Poetry 1 did not write per package.
		{"poetry-lock-1.1", "poetry", nil, []string{"flask", "gunicorn", "jinja2", "markupsafe", "packaging", "werkzeug"}, []string{"pytest", "pluggy", "iniconfig", "tomli"},
			map[string]string{"flask": "", "colorama": `platform_system == "Windows"`, "importlib-metadata": `python_version < "3.10" or python_version < "3.8"`, "zipp": `python_version < "3.10" or python_version < "3.8"`}},
		// Poetry 1.8: neither category nor groups; what uvicorn's "standard" extra adds is
		// installed, under the markers of the edges that lead to it.
		{"poetry-lock-nogroups", "poetry", nil, []string{"starlette", "uvicorn", "anyio", "httptools", "uvloop", "watchfiles", "websockets", "pyyaml", "python-dotenv", "h11", "click"}, []string{"pytest", "httpx", "httpcore", "certifi", "pluggy"},
			map[string]string{"uvloop": `sys_platform != "win32" and sys_platform != "cygwin" and platform_python_implementation != "PyPy"`, "typing-extensions": `python_version < "3.10" or python_version < "3.11" or python_version < "3.8"`, "colorama": `sys_platform == "win32" or platform_system == "Windows"`, "httptools": ""}},
		// PDM with groups: the default group, the "flask[async]" entry folded into flask.
		{"pdm-lock", "pdm", nil, []string{"flask", "asgiref", "gunicorn", "werkzeug", "blinker"}, []string{"pytest", "pluggy", "tomli", "exceptiongroup"},
			map[string]string{"flask": "", "asgiref": "", "typing-extensions": `python_version < "3.11"`}},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			res, err := Detect(context.Background(), fixtureFS(t, tc.fixture, nil), Options{})
			if err != nil {
				t.Fatal(err)
			}
			l := res.Dependencies.Lock
			if l == nil || l.Format != tc.format || strings.Join(l.Local, " ") != strings.Join(tc.local, " ") {
				t.Fatalf("lock %+v, want format %s local %v", l, tc.format, tc.local)
			}
			got := map[string]LockedPackage{}
			for _, p := range l.Packages {
				got[NormalizeName(p.Name)] = p
				if len(p.Hashes) == 0 || p.Version == "" {
					t.Errorf("%s: version %q hashes %v", p.Name, p.Version, p.Hashes)
				}
			}
			for _, n := range tc.has {
				if _, ok := got[n]; !ok {
					t.Errorf("%s is not installed", n)
				}
			}
			for _, n := range tc.hasNot {
				if _, ok := got[n]; ok {
					t.Errorf("%s (not a default dependency) is installed", n)
				}
			}
			for n, m := range tc.marker {
				if got[n].Marker != m {
					t.Errorf("%s marker %q, want %q", n, got[n].Marker, m)
				}
			}
			reqs := l.Requirements()
			if !strings.Contains(reqs, "--hash=sha256:") || !strings.Contains(reqs, "==") {
				t.Errorf("requirements:\n%s", reqs)
			}
		})
	}
}

func TestStaleLocks(t *testing.T) {
	uvProject, err := os.ReadFile("../fixtures/uv-lock/pyproject.toml")
	if err != nil {
		t.Fatal(err)
	}
	poetryProject, err := os.ReadFile("../fixtures/poetry-lock/pyproject.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, fixture string
		replace       map[string]string
		want          []string
	}{
		{"uv range changed", "uv-lock", map[string]string{"pyproject.toml": strings.Replace(string(uvProject), `"fastapi>=0.115,<0.116"`, `"fastapi>=0.116"`, 1)},
			[]string{"uv.lock", "out of date with pyproject.toml", "fastapi>=0.116", "pyproject.toml:7", "uv lock"}},
		{"uv dependency added", "uv-lock", map[string]string{"pyproject.toml": strings.Replace(string(uvProject), `"uvicorn>=0.34,<0.35",`, `"uvicorn>=0.34,<0.35", "httpx",`, 1)},
			[]string{"uv.lock", "httpx", "does not know"}},
		{"poetry dependency added", "poetry-lock", map[string]string{"pyproject.toml": strings.Replace(string(poetryProject), `gunicorn = "^23.0"`, "gunicorn = \"^23.0\"\nrequests = \"^2.32\"", 1)},
			[]string{"poetry.lock", "requests", "pyproject.toml:12", "poetry lock"}},
		{"poetry range excludes the locked version", "poetry-lock", map[string]string{"pyproject.toml": strings.Replace(string(poetryProject), `flask = "^3.1"`, `flask = "^2.3"`, 1)},
			[]string{"poetry.lock", "flask ^2.3", "holds 3.1.3"}},
		{"pipfile package added", "pipenv-lock", map[string]string{"Pipfile": "[packages]\nflask = \"==3.1.3\"\nrequests = \"*\"\n"},
			[]string{"Pipfile.lock", "out of date with Pipfile", "requests", "pipenv lock"}},
		{"vcs in a lock", "pipenv-lock", map[string]string{"Pipfile.lock": `{"default": {"mylib": {"git": "https://example.com/mylib.git", "ref": "abc"}}}`, "Pipfile": "[packages]\n"},
			[]string{"Pipfile.lock", "mylib", "version-control", "no git"}},
		{"broken json", "pipenv-lock", map[string]string{"Pipfile.lock": `{"default": `},
			[]string{"Pipfile.lock", "not valid JSON"}},
		{"unknown pylock version", "pylock", map[string]string{"pylock.toml": "lock-version = \"2.0\"\n"},
			[]string{"pylock.toml", `lock-version "2.0"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(context.Background(), fixtureFS(t, tc.fixture, tc.replace), Options{})
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *detect.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestPylockGroupsAndMarkers(t *testing.T) {
	doc := `lock-version = "1.0"
default-groups = ["default"]

[[packages]]
name = "web"
version = "1.0"
marker = "'default' in dependency_groups and sys_platform == 'linux'"
wheels = [{ url = "https://example.com/web-1.0-py3-none-any.whl", hashes = { sha256 = "aa" } }]

[[packages]]
name = "pytest"
version = "8.0"
marker = "'dev' in dependency_groups"
wheels = [{ url = "https://example.com/pytest-8.0-py3-none-any.whl", hashes = { sha256 = "bb" } }]

[[packages]]
name = "local-lib"
directory = { path = "./libs/local" }
`
	l, err := parsePylock([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Packages) != 1 || l.Packages[0].Name != "web" || l.Packages[0].Marker != "sys_platform == 'linux'" {
		t.Errorf("packages %+v", l.Packages)
	}
	if strings.Join(l.Local, " ") != "libs/local" {
		t.Errorf("local %v", l.Local)
	}
}
