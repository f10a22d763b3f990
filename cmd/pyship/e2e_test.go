//go:build linux && e2e

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/sandbox"
)

// pyshipBin is the CLI under test, built once for all tests.
var pyshipBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pyship-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pyshipBin = filepath.Join(dir, "pyship")
	// Static, as released: the sandbox starts programs through pyship itself, inside
	// images that need not have this machine's C library (another architecture's).
	build := exec.Command("go", "build", "-o", pyshipBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building pyship: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// pyship runs the CLI with extra environment entries.
func pyship(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return pyshipIn(t, "", env, args...)
}

// pyshipIn runs the CLI with stdin and extra environment entries.
func pyshipIn(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pyshipBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running pyship: %v", err)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	t.Logf("pyship %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	return r
}

// copyFixture copies fixtures/name to a temporary directory (outside any git repository,
// so builds use the fixed epoch) and returns it.
func copyFixture(t *testing.T, fixture string) string {
	t.Helper()
	src := filepath.Join("..", "..", "fixtures", fixture)
	dst := filepath.Join(t.TempDir(), fixture)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

var digestLine = regexp.MustCompile(`^(\S+@)?sha256:[0-9a-f]{64}\n$`)

// builtDigest checks that stdout is exactly one reference-with-digest line and returns the
// digest.
func builtDigest(t *testing.T, r result) v1.Hash {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("pyship failed with exit code %d:\n%s", r.code, r.stderr)
	}
	if !digestLine.MatchString(r.stdout) {
		t.Fatalf("stdout %q is not one REF@sha256:... line", r.stdout)
	}
	_, d, _ := strings.Cut(strings.TrimSpace(r.stdout), "@")
	if d == "" {
		d = strings.TrimSpace(r.stdout)
	}
	h, err := v1.NewHash(d)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func layoutImage(t *testing.T, dir string, d v1.Hash) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	return img
}

func uniqueTag() string {
	return fmt.Sprintf("t%d", time.Now().UnixNano())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func podman(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// TestFixturesEndToEnd builds every fixture app marked e2e, pushes it to the test-bed
// registry and runs it with podman, a runtime that is not pyship's.
func TestFixturesEndToEnd(t *testing.T) {
	reg := fixtures.Testbed(t)
	root := filepath.Join("..", "..", "fixtures")
	apps, err := fixtures.Apps(root)
	if err != nil {
		t.Fatal(err)
	}
	// Builds wait on PyPI and podman as much as on the CPU: a few at a time finish sooner.
	parallel := 3
	if n, err := strconv.Atoi(os.Getenv("PYSHIP_E2E_PARALLEL")); err == nil && n > 0 {
		parallel = n
	}
	slots := make(chan struct{}, parallel)
	ran := 0
	for _, app := range apps {
		want, err := fixtures.Load(filepath.Join(root, filepath.FromSlash(app)))
		if err != nil {
			t.Fatal(err)
		}
		if !want.E2E {
			continue
		}
		ran++
		t.Run(app, func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			endToEnd(t, reg, app, want)
		})
	}
	if ran < 3 {
		t.Errorf("only %d fixtures are marked e2e", ran)
	}
}

func endToEnd(t *testing.T, reg, app string, want *fixtures.Expect) {
	fixtures.TestbedPython(t, want.Python)
	src := copyFixture(t, app)
	repo := reg + "/e2e/" + strings.ReplaceAll(app, "/", "-")
	tag := repo + ":" + uniqueTag()
	cache := []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}
	r := pyship(t, cache, "build", src, "--image", tag, "--push")
	d := builtDigest(t, r)
	if !strings.HasPrefix(r.stdout, repo+"@sha256:") {
		t.Errorf("stdout %q does not name the pushed repository", r.stdout)
	}
	// Built again (the dependency layer from the cache, every other layer written anew),
	// the image is the same: owners and modes included.
	if again := builtDigest(t, pyship(t, cache, "build", src)); again != d {
		t.Errorf("built twice: %s, then %s", d, again)
	}

	// The tag points at exactly the digest pyship printed, and the image is valid.
	ref, err := name.ParseReference(tag)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != d {
		t.Errorf("registry has %s at %s, pyship printed %s", desc.Digest, tag, d)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Cmd, want.Start) {
		t.Errorf("config: user %q cmd %q", cf.Config.User, cf.Config.Cmd)
	}

	if want.Rebuild {
		again := pyship(t, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, "build", src, "--image", repo+":"+uniqueTag(), "--push")
		if d2 := builtDigest(t, again); d2 != d {
			t.Errorf("a second build with an empty cache gave %s, the first %s", d2, d)
		}
	}

	port := freePort(t)
	pinned := strings.TrimSpace(r.stdout)
	id := podman(t, "run", "-d", "--rm", "--init", "-p", fmt.Sprintf("127.0.0.1:%d:%d", port, want.Port), pinned)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("podman", "logs", id).CombinedOutput()
			t.Logf("container logs:\n%s", out)
		}
		_ = exec.Command("podman", "rm", "-f", id).Run()
	})
	if uid := podman(t, "exec", id, "id", "-u"); uid != "65532" {
		t.Errorf("the app runs as uid %s, want 65532", uid)
	}
	// A source build's compiler stays in its builder.
	if cc := podman(t, "exec", id, "sh", "-c", "command -v gcc cc x86_64-linux-gnu-gcc || echo none"); cc != "none" {
		t.Errorf("the image has a compiler: %s", cc)
	}
	if v := podman(t, "exec", id, "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"); v != want.Python {
		t.Errorf("the image runs Python %s, want %s", v, want.Python)
	}
	status, body := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d%s", port, want.Path), 90*time.Second)
	if status != want.Status || !strings.Contains(body, want.Body) {
		t.Errorf("GET %s: %d %q, want %d %q", want.Path, status, body, want.Status, want.Body)
	}
	checkWritable(t, id, src)
	// pyship's own smoke test passes on the image it pushed, as podman ran it.
	// The build's cache holds the base already: only the image's own layers are pulled.
	smoke := pyship(t, cache, "test", "--json", "--from", pinned,
		"--path", want.Path, "--status", strconv.Itoa(want.Status), "--body", want.Body)
	var report sandbox.Report
	if err := json.Unmarshal([]byte(smoke.stdout), &report); err != nil || smoke.code != 0 || report.Verdict != "pass" {
		t.Errorf("pyship test --from: exit %d, verdict %q (%s: %s), %v\n%s", smoke.code, report.Verdict, report.Failure, report.Reason, err, smoke.stderr)
	}
	for pkg, version := range want.Versions {
		got := podman(t, "exec", id, "python", "-c", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))", pkg)
		if got != version {
			t.Errorf("%s %s is installed, the lock file says %s", pkg, got, version)
		}
	}
}

// writeProbe tries, as the container's user, what an app does (create files in /app and
// in HOME) and what an app that rewrites its code would (write to, rename or remove each
// file given), printing one "WHAT PATH: RESULT" line each.
const writeProbe = `
import os, sys
def attempt(what, path, f):
    try:
        f()
        print(what, path + ": ok")
    except OSError as e:
        print(what, path + ":", type(e).__name__)
for path in sys.argv[1:]:
    if not os.path.isfile(path):
        continue
    attempt("write", path, lambda: os.close(os.open(path, os.O_WRONLY | os.O_APPEND)))
    attempt("rename", path, lambda: os.rename(path, path + ".moved"))
    attempt("remove", path, lambda: os.remove(path))
for d in ("/app", "/app/.pyship-new", os.environ["HOME"]):
    probe = os.path.join(d, ".pyship-write-probe")
    attempt("create", probe, lambda: (os.makedirs(d, exist_ok=True), open(probe, "w").close()))
`

// checkWritable checks, in the running container id, that the app's user may create files
// in /app (and in a directory it makes there) and in HOME, and may not change, rename or
// remove any file of the repository src: the app cannot rewrite its own code. It may write
// (but not rename or remove) the SQLite databases the repository ships.
func checkWritable(t *testing.T, id, src string) {
	t.Helper()
	args := []string{"exec", id, "python", "-c", writeProbe}
	databases := map[string]bool{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		name := "/app/" + filepath.ToSlash(rel)
		args = append(args, name)
		data, _ := os.ReadFile(p)
		if bytes.HasPrefix(data, []byte("SQLite format 3\x00")) || len(data) == 0 && slices.Contains([]string{".sqlite3", ".sqlite", ".db", ".db3"}, filepath.Ext(p)) {
			databases[name] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := podman(t, args...)
	code := 0
	for _, line := range strings.Split(out, "\n") {
		what, result, _ := strings.Cut(line, ": ")
		want := "PermissionError"
		switch {
		case strings.HasPrefix(what, "create "):
			want = "ok"
		case strings.HasPrefix(what, "write ") && databases[strings.TrimPrefix(what, "write ")]:
			want = "ok"
		case strings.HasPrefix(what, "write "):
			code++
		}
		if result != want {
			t.Errorf("as the app's user, %s: %s, want %s", what, result, want)
		}
	}
	if code == 0 || !strings.Contains(out, "create /home/app/") {
		t.Errorf("the probe checked no code file, or not HOME:\n%s", out)
	}
}

// waitHTTP polls url until it answers or the deadline passes.
func waitHTTP(t *testing.T, url string, within time.Duration) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				return resp.StatusCode, string(body)
			}
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %s: %v", url, within, last)
	return 0, ""
}

// TestRebuilds checks reproducibility across wiped caches and that an application edit
// reuses the dependency layer without running pip.
func TestRebuilds(t *testing.T) {
	fixtures.Testbed(t)
	src := copyFixture(t, "flask-hello")
	out := t.TempDir()
	cacheA, cacheB := t.TempDir(), t.TempDir()
	env := func(cache string) []string { return []string{"PYSHIP_CACHE_DIR=" + cache} }

	first := pyship(t, env(cacheA), "build", src, "--oci-layout", out)
	a := builtDigest(t, first)
	if !strings.Contains(first.stderr, "dependencies installed") {
		t.Errorf("a cold build did not install dependencies:\n%s", first.stderr)
	}
	b := builtDigest(t, pyship(t, env(cacheB), "build", src, "--oci-layout", out))
	if a != b {
		t.Errorf("the same repository built with wiped caches gave %s and %s", a, b)
	}

	if err := os.WriteFile(filepath.Join(src, "app.py"), append(mustRead(t, filepath.Join(src, "app.py")), "# edited\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	edited := pyship(t, env(cacheA), "build", src, "--oci-layout", out)
	c := builtDigest(t, edited)
	if strings.Contains(edited.stderr, "dependencies installed") || !strings.Contains(edited.stderr, "dependencies cached") {
		t.Errorf("pip ran again after an app.py edit:\n%s", edited.stderr)
	}
	if c == a {
		t.Errorf("an edit to app.py kept digest %s", c)
	}
	before, after := layoutImage(t, out, a), layoutImage(t, out, c)
	lb, la := fixtures.LayerDigests(t, before), fixtures.LayerDigests(t, after)
	if len(lb) != len(la) || lb[len(lb)-3] != la[len(la)-3] || lb[len(lb)-1] == la[len(la)-1] {
		t.Errorf("layers before %v after %v: want the same dependency layer and a new app layer", lb, la)
	}
	if noop := builtDigest(t, pyship(t, env(cacheA), "build", src, "--oci-layout", out)); noop != c {
		t.Errorf("a no-op rebuild gave %s, want %s", noop, c)
	}

	ls, err := after.Layers()
	if err != nil {
		t.Fatal(err)
	}
	checkDependencyLayer(t, ls[len(ls)-3])
}

// checkDependencyLayer checks that the venv layer holds only the venv, and no installer,
// that its byte code is hash-based (PEP 552), and that nothing of the build sandbox leaked
// into it.
func checkDependencyLayer(t *testing.T, l v1.Layer) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	pycs := 0
	sources, compiled := map[string]bool{}, map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "opt/" && !strings.HasPrefix(h.Name, "opt/venv/") {
			t.Errorf("the dependency layer holds %s, outside the venv", h.Name)
		}
		if strings.Contains(h.Name, "/site-packages/pip/") || h.Name == "opt/venv/bin/pip" {
			t.Errorf("the venv holds an installer: %s", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("/run/pyship")) {
			t.Errorf("%s mentions the build sandbox's /run/pyship", h.Name)
		}
		if strings.HasSuffix(h.Name, ".py") && strings.Contains(h.Name, "/site-packages/") {
			sources[h.Name] = true
		}
		if strings.HasSuffix(h.Name, ".pyc") {
			pycs++
			compiled[sourceOf(h.Name)] = true
			// PEP 552: the flags word after the magic number is 0b11 for checked hashes.
			if len(data) < 16 || binary.LittleEndian.Uint32(data[4:8]) != 3 {
				t.Errorf("%s is not a checked-hash .pyc", h.Name)
			}
		}
	}
	if pycs == 0 {
		t.Errorf("the dependency layer has no byte code")
	}
	for _, f := range slices.Sorted(maps.Keys(sources)) {
		if !compiled[f] {
			t.Errorf("%s has no byte code", f)
		}
	}
}

// sourceOf is the module a .pyc in a __pycache__ directory was compiled from:
// d/__pycache__/m.cpython-313.pyc is d/m.py.
func sourceOf(pyc string) string {
	stem, _, _ := strings.Cut(path.Base(pyc), ".")
	return path.Join(path.Dir(path.Dir(pyc)), stem+".py")
}

// TestByteCode: the install compiles each module of the venv, and a module this Python
// cannot compile (Python 2 code left in a package) is a warning that names it, as pip's
// compile step makes it, while the package's other modules are compiled.
func TestByteCode(t *testing.T) {
	fixtures.Testbed(t)
	src := copyFixture(t, "stdlib-port")
	write(t, src, "pyproject.toml", `[project]
name = "oldlib"
version = "1.0"
requires-python = ">=3.9"

[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[tool.setuptools]
packages = ["oldlib", "oldlib.sub"]
`)
	write(t, src, "oldlib/__init__.py", "")
	write(t, src, "oldlib/sub/__init__.py", "VALUE = 1\n")
	write(t, src, "oldlib/legacy.py", "print \"python 2\"\n")
	out := t.TempDir()
	r := pyship(t, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, "build", src, "--oci-layout", out)
	img := layoutImage(t, out, builtDigest(t, r))
	if !strings.Contains(r.stderr, "not valid Python for this version") || !strings.Contains(r.stderr, "oldlib/legacy.py") {
		t.Errorf("no warning naming oldlib/legacy.py:\n%s", r.stderr)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, ls[len(ls)-3])
	for _, want := range []string{"oldlib/__pycache__/__init__.cpython-", "oldlib/sub/__pycache__/__init__.cpython-"} {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "/site-packages/"+want) }) {
			t.Errorf("the dependency layer lacks %s", want)
		}
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "legacy.cpython") }) {
		t.Errorf("Python 2 code was compiled")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTarballLoads checks that --tarball writes what podman load takes, as the same image.
func TestTarballLoads(t *testing.T) {
	fixtures.Testbed(t)
	src := copyFixture(t, "flask-hello")
	file := filepath.Join(t.TempDir(), "image.tar")
	tag := "localhost/e2e-tarball:" + uniqueTag()
	r := pyship(t, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, "build", src, "--tarball", file, "--image", tag)
	builtDigest(t, r)
	podman(t, "load", "-i", file)
	t.Cleanup(func() { _ = exec.Command("podman", "rmi", "-f", tag).Run() })
	if u := podman(t, "image", "inspect", "--format", "{{.Config.User}} {{.Config.WorkingDir}}", tag); u != "65532:65532 /app" {
		t.Errorf("loaded image: user and workdir %q", u)
	}
}

// TestBadInput checks that each mistake fails in its phase, says what and where, gives a
// hint, and pushes nothing.
func TestBadInput(t *testing.T) {
	reg := fixtures.Testbed(t)
	noPython := t.TempDir()
	if err := os.WriteFile(filepath.Join(noPython, "README.md"), []byte("# not python\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badReq := copyFixture(t, "flask-hello")
	if err := os.WriteFile(filepath.Join(badReq, "requirements.txt"), []byte("Flask==3.1.3\npyship-no-such-package-e2e==1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := copyFixture(t, "flask-hello")
	badReqTag := reg + "/e2e/bad-requirements:" + uniqueTag()
	// broken makes a copy of flask-hello with files replaced.
	broken := func(files map[string]string) string {
		dir := copyFixture(t, "flask-hello")
		for name, content := range files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	noStart := t.TempDir()
	for name, content := range map[string]string{"requirements.txt": "Flask==3.1.3\n", "helpers.py": "def add(a, b):\n    return a + b\n"} {
		if err := os.WriteFile(filepath.Join(noStart, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	staleUV := copyFixture(t, "uv-lock")
	pyproject := filepath.Join(staleUV, "pyproject.toml")
	if err := os.WriteFile(pyproject, bytes.Replace(mustRead(t, pyproject), []byte(`"uvicorn>=0.34,<0.35",`), []byte(`"uvicorn>=0.34,<0.35", "httpx>=0.28",`), 1), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
		// unpushed, when set, is a tag that must not exist afterwards.
		unpushed string
	}{
		{name: "path does not exist", args: []string{"build", "/nonexistent/pyship-app"}, code: exitDetect,
			want: []string{`"/nonexistent/pyship-app" does not exist`, "hint:"}},
		{name: "no python", args: []string{"build", noPython}, code: exitDetect,
			want: []string{"no Python application found", "requirements.txt", "hint:"}},
		{name: "package not on PyPI", args: []string{"build", badReq, "--image", badReqTag, "--push"}, code: exitInstall,
			want: []string{"requirements.txt:2", "pyship-no-such-package-e2e", "hint:"}, unpushed: badReqTag},
		{name: "unreachable registry", args: []string{"build", good, "--image", "127.0.0.1:1/e2e/app:1", "--push"}, code: exitPublish,
			want: []string{"127.0.0.1:1", "hint:"}},
		{name: "no such base", args: []string{"build", good, "--base", reg + "/library/python:2.7-slim"}, code: exitBase,
			want: []string{"python:2.7-slim", "hint:"}},
		{name: "push without image", args: []string{"build", good, "--push"}, code: exitUsage,
			want: []string{"--push needs --image"}},
		{name: "malformed pyship.toml", args: []string{"build", broken(map[string]string{"pyship.toml": "python = \"3.13\"\n[smoke\npath = \"/\"\n"})}, code: exitDetect,
			want: []string{"pyship.toml:2", "column", "hint:"}},
		{name: "unknown config key", args: []string{"plan", broken(map[string]string{"pyship.toml": "prot = 8000\n"})}, code: exitDetect,
			want: []string{"pyship.toml:1", `unknown key "prot"`, `did you mean "port"`}},
		{name: "requirements syntax error", args: []string{"build", broken(map[string]string{"requirements.txt": "Flask==3.1.3\nclick>=>8\n"})}, code: exitDetect,
			want: []string{"requirements.txt:2", "not a valid requirement", "hint:"}},
		{name: "no start command", args: []string{"build", noStart}, code: exitDetect,
			want: []string{"no start command", "Procfile", "pyship.toml", "hint:"}},
		{name: "python without a base image", args: []string{"build", broken(map[string]string{"pyship.toml": "python = \"3.8\"\n"})}, code: exitDetect,
			want: []string{"pyship.toml:1", "Python 3.8 has no base image", "past its end of life", "move the app to Python 3.9 or newer (3.11, still maintained"}},
		{name: "lock out of date", args: []string{"build", staleUV}, code: exitDetect,
			want: []string{"uv.lock", "out of date with pyproject.toml", "httpx", "uv lock"}},
		{name: "two web processes", args: []string{"build", broken(map[string]string{"Procfile": "web: python app.py\nweb: gunicorn app:app\n"})}, code: exitDetect,
			want: []string{"Procfile:2", "second web process"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			r := pyship(t, []string{"PYSHIP_CACHE_DIR=" + cache}, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d", r.code, tc.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing on failure", r.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "dependencies installed") {
				t.Errorf("the build went on after the failure")
			}
			if tc.unpushed != "" {
				ref, err := name.ParseReference(tc.unpushed)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := remote.Head(ref); err == nil {
					t.Errorf("%s was pushed", tc.unpushed)
				}
			}
			// Nothing half-done is left in the cache: no install directories, no sandbox
			// mount points.
			_ = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
				if err == nil && (strings.HasPrefix(d.Name(), ".install-") || strings.HasPrefix(d.Name(), ".sandbox-") || strings.HasPrefix(d.Name(), ".layer-")) {
					t.Errorf("left over: %s", p)
				}
				return nil
			})
			if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mounts), cache) {
				t.Errorf("a mount under the cache is left on the host")
			}
		})
	}
}

// TestNoSandboxPrivileges runs pyship as an unprivileged user where user namespaces are
// not allowed: it must stop in its sandbox phase and say how to run it. The test makes such
// a place without touching the host: a user namespace of its own whose limit on nested user
// namespaces is 0, in which pyship runs as a mapped unprivileged user.
func TestNoSandboxPrivileges(t *testing.T) {
	reg := fixtures.Testbed(t)

	// Everything the unprivileged user needs must be readable (and the cache writable).
	dir, err := os.MkdirTemp("", "pyship-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := filepath.Join(dir, "app")
	if err := os.CopyFS(src, os.DirFS(filepath.Join("..", "..", "fixtures", "flask-hello"))); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pyship")
	if err := os.WriteFile(bin, mustRead(t, pyshipBin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chmod(p, 0o777)
	}); err != nil {
		t.Fatal(err)
	}

	script := `echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid=1000 --regid=1000 --clear-groups "$@"`
	cmd := exec.Command("/bin/sh", "-c", script, "sh", bin, "build", src)
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "PYSHIP_CACHE_DIR=" + filepath.Join(dir, "cache"), "PYSHIP_BASE_MIRROR=" + reg}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1000, HostID: 65534, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1000, HostID: 65534, Size: 1}},
		GidMappingsEnableSetgroups: true,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	t.Logf("stderr:\n%s", stderr.String())
	if code := cmd.ProcessState.ExitCode(); code != exitSandbox {
		t.Errorf("exit code %d, want %d", code, exitSandbox)
	}
	for _, want := range []string{"needs root, or unprivileged user namespaces", "sudo", "hint:"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not mention %q", want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
}

// TestResolveAsOfCommit builds a repository whose requirements pin nothing from a commit
// made in mid-2022: pyship picks the Python of that time (3.10) and pip resolves as the
// index was then, so the image has the Flask of that time, and the plan says why.
func TestResolveAsOfCommit(t *testing.T) {
	reg := fixtures.Testbed(t)
	fixtures.TestbedPython(t, "3.10")
	git, err := exec.LookPath("git")
	fixtures.Need(t, err == nil, "git is not installed: run fixtures/testbed/up")
	src := copyFixture(t, "unpinned-2022")
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "2022"}} {
		cmd := exec.Command(git, args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2022-06-01T00:00:00Z", "GIT_AUTHOR_DATE=2022-06-01T00:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	plan := pyship(t, nil, "plan", src)
	if plan.code != 0 || !strings.Contains(plan.stdout, "as the index had them before 2022-06-01T00:00:00Z") || !regexp.MustCompile(`(?m)^python +3\.10 +\.git`).MatchString(plan.stdout) {
		t.Errorf("plan does not resolve as of the commit:\n%s%s", plan.stdout, plan.stderr)
	}
	tag := reg + "/e2e/unpinned-2022:" + uniqueTag()
	built := pyship(t, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, "build", src, "--image", tag, "--push")
	d := builtDigest(t, built)
	smoke := pyship(t, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, "test", "--json", "--from", tag+"@"+d.String(), "--body", "flask 2.1.2, werkzeug 2.1.2")
	var report sandbox.Report
	if err := json.Unmarshal([]byte(smoke.stdout), &report); err != nil || report.Verdict != "pass" {
		t.Errorf("the image does not serve Flask 2.1.2: %v %+v\n%s", err, report, smoke.stderr)
	}
	// resolve = "latest" takes today's versions instead.
	if err := os.WriteFile(filepath.Join(src, "pyship.toml"), []byte("resolve = \"latest\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	latest := pyship(t, nil, "plan", src)
	if latest.code != 0 || strings.Contains(latest.stdout, "2022-06-01") || !strings.Contains(latest.stdout, "the newest the index has") {
		t.Errorf("resolve = latest still resolves as of the commit:\n%s%s", latest.stdout, latest.stderr)
	}
}
