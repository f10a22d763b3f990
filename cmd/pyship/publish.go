package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pyship/pyship/publish"
	"github.com/pyship/pyship/sandbox"
)

// stringList collects a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runPublish builds, smoke-tests and pushes. Nothing is pushed when the smoke test fails.
func runPublish(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	var c common
	c.register(fs)
	var rf runFlags
	rf.register(fs)
	image := fs.String("image", os.Getenv("PYSHIP_IMAGE"), "`REPO[:TAG]` to push to (env PYSHIP_IMAGE)")
	var tags stringList
	fs.Var(&tags, "tag", "another `TAG` to set (repeatable)")
	skipTest := fs.Bool("skip-test", false, "push without the smoke test")
	username := fs.String("username", "", "registry `USER` (with --password-stdin)")
	passwordStdin := fs.Bool("password-stdin", false, "read the registry password from stdin")
	imageRefs := fs.String("image-refs", "", "write every pushed reference to `FILE`, one a line")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to the registry (localhost never needs it)")
	timeout := fs.Duration("timeout", 0, "how long the app has to answer the smoke test (default 30s or smoke.timeout)")
	summaryFile := fs.String("summary", "", "append a Markdown summary (plan, layers, smoke verdict) to `FILE`, like $GITHUB_STEP_SUMMARY")
	path, err := parse(fs, args)
	if err != nil {
		return err
	}
	log := c.logger()
	if *image == "" {
		return usagef("publish needs --image REGISTRY/REPOSITORY[:TAG]")
	}
	var nameOpts []name.Option
	if *insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(*image, nameOpts...)
	if err != nil {
		return usagef("--image %q: %v", *image, err)
	}
	if _, ok := ref.(name.Digest); ok {
		return usagef("--image %q: give a repository and tag, not a digest", *image)
	}
	ci := ciTags()
	if err := checkTags(ref, tags, ci); err != nil {
		return err
	}
	var creds *publish.Credentials
	password := ""
	switch {
	case *passwordStdin && *username == "":
		return usagef("--password-stdin needs --username")
	case *passwordStdin:
		if password, err = readPassword(os.Stdin); err != nil {
			return usagef("reading the password from stdin: %v", err)
		}
		creds = &publish.Credentials{Registry: ref.Context().RegistryStr(), Username: *username, Password: password}
	case *username != "":
		return usagef("--username needs --password-stdin (a password on the command line would show in process lists and logs)")
	}
	// Every error from here on could, in theory, carry the password back from a server.
	secret := func(err error) error { return redactError(err, password) }
	transport, err := c.registry()
	if err != nil {
		return err
	}
	cacheDir, err := c.cache()
	if err != nil {
		return err
	}
	reg := &publish.Registry{Ref: ref, Tags: append(tags, ci...), Keychain: publish.Keychain(creds), Transport: transport}
	start := time.Now()
	if err := reg.Check(ctx); err != nil {
		return secret(fail(exitPublish, err))
	}
	log.Info("registry ready", "repository", ref.Context().String(), "took", since(start))

	p, res, err := build(ctx, path, c, cacheDir, log)
	if err != nil {
		return err
	}
	sum := summary{plan: p, image: res.Image}
	writeSummary := func() {
		if *summaryFile == "" {
			return
		}
		if err := sum.write(*summaryFile); err != nil {
			log.Warn("could not write the summary", "file", *summaryFile, "error", err)
		}
	}
	if *skipTest {
		log.Warn("smoke test skipped (--skip-test)")
	} else {
		spec, err := rf.runnable(res.Image, cacheDir, p.Smoke.Port)
		if err != nil {
			return err
		}
		check := smokeCheck(p.Smoke)
		check.Grace = rf.grace
		if *timeout > 0 {
			check.Timeout = *timeout
		}
		report, err := sandbox.Smoke(ctx, spec, check)
		if err != nil {
			return sandboxFailure(err)
		}
		printReport(report, log)
		sum.report = report
		if !report.Passed() {
			writeSummary()
			return fail(exitTestFailed, fmt.Errorf("smoke test failed (%s): %s; nothing was pushed", report.Failure, report.Reason))
		}
	}

	reg.MountFrom, reg.MountLayers = res.Base, res.BaseLayers
	start = time.Now()
	out, err := reg.Publish(ctx, res.Image)
	if err != nil {
		return secret(fail(exitPublish, err))
	}
	d, err := res.Image.Digest()
	if err != nil {
		return err
	}
	refs := reg.Refs(d.String())
	log.Info("pushed", "ref", out, "tags", strings.Join(reg.TagNames(), ","), "took", since(start))
	sum.refs = refs
	writeSummary()
	if *imageRefs != "" {
		if err := os.WriteFile(*imageRefs, []byte(strings.Join(refs, "\n")+"\n"), 0o644); err != nil {
			return fail(exitPublish, fmt.Errorf("writing --image-refs %q: %w", *imageRefs, err))
		}
	}
	fmt.Println(out)
	return nil
}

// readPassword reads one line from r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("stdin is empty")
	}
	return line, nil
}

// redactError keeps err's exit code and replaces the secret in its message.
func redactError(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	code := exitInternal
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	return fail(code, errors.New(strings.ReplaceAll(err.Error(), secret, "[redacted]")))
}

// checkTags fails with a usage error when the image's tag, a --tag, or a tag computed in
// CI is not a valid tag, before anything is built or sent: a registry refuses such a tag
// only after the manifest is in.
func checkTags(ref name.Reference, tags, ci []string) error {
	if t, ok := ref.(name.Tag); ok {
		if err := publish.CheckTag(t.TagStr()); err != nil {
			return usagef("--image %q: %v", ref.String(), err)
		}
	}
	for _, t := range tags {
		if err := publish.CheckTag(t); err != nil {
			return usagef("--tag: %v", err)
		}
	}
	for _, t := range ci {
		if err := publish.CheckTag(t); err != nil {
			return usagef("the CI tag made from GITHUB_SHA and GITHUB_REF_NAME: %v", err)
		}
	}
	return nil
}

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// ciTags are the tags a CI run adds: the short commit, and the branch or version tag it
// runs on. GitHub Actions' variables are read; elsewhere there are none.
func ciTags() []string {
	if os.Getenv("GITHUB_ACTIONS") != "true" {
		return nil
	}
	var tags []string
	if sha := os.Getenv("GITHUB_SHA"); len(sha) >= 7 {
		tags = append(tags, "sha-"+sha[:7])
	}
	if ref := os.Getenv("GITHUB_REF_NAME"); ref != "" && os.Getenv("GITHUB_EVENT_NAME") != "pull_request" {
		t := strings.Trim(tagUnsafe.ReplaceAllString(ref, "-"), "-.")
		if len(t) > 128 {
			t = t[:128]
		}
		if t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}
