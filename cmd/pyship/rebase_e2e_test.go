//go:build linux && e2e

package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/layers"
)

// rebaseMarker is the file the "updated" base adds.
const rebaseMarker = "etc/pyship-rebase-marker"

func pushTo(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testBase copies the test bed's base for Python minor to a repository of this test's
// own, so the test can move its tag.
func testBase(t *testing.T, reg, minor string) string {
	t.Helper()
	fixtures.TestbedPython(t, minor)
	ref := reg + "/e2e/rebase-base-" + uniqueTag() + ":" + minor
	pushTo(t, ref, remoteImage(t, reg+"/library/python:"+minor+"-slim"))
	return ref
}

// updatedBase is base with a layer more, as an update of it adds: files (a whiteout,
// .wh.NAME, is an empty file) in directories of mode 0755.
func updatedBase(t *testing.T, base v1.Image, files map[string]string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[p]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, MediaType: types.OCILayer, History: v1.History{CreatedBy: "update", Created: v1.Time{Time: time.Unix(0, 0)}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func manifestLayers(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

// hasFile reports whether img's file system holds p.
func hasFile(t *testing.T, img v1.Image, p string) bool {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == p {
			return true
		}
	}
}

func tagDigest(t *testing.T, ref string) (v1.Hash, error) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r)
	if err != nil {
		return v1.Hash{}, err
	}
	return desc.Digest, nil
}

// TestRebase builds and pushes an app on a base, updates the base under its tag, and
// rebases the image: the app's layers are kept, the new base's are under them, the smoke
// test passed before the push, the tags point at the new image, and it is the image a
// rebuild on the new base makes.
func TestRebase(t *testing.T) {
	reg := fixtures.Testbed(t)
	base := testBase(t, reg, "3.14")
	repo := reg + "/e2e/rebase-" + uniqueTag()
	src := copyFixture(t, "flask-hello")
	env := []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}
	d1 := builtDigest(t, pyship(t, env, "build", src, "--base", base, "--push", "--image", repo+":v1"))
	oldBase := remoteImage(t, base)
	oldImage := remoteImage(t, repo+"@"+d1.String())

	newBase := updatedBase(t, oldBase, map[string]string{rebaseMarker: "updated\n"})
	newBaseDigest := pushTo(t, base, newBase)

	start := time.Now()
	r := pyship(t, env, "rebase", repo+":v1", "--tag", "rebased")
	rebaseTook := time.Since(start)
	d2 := builtDigest(t, r)
	if want := repo + "@" + d2.String() + "\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if d2 == d1 {
		t.Fatal("the rebased image has the old digest")
	}
	if !strings.Contains(r.stderr, "smoke test passed") {
		t.Errorf("pushed without a passing smoke test:\n%s", r.stderr)
	}
	for _, tag := range []string{"v1", "rebased"} {
		if got, err := tagDigest(t, repo+":"+tag); err != nil || got != d2 {
			t.Errorf("%s:%s is %s (%v), want the rebased %s", repo, tag, got, err, d2)
		}
	}

	img := remoteImage(t, repo+"@"+d2.String())
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	baseLayers, oldLayers, newLayers := manifestLayers(t, newBase), manifestLayers(t, oldImage), manifestLayers(t, img)
	own := oldLayers[len(manifestLayers(t, oldBase)):]
	if !slices.Equal(newLayers[:len(baseLayers)], baseLayers) || !slices.Equal(newLayers[len(baseLayers):], own) {
		t.Errorf("layers %v; want the new base's %v, then the image's own %v", newLayers, baseLayers, own)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Labels[layers.BaseDigestLabel]; got != newBaseDigest.String() {
		t.Errorf("base digest label %q, want %s", got, newBaseDigest)
	}
	if !hasFile(t, img, rebaseMarker) {
		t.Errorf("the rebased image lacks the new base's /%s", rebaseMarker)
	}
	// Its bill of materials is its own: the base's packages are the new base's.
	if sbom := pyship(t, env, "sbom", repo+":v1"); sbom.code != 0 || !strings.Contains(sbom.stdout, `"VersionInfo": "`+d2.String()) && !strings.Contains(sbom.stdout, `"versionInfo": "`+d2.String()) {
		t.Errorf("pyship sbom %s:v1: exit %d; want a bill of materials for %s", repo, sbom.code, d2)
	}
	// And its provenance and smoke test's statement: pyship verify accepts it.
	if v := pyship(t, env, "verify", repo+":v1"); v.code != 0 {
		t.Errorf("pyship verify %s:v1: exit %d; want the rebased image's evidence", repo, v.code)
	}

	// The same rebase again gives the same image (pushing nothing); a rebuild of the app on
	// the new base gives it too.
	again := pyship(t, env, "rebase", repo+"@"+d1.String(), "--push=false")
	if d := builtDigest(t, again); d != d2 {
		t.Errorf("rebasing the same image again gave %s, first %s", d, d2)
	}
	dir := t.TempDir()
	if d := builtDigest(t, pyship(t, env, "rebase", repo+"@"+d1.String(), "--oci-layout", dir, "--skip-test")); d != d2 {
		t.Errorf("rebasing into an OCI layout gave %s, the push %s", d, d2)
	}
	layoutImage(t, dir, d2)
	start = time.Now()
	rebuilt := builtDigest(t, pyship(t, env, "publish", src, "--base", base, "--image", repo+":rebuilt"))
	rebuildTook := time.Since(start)
	if rebuilt != d2 {
		t.Errorf("a rebuild on the new base gave %s, the rebase %s", rebuilt, d2)
	}
	t.Logf("rebase (pull, checks, smoke test, push): %s; rebuild (build, smoke test, push) with a warm cache: %s", rebaseTook.Round(time.Millisecond), rebuildTook.Round(time.Millisecond))
}

// TestRebasePushesNothing rebases an image whose base did not move (nothing to do), then
// onto an update that breaks the app (the smoke test fails), then onto a base with
// another Python (refused, exit 54): no tag moves.
func TestRebasePushesNothing(t *testing.T) {
	reg := fixtures.Testbed(t)
	base := testBase(t, reg, "3.14")
	repo := reg + "/e2e/rebase-" + uniqueTag()
	env := []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}
	d1 := builtDigest(t, pyship(t, env, "build", copyFixture(t, "flask-hello"), "--base", base, "--push", "--image", repo+":v1"))

	t.Run("base unchanged", func(t *testing.T) {
		r := pyship(t, env, "rebase", repo+":v1", "--tag", "moved")
		if d := builtDigest(t, r); d != d1 || !strings.Contains(r.stderr, "nothing to do") || strings.Contains(r.stderr, "smoke test") {
			t.Errorf("digest %s, want the image's own %s and nothing done", d, d1)
		}
		if _, err := tagDigest(t, repo+":moved"); err == nil {
			t.Errorf("%s:moved exists: the rebase pushed when the base had not moved", repo)
		}
	})

	t.Run("an image index", func(t *testing.T) {
		idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: remoteImage(t, repo+":v1")})
		r, err := name.ParseReference(repo + ":multi")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(r, idx); err != nil {
			t.Fatal(err)
		}
		want, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		res := pyship(t, env, "rebase", repo+":multi")
		if res.code != exitRebase || !strings.Contains(res.stderr, "is an image index") {
			t.Errorf("exit %d; want %d and the index named", res.code, exitRebase)
		}
		if got, err := tagDigest(t, repo+":multi"); err != nil || got != want {
			t.Errorf("%s:multi is %s (%v), want the index %s", repo, got, err, want)
		}
	})

	t.Run("smoke test fails", func(t *testing.T) {
		// An update that loses the json module, which Flask imports.
		pushTo(t, base, updatedBase(t, remoteImage(t, base), map[string]string{"usr/lib/python3.14/.wh.json": ""}))
		r := pyship(t, env, "rebase", repo+":v1", "--tag", "moved")
		if r.code != exitTestFailed || r.stdout != "" || !strings.Contains(r.stderr, "nothing was pushed") {
			t.Errorf("exit %d, stdout %q; want %d, nothing on stdout, and nothing pushed", r.code, r.stdout, exitTestFailed)
		}
		for _, tag := range []string{"v1", "moved"} {
			if got, err := tagDigest(t, repo+":"+tag); tag == "moved" && err == nil || tag == "v1" && got != d1 {
				t.Errorf("%s:%s is %s (%v) after a failed smoke test; want v1 at %s and no moved", repo, tag, got, err, d1)
			}
		}
	})

	t.Run("another Python", func(t *testing.T) {
		fixtures.TestbedPython(t, "3.13")
		pushTo(t, base, remoteImage(t, reg+"/library/python:3.13-slim"))
		r := pyship(t, env, "rebase", repo+":v1")
		if r.code != exitRebase || r.stdout != "" || !strings.Contains(r.stderr, "the new base has Python 3.13, and the image's dependencies were installed for Python 3.14") {
			t.Errorf("exit %d, stdout %q; want %d, nothing on stdout, and the Python versions named", r.code, r.stdout, exitRebase)
		}
		if !strings.Contains(r.stderr, "hint: rebuild") {
			t.Errorf("no hint to rebuild:\n%s", r.stderr)
		}
		if got, err := tagDigest(t, repo+":v1"); err != nil || got != d1 {
			t.Errorf("%s:v1 is %s (%v) after a refused rebase, want %s", repo, got, err, d1)
		}
	})
}

// TestRebaseTagMovedMeanwhile has another push move REF's tag while the rebase runs (a
// proxy in front of the registry makes it just before the rebase reads the tag again):
// the rebase pushes nothing, and the other push stays.
func TestRebaseTagMovedMeanwhile(t *testing.T) {
	reg := fixtures.Testbed(t)
	base := testBase(t, reg, "3.14")
	repoPath := "e2e/rebase-" + uniqueTag()
	env := []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}
	builtDigest(t, pyship(t, env, "build", copyFixture(t, "flask-hello"), "--base", base, "--push", "--image", reg+"/"+repoPath+":v1"))
	pushTo(t, base, updatedBase(t, remoteImage(t, base), map[string]string{rebaseMarker: "updated\n"}))
	other := remoteImage(t, base)
	otherDigest, err := other.Digest()
	if err != nil {
		t.Fatal(err)
	}

	target, err := url.Parse("http://" + reg)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var (
		mu    sync.Mutex
		heads int
		moved error
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && r.URL.Path == "/v2/"+repoPath+"/manifests/v1" {
			mu.Lock()
			// The first HEAD is the rebase's look at REF; the second its look again.
			if heads++; heads == 2 {
				ref, _ := name.ParseReference(reg + "/" + repoPath + ":v1")
				moved = remote.Write(ref, other)
			}
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	via := strings.TrimPrefix(srv.URL, "http://") + "/" + repoPath

	r := pyship(t, env, "rebase", via+":v1", "--tag", "rebased")
	mu.Lock()
	defer mu.Unlock()
	if heads < 2 || moved != nil {
		t.Fatalf("the proxy saw %d HEADs of the tag and moved it with error %v; want the move before the second", heads, moved)
	}
	if r.code != exitPublish || r.stdout != "" || !strings.Contains(r.stderr, "while it was rebased") {
		t.Errorf("exit %d, stdout %q; want %d, nothing on stdout, and the move named", r.code, r.stdout, exitPublish)
	}
	if got, err := tagDigest(t, reg+"/"+repoPath+":v1"); err != nil || got != otherDigest {
		t.Errorf("v1 is %s (%v), want the other push's %s", got, err, otherDigest)
	}
	if _, err := tagDigest(t, reg+"/"+repoPath+":rebased"); err == nil {
		t.Errorf("the tag rebased exists: the rebase pushed after the tag moved")
	}
}
