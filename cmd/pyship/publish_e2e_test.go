//go:build linux && e2e

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
)

// uploadCounter is a proxy in front of the real test-bed registry that counts the blob
// bytes pushed through it.
type uploadCounter struct {
	mu      sync.Mutex
	bytes   int64
	uploads int
}

func (u *uploadCounter) reset() (int64, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, n := u.bytes, u.uploads
	u.bytes, u.uploads = 0, 0
	return b, n
}

func countingProxy(t *testing.T, registry string) (string, *uploadCounter) {
	t.Helper()
	target, err := url.Parse("http://" + registry)
	if err != nil {
		t.Fatal(err)
	}
	counter := &uploadCounter{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut) {
			body, _ := io.ReadAll(r.Body)
			counter.mu.Lock()
			counter.bytes += int64(len(body))
			if r.Method == http.MethodPut {
				counter.uploads++
			}
			counter.mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			r.ContentLength = int64(len(body))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), counter
}

// TestPublish pushes a smoke-tested image with extra tags, checks every tag, the printed
// digest and --image-refs, then pushes a changed app and counts what was uploaded.
func TestPublish(t *testing.T) {
	reg := fixtures.Testbed(t)
	proxy, counter := countingProxy(t, reg)
	src := copyFixture(t, "flask-hello")
	cache := t.TempDir()
	repo := proxy + "/e2e/publish-" + uniqueTag()
	refsFile := filepath.Join(t.TempDir(), "refs.txt")
	r := pyship(t, []string{"PYSHIP_CACHE_DIR=" + cache}, "publish", src, "--image", repo+":v1", "--tag", "stable", "--image-refs", refsFile)
	d := builtDigest(t, r)
	if want := repo + "@" + d.String() + "\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "smoke test passed") {
		t.Errorf("published without a passing smoke test:\n%s", r.stderr)
	}
	for _, tag := range []string{"v1", "stable"} {
		ref, err := name.ParseReference(repo + ":" + tag)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(ref)
		if err != nil || desc.Digest != d {
			t.Errorf("%s: %v, %v; want %s", ref, desc, err, d)
		}
	}
	refs, err := os.ReadFile(refsFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := repo + ":v1\n" + repo + ":stable\n" + repo + "@" + d.String() + "\n"; string(refs) != want {
		t.Errorf("--image-refs wrote %q, want %q", refs, want)
	}
	firstBytes, firstUploads := counter.reset()

	// A changed app: only the app layer, the config and the new image's evidence (its
	// bill of materials, provenance and smoke-test statement) are new.
	appPy := filepath.Join(src, "app.py")
	if err := os.WriteFile(appPy, append(mustRead(t, appPy), "# v2\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := builtDigest(t, pyship(t, []string{"PYSHIP_CACHE_DIR=" + cache}, "publish", src, "--image", repo+":v2"))
	secondBytes, secondUploads := counter.reset()
	if d2 == d {
		t.Fatalf("the changed app has the same digest")
	}
	if secondUploads != 5 || secondBytes*20 > firstBytes {
		t.Errorf("second publish uploaded %d blobs, %d bytes (first: %d blobs, %d bytes); want only the app layer, the config and three evidence documents", secondUploads, secondBytes, firstUploads, firstBytes)
	}
	t.Logf("first publish: %d blobs, %d bytes; second: %d blobs, %d bytes", firstUploads, firstBytes, secondUploads, secondBytes)
}

// TestPublishNothingOnFailedTest checks that an app failing its smoke test is not pushed.
func TestPublishNothingOnFailedTest(t *testing.T) {
	reg := fixtures.Testbed(t)
	repo := reg + "/e2e/publish-crash-" + uniqueTag()
	r := pyship(t, []string{"PYSHIP_CACHE_DIR=" + t.TempDir()}, "publish", copyFixture(t, "smoke-crash"), "--image", repo+":v1")
	if r.code != exitTestFailed || r.stdout != "" || !strings.Contains(r.stderr, "nothing was pushed") {
		t.Errorf("exit %d, stdout %q; want %d and no output", r.code, r.stdout, exitTestFailed)
	}
	ref, err := name.ParseReference(repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref); err == nil {
		t.Errorf("%s exists after a failed smoke test", ref)
	}
}

// TestPublishMountsTheBase pushes to the registry that holds the base image: the base's
// layers are mounted from its repository, not uploaded again.
func TestPublishMountsTheBase(t *testing.T) {
	reg := fixtures.Testbed(t)
	proxy, counter := countingProxy(t, reg)
	repo := proxy + "/e2e/mount-" + uniqueTag()
	env := []string{"PYSHIP_CACHE_DIR=" + t.TempDir(), "PYSHIP_BASE_MIRROR=" + proxy}
	builtDigest(t, pyship(t, env, "publish", copyFixture(t, "stdlib-port"), "--image", repo+":v1", "--skip-test"))
	bytes, uploads := counter.reset()
	// Uploaded: the dependency, user and application layers, and the config; the bill of
	// materials and the provenance, with the empty config they share. Not the base's 40+
	// MiB.
	if uploads != 7 || bytes > 20<<20 {
		t.Errorf("uploaded %d blobs, %d bytes; want 7 blobs and no base layer", uploads, bytes)
	}
	t.Logf("uploaded %d blobs, %d bytes", uploads, bytes)
}
