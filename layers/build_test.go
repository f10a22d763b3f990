package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/plan"
)

// tarLayer makes an uncompressed-input layer from entries written in order.
func tarLayer(t *testing.T, entries []tar.Header, contents map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		data := contents[h.Name]
		h.Size = int64(len(data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pushBase puts a small base image in an in-memory registry and returns its reference.
func pushBase(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	l := tarLayer(t, []tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Typeflag: tar.TypeReg},
		{Name: "etc/group", Typeflag: tar.TypeReg},
		{Name: "usr/bin/python3", Typeflag: tar.TypeReg, Mode: 0o755},
	}, map[string]string{
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":       "root:x:0:\n",
		"usr/bin/python3": "#!/bin/false\n",
	})
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "PYTHON_VERSION=3.12.1"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/library/python:3.12-slim"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// recordingInstaller stands in for pip: it writes a venv-shaped directory whose content
// depends on the requirements, and counts its runs.
type recordingInstaller struct {
	runs  int
	steps []plan.InstallStep
}

func (r *recordingInstaller) Name() string { return "recording" }

func (r *recordingInstaller) Install(ctx context.Context, req InstallRequest) (string, error) {
	r.runs++
	r.steps = req.Steps
	venv := filepath.Join(req.Scratch, "venv")
	var reqs bytes.Buffer
	for _, f := range req.Requirements {
		data, err := os.ReadFile(filepath.Join(req.Source, f))
		if err != nil {
			return "", err
		}
		reqs.Write(data)
	}
	writeFilesErr := func() error {
		if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), []byte("home = /usr/bin\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(venv, "installed.txt"), reqs.Bytes(), 0o644); err != nil {
			return err
		}
		return os.Symlink("/usr/bin/python3", filepath.Join(venv, "bin", "python"))
	}
	return venv, writeFilesErr()
}

func testPlan(t *testing.T, baseRef string) *plan.Plan {
	t.Helper()
	p, err := plan.New(&detect.Result{
		Python: detect.Fact{Value: "3.12", Source: ".python-version:1"},
		Dependencies: detect.Dependencies{Source: "requirements.txt", Requirements: []string{"requirements.txt"},
			Files: []string{"base.txt", "requirements.txt"}},
		Start: detect.Start{Command: []string{"python", "app.py"}, Source: "app.py:9"},
		Port:  detect.Port{Number: 8080, Source: "default"},
	}, plan.Options{Base: baseRef, Source: "https://example.com/repo", Revision: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t *testing.T, p *plan.Plan, src, cache string, inst Installer) *Result {
	t.Helper()
	res, err := Build(context.Background(), p, Options{Source: src, CacheDir: cache, Installer: inst, Epoch: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(res.Image); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	return res
}

func imageDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildConfig(t *testing.T) {
	p := testPlan(t, pushBase(t))
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app.py": "print(1)\n", "requirements.txt": "-r base.txt\nflask\n", "base.txt": ""})
	inst := &recordingInstaller{}
	res := build(t, p, src, t.TempDir(), inst)
	if !reflect.DeepEqual(inst.steps, p.Dependencies.Steps) || len(inst.steps) < 3 {
		t.Errorf("the installer was given %q, the plan says %q", inst.steps, p.Dependencies.Steps)
	}

	mt, err := res.Image.MediaType()
	if err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s (%v), want OCI", mt, err)
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	for _, want := range []string{
		"PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV=/opt/venv",
		"PYTHONUNBUFFERED=1", "PORT=8080", "PYTHON_VERSION=3.12.1",
	} {
		if !slices.Contains(c.Env, want) {
			t.Errorf("env %v lacks %s", c.Env, want)
		}
	}
	if c.User != "65532:65532" || c.WorkingDir != "/app" || !slices.Equal(c.Cmd, []string{"python", "app.py"}) || c.Entrypoint != nil {
		t.Errorf("user %q workdir %q cmd %q entrypoint %q", c.User, c.WorkingDir, c.Cmd, c.Entrypoint)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if c.Labels["org.opencontainers.image.revision"] != "abc123" || c.Labels["org.opencontainers.image.source"] != "https://example.com/repo" ||
		c.Labels["org.opencontainers.image.base.digest"] != res.Base.DigestStr() {
		t.Errorf("labels %v", c.Labels)
	}
	if !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created %v", cf.Created)
	}
	for _, h := range cf.History {
		if !h.Created.Time.IsZero() && !h.Created.Time.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("history entry %q created %v", h.CreatedBy, h.Created)
		}
	}
	// The layers pyship adds carry the plan's history lines, in order.
	var added []string
	for _, h := range cf.History[len(cf.History)-3:] {
		added = append(added, h.CreatedBy)
	}
	if want := []string{p.History.Dependencies, p.History.User, p.History.App}; !slices.Equal(added, want) {
		t.Errorf("history %q, want the plan's %q", added, want)
	}
	ls, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 4 {
		t.Fatalf("%d layers, want base + dependencies + user + app", len(ls))
	}
	user := layerEntries(t, ls[2])
	if !strings.Contains(user["etc/passwd"], "root:x:0:0") || !strings.Contains(user["etc/passwd"], "app:x:65532:65532::/home/app:") {
		t.Errorf("/etc/passwd = %q", user["etc/passwd"])
	}
	// The plan's writable directories: HOME in the user layer, the app user's; /app in the
	// application layer, root's with the app's group and the sticky bit.
	for _, w := range []struct {
		layer    v1.Layer
		name     string
		uid, gid int
		mode     int64
	}{
		{ls[2], "home/app/", 65532, 65532, 0o755},
		{ls[2], "home/", 0, 0, 0o755},
		{ls[3], "app/", 0, 65532, 0o1775},
		{ls[3], "app/app.py", 0, 0, 0o644},
	} {
		h := layerHeaders(t, w.layer)[w.name]
		if h == nil || h.Uid != w.uid || h.Gid != w.gid || h.Mode != w.mode {
			t.Errorf("%s: %+v, want %d:%d %o", w.name, h, w.uid, w.gid, w.mode)
		}
	}
	if !slices.Contains(c.Env, "HOME=/home/app") {
		t.Errorf("env %v does not set HOME", c.Env)
	}
	deps := layerEntries(t, ls[1])
	if deps["opt/venv/bin/python"] != "->/usr/bin/python3" || deps["opt/venv/installed.txt"] != "-r base.txt\nflask\n" {
		t.Errorf("dependency layer: %v", deps)
	}
}

func TestBuildIsReproducibleAndCachesDependencies(t *testing.T) {
	p := testPlan(t, pushBase(t))
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app.py": "print(1)\n", "requirements.txt": "-r base.txt\nflask\n", "base.txt": "click\n"})

	inst := &recordingInstaller{}
	cache := t.TempDir()
	first := build(t, p, src, cache, inst)
	second := build(t, p, src, t.TempDir(), inst)
	if a, b := imageDigest(t, first.Image), imageDigest(t, second.Image); a != b {
		t.Errorf("same inputs, fresh caches: %s then %s", a, b)
	}
	if inst.runs != 2 || first.DependenciesCached || second.DependenciesCached {
		t.Fatalf("installer ran %d times, want once per fresh cache", inst.runs)
	}

	// An edit to the application reuses the dependency layer.
	writeFiles(t, src, map[string]string{"app.py": "print(2)\n"})
	edited := build(t, p, src, cache, inst)
	if inst.runs != 2 || !edited.DependenciesCached {
		t.Errorf("installer ran after an app.py edit (runs %d, cached %v)", inst.runs, edited.DependenciesCached)
	}
	before, after := fixtures.LayerDigests(t, first.Image), fixtures.LayerDigests(t, edited.Image)
	if before[1] != after[1] || before[3] == after[3] {
		t.Errorf("layers before %v, after %v: want the same dependency layer and a new app layer", before, after)
	}

	// An edit to an included requirements file does not.
	writeFiles(t, src, map[string]string{"base.txt": "click==8.1.0\n"})
	if res := build(t, p, src, cache, inst); res.DependenciesCached || inst.runs != 3 {
		t.Errorf("installer did not run after a requirements change (runs %d)", inst.runs)
	}
}

func TestBuildBaseErrors(t *testing.T) {
	base := pushBase(t)
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app.py": "", "requirements.txt": "", "base.txt": ""})
	for _, tc := range []struct {
		name, ref, want string
	}{
		{"missing tag", strings.Replace(base, "3.12-slim", "2.7-slim", 1), "no such image"},
		{"unreachable", "127.0.0.1:1/library/python:3.12-slim", "127.0.0.1:1/library/python:3.12-slim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), testPlan(t, tc.ref), Options{Source: src, CacheDir: t.TempDir(), Installer: &recordingInstaller{}})
			var be *BaseError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hint:") {
				t.Errorf("got %v, want a BaseError mentioning %q with a hint", err, tc.want)
			}
		})
	}
}

// extractLayer extracts l into a new directory and returns it.
func extractLayer(t *testing.T, l v1.Layer) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := t.TempDir()
	if err := extract(rc, root); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestExtractStaysInsideRoot(t *testing.T) {
	outside := t.TempDir()
	l := tarLayer(t, []tar.Header{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/lib/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "lib", Typeflag: tar.TypeSymlink, Linkname: "usr/lib"},
		{Name: "lib/libc.so", Typeflag: tar.TypeReg},
		{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: outside},
		{Name: "escape/pwned", Typeflag: tar.TypeReg},
		{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../" + outside},
		{Name: "up/pwned2", Typeflag: tar.TypeReg},
		{Name: "../../dotdot", Typeflag: tar.TypeReg},
	}, map[string]string{"lib/libc.so": "libc", "escape/pwned": "x", "up/pwned2": "x", "../../dotdot": "x"})
	root := extractLayer(t, l)
	if data, err := os.ReadFile(filepath.Join(root, "usr/lib/libc.so")); err != nil || string(data) != "libc" {
		t.Errorf("file through an in-image link: %q, %v", data, err)
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("extraction wrote outside the root: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(root)), "dotdot")); err == nil {
		t.Errorf("extraction followed ../ out of the root")
	}
}

// TestExtractFollowsAReplacedDirectory: a directory that a later entry replaces with a
// link, under its own name or another, is not remembered: what comes below it afterwards
// goes where the link leads, inside the root, and a link out of the root is still refused;
// a directory that replaces a link takes what follows.
func TestExtractFollowsAReplacedDirectory(t *testing.T) {
	outside := t.TempDir()
	l := tarLayer(t, []tar.Header{
		{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/b/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/b/first", Typeflag: tar.TypeReg},
		{Name: "x/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "x"},
		{Name: "a/b/second", Typeflag: tar.TypeReg},
		{Name: "c/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "c/d/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "c/d/one", Typeflag: tar.TypeReg},
		{Name: "c", Typeflag: tar.TypeSymlink, Linkname: outside},
		{Name: "c/d/two", Typeflag: tar.TypeReg},
		// The same directory by two names: replaced under one, written under the other.
		{Name: "e/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "alias", Typeflag: tar.TypeSymlink, Linkname: "/e"},
		{Name: "alias/f", Typeflag: tar.TypeReg},
		{Name: "e", Typeflag: tar.TypeSymlink, Linkname: outside},
		{Name: "alias/pwned", Typeflag: tar.TypeReg},
		// A directory that replaces a link.
		{Name: "g/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "h", Typeflag: tar.TypeSymlink, Linkname: "g"},
		{Name: "h/one", Typeflag: tar.TypeReg},
		{Name: "h/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "h/two", Typeflag: tar.TypeReg},
	}, map[string]string{"a/b/first": "1", "a/b/second": "2", "c/d/one": "1", "c/d/two": "2", "alias/f": "f", "alias/pwned": "x", "h/one": "1", "h/two": "2"})
	root := extractLayer(t, l)
	if data, err := os.ReadFile(filepath.Join(root, "x", "b", "second")); err != nil || string(data) != "2" {
		t.Errorf("x/b/second = %q (%v): the entry did not follow the link that replaced a/", data, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("extraction wrote outside the root: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root, "g", "two")); err == nil {
		t.Errorf("h/two went through the link that the directory h/ replaced")
	}
	if data, err := os.ReadFile(filepath.Join(root, "h", "two")); err != nil || string(data) != "2" {
		t.Errorf("h/two = %q (%v), want it in the directory h", data, err)
	}
}

func TestFailedRequirement(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"requirements.txt": "# deps\n-r more.txt\nflask==3.1\n",
		"more.txt":         "click\n\nNo_Such.Pkg[extra]>=1 ; python_version > '3'\n",
	})
	out := "ERROR: Could not find a version...\nERROR: No matching distribution found for no-such-pkg>=1\n"
	if got := failedRequirement(src, []string{"more.txt", "requirements.txt"}, out); got != "more.txt:3" {
		t.Errorf("got %q, want more.txt:3", got)
	}
	if got := failedRequirement(src, []string{"more.txt", "requirements.txt"}, "ERROR: something else\n"); got != "" {
		t.Errorf("got %q for unrelated output", got)
	}
}

func TestProjectInstallFollowsSource(t *testing.T) {
	p := testPlan(t, pushBase(t))
	p.Dependencies.Requirements, p.Dependencies.Files, p.Dependencies.Project = nil, []string{"pyproject.toml"}, true
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"pyproject.toml": "[project]\nname = 'x'\n", "x/__init__.py": "A = 1\n", "README.md": "x"})
	inst := &recordingInstaller{}
	cache := t.TempDir()
	build(t, p, src, cache, inst)
	build(t, p, src, cache, inst)
	if inst.runs != 1 {
		t.Fatalf("installer ran %d times for the same source, want 1", inst.runs)
	}
	// The project's code is installed into the venv, so a code change reinstalls it.
	writeFiles(t, src, map[string]string{"x/__init__.py": "A = 2\n"})
	build(t, p, src, cache, inst)
	if inst.runs != 2 {
		t.Errorf("installer ran %d times after a code change, want 2", inst.runs)
	}
	// An ignored file does not.
	writeFiles(t, src, map[string]string{".gitignore": "*.log\n"})
	build(t, p, src, cache, inst)
	writeFiles(t, src, map[string]string{"debug.log": "noise"})
	build(t, p, src, cache, inst)
	if inst.runs != 3 {
		t.Errorf("installer ran %d times, want 3 (once more for .gitignore, not for an ignored file)", inst.runs)
	}
}

func TestExtractKeepsModTimes(t *testing.T) {
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	l := tarLayer(t, []tar.Header{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "usr/mod.py", Typeflag: tar.TypeReg, ModTime: mtime},
	}, map[string]string{"usr/mod.py": "x = 1\n"})
	root := extractLayer(t, l)
	for _, p := range []string{"usr", "usr/mod.py"} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime %s, want %s (timestamp-based .pyc files depend on it)", p, st.ModTime(), mtime)
		}
	}
}

func TestExtractDropsPrivileges(t *testing.T) {
	l := tarLayer(t, []tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/rootshell", Typeflag: tar.TypeReg, Mode: 0o4755},
		{Name: "bin/groupshell", Typeflag: tar.TypeReg, Mode: 0o2755, Uid: 0, Gid: 42},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "home/app/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 65532, Gid: 65532},
		{Name: "dev/mem", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 1},
	}, map[string]string{"bin/rootshell": "#!/bin/sh\n", "bin/groupshell": "#!/bin/sh\n"})
	root := extractLayer(t, l)
	for _, f := range []string{"bin/rootshell", "bin/groupshell"} {
		st, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Errorf("%s was extracted with its set-id bits: %s", f, st.Mode())
		}
	}
	if st, err := os.Stat(filepath.Join(root, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp lost its sticky bit: %v, %v", st.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(root, "dev/mem")); err == nil {
		t.Errorf("a device node was extracted onto the host")
	}
}

func TestExtractNeverChangesTheHost(t *testing.T) {
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o750); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"b/.wh...", "b/.wh..", "b/.wh."} {
		root := t.TempDir()
		rc, err := tarLayer(t, []tar.Header{{Name: "b/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: h, Typeflag: tar.TypeReg}}, nil).Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		err = extract(rc, root)
		rc.Close()
		if err == nil || !strings.Contains(err.Error(), "names no file") {
			t.Errorf("whiteout %s: %v, want it refused", h, err)
		}
		if _, err := os.Stat(root); err != nil {
			t.Errorf("whiteout %s removed the root: %v", h, err)
		}
	}
	// A directory's mode is set at the end; by then "a" is a link to the host.
	l := tarLayer(t, []tar.Header{
		{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/x/", Typeflag: tar.TypeDir, Mode: 0o777},
		{Name: "a", Typeflag: tar.TypeSymlink, Linkname: outside},
	}, nil)
	// "a/x" is made inside the root; outside must keep its mode whatever "a" becomes.
	if err := os.Mkdir(filepath.Join(outside, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	extractLayer(t, l)
	for p, want := range map[string]os.FileMode{outside: 0o750, filepath.Join(outside, "x"): 0o700} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("extraction changed the host's %s to %s", p, st.Mode().Perm())
		}
	}
	if data, _ := os.ReadFile(keep); string(data) != "host" {
		t.Errorf("extraction changed %s", keep)
	}
}

func TestMergeEnvIsLiteral(t *testing.T) {
	got := mergeEnv([]string{"PATH=/usr/bin", "HOME=/root"}, []string{
		"PATH=/opt/venv/bin:${PATH}", "DB_PASSWORD=pa$$word", "DATA=$HOME/x", "COST=$5", "UNSET=${NOPE}-x",
	})
	want := []string{"PATH=/opt/venv/bin:/usr/bin", "HOME=/root", "DB_PASSWORD=pa$$word", "DATA=$HOME/x", "COST=$5", "UNSET=-x"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeEnv:\n got %q\nwant %q", got, want)
	}
}
