package layers

import (
	"errors"
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
		dockerfile string // .dockerignore
		path       string
		dir        bool
		want       bool
	}{
		{name: "built-in git", path: ".git", dir: true, want: true},
		{name: "built-in pycache deep", path: "a/b/__pycache__", dir: true, want: true},
		{name: "built-in env", path: ".env", want: true},
		{name: "built-in env variant", path: "config/.env.local", want: true},
		{name: "envrc kept", path: ".envrc", want: false},
		{name: "plain file kept", path: "app.py", want: false},
		{name: "gitignore basename any depth", gitignore: "*.log", path: "a/b/x.log", want: true},
		{name: "gitignore anchored", gitignore: "/build", path: "src/build", dir: true, want: false},
		{name: "gitignore anchored root", gitignore: "/build", path: "build", dir: true, want: true},
		{name: "gitignore dir only skips files", gitignore: "out/", path: "out", want: false},
		{name: "gitignore dir only", gitignore: "out/", path: "out", dir: true, want: true},
		{name: "gitignore with slash is anchored", gitignore: "docs/*.md", path: "x/docs/a.md", want: false},
		{name: "gitignore negation", gitignore: "*.txt\n!keep.txt", path: "keep.txt", want: false},
		{name: "gitignore comment", gitignore: "# app.py", path: "app.py", want: false},
		{name: "double star", gitignore: "a/**/z.py", path: "a/b/c/z.py", want: true},
		{name: "double star zero dirs", gitignore: "a/**/z.py", path: "a/z.py", want: true},
		{name: "class", gitignore: "file[0-9].py", path: "file7.py", want: true},
		{name: "dockerignore anchored", dockerfile: "*.md", path: "docs/a.md", want: false},
		{name: "dockerignore root", dockerfile: "*.md", path: "README.md", want: true},
		{name: "dockerignore double star", dockerfile: "**/*.md", path: "docs/a.md", want: true},
		{name: "dockerignore leading slash", dockerfile: "/tests", path: "tests", dir: true, want: true},
		{name: "dockerignore covers contents", dockerfile: "tests", path: "tests/test_a.py", want: true},
		{name: "dockerignore overrides gitignore", gitignore: "dist/", dockerfile: "!dist", path: "dist", dir: true, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			if tc.gitignore != "" {
				fsys[".gitignore"] = &fstest.MapFile{Data: []byte(tc.gitignore)}
			}
			if tc.dockerfile != "" {
				fsys[".dockerignore"] = &fstest.MapFile{Data: []byte(tc.dockerfile)}
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

func TestIgnorerBadPattern(t *testing.T) {
	_, err := NewIgnorer(fstest.MapFS{".dockerignore": {Data: []byte("ok\n[abc\n")}})
	if err == nil || !strings.Contains(err.Error(), ".dockerignore:2") {
		t.Fatalf("want an error naming .dockerignore:2, got %v", err)
	}
}

func TestIgnorerConfigured(t *testing.T) {
	ig, err := NewIgnorer(fstest.MapFS{".dockerignore": {Data: []byte("docs\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ig.Configure("pyship.toml", []string{"*.csv", "data/**"}, []string{".env.example", "docs/api.md"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"big.csv": true, "data/x/y.bin": true, ".env.example": false, ".env": true, "docs/api.md": false, "docs/other.md": true, "app.py": false,
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
