package layers

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
