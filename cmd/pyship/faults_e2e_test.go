//go:build linux && e2e

package main

import (
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/pyship/pyship/fixtures"
)

// faultyProxy stands in front of the real test-bed registry and fails a share of the
// requests: 500 answers, connections reset mid-request, and slow answers.
func faultyProxy(t *testing.T, registry string, seed int64, share float64) (string, *faultCount) {
	t.Helper()
	target, err := url.Parse("http://" + registry)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	counts := &faultCount{}
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(seed))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		roll, kind := rng.Float64(), rng.Intn(3)
		mu.Unlock()
		if r.URL.Path == "/v2/" || roll >= share {
			proxy.ServeHTTP(w, r)
			return
		}
		counts.add(kind)
		switch kind {
		case 0:
			http.Error(w, "injected failure", http.StatusInternalServerError)
		case 1:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			http.Error(w, "injected failure", http.StatusBadGateway)
		default:
			time.Sleep(1500 * time.Millisecond)
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), counts
}

type faultCount struct {
	mu                   sync.Mutex
	errors, resets, slow int
}

func (f *faultCount) add(kind int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch kind {
	case 0:
		f.errors++
	case 1:
		f.resets++
	default:
		f.slow++
	}
}

// TestPublishThroughFaults publishes through a registry that fails a share of requests:
// each publish succeeds through retries or fails cleanly, and the tag never points at an
// image whose blobs are missing.
func TestPublishThroughFaults(t *testing.T) {
	reg := fixtures.Testbed(t)
	src := copyFixture(t, "stdlib-port")
	cache := t.TempDir()
	succeeded := 0
	for i, share := range []float64{0.25, 0.35, 0.6} {
		addr, counts := faultyProxy(t, reg, int64(i+1), share)
		repo := addr + "/e2e/faults-" + uniqueTag()
		res := pyship(t, []string{"PYSHIP_CACHE_DIR=" + cache}, "publish", src, "--image", repo+":v1", "--skip-test")
		t.Logf("share %.2f: exit %d; injected %d errors, %d resets, %d slow answers", share, res.code, counts.errors, counts.resets, counts.slow)
		// Check through the registry itself, with no faults.
		direct, err := name.ParseReference(reg + strings.TrimPrefix(repo, addr) + ":v1")
		if err != nil {
			t.Fatal(err)
		}
		switch res.code {
		case 0:
			succeeded++
			d := builtDigest(t, res)
			img, err := remote.Image(direct)
			if err != nil {
				t.Fatalf("share %.2f: published, but the tag is not there: %v", share, err)
			}
			if got, _ := img.Digest(); got != d {
				t.Errorf("share %.2f: the tag points at %s, pyship printed %s", share, got, d)
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("share %.2f: the tagged image is incomplete: %v", share, err)
			}
		case exitPublish:
			if res.stdout != "" || !strings.Contains(res.stderr, "hint:") {
				t.Errorf("share %.2f: failed without a clean message: stdout %q\n%s", share, res.stdout, res.stderr)
			}
			if img, err := remote.Image(direct); err == nil {
				if err := validate.Image(img); err != nil {
					t.Errorf("share %.2f: a failed publish left a tag on an incomplete image: %v", share, err)
				}
			}
		default:
			t.Errorf("share %.2f: exit %d, want 0 or %d\n%s", share, res.code, exitPublish, res.stderr)
		}
	}
	if succeeded == 0 {
		t.Errorf("no publish got through the retries")
	}
}
