package detect

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"
)

// hostSecret is what a file outside the repository holds; no error may show it.
const hostSecret = "pyship-SENTINEL token=ghp_0123456789abcdef"

// repoOpeners are the ways a test repository on disk is handed to Detect: the root-confined
// file system pyship uses, and os.DirFS, which tests and fixtures use.
var repoOpeners = []struct {
	name string
	open func(t *testing.T, dir string) fs.FS
}{
	{"root", func(t *testing.T, dir string) fs.FS {
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { root.Close() })
		return RootFS(root)
	}},
	{"dirfs", func(t *testing.T, dir string) fs.FS { return os.DirFS(dir) }},
}

// writeRepo writes files into a new temporary directory and returns it.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// detectWithin runs Detect and fails the test if it does not return within a deadline: a
// FIFO or a device must never make detection wait.
func detectWithin(t *testing.T, fsys fs.FS) (*Result, error) {
	t.Helper()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Detect(context.Background(), fsys, Options{})
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-time.After(10 * time.Second):
		t.Fatal("Detect did not return within 10s")
		return nil, nil
	}
}

// hostFile writes hostSecret into a file outside any repository and returns its path.
func hostFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(p, []byte(hostSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// environExcerpt is the start of this process's /proc/self/environ, which no error may show.
func environExcerpt(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/environ")
	if err != nil || len(data) == 0 {
		t.Skip("no /proc/self/environ to read:", err)
	}
	first, _, _ := strings.Cut(string(data), "\x00")
	return first
}

func TestDetectReadsOnlyRepositoryFiles(t *testing.T) {
	t.Setenv("PYSHIP_TEST_SENTINEL", "environ-SENTINEL-7d1c")
	environ := environExcerpt(t)
	app := map[string]string{"app.py": seedApp}
	with := func(extra map[string]string) map[string]string { return union(app, extra) }
	for _, tc := range []struct {
		name  string
		files map[string]string
		// setup adds links, FIFOs and sockets to the repository in dir.
		setup func(t *testing.T, dir string)
		want  []string
	}{
		{
			name:  "requirements.txt links to /etc/shadow",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, "/etc/shadow", filepath.Join(dir, "requirements.txt")) },
			want:  []string{"requirements.txt", `"/etc/shadow"`, "outside the repository", "hint:"},
		},
		{
			name:  "requirements.txt links to a host file",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "requirements.txt")) },
			want:  []string{"requirements.txt", "symbolic link", "outside the repository"},
		},
		{
			name:  "requirements.txt links up out of the repository",
			files: app,
			setup: func(t *testing.T, dir string) {
				host := hostFile(t)
				rel, err := filepath.Rel(dir, host)
				if err != nil {
					t.Fatal(err)
				}
				symlink(t, rel, filepath.Join(dir, "requirements.txt"))
			},
			want: []string{"requirements.txt", "outside the repository"},
		},
		{
			name:  "included requirements file links to a host file",
			files: with(map[string]string{"requirements.txt": "flask\n-r other.txt\n"}),
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "other.txt")) },
			want:  []string{"requirements.txt:2", "other.txt", "outside the repository"},
		},
		{
			name:  "included file reached through a directory link",
			files: with(map[string]string{"requirements.txt": "-r reqs/base.txt\n"}),
			setup: func(t *testing.T, dir string) { symlink(t, filepath.Dir(hostFile(t)), filepath.Join(dir, "reqs")) },
			want:  []string{"requirements.txt:1", "reqs/base.txt", "reqs", "outside the repository"},
		},
		{
			name:  ".python-version links to /proc/self/environ",
			files: app,
			setup: func(t *testing.T, dir string) {
				symlink(t, "/proc/self/environ", filepath.Join(dir, ".python-version"))
			},
			want: []string{".python-version", `"/proc/self/environ"`, "outside the repository"},
		},
		{
			name:  "runtime.txt links to a host file",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "runtime.txt")) },
			want:  []string{"runtime.txt", "outside the repository"},
		},
		{
			name:  "pyship.toml links to a host file",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "pyship.toml")) },
			want:  []string{"pyship.toml", "outside the repository"},
		},
		{
			name:  "pyproject.toml links to a host file",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "pyproject.toml")) },
			want:  []string{"pyproject.toml", "outside the repository"},
		},
		{
			name:  "Procfile links to a host file",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "Procfile")) },
			want:  []string{"Procfile", "outside the repository"},
		},
		{
			name:  "uv.lock links to a host file",
			files: with(map[string]string{"pyproject.toml": "[project]\nname = \"a\"\nversion = \"1\"\n"}),
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "uv.lock")) },
			want:  []string{"uv.lock", "outside the repository"},
		},
		{
			name:  "Pipfile.lock links to a host file",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, hostFile(t), filepath.Join(dir, "Pipfile.lock")) },
			want:  []string{"Pipfile.lock", "outside the repository"},
		},
		{
			name:  "requirements.txt links to /dev/zero",
			files: app,
			setup: func(t *testing.T, dir string) { symlink(t, "/dev/zero", filepath.Join(dir, "requirements.txt")) },
			want:  []string{"requirements.txt", `"/dev/zero"`, "outside the repository"},
		},
		{
			name:  "src links out of the repository",
			files: map[string]string{"requirements.txt": "flask\n"},
			setup: func(t *testing.T, dir string) {
				host := filepath.Dir(hostFile(t))
				if err := os.MkdirAll(filepath.Join(host, "web"), 0o755); err != nil {
					t.Fatal(err)
				}
				for _, f := range []string{"web/__init__.py", "web/app.py"} {
					if err := os.WriteFile(filepath.Join(host, f), []byte("from flask import Flask\napp = Flask(__name__)\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				symlink(t, host, filepath.Join(dir, "src"))
			},
			want: []string{"src", "outside the repository"},
		},
		{
			name:  "requirements.txt is a FIFO",
			files: app,
			setup: func(t *testing.T, dir string) {
				if err := unix.Mkfifo(filepath.Join(dir, "requirements.txt"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"requirements.txt", "named pipe", "not a regular file"},
		},
		{
			name:  ".python-version is a FIFO",
			files: app,
			setup: func(t *testing.T, dir string) {
				if err := unix.Mkfifo(filepath.Join(dir, ".python-version"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{".python-version", "named pipe"},
		},
		{
			name:  "requirements.txt links to a FIFO inside the repository",
			files: app,
			setup: func(t *testing.T, dir string) {
				if err := unix.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, "pipe", filepath.Join(dir, "requirements.txt"))
			},
			want: []string{"requirements.txt", "named pipe"},
		},
		{
			name:  "requirements.txt is a socket",
			files: app,
			setup: func(t *testing.T, dir string) {
				l, err := net.Listen("unix", filepath.Join(dir, "requirements.txt"))
				if err != nil {
					t.Skip("cannot make a socket here:", err)
				}
				t.Cleanup(func() { l.Close() })
			},
			want: []string{"requirements.txt", "socket"},
		},
		{
			name:  "requirements.txt is a directory",
			files: with(map[string]string{"requirements.txt/base.txt": "flask\n"}),
			want:  []string{"requirements.txt", "directory"},
		},
		{
			name:  "requirements.txt is a dangling link",
			files: app,
			setup: func(t *testing.T, dir string) {
				symlink(t, "requirements/prod.txt", filepath.Join(dir, "requirements.txt"))
			},
			want: []string{"requirements.txt", `"requirements/prod.txt"`, "does not exist"},
		},
		{
			name:  "requirements.txt is a link loop",
			files: app,
			setup: func(t *testing.T, dir string) {
				symlink(t, "b.txt", filepath.Join(dir, "requirements.txt"))
				symlink(t, "requirements.txt", filepath.Join(dir, "b.txt"))
			},
			want: []string{"requirements.txt", "links"},
		},
		{
			name:  "requirements.txt larger than the cap",
			files: with(map[string]string{"requirements.txt": "flask\n" + strings.Repeat("# padding\n", 600_000)}),
			want:  []string{"requirements.txt", "larger than 4 MiB"},
		},
	} {
		for _, opener := range repoOpeners {
			t.Run(tc.name+"/"+opener.name, func(t *testing.T) {
				dir := writeRepo(t, tc.files)
				if tc.setup != nil {
					tc.setup(t, dir)
				}
				_, err := detectWithin(t, opener.open(t, dir))
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("got %v, want a *detect.Error", err)
				}
				msg := err.Error()
				t.Log(msg)
				for _, want := range tc.want {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not mention %q", msg, want)
					}
				}
				for _, secret := range []string{"SENTINEL", environ, "root:"} {
					if strings.Contains(msg, secret) {
						t.Errorf("error %q shows %q, read from outside the repository", msg, secret)
					}
				}
				if len(msg) > 600 {
					t.Errorf("error is %d bytes long: %q", len(msg), msg)
				}
			})
		}
	}
}

// Links that stay inside the repository are followed, as pip follows them.
func TestDetectFollowsLinksInsideRepository(t *testing.T) {
	for _, opener := range repoOpeners {
		t.Run(opener.name, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{
				"app.py":                 seedApp,
				"deploy/requirements.in": "flask\n-r shared/base.txt\n",
				"real-shared/base.txt":   "gunicorn\n",
			})
			symlink(t, "deploy/requirements.in", filepath.Join(dir, "requirements.txt"))
			symlink(t, "real-shared", filepath.Join(dir, "shared"))
			res, err := detectWithin(t, opener.open(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"flask", "gunicorn"}; !slices.Equal(res.Dependencies.Names, want) {
				t.Errorf("names %v, want %v", res.Dependencies.Names, want)
			}
		})
	}
}

// Lock files of several MiB are real (uv.lock, poetry.lock of large projects): they fit.
func TestDetectReadsLargeLockFiles(t *testing.T) {
	fsys := fixtureFS(t, "uv-lock", nil)
	padded := string(fsys["uv.lock"].Data) + strings.Repeat("# "+strings.Repeat("x", 98)+"\n", 80_000)
	dir := writeRepo(t, map[string]string{"uv.lock": padded, "pyproject.toml": string(fsys["pyproject.toml"].Data), "notes/__init__.py": "", "notes/main.py": "from fastapi import FastAPI\napp = FastAPI()\n"})
	for _, opener := range repoOpeners {
		t.Run(opener.name, func(t *testing.T) {
			res, err := detectWithin(t, opener.open(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			if res.Dependencies.Lock == nil || len(res.Dependencies.Lock.Packages) == 0 {
				t.Errorf("lock %+v", res.Dependencies.Lock)
			}
		})
	}
}

// RootFS on its own, without Detect's checks on top: a FIFO opens without waiting for a
// writer, and a link out of the root is refused.
func TestRootFS(t *testing.T) {
	dir := writeRepo(t, map[string]string{"inside.txt": "ok\n"})
	if err := unix.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, hostFile(t), filepath.Join(dir, "out"))
	symlink(t, "inside.txt", filepath.Join(dir, "in"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fsys := RootFS(root)

	opened := make(chan error, 1)
	go func() {
		f, err := fsys.Open("pipe")
		if err == nil {
			f.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Errorf("opening a FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO blocks")
	}
	if data, err := fs.ReadFile(fsys, "out"); err == nil {
		t.Errorf("read %q through a link out of the root", data)
	}
	if data, err := fs.ReadFile(fsys, "in"); err != nil || string(data) != "ok\n" {
		t.Errorf("link inside the root: %q, %v", data, err)
	}
	if target, err := fsys.(fs.ReadLinkFS).ReadLink("out"); err != nil || !strings.HasSuffix(target, "secret.txt") {
		t.Errorf("ReadLink: %q, %v", target, err)
	}
	if _, err := fsys.Open("../x"); err == nil {
		t.Error("opened a path with ..")
	}
}

// What an error quotes of a file is short and escaped: a long line, control characters
// that would rewrite a terminal or a CI log, and credentials in a URL stay out of it.
func TestErrorsQuoteShortExcerpts(t *testing.T) {
	long := "\x1b[2J\x1b]0;owned\x07" + strings.Repeat("x", 10_000) + "-SENTINEL"
	for _, tc := range []struct {
		name    string
		fixture string
		files   map[string]string
		want    []string
	}{
		{name: "requirement line", files: map[string]string{"requirements.txt": "flask\n" + long + "==1\n"}, want: []string{"requirements.txt:2", `"\x1b[2J\x1b]0;owned\a`, "..."}},
		{name: "python version", files: map[string]string{".python-version": long + "\n"}, want: []string{".python-version:1", `\x1b`}},
		{name: "config value", files: map[string]string{"pyship.toml": "user = \"" + strings.Repeat("a", 10_000) + "-SENTINEL\"\n"}, want: []string{"pyship.toml:1", "not numeric"}},
		{name: "unknown option", files: map[string]string{"requirements.txt": "--" + strings.Repeat("o", 10_000) + "-SENTINEL\n"}, want: []string{"requirements.txt:1", "unknown option"}},
		{name: "include name", files: map[string]string{"requirements.txt": "-r " + strings.Repeat("d", 10_000) + "-SENTINEL.txt\n"}, want: []string{"requirements.txt:1", "includes"}},
		{name: "vcs url with a token", fixture: "pipenv-lock", files: map[string]string{"Pipfile.lock": `{"default": {"mylib": {"git": "https://x-access-token:ghs_SENTINEL@github.com/o/mylib.git"}}}`, "Pipfile": "[packages]\n"},
			want: []string{"Pipfile.lock", "https://github.com/o/mylib.git"}},
		{name: "requires-python", files: map[string]string{"pyproject.toml": "[project]\nname = \"a\"\nrequires-python = \"<3.0" + strings.Repeat("0", 10_000) + "-SENTINEL\"\n"}, want: []string{"pyproject.toml:3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := files(map[string]string{"app.py": seedApp})
			if tc.fixture != "" {
				fsys = fixtureFS(t, tc.fixture, nil)
			}
			for k, v := range tc.files {
				fsys[k] = files(map[string]string{k: v})[k]
			}
			_, err := Detect(context.Background(), fsys, Options{})
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *detect.Error", err)
			}
			msg := err.Error()
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			if strings.Contains(msg, "SENTINEL") || strings.ContainsAny(msg, "\x1b\x07") || len(msg) > 600 {
				t.Errorf("error is %d bytes, shows the end of a long value, a credential or a control character: %q", len(msg), msg)
			}
		})
	}
}

func TestLargeSourceFileIsReadUpToTheCap(t *testing.T) {
	big := "from flask import Flask\napp = Flask(__name__)\n" + strings.Repeat("# generated\n", MaxFileSize/12+10)
	fsys := fstest.MapFS{
		"app.py":           {Data: []byte(big)},
		"requirements.txt": {Data: []byte("flask\n")},
	}
	res, err := Detect(context.Background(), fsys, Options{})
	if err != nil {
		t.Fatalf("a %d MiB app.py fails detection: %v", len(big)>>20, err)
	}
	if got := strings.Join(res.Start.Command, " "); !strings.Contains(got, "app") {
		t.Errorf("start command %q, want the Flask app in app.py", got)
	}
}
