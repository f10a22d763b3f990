package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pyship/pyship/publish"
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
			env:  map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "ab/cdefgh", "GITHUB_EVENT_NAME": "push"},
			want: []string{"GITHUB_SHA", `"sha-ab/cdef"`, rule}},
		{name: "a whole reference as a tag", image: "registry.example.com/app", tags: []string{"registry.example.com/app:v2"},
			want: []string{"--tag", "whole image reference", `"v2"`, "--image"}},
		{name: "a repository as a tag", image: "registry.example.com/app", tags: []string{"registry.example.com/other"},
			want: []string{"--tag", "is an image reference, not a tag", `"registry.example.com/other"`}},
		{name: "a whole reference as the Action's tag", image: "registry.example.com/app", tags: []string{"ghcr.io/o/app:v2"},
			env:  map[string]string{"PYSHIP_ACTION": "true"},
			want: []string{"the input tags", "whole image reference", `"v2"`, "the input image"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GITHUB_ACTIONS", "")
			t.Setenv("PYSHIP_ACTION", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ref, err := name.ParseReference(tc.image)
			if err != nil {
				t.Fatal(err)
			}
			err = checkTags(ref, tc.tags, readCIRun().tags(latestNever))
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

// TestCITags: the tags a run adds, by event. A pull request of any kind, a merge queue
// and other events that run base-branch code on someone else's behalf never get the
// branch's tag; a version tag gets its semver variants; latest comes only when asked.
func TestCITags(t *testing.T) {
	const sha = "0123456789abcdef"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		payload string
		latest  latestMode
		want    string
	}{
		{name: "not in actions", env: map[string]string{"GITHUB_ACTIONS": "", "GITHUB_SHA": sha}},
		{name: "not in actions, latest asked", env: map[string]string{"GITHUB_ACTIONS": ""}, latest: latestAlways, want: "latest"},
		{name: "push to a branch", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/feature/x"},
			want: "sha-0123456,feature-x"},
		{name: "push, no GITHUB_REF", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "main"},
			want: "sha-0123456,main"},
		{name: "push to the default branch, latest off", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"},
			payload: `{"repository":{"default_branch":"main"}}`, want: "sha-0123456,main"},
		{name: "push to the default branch, latest on it", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"},
			payload: `{"repository":{"default_branch":"main"}}`, latest: latestDefaultBranch, want: "sha-0123456,main,latest"},
		{name: "push to another branch, latest on the default", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/dev"},
			payload: `{"repository":{"default_branch":"main"}}`, latest: latestDefaultBranch, want: "sha-0123456,dev"},
		{name: "push, latest always", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/dev"},
			latest: latestAlways, want: "sha-0123456,dev,latest"},
		{name: "version tag", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.3"},
			want: "sha-0123456,v1.2.3,1.2.3,1.2,1"},
		{name: "version tag without v", env: map[string]string{"GITHUB_EVENT_NAME": "release", "GITHUB_REF": "refs/tags/2.10.0"},
			want: "sha-0123456,2.10.0,2.10,2"},
		{name: "pre-release", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.3-rc.1"},
			want: "sha-0123456,v1.2.3-rc.1,1.2.3-rc.1"},
		{name: "major zero", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v0.4.1"},
			want: "sha-0123456,v0.4.1,0.4.1,0.4"},
		{name: "a tag that is no version", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/release-2026"},
			want: "sha-0123456,release-2026"},
		{name: "build metadata", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.3+linux"},
			want: "sha-0123456,v1.2.3-linux"},
		{name: "a leading zero is no version", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.02.3"},
			want: "sha-0123456,v1.02.3"},
		{name: "pull request", env: map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge"},
			want: "sha-0123456,pr-42"},
		{name: "pull request from a fork, payload", env: map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/42/merge"},
			payload: `{"number":42,"pull_request":{"head":{"repo":{"fork":true}}},"repository":{"default_branch":"main"}}`,
			latest:  latestDefaultBranch, want: "sha-0123456,pr-42"},
		{name: "pull_request_target", env: map[string]string{"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_REF": "refs/heads/main"},
			payload: `{"number":7,"repository":{"default_branch":"main"}}`, latest: latestDefaultBranch, want: "pr-7"},
		{name: "merge queue", env: map[string]string{"GITHUB_EVENT_NAME": "merge_group", "GITHUB_REF": "refs/heads/gh-readonly-queue/main/pr-7-abc"},
			payload: `{"repository":{"default_branch":"main"}}`, latest: latestDefaultBranch, want: "sha-0123456"},
		{name: "workflow_run", env: map[string]string{"GITHUB_EVENT_NAME": "workflow_run", "GITHUB_REF": "refs/heads/main"},
			payload: `{"repository":{"default_branch":"main"}}`, latest: latestDefaultBranch},
		{name: "issue comment", env: map[string]string{"GITHUB_EVENT_NAME": "issue_comment", "GITHUB_REF": "refs/heads/main"}},
		{name: "a payload that cannot be read", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"},
			payload: `{not json`, latest: latestDefaultBranch, want: "sha-0123456,main"},
		{name: "a long branch", env: map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/" + strings.Repeat("a", 126) + "/.b"},
			want: "sha-0123456," + strings.Repeat("a", 126)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"GITHUB_REF", "GITHUB_REF_NAME", "GITHUB_EVENT_PATH"} {
				t.Setenv(k, "")
			}
			t.Setenv("GITHUB_ACTIONS", "true")
			t.Setenv("GITHUB_SHA", sha)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.payload != "" {
				p := filepath.Join(t.TempDir(), "event.json")
				if err := os.WriteFile(p, []byte(tc.payload), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Setenv("GITHUB_EVENT_PATH", p)
			}
			latest := tc.latest
			if latest == "" {
				latest = latestNever
			}
			if got := strings.Join(readCIRun().tags(latest), ","); got != tc.want {
				t.Errorf("tags = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLatestFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want latestMode
		err  bool
	}{
		{nil, latestNever, false},
		{[]string{"--latest"}, latestAlways, false},
		{[]string{"--latest=default-branch"}, latestDefaultBranch, false},
		{[]string{"--latest=false"}, latestNever, false},
		{[]string{"--latest=yes"}, "", true},
	} {
		var f publishFlags
		fs := flag.NewFlagSet("publish", flag.ContinueOnError)
		f.register(fs)
		_, err := parse(fs, tc.args)
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v", tc.args, err)
			continue
		}
		if !tc.err && latestMode(f.latest.String()) != tc.want {
			t.Errorf("%q: latest %q, want %q", tc.args, f.latest.String(), tc.want)
		}
	}
}

// TestNoTagIsNoLatest: an image named without a tag gets no tag from the parser's
// default, latest; with nothing else to tag, a push is a usage error that says how to add one.
func TestNoTagIsNoLatest(t *testing.T) {
	for _, image := range []string{"registry.example.com/app", "127.0.0.1:5000/team/app", "registry.example.com/app@sha256:" + strings.Repeat("a", 64)} {
		ref, err := name.ParseReference(image)
		if err != nil {
			t.Fatal(err)
		}
		if tag, ok := publish.ExplicitTag(ref); ok {
			t.Errorf("%s: tag %q, want none", image, tag)
		}
		if got := strings.Join((&publish.Registry{Ref: ref}).TagNames(), ","); got != "" {
			t.Errorf("%s: tags %q, want none", image, got)
		}
	}
	for _, image := range []string{"registry.example.com/app:latest", "127.0.0.1:5000/team/app:v1"} {
		ref, err := name.ParseReference(image)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := publish.ExplicitTag(ref); !ok {
			t.Errorf("%s: no tag", image)
		}
	}
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("PYSHIP_ACTION", "")
	err := noTagError("registry.example.com/app")
	if code := exitCode(err); code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	for _, want := range []string{`"registry.example.com/app"`, "latest included", "--tag TAG", "registry.example.com/app:TAG"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not say %q", err, want)
		}
	}
	t.Setenv("PYSHIP_ACTION", "true")
	if err := noTagError("ghcr.io/o/app"); !strings.Contains(err.Error(), "the input tags") || !strings.Contains(err.Error(), "push: false") {
		t.Errorf("in the Action, %v does not name the inputs", err)
	}
}

// TestLowerGitHubNames: in GitHub Actions, the capitals that GitHub's names bring into an
// image's repository are lowered (the tag keeps its case); other capitals are an error
// that names the setting and gives the lower-case name.
func TestLowerGitHubNames(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_REPOSITORY", "Octo-Org/Hello-World")
	t.Setenv("GITHUB_REPOSITORY_OWNER", "Octo-Org")
	t.Setenv("GITHUB_ACTOR", "MonaLisa")
	for in, want := range map[string]string{
		"ghcr.io/Octo-Org/Hello-World":              "ghcr.io/octo-org/hello-world",
		"ghcr.io/Octo-Org/Hello-World:Release-1":    "ghcr.io/octo-org/hello-world:Release-1",
		"127.0.0.1:5000/Octo-Org/api:v1":            "127.0.0.1:5000/octo-org/api:v1",
		"ghcr.io/MonaLisa/tools/Hello-World@sha256": "ghcr.io/monalisa/tools/hello-world@sha256",
		"ghcr.io/Octo-Org/MyApp:v1":                 "ghcr.io/octo-org/MyApp:v1",
	} {
		if got := lowerGitHubNames(in); got != want {
			t.Errorf("lowerGitHubNames(%q) = %q, want %q", in, got, want)
		}
	}
	var f registryFlags
	ref, err := f.parseImage("--image", "image", "ghcr.io/Octo-Org/Hello-World:v1")
	if err != nil || ref.String() != "ghcr.io/octo-org/hello-world:v1" {
		t.Errorf("parseImage: %v, %v", ref, err)
	}
	t.Setenv("PYSHIP_ACTION", "true")
	_, err = f.parseImage("--image", "image", "ghcr.io/Octo-Org/MyApp:v1")
	for _, want := range []string{"the input image", `"ghcr.io/Octo-Org/MyApp:v1"`, "lower case", `"ghcr.io/octo-org/myapp:v1"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("PYSHIP_ACTION", "")
	if got := lowerGitHubNames("ghcr.io/Octo-Org/Hello-World"); got != "ghcr.io/Octo-Org/Hello-World" {
		t.Errorf("outside GitHub Actions, lowerGitHubNames changed the name: %q", got)
	}
	_, err = f.parseImage("--image", "image", "ghcr.io/Octo-Org/Hello-World")
	if err == nil || !strings.Contains(err.Error(), "--image") || exitCode(err) != exitUsage {
		t.Errorf("outside GitHub Actions: %v", err)
	}
}
