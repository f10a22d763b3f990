package detect

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRequirementsOutsideRepository(t *testing.T) {
	hint := "vendor"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string // error; nil for none
		local []string
	}{
		{name: "parent directory", files: map[string]string{"requirements.txt": "flask\n../pkg\n"}, want: []string{"requirements.txt:2", `"../pkg"`, "outside the repository", hint, "index"}},
		{name: "absolute path", files: map[string]string{"requirements.txt": "/opt/libs/pkg\n"}, want: []string{"requirements.txt:1", `"/opt/libs/pkg"`, "outside the repository"}},
		{name: "editable parent", files: map[string]string{"requirements.txt": "-e ../pkg\n"}, want: []string{"requirements.txt:1", "outside the repository"}},
		{name: "wheel up and out", files: map[string]string{"requirements.txt": "./libs/../../dist/pkg-1.0-py3-none-any.whl\n"}, want: []string{"requirements.txt:1", "outside the repository"}},
		{name: "path with extras", files: map[string]string{"requirements.txt": "../pkg[extra] ; python_version >= '3.11'\n"}, want: []string{"requirements.txt:1", "outside the repository"}},
		{name: "file url", files: map[string]string{"requirements.txt": "file:///opt/libs/pkg-1.0.tar.gz\n"}, want: []string{"requirements.txt:1", "file:", "outside the repository"}},
		{name: "name at file url", files: map[string]string{"requirements.txt": "pkg @ file:///opt/libs/pkg\n"}, want: []string{"requirements.txt:1", "file:", "outside the repository"}},
		{name: "included file climbs too far", files: map[string]string{"requirements.txt": "-r reqs/base.txt\n", "reqs/base.txt": "../../pkg\n"}, want: []string{"reqs/base.txt:1", "outside the repository"}},
		{name: "included file climbs to a sibling", files: map[string]string{"requirements.txt": "-r reqs/base.txt\n", "reqs/base.txt": "../libs/common\n", "libs/common/setup.py": ""}, local: []string{"libs/common"}},
		{name: "local path inside", files: map[string]string{"requirements.txt": "./libs/common\n", "libs/common/setup.py": ""}, local: []string{"libs/common"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := files(map[string]string{"app.py": seedApp})
			for k, v := range tc.files {
				fsys[k] = files(map[string]string{k: v})[k]
			}
			res, err := Detect(context.Background(), fsys, Options{})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(res.Dependencies.Local, tc.local) {
					t.Errorf("local %v, want %v", res.Dependencies.Local, tc.local)
				}
				return
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *detect.Error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestLocksOutsideRepository(t *testing.T) {
	uv := fixtureFS(t, "uv-lock", nil)
	for _, tc := range []struct {
		name, fixture string
		replace       map[string]string
		want          []string
	}{
		{"uv path source", "uv-lock", map[string]string{"uv.lock": strings.Replace(string(uv["uv.lock"].Data), `source = { registry = "https://pypi.org/simple" }`, `source = { path = "../shared/annotated-types" }`, 1)},
			[]string{"uv.lock", `"../shared/annotated-types"`, "outside the repository"}},
		{"pylock directory", "pylock", map[string]string{"pylock.toml": "lock-version = \"1.0\"\n[[packages]]\nname = \"lib\"\ndirectory = { path = \"/opt/lib\" }\n"},
			[]string{"pylock.toml", `"/opt/lib"`, "outside the repository"}},
		{"pipfile path", "pipenv-lock", map[string]string{"Pipfile.lock": `{"default": {"lib": {"path": "../lib"}}}`, "Pipfile": "[packages]\n"},
			[]string{"Pipfile.lock", `"../lib"`, "outside the repository"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(context.Background(), fixtureFS(t, tc.fixture, tc.replace), Options{})
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *detect.Error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestAbsoluteIncludeIsNamed(t *testing.T) {
	fsys := fstest.MapFS{
		"app.py":           {Data: []byte("from flask import Flask\napp = Flask(__name__)\n")},
		"requirements.txt": {Data: []byte("-r /etc/secret-requirements.txt\nflask\n")},
	}
	_, err := Detect(context.Background(), fsys, Options{})
	if err == nil || !strings.Contains(err.Error(), "requirements.txt:1") || !strings.Contains(err.Error(), "absolute path outside the repository") {
		t.Errorf("an absolute -r: %v, want requirements.txt:1 naming an absolute path outside the repository", err)
	}
}
