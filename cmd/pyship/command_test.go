package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pyship/pyship/sandbox"
)

func TestUnknownCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tset"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		name, arg, want string
	}{
		{name: "typo of publish", arg: "pubish", want: `did you mean "publish"`},
		{name: "typo of plan", arg: "paln", want: `did you mean "plan"`},
		{name: "an existing directory named like a typo", arg: "tset"},
		{name: "a path", arg: "./myapp"},
		{name: "a flag", arg: "--image"},
		{name: "a name far from every command", arg: "myservice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := unknownCommand(tc.arg)
			if tc.want == "" {
				if err != nil {
					t.Errorf("unknownCommand(%q): %v, want nothing", tc.arg, err)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("unknownCommand(%q): %v, want a usage error saying %s", tc.arg, err, tc.want)
			}
		})
	}
}

// TestTestImageFlag: pyship test names the image to test --from; --image, which build and
// publish use to name the result, still works as its deprecated alias.
func TestTestImageFlag(t *testing.T) {
	cache := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"from", []string{"--from", "::not a ref"}, `--from "::not a ref" is neither a directory nor an image reference`},
		{"image, the deprecated alias", []string{"--image", "::not a ref"}, `--from "::not a ref" is neither a directory nor an image reference`},
		{"both, naming two images", []string{"--from", "a", "--image", "b"}, "name two images"},
		{"credentials without an image to pull", []string{"--username", "u", "--password-stdin"}, "go with --from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runTest(t.Context(), append([]string{"--cache-dir", cache}, tc.args...))
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("pyship test %q: %v, want a usage error saying %s", tc.args, err, tc.want)
			}
		})
	}
}

// TestSmokeFlagsAreShared: pyship test and pyship publish take the same smoke overrides.
func TestSmokeFlagsAreShared(t *testing.T) {
	names := func(register func(*flag.FlagSet)) map[string]bool {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		register(fs)
		got := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { got[f.Name] = true })
		return got
	}
	var sf smokeFlags
	smoke := names(sf.register)
	var pf publishFlags
	publish := names(pf.register)
	for _, n := range []string{"path", "status", "body", "timeout", "header"} {
		if !smoke[n] || !publish[n] {
			t.Errorf("--%s: in the smoke flags %v, in publish's %v", n, smoke[n], publish[n])
		}
	}
	check := sandbox.Check{Path: "/", Status: 200, Timeout: time.Second, Headers: map[string]string{"A": "1"}}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	sf.register(fs)
	if err := fs.Parse([]string{"--path", "/health", "--body", "ok", "--timeout", "2m", "--header", "B=2"}); err != nil {
		t.Fatal(err)
	}
	sf.apply(&check)
	want := sandbox.Check{Path: "/health", Status: 200, Body: "ok", Timeout: 2 * time.Minute, Headers: map[string]string{"A": "1", "B": "2"}}
	if !reflect.DeepEqual(check, want) {
		t.Errorf("check %+v, want %+v", check, want)
	}
}
