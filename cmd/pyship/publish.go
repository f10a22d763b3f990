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
	"github.com/hashicorp/go-hclog"

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
	var pf pushFlags
	pf.register(fs)
	imageRefs := fs.String("image-refs", "", "write every pushed reference to `FILE`, one a line")
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
	ref, err := pf.reference(*image)
	if err != nil {
		return err
	}
	if _, ok := ref.(name.Digest); ok {
		return usagef("--image %q: give a repository and tag, not a digest", *image)
	}
	ci := ciTags()
	if err := checkTags(ref, tags, ci); err != nil {
		return err
	}
	reg, secret, err := pf.registry(ref, &c)
	if err != nil {
		return err
	}
	reg.Tags = append(tags, ci...)
	cacheDir, err := c.cache()
	if err != nil {
		return err
	}
	if err := checkRegistry(ctx, reg, log); err != nil {
		return secret(err)
	}

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
	start := time.Now()
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

// pushFlags say how to reach the registry to push to, for pyship publish and pyship build
// --push alike. The transport comes from the common flags.
type pushFlags struct {
	username      string
	passwordStdin bool
	insecure      bool
}

func (f *pushFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.username, "username", "", "registry `USER` (with --password-stdin)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password from stdin")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP to the registry (localhost never needs it)")
}

// reference parses --image.
func (f *pushFlags) reference(image string) (name.Reference, error) {
	var opts []name.Option
	if f.insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return nil, usagef("--image %q: %v", image, err)
	}
	return ref, nil
}

// registry is where ref is pushed: with the credentials given (the password read from
// stdin), else GITHUB_TOKEN for ghcr.io, else Docker's; over the command's one transport.
// secret takes the password out of an error: every error from the registry could, in
// theory, carry it back.
func (f *pushFlags) registry(ref name.Reference, c *common) (reg *publish.Registry, secret func(error) error, err error) {
	var creds *publish.Credentials
	password := ""
	switch {
	case f.passwordStdin && f.username == "":
		return nil, nil, usagef("--password-stdin needs --username")
	case f.passwordStdin:
		if password, err = readPassword(os.Stdin); err != nil {
			return nil, nil, usagef("reading the password from stdin: %v", err)
		}
		creds = &publish.Credentials{Registry: ref.Context().RegistryStr(), Username: f.username, Password: password}
	case f.username != "":
		return nil, nil, usagef("--username needs --password-stdin (a password on the command line would show in process lists and logs)")
	}
	transport, err := c.registry()
	if err != nil {
		return nil, nil, err
	}
	reg = &publish.Registry{Ref: ref, Keychain: publish.Keychain(creds), Transport: transport}
	return reg, func(err error) error { return redactError(err, password) }, nil
}

// checkRegistry fails fast, before anything is built, when the registry cannot be reached
// or will not let us push.
func checkRegistry(ctx context.Context, reg *publish.Registry, log hclog.Logger) error {
	start := time.Now()
	if err := reg.Check(ctx); err != nil {
		return fail(exitPublish, err)
	}
	log.Info("registry ready", "repository", reg.Ref.Context().String(), "took", since(start))
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
