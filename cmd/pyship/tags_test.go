package main

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestCheckTags(t *testing.T) {
	const rule = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
	for _, tc := range []struct {
		name  string
		image string
		tags  []string
		env   map[string]string
		want  []string // in the error; none: no error
	}{
		{name: "valid", image: "registry.example.com/app:v1", tags: []string{"stable", "_x", "1.0"}},
		{name: "no tag", image: "registry.example.com/app"},
		{name: "image tag starts with a dash", image: "registry.example.com/app:-lead",
			want: []string{"--image", `"registry.example.com/app:-lead"`, `"-lead"`, rule}},
		{name: "extra tag starts with a dot", image: "registry.example.com/app:v1", tags: []string{"ok", ".hidden"},
			want: []string{"--tag", `".hidden"`, rule}},
		{name: "extra tag too long", image: "registry.example.com/app", tags: []string{strings.Repeat("a", 129)},
			want: []string{"--tag", rule}},
		{name: "computed CI tag", image: "registry.example.com/app",
			env:  map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "ab/cdefgh"},
			want: []string{"GITHUB_SHA", `"sha-ab/cdef"`, rule}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GITHUB_ACTIONS", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ref, err := name.ParseReference(tc.image)
			if err != nil {
				t.Fatal(err)
			}
			err = checkTags(ref, tc.tags, ciTags())
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("checkTags: %v", err)
				}
				return
			}
			if code := exitCode(err); code != exitUsage {
				t.Errorf("exit code %d, want %d (%v)", code, exitUsage, err)
			}
			for _, want := range tc.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v does not say %q", err, want)
				}
			}
		})
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exitError); ok {
		return ee.code
	}
	return exitInternal
}
