//go:build linux && e2e

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/layers"
)

// TestRegistryCache: two runners with their own empty caches share one registry cache.
// The first installs and stores the dependency layer under its key; the second installs
// nothing, pulls the layer once, and builds the same digest; a third smoke-tests the image
// from the registry cache alone.
func TestRegistryCache(t *testing.T) {
	reg := fixtures.Testbed(t)
	src := copyFixture(t, "flask-hello")
	repo := reg + "/e2e/cache-" + uniqueTag()
	out := t.TempDir()
	runner := func() []string {
		return []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache"), "PYSHIP_CACHE_REPO=" + repo}
	}

	first := pyship(t, runner(), "build", src, "--oci-layout", out)
	installed := builtDigest(t, first)
	for _, want := range []string{"dependencies installed", "dependencies stored in the registry cache"} {
		if !strings.Contains(first.stderr, want) {
			t.Errorf("the first runner's log does not say %q", want)
		}
	}

	second := pyship(t, runner(), "build", src, "--oci-layout", out)
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

	// The entry: one layer, the image's dependency layer, under a config of pyship's type.
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil || len(tags) != 1 || !strings.HasPrefix(tags[0], "pyship-deps-") {
		t.Fatalf("the cache repository holds tags %v (%v), want one pyship-deps-KEY", tags, err)
	}
	entry, err := remote.Image(r.Tag(tags[0]))
	if err != nil {
		t.Fatal(err)
	}
	m, err := entry.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	img := layoutImage(t, out, installed)
	digests := fixtures.LayerDigests(t, img)
	if m.Config.MediaType != layers.CacheConfigType || len(m.Layers) != 1 || m.Layers[0].Digest != digests[len(digests)-3] {
		t.Errorf("the cache entry is %+v; want one layer, the image's dependency layer %s", m, digests[len(digests)-3])
	}
}
