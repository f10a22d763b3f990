package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
