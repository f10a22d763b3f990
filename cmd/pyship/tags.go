package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pyship/pyship/publish"
)

// ciRun is what GitHub Actions says about a run, as far as the tags it gets go. It is read
// from the environment and the event's payload by readCIRun, so that tag computation is a
// pure function of it.
type ciRun struct {
	// event is GITHUB_EVENT_NAME; ref GITHUB_REF (refs/heads/..., refs/tags/...); sha
	// GITHUB_SHA.
	event, ref, sha string
	// defaultBranch is the repository's, and pr the pull request's number, from the
	// event's payload (0: none).
	defaultBranch string
	pr            int
}

// refEvents are the events whose GITHUB_REF and GITHUB_SHA are what a default checkout
// builds, and were pushed by someone with write access: only they give the branch or tag
// name. pull_request_target, workflow_run and comment events run on the base branch's ref
// and commit for code that may come from elsewhere; merge_group runs on a temporary
// gh-readonly-queue/... branch; pull_request on refs/pull/N/merge.
var refEvents = map[string]bool{
	"push": true, "release": true, "workflow_dispatch": true, "schedule": true, "repository_dispatch": true,
}

// shaEvents are the events whose GITHUB_SHA is the commit a default checkout builds: the
// merge commit of a pull request or a merge queue's, besides the ref events'.
var shaEvents = map[string]bool{"pull_request": true, "merge_group": true}

// prEvents give a pr-N tag.
var prEvents = map[string]bool{"pull_request": true, "pull_request_target": true}

// readCIRun reads the run's facts in GitHub Actions; elsewhere it returns nil.
func readCIRun() *ciRun {
	if os.Getenv("GITHUB_ACTIONS") != "true" {
		return nil
	}
	r := &ciRun{event: os.Getenv("GITHUB_EVENT_NAME"), ref: os.Getenv("GITHUB_REF"), sha: os.Getenv("GITHUB_SHA")}
	if r.ref == "" {
		// Without GITHUB_REF, GITHUB_REF_NAME alone: a branch, as pyship took it before.
		if n := os.Getenv("GITHUB_REF_NAME"); n != "" {
			r.ref = "refs/heads/" + n
		}
	}
	var payload struct {
		Number     int `json:"number"`
		Repository struct {
			DefaultBranch string `json:"default_branch"`
		} `json:"repository"`
	}
	if p := os.Getenv("GITHUB_EVENT_PATH"); p != "" {
		// The payload only adds facts: one that cannot be read adds none.
		if b, err := os.ReadFile(p); err == nil && len(b) < 64<<20 {
			_ = json.Unmarshal(b, &payload)
		}
	}
	r.defaultBranch, r.pr = payload.Repository.DefaultBranch, payload.Number
	if r.pr == 0 && r.event == "pull_request" {
		if n, ok := strings.CutPrefix(r.ref, "refs/pull/"); ok {
			r.pr, _ = strconv.Atoi(strings.TrimSuffix(n, "/merge"))
		}
	}
	return r
}

// latestMode says when the tag latest is set: never (the default), always, or on a ref
// event on the repository's default branch. It is a flag that may be given bare
// (--latest) or with a value (--latest=default-branch).
type latestMode string

const (
	latestNever         latestMode = "false"
	latestAlways        latestMode = "true"
	latestDefaultBranch latestMode = "default-branch"
)

func (m *latestMode) String() string {
	if m == nil || *m == "" {
		return string(latestNever)
	}
	return string(*m)
}

func (m *latestMode) Set(v string) error {
	switch latestMode(v) {
	case latestNever, latestAlways, latestDefaultBranch:
		*m = latestMode(v)
		return nil
	}
	return fmt.Errorf("%q: want true, false or default-branch", v)
}

func (m *latestMode) IsBoolFlag() bool { return true }

// tags are the tags a run adds beyond the ones asked for by name: the short commit, the
// branch or tag name (a version tag with its semver variants), pr-N on pull requests, and
// latest when latest says so. Outside CI (r nil) only latest can be added.
func (r *ciRun) tags(latest latestMode) []string {
	tags := r.refTags(latest == latestDefaultBranch)
	if latest == latestAlways {
		tags = append(tags, "latest")
	}
	var out []string
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// refTags are the tags the run's event, ref and commit give, with latest on the default
// branch when latestOnDefault.
func (r *ciRun) refTags(latestOnDefault bool) []string {
	if r == nil {
		return nil
	}
	var tags []string
	if (refEvents[r.event] || shaEvents[r.event]) && len(r.sha) >= 7 {
		tags = append(tags, "sha-"+r.sha[:7])
	}
	if prEvents[r.event] && r.pr > 0 {
		tags = append(tags, "pr-"+strconv.Itoa(r.pr))
	}
	if !refEvents[r.event] {
		return tags
	}
	if branch, ok := strings.CutPrefix(r.ref, "refs/heads/"); ok {
		if t := tagFromName(branch); t != "" {
			tags = append(tags, t)
		}
		if latestOnDefault && r.defaultBranch != "" && branch == r.defaultBranch {
			tags = append(tags, "latest")
		}
	}
	if tag, ok := strings.CutPrefix(r.ref, "refs/tags/"); ok {
		if t := tagFromName(tag); t != "" {
			tags = append(tags, t)
		}
		tags = append(tags, semverTags(tag)...)
	}
	return tags
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// tagFromName makes a branch or git tag name a valid image tag: '/' and other characters
// a tag cannot hold become '-', and it is cut to 128 characters.
func tagFromName(n string) string {
	t := strings.Trim(tagUnsafe.ReplaceAllString(n, "-"), "-.")
	if len(t) > 128 {
		t = strings.TrimRight(t[:128], "-.")
	}
	return t
}

// semverRe is a version tag: vMAJOR.MINOR.PATCH, with an optional pre-release. Build
// metadata (+...) cannot be in an image tag and gives no variants.
var semverRe = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)

// semverTags are a version tag's variants: v1.2.3 gives 1.2.3, 1.2 and 1, so that users
// can follow a major or minor line. A pre-release (v1.2.3-rc.1) gives only its own version
// (1.2.3-rc.1): it must not move a line's tag. Major version 0 promises no compatibility
// between minors: v0.4.1 gives 0.4.1 and 0.4, not 0.
func semverTags(tag string) []string {
	m := semverRe.FindStringSubmatch(tag)
	if m == nil {
		return nil
	}
	version := m[1] + "." + m[2] + "." + m[3]
	if m[4] != "" {
		return []string{version + m[4]}
	}
	out := []string{version, m[1] + "." + m[2]}
	if m[1] != "0" {
		out = append(out, m[1])
	}
	return out
}

// explicitTag returns the tag image names, if it names one: the ":TAG" after its last
// '/' (a ':' before it is a registry's port), before any "@DIGEST".
func explicitTag(image string) (string, bool) {
	image, _, _ = strings.Cut(image, "@")
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	return tag, ok
}

// checkTags fails with a usage error when the image's tag, a --tag, or a tag computed in
// CI is not a valid tag, before anything is built or sent: a registry refuses such a tag
// only after the manifest is in. A --tag that is a whole reference is named as such.
func checkTags(ref name.Reference, tags, ci []string) error {
	if t, ok := ref.(name.Tag); ok {
		if err := publish.CheckTag(t.TagStr()); err != nil {
			return usagef("%s %q: %v", option("--image", "image"), ref.String(), err)
		}
	}
	for _, t := range tags {
		if r, err := name.ParseReference(t); err == nil && strings.ContainsAny(t, "/:@") {
			if tag, ok := publish.ExplicitTag(r); ok {
				return usagef("%s: %q is a whole image reference; give only the tag, %q (the repository is %s's)",
					option("--tag", "tags"), t, tag, option("--image", "image"))
			}
			return usagef("%s: %q is an image reference, not a tag; give tag names like v1 (the repository is %s's)",
				option("--tag", "tags"), t, option("--image", "image"))
		}
		if err := publish.CheckTag(t); err != nil {
			return usagef("%s: %v", option("--tag", "tags"), err)
		}
	}
	for _, t := range ci {
		if err := publish.CheckTag(t); err != nil {
			return usagef("the CI tag made from GITHUB_SHA and GITHUB_REF: %v", err)
		}
	}
	return nil
}

// lowerGitHubNames lower-cases the parts of image's repository that come from GitHub's
// names: an owner or repository name, as github.repository gives them, keeps the
// capitals that registries refuse in a repository ("ghcr.io/${{ github.repository }}"
// with owner Octo-Org). A part with capitals that is none of GitHub's names stays, for
// the reference parser to refuse. It returns image unchanged outside GitHub Actions.
func lowerGitHubNames(image string) string {
	if os.Getenv("GITHUB_ACTIONS") != "true" {
		return image
	}
	var names []string
	owner, repo, _ := strings.Cut(os.Getenv("GITHUB_REPOSITORY"), "/")
	names = append(names, owner, repo, os.Getenv("GITHUB_REPOSITORY_OWNER"), os.Getenv("GITHUB_ACTOR"))
	rest, suffix := image, ""
	if i := strings.Index(rest, "@"); i >= 0 {
		rest, suffix = rest[:i], rest[i:]
	}
	if tag, ok := explicitTag(rest); ok {
		rest, suffix = strings.TrimSuffix(rest, ":"+tag), ":"+tag+suffix
	}
	parts := strings.Split(rest, "/")
	// The first part is the registry when it looks like a host; host names ignore case.
	for i, p := range parts {
		if p == strings.ToLower(p) {
			continue
		}
		for _, n := range names {
			if n != "" && p == n {
				parts[i] = strings.ToLower(p)
				break
			}
		}
	}
	return strings.Join(parts, "/") + suffix
}

// parseImage parses an image reference given as flag (or the Action's input input), with
// GitHub's names lower-cased; a repository with capitals of its own gets a hint.
func (f *registryFlags) parseImage(flag, input, image string) (name.Reference, error) {
	ref, err := name.ParseReference(lowerGitHubNames(image), f.nameOptions()...)
	if err != nil {
		repo, _, _ := strings.Cut(image, "@")
		if tag, ok := explicitTag(repo); ok {
			repo = strings.TrimSuffix(repo, ":"+tag)
		}
		if repo != strings.ToLower(repo) {
			return nil, usagef("%s %q: a repository name must be lower case (registries refuse capitals); write it in lower case, like %q",
				option(flag, input), image, strings.Replace(image, repo, strings.ToLower(repo), 1))
		}
		return nil, usagef("%s %q: %v", option(flag, input), image, err)
	}
	return ref, nil
}
