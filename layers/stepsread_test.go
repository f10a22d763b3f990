package layers

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"
)

func TestPathState(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "static", "css"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "static", "css", "a.css"), []byte("a"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "views.py"), []byte("v"), 0o644))
	must(os.Symlink("static", filepath.Join(dir, "link")))
	root, err := os.OpenRoot(dir)
	must(err)
	defer root.Close()
	state := func(rel string) string {
		t.Helper()
		s, err := pathState(root, rel)
		if err != nil {
			t.Fatalf("pathState(%q): %v", rel, err)
		}
		return s
	}

	for _, rel := range []string{"missing", "views.py/inside", "static/missing/deeper"} {
		if s := state(rel); s != "-" {
			t.Errorf("%s: state %q, want - (absent)", rel, s)
		}
	}
	if _, err := pathState(root, "link/css/a.css"); !errors.Is(err, errLinkMet) {
		t.Errorf("a path through a symbolic link: %v, want errLinkMet", err)
	}

	file, listing := state("static/css/a.css"), state("static/css")
	must(os.WriteFile(filepath.Join(dir, "static", "css", "a.css"), []byte("b"), 0o644))
	if state("static/css/a.css") == file {
		t.Error("a file's state stays the same when its content changes")
	}
	if state("static/css") != listing {
		t.Error("a directory's state changes with the content of a file in it")
	}
	changed := state("static/css/a.css")
	must(os.Chmod(filepath.Join(dir, "static", "css", "a.css"), 0o755))
	if state("static/css/a.css") == changed {
		t.Error("a file's state stays the same when its mode changes")
	}
	must(os.WriteFile(filepath.Join(dir, "static", "css", "new.css"), nil, 0o644))
	if state("static/css") == listing {
		t.Error("a directory's state stays the same when a file is added to it")
	}
}

func TestLinkInto(t *testing.T) {
	for _, tc := range []struct {
		name, link, target, want string
	}{
		{"a link elsewhere", "bin", "usr/bin", ""},
		{"a link to a file beside the app", "etc/conf", "/srv/app-data/conf", ""},
		{"a link to a process file", "etc/mtab", "../proc/self/mounts", ""},
		{"an absolute link into the app", "opt/site", "/srv/app/site", "/opt/site"},
		{"a relative link to the app", "opt/code", "../srv/app", "/opt/code"},
		{"a link to a directory above the app", "opt/srv", "/srv", "/opt/srv"},
		{"a link to the root", "opt/all", "../..", "/opt/all"},
		{"a link to a process's directory", "opt/cwd", "/proc/self/cwd", "/opt/cwd"},
		{"a link to a process", "opt/self", "/proc/self", "/opt/self"},
		{"a link to the descriptors", "opt/fd", "/dev/fd", "/opt/fd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := t.TempDir()
			if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, tc.link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.target, filepath.Join(tree, tc.link)); err != nil {
				t.Fatal(err)
			}
			got, err := linkInto(tree, "/srv/app")
			if err != nil || got != tc.want {
				t.Errorf("linkInto = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestTracedEntry: a registry cache entry for the steps' trace key is taken only when
// every path it names is in the application tree as it says; an entry naming nothing,
// naming a path outside the tree, or unreadable is refused.
func TestTracedEntry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/app")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app/static/site.css": "body {}\n"})
	l, err := writeLayerFile(t.TempDir(), "steps-a", DefaultEpoch, nil, func(w *normalisingWriter) error {
		return writeTree(w, src, treeOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	appTree := t.TempDir()
	writeFiles(t, appTree, map[string]string{"manage.py": "print(1)\n", "static/site.css": "body {}\n", "views.py": "x = 1\n"})
	root, err := os.OpenRoot(appTree)
	if err != nil {
		t.Fatal(err)
	}
	manage, err := pathState(root, "manage.py")
	root.Close()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{CacheRepo: &repo, Keychain: authn.DefaultKeychain, Logger: hclog.NewNullLogger()}
	platform := v1.Platform{OS: "linux", Architecture: "amd64"}
	for _, tc := range []struct {
		name, read string
		taken      bool
	}{
		{"every path as it was", `{"key":"steps-theirs","paths":{"manage.py":"` + manage + `","missing.py":"-"}}`, true},
		{"a path changed", `{"key":"steps-theirs","paths":{"manage.py":"f 644 1 00"}}`, false},
		{"a path now there", `{"key":"steps-theirs","paths":{"manage.py":"` + manage + `","views.py":"-"}}`, false},
		{"no path", `{"key":"steps-theirs","paths":{}}`, false},
		{"a path above the tree", `{"key":"steps-theirs","paths":{"../etc/passwd":"-"}}`, false},
		{"an absolute path", `{"key":"steps-theirs","paths":{"/etc/passwd":"-"}}`, false},
		{"not JSON", `paths`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traceKey := "stepsread-" + strings.ReplaceAll(tc.name, " ", "-")
			toRegistryCache(context.Background(), traceKey, "build steps' reads", l, nil, tc.read, platform, opts)
			e := tracedEntry(context.Background(), traceKey, "steps-ours", appTree, opts)
			if (e != nil) != tc.taken {
				t.Fatalf("taken %v, want %v", e != nil, tc.taken)
			}
			if e == nil {
				return
			}
			layersDir := t.TempDir()
			if got := e.pull(context.Background(), layersDir, below("/app"), false, opts); got == nil {
				t.Fatal("the entry's layer was not pulled")
			}
			if cached, err := cachedLayer(layersDir, "steps-ours", opts.Logger); err != nil || cached == nil {
				t.Errorf("the pulled layer is not kept under the build's own key: %v", err)
			}
			if l := unchangedSteps(layersDir, traceKey, appTree, opts.Logger); l == nil {
				t.Error("the trace is not kept locally for the next build")
			}
		})
	}
}
