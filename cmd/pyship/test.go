package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/publish"
	"github.com/pyship/pyship/sandbox"
)

// runFlags are the flags of the commands that boot an image.
type runFlags struct {
	publish string
	memory  string
	cpus    float64
	pids    int64
	grace   time.Duration
	// env are NAME=VALUE pairs the app gets when it boots here, never in the image.
	env []string
}

func (r *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.publish, "publish", "", "publish `HOST:CONTAINER`: the host loopback port and the app's port (default: a free port, and the app's)")
	fs.StringVar(&r.memory, "memory", "512m", "memory limit (`SIZE`, like 512m or 1g)")
	fs.Float64Var(&r.cpus, "cpus", sandbox.DefaultLimits.CPUs, "CPU limit, in CPUs")
	fs.Int64Var(&r.pids, "pids", sandbox.DefaultLimits.Pids, "limit on processes and threads")
	fs.DurationVar(&r.grace, "grace", 5*time.Second, "how long the app has to stop after SIGTERM before it is killed")
	fs.Func("env", "`NAME=VALUE` in the app's environment when it boots here, never in the image: a secret the app needs to start (repeatable)", func(v string) error {
		name, _, ok := strings.Cut(v, "=")
		switch {
		case !ok || !envNameRe.MatchString(name):
			return errors.New("want NAME=VALUE, NAME of letters, digits and _")
		case name == "PORT":
			return errors.New("the app's port is set with --publish")
		}
		r.env = append(r.env, v)
		return nil
	})
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// runnable prepares img to boot with these flags: its file system unpacked, the port it
// listens on (port, else the image's), the limits.
func (r *runFlags) runnable(img v1.Image, cacheDir string, port int) (sandbox.BootSpec, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return sandbox.BootSpec{}, fail(exitBuild, err)
	}
	// An image for another architecture runs under an emulator, when this machine has one.
	if err := sandbox.CanRun(cf.Architecture); err != nil {
		return sandbox.BootSpec{}, fail(exitSandbox, fmt.Errorf("running the linux/%s image: %w", cf.Architecture, err))
	}
	spec, err := layers.Runnable(img, cacheDir, port)
	if err != nil {
		return spec, fail(exitBuild, err)
	}
	return spec, r.apply(&spec)
}

// apply sets the limits and ports of spec.
func (r *runFlags) apply(spec *sandbox.BootSpec) error {
	mem, err := parseSize(r.memory)
	if err != nil {
		return usagef("--memory %q: %v", r.memory, err)
	}
	if r.cpus <= 0 || r.pids <= 0 {
		return usagef("--cpus and --pids must be positive")
	}
	spec.Limits = sandbox.Limits{Memory: mem, CPUs: r.cpus, Pids: r.pids}
	for _, kv := range r.env {
		name, _, _ := strings.Cut(kv, "=")
		spec.Env = slices.DeleteFunc(spec.Env, func(e string) bool { return strings.HasPrefix(e, name+"=") })
		spec.Env = append(spec.Env, kv)
	}
	if r.publish != "" {
		host, container, ok := strings.Cut(r.publish, ":")
		hp, err1 := strconv.Atoi(host)
		cp, err2 := strconv.Atoi(container)
		if !ok || err1 != nil || err2 != nil || hp < 0 || hp > 65535 || cp < 1 || cp > 65535 {
			return usagef("--publish %q: want HOST:CONTAINER, like 8080:8080 (HOST 0 picks a free port)", r.publish)
		}
		spec.HostPort, spec.Port = hp, cp
	}
	return nil
}

// parseSize reads "512m", "1g", "1048576".
func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("not a size like 512m or 1g")
	}
	if n*mult < 16<<20 {
		return 0, errors.New("below 16m, too little to boot Python")
	}
	return n * mult, nil
}

func runTest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c common
	c.register(fs)
	var rf runFlags
	rf.register(fs)
	var sf smokeFlags
	sf.register(fs)
	var reg registryFlags
	reg.register(fs)
	var from, image string
	fs.StringVar(&from, "from", "", "test this image (`REF` in a registry, or an OCI layout directory) instead of building PATH")
	fs.StringVar(&image, "image", "", "deprecated: use --from (`REF`); unlike build's and publish's --image, it names the image to test")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout")
	src, err := parse(fs, args)
	if err != nil {
		return err
	}
	log := c.logger()
	switch {
	case from != "" && image != "" && from != image:
		return usagef("--from %q and --image %q name two images; give --from alone", from, image)
	case from == "" && image != "":
		log.Warn("pyship test --image is deprecated: use --from, which names the image to test")
		from = image
	}
	if from == "" && reg.given() {
		return usagef("--username and --password-stdin go with --from")
	}
	cacheDir, err := c.cache()
	if err != nil {
		return err
	}
	platforms, err := c.platformList()
	if err != nil {
		return err
	}
	if len(platforms) <= 1 {
		if len(platforms) == 1 {
			c.platform = platforms[0]
		}
		if err := testsFor(platforms); err != nil {
			return err
		}
		return smokeOne(ctx, from, src, c, rf, sf, reg, *asJSON, cacheDir, log)
	}
	if from != "" {
		return usagef("--from tests one image; --platform %s builds one for each platform from PATH", c.platform)
	}
	if err := testsFor(platforms); err != nil {
		return err
	}
	for _, p := range platforms {
		one := c
		one.platform = p
		if err := smokeOne(ctx, from, src, one, rf, sf, reg, *asJSON, cacheDir, log.With("platform", p)); err != nil {
			return err
		}
	}
	return nil
}

// smokeOne builds (or takes, from) one image and smoke-tests it.
func smokeOne(ctx context.Context, from, src string, c common, rf runFlags, sf smokeFlags, reg registryFlags, asJSON bool, cacheDir string, log hclog.Logger) error {
	img, check, port, err := testSubject(ctx, from, src, &c, &reg, cacheDir, log)
	if err != nil {
		return err
	}
	underEmulation(img, &check, log)
	sf.apply(&check)
	check.Grace = rf.grace

	start := time.Now()
	spec, err := rf.runnable(img, cacheDir, port)
	if err != nil {
		if from != "" && fromRegistry(err) {
			// The layers of a registry's image are pulled as they are unpacked.
			return fail(exitBase, fmt.Errorf("pulling %s: %w", from, err))
		}
		return err
	}
	log.Info("image unpacked", "layers", len(spec.Layers), "took", since(start))
	report, err := sandbox.Smoke(ctx, spec, check)
	if err != nil {
		return sandboxFailure(err)
	}
	printReport(report, log)
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(report); err != nil {
			return err
		}
	}
	if !report.Passed() {
		return fail(exitTestFailed, fmt.Errorf("smoke test failed (%s): %s", report.Failure, report.Reason))
	}
	return nil
}

// testSubject is the image pyship test boots, the check its plan gives (the defaults for
// an image from elsewhere) and the port its plan says (zero: the image's): the image from,
// when given, else the one built from the repository at src.
func testSubject(ctx context.Context, from, src string, c *common, reg *registryFlags, cacheDir string, log hclog.Logger) (v1.Image, sandbox.Check, int, error) {
	if from != "" {
		img, err := loadImage(ctx, from, c, reg)
		return img, sandbox.Check{Path: "/", Timeout: plan.DefaultSmokeTimeout}, 0, err
	}
	b, err := build(ctx, src, *c, cacheDir, log)
	if err != nil {
		return nil, sandbox.Check{}, 0, err
	}
	return b.res.Image, smokeCheck(b.plan.Smoke), b.plan.Smoke.Port, nil
}

// smokeFlags override the plan's smoke settings, for pyship test and pyship publish alike.
type smokeFlags struct {
	path    string
	status  int
	body    string
	timeout time.Duration
	headers headerFlags
}

func (f *smokeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "path", "", "HTTP path to request (default / or smoke.path)")
	fs.IntVar(&f.status, "status", 0, "HTTP status to expect (default: any below 500, or smoke.status)")
	fs.StringVar(&f.body, "body", "", "text the response body must contain (default smoke.body)")
	fs.DurationVar(&f.timeout, "timeout", 0, "how long the app has to answer (default 30s or smoke.timeout)")
	fs.Var(&f.headers, "header", "`NAME=VALUE` the response must carry (repeatable)")
}

// apply sets what the flags give on check.
func (f *smokeFlags) apply(check *sandbox.Check) {
	if f.path != "" {
		check.Path = f.path
	}
	if f.status != 0 {
		check.Status = f.status
	}
	if f.body != "" {
		check.Body = f.body
	}
	if f.timeout > 0 {
		check.Timeout = f.timeout
	}
	for k, v := range f.headers {
		if check.Headers == nil {
			check.Headers = map[string]string{}
		}
		check.Headers[k] = v
	}
}

// headerFlags collects repeated --header NAME=VALUE flags.
type headerFlags map[string]string

func (h *headerFlags) String() string { return fmt.Sprint(map[string]string(*h)) }

func (h *headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want NAME=VALUE")
	}
	if *h == nil {
		*h = headerFlags{}
	}
	(*h)[k] = val
	return nil
}

// smokeCheck turns the plan's smoke settings into a check.
func smokeCheck(s plan.Smoke) sandbox.Check {
	return sandbox.Check{Path: s.Path, Status: s.Status, Body: s.Body, Headers: s.Headers, Timeout: time.Duration(s.Timeout)}
}

// printReport tells a person how the smoke test went, on stderr.
func printReport(r *sandbox.Report, log hclog.Logger) {
	usage := fmt.Sprintf("memory peak %.1f MiB of %d MiB, CPU %s", float64(r.Usage.MemoryPeak)/(1<<20), r.Limits.Memory>>20, r.Usage.CPU.Round(time.Millisecond))
	if r.Passed() {
		log.Info("smoke test passed", "status", r.Status, "first_response", r.FirstResponse.Round(time.Millisecond).String(), "port", r.Port, "usage", usage)
		return
	}
	log.Error("smoke test failed", "failure", r.Failure, "reason", r.Reason, "usage", usage)
	if len(r.Output) > 0 {
		fmt.Fprintf(os.Stderr, "--- the app's last %d lines ---\n%s\n---\n", len(r.Output), strings.Join(r.Output, "\n"))
	}
}

// loadImage reads an image from an OCI layout directory (its only image, or DIR@DIGEST)
// or from a registry, reached as pushes reach it.
func loadImage(ctx context.Context, ref string, c *common, reg *registryFlags) (v1.Image, error) {
	dir, digest, _ := strings.Cut(ref, "@")
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return imageInLayout(dir, digest, ref)
	}
	r, err := name.ParseReference(ref, reg.nameOptions()...)
	if err != nil {
		return nil, usagef("--from %q is neither a directory nor an image reference: %v", ref, err)
	}
	registry, secret, err := reg.registry(r, c)
	if err != nil {
		return nil, err
	}
	img, err := registry.Pull(ctx, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		return nil, secret(fail(exitBase, fmt.Errorf("pulling %s: %w\nhint: check the reference and your credentials", ref, err)))
	}
	return img, nil
}

// imageInLayout reads the image of an OCI layout directory: its only one (what is attached
// to it aside), or the one with digest.
func imageInLayout(dir, digest, ref string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fail(exitBase, fmt.Errorf("reading the OCI layout %s: %w", dir, err))
	}
	if digest != "" {
		h, err := v1.NewHash(digest)
		if err != nil {
			return nil, usagef("%q: %v", ref, err)
		}
		return p.Image(h)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fail(exitBase, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fail(exitBase, err)
	}
	images := layoutImages(m)
	if len(images) != 1 {
		return nil, usagef("the OCI layout %s holds %d images; pick one with %s@sha256:...", dir, len(images), dir)
	}
	for _, desc := range m.Manifests {
		if desc.Digest == images[0] && desc.MediaType.IsIndex() {
			// An image index (pyship build --platform with several): its image for
			// this machine.
			return imageForHost(idx, desc.Digest, dir)
		}
	}
	return p.Image(images[0])
}

// imageForHost is the image for this machine's architecture in the index d of idx.
func imageForHost(idx v1.ImageIndex, d v1.Hash, dir string) (v1.Image, error) {
	child, err := idx.ImageIndex(d)
	if err != nil {
		return nil, fail(exitBase, err)
	}
	m, err := child.IndexManifest()
	if err != nil {
		return nil, fail(exitBase, err)
	}
	var have []string
	for _, desc := range m.Manifests {
		if desc.Platform == nil {
			continue
		}
		if desc.Platform.OS == "linux" && desc.Platform.Architecture == runtime.GOARCH {
			return child.Image(desc.Digest)
		}
		have = append(have, desc.Platform.String())
	}
	return nil, usagef("the image index in the OCI layout %s has no linux/%s image (it has %s); pick one with %s@sha256:...", dir, runtime.GOARCH, strings.Join(have, ", "), dir)
}

// fromRegistry reports whether err came from talking to a registry.
func fromRegistry(err error) bool {
	var (
		stall *publish.StallError
		terr  *transport.Error
		uerr  *url.Error
	)
	return errors.As(err, &stall) || errors.As(err, &terr) || errors.As(err, &uerr)
}

// sandboxFailure gives a sandbox error its exit code.
func sandboxFailure(err error) error {
	var priv *sandbox.PrivilegeError
	if errors.As(err, &priv) || errors.Is(err, sandbox.ErrUnsupported) {
		return fail(exitSandbox, err)
	}
	return fail(exitBuild, err)
}
