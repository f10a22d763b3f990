package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/publish"
	"github.com/pyship/pyship/sandbox"
)

// stringList collects a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// publishFlags are pyship publish's flags.
type publishFlags struct {
	common    common
	run       runFlags
	smoke     smokeFlags
	registry  registryFlags
	image     string
	tags      stringList
	latest    latestMode
	push      bool
	skipTest  bool
	imageRefs string
	summary   string
	// sbomFormat is the bill of materials attached to the pushed image.
	sbomFormat string
}

func (f *publishFlags) register(fs *flag.FlagSet) {
	f.common.register(fs)
	f.run.register(fs)
	f.smoke.register(fs)
	f.registry.register(fs)
	fs.StringVar(&f.image, "image", os.Getenv("PYSHIP_IMAGE"), "`REPO[:TAG]` to push to (env PYSHIP_IMAGE)")
	fs.Var(&f.tags, "tag", "another `TAG` to set (repeatable)")
	fs.Var(&f.latest, "latest", "set the tag latest too: --latest (always), or --latest=default-branch (in GitHub Actions, on a push to the default branch)")
	fs.BoolVar(&f.push, "push", true, "push the image; --push=false builds and smoke-tests it, pushes nothing and needs no registry")
	fs.BoolVar(&f.skipTest, "skip-test", false, "push without the smoke test")
	fs.StringVar(&f.imageRefs, "image-refs", "", "write every pushed reference to `FILE`, one a line")
	fs.StringVar(&f.summary, "summary", "", "append a Markdown summary (plan, layers, smoke verdict) to `FILE`, like $GITHUB_STEP_SUMMARY")
	registerSBOM(fs, &f.sbomFormat)
}

// runPublish builds, smoke-tests and pushes. Nothing is pushed when the smoke test fails.
func runPublish(ctx context.Context, args []string) error {
	var f publishFlags
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	f.register(fs)
	path, err := parse(fs, args)
	if err != nil {
		return err
	}
	c := &f.common
	log := c.logger()
	if f.image == "" {
		return usagef("publish needs %s REGISTRY/REPOSITORY[:TAG]", option("--image", "image"))
	}
	if err := checkSBOMFormat(f.sbomFormat); err != nil {
		return err
	}
	c.inventory = f.sbomFormat != sbomNone && f.push
	ci := readCIRun().tags(f.latest)
	var (
		reg    *publish.Registry
		secret = func(err error) error { return err }
	)
	if f.push {
		if reg, secret, err = f.registry.pushTarget(ctx, f.image, f.tags, ci, c, log); err != nil {
			return err
		}
	} else {
		// The name and the tags are still checked: a pull request finds a mistake in them
		// before the push that follows its merge does.
		ref, err := f.registry.parseImage("--image", "image", f.image)
		if err != nil {
			return err
		}
		if err := checkTags(ref, f.tags, ci); err != nil {
			return err
		}
		// The credentials, when given, still serve the build's own pulls.
		if _, secret, err = f.registry.registry(ref, c); err != nil {
			return err
		}
		log.Info("push is off: the image is built and smoke-tested, and nothing is pushed")
	}
	cacheDir, err := c.cache()
	if err != nil {
		return err
	}
	platforms, err := c.platformList()
	if err != nil {
		return err
	}
	if len(platforms) > 1 {
		return f.publishPlatforms(ctx, path, platforms, reg, secret, cacheDir, log)
	}
	if len(platforms) == 1 {
		c.platform = platforms[0]
	}
	if !f.skipTest {
		// An image for another architecture is tested under an emulator: looked for
		// before anything is built.
		if err := testsFor(platforms); err != nil {
			return err
		}
	}
	b, err := build(ctx, path, *c, cacheDir, log)
	if err != nil {
		return secret(err)
	}
	p, res := b.plan, b.res
	sum := summary{plan: p, image: res.Image}
	if err := f.smokeTest(ctx, p, res, cacheDir, &sum, log); err != nil {
		return err
	}
	d, err := res.Image.Digest()
	if err != nil {
		return err
	}
	if !f.push {
		sum.unpushed = d.String()
		f.writeSummary(sum, log)
		// stdout has the digest alone: there is no reference to an image that was not pushed.
		fmt.Println(d.String())
		return nil
	}
	if reg.Referrers, err = builtEvidence(b, f.sbomFormat, reg.Ref.Context().Name(), cacheDir, sum.report, sum.check, log); err != nil {
		return err
	}
	out, err := pushImage(ctx, reg, res, log)
	if err != nil {
		return secret(err)
	}
	sum.refs = reg.Refs(d.String())
	f.writeSummary(sum, log)
	if err := f.writeImageRefs(sum.refs); err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

// publishPlatforms is pyship publish with several platforms: each is built and
// smoke-tested (another architecture's under qemu-user, which is looked for before
// anything is built), then every image is pushed with its evidence, then their index, then
// the tags, to the index. A failed test pushes nothing.
func (f *publishFlags) publishPlatforms(ctx context.Context, path string, platforms []string, reg *publish.Registry, secret func(error) error, cacheDir string, log hclog.Logger) error {
	if !f.skipTest {
		if err := testsFor(platforms); err != nil {
			return err
		}
	}
	bs, err := buildPlatforms(ctx, path, f.common, platforms, cacheDir, log)
	if err != nil {
		return secret(err)
	}
	sums := make([]summary, len(bs))
	for i, b := range bs {
		sums[i] = summary{plan: b.plan, image: b.res.Image}
		if err := f.smokeTest(ctx, b.plan, b.res, cacheDir, &sums[i], log.With("platform", platforms[i])); err != nil {
			return err
		}
	}
	idx, err := imageIndex(bs)
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	if !f.push {
		for i, b := range bs {
			cd, err := b.res.Image.Digest()
			if err != nil {
				return err
			}
			sums[i].unpushed = cd.String()
			f.writeSummary(sums[i], log)
		}
		fmt.Println(d.String())
		return nil
	}
	attached := make([][]v1.Image, len(bs))
	for i, b := range bs {
		if attached[i], err = builtEvidence(b, f.sbomFormat, reg.Ref.Context().Name(), cacheDir, sums[i].report, sums[i].check, log); err != nil {
			return err
		}
	}
	out, err := publishIndex(ctx, reg, bs, attached, log)
	if err != nil {
		return secret(err)
	}
	refs := reg.Refs(d.String())
	for i := range sums {
		sums[i].refs = refs
		f.writeSummary(sums[i], log)
	}
	if err := f.writeImageRefs(refs); err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

// smokeTest boots the built image and checks it as the plan and the flags say, unless
// --skip-test. A failed test writes the summary and fails: nothing is pushed.
func (f *publishFlags) smokeTest(ctx context.Context, p *plan.Plan, res *layers.Result, cacheDir string, sum *summary, log hclog.Logger) error {
	if f.skipTest {
		log.Warn("smoke test skipped (--skip-test)")
		return nil
	}
	spec, err := f.run.runnable(res.Image, cacheDir, p.Smoke.Port)
	if err != nil {
		return err
	}
	check := smokeCheck(p.Smoke)
	underEmulation(res.Image, &check, log)
	f.smoke.apply(&check)
	check.Grace = f.run.grace
	report, err := sandbox.Smoke(ctx, spec, check)
	if err != nil {
		return sandboxFailure(err)
	}
	printReport(report, log)
	sum.report, sum.check = report, check
	if !report.Passed() {
		f.writeSummary(*sum, log)
		return fail(exitTestFailed, fmt.Errorf("smoke test failed (%s): %s; nothing was pushed", report.Failure, report.Reason))
	}
	return nil
}

// writeSummary appends the Markdown summary to --summary, when given; failing to is a
// warning, not a failed publish.
func (f *publishFlags) writeSummary(sum summary, log hclog.Logger) {
	if f.summary == "" {
		return
	}
	if err := sum.write(f.summary); err != nil {
		log.Warn("could not write the summary", "file", f.summary, "error", err)
	}
}

// writeImageRefs writes every pushed reference to --image-refs, when given.
func (f *publishFlags) writeImageRefs(refs []string) error {
	if f.imageRefs == "" {
		return nil
	}
	if err := os.WriteFile(f.imageRefs, []byte(strings.Join(refs, "\n")+"\n"), 0o644); err != nil {
		return fail(exitPublish, fmt.Errorf("writing --image-refs %q: %w", f.imageRefs, err))
	}
	return nil
}

// pushImage sends a built image to reg, mounting the base's layers from the base's repository
// when the registry has them, and returns the reference by digest. pyship build --push
// and pyship publish both push with it.
func pushImage(ctx context.Context, reg *publish.Registry, res *layers.Result, log hclog.Logger) (string, error) {
	reg.MountFrom, reg.MountLayers = res.Base, res.BaseLayers
	start := time.Now()
	out, err := reg.Publish(ctx, res.Image)
	if err != nil {
		return "", fail(exitPublish, authHint(err))
	}
	log.Info("pushed", "ref", out, "tags", strings.Join(reg.TagNames(), ","), "took", since(start))
	return out, nil
}

// registryFlags say how to reach a registry: to push to, for pyship publish and pyship
// build --push, or to pull the image pyship test checks. The transport comes from the
// common flags.
type registryFlags struct {
	username      string
	passwordStdin bool
	insecure      bool
}

func (f *registryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.username, "username", "", "registry `USER` (with --password-stdin)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password from stdin")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP to the registry (localhost never needs it)")
}

// nameOptions are how references are parsed: --insecure allows plain HTTP.
func (f *registryFlags) nameOptions() []name.Option {
	if f.insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// given reports whether credentials were given.
func (f *registryFlags) given() bool { return f.username != "" || f.passwordStdin }

// reference parses an image reference, given by flag (like --image).
func (f *registryFlags) reference(flag, image string) (name.Reference, error) {
	return f.parseImage(flag, "image", image)
}

// pushTarget is the registry image is pushed to, with tags (the --tag flags) and ci (the
// tags CI adds): checked before anything is built, so that a wrong name, tag, credential
// or unreachable registry fails in seconds. secret takes the password out of an error.
func (f *registryFlags) pushTarget(ctx context.Context, image string, tags, ci []string, c *common, log hclog.Logger) (*publish.Registry, func(error) error, error) {
	ref, err := f.parseImage("--image", "image", image)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := ref.(name.Digest); ok {
		return nil, nil, usagef("%s %q: give a repository and tag to push to, not a digest", option("--image", "image"), image)
	}
	if err := checkTags(ref, tags, ci); err != nil {
		return nil, nil, err
	}
	reg, secret, err := f.registry(ref, c)
	if err != nil {
		return nil, nil, err
	}
	reg.Tags = append(slices.Clone(tags), ci...)
	if len(reg.TagNames()) == 0 {
		return nil, nil, noTagError(image)
	}
	if err := checkRegistry(ctx, reg, log); err != nil {
		return nil, nil, secret(err)
	}
	return reg, secret, nil
}

// noTagError says that a push would set no tag: pyship implies none, latest included
// (a registry keeps an untagged image only until its next clean-up).
func noTagError(image string) error {
	if inAction() {
		return usagef("the input image %q names no tag, and this run adds none of its own (it does on push, release, pull_request and merge_group events): give the input tags, or latest: true, or push: false to build and test only", image)
	}
	hint := "add one: --image " + image + ":TAG, --tag TAG, or --latest"
	if inGitHubActions() {
		hint += " (in GitHub Actions, push, release, pull_request and merge_group events add sha-COMMIT)"
	}
	return usagef("--image %q names no tag, and no --tag or --latest was given: pyship sets no tag it is not asked for, latest included\nhint: %s", image, hint)
}

// registry is the one way pyship reaches a registry, to push or pull ref: with the
// credentials given (the password read from stdin), else GITHUB_TOKEN for ghcr.io, else
// Docker's; over the command's one transport (--registry-ca, --registry-timeout); with
// publish's retries. secret takes the password out of an error: every error from the
// registry could, in theory, carry it back.
func (f *registryFlags) registry(ref name.Reference, c *common) (reg *publish.Registry, secret func(error) error, err error) {
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
	if creds != nil {
		c.keychain = reg.Keychain
	}
	return reg, func(err error) error { return redactError(err, password) }, nil
}

// checkRegistry fails fast, before anything is built, when the registry cannot be reached
// or will not let us push.
func checkRegistry(ctx context.Context, reg *publish.Registry, log hclog.Logger) error {
	start := time.Now()
	if err := reg.Check(ctx); err != nil {
		return fail(exitPublish, authHint(err))
	}
	log.Info("registry ready", "repository", reg.Ref.Context().String(), "took", since(start))
	return nil
}

// authHint has a refused credential's hint name the Action's inputs, when pyship runs as
// the Action: its users wrote no docker login.
func authHint(err error) error {
	var pe *publish.Error
	if inAction() && errors.As(err, &pe) {
		pe.AuthHint = "the registry refused the credentials: check the inputs username and password " +
			"(for ghcr.io: username ${{ github.actor }}, password ${{ secrets.GITHUB_TOKEN }}, and permissions: packages: write in the job; " +
			"on a pull request from a fork the token is read-only: push: false)"
	}
	return err
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
