package detect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
			for _, p := range l.Packages {
				if (p.Version == "" && p.URL == "") || len(p.Hashes) == 0 || !strings.HasPrefix(p.Hashes[0], "sha256:") {
					t.Errorf("%s is not pinned and hashed: %+v", p.Name, p)
				}
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
		{"poetry 1.1 package without hashes", "poetry-lock-1.1", map[string]string{"poetry.lock": withoutBlock(t, "poetry-lock-1.1/poetry.lock", "gunicorn = [\n", "importlib_metadata = [")},
			[]string{"poetry.lock", "gunicorn", "22.0.0", "no file hashes", "poetry lock"}},
		{"poetry 1.8 lock missing a dependency of a dependency", "poetry-lock-nogroups",
			map[string]string{"poetry.lock": withoutBlock(t, "poetry-lock-nogroups/poetry.lock", "[[package]]\nname = \"h11\"", "[[package]]")},
			[]string{"poetry.lock", "out of date", "h11 (required by uvicorn)", "poetry lock"}},
		{"poetry 1.8 lock missing a main dependency", "poetry-lock-nogroups",
			map[string]string{"pyproject.toml": strings.Replace(readFixture(t, "poetry-lock-nogroups/pyproject.toml"), `starlette = "^0.41"`, "starlette = \"^0.41\"\nrequests = \"^2.32\"", 1)},
			[]string{"poetry.lock", "out of date with pyproject.toml", "requests", "pyproject.toml:12", "poetry lock"}},
		{"poetry 1.8 lock without pyproject.toml", "poetry-lock-nogroups", map[string]string{"pyproject.toml": ""},
			[]string{"poetry.lock", "neither the group nor the category", "pyproject.toml"}},
		{"unknown poetry lock-version", "poetry-lock-1.1", map[string]string{"poetry.lock": "[metadata]\nlock-version = \"3.0\"\n"},
			[]string{"poetry.lock", `lock-version "3.0"`}},
		{"pdm dependency added", "pdm-lock",
			map[string]string{"pyproject.toml": strings.Replace(readFixture(t, "pdm-lock/pyproject.toml"), `"gunicorn>=23.0",`, "\"gunicorn>=23.0\",\n    \"httpx>=0.27\",", 1)},
			[]string{"pdm.lock", "out of date with pyproject.toml", "httpx", "pyproject.toml:9", "pdm lock"}},
		{"pdm range excludes the locked version", "pdm-lock",
			map[string]string{"pyproject.toml": strings.Replace(readFixture(t, "pdm-lock/pyproject.toml"), `"flask[async]>=3.1"`, `"flask[async]>=3.2"`, 1)},
			[]string{"pdm.lock", "flask >=3.2", "holds 3.1.0"}},
		{"pdm lock without the default group", "pdm-lock",
			map[string]string{"pdm.lock": strings.Replace(readFixture(t, "pdm-lock/pdm.lock"), `groups = ["default", "dev"]`, `groups = ["dev"]`, 1)},
			[]string{"pdm.lock", "not default", "pdm lock"}},
		{"pdm package without hashes", "pdm-lock", map[string]string{"pdm.lock": withoutBlock(t, "pdm-lock/pdm.lock", "files = [\n    {file = \"gunicorn", "\n[[package]]")},
			[]string{"pdm.lock", "gunicorn 23.0.0 has no file hashes", "pdm lock --refresh"}},
		{"unknown pdm lock_version", "pdm-lock", map[string]string{"pdm.lock": "[metadata]\nlock_version = \"5.0.0\"\n"},
			[]string{"pdm.lock", `lock_version "5.0.0"`, "PDM 2"}},
		{"pdm package from git", "pdm-lock", map[string]string{"pdm.lock": "[metadata]\nlock_version = \"4.5.0\"\ngroups = [\"default\"]\n[[package]]\nname = \"mylib\"\nversion = \"1.0\"\ngit = \"https://example.com/mylib.git\"\ngroups = [\"default\"]\n"},
			[]string{"pdm.lock", "mylib", "version-control"}},
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

// readFixture reads a fixture file.
func readFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "fixtures", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// withoutBlock returns a fixture file without the text from start up to the next end
// after it (which stays).
func withoutBlock(t *testing.T, name, start, end string) string {
	t.Helper()
	s := readFixture(t, name)
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("%s has no %q", name, start)
	}
	j := strings.Index(s[i+len(start):], end)
	if j < 0 {
		t.Fatalf("%s has no %q after %q", name, end, start)
	}
	return s[:i] + s[i+len(start)+j:]
}

// lockPackages indexes a lock's packages by normalised name and version.
func lockPackages(l *Lock) map[string]LockedPackage {
	out := map[string]LockedPackage{}
	for _, p := range l.Packages {
		out[NormalizeName(p.Name)+"=="+p.Version] = p
	}
	return out
}

func TestPoetryLockShapes(t *testing.T) {
	const pyproject = `[tool.poetry]
name = "app"
package-mode = false

[tool.poetry.dependencies]
python = "^3.9"
web = {version = "^1.0", extras = ["fast"]}
tomli = {version = "^2.0", python = "<3.11"}
plugin = {version = "^1.0", optional = true}

[tool.poetry.extras]
plugins = ["plugin"]
`
	const graph = `[[package]]
name = "Web"
version = "1.2.0"
optional = false
python-versions = ">=3.9"
files = [{file = "web-1.2.0-py3-none-any.whl", hash = "sha256:01"}]

[package.dependencies]
lib = [
    {version = "<2", markers = "python_version < \"3.10\""},
    {version = ">=2", markers = "python_version >= \"3.10\""},
]
speedy = {version = ">=1", optional = true, markers = "extra == \"fast\""}
slowpoke = {version = ">=1", optional = true, markers = "extra == \"slow\""}

[package.extras]
fast = ["speedy (>=1)"]
slow = ["slowpoke (>=1)"]

[[package]]
name = "lib"
version = "1.9.0"
optional = false
python-versions = "*"
files = [{file = "lib-1.9.0.tar.gz", hash = "sha256:02"}]

[[package]]
name = "lib"
version = "2.1.0"
optional = false
python-versions = "*"
files = [{file = "lib-2.1.0.tar.gz", hash = "sha256:03"}]

[[package]]
name = "speedy"
version = "1.0.0"
optional = true
python-versions = "*"
files = [{file = "speedy-1.0.0.tar.gz", hash = "sha256:04"}]

[[package]]
name = "slowpoke"
version = "1.0.0"
optional = true
python-versions = "*"
files = [{file = "slowpoke-1.0.0.tar.gz", hash = "sha256:05"}]

[[package]]
name = "tomli"
version = "2.0.1"
optional = false
python-versions = ">=3.7"
files = [{file = "tomli-2.0.1.tar.gz", hash = "sha256:06"}]

[[package]]
name = "plugin"
version = "1.0.0"
optional = true
python-versions = "*"
files = [{file = "plugin-1.0.0.tar.gz", hash = "sha256:07"}]

[[package]]
name = "pytest"
version = "8.0.0"
optional = false
python-versions = "*"
files = [{file = "pytest-8.0.0.tar.gz", hash = "sha256:08"}]

[metadata]
lock-version = "2.0"
python-versions = "^3.9"
content-hash = "00"
`
	const beforeOne = `[[package]]
name = "web"
version = "1.2.0"
category = "main"
optional = false
python-versions = "*"

[[package]]
name = "plugin"
version = "1.0.0"
category = "main"
optional = true
python-versions = "*"

[[package]]
name = "pytest"
version = "8.0.0"
category = "dev"
optional = false
python-versions = "*"

[metadata]
python-versions = "^3.9"
content-hash = "00"

[metadata.hashes]
web = ["0a0b"]
plugin = ["0c"]
pytest = ["0d"]
`
	for _, tc := range []struct {
		name, lock string
		// want maps name==version to its marker; nothing else may be installed.
		want map[string]string
		// hashes maps name==version to the hashes it must carry.
		hashes map[string]string
	}{
		{
			// Extras are followed only when asked for; a name locked at two versions is
			// reached through the constraint and marker of each; a python restriction in
			// pyproject.toml becomes a marker; optional and dev packages stay out.
			name: "graph", lock: graph,
			want: map[string]string{"web==1.2.0": "", "lib==1.9.0": `python_version < "3.10"`, "lib==2.1.0": `python_version >= "3.10"`,
				"speedy==1.0.0": "", "tomli==2.0.1": `python_full_version < "3.11.0"`},
			hashes: map[string]string{"lib==2.1.0": "sha256:03"},
		},
		{
			// No lock-version at all, category per package, bare digests in
			// [metadata.hashes]: the oldest shape Poetry still reads.
			name: "before Poetry 1.0", lock: beforeOne,
			want:   map[string]string{"web==1.2.0": ""},
			hashes: map[string]string{"web==1.2.0": "sha256:0a0b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proj, err := readProject(fstest.MapFS{"pyproject.toml": {Data: []byte(pyproject)}})
			if err != nil {
				t.Fatal(err)
			}
			l, err := parsePoetryLock([]byte(tc.lock), proj)
			if err != nil {
				t.Fatal(err)
			}
			got := lockPackages(l)
			for key, marker := range tc.want {
				p, ok := got[key]
				if !ok {
					t.Errorf("%s is not installed", key)
					continue
				}
				if p.Marker != marker {
					t.Errorf("%s marker %q, want %q", key, p.Marker, marker)
				}
			}
			for key := range got {
				if _, ok := tc.want[key]; !ok {
					t.Errorf("%s is installed", key)
				}
			}
			for key, h := range tc.hashes {
				if strings.Join(got[key].Hashes, " ") != h {
					t.Errorf("%s hashes %v, want %s", key, got[key].Hashes, h)
				}
			}
		})
	}
}

func TestPDMLockWithoutGroups(t *testing.T) {
	// Locked without inherit_metadata (PDM before 2.11, or strategy changed), files in
	// [metadata.files]: the default group is what [project] dependencies reach.
	const pyproject = `[project]
name = "app"
version = "0.1"
dependencies = ["web[fast]>=1.0", "local-lib"]

[build-system]
requires = ["pdm-backend"]
build-backend = "pdm.backend"
`
	const lock = `[metadata]
groups = ["default", "dev"]
strategy = ["cross_platform"]
lock_version = "4.2"
content_hash = "sha256:00"

[[package]]
name = "web"
version = "1.2.0"
requires_python = ">=3.8"
dependencies = ["lib>=1; python_version < \"3.12\""]

[[package]]
name = "web"
version = "1.2.0"
extras = ["fast"]
requires_python = ">=3.8"
dependencies = ["speedy>=1", "web==1.2.0"]

[[package]]
name = "lib"
version = "1.0"

[[package]]
name = "speedy"
version = "2.0"

[[package]]
name = "local-lib"
version = "0.1"
path = "./libs/local"

[[package]]
name = "pytest"
version = "8.0"

[metadata.files]
"web 1.2.0" = [{file = "web-1.2.0.tar.gz", hash = "sha256:01"}]
"web[fast] 1.2.0" = [{file = "web-1.2.0.tar.gz", hash = "sha256:01"}]
"lib 1.0" = [{file = "lib-1.0.tar.gz", hash = "sha256:02"}]
"speedy 2.0" = [{file = "speedy-2.0.tar.gz", hash = "sha256:03"}]
"pytest 8.0" = [{file = "pytest-8.0.tar.gz", hash = "sha256:04"}]
`
	proj, err := readProject(fstest.MapFS{"pyproject.toml": {Data: []byte(pyproject)}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := parsePDMLock([]byte(lock), proj)
	if err != nil {
		t.Fatal(err)
	}
	got := lockPackages(l)
	want := map[string]string{"web==1.2.0": "", "lib==1.0": `python_version < "3.12"`, "speedy==2.0": ""}
	if len(got) != len(want) {
		t.Errorf("installed %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for key, marker := range want {
		if p, ok := got[key]; !ok || p.Marker != marker || len(p.Hashes) != 1 {
			t.Errorf("%s: %+v, want marker %q and one hash", key, p, marker)
		}
	}
	// The project has a build backend, so PDM installs it; local-lib is a path.
	if strings.Join(l.Local, " ") != ". libs/local" {
		t.Errorf("local %v", l.Local)
	}
}

func TestSeveralLockFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string
		replace map[string]string
		want    []string
		not     []string
	}{
		{
			name: "poetry.lock and a pdm.lock that disagrees", fixture: "poetry-lock",
			replace: map[string]string{"pdm.lock": readFixture(t, "pdm-lock/pdm.lock")},
			want: []string{"poetry.lock is installed; pdm.lock ignored: pyship takes the first of pylock.toml, uv.lock, poetry.lock, pdm.lock, Pipfile.lock",
				"pdm.lock disagrees: asgiref only in pdm.lock, click 8.1.8 there, 8.5.1 here, colorama only in pdm.lock, flask 3.1.0 there, 3.1.3 here, importlib-metadata only in pdm.lock and 6 more", "delete the lock you no longer use"},
		},
		{
			name: "a lock that agrees", fixture: "pylock",
			replace: map[string]string{"Pipfile.lock": pipfileOf(t, "pylock", "pylock.toml")},
			want:    []string{"pylock.toml is installed; Pipfile.lock ignored", "Pipfile.lock locks the same versions"},
			not:     []string{"disagrees", "delete"},
		},
		{
			name: "an ignored lock that is out of date", fixture: "poetry-lock-1.1",
			replace: map[string]string{"pdm.lock": readFixture(t, "pdm-lock/pdm.lock")},
			want:    []string{"poetry.lock is installed", "pdm.lock cannot be compared with it: out of date with pyproject.toml: pyproject.toml requires gunicorn ^22.0, the lock holds 23.0.0"},
		},
		{
			name: "requirements.txt that disagrees", fixture: "poetry-lock",
			replace: map[string]string{"requirements.txt": "flask==3.0.0\ngunicorn\nRequests>=2\nwerkzeug==3.1.9\n"},
			want:    []string{"poetry.lock is installed; requirements.txt is ignored", "requirements.txt disagrees: flask 3.0.0 there, 3.1.3 here, requests is not in poetry.lock (delete requirements.txt, or export it from the lock)"},
			not:     []string{"werkzeug", "gunicorn"},
		},
		{
			name: "requirements.txt that agrees", fixture: "poetry-lock",
			replace: map[string]string{"requirements.txt": "flask==3.1.3\n"},
			want:    []string{"poetry.lock is installed; requirements.txt is ignored (a lock pins every package with its hashes)"},
			not:     []string{"disagrees"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), fixtureFS(t, tc.fixture, tc.replace), Options{})
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(res.Warnings, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("warnings do not say %q:\n%s", w, all)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(all, w) {
					t.Errorf("warnings say %q:\n%s", w, all)
				}
			}
		})
	}
}

// pipfileOf writes a Pipfile.lock holding what a fixture's lock installs.
func pipfileOf(t *testing.T, fixture, file string) string {
	t.Helper()
	res, err := Detect(context.Background(), fixtureFS(t, fixture, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(`{"default": {`)
	for i, p := range res.Dependencies.Lock.Packages {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `%q: {"version": "==%s", "hashes": [%q]}`, p.Name, p.Version, p.Hashes[0])
	}
	b.WriteString("}}")
	return b.String()
}

// TestUVLockWithOptionalDependencies checks that an optional dependency uv records in the
// lock (with an extra marker) does not make the lock look out of date.
func TestUVLockWithOptionalDependencies(t *testing.T) {
	fsys := fixtureFS(t, "uv-lock", nil)
	lock := string(fsys["uv.lock"].Data)
	if !strings.Contains(lock, "requires-dist = [\n") {
		t.Fatal("the fixture's uv.lock has no requires-dist")
	}
	fsys["uv.lock"].Data = []byte(strings.Replace(lock, "requires-dist = [\n", "requires-dist = [\n    { name = \"pytest\", marker = \"extra == 'dev'\", specifier = \">=8\" },\n", 1))
	fsys["pyproject.toml"].Data = append(fsys["pyproject.toml"].Data, []byte("\n[project.optional-dependencies]\ndev = [\"pytest>=8\"]\n")...)
	if _, err := Detect(context.Background(), fsys, Options{}); err != nil {
		t.Errorf("a lock with an optional dependency: %v", err)
	}
}
