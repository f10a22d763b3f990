//go:build linux && e2e

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pyship/pyship/fixtures"
)

// TestRegistryErrorPageIsBounded: a registry that refuses the push with a long error page
// full of terminal escapes: pyship prints a short, escaped excerpt, and so does the GitHub
// annotation.
func TestRegistryErrorPageIsBounded(t *testing.T) {
	reg := fixtures.Testbed(t)
	target, err := url.Parse("http://" + reg)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	page := strings.Repeat("\x1b[2J\x1b[31mrefused by policy\x1b[0m <br>\n", 1500) // ggcr reads up to 64 KiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, page)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	src := copyFixture(t, "stdlib-port")
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{name: "terminal"},
		{name: "GitHub Actions", env: []string{"GITHUB_ACTIONS=true", "GITHUB_SHA=", "GITHUB_REF_NAME="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startPyship(t, append(tc.env, "PYSHIP_CACHE_DIR="+t.TempDir()), "publish", src, "--skip-test", "--image", addr+"/e2e/refused:v1").wait(t, 2*time.Minute)
			if r.code != exitPublish {
				t.Errorf("exit %d, want %d", r.code, exitPublish)
			}
			if len(r.stderr) > 12<<10 {
				t.Errorf("stderr is %d bytes long", len(r.stderr))
			}
			if strings.Contains(r.stderr, "\x1b") {
				t.Errorf("stderr carries the registry's terminal escapes")
			}
			for _, want := range []string{addr, "refused by policy", "more bytes", "hint:"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q", want)
				}
			}
		})
	}
}
