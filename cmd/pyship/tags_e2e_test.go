//go:build linux && e2e

package main

import (
	"strings"
	"testing"
	"time"
)

// TestBadTagsNeverReachTheRegistry: an invalid tag is a usage error before anything is
// built or sent: the registry (a silent one, that would hang any request) sees no
// connection.
func TestBadTagsNeverReachTheRegistry(t *testing.T) {
	src := copyFixture(t, "stdlib-port")
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{name: "publish --image tag", args: []string{"publish", src, "--image", "SILENT/e2e/app:-lead"},
			want: []string{"--image", "-lead"}},
		{name: "publish --tag", args: []string{"publish", src, "--image", "SILENT/e2e/app:v1", "--tag", "ok", "--tag", ".hidden"},
			want: []string{"--tag", ".hidden"}},
		{name: "publish computed CI tag", args: []string{"publish", src, "--image", "SILENT/e2e/app:v1"},
			env:  []string{"GITHUB_ACTIONS=true", "GITHUB_SHA=ab/cdefgh", "GITHUB_REF_NAME=main", "GITHUB_EVENT_NAME=push"},
			want: []string{"GITHUB_SHA", "sha-ab/cdef"}},
		{name: "build --push --image tag", args: []string{"build", src, "--push", "--image", "SILENT/e2e/app:-lead"},
			want: []string{"--image", "-lead"}},
		{name: "build --image tag", args: []string{"build", src, "--image", "SILENT/e2e/app:-lead", "--base", "SILENT/library/python:3.13-slim"},
			want: []string{"--image", "-lead"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _, accepted := silentRegistry(t)
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "SILENT", addr)
			}
			r := startPyship(t, append(tc.env, "PYSHIP_CACHE_DIR="+t.TempDir(), "PYSHIP_REGISTRY_TIMEOUT=5s"), args...).wait(t, 30*time.Second)
			if r.code != exitUsage || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d", r.code, r.stdout, exitUsage)
			}
			for _, want := range append(tc.want, "not a valid tag", "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q", want)
				}
			}
			if strings.Contains(r.stderr, "planned") {
				t.Errorf("pyship planned a build before rejecting the tag")
			}
			if n := accepted(); n != 0 {
				t.Errorf("the registry got %d connections", n)
			}
		})
	}
}

// TestNoImpliedLatest: an image named without a tag, and no tag asked for, is a usage
// error before anything is built or sent, not a push of latest; pyship build --push too.
func TestNoImpliedLatest(t *testing.T) {
	src := copyFixture(t, "stdlib-port")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "publish", args: []string{"publish", src, "--image", "SILENT/e2e/app"}},
		{name: "build --push", args: []string{"build", src, "--push", "--image", "SILENT/e2e/app"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _, accepted := silentRegistry(t)
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "SILENT", addr)
			}
			r := startPyship(t, []string{"GITHUB_ACTIONS=", "PYSHIP_CACHE_DIR=" + t.TempDir(), "PYSHIP_REGISTRY_TIMEOUT=5s"}, args...).wait(t, 30*time.Second)
			if r.code != exitUsage || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want %d", r.code, r.stdout, exitUsage)
			}
			for _, want := range []string{"names no tag", "latest included", "--tag TAG"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
				}
			}
			if n := accepted(); n != 0 {
				t.Errorf("the registry got %d connections", n)
			}
		})
	}
}
