package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/publish"
	"github.com/pyship/pyship/sandbox"
)

// platformList is --platform as a list: one platform, or several separated by commas (an
// image index of one image each), in the order given, each once.
func (c *common) platformList() ([]string, error) {
	var out []string
	for _, p := range strings.Split(c.platform, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := v1.ParsePlatform(p); err != nil || !strings.HasPrefix(p, "linux/") {
			return nil, usagef("--platform %q: want OS/ARCH, like linux/amd64 or linux/amd64,linux/arm64", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// buildPlatforms builds the repository at path once for each platform, one after the
// other (each build uses both cores), into one cache.
func buildPlatforms(ctx context.Context, path string, c common, platforms []string, cacheDir string, log hclog.Logger) ([]*built, error) {
	var bs []*built
	for _, p := range platforms {
		start := time.Now()
		one := c
		one.platform = p
		b, err := build(ctx, path, one, cacheDir, log.With("platform", p))
		if err != nil {
			return nil, err
		}
		log.Info("platform built", "platform", p, "took", since(start))
		bs = append(bs, b)
	}
	return bs, nil
}

// imageIndex is the OCI image index of the built images, each with its platform.
func imageIndex(bs []*built) (v1.ImageIndex, error) {
	var adds []mutate.IndexAddendum
	for _, b := range bs {
		cf, err := b.res.Image.ConfigFile()
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: b.res.Image, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
		}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), nil
}

// publishIndex writes the index of the built images with pub (a registry or a layout), each
// image with the artifacts attached to it (attached[i] to bs[i]), and returns the index's
// reference by digest.
func publishIndex(ctx context.Context, pub publish.IndexPublisher, bs []*built, attached [][]v1.Image, log hclog.Logger) (string, error) {
	idx, err := imageIndex(bs)
	if err != nil {
		return "", err
	}
	var images []publish.Platform
	for i, b := range bs {
		images = append(images, publish.Platform{Image: b.res.Image, MountFrom: b.res.Base, MountLayers: b.res.BaseLayers, Referrers: attached[i]})
	}
	start := time.Now()
	out, err := pub.PublishIndex(ctx, idx, images)
	if err != nil {
		return "", fail(exitPublish, authHint(err))
	}
	log.Info("image index written", "ref", out, "platforms", len(bs), "took", since(start))
	return out, nil
}

// emulationSlowdown is how many times its timeout the smoke test gives an image that runs
// under an emulator: Python under qemu-user starts several times slower (a Flask app: 7 s
// to answer, against 0.2 s).
const emulationSlowdown = 5

// underEmulation gives the check of an image for another architecture than this
// machine's emulationSlowdown times its timeout; a --timeout given, applied after it,
// stands as given.
func underEmulation(img v1.Image, check *sandbox.Check, log hclog.Logger) {
	cf, err := img.ConfigFile()
	if err != nil || cf.Architecture == "" || cf.Architecture == runtime.GOARCH {
		return
	}
	check.Timeout *= emulationSlowdown
	log.Info("the image runs under emulation: unless --timeout says otherwise, the smoke test waits five times longer", "platform", cf.OS+"/"+cf.Architecture, "timeout", check.Timeout)
}

// testsFor says, before anything is built, whether this machine can run the images of
// every platform for their smoke tests.
func testsFor(platforms []string) error {
	for _, p := range platforms {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			return usagef("--platform %q: %v", p, err)
		}
		if err := sandbox.CanRun(pl.Architecture); err != nil {
			return fail(exitSandbox, fmt.Errorf("smoke-testing the %s image: %w", p, err))
		}
	}
	return nil
}
