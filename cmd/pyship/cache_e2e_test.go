//go:build linux && e2e

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/layers"
)

// pyshipConcurrently runs the CLI from any goroutine: it reports a failure to start in the
// result instead of stopping the test.
func pyshipConcurrently(env []string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pyshipBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return result{}, err
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}, nil
}

// TestCacheSharedAndRepaired runs two builds of one repository at once on one empty cache,
// then damages the cache's index and its cached dependency layer: every build succeeds with
// the same digest, and the one after the damage says what it repaired.
func TestCacheSharedAndRepaired(t *testing.T) {
	fixtures.Testbed(t)
	src := copyFixture(t, "flask-hello")
	cache := filepath.Join(t.TempDir(), "cache")
	env := []string{"PYSHIP_CACHE_DIR=" + cache}

	var (
		wg      sync.WaitGroup
		results [2]result
		errs    [2]error
	)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = pyshipConcurrently(env, "build", src) })
	}
	wg.Wait()
	var digests [2]v1.Hash
	waited, cached := 0, 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("running pyship: %v", errs[i])
		}
		t.Logf("build %d at once: exit %d\n%s", i+1, r.code, r.stderr)
		digests[i] = builtDigest(t, r)
		if strings.Contains(r.stderr, "waiting for another pyship that is using the same cache") {
			waited++
		}
		if strings.Contains(r.stderr, "dependencies cached") {
			cached++
		}
	}
	if digests[0] != digests[1] {
		t.Fatalf("two builds at once gave %s and %s", digests[0], digests[1])
	}
	// The second waited for the first, and then had nothing to install.
	if waited == 0 || cached != 1 {
		t.Errorf("%d builds waited for the cache and %d found the dependencies cached, want at least 1 and 1", waited, cached)
	}
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the cache pyship created has mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	img := layoutImage(t, layers.LayoutDir(cache), digests[0])

	// Damage: a truncated index, and a flipped byte in the cached dependency layer.
	index := filepath.Join(layers.LayoutDir(cache), "index.json")
	if err := os.Truncate(index, 7); err != nil {
		t.Fatal(err)
	}
	keys, err := filepath.Glob(filepath.Join(cache, "layers", "deps-*.digest"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("cached dependency layers: %v (%v), want one", keys, err)
	}
	key, err := os.ReadFile(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	depsDigest, err := v1.NewHash(strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(fixtures.LayerDigests(t, img), depsDigest) {
		t.Fatalf("the cached dependency layer %s is not in the image", depsDigest)
	}
	deps := filepath.Join(cache, "layers", "sha256-"+depsDigest.Hex+".tar.gz")
	data, err := os.ReadFile(deps)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(deps, data, 0o600); err != nil {
		t.Fatal(err)
	}

	r := pyship(t, env, "build", src)
	if d := builtDigest(t, r); d != digests[0] {
		t.Errorf("after damage to the cache the build gave %s, before %s", d, digests[0])
	}
	for _, want := range []string{"[WARN]", index, deps, "dependencies installed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the build after the damage does not mention %q", want)
		}
	}
	layoutImage(t, layers.LayoutDir(cache), digests[0])

	t.Run("whiteout-named file", func(t *testing.T) {
		bad := copyFixture(t, "flask-hello")
		if err := os.WriteFile(filepath.Join(bad, ".wh.app.py"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := pyship(t, env, "build", bad)
		if r.code != exitBuild || r.stdout != "" {
			t.Errorf("exit code %d, stdout %q; want %d and nothing", r.code, r.stdout, exitBuild)
		}
		for _, want := range []string{`".wh.app.py"`, "whiteout", "hint:", "rename it", "exclude"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not mention %q", want)
			}
		}
	})

	t.Run("credential file", func(t *testing.T) {
		withKey := copyFixture(t, "flask-hello")
		if err := os.MkdirAll(filepath.Join(withKey, "deploy", ".aws"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(withKey, "deploy", ".aws", "credentials"), []byte("[default]\naws_secret_access_key = x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := pyship(t, env, "build", withKey)
		d := builtDigest(t, r)
		if again := builtDigest(t, pyship(t, env, "build", withKey)); again != d {
			t.Errorf("the same repository built twice gave %s and %s", d, again)
		}
		if !strings.Contains(r.stderr, "path=deploy/.aws/credentials") || !strings.Contains(r.stderr, "include = ['deploy/.aws/credentials']") {
			t.Errorf("no warning names the credential file and how to include it")
		}
		ls, err := layoutImage(t, layers.LayoutDir(cache), d).Layers()
		if err != nil {
			t.Fatal(err)
		}
		names := tarNames(t, ls[len(ls)-1])
		if !slices.Contains(names, "app/app.py") || slices.Contains(names, "app/deploy/.aws/credentials") {
			t.Errorf("the application layer holds %v: want app.py and not the credentials", names)
		}
	})
}

// tarNames lists the entries of a layer.
func tarNames(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// TestStepsKeepWhatTheyRead: after an edit to a file the build steps never looked at
// (collectstatic does not import the ASGI module), the steps' layer is reused without
// running them, and the image is the one a build with an empty cache makes. An edit to
// a file they read (a static file), or a new file in a directory they listed, runs them
// again.
func TestStepsKeepWhatTheyRead(t *testing.T) {
	fixtures.Testbed(t)
	src := copyFixture(t, "django-collectstatic")
	out := t.TempDir()
	env := []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}
	fresh := func() v1.Hash {
		t.Helper()
		return builtDigest(t, pyship(t, []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}, "build", src, "--oci-layout", out))
	}
	first := pyship(t, env, "build", src, "--oci-layout", out)
	if !strings.Contains(first.stderr, "build steps run") {
		t.Fatalf("the first build did not run the steps:\n%s", first.stderr)
	}
	asgi := filepath.Join(src, "mysite", "asgi.py")
	write(t, src, "mysite/asgi.py", string(mustRead(t, asgi))+"# edited\n")
	edited := pyship(t, env, "build", src, "--oci-layout", out)
	if !strings.Contains(edited.stderr, "build steps unchanged") || strings.Contains(edited.stderr, "build steps run") {
		t.Errorf("after an edit the steps never read, they ran again:\n%s", edited.stderr)
	}
	reused := builtDigest(t, edited)
	if want := fresh(); reused != want {
		t.Errorf("with the steps reused the image is %s; a build with an empty cache makes %s", reused, want)
	}
	// The reused layer is kept under the edited repository's key as well.
	if again := pyship(t, env, "build", src, "--oci-layout", out); !strings.Contains(again.stderr, "build steps cached") || strings.Contains(again.stderr, "build steps unchanged") {
		t.Errorf("a rebuild of the edited repository did not find the steps' layer under its own key:\n%s", again.stderr)
	}

	// Each change reaches the image through collectstatic's copy of the static files.
	last := reused
	for _, change := range []struct{ name, file, content string }{
		{"a static file edited", "mysite/static/css/site.css", "body { color: red; }\n"},
		{"a static file added", "mysite/static/css/more.css", "p { margin: 0; }\n"},
	} {
		write(t, src, change.file, change.content)
		r := pyship(t, env, "build", src, "--oci-layout", out)
		if !strings.Contains(r.stderr, "build steps run") {
			t.Errorf("%s: the steps did not run again:\n%s", change.name, r.stderr)
		}
		if d := builtDigest(t, r); d == last {
			t.Errorf("%s: the image did not change", change.name)
		} else {
			last = d
		}
	}
	if want := fresh(); last != want {
		t.Errorf("after the steps ran again the image is %s; a build with an empty cache makes %s", last, want)
	}
}
