package layers

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"

	"github.com/pyship/pyship/plan"
)

// writeFiles creates files (name → content) under dir; a content starting with "->" makes
// a symbolic link to the rest.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// layerEntries lists a layer's entries: name → link target or content.
func layerEntries(t *testing.T, l v1.Layer) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			out[h.Name] = "->" + h.Linkname
		case tar.TypeDir:
			out[h.Name] = "<dir>"
		default:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = string(data)
		}
	}
}

func appLayerFor(t *testing.T, src string) v1.Layer {
	t.Helper()
	l, err := appLayer(src, plan.App{Dir: plan.AppDir}, nil, t.TempDir(), DefaultEpoch, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func digestOf(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAppLayerIsReproducible(t *testing.T) {
	files := map[string]string{
		"app.py": "print('hi')\n", "pkg/__init__.py": "", "pkg/mod.py": "x = 1\n",
		"static/a.css": "body{}", "link.py": "->app.py",
	}
	a, b := t.TempDir(), t.TempDir()
	writeFiles(t, a, files)
	writeFiles(t, b, files)
	// Different mtimes, permissions beyond the executable bit and creation order must
	// not change the layer.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, old, old)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(b, "pkg/mod.py"), 0o600); err != nil {
		t.Fatal(err)
	}
	da, db := digestOf(t, appLayerFor(t, a)), digestOf(t, appLayerFor(t, b))
	if da != db {
		t.Errorf("same files gave layers %s and %s", da, db)
	}
	// And a change of content must change it.
	writeFiles(t, b, map[string]string{"pkg/mod.py": "x = 2\n"})
	if dc := digestOf(t, appLayerFor(t, b)); dc == da {
		t.Errorf("changed content kept digest %s", dc)
	}
}

func TestAppLayerNormalisesHeaders(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"run.sh": "#!/bin/sh\n", "app.py": ""})
	if err := os.Chmod(filepath.Join(src, "run.sh"), 0o750); err != nil {
		t.Fatal(err)
	}
	rc, err := appLayerFor(t, src).Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 and no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(DefaultEpoch) {
			t.Errorf("%s: mtime %s, want %s", h.Name, h.ModTime, DefaultEpoch)
		}
		if len(h.PAXRecords) != 0 || len(h.Xattrs) != 0 {
			t.Errorf("%s: PAX records %v", h.Name, h.PAXRecords)
		}
		want := map[string]int64{"app/": 0o755, "app/app.py": 0o644, "app/run.sh": 0o755}[h.Name]
		if h.Mode != want {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, want)
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
}

func TestAppLayerLeavesOutWhatItMust(t *testing.T) {
	src := t.TempDir()
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.txt": "TOP SECRET"})
	writeFiles(t, src, map[string]string{
		"app.py":                      "ok",
		".git/config":                 "git",
		".env":                        "PASSWORD=x",
		".env.production":             "PASSWORD=y",
		"__pycache__/app.cpython.pyc": "pyc",
		"pkg/__pycache__/m.pyc":       "pyc",
		"pkg/m.py":                    "ok",
		"myenv/pyvenv.cfg":            "home = /usr/bin",
		"myenv/lib/site.py":           "venv",
		".venv/lib/x.py":              "venv",
		"notes.log":                   "log",
		"build/out.txt":               "build",
		"docs/keep.md":                "doc",
		"docs/drop.md":                "doc",
		"docs/deep/drop.md":           "doc",
		"escape-abs":                  "->" + filepath.Join(outside, "secret.txt"),
		"escape-rel":                  "->../" + filepath.Base(outside) + "/secret.txt",
		"pkg/inside":                  "->../app.py",
		".gitignore":                  "*.log\nbuild/\n",
		".dockerignore":               "docs/*.md\n!docs/keep.md\n",
	})
	got := layerEntries(t, appLayerFor(t, src))
	for _, want := range []string{"app/app.py", "app/pkg/m.py", "app/docs/keep.md", "app/docs/deep/drop.md", "app/.gitignore", "app/.dockerignore"} {
		if _, ok := got[want]; !ok {
			t.Errorf("%s missing from the layer", want)
		}
	}
	if got["app/pkg/inside"] != "->../app.py" {
		t.Errorf("link inside the repository: got %q", got["app/pkg/inside"])
	}
	for _, unwanted := range []string{
		"app/.git/", "app/.git/config", "app/.env", "app/.env.production", "app/__pycache__/",
		"app/pkg/__pycache__/m.pyc", "app/myenv/", "app/myenv/pyvenv.cfg", "app/.venv/", "app/notes.log",
		"app/build/", "app/build/out.txt", "app/docs/drop.md", "app/escape-abs", "app/escape-rel",
	} {
		if _, ok := got[unwanted]; ok {
			t.Errorf("%s is in the layer", unwanted)
		}
	}
	for name, content := range got {
		if content == "TOP SECRET" {
			t.Errorf("%s carries a file from outside the repository", name)
		}
	}
}

// The walk goes into a directory an ignore file leaves out when an exception may bring a
// path below it back, and writes that directory only when something below it is written.
func TestAppLayerWalksIntoExcludedDirectories(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"app.py":                     "ok",
		"data/keep.txt":              "keep",
		"data/drop.txt":              "drop",
		"data/sub/drop.txt":          "drop",
		"logs/a/b/keep.log":          "keep",
		"logs/a/b/drop.txt":          "drop",
		"logs/c/drop.txt":            "drop",
		"docs/api.md":                "api",
		"docs/guide.md":              "guide",
		"dist/keep.whl":              "keep",
		"dist/drop.whl":              "drop",
		"conf/.npmrc":                "secret",
		"conf/settings.py":           "drop",
		"services/api/.gitignore":    "*.tmp\n/generated/\n",
		"services/api/a.tmp":         "tmp",
		"services/api/x/b.tmp":       "tmp",
		"services/api/generated/g":   "gen",
		"services/api/x/generated/g": "kept: /generated is anchored",
		"services/api/app.py":        "ok",
		"services/web/c.tmp":         "kept: the api's .gitignore does not reach here",
		".git/x.log":                 "git",
		".gitignore":                 "dist/\n",
		".dockerignore":              "data/\n!data/keep.txt\nlogs\n!**/*.log\ndocs\nconf\n!conf/.npmrc\n!dist/keep.whl\n",
	})
	build := func() v1.Layer {
		l, _ := appLayerLogged(t, src, plan.App{Include: []string{"docs/api.md"}})
		return l
	}
	l := build()
	if a, b := digestOf(t, l), digestOf(t, build()); a != b {
		t.Errorf("the same tree gave layers %s and %s", a, b)
	}
	got := layerEntries(t, l)
	for _, want := range []string{
		"app/app.py", "app/data/", "app/data/keep.txt", "app/logs/", "app/logs/a/", "app/logs/a/b/",
		"app/logs/a/b/keep.log", "app/docs/", "app/docs/api.md", "app/dist/", "app/dist/keep.whl",
		"app/services/api/app.py", "app/services/api/x/generated/g", "app/services/web/c.tmp",
	} {
		if _, ok := got[want]; !ok {
			t.Errorf("%s missing from the layer", want)
		}
	}
	for _, unwanted := range []string{
		"app/data/drop.txt", "app/data/sub/", "app/data/sub/drop.txt", "app/logs/a/b/drop.txt", "app/logs/c/",
		"app/docs/guide.md", "app/dist/drop.whl", "app/conf/", "app/conf/.npmrc", "app/conf/settings.py",
		"app/services/api/a.tmp", "app/services/api/x/b.tmp", "app/services/api/generated/",
		"app/.git/", "app/.git/x.log",
	} {
		if _, ok := got[unwanted]; ok {
			t.Errorf("%s is in the layer", unwanted)
		}
	}
}

func TestLinkEscapes(t *testing.T) {
	for _, tc := range []struct {
		name, rel, target string
		want              bool
	}{
		{"sibling", "a/b", "c", false},
		{"up within", "a/b", "../c", false},
		{"up out", "a/b", "../../c", true},
		{"root level up", "b", "../c", true},
		{"absolute", "a", "/etc/passwd", true},
		{"dot dot only", "a", "..", true},
		{"self", "a", ".", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := linkEscapes(tc.rel, tc.target); got != tc.want {
				t.Errorf("linkEscapes(%q, %q) = %v, want %v", tc.rel, tc.target, got, tc.want)
			}
		})
	}
}

func TestLayerCompressionIsPinned(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app.py": "print(1)\n"})
	l := appLayerFor(t, src)
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header carries mtime %v name %q", zr.ModTime, zr.Name)
	}
}

// appLayerLogged builds the application layer with app's configuration and returns it
// with what was logged.
func appLayerLogged(t *testing.T, src string, app plan.App) (v1.Layer, string) {
	t.Helper()
	var logged strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Warn})
	app.Dir = plan.AppDir
	l, err := appLayer(src, app, nil, t.TempDir(), DefaultEpoch, log)
	if err != nil {
		t.Fatal(err)
	}
	return l, logged.String()
}

// warned reports whether a logged line names path=rel.
func warned(logged, rel string) bool {
	return strings.Contains(logged+"\n", "path="+rel+" ") || strings.Contains(logged+"\n", "path="+rel+"\n")
}

func TestAppLayerLeavesOutSecrets(t *testing.T) {
	secrets := []string{
		".aws/credentials", ".netrc", "id_rsa", ".ssh/id_ed25519", ".ssh/deploy_key", ".docker/config.json",
		".npmrc", ".pypirc", "credentials.json", "application_default_credentials.json",
		".config/gcloud/credentials.db", ".config/gcloud/legacy_credentials/me/adc.json", ".git-credentials",
		".kube/config", ".pgpass", "certs/server.key", "certs/bundle.pem",
		"services/api/.aws/credentials", "services/api/.npmrc", "deploy/.ssh/id_rsa",
	}
	kept := []string{
		"app.py", ".aws/config", "id_rsa.pub", "certs/ca.pem", "certs/public.key", ".ssh.md",
		"services/api/credentials_test.py",
	}
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"
	const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	files := map[string]string{}
	for _, f := range secrets {
		files[f] = "secret " + f
	}
	for _, f := range kept {
		files[f] = "kept " + f
	}
	files["id_rsa"], files[".ssh/id_ed25519"], files["certs/server.key"] = key, key, key
	// A combined certificate and key, as some servers want them.
	files["certs/bundle.pem"] = cert + strings.Replace(key, "OPENSSH ", "", 2)
	files["certs/ca.pem"], files["certs/public.key"] = cert, "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"
	// An ignore file's negation does not bring a secret back; only pyship's include does.
	files[".dockerignore"] = "!.npmrc\n!**/.aws\n"

	src := t.TempDir()
	writeFiles(t, src, files)
	l, logged := appLayerLogged(t, src, plan.App{})
	again, _ := appLayerLogged(t, src, plan.App{})
	if a, b := digestOf(t, l), digestOf(t, again); a != b {
		t.Errorf("the same tree gave layers %s and %s", a, b)
	}
	got := layerEntries(t, l)
	for _, f := range secrets {
		if _, ok := got["app/"+f]; ok {
			t.Errorf("%s is in the layer", f)
		}
		if !warned(logged, f) {
			t.Errorf("no warning names %s", f)
		}
	}
	for _, f := range kept {
		if _, ok := got["app/"+f]; !ok {
			t.Errorf("%s is missing from the layer", f)
		}
		if warned(logged, f) {
			t.Errorf("a warning names %s, which is not a secret", f)
		}
	}
	if !strings.Contains(logged, "include = [") {
		t.Errorf("the warning does not say how to bring a file back:\n%s", logged)
	}

	// include names a secret on purpose: it goes in, and only it.
	l, logged = appLayerLogged(t, src, plan.App{Include: []string{"services/api/.aws/credentials", "certs/server.key"}})
	got = layerEntries(t, l)
	for _, f := range []string{"services/api/.aws/credentials", "certs/server.key"} {
		if _, ok := got["app/"+f]; !ok {
			t.Errorf("%s is included on purpose but missing", f)
		}
		if warned(logged, f) {
			t.Errorf("a warning names %s, which is included on purpose", f)
		}
	}
	if _, ok := got["app/.aws/credentials"]; ok {
		t.Errorf(".aws/credentials came in with services/api/.aws/credentials")
	}
}

func TestAppLayerRefusesWhiteoutNames(t *testing.T) {
	for _, tc := range []struct {
		name, file string
	}{
		{"whiteout", "static/.wh.logo.png"},
		{"opaque whiteout", "pkg/.wh..wh..opq"},
		{"directory", "data/.wh.cache/x.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			writeFiles(t, src, map[string]string{"app.py": "print(1)\n", tc.file: "x"})
			_, err := appLayer(src, plan.App{Dir: plan.AppDir}, nil, t.TempDir(), DefaultEpoch, hclog.NewNullLogger())
			var we *WhiteoutNameError
			bad := tc.file
			if i := strings.Index(bad, "/.wh.cache"); i >= 0 {
				bad = bad[:i+len("/.wh.cache")]
			}
			if !errors.As(err, &we) || we.Path != bad || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "hint:") {
				t.Fatalf("got %v, want a WhiteoutNameError naming %s with a hint", err, bad)
			}

			// Left out on purpose, it is no problem.
			for range 2 {
				l, err := appLayer(src, plan.App{Dir: plan.AppDir, Exclude: []string{bad}}, nil, t.TempDir(), DefaultEpoch, hclog.NewNullLogger())
				if err != nil {
					t.Fatalf("excluded %s: %v", bad, err)
				}
				if d := digestOf(t, l); d != digestOf(t, appLayerFor(t, withoutFile(t, src, bad))) {
					t.Errorf("excluding %s gave %s, not the layer of the tree without it", bad, d)
				}
			}
		})
	}
}

// withoutFile copies src without rel (a file or directory).
func withoutFile(t *testing.T, src, rel string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dst, filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// layerHeaders lists a layer's tar headers by name.
func layerHeaders(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

// TestAppLayerOwnsDirectoriesByRule checks the plan's writable directories in the tar: the
// application's directories get the rule's owner and mode, and nothing else does, files
// least of all (the app user must not be able to rewrite its code).
func TestAppLayerOwnsDirectoriesByRule(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app.py": "", "run.sh": "#!/bin/sh\n", "pkg/sub/mod.py": "", "link.py": "->app.py",
		"db.sqlite3": sqliteMagic + "rest of the database", "pkg/data.db": sqliteMagic, "short.db": "SQLite", "pkg/sub/x.db": sqliteMagic, "empty.sqlite3": "", "empty.py": ""})
	if err := os.Chmod(filepath.Join(src, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	rules, err := dirRules([]plan.Writable{
		{Path: "/app", Subdirs: true, SQLite: true, UID: 0, GID: 65532, Mode: "1775"},
		{Path: "/app/pkg/sub", UID: 7, GID: 8, Mode: "0700"},
		{Path: "/home/app", UID: 65532, GID: 65532, Mode: "0755"},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := appLayer(src, plan.App{Dir: plan.AppDir}, rules, t.TempDir(), DefaultEpoch, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	type owner struct {
		uid, gid int
		mode     int64
	}
	want := map[string]owner{
		"app/":               {0, 65532, 0o1775},
		"app/pkg/":           {0, 65532, 0o1775},
		"app/pkg/sub/":       {7, 8, 0o700}, // the rule naming a directory wins over one above it
		"app/app.py":         {0, 0, 0o644},
		"app/run.sh":         {0, 0, 0o755},
		"app/link.py":        {0, 0, 0o777},
		"app/pkg/sub/mod.py": {0, 0, 0o644},
		// SQLite databases are the app's group's to write, and only they.
		"app/db.sqlite3":    {0, 65532, 0o664},
		"app/pkg/data.db":   {0, 65532, 0o664},
		"app/short.db":      {0, 0, 0o644},
		"app/empty.sqlite3": {0, 65532, 0o664}, // an empty file named like a database is one
		"app/empty.py":      {0, 0, 0o644},
		"app/pkg/sub/x.db":  {0, 0, 0o644}, // its directory's rule does not make databases writable
	}
	got := layerHeaders(t, l)
	if len(got) != len(want) {
		t.Errorf("entries %v, want %d", slices.Sorted(maps.Keys(got)), len(want))
	}
	for name, w := range want {
		h, ok := got[name]
		if !ok {
			t.Errorf("%s is missing", name)
			continue
		}
		if (owner{h.Uid, h.Gid, h.Mode}) != w {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", name, h.Uid, h.Gid, h.Mode, w.uid, w.gid, w.mode)
		}
	}
	// The same files and rules give the same layer.
	again, err := appLayer(src, plan.App{Dir: plan.AppDir}, rules, t.TempDir(), DefaultEpoch, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digestOf(t, l), digestOf(t, again); a != b {
		t.Errorf("the same tree and rules gave layers %s and %s", a, b)
	}
}

func TestDirRulesRefuseWhatTheyCannotApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    plan.Writable
	}{
		{"relative path", plan.Writable{Path: "app", Mode: "0755"}},
		{"unclean path", plan.Writable{Path: "/app/../etc", Mode: "0755"}},
		{"the root", plan.Writable{Path: "/", Mode: "0755"}},
		{"set-uid mode", plan.Writable{Path: "/app", Mode: "4755"}},
		{"set-gid mode", plan.Writable{Path: "/app", Mode: "2775"}},
		{"decimal mode", plan.Writable{Path: "/app", Mode: "493"}},
		{"empty mode", plan.Writable{Path: "/app"}},
		{"negative owner", plan.Writable{Path: "/app", UID: -1, Mode: "0755"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := dirRules([]plan.Writable{tc.w}); err == nil {
				t.Errorf("dirRules(%+v) = %+v, want an error", tc.w, r)
			}
		})
	}
}

// TestDataRuleOwnsFiles checks a writable rule with Files: the files below it (a database a
// build step made) get its owner, the files beside it stay root's.
func TestDataRuleOwnsFiles(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"app.py": "", "instance/blog.sqlite": "db", "instance/uploads/a.png": "png"})
	rules, err := dirRules([]plan.Writable{
		{Path: "/app", Subdirs: true, UID: 0, GID: 65532, Mode: "1775"},
		{Path: "/app/instance", Subdirs: true, Files: true, UID: 65532, GID: 65532, Mode: "0755"},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := appLayer(src, plan.App{Dir: plan.AppDir}, rules, t.TempDir(), DefaultEpoch, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	got := layerHeaders(t, l)
	for name, uid := range map[string]int{"app/app.py": 0, "app/instance/": 65532, "app/instance/blog.sqlite": 65532, "app/instance/uploads/": 65532, "app/instance/uploads/a.png": 65532} {
		if h, ok := got[name]; !ok || h.Uid != uid || h.Gid != uid {
			t.Errorf("%s: %+v, want owner %d:%d", name, h, uid, uid)
		}
	}
}

// TestLayerTreeIsTheExtraction: the tree writeLayerTree makes by moving the scratch tree's
// files is the one extracting the layer gives: the same entries, types, contents, owners,
// modes and times (a symbolic link's own time aside, which extraction does not set); the
// files moved rather than copied; a second layer with the same bytes keeps the first tree.
func TestLayerTreeIsTheExtraction(t *testing.T) {
	scratch := func() string {
		src := t.TempDir()
		writeFiles(t, src, map[string]string{
			"bin/tool":                    "#!/bin/sh\n",
			"bin/link":                    "->../lib/pkg/__init__.py",
			"bin/python":                  "->/usr/bin/python3",
			"lib/pkg/__init__.py":         "x = 1\n",
			"lib/pkg/data/db.sqlite3":     "SQLite format 3\x00rest",
			"lib/pkg/__pycache__/a.pyc":   "pyc",
			"lib/pkg/empty/.keep":         "",
			"lib/other/module.py":         strings.Repeat("y = 2\n", 1000),
			"share/doc/readme.txt":        "hello\n",
			"lib/pkg/data/plain.txt":      "text\n",
			"lib/pkg/data/nested/deep.py": "z = 3\n",
		})
		if err := os.Chmod(filepath.Join(src, "bin/tool"), 0o700); err != nil {
			t.Fatal(err)
		}
		// Two names of one executable file, which the rules give different owners and
		// modes: the database's rule makes it 0664.
		if err := os.Chmod(filepath.Join(src, "lib/pkg/data/db.sqlite3"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(src, "lib/pkg/data/db.sqlite3"), filepath.Join(src, "lib/pkg/linked.sqlite3")); err != nil {
			t.Fatal(err)
		}
		return src
	}
	src := scratch()
	// A second name outside the tree, as uv's cache in the install's scratch gives the
	// venv's files: the file moves all the same.
	cached := filepath.Join(t.TempDir(), "cached.py")
	if err := os.Link(filepath.Join(src, "lib/other/module.py"), cached); err != nil {
		t.Fatal(err)
	}
	// What a sandboxed install may set beyond a file's bytes does not reach the tree.
	xattrFile := filepath.Join(src, "lib/pkg/__init__.py")
	if err := unix.Lsetxattr(xattrFile, "user.pyship-test", []byte("planted"), 0); err != nil {
		t.Fatalf("setting an extended attribute on the scratch file: %v", err)
	}
	rules := []dirRule{{name: "opt/venv/lib/pkg/data", subdirs: true, sqlite: true, uid: 1000, gid: 1000, mode: 0o1775}}
	fill := func(w *normalisingWriter) error {
		return writeTree(w, src, treeOptions{Prefix: "/opt/venv", AllowOutsideLinks: true})
	}
	cacheDir := t.TempDir()
	layersDir := filepath.Join(cacheDir, "layers")
	tap := &tarCopy{}
	l, err := writeLayerTree(layersDir, "", DefaultEpoch, rules, cacheDir, tap, nil, fill)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	tap.check(t, l, d)
	mirrored := filepath.Join(cacheDir, treesDir, d.Hex)
	if _, err := os.Stat(filepath.Join(src, "lib/other/module.py")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the scratch tree's file is still there (%v): it was copied, not moved", err)
	}
	if a, err := os.Stat(cached); err != nil {
		t.Fatal(err)
	} else if b, err := os.Stat(filepath.Join(mirrored, "opt/venv/lib/other/module.py")); err != nil || !os.SameFile(a, b) {
		t.Errorf("a file with a second name outside the tree was copied, not moved (%v)", err)
	}

	// The same layer, extracted into another cache.
	other := t.TempDir()
	again, err := writeLayerFile(filepath.Join(other, "layers"), "", DefaultEpoch, rules, func(w *normalisingWriter) error {
		return writeTree(w, mirrored, treeOptions{Prefix: "", AllowOutsideLinks: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := again.Digest(); d2 != d {
		t.Fatalf("the mirrored tree makes layer %s, its layer is %s", d2, d)
	}
	extracted, err := layerTree(l, other)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeTree(t, mirrored), describeTree(t, extracted); got != want {
		t.Errorf("mirrored tree:\n%s\nextracted tree:\n%s", got, want)
	}
	if n, err := unix.Llistxattr(filepath.Join(mirrored, "opt/venv/lib/pkg/__init__.py"), make([]byte, 256)); err != nil || n != 0 {
		t.Errorf("the moved file kept %d bytes of extended attribute names (%v)", n, err)
	}
	if !strings.Contains(describeTree(t, mirrored), "opt/venv/lib/pkg/data/db.sqlite3 file 664") {
		t.Errorf("the rules were not applied to the tree:\n%s", describeTree(t, mirrored))
	}
	if !strings.Contains(describeTree(t, mirrored), "opt/venv/lib/pkg/linked.sqlite3 file 755") {
		t.Errorf("the second name of an executable database lost its executable bit:\n%s", describeTree(t, mirrored))
	}

	// Written again from another scratch tree: the tree made first stays.
	stamp := filepath.Join(mirrored, "opt/venv/share/doc/readme.txt")
	before, err := os.Stat(stamp)
	if err != nil {
		t.Fatal(err)
	}
	src2 := scratch()
	failing := &tarCopy{}
	if _, err := writeLayerTree(layersDir, "", DefaultEpoch, rules, cacheDir, failing, nil, func(w *normalisingWriter) error {
		return errors.New("the walk failed")
	}); err == nil || failing.kept != nil || !failing.dropped {
		t.Errorf("a layer whose writing failed: error %v, its tap kept as %v, dropped %v", err, failing.kept, failing.dropped)
	}
	if _, err := writeLayerTree(layersDir, "", DefaultEpoch, rules, cacheDir, nil, nil, func(w *normalisingWriter) error {
		return writeTree(w, src2, treeOptions{Prefix: "/opt/venv", AllowOutsideLinks: true})
	}); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(stamp); err != nil || !os.SameFile(before, after) {
		t.Errorf("the tree made first was replaced (%v)", err)
	}
	// An entry the tree cannot take (its file is gone) fails the layer, though the walk
	// that queued it went on.
	if _, err := writeLayerTree(layersDir, "", DefaultEpoch, rules, cacheDir, nil, nil, func(w *normalisingWriter) error {
		w.src = filepath.Join(t.TempDir(), "gone")
		return w.file("opt/venv/gone.py", false, 0, strings.NewReader(""))
	}); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a layer whose tree could not take an entry: error %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cacheDir, treesDir, ".extract-*")); len(left) > 0 {
		t.Errorf("temporary trees left: %v", left)
	}
}

// describeTree lists a tree's entries with their type, mode, owner, time and content.
func describeTree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, "%s link %s %d:%d\n", rel, target, st.Uid, st.Gid)
		case d.IsDir() && rel == ".":
			// The top is made when the tree is, by neither writer's layer.
			fmt.Fprintf(&b, ". dir %o %d:%d\n", info.Mode()&(fs.ModePerm|fs.ModeSticky), st.Uid, st.Gid)
		case d.IsDir():
			fmt.Fprintf(&b, "%s dir %o %d:%d %d\n", rel, info.Mode()&(fs.ModePerm|fs.ModeSticky), st.Uid, st.Gid, info.ModTime().Unix())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s file %o %d:%d %d %x\n", rel, info.Mode().Perm(), st.Uid, st.Gid, info.ModTime().Unix(), sha256.Sum256(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestLayerCompressionIgnoresWorkers: a layer's gzip depends on its bytes and the block
// size, never on how many workers compressed it, and reads back as one gzip stream.
func TestLayerCompressionIgnoresWorkers(t *testing.T) {
	data := make([]byte, 3*layerBlock+12345)
	for i := range data {
		data[i] = byte(i*i>>7) ^ byte(i>>13)
	}
	compress := func(workers int) []byte {
		var b bytes.Buffer
		zw, err := pgzip.NewWriterLevel(&b, CompressionLevel)
		if err != nil {
			t.Fatal(err)
		}
		if err := zw.SetConcurrency(layerBlock, workers); err != nil {
			t.Fatal(err)
		}
		// In uneven writes, as a tar writer makes them.
		for p := data; len(p) > 0; p = p[min(len(p), 7777):] {
			if _, err := zw.Write(p[:min(len(p), 7777)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	one, many := compress(1), compress(8)
	if !bytes.Equal(one, many) {
		t.Fatalf("one worker made %d bytes, eight made %d other bytes", len(one), len(many))
	}
	br := bytes.NewReader(many)
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	back, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(back, data) {
		t.Errorf("read back %d bytes (%v), want the %d written", len(back), err, len(data))
	}
	if br.Len() != 0 {
		t.Errorf("%d bytes after the first gzip stream", br.Len())
	}
}

// TestMoveFile: the tree takes a file with other names by moving it, unless it took the
// file under another name already, or the header changes whether it is executable, which
// the walk still reads under the other names.
func TestMoveFile(t *testing.T) {
	for _, c := range []struct {
		name       string
		mode       os.FileMode
		executable bool
		taken      bool
		moved      bool
	}{
		{"a second name outside the tree", 0o644, false, false, true},
		{"executable, and so says the header", 0o755, true, false, true},
		{"executable, and the header says not", 0o755, false, false, false},
		{"not executable, and the header says it is", 0o644, true, false, false},
		{"taken under another name already", 0o644, false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			src, other, target := filepath.Join(dir, "src"), filepath.Join(dir, "other"), filepath.Join(dir, "target")
			if err := os.WriteFile(src, []byte("data"), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(src, c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(src, other); err != nil {
				t.Fatal(err)
			}
			m := newTreeMirror(dir, false)
			defer m.finish()
			if c.taken {
				if err := m.moveFile(other, filepath.Join(dir, "first"), c.executable); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.moveFile(src, target, c.executable); err != nil {
				t.Fatal(err)
			}
			a, err := os.Stat(target)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.Stat(filepath.Join(dir, map[bool]string{false: "other", true: "first"}[c.taken]))
			if err != nil {
				t.Fatal(err)
			}
			if got := os.SameFile(a, b); got != c.moved {
				t.Errorf("moved (one file with the other name): %v, want %v", got, c.moved)
			}
			if data, err := os.ReadFile(target); err != nil || string(data) != "data" {
				t.Errorf("target holds %q (%v)", data, err)
			}
		})
	}
}
