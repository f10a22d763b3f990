package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/attest"
	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/layers"
	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/publish"
	"github.com/pyship/pyship/pyindex"
	"github.com/pyship/pyship/sandbox"
)

// The bill of materials reads the layers' tars as the build streams and writes them.
var _ layers.TarTap = (*attest.TarRecorder)(nil)

func runBuild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var c common
	c.register(fs)
	image := fs.String("image", os.Getenv("PYSHIP_IMAGE"), "image `REF` to name the result (env PYSHIP_IMAGE)")
	push := fs.Bool("push", false, "push the image to the registry named by --image, as pyship publish does")
	ociLayout := fs.String("oci-layout", "", "write the image into the OCI layout `DIR`")
	tarballPath := fs.String("tarball", "", "write the image to `FILE`, loadable by docker load or podman load")
	var rf registryFlags
	rf.register(fs)
	var sbomFormat string
	registerSBOM(fs, &sbomFormat)
	path, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkSBOMFormat(sbomFormat); err != nil {
		return err
	}
	// A layout or a registry keeps a bill of materials beside the image; a tarball cannot.
	c.inventory = sbomFormat != sbomNone && *tarballPath == ""
	log := c.logger()
	switch {
	case *push && *image == "":
		return usagef("--push needs --image REGISTRY/REPOSITORY[:TAG]")
	case !*push && rf.given():
		return usagef("--username and --password-stdin go with --push")
	}
	var ref name.Reference
	if *image != "" && !*push {
		if ref, err = rf.reference("--image", *image); err != nil {
			return err
		}
		if err := checkTags(ref, nil, nil); err != nil {
			return err
		}
	}
	platforms, err := c.platformList()
	if err != nil {
		return err
	}
	if len(platforms) == 1 {
		c.platform = platforms[0]
	}
	if len(platforms) > 1 && *tarballPath != "" {
		return usagef("--tarball holds one image, and --platform %s makes one for each platform: write their index with --oci-layout, or push it with --push", c.platform)
	}
	cacheDir, err := c.cache()
	if err != nil {
		return err
	}
	if len(platforms) > 1 {
		return buildIndex(ctx, path, c, platforms, *push, *image, ref, *ociLayout, sbomFormat, &rf, cacheDir, log)
	}
	if *push {
		// The registry pyship publish pushes to, made and checked the same way.
		reg, secret, err := rf.pushTarget(ctx, *image, nil, nil, &c, log)
		if err != nil {
			return err
		}
		b, err := build(ctx, path, c, cacheDir, log)
		if err != nil {
			return err
		}
		if reg.Referrers, err = builtEvidence(b, sbomFormat, reg.Ref.Context().Name(), cacheDir, nil, sandbox.Check{}, log); err != nil {
			return err
		}
		out, err := pushImage(ctx, reg, b.res, log)
		if err != nil {
			return secret(err)
		}
		fmt.Println(out)
		return nil
	}
	b, err := build(ctx, path, c, cacheDir, log)
	if err != nil {
		return err
	}
	var attached []v1.Image
	if *tarballPath == "" {
		// A layout keeps the evidence beside the image; a tarball cannot.
		repo := ""
		if ref != nil {
			repo = ref.Context().Name()
		}
		if attached, err = builtEvidence(b, sbomFormat, repo, cacheDir, nil, sandbox.Check{}, log); err != nil {
			return err
		}
	}
	return writeImage(ctx, b.res, ref, path, *ociLayout, *tarballPath, cacheDir, attached, log)
}

// buildIndex is pyship build with several platforms: one image each, their index pushed
// (push) or written into the OCI layout ociLayout or the cache's, each image with its
// evidence.
func buildIndex(ctx context.Context, path string, c common, platforms []string, push bool, image string, ref name.Reference, ociLayout, sbomFormat string, rf *registryFlags, cacheDir string, log hclog.Logger) error {
	var (
		pub    publish.IndexPublisher
		repo   string
		secret = func(err error) error { return err }
	)
	if push {
		reg, s, err := rf.pushTarget(ctx, image, nil, nil, &c, log)
		if err != nil {
			return err
		}
		pub, repo, secret = reg, reg.Ref.Context().Name(), s
	} else {
		if ref != nil {
			repo = ref.Context().Name()
		}
		dir := ociLayout
		if dir == "" {
			dir = layers.LayoutDir(cacheDir)
		}
		pub = &publish.Layout{Dir: dir, Name: refName(ref)}
	}
	bs, err := buildPlatforms(ctx, path, c, platforms, cacheDir, log)
	if err != nil {
		return secret(err)
	}
	attached := make([][]v1.Image, len(bs))
	for i, b := range bs {
		if attached[i], err = builtEvidence(b, sbomFormat, repo, cacheDir, nil, sandbox.Check{}, log); err != nil {
			return err
		}
	}
	if ociLayout == "" && !push {
		// Builds on one cache share its layout's index.json: one writes it at a time.
		unlock, err := layers.LockCache(ctx, cacheDir, log)
		if err != nil {
			return fail(exitPublish, err)
		}
		defer unlock()
	}
	out, err := publishIndex(ctx, pub, bs, attached, log)
	if err != nil {
		return secret(err)
	}
	fmt.Println(out)
	return nil
}

// writeImage writes a built image that is not pushed: into the OCI layout DIR, to a
// tarball, or into the cache's OCI layout; it prints the reference by digest.
func writeImage(ctx context.Context, res *layers.Result, ref name.Reference, path, ociLayout, tarballPath, cacheDir string, attached []v1.Image, log hclog.Logger) error {
	var pub publish.Interface
	switch {
	case ociLayout != "":
		pub = &publish.Layout{Dir: ociLayout, Name: refName(ref), Referrers: attached}
	case tarballPath != "":
		dir, _ := filepath.Abs(path)
		tag, err := tarballTag(ref, dir)
		if err != nil {
			return err
		}
		pub = &publish.Tarball{Path: tarballPath, Tag: tag}
	default:
		pub = &publish.Layout{Dir: layers.LayoutDir(cacheDir), Name: refName(ref), Referrers: attached}
		// Builds on one cache share its layout's index.json: one writes it at a time.
		unlock, err := layers.LockCache(ctx, cacheDir, log)
		if err != nil {
			return fail(exitPublish, err)
		}
		defer unlock()
	}
	start := time.Now()
	out, err := pub.Publish(ctx, res.Image)
	if err != nil {
		return fail(exitPublish, err)
	}
	log.Info("image written", "ref", out, "took", since(start))
	fmt.Println(out)
	return nil
}

// built is what a build made, and what it read.
type built struct {
	plan *plan.Plan
	res  *layers.Result
	// dir is the repository's directory, info what git says of it.
	dir  string
	info repository
}

// build runs detect, plan and build on the repository at path.
func build(ctx context.Context, path string, c common, cacheDir string, log hclog.Logger) (*built, error) {
	p, dir, info, err := detectAndPlan(ctx, path, c, log)
	if err != nil {
		return nil, err
	}
	timeout, limits, err := buildBounds()
	if err != nil {
		return nil, err
	}
	transport, err := c.registry()
	if err != nil {
		return nil, err
	}
	cacheRepo, err := c.cacheRepository()
	if err != nil {
		return nil, err
	}
	keychain := c.keychain
	if keychain == nil {
		keychain = publish.Keychain(nil)
	}
	// The base's part of the bill of materials, when one will be written, is read while the
	// build goes on.
	var (
		scanning  sync.WaitGroup
		baseReady func(v1.Image)
		tap       func() layers.TarTap
	)
	if c.inventory {
		// What the build streams or writes whole is read for it as it goes; PrepareLayers
		// then reads only the base layers that were in the cache already.
		tap = func() layers.TarTap { return attest.NewTarRecorder(cacheDir) }
		baseReady = func(img v1.Image) {
			scanning.Go(func() {
				if err := attest.PrepareLayers(ctx, img, cacheDir); err != nil {
					log.Debug("reading the base for its bill of materials", "error", err)
				}
			})
		}
	}
	res, err := layers.Build(ctx, p, layers.Options{
		Source: dir, CacheDir: cacheDir, Epoch: info.epoch, Keychain: keychain, Transport: transport,
		StepTimeout: timeout, BuildLimits: limits, CacheRepo: cacheRepo, BaseReady: baseReady, Tap: tap, Logger: log,
	})
	scanning.Wait()
	if err != nil {
		return nil, inDir(dir, buildFailure(err))
	}
	return &built{plan: p, res: res, dir: dir, info: info}, nil
}

// buildBounds reads the time and memory a dependency install or build step may take from
// PYSHIP_BUILD_TIMEOUT and PYSHIP_BUILD_MEMORY; zero values mean the defaults.
func buildBounds() (time.Duration, sandbox.Limits, error) {
	var timeout time.Duration
	if v := os.Getenv("PYSHIP_BUILD_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, sandbox.Limits{}, usagef("PYSHIP_BUILD_TIMEOUT=%q: want a duration like 45m or 2h", v)
		}
		timeout = d
	}
	var limits sandbox.Limits
	if v := os.Getenv("PYSHIP_BUILD_MEMORY"); v != "" {
		mem, err := parseSize(v)
		if err != nil {
			return 0, sandbox.Limits{}, usagef("PYSHIP_BUILD_MEMORY=%q: %v", v, err)
		}
		limits = sandbox.DefaultBuildLimits
		limits.Memory = mem
	}
	return timeout, limits, nil
}

// detectAndPlan runs the first two phases on the repository at path, and returns the plan,
// the repository's absolute directory and what its history says.
func detectAndPlan(ctx context.Context, path string, c common, log hclog.Logger) (*plan.Plan, string, repository, error) {
	var repo repository
	if strings.Contains(c.platform, ",") {
		// build, test and publish make one plan for each platform.
		return nil, "", repo, usagef("--platform %q: this command takes one platform", c.platform)
	}
	dir, err := filepath.Abs(path)
	if err != nil {
		return nil, "", repo, usagef("%v", err)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, "", repo, fail(exitDetect, fmt.Errorf("%q does not exist\nhint: give the directory of your Python project, like pyship build ./myapp", path))
	case err != nil:
		return nil, "", repo, fail(exitDetect, err)
	case !st.IsDir():
		return nil, "", repo, fail(exitDetect, fmt.Errorf("%q is not a directory\nhint: give the directory that holds your project, not a file in it", path))
	}
	if repo, err = repoInfo(dir); err != nil {
		return nil, "", repo, err
	}
	start := time.Now()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, "", repo, fail(exitDetect, err)
	}
	defer root.Close()
	res, err := detect.Detect(ctx, detect.RootFS(root), detect.Options{Logger: log})
	if err != nil {
		return nil, "", repo, inDir(dir, fail(exitDetect, err))
	}
	// Open versions resolve as of the last change to the dependency files, so a commit that
	// changes only the app keeps the dependency layer. An install that reads the
	// repository's code (the project, a local path) depends on more than those files.
	deps := res.Dependencies
	readsCode := deps.Project || len(deps.Local) > 0 || (deps.Lock != nil && len(deps.Lock.Local) > 0)
	if !repo.committed.IsZero() && len(deps.Files) > 0 && !readsCode {
		t, id, err := dependencyTime(dir, deps.Files)
		switch {
		case err == nil:
			repo.committed = t.UTC()
			repo.committedBy = fmt.Sprintf(".git (commit %s, the last to change %s)", id[:12], strings.Join(deps.Files, ", "))
		case errors.Is(err, errHistory):
			log.Info("versions the requirements leave open resolve as of the last commit: the history does not show when "+strings.Join(deps.Files, ", ")+" last changed",
				"hint", "a full clone (fetch-depth: 0 in actions/checkout) lets commits that change only the app keep the dependency layer")
		default:
			log.Debug("resolving as of the last commit: when the dependency files last changed is not known", "reason", err)
		}
	}
	if c.base == "" && (res.Config == nil || res.Config.Base == "") {
		pythonForCommit(res, repo.committed)
		choosePython(ctx, res, c, log)
		if err := ctx.Err(); err != nil {
			return nil, "", repo, err
		}
	}
	labels, err := c.imageLabels()
	if err != nil {
		return nil, "", repo, err
	}
	p, err := plan.New(res, plan.Options{
		Base: c.base, BaseMirror: c.baseMirror, Platform: c.platform, Installer: c.installer,
		Source: repo.source, Revision: repo.revision, Committed: repo.committed, CommittedBy: repo.committedBy,
		Labels: labels,
	})
	if err != nil {
		return nil, "", repo, fail(exitPlan, err)
	}
	for _, w := range p.Warnings {
		log.Warn(w)
	}
	log.Info("planned", "python", p.Base.Python, "base", p.Base.Ref, "start", strings.Join(p.Config.Cmd, " "), "took", since(start))
	return p, dir, repo, nil
}

// pythonForCommit moves res.Python, where the repository leaves the version open and its
// requirements leave versions open too (they are resolved as of the commit), to the Python
// of the commit's time: the newest whose wheels were broad then. Old libraries on a much
// newer Python fail to build or import; the other way round they were tested.
func pythonForCommit(res *detect.Result, committed time.Time) {
	d := res.Dependencies
	if committed.IsZero() || d.Lock != nil || (len(d.Requirements) == 0 && !d.Project && len(d.Inferred) == 0) ||
		(res.Config != nil && res.Config.Resolve == "latest") {
		return
	}
	i := slices.Index(res.PythonChoices, res.Python.Value)
	if i < 0 {
		return
	}
	choices := res.PythonChoices[i:]
	m := detect.ForTime(choices, committed)
	if m == res.Python.Value {
		return
	}
	why := fmt.Sprintf("Python %s is the newest whose wheels were broad then", m)
	if committed.Before(detect.BroadWheels(m)) {
		why = fmt.Sprintf("Python %s is the oldest pyship picks by a commit's time", m)
	}
	res.Python = detect.Fact{Value: m, Source: ".git (the last commit)",
		Reason: fmt.Sprintf("the requirements leave versions open and are resolved as of the commit (%s); %s", committed.Format("2006-01-02"), why)}
	// Versions below it remain for the pinned requirements to pick.
	res.PythonChoices = res.PythonChoices[slices.Index(res.PythonChoices, m):]
}

// choosePython moves res.Python, where the repository leaves the version open, to the
// newest one that its pinned requirements have wheels for, asking the package index.
// PYSHIP_OFFLINE=1 skips the question.
func choosePython(ctx context.Context, res *detect.Result, c common, log hclog.Logger) {
	if len(res.PythonChoices) == 0 || len(res.Dependencies.Pins) == 0 {
		return
	}
	if os.Getenv("PYSHIP_OFFLINE") == "1" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("PYSHIP_OFFLINE=1: Python %s is kept without asking the package index which versions the pinned requirements support", res.Python.Value))
		return
	}
	cacheDir := ""
	if dir, err := c.cache(); err == nil {
		cacheDir = filepath.Join(dir, "index")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	choice := pyindex.Choose(ctx, pyindex.NewClient(cacheDir, log), res)
	res.Warnings = append(res.Warnings, choice.Warnings...)
	for _, p := range choice.SourceBuilds {
		res.Notes = append(res.Notes, detect.Note{What: "source build", Value: p.Name + " " + p.Version, Source: p.Source,
			Reason: "no wheel for CPython on linux/amd64: built from source, in a builder with a compiler if it needs one"})
	}
	log.Debug("asked the package index for the Python version", "pins", len(res.Dependencies.Pins), "python", choice.Python, "took", since(start))
	if choice.Python != res.Python.Value {
		res.Python = detect.Fact{Value: choice.Python, Source: choice.Source, Reason: choice.Reason}
		if eol := detect.EndOfLife(choice.Python); eol != "" {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: the pinned requirements hold the app to Python %s, which reached its end of life in %s and gets no security fixes: update the requirements the plan names to move to %s or newer",
				choice.Source, choice.Python, eol, detect.OldestMaintained()))
		}
	}
}

// buildFailure gives a build error the exit code of what failed.
func buildFailure(err error) error {
	var (
		base    *layers.BaseError
		install *layers.InstallError
		step    *layers.StepError
		timeout *layers.TimeoutError
		apt     *layers.AptError
		uv      *layers.UVError
		machine *layers.MachineError
		native  *layers.NativeOnlyError
		priv    *sandbox.PrivilegeError
		repo    *detect.Error
	)
	switch {
	case errors.As(err, &base):
		return fail(exitBase, err)
	case errors.As(err, &install), errors.As(err, &step), errors.As(err, &timeout), errors.As(err, &apt), errors.As(err, &uv),
		errors.As(err, &machine), errors.As(err, &native):
		return fail(exitInstall, err)
	case errors.As(err, &priv), errors.Is(err, sandbox.ErrUnsupported):
		return fail(exitSandbox, err)
	case errors.As(err, &repo):
		return fail(exitDetect, err)
	default:
		return fail(exitBuild, err)
	}
}

func refName(ref name.Reference) string {
	if ref == nil {
		return ""
	}
	return ref.Name()
}

var nonNameChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// tarballTag is the name a loaded tarball gets: --image, or the directory's name.
func tarballTag(ref name.Reference, dir string) (name.Tag, error) {
	if t, ok := ref.(name.Tag); ok {
		return t, nil
	}
	if ref != nil {
		return name.Tag{}, usagef("--tarball needs --image to be a tag, not a digest")
	}
	base := strings.Trim(nonNameChars.ReplaceAllString(strings.ToLower(filepath.Base(dir)), "-"), "-._")
	if base == "" {
		base = "app"
	}
	return name.NewTag(base + ":latest")
}

func since(t time.Time) string {
	return time.Since(t).Round(time.Millisecond).String()
}
