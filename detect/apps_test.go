package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-containerregistry/pkg/name"
)

// app is a Flask app in dir, as files: a dependency file and an entry point.
func app(dir string) map[string]string {
	return map[string]string{path.Join(dir, "requirements.txt"): "flask==3.1.0\n", path.Join(dir, "app.py"): seedApp}
}

// tree is the union of file sets, as an fs.FS.
func tree(sets ...map[string]string) fstest.MapFS {
	all := map[string]string{}
	for _, s := range sets {
		for k, v := range s {
			all[k] = v
		}
	}
	return files(all)
}

func TestFindApps(t *testing.T) {
	three := []map[string]string{app("services/api"), app("services/web"), app("tools/status")}
	for _, tc := range []struct {
		name    string
		fsys    fstest.MapFS
		ignored func(string, bool) bool
		want    []App
	}{
		{
			name: "apps beside trees that are no apps",
			fsys: tree(append(three,
				app("tests"), app("test/fake"), app("examples/demo"), app("example"), app("docs/tutorial"),
				app("vendor/lib"), app("third_party/lib"), app("node_modules/x"), app("services/api2/site-packages/x"),
				app(".github/bot"), app("env"), map[string]string{"env/pyvenv.cfg": "home = /usr/bin\n"},
				// A library: a dependency file and no entry point.
				map[string]string{"libs/common/pyproject.toml": "[project]\nname = \"common\"\nversion = \"1\"\n", "libs/common/src/common/__init__.py": ""},
				// Code without a dependency file.
				map[string]string{"scripts/migrate.py": "print('hi')\n"},
			)...),
			want: []App{{Path: "services/api", Name: "api"}, {Path: "services/web", Name: "web"}, {Path: "tools/status", Name: "status"}},
		},
		{
			name: "an app inside an app is the outer app's",
			fsys: tree(app("services/api"), app("services/api/admin")),
			want: []App{{Path: "services/api", Name: "api"}},
		},
		{
			name: "the root is an app",
			fsys: tree(app("."), app("worker")),
			want: []App{{Path: ".", Name: "app"}},
		},
		{
			name: "ignore files leave a tree out",
			fsys: tree(three...),
			ignored: func(rel string, isDir bool) bool {
				return rel == "tools" && isDir
			},
			want: []App{{Path: "services/api", Name: "api"}, {Path: "services/web", Name: "web"}},
		},
		{
			name: "include brings back a skipped tree, a nested app and a deep one",
			fsys: tree(append(three, app("examples/demo"), app("services/api/admin"), app("a/b/c/d/e/f/g"),
				map[string]string{"pyship.toml": "[matrix]\ninclude = [\"examples/*\", \"services/api/admin\", \"a/b/c/d/e/f/g\"]\n"})...),
			want: []App{
				{Path: "a/b/c/d/e/f/g", Name: "g"}, {Path: "examples/demo", Name: "demo"}, {Path: "services/api", Name: "api"},
				{Path: "services/api/admin", Name: "admin"}, {Path: "services/web", Name: "web"}, {Path: "tools/status", Name: "status"},
			},
		},
		{
			name: "a pattern takes the apps among what it matches",
			fsys: tree(app("services/api"), app("examples/one"), app("examples/two"),
				map[string]string{"examples/README.md": "# examples\n", "examples/data/x.csv": "1\n", "pyship.toml": "[matrix]\ninclude = [\"examples/*\"]\n"}),
			want: []App{{Path: "examples/one", Name: "one"}, {Path: "examples/two", Name: "two"}, {Path: "services/api", Name: "api"}},
		},
		{
			name: "too deep without include",
			fsys: tree(app("a/b/c/d/e/f/g"), app("a/b/c/d/e/f")),
			want: []App{{Path: "a/b/c/d/e/f", Name: "f"}},
		},
		{
			name: "exclude by path and by pattern",
			fsys: tree(append(three, app("services/legacy"), map[string]string{"pyship.toml": "[matrix]\nexclude = [\"services/legacy\", \"tools/*\"]\n"})...),
			want: []App{{Path: "services/api", Name: "api"}, {Path: "services/web", Name: "web"}},
		},
		{
			name: "configured in pyproject.toml",
			fsys: tree(append(three, map[string]string{"pyproject.toml": "[project]\nname = \"mono\"\nversion = \"1\"\n\n[tool.pyship.matrix]\nexclude = [\"services\"]\n"})...),
			want: []App{{Path: "tools/status", Name: "status"}},
		},
		{
			name: "names that collide are told apart by their paths",
			fsys: tree(app("services/api"), app("tools/api"), app("services/My App_v2")),
			want: []App{{Path: "services/My App_v2", Name: "my-app_v2"}, {Path: "services/api", Name: "services-api"}, {Path: "tools/api", Name: "tools-api"}},
		},
		{
			name: "nothing to find",
			fsys: tree(app("tests"), map[string]string{"README.md": "hi\n"}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindApps(context.Background(), tc.fsys, FindOptions{Ignored: tc.ignored})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("found %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFindAppsLinks: a link to an app's directory is not searched, so the app is not
// found twice, nor is a tree outside the root reached.
func TestFindAppsLinks(t *testing.T) {
	fsys := tree(app("services/api"))
	fsys["linked"] = &fstest.MapFile{Data: []byte("services"), Mode: fs.ModeSymlink}
	fsys["out"] = &fstest.MapFile{Data: []byte("../../elsewhere"), Mode: fs.ModeSymlink}
	got, err := FindApps(context.Background(), fsys, FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []App{{Path: "services/api", Name: "api"}}; !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
}

// TestFindAppsEntryLimit: a tree too wide to search is an error, not a matrix that
// silently misses apps.
func TestFindAppsEntryLimit(t *testing.T) {
	fsys := tree(app("services/api"))
	for i := range MaxAppEntries {
		fsys[fmt.Sprintf("data/%06d.csv", i)] = &fstest.MapFile{}
	}
	_, err := FindApps(context.Background(), fsys, FindOptions{})
	var de *Error
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "more than") || !strings.Contains(err.Error(), "[matrix] exclude") {
		t.Fatalf("got %v, want an *Error about the limit that names [matrix] exclude", err)
	}
}

func TestFindAppsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want []string
	}{
		{
			name: "include outside the root",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "# apps\n[matrix]\ninclude = [\"../other\"]\n"}),
			want: []string{"pyship.toml:3", "matrix.include", `"../other"`},
		},
		{
			name: "absolute exclude",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "[matrix]\nexclude = [\"/srv/app\"]\n"}),
			want: []string{"pyship.toml:2", "matrix.exclude", "absolute"},
		},
		{
			name: "bad pattern",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "[matrix]\n\nexclude = [\"services/[\"]\n"}),
			want: []string{"pyship.toml:3", "not a valid pattern"},
		},
		{
			name: "unknown key",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "[matrix]\nincludes = [\"x\"]\n"}),
			want: []string{"pyship.toml:2", `unknown key "matrix.includes"`, `did you mean "include"`},
		},
		{
			name: "a string, not a list",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "[matrix]\ninclude = \"x\"\n"}),
			want: []string{"pyship.toml", "include"},
		},
		{
			name: "include names nothing",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "[matrix]\ninclude = [\"examples/gone\"]\n"}),
			want: []string{"pyship.toml:2", `"examples/gone" names no directory`},
		},
		{
			name: "a pattern that matches no app",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "[matrix]\ninclude = [\"examples/*\"]\n", "examples/README.md": "# examples\n"}),
			want: []string{"pyship.toml:2", `"examples/*" matches no directory that holds an app`},
		},
		{
			name: "include names no app",
			fsys: tree(app("api"), map[string]string{"pyship.toml": "[matrix]\ninclude = [\"docs\"]\n", "docs/index.md": "# docs\n"}),
			want: []string{"pyship.toml:2", `"docs" is no app pyship can build`, "no Python application found"},
		},
		{
			name: "an app detection refuses",
			fsys: tree(app("services/api"), app("services/web"), map[string]string{"services/web/.python-version": "banana\n"}),
			want: []string{"services/web/.python-version:1", "not a CPython version", `exclude = ["services/web"]`},
		},
		{
			name: "names that cannot be told apart",
			fsys: tree(app("x/Api"), app("x/api")),
			want: []string{`"x/Api" and "x/api"`, `"x-api"`, "rename"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apps, err := FindApps(context.Background(), tc.fsys, FindOptions{})
			if err == nil {
				t.Fatalf("found %v, want an error", apps)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestFindAppsCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FindApps(ctx, tree(app("api")), FindOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestImageName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"api", "api"},
		{"API", "api"},
		{"my_app", "my_app"},
		{"my__app", "my__app"},
		{"my___app", "my-app"},
		{"v1.2", "v1.2"},
		{"a..b", "a-b"},
		{"services/api", "services-api"},
		{"-leading and trailing-", "leading-and-trailing"},
		{"café", "caf"},
		{".", "app"},
		{"___", "app"},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{strings.Repeat("a", 64), strings.Repeat("a", 54) + "-ffe054fe"},
	} {
		if got := imageName(tc.in); got != tc.want {
			t.Errorf("imageName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzImageName: whatever a directory is called, its name is valid as the last component
// of an image's repository.
func FuzzImageName(f *testing.F) {
	for _, s := range []string{"api", "My App", "a..b", "__x__", "-", "службы", "a/b/c", "x_-_y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := imageName(s)
		if _, err := name.NewRepository("registry.example/team/"+n, name.StrictValidation); err != nil {
			t.Errorf("imageName(%q) = %q: %v", s, n, err)
		}
	})
}
