package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/attest"
	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/publish"
	"github.com/pyship/pyship/sandbox"
)

// rebaseFlags are pyship rebase's flags.
type rebaseFlags struct {
	common     common
	run        runFlags
	smoke      smokeFlags
	registry   registryFlags
	tags       stringList
	push       bool
	skipTest   bool
	ociLayout  string
	sbomFormat string
}

func (f *rebaseFlags) register(fs *flag.FlagSet) {
	f.common.register(fs)
	f.run.register(fs)
	f.smoke.register(fs)
	f.registry.register(fs)
	fs.Var(&f.tags, "tag", "another `TAG` to set in REF's repository (repeatable)")
	fs.BoolVar(&f.push, "push", true, "push the rebased image to REF's repository; --push=false rebases and smoke-tests it, pushes nothing, and prints its digest")
	fs.BoolVar(&f.skipTest, "skip-test", false, "push without the smoke test")
	fs.StringVar(&f.ociLayout, "oci-layout", "", "write the rebased image into the OCI layout `DIR` instead of pushing it")
	registerSBOM(fs, &f.sbomFormat)
}

// runRebase moves an image onto the newest digest of its base, smoke-tests it and pushes
// it: a security update of the base without a rebuild. Nothing is pushed, and no tag
// moves, unless every step before succeeds.
func runRebase(ctx context.Context, args []string) error {
	var f rebaseFlags
	fs := flag.NewFlagSet("rebase", flag.ContinueOnError)
	f.register(fs)
	if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }) {
		fmt.Fprint(os.Stderr, "Usage: pyship rebase [flags] REF\n\nMoves the image REF (REGISTRY/REPOSITORY:TAG, or by digest; an OCI layout with --oci-layout)\nonto the newest digest of its base, smoke-tests it, and pushes it to REF's repository and tag.\n\nFlags:\n")
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		return fail(exitUsage, errHelp)
	}
	ref, err := parse(fs, args)
	if err != nil {
		return err
	}
	if ref == "." && !slices.Contains(args, ".") {
		return usagef("pyship rebase takes the image to rebase: REGISTRY/REPOSITORY:TAG (or an OCI layout directory, with --oci-layout)")
	}
	if err := checkSBOMFormat(f.sbomFormat); err != nil {
		return err
	}
	c := &f.common
	log := c.logger()
	start := time.Now()

	dir, _, isLayout := layoutRef(ref)
	var (
		reg    *publish.Registry
		secret = func(err error) error { return err }
		img    v1.Image
	)
	pushing := f.push && f.ociLayout == ""
	switch {
	case isLayout && pushing:
		return usagef("%s is an OCI layout directory, which has no registry to push to: give --oci-layout DIR, or --push=false", dir)
	case pushing:
		// The registry is checked before any work, as pyship publish checks it.
		r, target, err := f.target(ref)
		if err != nil {
			return err
		}
		if reg, secret, err = f.registry.pushTarget(ctx, target, f.tags, nil, c, log); err != nil {
			return err
		}
		if img, err = f.pull(ctx, reg, r, c); err != nil {
			return secret(err)
		}
	default:
		if img, err = loadImage(ctx, ref, c, &f.registry); err != nil {
			return err
		}
	}
	cacheDir, err := c.cache()
	if err != nil {
		return err
	}
	transport, err := c.registry()
	if err != nil {
		return err
	}
	keychain := c.keychain
	if keychain == nil {
		keychain = publish.Keychain(nil)
	}
	res, err := layers.Rebase(ctx, img, layers.RebaseOptions{
		Base: c.base, BaseMirror: c.baseMirror, CacheDir: cacheDir, Keychain: keychain, Transport: transport, Logger: log,
	})
	if err != nil {
		return secret(rebaseFailure(err))
	}
	d, err := res.Image.Digest()
	if err != nil {
		return err
	}
	if res.Unchanged {
		log.Info("the image is on the newest digest of its base already: nothing to do", "base", res.Base.String())
		fmt.Println(f.imageRef(ref, isLayout, d))
		return nil
	}
	log.Info("moved onto the new base", "from", res.OldBase.DigestStr(), "to", res.Base.DigestStr(), "kept_layers", len(res.Kept), "digest", d.String())

	report, check, err := f.smokeTest(ctx, res.Image, cacheDir, log)
	if err != nil {
		return err
	}
	repo := ""
	if reg != nil {
		repo = reg.Ref.Context().Name()
	}
	built := &layers.Result{Image: res.Image, Base: res.Base, BaseLayers: res.BaseLayers}
	attached, err := rebaseEvidence(res, f.sbomFormat, repo, cacheDir, report, check, log)
	if err != nil {
		return err
	}
	switch {
	case f.ociLayout != "":
		name := ""
		if !isLayout {
			if r, err := f.registry.parseImage("REF", "image", ref); err == nil {
				if _, ok := publish.ExplicitTag(r); ok {
					name = r.Name()
				}
			}
		}
		out, err := (&publish.Layout{Dir: f.ociLayout, Name: name, Referrers: attached}).Publish(ctx, res.Image)
		if err != nil {
			return fail(exitPublish, err)
		}
		log.Info("image written", "ref", out)
		fmt.Println(out)
	case pushing:
		if err := f.unmoved(ctx, reg, ref, img, c); err != nil {
			return secret(err)
		}
		reg.Referrers = attached
		out, err := pushImage(ctx, reg, built, log)
		if err != nil {
			return secret(err)
		}
		fmt.Println(out)
	default:
		log.Info("push is off: the image is rebased and smoke-tested, and nothing is pushed")
		fmt.Println(d.String())
	}
	log.Info("rebase done", "took", since(start))
	return nil
}

// pull reads the image r names, over reg's credentials and transport. An image index
// (several platforms) is refused: pushing one platform's image to its tag would replace
// the index.
func (f *rebaseFlags) pull(ctx context.Context, reg *publish.Registry, r name.Reference, c *common) (v1.Image, error) {
	transport, err := c.registry()
	if err != nil {
		return nil, err
	}
	desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(reg.Keychain), remote.WithTransport(transport))
	if err != nil {
		return nil, fail(exitBase, fmt.Errorf("reading %s: %w\nhint: check the reference and your credentials", r, err))
	}
	if desc.MediaType.IsIndex() {
		return nil, fail(exitRebase, fmt.Errorf("%s is an image index (one image per platform); pushing the rebased image of one platform to its tag would replace the index\nhint: rebase each platform's image by digest (--push=false or --tag), then make the index again", r))
	}
	pull := *reg
	pull.Ref = r
	img, err := pull.Pull(ctx, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		return nil, fail(exitBase, fmt.Errorf("pulling %s: %w\nhint: check the reference and your credentials", r, err))
	}
	return img, nil
}

// unmoved fails when ref's tag no longer names img, which was rebased: someone pushed to
// it meanwhile, and the push would undo their work. A registry cannot make the check and
// the push one step; this leaves seconds between them, not the whole rebase.
func (f *rebaseFlags) unmoved(ctx context.Context, reg *publish.Registry, ref string, img v1.Image, c *common) error {
	r, err := f.registry.parseImage("REF", "image", ref)
	if err != nil {
		return err
	}
	if _, ok := publish.ExplicitTag(r); !ok {
		return nil
	}
	transport, err := c.registry()
	if err != nil {
		return err
	}
	want, err := img.Digest()
	if err != nil {
		return err
	}
	desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(reg.Keychain), remote.WithTransport(transport))
	if err != nil {
		return fail(exitPublish, fmt.Errorf("reading %s again before the push: %w", r, err))
	}
	if desc.Digest != want {
		return fail(exitPublish, fmt.Errorf("%s moved to %s while it was rebased from %s; nothing was pushed\nhint: run pyship rebase again, on what the tag names now", r, desc.Digest, want))
	}
	return nil
}

// target is where the rebased image of ref goes: ref's repository, with ref's tag (the
// tag moves) when it has one. ref by digest sets only the --tag flags.
func (f *rebaseFlags) target(ref string) (name.Reference, string, error) {
	r, err := f.registry.parseImage("REF", "image", ref)
	if err != nil {
		return nil, "", err
	}
	target := r.Context().Name()
	if t, ok := publish.ExplicitTag(r); ok {
		target += ":" + t
	}
	if _, ok := publish.ExplicitTag(r); !ok && len(f.tags) == 0 {
		return nil, "", usagef("%q names no tag to move, and no --tag was given: pyship sets no tag it is not asked for\nhint: rebase REPOSITORY:TAG, or add --tag TAG", ref)
	}
	return r, target, nil
}

// smokeTest boots the rebased image and checks it as pyship test --from does (the
// image's port, GET / answered below 500, and the smoke flags), unless --skip-test
// (then the report is nil). It returns the passing report and the check it made.
func (f *rebaseFlags) smokeTest(ctx context.Context, img v1.Image, cacheDir string, log hclog.Logger) (*sandbox.Report, sandbox.Check, error) {
	check := sandbox.Check{Path: "/", Timeout: plan.DefaultSmokeTimeout}
	underEmulation(img, &check, log)
	f.smoke.apply(&check)
	check.Grace = f.run.grace
	if f.skipTest {
		log.Warn("smoke test skipped (--skip-test)")
		return nil, check, nil
	}
	start := time.Now()
	spec, err := f.run.runnable(img, cacheDir, 0)
	if err != nil {
		if fromRegistry(err) {
			return nil, check, fail(exitBase, fmt.Errorf("pulling the layers of the rebased image: %w", err))
		}
		return nil, check, err
	}
	log.Info("image unpacked", "layers", len(spec.Layers), "took", since(start))
	report, err := sandbox.Smoke(ctx, spec, check)
	if err != nil {
		return nil, check, sandboxFailure(err)
	}
	printReport(report, log)
	if !report.Passed() {
		return nil, check, fail(exitTestFailed, fmt.Errorf("smoke test of the rebased image failed (%s): %s; nothing was pushed", report.Failure, report.Reason))
	}
	return report, check, nil
}

// rebaseEvidence is evidence for a rebased image: its bill of materials in sbomFormat (the
// base's packages changed), its provenance, and, when report is not nil, its smoke test's
// statement. The provenance names the source and revision the image's labels give and the
// new base; the plan and the dependency files are in the provenance of the image it was
// rebased from.
func rebaseEvidence(res *layers.Rebased, sbomFormat, repo, cacheDir string, report *sandbox.Report, check sandbox.Check, log hclog.Logger) ([]v1.Image, error) {
	cf, err := res.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	labels := cf.Config.Labels
	inputs := attest.BuildInputs{
		Source: labels["org.opencontainers.image.source"], Revision: labels["org.opencontainers.image.revision"],
		Base: res.Base.String(), Invocation: runURL(),
	}
	return evidence(res.Image, inputs, sbomFormat, repo, cacheDir, report, check, log)
}

// rebaseFailure gives a rebase error its exit code.
func rebaseFailure(err error) error {
	var (
		refused *layers.RebaseError
		base    *layers.BaseError
	)
	switch {
	case errors.As(err, &refused):
		return fail(exitRebase, err)
	case errors.As(err, &base):
		return fail(exitBase, err)
	default:
		return fail(exitBuild, err)
	}
}

// imageRef names the image ref read, by digest d: REPOSITORY@d, or DIR@d for a layout.
func (f *rebaseFlags) imageRef(ref string, isLayout bool, d v1.Hash) string {
	if isLayout {
		dir, _, _ := strings.Cut(ref, "@")
		return dir + "@" + d.String()
	}
	r, err := f.registry.parseImage("REF", "image", ref)
	if err != nil {
		return d.String()
	}
	return r.Context().Digest(d.String()).String()
}
