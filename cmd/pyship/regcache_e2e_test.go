//go:build linux && e2e

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/layers"
)

// TestRegistryCache: two runners with their own empty caches share one registry cache.
// The first installs and stores the dependency and user layers under their keys; the
// second installs nothing and extracts nothing, pulls the layers once, and builds the same
// digest; a third smoke-tests the image from the registry cache alone.
func TestRegistryCache(t *testing.T) {
	reg := fixtures.Testbed(t)
	src := copyFixture(t, "flask-hello")
	repo := reg + "/e2e/cache-" + uniqueTag()
	out := t.TempDir()
	var cacheDir string
	runner := func() []string {
		cacheDir = filepath.Join(t.TempDir(), "cache")
		return []string{"PYSHIP_CACHE_DIR=" + cacheDir, "PYSHIP_CACHE_REPO=" + repo}
	}

	first := pyship(t, runner(), "build", src, "--oci-layout", out)
	installed := builtDigest(t, first)
	for _, want := range []string{"dependencies installed", "dependencies stored in the registry cache", "user stored in the registry cache"} {
		if !strings.Contains(first.stderr, want) {
			t.Errorf("the first runner's log does not say %q", want)
		}
	}

	second := pyship(t, runner(), "build", src, "--oci-layout", out)
	secondCache := cacheDir
	if d := builtDigest(t, second); d != installed {
		t.Errorf("with the registry cache the build gave %s; installing gave %s", d, installed)
	}
	if !strings.Contains(second.stderr, "dependencies from the registry cache") || strings.Contains(second.stderr, "dependencies installed") ||
		strings.Contains(second.stderr, "fetched uv") {
		t.Errorf("the second runner installed instead of using the registry cache:\n%s", second.stderr)
	}
	third := pyship(t, runner(), "test", src)
	if third.code != 0 || strings.Contains(third.stderr, "dependencies installed") {
		t.Errorf("a smoke test from the registry cache: exit %d\n%s", third.code, third.stderr)
	}

	// The entries: one layer each, the image's dependency layer and its user layer, under
	// a config of pyship's type.
	img := layoutImage(t, out, installed)
	digests := fixtures.LayerDigests(t, img)
	notExtracted(t, second.stderr, secondCache, digests, 3)
	want := map[string]string{"pyship-deps-": digests[len(digests)-3].String(), "pyship-user-": digests[len(digests)-2].String()}
	checkCacheEntries(t, repo, want)
}

// TestRegistryCacheSteps: the build steps' layer is shared too. A runner with an empty
// cache that finds every layer in the registry cache runs no step, installs nothing,
// extracts no base, and builds the digest the first runner built.
func TestRegistryCacheSteps(t *testing.T) {
	reg := fixtures.Testbed(t)
	src := copyFixture(t, "django-collectstatic")
	repo := reg + "/e2e/cache-" + uniqueTag()
	out := t.TempDir()
	var cacheDir string
	runner := func() []string {
		cacheDir = filepath.Join(t.TempDir(), "cache")
		return []string{"PYSHIP_CACHE_DIR=" + cacheDir, "PYSHIP_CACHE_REPO=" + repo}
	}
	first := pyship(t, runner(), "build", src, "--oci-layout", out)
	built := builtDigest(t, first)
	if !strings.Contains(first.stderr, "build steps run") || !strings.Contains(first.stderr, "build steps stored in the registry cache") {
		t.Errorf("the first runner did not run and store the build steps:\n%s", first.stderr)
	}
	second := pyship(t, runner(), "build", src, "--oci-layout", out)
	if d := builtDigest(t, second); d != built {
		t.Errorf("with the registry cache the build gave %s; running the steps gave %s", d, built)
	}
	for _, want := range []string{"build steps from the registry cache", "build steps cached", "dependencies from the registry cache"} {
		if !strings.Contains(second.stderr, want) {
			t.Errorf("the second runner's log does not say %q:\n%s", want, second.stderr)
		}
	}
	img := layoutImage(t, out, built)
	digests := fixtures.LayerDigests(t, img)
	notExtracted(t, second.stderr, cacheDir, digests, 4)

	checkCacheEntries(t, repo, map[string]string{
		"pyship-deps-":      digests[len(digests)-4].String(),
		"pyship-user-":      digests[len(digests)-3].String(),
		"pyship-steps-":     digests[len(digests)-1].String(),
		"pyship-stepsread-": digests[len(digests)-1].String(),
	})

	// The app edited: a third runner takes the dependencies from the registry cache,
	// extracting them as they arrive, and runs the steps over them; a runner with no
	// registry cache builds the same image.
	write(t, src, "manage.py", string(mustRead(t, filepath.Join(src, "manage.py")))+"# edited\n")
	third := pyship(t, runner(), "build", src, "--oci-layout", out)
	edited := builtDigest(t, third)
	if !strings.Contains(third.stderr, "dependencies from the registry cache") || !strings.Contains(third.stderr, "build steps run") {
		t.Errorf("the third runner did not take the dependencies from the registry cache and run the steps:\n%s", third.stderr)
	}
	plain := pyship(t, []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}, "build", src, "--oci-layout", out)
	if d := builtDigest(t, plain); d != edited {
		t.Errorf("the edited app built with the registry cache is %s, without it %s", edited, d)
	}

	// An edit the steps never read (collectstatic does not import the ASGI module): a
	// fourth runner finds their layer by what they read, runs nothing and extracts no
	// base, and builds what a runner without the registry cache builds.
	write(t, src, "mysite/asgi.py", string(mustRead(t, filepath.Join(src, "mysite", "asgi.py")))+"# edited\n")
	fourth := pyship(t, runner(), "build", src, "--oci-layout", out)
	unread := builtDigest(t, fourth)
	if !strings.Contains(fourth.stderr, "build steps, by what they read, from the registry cache") || strings.Contains(fourth.stderr, "build steps run") {
		t.Errorf("the fourth runner did not take the build steps' layer from the registry cache by what they read:\n%s", fourth.stderr)
	}
	notExtracted(t, fourth.stderr, cacheDir, fixtures.LayerDigests(t, layoutImage(t, out, unread)), 4)
	plain = pyship(t, []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}, "build", src, "--oci-layout", out)
	if d := builtDigest(t, plain); d != unread {
		t.Errorf("with the steps' layer found by what they read the image is %s; without the registry cache %s", unread, d)
	}
}

// notExtracted checks that a build (its log, its cache directory) only downloaded the
// base, whose layers come first in the image's digests, up to the layers pyship added
// (added of them).
func notExtracted(t *testing.T, log, cacheDir string, digests []v1.Hash, added int) {
	t.Helper()
	if !strings.Contains(log, "extracted=false") {
		t.Errorf("the build does not say it left the base unextracted:\n%s", log)
	}
	for _, d := range digests[:len(digests)-added] {
		for _, dir := range []string{"trees.2", "accounts.1"} {
			if _, err := os.Stat(filepath.Join(cacheDir, dir, d.Hex)); err == nil {
				t.Errorf("the build made %s/%s: it read the base's layer, with every layer above it cached", dir, d.Hex)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(cacheDir, "rootfs.2")); len(entries) > 0 {
		t.Errorf("the build made the base's file system, with every layer above it cached")
	}
}

// checkCacheEntries checks that the cache repository holds one entry per prefix in want,
// each one layer (of that digest) under a config of pyship's type.
func checkCacheEntries(t *testing.T, repo string, want map[string]string) {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil || len(tags) != len(want) {
		t.Fatalf("the cache repository holds tags %v (%v), want one per prefix of %v", tags, err, want)
	}
	for _, tag := range tags {
		prefix := tag[:strings.LastIndex(tag, "-")+1]
		digest, ok := want[prefix]
		if !ok {
			t.Errorf("the cache repository holds %s, an entry of no expected kind", tag)
			continue
		}
		entry, err := remote.Image(r.Tag(tag))
		if err != nil {
			t.Fatal(err)
		}
		m, err := entry.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != layers.CacheConfigType || len(m.Layers) != 1 || m.Layers[0].Digest.String() != digest {
			t.Errorf("the cache entry %s is %+v; want one layer, the image's %s", tag, m, digest)
		}
	}
}
