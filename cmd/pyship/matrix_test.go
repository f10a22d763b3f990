package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// monorepo copies fixtures/monorepo-matrix to a temporary directory, with a .gitignore in
// services/web, and returns its path.
func monorepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mono")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "fixtures", "monorepo-matrix"))); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "services/web/.gitignore", "*.log\n")
	return dir
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// matrixOf runs pyship plan --matrix's search and planning on dir, offline.
func matrixOf(t *testing.T, dir string) *Matrix {
	t.Helper()
	t.Setenv("PYSHIP_OFFLINE", "1")
	m, err := findMatrix(context.Background(), dir, common{cacheDir: t.TempDir()}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// hashes maps each app's name to its plan hash.
func hashes(m *Matrix) map[string]string {
	out := map[string]string{}
	for _, e := range m.Include {
		out[e.Name] = e.PlanHash
	}
	return out
}

var timeZero = time.Unix(0, 0)

func TestPlanMatrix(t *testing.T) {
	dir := monorepo(t)
	m := matrixOf(t, dir)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// The shape strategy.matrix takes, sorted by path; tests/, examples/ and the library
	// left out.
	want := regexp.MustCompile(`^\{"include":\[` +
		`\{"name":"api","path":"services/api","image-suffix":"api","plan-hash":"sha256:[0-9a-f]{64}"\},` +
		`\{"name":"web","path":"services/web","image-suffix":"web","plan-hash":"sha256:[0-9a-f]{64}"\},` +
		`\{"name":"status","path":"tools/status","image-suffix":"status","plan-hash":"sha256:[0-9a-f]{64}"\}\]\}$`)
	if !want.Match(out) {
		t.Fatalf("matrix %s", out)
	}
	h := hashes(m)
	if h["api"] == h["web"] || h["web"] == h["status"] || h["api"] == h["status"] {
		t.Errorf("apps share a plan hash: %v", h)
	}
	// The same tree, copied elsewhere, has the same hashes: no path of the host in them.
	if again := hashes(matrixOf(t, monorepo(t))); !maps.Equal(again, h) {
		t.Errorf("a copy hashes %v, the original %v", again, h)
	}
}

// TestPlanHash: an app's hash changes with what its image holds, and with nothing else.
func TestPlanHash(t *testing.T) {
	base := hashes(matrixOf(t, monorepo(t)))
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, dir string)
		changed []string
	}{
		{name: "its source", changed: []string{"web"}, edit: func(t *testing.T, dir string) {
			write(t, dir, "services/web/app.py", "from flask import Flask\n\napp = Flask(__name__)\n\n\n@app.route(\"/\")\ndef home():\n    return \"changed\"\n")
		}},
		{name: "a new file in it", changed: []string{"api"}, edit: func(t *testing.T, dir string) {
			write(t, dir, "services/api/static/logo.svg", "<svg/>\n")
		}},
		{name: "its dependencies", changed: []string{"api"}, edit: func(t *testing.T, dir string) {
			write(t, dir, "services/api/requirements.txt", "fastapi==0.115.12\nuvicorn==0.34.2\nhttpx==0.28.1\n")
		}},
		{name: "its configuration", changed: []string{"status"}, edit: func(t *testing.T, dir string) {
			write(t, dir, "tools/status/pyship.toml", "[env]\nMODE = \"strict\"\n")
		}},
		{name: "a file's mode", changed: []string{"status"}, edit: func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "tools/status/main.py"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "tests beside the apps", edit: func(t *testing.T, dir string) {
			write(t, dir, "tests/test_api.py", "def test_nothing():\n    pass\n")
		}},
		{name: "the top's README", edit: func(t *testing.T, dir string) {
			write(t, dir, "README.md", "changed\n")
		}},
		{name: "the library no app installs", edit: func(t *testing.T, dir string) {
			write(t, dir, "libs/common/src/common/__init__.py", "X = 1\n")
		}},
		{name: "byte code the layer leaves out", edit: func(t *testing.T, dir string) {
			write(t, dir, "services/api/__pycache__/main.cpython-312.pyc", "\x00junk")
		}},
		{name: "a file its .gitignore leaves out", edit: func(t *testing.T, dir string) {
			write(t, dir, "services/web/debug.log", "GET /\n")
		}},
		{name: "a secret the layer leaves out", edit: func(t *testing.T, dir string) {
			write(t, dir, "services/api/.env", "TOKEN=x\n")
		}},
		{name: "a time stamp", edit: func(t *testing.T, dir string) {
			if err := os.Chtimes(filepath.Join(dir, "services/web/app.py"), timeZero, timeZero); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := monorepo(t)
			tc.edit(t, dir)
			got := hashes(matrixOf(t, dir))
			for name, h := range base {
				if changed := got[name] != h; changed != slices.Contains(tc.changed, name) {
					t.Errorf("%s: hash changed %v, want %v", name, changed, !changed)
				}
			}
		})
	}
}

// TestPlanHashAcrossCommits: in a git repository (as in CI), a commit that changes one
// app leaves its siblings' hashes, though every image's revision label changes.
func TestPlanHashAcrossCommits(t *testing.T) {
	dir := monorepo(t)
	git := func(date string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("", "init", "-q")
	git("", "add", ".")
	git("2026-01-05T10:00:00Z", "commit", "-q", "-m", "first")
	before := hashes(matrixOf(t, dir))
	write(t, dir, "tools/status/main.py", "print('rewritten')\n")
	git("", "add", ".")
	git("2026-03-09T10:00:00Z", "commit", "-q", "-m", "second")
	after := hashes(matrixOf(t, dir))
	if after["api"] != before["api"] || after["web"] != before["web"] {
		t.Errorf("a commit to tools/status changed its siblings' hashes: %v, then %v", before, after)
	}
	if after["status"] == before["status"] {
		t.Error("a commit to tools/status kept its hash")
	}
}

func TestPlanMatrixErrors(t *testing.T) {
	t.Setenv("PYSHIP_OFFLINE", "1")
	empty := t.TempDir()
	write(t, empty, "tests/requirements.txt", "pytest\n")
	write(t, empty, "tests/app.py", "print('not an app')\n")
	write(t, empty, "README.md", "nothing to build\n")
	broken := monorepo(t)
	write(t, broken, "services/web/.python-version", "banana\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "no app", args: []string{"plan", "--matrix", empty}, code: exitDetect,
			want: []string{"no Python application found in " + `"` + empty + `"`, "dependency file", "tests, test, examples", "[matrix] include"}},
		{name: "a broken app", args: []string{"plan", "--matrix", broken}, code: exitDetect,
			want: []string{"services/web/.python-version:1", `exclude = ["services/web"]`}},
		{name: "no such directory", args: []string{"plan", "--matrix", filepath.Join(empty, "gone")}, code: exitDetect,
			want: []string{"does not exist"}},
		{name: "with --json", args: []string{"plan", "--matrix", "--json", empty}, code: exitUsage,
			want: []string{"--matrix prints JSON already"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tc.code {
				t.Fatalf("got %v, want exit %d", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestPlanMatrixIgnoreFiles: what the repository's ignore files leave out holds no app.
func TestPlanMatrixIgnoreFiles(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                []string
	}{
		{name: ".gitignore at the top", file: ".gitignore", content: "tools/\n", want: []string{"services/api", "services/web"}},
		{name: ".gitignore below", file: "services/.gitignore", content: "web\n", want: []string{"services/api", "tools/status"}},
		{name: ".dockerignore", file: ".dockerignore", content: "services/api\n", want: []string{"services/web", "tools/status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := monorepo(t)
			write(t, dir, tc.file, tc.content)
			var got []string
			for _, e := range matrixOf(t, dir).Include {
				got = append(got, e.Path)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("matrix of %v, want %v", got, tc.want)
			}
		})
	}
}
