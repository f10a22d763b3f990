package detect

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestSystemPackages(t *testing.T) {
	app := map[string]string{"app.py": seedApp, "requirements.txt": "flask\n"}
	with := func(extra map[string]string) map[string]string { return union(app, extra) }
	for _, tc := range []struct {
		name   string
		files  map[string]string
		want   []string
		source string
		err    []string
	}{
		{"none", app, nil, "", nil},
		{"Aptfile", with(map[string]string{"Aptfile": "# tools\njq\n\ngraphviz libmagic1  # two more\njq\n"}), []string{"graphviz", "jq", "libmagic1"}, "Aptfile", nil},
		{"config wins", with(map[string]string{"Aptfile": "jq\n", "pyship.toml": "\napt = [\"libpq5\"]\n"}), []string{"libpq5"}, "pyship.toml:2", nil},
		{"deb URL", with(map[string]string{"Aptfile": "jq\nhttps://example.com/x.deb\n"}), nil, "", []string{"Aptfile:2", ".deb file or URL"}},
		{"extra repository", with(map[string]string{"Aptfile": ":repo:deb http://x stable main\n"}), nil, "", []string{"Aptfile:1", ":repo:"}},
		{"bad name", with(map[string]string{"Aptfile": "jq\nRm;-rf\n"}), nil, "", []string{"Aptfile:2", "not a Debian package name"}},
		{"bad name in config", with(map[string]string{"pyship.toml": "apt = [\"jq\", \"$(reboot)\"]\n"}), nil, "", []string{"pyship.toml:1", "not a Debian package name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Detect(context.Background(), files(tc.files), Options{})
			if tc.err != nil {
				if err == nil {
					t.Fatalf("no error, system %+v", res.System)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == nil && res.System != nil:
				t.Errorf("system %+v, want none", res.System)
			case tc.want != nil && (res.System == nil || !slices.Equal(res.System.Packages, tc.want) || res.System.Source != tc.source):
				t.Errorf("system %+v, want %q from %s", res.System, tc.want, tc.source)
			}
		})
	}
}

func TestEmptyWheel(t *testing.T) {
	const poetry = "[tool.poetry]\nname = \"rocky-app\"\nversion = \"0.1.0\"\n\n[build-system]\nrequires = [\"poetry-core\"]\nbuild-backend = \"poetry.core.masonry.api\"\n"
	const hatch = "[project]\nname = \"hello-app\"\nversion = \"1\"\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		empty bool
	}{
		{"poetry, app.py only", map[string]string{"pyproject.toml": poetry, "app.py": ""}, true},
		{"poetry, a package of the name", map[string]string{"pyproject.toml": poetry, "rocky_app/__init__.py": ""}, false},
		{"poetry, packages configured", map[string]string{"pyproject.toml": poetry + "packages = [{include = \"web\"}]\n", "web/__init__.py": ""}, false},
		{"poetry's old backend, another package", map[string]string{"pyproject.toml": strings.Replace(poetry, "poetry.core.masonry.api", "poetry.masonry.api", 1), "rocky/__init__.py": "", "main.py": ""}, true},
		{"hatchling, app.py only", map[string]string{"pyproject.toml": hatch, "app.py": ""}, true},
		{"hatchling, src layout", map[string]string{"pyproject.toml": hatch, "src/hello_app/__init__.py": ""}, false},
		{"hatchling, a module of the name", map[string]string{"pyproject.toml": hatch, "hello_app.py": ""}, false},
		{"hatchling, configured", map[string]string{"pyproject.toml": hatch + "[tool.hatch.build.targets.wheel]\npackages = [\"app\"]\n", "app/__init__.py": ""}, false},
		{"setuptools finds what it finds", map[string]string{"pyproject.toml": strings.Replace(hatch, "hatchling.build", "setuptools.build_meta", 1), "app.py": ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proj, err := readProject(files(tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if got := proj.noPackage != ""; got != tc.empty {
				t.Errorf("noPackage = %q, want empty wheel %v", proj.noPackage, tc.empty)
			}
		})
	}
}
