package layers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pyship/pyship/detect"
)

func TestIgnorer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		gitignore  string
		dockerfile string            // .dockerignore
		files      map[string]string // more ignore files: path → content
		path       string
		dir        bool
		want       bool
	}{
		{name: "built-in git", path: ".git", dir: true, want: true},
		{name: "built-in pycache deep", path: "a/b/__pycache__", dir: true, want: true},
		{name: "built-in pycache contents", path: "a/__pycache__/m.pyc", want: true},
		{name: "built-in env", path: ".env", want: true},
		{name: "built-in env variant", path: "config/.env.local", want: true},
		{name: "envrc kept", path: ".envrc", want: false},
		{name: "plain file kept", path: "app.py", want: false},
		{name: "gitignore basename any depth", gitignore: "*.log", path: "a/b/x.log", want: true},
		{name: "gitignore anchored", gitignore: "/build", path: "src/build", dir: true, want: false},
		{name: "gitignore anchored root", gitignore: "/build", path: "build", dir: true, want: true},
		{name: "gitignore dir only skips files", gitignore: "out/", path: "out", want: false},
		{name: "gitignore dir only", gitignore: "out/", path: "out", dir: true, want: true},
		{name: "gitignore dir only contents", gitignore: "out/", path: "out/a.txt", want: true},
		{name: "gitignore dir only deep", gitignore: "out/", path: "a/out", dir: true, want: true},
		{name: "gitignore with slash is anchored", gitignore: "docs/*.md", path: "x/docs/a.md", want: false},
		{name: "gitignore with slash", gitignore: "docs/*.md", path: "docs/a.md", want: true},
		{name: "gitignore star stays in a segment", gitignore: "docs/*.md", path: "docs/x/a.md", want: false},
		{name: "gitignore negation", gitignore: "*.txt\n!keep.txt", path: "keep.txt", want: false},
		{name: "gitignore negation leaves the rest", gitignore: "*.txt\n!keep.txt", path: "drop.txt", want: true},
		// As in git: a file whose directory is excluded cannot be brought back...
		{name: "gitignore cannot re-include below an excluded dir", gitignore: "data/\ndata/keep.txt\n!data/keep.txt", path: "data/keep.txt", want: true},
		// ...but one whose directory's contents are excluded can.
		{name: "gitignore re-includes beside excluded contents", gitignore: "data/*\n!data/keep.txt", path: "data/keep.txt", want: false},
		{name: "gitignore comment", gitignore: "# app.py", path: "app.py", want: false},
		{name: "gitignore escaped hash", gitignore: "\\#notes", path: "#notes", want: true},
		{name: "double star", gitignore: "a/**/z.py", path: "a/b/c/z.py", want: true},
		{name: "double star zero dirs", gitignore: "a/**/z.py", path: "a/z.py", want: true},
		{name: "double star elsewhere", gitignore: "a/**/z.py", path: "b/a/z.py", want: false},
		{name: "double star leading", gitignore: "**/logs", path: "x/y/logs", dir: true, want: true},
		{name: "double star trailing", gitignore: "cache/**", path: "cache/a/b", want: true},
		{name: "double star trailing not the dir", gitignore: "cache/**", path: "cache", dir: true, want: false},
		{name: "class", gitignore: "file[0-9].py", path: "file7.py", want: true},
		{name: "class miss", gitignore: "file[0-9].py", path: "filex.py", want: false},
		{name: "dockerignore anchored", dockerfile: "*.md", path: "docs/a.md", want: false},
		{name: "dockerignore root", dockerfile: "*.md", path: "README.md", want: true},
		{name: "dockerignore double star", dockerfile: "**/*.md", path: "docs/a.md", want: true},
		{name: "dockerignore double star root", dockerfile: "**/*.md", path: "README.md", want: true},
		{name: "dockerignore double star middle", dockerfile: "docs/**/*.md", path: "docs/a/b/c.md", want: true},
		{name: "dockerignore double star middle elsewhere", dockerfile: "docs/**/*.md", path: "src/a/b/c.md", want: false},
		{name: "dockerignore leading slash", dockerfile: "/tests", path: "tests", dir: true, want: true},
		{name: "dockerignore covers contents", dockerfile: "tests", path: "tests/test_a.py", want: true},
		{name: "dockerignore trailing slash", dockerfile: "data/", path: "data/a.csv", want: true},
		// Docker, unlike git, brings back a file inside an excluded directory.
		{name: "dockerignore exception inside excluded dir", dockerfile: "data/\n!data/keep.txt", path: "data/keep.txt", want: false},
		{name: "dockerignore exception names one", dockerfile: "data/\n!data/keep.txt", path: "data/drop.txt", want: true},
		{name: "dockerignore exception keeps dir out", dockerfile: "data/\n!data/keep.txt", path: "data", dir: true, want: true},
		{name: "dockerignore exception double star", dockerfile: "data\n!**/keep.txt", path: "data/a/b/keep.txt", want: false},
		{name: "dockerignore exception then exclude", dockerfile: "data\n!data/sub\ndata/sub/x.txt", path: "data/sub/x.txt", want: true},
		{name: "dockerignore exception then exclude keeps others", dockerfile: "data\n!data/sub\ndata/sub/x.txt", path: "data/sub/y.txt", want: false},
		{name: "dockerignore blank and comment", dockerfile: "\n  \n# app.py\n", path: "app.py", want: false},
		{name: "dockerignore trims blanks", dockerfile: "  app.py  ", path: "app.py", want: true},
		{name: "dockerignore overrides gitignore", gitignore: "dist/", dockerfile: "!dist", path: "dist", dir: true, want: false},
		{name: "dockerignore brings back below a gitignored dir", gitignore: "dist/", dockerfile: "!dist/keep.whl", path: "dist/keep.whl", want: false},
		{name: "dockerignore leaves the rest gitignored", gitignore: "dist/", dockerfile: "!dist/keep.whl", path: "dist/drop.whl", want: true},
		{name: "dockerignore brings back a built-in", dockerfile: "!.DS_Store", path: ".DS_Store", want: false},
		{name: "nested gitignore applies below", files: map[string]string{"sub/.gitignore": "*.tmp"}, path: "sub/a.tmp", want: true},
		{name: "nested gitignore applies deeper", files: map[string]string{"sub/.gitignore": "*.tmp"}, path: "sub/x/y/a.tmp", want: true},
		{name: "nested gitignore not above", files: map[string]string{"sub/.gitignore": "*.tmp"}, path: "a.tmp", want: false},
		{name: "nested gitignore not beside", files: map[string]string{"sub/.gitignore": "*.tmp"}, path: "other/a.tmp", want: false},
		{name: "nested gitignore not a prefix", files: map[string]string{"sub/.gitignore": "*.tmp"}, path: "subway/a.tmp", want: false},
		{name: "nested gitignore deep", files: map[string]string{"a/b/c/.gitignore": "x"}, path: "a/b/c/d/x", want: true},
		{name: "nested gitignore deep not above", files: map[string]string{"a/b/c/.gitignore": "x"}, path: "a/b/x", want: false},
		{name: "nested gitignore anchored", files: map[string]string{"sub/.gitignore": "/build"}, path: "sub/build", dir: true, want: true},
		{name: "nested gitignore anchored not deeper", files: map[string]string{"sub/.gitignore": "/build"}, path: "sub/x/build", dir: true, want: false},
		{name: "nested gitignore anchored not at the top", files: map[string]string{"sub/.gitignore": "/build"}, path: "build", dir: true, want: false},
		{name: "nested gitignore with slash", files: map[string]string{"sub/.gitignore": "docs/*.md"}, path: "sub/docs/a.md", want: true},
		{name: "nested gitignore with slash anchored", files: map[string]string{"sub/.gitignore": "docs/*.md"}, path: "sub/x/docs/a.md", want: false},
		{name: "nested gitignore double star", files: map[string]string{"sub/.gitignore": "**/gen/*.py"}, path: "sub/a/gen/m.py", want: true},
		{name: "nested gitignore double star not above", files: map[string]string{"sub/.gitignore": "**/gen/*.py"}, path: "gen/m.py", want: false},
		{name: "nested gitignore dir only", files: map[string]string{"sub/.gitignore": "out/"}, path: "sub/out", want: false},
		{name: "nested gitignore dir only dir", files: map[string]string{"sub/.gitignore": "out/"}, path: "sub/out", dir: true, want: true},
		{name: "nested gitignore overrides the top", gitignore: "*.log", files: map[string]string{"sub/.gitignore": "!keep.log"}, path: "sub/keep.log", want: false},
		{name: "nested gitignore override stays below", gitignore: "*.log", files: map[string]string{"sub/.gitignore": "!keep.log"}, path: "keep.log", want: true},
		{name: "nested gitignore cannot reach above", files: map[string]string{"sub/.gitignore": "../app.py\n/../app.py"}, path: "app.py", want: false},
		{name: "nested gitignore in an ignored dir is not read", gitignore: "vendor/", files: map[string]string{"vendor/.gitignore": "!*"}, path: "vendor/x.py", want: true},
		{name: "nested gitignore under dockerignore", dockerfile: "!sub/a.tmp", files: map[string]string{"sub/.gitignore": "*.tmp"}, path: "sub/a.tmp", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			if tc.gitignore != "" {
				fsys[".gitignore"] = &fstest.MapFile{Data: []byte(tc.gitignore)}
			}
			if tc.dockerfile != "" {
				fsys[".dockerignore"] = &fstest.MapFile{Data: []byte(tc.dockerfile)}
			}
			for name, content := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(content)}
			}
			ig, err := NewIgnorer(fsys)
			if err != nil {
				t.Fatal(err)
			}
			if got := ig.Ignored(tc.path, tc.dir); got != tc.want {
				t.Errorf("Ignored(%q, dir=%v) = %v, want %v", tc.path, tc.dir, got, tc.want)
			}
		})
	}
}

func TestIgnorerDescend(t *testing.T) {
	for _, tc := range []struct {
		name         string
		dockerignore string
		include      []string
		dir          string
		want         bool
	}{
		{name: "no exceptions", dockerignore: "data", dir: "data", want: false},
		{name: "exception below", dockerignore: "data\n!data/keep.txt", dir: "data", want: true},
		{name: "exception elsewhere", dockerignore: "data\nother\n!other/keep.txt", dir: "data", want: false},
		{name: "exception deeper", dockerignore: "data\n!data/a/b/keep.txt", dir: "data/a", want: true},
		{name: "exception beside", dockerignore: "data\n!data/a/b/keep.txt", dir: "data/c", want: false},
		{name: "exception double star", dockerignore: "data\n!**/keep.txt", dir: "data/a/b", want: true},
		{name: "exception wildcard", dockerignore: "*\n!*/keep.txt", dir: "data", want: true},
		{name: "exception wildcard one level", dockerignore: "*\n!*/keep.txt", dir: "data/a", want: false},
		{name: "exception above", dockerignore: "!data\ndata/sub", dir: "data/sub", want: false},
		{name: "include below", dockerignore: "docs", include: []string{"docs/api.md"}, dir: "docs", want: true},
		{name: "not into a built-in", dockerignore: "!**/*.log", dir: "a/.git", want: false},
		{name: "not into a built-in, even named", dockerignore: "!.tox/keep.log", dir: ".tox", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ig, err := NewIgnorer(fstest.MapFS{".dockerignore": {Data: []byte(tc.dockerignore)}})
			if err != nil {
				t.Fatal(err)
			}
			if err := ig.Configure("pyship.toml", nil, tc.include); err != nil {
				t.Fatal(err)
			}
			if got := ig.Descend(tc.dir); got != tc.want {
				t.Errorf("Descend(%q) = %v, want %v", tc.dir, got, tc.want)
			}
		})
	}
}

func TestIgnorerBadPattern(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "dockerignore", files: map[string]string{".dockerignore": "ok\n[abc\n"}, want: ".dockerignore:2"},
		{name: "dockerignore lone exception", files: map[string]string{".dockerignore": "# c\n\nok\n!\n"}, want: ".dockerignore:4"},
		{name: "dockerignore bad class range", files: map[string]string{".dockerignore": "[z-a]\n"}, want: ".dockerignore:1"},
		{name: "dockerignore bad exception", files: map[string]string{".dockerignore": "*\n![z-a]\n"}, want: ".dockerignore:2"},
		{name: "gitignore", files: map[string]string{".gitignore": "ok\n\n[abc\n"}, want: ".gitignore:3"},
		{name: "nested gitignore", files: map[string]string{"sub/.gitignore": "# c\nx[\n"}, want: "sub/.gitignore:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, content := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(content)}
			}
			_, err := NewIgnorer(fsys)
			var de *detect.Error
			if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want+": bad pattern") {
				t.Fatalf("want a *detect.Error naming %s, got %v", tc.want, err)
			}
		})
	}
}

func TestIgnorerBounds(t *testing.T) {
	t.Run("patterns", func(t *testing.T) {
		var b strings.Builder
		for i := range MaxIgnorePatterns + 1 {
			fmt.Fprintf(&b, "f%d\n# comment\n", i)
		}
		_, err := NewIgnorer(fstest.MapFS{".dockerignore": {Data: []byte(b.String())}})
		want := fmt.Sprintf(".dockerignore:%d: more than %d", 2*MaxIgnorePatterns+1, MaxIgnorePatterns)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want an error starting %q, got %v", want, err)
		}
	})
	t.Run("patterns across files", func(t *testing.T) {
		fsys := fstest.MapFS{".dockerignore": {Data: []byte(strings.Repeat("x\n", MaxIgnorePatterns))}, "a/.gitignore": {Data: []byte("y\n")}}
		if _, err := NewIgnorer(fsys); err == nil || !strings.Contains(err.Error(), "a/.gitignore:1: more than") {
			t.Fatalf("want an error naming a/.gitignore:1, got %v", err)
		}
	})
	t.Run("patterns with the configuration", func(t *testing.T) {
		ig, err := NewIgnorer(fstest.MapFS{".dockerignore": {Data: []byte(strings.Repeat("x\n", MaxIgnorePatterns))}})
		if err != nil {
			t.Fatal(err)
		}
		if err := ig.Configure("pyship.toml", []string{"y"}, nil); err == nil || !strings.Contains(err.Error(), "pyship.toml: more than") {
			t.Fatalf("want an error naming pyship.toml, got %v", err)
		}
	})
	t.Run("files", func(t *testing.T) {
		fsys := fstest.MapFS{}
		for i := range MaxIgnoreFiles + 1 {
			fsys[fmt.Sprintf("d%04d/.gitignore", i)] = &fstest.MapFile{Data: []byte("*.tmp\n")}
		}
		_, err := NewIgnorer(fsys)
		want := fmt.Sprintf("d%04d/.gitignore: more than %d .gitignore files", MaxIgnoreFiles, MaxIgnoreFiles)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want an error starting %q, got %v", want, err)
		}
	})
	t.Run("files in ignored trees are not read", func(t *testing.T) {
		fsys := fstest.MapFS{".gitignore": {Data: []byte("node_modules/\n")}}
		for i := range MaxIgnoreFiles + 1 {
			fsys[fmt.Sprintf("node_modules/p%04d/.gitignore", i)] = &fstest.MapFile{Data: []byte("[bad\n")}
		}
		if _, err := NewIgnorer(fsys); err != nil {
			t.Fatalf("the .gitignore files of an ignored tree were read: %v", err)
		}
	})
	t.Run("files in dockerignored trees are not read", func(t *testing.T) {
		fsys := fstest.MapFS{".dockerignore": {Data: []byte("vendor\n")}, "vendor/.gitignore": {Data: []byte("[bad\n")}}
		if _, err := NewIgnorer(fsys); err != nil {
			t.Fatalf("the .gitignore of a tree .dockerignore leaves out was read: %v", err)
		}
	})
	t.Run("large file", func(t *testing.T) {
		fsys := fstest.MapFS{"sub/.gitignore": {Data: bytes.Repeat([]byte("#\n"), detect.MaxFileSize/2+1)}}
		var de *detect.Error
		if _, err := NewIgnorer(fsys); !errors.As(err, &de) || de.File != "sub/.gitignore" {
			t.Fatalf("want a *detect.Error naming sub/.gitignore, got %v", err)
		}
	})
}

func TestIgnorerConfigured(t *testing.T) {
	ig, err := NewIgnorer(fstest.MapFS{".dockerignore": {Data: []byte("docs\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ig.Configure("pyship.toml", []string{"*.csv", "data/**", "out/", "/notes"}, []string{".env.example", "docs/api.md"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"big.csv": true, "data/x/y.bin": true, ".env.example": false, ".env": true, "docs/api.md": false, "docs/other.md": true, "app.py": false,
		"sub/big.csv": false, "out/a.txt": true, "notes/a.txt": true,
	} {
		if got := ig.Ignored(path, false); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestIgnorerSecrets(t *testing.T) {
	const key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"
	for _, tc := range []struct {
		name         string
		dockerignore string
		gitignore    string
		files        map[string]string // more ignore files
		include      []string
		path         string
		content      string
		want         Reason
	}{
		{name: "aws credentials", path: ".aws/credentials", want: Secret},
		{name: "aws credentials deep", path: "services/api/.aws/credentials", want: Secret},
		{name: "aws config kept", path: ".aws/config", want: Kept},
		{name: "ssh any key", path: ".ssh/deploy", want: Secret},
		{name: "ssh key name anywhere", path: "keys/id_ed25519", want: Secret},
		{name: "public key kept", path: "keys/id_ed25519.pub", want: Kept},
		{name: "gcloud tree", path: "home/.config/gcloud/access_tokens.db", want: Secret},
		{name: "env file stays excluded", path: ".env", want: Excluded},
		{name: "env file negated is still a secret", dockerignore: "!.env", path: ".env", want: Secret},
		{name: "env template is no secret", dockerignore: "!.env.example", path: ".env.example", want: Kept},
		{name: "ignore file negation", dockerignore: "*\n!.npmrc", path: ".npmrc", want: Secret},
		{name: "ignored anyway", dockerignore: ".npmrc", path: ".npmrc", want: Excluded},
		{name: "exception inside an excluded dir", dockerignore: "conf\n!conf/.npmrc", path: "conf/.npmrc", want: Secret},
		{name: "exception by wildcard", dockerignore: "conf\n!**/.npmrc", path: "conf/a/.npmrc", want: Secret},
		{name: "gitignore exception", gitignore: ".npmrc\n!.npmrc", path: ".npmrc", want: Secret},
		{name: "nested gitignore exception", files: map[string]string{"sub/.gitignore": "!.pypirc"}, path: "sub/.pypirc", want: Secret},
		{name: "include inside an excluded dir", dockerignore: "conf", include: []string{"conf/.npmrc"}, path: "conf/.npmrc", want: Kept},
		{name: "include by its dir", include: []string{"deploy"}, path: "deploy/.ssh/id_ed25519", want: Kept},
		{name: "include brings one back", include: []string{"services/api/.aws/credentials"}, path: "services/api/.aws/credentials", want: Kept},
		{name: "include names one only", include: []string{"services/api/.aws/credentials"}, path: ".aws/credentials", want: Secret},
		{name: "private key by content", path: "tls/server.pem", content: key, want: Secret},
		{name: "certificate kept", path: "tls/ca.pem", content: "-----BEGIN CERTIFICATE-----\n", want: Kept},
		{name: "key file without a key", path: "i18n/en.key", content: "hello = Hello\n", want: Kept},
		{name: "key content elsewhere not read", path: "notes.txt", content: key, want: Kept},
		{name: "included key", include: []string{"tls/*.key"}, path: "tls/server.key", content: key, want: Kept},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			if tc.dockerignore != "" {
				fsys[".dockerignore"] = &fstest.MapFile{Data: []byte(tc.dockerignore)}
			}
			if tc.gitignore != "" {
				fsys[".gitignore"] = &fstest.MapFile{Data: []byte(tc.gitignore)}
			}
			for name, content := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(content)}
			}
			ig, err := NewIgnorer(fsys)
			if err != nil {
				t.Fatal(err)
			}
			if err := ig.Configure("pyship.toml", nil, tc.include); err != nil {
				t.Fatal(err)
			}
			open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(tc.content)), nil }
			if got, err := ig.Why(tc.path, false, open); got != tc.want || err != nil {
				t.Errorf("Why(%q) = %v, %v; want %v", tc.path, got, err, tc.want)
			}
		})
	}
}

func TestIgnoreFileLinkingOutIsRefused(t *testing.T) {
	repo, host := t.TempDir(), t.TempDir()
	secret := filepath.Join(host, "secret.txt")
	if err := os.WriteFile(secret, []byte("token=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(repo, ".dockerignore")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = NewIgnorer(detect.RootFS(root))
	var de *detect.Error
	if !errors.As(err, &de) || !strings.Contains(err.Error(), ".dockerignore") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a .dockerignore linking out of the repository: %v; want an error naming it, without its content", err)
	}
}
