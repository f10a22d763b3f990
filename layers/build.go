package layers

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/detect"
	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/pyindex"
	"github.com/pyship/pyship/sandbox"
)

// Options configure a build.
type Options struct {
	// Source is the repository directory on the host.
	Source string
	// CacheDir holds base blobs, extracted base file systems and layers. Build makes it
	// private (PrepareCache) and holds its lock (LockCache) while it runs.
	CacheDir string
	// Epoch is the time stamp of the application layer's files and of the image.
	Epoch time.Time
	// Keychain authenticates pulls of the base image; default authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport carries the base pulls; default remote.DefaultTransport.
	Transport http.RoundTripper
	// Installer makes the dependency layer; default the sandboxed pip installer.
	Installer Installer
	// StepTimeout bounds the dependency install and each build step; default
	// DefaultStepTimeout.
	StepTimeout time.Duration
	// BuildLimits bound the memory, CPU and processes of the install and the build steps;
	// zero means sandbox.DefaultBuildLimits.
	BuildLimits sandbox.Limits
	// CacheRepo, when set, is a repository that keeps dependency layers by cache key for
	// every build that can reach it: a local miss looks there before installing, and an
	// install is stored there (see regcache.go).
	CacheRepo *name.Repository
	// BaseReady, when set, is called with the base image once its layers are in the
	// cache, for work that reads them beside the build (a bill of materials).
	BaseReady func(v1.Image)
	// Tap, when set, gives a TarTap for each layer whose whole tar the build reads or
	// writes anyway: the base's layers as they stream in, the dependency and build-step
	// layers as they are written.
	Tap    func() TarTap
	Logger hclog.Logger

	// scrap, set by Build, removes scratch directories beside the rest of the build, which
	// waits for it before it lets the cache go (removeScratch).
	scrap *sync.WaitGroup
}

// removeScratch removes the scratch directory dir beside the rest of the build (opts are
// Build's). Its files are nothing the build reads again: uv's cache of an install, whose
// 5,000 names took 0.09 s of a Django build to remove, goes while the build steps run on
// one CPU.
func removeScratch(opts Options, dir string) {
	opts.scrap.Go(func() {
		if err := os.RemoveAll(dir); err != nil {
			opts.Logger.Warn("could not remove a build's scratch directory; the next build tries again", "path", dir, "error", err)
		}
	})
}

// A TarTap is handed a layer's tar as the build streams or writes it, for work that would
// otherwise read the layer again (attest.TarRecorder: the bill of materials). Its writes
// must not fail the build's. Keep or Drop ends it.
type TarTap interface {
	io.Writer
	// Keep says that the tar was the whole of the layer with digest d, and checked out.
	Keep(d v1.Hash) error
	// Drop says that it was not: the layer was not made or did not check out. After
	// Keep, it does nothing.
	Drop()
}

// tapped returns a tap from tap, or nil when tap is nil.
func tapped(tap func() TarTap) TarTap {
	if tap == nil {
		return nil
	}
	return tap()
}

// DefaultStepTimeout is how long the dependency install, or a build step, may take: long
// enough to compile a large source distribution, short enough that a build that hangs
// ends.
const DefaultStepTimeout = 30 * time.Minute

// Result is a built image and how it was made.
type Result struct {
	Image v1.Image
	// Base is the base image pinned by digest.
	Base name.Digest
	// BaseLayers are the base image's layer digests: a registry that has the base can
	// mount them instead of receiving them.
	BaseLayers []v1.Hash
	// DependenciesCached is true when the dependency layer came from the cache and no
	// installer ran.
	DependenciesCached bool
}

// BaseError reports that the base image could not be had.
type BaseError struct {
	Ref string
	Err error
}

func (e *BaseError) Error() string {
	hint := "check the name and tag, your network, and PYSHIP_BASE_MIRROR or --base"
	var terr *transport.Error
	if errors.As(e.Err, &terr) && terr.StatusCode == 404 {
		hint = "the registry has no such image: check the Python version (.python-version) or --base"
	}
	return fmt.Sprintf("pulling the base image %s: %v\nhint: %s", e.Ref, e.Err, hint)
}

func (e *BaseError) Unwrap() error { return e.Err }

// Build executes p into an image.
func Build(ctx context.Context, p *plan.Plan, opts Options) (*Result, error) {
	opts, err := withDefaults(p, opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	platform, err := v1.ParsePlatform(p.Platform)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", p.Platform, err)
	}
	rules, err := dirRules(p.Writable)
	if err != nil {
		return nil, err
	}
	// One build at a time changes a cache: the extracted file systems and the OCI layout's
	// index cannot take two writers.
	if err := PrepareCache(opts.CacheDir, log); err != nil {
		return nil, err
	}
	unlock, err := LockCache(ctx, opts.CacheDir, log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	opts.scrap = &sync.WaitGroup{}
	defer opts.scrap.Wait()
	cleanScratch(opts.CacheDir, log)

	b := &building{plan: p, opts: opts, rules: rules}
	defer b.waitEarly()
	// The application first: the build steps' cache key, looked up while the base
	// downloads, needs its layer.
	if err := b.application(); err != nil {
		return nil, err
	}
	if err := b.base(ctx, *platform); err != nil {
		return nil, err
	}
	if err := b.dependencies(ctx); err != nil {
		return nil, err
	}
	if err := b.buildSteps(ctx); err != nil {
		return nil, err
	}
	return b.image(ctx)
}

// withDefaults fills in the options a build leaves out, and refuses a plan whose
// installer it has none for.
func withDefaults(p *plan.Plan, opts Options) (Options, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = DefaultStepTimeout
	}
	if opts.Installer == nil {
		if i := p.Dependencies.Installer; i != plan.InstallerUV && i != plan.InstallerPip {
			return opts, fmt.Errorf("the plan's installer %q is not one pyship has: uv or pip", i)
		}
		opts.Installer = &SandboxInstaller{Logger: opts.Logger, CacheDir: opts.CacheDir, Timeout: opts.StepTimeout, Limits: opts.BuildLimits}
	}
	if opts.Epoch.IsZero() {
		opts.Epoch = DefaultEpoch
	}
	return opts, nil
}

// building is one build's state: what each phase made that later ones use.
type building struct {
	plan  *plan.Plan
	opts  Options
	rules []dirRule

	baseImg    v1.Image
	baseDigest name.Digest
	// root is the base's extracted file system, once something needs it (rootFS).
	root string
	// hostRoot is, for an image of another architecture, the file system of the same
	// base for this machine's, which the install runs on (installRootFS).
	hostRoot string
	app      v1.Layer
	appTree  string
	// system are the trees of Debian packages the install and the steps run with.
	system []string
	deps   v1.Layer
	cached bool
	// sysLayer holds sysPackages: the packages the plan asks for and the runtime
	// libraries that source-built dependencies link.
	sysLayer    v1.Layer
	sysPackages []string
	steps       v1.Layer
	// early is closed once what prepareDependencies started while the base downloads is
	// done; stopEarly cancels it. askedRegistry is set when it looked in the registry
	// cache, which then need not be asked again.
	early         chan struct{}
	stopEarly     context.CancelFunc
	askedRegistry bool
	// earlyKey is the dependency key prepareDependencies computed, reused when no system
	// tree joins it: hashing the inputs (the repository too, for a project) once.
	earlyKey string
	// askedSteps and askedUser are set when prepareDependencies looked for the build
	// steps' layer and the user layer in the registry cache.
	askedSteps, askedUser bool
}

// baseUse is what a build needs of the base's layers beyond their blobs.
type baseUse int

const (
	// useRoot: something runs on the base (the install, the build steps, apt), so its
	// file system is extracted as it downloads.
	useRoot baseUse = iota
	// useAccounts: only the user layer is made, from the base's account files, read out
	// of the layers as they download.
	useAccounts
	// useBlobs: every layer the build adds is cached; the base is only downloaded.
	useBlobs
)

// base resolves and pulls the base. Once the base's digest is known, the caches are asked
// (by manifest only) for the layers above it, which decides what the download is for: the
// base is extracted only when something will run on it. The download then starts, and the
// registry cache's blobs (or uv) come beside it.
func (b *building) base(ctx context.Context, platform v1.Platform) error {
	start := time.Now()
	var err error
	resolved := func(img v1.Image, d v1.Hash) baseUse {
		early, stop := context.WithCancel(ctx)
		b.early, b.stopEarly = make(chan struct{}), stop
		use := make(chan baseUse, 1)
		go func() {
			defer close(b.early)
			b.prepareDependencies(early, img, d, use)
		}()
		u := <-use
		if u == useRoot && b.plan.Dependencies.Wheels != "" {
			// Nothing runs on a base of another architecture: the install runs on this
			// machine's (installRootFS), and only the user layer reads this one.
			u = useAccounts
		}
		return u
	}
	var use baseUse
	if b.baseImg, b.baseDigest, use, err = pullBase(ctx, b.plan.Base.Ref, platform, b.opts, resolved); err != nil {
		return err
	}
	if b.opts.BaseReady != nil {
		b.opts.BaseReady(b.baseImg)
	}
	if use == useRoot {
		if _, err := b.rootFS(); err != nil {
			return err
		}
	}
	b.opts.Logger.Info("base resolved", "ref", b.baseDigest.String(), "extracted", use == useRoot, "took", since(start))
	return nil
}

// rootFS returns the base's file system, extracting it the first time it is needed.
func (b *building) rootFS() (string, error) {
	if b.root == "" {
		root, err := rootfs(b.baseImg, b.opts.CacheDir)
		if err != nil {
			return "", err
		}
		b.root = root
	}
	return b.root, nil
}

// installRootFS returns the file system the install runs on: the base's, or, for an image
// of another architecture (the plan's wheels), the same base's for this machine's
// architecture, pulled the first time it is needed. Its python makes the venv and
// compiles the byte code, which is the same on every architecture for one Python version.
func (b *building) installRootFS(ctx context.Context) (string, error) {
	if b.plan.Dependencies.Wheels == "" {
		return b.rootFS()
	}
	if b.hostRoot != "" {
		return b.hostRoot, nil
	}
	start := time.Now()
	host := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	img, d, _, err := pullBase(ctx, b.plan.Base.Ref, host, b.opts, func(v1.Image, v1.Hash) baseUse { return useRoot })
	if err != nil {
		var berr *BaseError
		if errors.As(err, &berr) {
			berr.Err = fmt.Errorf("for %s, to install the %s image's dependencies with: %w", host, b.plan.Platform, berr.Err)
		}
		return "", err
	}
	if err := samePython(b.baseImg, img); err != nil {
		return "", fmt.Errorf("the base %s: %w", b.plan.Base.Ref, err)
	}
	root, err := rootfs(img, b.opts.CacheDir)
	if err != nil {
		return "", err
	}
	b.hostRoot = root
	b.opts.Logger.Info("base for this machine resolved", "ref", d.String(), "took", since(start))
	return root, nil
}

// samePython checks that two images of one base carry the same Python version, when
// their configurations say it (PYTHON_VERSION, as the official images set it).
func samePython(target, host v1.Image) error {
	version := func(img v1.Image) (string, error) {
		cf, err := img.ConfigFile()
		if err != nil {
			return "", err
		}
		for _, kv := range cf.Config.Env {
			if v, ok := strings.CutPrefix(kv, "PYTHON_VERSION="); ok {
				return v, nil
			}
		}
		return "", nil
	}
	t, err := version(target)
	if err != nil {
		return err
	}
	h, err := version(host)
	if err != nil {
		return err
	}
	if t != "" && h != "" && t != h {
		return fmt.Errorf("its %s image has Python %s and its %s one Python %s: the venv and its byte code are made by one for the other; use a base whose images carry one version", "target", t, runtime.GOARCH, h)
	}
	return nil
}

// prepareDependencies does the work of the layers above the base that needs no base file
// system. It looks for the dependency layer in the local cache and the registry cache and,
// when it is there, for the build steps' layer and the user layer (the registry's within
// lookupTimeout: a cache only saves time); it sends on use what the build needs of the
// base, which starts the base's download; then, beside the download, it pulls what the
// registry cache has into the local cache, or, with no dependency layer cached, fetches uv
// for the install. A system layer below the dependencies is part of their key, and is
// made later: then nothing is done early.
func (b *building) prepareDependencies(ctx context.Context, base v1.Image, d v1.Hash, use chan<- baseUse) {
	p, opts := b.plan, b.opts
	told := false
	tell := func(u baseUse) {
		if !told {
			use <- u
			told = true
		}
	}
	defer tell(useRoot)
	if p.System != nil && len(p.System.Packages) > 0 {
		return
	}
	key, err := dependencyKey(p, d, nil, opts)
	if err != nil {
		return
	}
	b.earlyKey = key
	lookup, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	deps, found := b.cacheEntry(lookup, key, "dependencies", &b.askedRegistry)
	if !found {
		tell(useRoot)
		_, sandboxed := opts.Installer.(*SandboxInstaller)
		if sandboxed && slices.ContainsFunc(p.Dependencies.Steps, func(st plan.InstallStep) bool { return st.Kind == plan.StepUV }) {
			// The sandbox installer's uv, fetched beside the base. An error here is met
			// again, and reported, by the install.
			_, _ = uvBinary(ctx, opts.CacheDir, opts.Logger)
		}
		return
	}
	layersDir := filepath.Join(opts.CacheDir, "layers")
	var (
		pulls  = []*registryEntry{deps}
		checks = []func(io.Reader) error{below(p.Dependencies.Venv)}
		digest v1.Hash
		linked []string
	)
	if deps != nil {
		digest, linked = deps.layer.Digest, deps.runtime
	} else if l, err := cachedLayer(layersDir, key, opts.Logger); err == nil && l != nil {
		digest, _ = l.Digest()
		linked, err = readRuntimePackages(layersDir, key)
		if err != nil {
			return
		}
	} else {
		return
	}
	u := useBlobs
	if len(linked) > 0 {
		// Runtime libraries for source-built dependencies: apt runs on the base.
		u = useRoot
	}
	if u != useRoot && len(p.BuildSteps) > 0 {
		skey, err := stepsKey(p, base, nil, digest, b.app, b.rules, opts)
		if err != nil {
			return
		}
		steps, found := b.cacheEntry(lookup, skey, "build steps", &b.askedSteps)
		if !found && opts.CacheRepo != nil && b.appTree != "" {
			if tkey, err := stepsTraceKey(p, base, nil, digest, b.rules, opts); err == nil {
				steps = tracedEntry(lookup, tkey, skey, b.appTree, opts)
				found = steps != nil
			}
		}
		if !found {
			u = useRoot
		}
		pulls, checks = append(pulls, steps), append(checks, below(p.App.Dir))
	}
	if u == useBlobs {
		user, found := b.cacheEntry(lookup, userKey(d, nil, p.App.Dir, b.rules), "user", &b.askedUser)
		if !found {
			u = useAccounts
		}
		pulls, checks = append(pulls, user), append(checks, checkUserTar)
	}
	tell(u)
	var wg sync.WaitGroup
	for i, e := range pulls {
		if e != nil {
			// The build steps run over the dependencies' tree: it is made as they arrive.
			tree := i == 0 && u == useRoot
			wg.Go(func() { e.pull(ctx, layersDir, checks[i], tree, opts) })
		}
	}
	wg.Wait()
}

// lookupTimeout bounds the registry cache's answers to what it holds, which the base's
// download waits for.
const lookupTimeout = 20 * time.Second

// cacheEntry looks for key's layer in the local cache, then in the registry cache
// (setting asked), and returns the registry's entry, to pull, when only it has one.
func (b *building) cacheEntry(ctx context.Context, key, what string, asked *bool) (*registryEntry, bool) {
	if _, err := os.Stat(filepath.Join(b.opts.CacheDir, "layers", key+keySuffix)); err == nil {
		return nil, true
	}
	if b.opts.CacheRepo == nil {
		return nil, false
	}
	*asked = true
	e := lookupRegistryCache(ctx, key, what, b.opts)
	return e, e != nil
}

// waitEarly waits for what prepareDependencies started, cancelling it when the build
// ends first.
func (b *building) waitEarly() {
	if b.early == nil {
		return
	}
	b.stopEarly()
	<-b.early
}

// application writes the application layer first: the install and the build steps see
// the application as the image will hold it, in a tree that belongs to the sandbox.
func (b *building) application() error {
	start := time.Now()
	p, opts := b.plan, b.opts
	var err error
	if b.app, err = appLayer(opts.Source, p.App, b.rules, opts.CacheDir, opts.Epoch, opts.Logger); err != nil {
		return err
	}
	tree, err := layerTree(b.app, opts.CacheDir)
	if err != nil {
		return err
	}
	b.appTree = filepath.Join(tree, filepath.FromSlash(p.App.Dir))
	if err := checkStartFile(p, opts.Source, b.appTree); err != nil {
		return err
	}
	opts.Logger.Info("application layer written", "took", since(start))
	return nil
}

// dependencies installs the Debian packages the plan asks for (source builds of the
// dependencies may need them), then the dependency layer, then writes the image's system
// layer with the runtime libraries that source-built dependencies link.
func (b *building) dependencies(ctx context.Context) error {
	p, opts, log := b.plan, b.opts, b.opts.Logger
	baseHash, err := b.baseImg.Digest()
	if err != nil {
		return err
	}
	var asked []string
	if p.Dependencies.Wheels != "" && p.System != nil && len(p.System.Packages) > 0 {
		return &NativeOnlyError{What: "installing the Debian packages " + strings.Join(p.System.Packages, " "), Platform: p.Platform}
	}
	if p.System != nil && len(p.System.Packages) > 0 {
		start := time.Now()
		asked = p.System.Packages
		root, err := b.rootFS()
		if err != nil {
			return err
		}
		tree, err := systemTree(ctx, root, nil, systemKey("system", baseHash, nil, asked), asked, "the image", opts)
		if err != nil {
			return err
		}
		b.system = []string{tree}
		log.Info("system packages installed", "packages", strings.Join(asked, " "), "took", since(start))
	}

	if b.early != nil {
		<-b.early
	}
	start := time.Now()
	depsKey, askRegistry := "", true
	if len(b.system) == 0 {
		depsKey, askRegistry = b.earlyKey, !b.askedRegistry
	}
	installRoot := func() (string, error) { return b.installRootFS(ctx) }
	deps, cached, linked, err := dependencyLayer(ctx, p, b.baseImg, installRoot, b.system, b.appTree, opts, depsKey, askRegistry)
	if err != nil {
		return err
	}
	b.deps, b.cached = deps, cached
	if cached {
		log.Info("dependencies cached", "took", since(start))
	} else {
		log.Info("dependencies installed", "took", since(start))
	}

	all := union(asked, linked)
	if len(all) == 0 {
		return nil
	}
	start = time.Now()
	key := systemKey("system", baseHash, nil, all)
	root, err := b.rootFS()
	if err != nil {
		return err
	}
	tree, err := systemTree(ctx, root, nil, key, all, "the image", opts)
	if err != nil {
		return err
	}
	if b.sysLayer, err = systemLayer(tree, key, opts); err != nil {
		return err
	}
	b.system, b.sysPackages = []string{tree}, all
	log.Info("system layer written", "packages", strings.Join(all, " "), "took", since(start))
	return nil
}

// buildSteps runs the plan's build steps, when it has any.
func (b *building) buildSteps(ctx context.Context) error {
	if len(b.plan.BuildSteps) == 0 {
		return nil
	}
	if p := b.plan; p.Dependencies.Wheels != "" {
		st := p.BuildSteps[0]
		return &NativeOnlyError{What: "build step " + st.Name + " (from " + st.Source + ")", Platform: p.Platform}
	}
	start := time.Now()
	var (
		err    error
		cached bool
	)
	if b.steps, cached, err = stepsLayer(ctx, b.plan, b.baseImg, b.rootFS, b.system, b.deps, b.app, b.appTree, b.rules, !b.askedSteps, b.opts); err != nil {
		return err
	}
	if cached {
		b.opts.Logger.Info("build steps cached", "steps", len(b.plan.BuildSteps), "took", since(start))
	} else {
		b.opts.Logger.Info("build steps run", "steps", len(b.plan.BuildSteps), "took", since(start))
	}
	return nil
}

// image writes the user layer and assembles the image, each layer with the history the
// plan gives it.
func (b *building) image(ctx context.Context) (*Result, error) {
	p := b.plan
	baseHash, err := b.baseImg.Digest()
	if err != nil {
		return nil, err
	}
	key := userKey(baseHash, b.system, p.App.Dir, b.rules)
	user, err := userLayer(ctx, key, b.accountFiles, p, b.rules, !b.askedUser, b.opts)
	if err != nil {
		return nil, err
	}
	var adds []addendum
	if b.sysLayer != nil {
		adds = append(adds, addendum{b.sysLayer, b.systemHistory()})
	}
	adds = append(adds, []addendum{
		{b.deps, p.History.Dependencies},
		{user, p.History.User},
		{b.app, p.History.App},
	}...)
	if b.steps != nil {
		adds = append(adds, addendum{b.steps, p.History.BuildSteps})
	}
	img, err := assemble(b.baseImg, b.baseDigest, p, b.opts.Epoch, adds)
	if err != nil {
		return nil, err
	}
	baseLayers, err := b.baseImg.Layers()
	if err != nil {
		return nil, err
	}
	res := &Result{Image: img, Base: b.baseDigest, DependenciesCached: b.cached}
	for _, l := range baseLayers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		res.BaseLayers = append(res.BaseLayers, d)
	}
	return res, nil
}

// accountFiles returns the image's /etc/passwd and /etc/group below the user layer (an
// absent one is missing from the map): the topmost system tree's, or the base's, from
// the records its download left when it was not extracted.
func (b *building) accountFiles() (map[string]string, error) {
	if b.root == "" && len(b.system) == 0 {
		files, err := baseAccounts(b.baseImg, b.opts.CacheDir)
		if !errors.Is(err, errNoAccounts) {
			return files, err
		}
	}
	root, err := b.rootFS()
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, name := range accountFiles {
		for _, tree := range append(slices.Clone(b.system), root) {
			p, err := resolveIn(tree, "/"+name)
			if err != nil {
				return nil, err
			}
			data, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			files[name] = string(data)
			break
		}
	}
	return files, nil
}

// systemHistory is the plan's line for the system layer, or, when source builds added
// runtime libraries the plan could not know of, the same line for all its packages.
func (b *building) systemHistory() string {
	if line := b.plan.History.System; line != "" && slices.Equal(union(b.plan.System.Packages, nil), b.sysPackages) {
		return line
	}
	return plan.SystemHistory(b.sysPackages)
}

func since(t time.Time) string {
	return time.Since(t).Round(time.Millisecond).String()
}

// pullBase resolves the base to a digest for the platform, and says (resolved, once it
// knows the digest) what the build needs of it. Its layers are cached on disk,
// so later builds fetch only the manifest.
func pullBase(ctx context.Context, ref string, platform v1.Platform, opts Options, resolved func(v1.Image, v1.Hash) baseUse) (v1.Image, name.Digest, baseUse, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, name.Digest{}, useRoot, &BaseError{Ref: ref, Err: err}
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(platform), remote.WithAuthFromKeychain(opts.Keychain)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, name.Digest{}, useRoot, &BaseError{Ref: ref, Err: err}
	}
	d, err := img.Digest()
	if err != nil {
		return nil, name.Digest{}, useRoot, &BaseError{Ref: ref, Err: err}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, name.Digest{}, useRoot, &BaseError{Ref: ref, Err: err}
	}
	if cf.Architecture != platform.Architecture || cf.OS != platform.OS {
		return nil, name.Digest{}, useRoot, &BaseError{Ref: ref, Err: fmt.Errorf("the image is for %s/%s, not %s", cf.OS, cf.Architecture, platform)}
	}
	use := useRoot
	if resolved != nil {
		use = resolved(img, d)
	}
	img, err = cachedBase(img, d, LayoutDir(opts.CacheDir), use, opts.Tap, opts.Logger)
	if err != nil {
		return nil, name.Digest{}, useRoot, &BaseError{Ref: ref, Err: err}
	}
	return img, r.Context().Digest(d.String()), use, nil
}

// LayoutDir is the OCI layout in the cache that holds base images and, unless told
// otherwise, built ones: they share blobs.
func LayoutDir(cacheDir string) string { return filepath.Join(cacheDir, "oci") }

// cachedBase keeps base images in the cache's OCI layout, so their layers are downloaded
// once. The cached blobs are checked against their digests first: a damaged one is removed,
// with a warning, and fetched again.
func cachedBase(img v1.Image, d v1.Hash, dir string, use baseUse, tap func() TarTap, log hclog.Logger) (v1.Image, error) {
	lp, err := openLayout(dir, log)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	bad, missing := badBlobs(lp, d, m, filepath.Join(filepath.Dir(dir), verifiedDir))
	for _, p := range bad {
		log.Warn("a cached base image file does not match its digest; fetching it again", "path", p)
		if err := removeAll(p); err != nil {
			return nil, err
		}
	}
	if len(bad) == 0 && !missing {
		if cached, err := lp.Image(d); err == nil {
			return cached, nil
		}
	}
	if os.Geteuid() == 0 {
		// As root, the layers are extracted into trees as they download (or, when
		// nothing will run on them, read for what the build needs).
		if err := streamLayers(img, lp, filepath.Dir(dir), use, tap, log); err != nil {
			return nil, err
		}
	}
	if err := lp.WriteImage(img); err != nil {
		return nil, err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return nil, err
	}
	if err := addToIndex(lp, *desc); err != nil {
		return nil, err
	}
	return lp.Image(d)
}

// dependencyLayer returns the venv layer from the cache, or has the installer make it, on
// the base with the system trees stacked on it. The cache key covers everything the install
// depends on: the base digest, the system packages, the platform, the installer and the
// bytes of every requirements file. rootFS gives the base's file system, for the install.
// It also returns the Debian packages holding runtime libraries that what the install
// built from source links. key, when not empty, is that key, computed already;
// askRegistry is false when the registry cache was asked already.
func dependencyLayer(ctx context.Context, p *plan.Plan, base v1.Image, rootFS func() (string, error), system []string, appTree string, opts Options, key string, askRegistry bool) (v1.Layer, bool, []string, error) {
	d, err := base.Digest()
	if err != nil {
		return nil, false, nil, err
	}
	if key == "" {
		if key, err = dependencyKey(p, d, system, opts); err != nil {
			return nil, false, nil, err
		}
	}
	layersDir := filepath.Join(opts.CacheDir, "layers")
	if l, err := cachedLayer(layersDir, key, opts.Logger); l != nil || err != nil {
		if l == nil {
			return nil, false, nil, err
		}
		runtime, err := readRuntimePackages(layersDir, key)
		if err == nil {
			return l, true, runtime, nil
		}
		opts.Logger.Warn("a cache entry is unreadable; installing again", "key", key, "error", err)
	}
	if opts.CacheRepo != nil && askRegistry {
		if l, linked, ok := fromRegistryCache(ctx, key, "dependencies", below(p.Dependencies.Venv), layersDir, len(p.BuildSteps) > 0, opts); ok {
			return l, true, linked, nil
		}
	}
	if hostPlatform := "linux/" + runtime.GOARCH; p.Platform != hostPlatform && p.Dependencies.Wheels == "" {
		return nil, false, nil, fmt.Errorf("installing dependencies for %s on a %s machine takes wheels for it, which the plan does not say (plan it with --platform %s); or build on a %s machine", p.Platform, hostPlatform, p.Platform, p.Platform)
	}
	root, err := rootFS()
	if err != nil {
		return nil, false, nil, err
	}
	if err := os.MkdirAll(layersDir, 0o700); err != nil {
		return nil, false, nil, err
	}
	tmp, err := os.MkdirTemp(layersDir, ".install-")
	if err != nil {
		return nil, false, nil, err
	}
	defer removeScratch(opts, tmp)
	pd := p.Dependencies
	req := InstallRequest{
		Root: root, Over: system, Source: opts.Source, AppTree: appTree, AppDir: p.App.Dir,
		Steps: pd.Steps, Requirements: pd.Requirements, Project: pd.Project, Packages: pd.Packages, Lock: pd.Lock, LockRequirements: pd.LockRequirements,
		Files: pd.Files, Venv: pd.Venv, Env: envOf(base),
	}
	venv, builder, err := install(ctx, p, root, d, req, tmp, opts)
	if err != nil {
		return nil, false, nil, err
	}
	installed := time.Now()
	var runtime []string
	if p.Dependencies.Wheels != "" {
		// Wheels carry the libraries they link (auditwheel); what they hold must be for
		// the target.
		if err := checkMachine(venv, p.Platform); err != nil {
			return nil, false, nil, err
		}
	} else if runtime, err = runtimePackages(venv, root, system, builder, opts); err != nil {
		return nil, false, nil, err
	}
	if err := writeRuntimePackages(layersDir, key, runtime); err != nil {
		return nil, false, nil, err
	}
	opts.Logger.Debug("linked libraries checked", "took", since(installed))
	written := time.Now()
	fill := func(w *normalisingWriter) error {
		return writeTree(w, venv, treeOptions{Prefix: p.Dependencies.Venv, AllowOutsideLinks: true})
	}
	var l v1.Layer
	if rel, rerr := filepath.Rel(tmp, venv); rerr == nil && filepath.IsLocal(rel) {
		// The venv is scratch: its files move into the layer's tree, which the build
		// steps and the smoke test run over.
		l, err = writeLayerTree(layersDir, key, DefaultEpoch, nil, opts.CacheDir, tapped(opts.Tap), opts.Logger, fill)
	} else {
		// An installer's venv elsewhere is left as it is.
		l, err = writeLayerFile(layersDir, key, DefaultEpoch, nil, fill)
	}
	if err != nil {
		return nil, false, nil, err
	}
	opts.Logger.Debug("dependency layer written", "took", since(written))
	if opts.CacheRepo != nil {
		platform, err := v1.ParsePlatform(p.Platform)
		if err != nil {
			return nil, false, nil, err
		}
		toRegistryCache(ctx, key, "dependencies", l, runtime, "", *platform, opts)
	}
	return l, false, runtime, nil
}

// dependencyKey is the cache key of the dependency layer: everything the install depends
// on.
func dependencyKey(p *plan.Plan, base v1.Hash, system []string, opts Options) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "pyship dependencies v4\n%s\nbase %s\nplatform %s\ninstaller %s %s\nvenv %s\nproject %v\n",
		layerFormat, base, p.Platform, opts.Installer.Name(), p.Dependencies.Installer, p.Dependencies.Venv, p.Dependencies.Project)
	if p.Dependencies.Installer == plan.InstallerUV {
		fmt.Fprintf(h, "uv %s\n", plan.UVVersion)
	}
	// The commands make the venv: another command, another layer. pip's stand in for uv's
	// when uv cannot read the requirements.
	for _, st := range p.Dependencies.Steps {
		fmt.Fprintf(h, "step %s %q\n", st.Kind, st.Args)
	}
	for _, st := range p.Dependencies.PipSteps {
		fmt.Fprintf(h, "pip step %s %q\n", st.Kind, st.Args)
	}
	// Where the packages come from: the registry cache shares the layer with every runner
	// that has the same key, so one with another index must not find it.
	for _, index := range pyindex.HostIndexes() {
		fmt.Fprintf(h, "index %s\n", detect.WithoutCredentials(index))
	}
	fmt.Fprintf(h, "trusted hosts %q\n", os.Getenv("PIP_TRUSTED_HOST"))
	for _, s := range system {
		fmt.Fprintf(h, "system %s\n", filepath.Base(s))
	}
	for _, r := range p.Dependencies.Requirements {
		fmt.Fprintf(h, "requirements %s\n", r)
	}
	if t := p.Dependencies.UploadedBefore; t != "" {
		fmt.Fprintf(h, "uploaded before %s\n", t)
	}
	src, err := os.OpenRoot(opts.Source)
	if err != nil {
		return "", err
	}
	defer src.Close()
	for _, f := range p.Dependencies.Files {
		data, err := readRegular(src, f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %s %d\n", f, len(data))
		h.Write(data)
	}
	if installsSource(p) {
		// The project's own code is copied into the venv, so the venv depends on it too.
		fmt.Fprintf(h, "source\n")
		if err := hashTree(h, opts.Source, p.App); err != nil {
			return "", err
		}
	}
	return "deps-" + hex.EncodeToString(h.Sum(nil)), nil
}

// install runs the plan's install, and again when a failure says how to succeed: without
// the standard library's modules a requirements file lists, with the build tools of an old
// source distribution's time, in a builder with a compiler. It returns the venv, and the
// builder's tree when one was used.
func install(ctx context.Context, p *plan.Plan, root string, base v1.Hash, req InstallRequest, tmp string, opts Options) (venv, builder string, err error) {
	attempt := func(name string) (string, error) {
		req.Scratch = filepath.Join(tmp, name)
		if err := os.Mkdir(req.Scratch, 0o700); err != nil {
			return "", err
		}
		return opts.Installer.Install(ctx, req)
	}
	venv, err = attempt("1")
	var failed *InstallError
	if errors.As(err, &failed) && failed.Tool == plan.InstallerUV && len(p.Dependencies.PipSteps) > 0 {
		if what := uvCannotRead(failed.Output); what != "" {
			opts.Logger.Warn("uv cannot read the requirements, which pip reads: installing with pip", "uv said", what,
				"hint", "write the requirement on one line (or set installer = \"pip\" in pyship.toml) to install with uv")
			req.Steps = p.Dependencies.PipSteps
			venv, err = attempt("1-pip")
		}
	}
	if errors.As(err, &failed) && failed.Stdlib != "" {
		// A requirements file that lists modules of the standard library: once more,
		// without them.
		drop, derr := stdlibLines(opts.Source, req.Requirements)
		if derr != nil {
			return "", "", derr
		}
		if len(drop) > 0 {
			for _, f := range slices.Sorted(maps.Keys(drop)) {
				for _, n := range drop[f] {
					opts.Logger.Warn(fmt.Sprintf("%s:%d names a module of Python's standard library, which is no package to install: left out of the install; delete the line", f, n))
				}
			}
			req.Drop = drop
			venv, err = attempt("1-stdlib")
		}
	}
	if errors.As(err, &failed) && failed.MemoryLimit == 0 {
		if c := buildToolConstraints(failed.Output); len(c) > 0 {
			// A source distribution written for an older setuptools: once more, with the
			// build tools of its time.
			opts.Logger.Info("a source distribution needs an older setuptools to build: installing again with it", "constraints", strings.Join(c, " "))
			req.BuildConstraints = c
			venv, err = attempt("1-tools")
		}
	}
	if errors.As(err, &failed) && p.Dependencies.Wheels != "" {
		// A builder would compile for this machine, not for the image's.
		failed.Wheels = p.Dependencies.Wheels
		failed.Platform = p.Platform
		return "", "", err
	}
	if errors.As(err, &failed) && failed.MemoryLimit == 0 {
		// A source build that needs a compiler: once more, in a builder.
		builder, venv, err := installInBuilder(ctx, p, root, base, req, failed, tmp, opts)
		return venv, builder, err
	}
	return venv, "", err
}

// installsSource reports whether the install copies repository code into the venv: the
// project itself, or local paths the requirements or the lock name.
func installsSource(p *plan.Plan) bool {
	d := p.Dependencies
	return d.Project || len(d.Local) > 0 || (d.Lock != nil && len(d.Lock.Local) > 0)
}

// hashTree writes the application tree, as the application layer would hold it, to h.
func hashTree(h io.Writer, source string, app plan.App) error {
	opts, err := appTree(source, app, nil)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(h)
	if err := writeTree(&normalisingWriter{tw: tw, modTime: DefaultEpoch}, source, opts); err != nil {
		return err
	}
	return tw.Close()
}

// userKey is the cache key of the user layer: everything its files come from.
func userKey(base v1.Hash, system []string, appDir string, rules []dirRule) string {
	h := sha256.New()
	fmt.Fprintf(h, "pyship user v2\n%s\nbase %s\nuser %s %d %d %s\napp %s\n", layerFormat, base, plan.UserName, plan.UserID, plan.GroupID, plan.HomeDir, appDir)
	for _, s := range system {
		fmt.Fprintf(h, "system %s\n", filepath.Base(s))
	}
	for _, r := range rules {
		fmt.Fprintf(h, "rule %+v\n", r)
	}
	return "user-" + hex.EncodeToString(h.Sum(nil))
}

// userLayer adds the non-root user to the /etc/passwd and /etc/group that files gives
// (the layers' below it), and holds the writable directories (its home) that are not the
// application's, with their parents. It is cached under key, locally and, with a registry
// cache, there too (unless askRegistry is false: it was asked already).
func userLayer(ctx context.Context, key string, files func() (map[string]string, error), p *plan.Plan, rules []dirRule, askRegistry bool, opts Options) (v1.Layer, error) {
	dir := filepath.Join(opts.CacheDir, "layers")
	if l, err := cachedLayer(dir, key, opts.Logger); l != nil || err != nil {
		return l, err
	}
	if opts.CacheRepo != nil && askRegistry {
		if l, _, ok := fromRegistryCache(ctx, key, "user", checkUserTar, dir, false, opts); ok {
			return l, nil
		}
	}
	accounts, err := files()
	if err != nil {
		return nil, err
	}
	passwd, ok := accounts["etc/passwd"]
	if !ok {
		passwd = "root:x:0:0:root:/root:/bin/sh\n"
	}
	group, ok := accounts["etc/group"]
	if !ok {
		group = "root:x:0:\n"
	}
	passwd = addLine(passwd, fmt.Sprintf("%s:x:%d:%d::%s:/usr/sbin/nologin", plan.UserName, plan.UserID, plan.GroupID, plan.HomeDir))
	group = addLine(group, fmt.Sprintf("%s:x:%d:", plan.UserName, plan.GroupID))
	// The application layer holds the application's directories; this one the others.
	app := strings.Trim(p.App.Dir, "/")
	dirs := map[string]bool{}
	for _, r := range rules {
		if r.name == app || strings.HasPrefix(r.name, app+"/") {
			continue
		}
		for d := r.name; d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	names := []string{"etc/", "etc/group", "etc/passwd"}
	for d := range dirs {
		names = append(names, d+"/")
	}
	sort.Strings(names)
	l, err := writeLayerFile(dir, key, DefaultEpoch, rules, func(w *normalisingWriter) error {
		for _, name := range names {
			var err error
			switch name {
			case "etc/group":
				err = w.file(name, false, int64(len(group)), strings.NewReader(group))
			case "etc/passwd":
				err = w.file(name, false, int64(len(passwd)), strings.NewReader(passwd))
			default:
				err = w.dir(name)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.CacheRepo != nil {
		platform, err := v1.ParsePlatform(p.Platform)
		if err != nil {
			return nil, err
		}
		toRegistryCache(ctx, key, "user", l, nil, "", *platform, opts)
	}
	return l, nil
}

// addLine appends line to an /etc/passwd-style file unless an entry of that name exists.
func addLine(file, line string) string {
	user, _, _ := strings.Cut(line, ":")
	for _, l := range strings.Split(file, "\n") {
		if strings.HasPrefix(l, user+":") {
			return file
		}
	}
	if file != "" && !strings.HasSuffix(file, "\n") {
		file += "\n"
	}
	return file + line + "\n"
}

// appLayer packs the repository at /app, leaving out what the ignore files and pyship's
// built-in rules exclude, and warning about each credential file it leaves out. Its
// directories get their owners from rules.
func appLayer(source string, app plan.App, rules []dirRule, cacheDir string, epoch time.Time, log hclog.Logger) (v1.Layer, error) {
	opts, err := appTree(source, app, func(rel string) {
		// A TOML literal string needs no escapes, so the hint reads as it is to be typed.
		quoted := "'" + rel + "'"
		if strings.ContainsAny(rel, "'\n") {
			quoted = strconv.Quote(rel)
		}
		log.Warn("left out a file that holds credentials by convention", "path", rel,
			"hint", "to ship it on purpose, add include = ["+quoted+"] to pyship.toml or [tool.pyship] in pyproject.toml")
	})
	if err != nil {
		return nil, err
	}
	opts.Warn = log.Warn
	return writeLayerFile(filepath.Join(cacheDir, "layers"), "", epoch, rules, func(w *normalisingWriter) error {
		return writeTree(w, source, opts)
	})
}

// appTree gives the options to write the repository at source as the application tree:
// which paths stay out of it, and which excluded directories to search for paths an
// exception brings back. It tells secret (when not nil) about each credential file left out.
func appTree(source string, app plan.App, secret func(rel string)) (treeOptions, error) {
	root, err := os.OpenRoot(source)
	if err != nil {
		return treeOptions{}, err
	}
	defer root.Close()
	ig, err := NewIgnorer(detect.RootFS(root))
	if err != nil {
		return treeOptions{}, err
	}
	if err := ig.Configure("configuration", app.Exclude, app.Include); err != nil {
		return treeOptions{}, err
	}
	// A virtualenv by any name: it belongs to the host, not the image.
	venv := func(rel string) bool {
		_, err := os.Stat(filepath.Join(source, rel, "pyvenv.cfg"))
		return err == nil
	}
	skip := func(rel string, d fs.DirEntry) bool {
		var open func() (io.ReadCloser, error)
		if d.Type().IsRegular() {
			// Only a regular file is read for a private key, and only inside the repository.
			open = func() (io.ReadCloser, error) {
				root, err := os.OpenRoot(source)
				if err != nil {
					return nil, err
				}
				defer root.Close()
				return root.Open(filepath.FromSlash(rel))
			}
		}
		// An unreadable file is kept here: writing it then fails with its name.
		switch why, _ := ig.Why(rel, d.IsDir(), open); why {
		case Excluded:
			return true
		case Secret:
			if secret != nil {
				secret(rel)
			}
			return true
		}
		return d.IsDir() && venv(rel)
	}
	enter := func(rel string) bool { return ig.Descend(rel) && !venv(rel) }
	return treeOptions{Prefix: app.Dir, Skip: skip, Enter: enter}, nil
}

type addendum struct {
	layer     v1.Layer
	createdBy string
}

// assemble puts the layers on the base and writes the config: an OCI image whose bytes
// depend only on the inputs.
func assemble(base v1.Image, baseDigest name.Digest, p *plan.Plan, epoch time.Time, adds []addendum) (v1.Image, error) {
	img := mutate.MediaType(base, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, a := range adds {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     a.layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: a.createdBy},
		})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch.UTC()}
	cf.Container, cf.DockerVersion, cf.Author = "", "", ""
	c := &cf.Config
	c.Env = mergeEnv(c.Env, p.Config.Env)
	c.Entrypoint = nil
	c.Cmd = p.Config.Cmd
	c.WorkingDir = p.Config.WorkingDir
	c.User = p.Config.User
	c.ExposedPorts = map[string]struct{}{}
	for _, port := range p.Config.ExposedPorts {
		c.ExposedPorts[port] = struct{}{}
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for k, v := range p.Config.Labels {
		c.Labels[k] = v
	}
	c.Labels["org.opencontainers.image.base.digest"] = baseDigest.DigestStr()
	return mutate.ConfigFile(img, cf)
}

// mergeEnv overrides base with add by variable name. Values are literal, "$" included
// (a password may hold "$$" or "$HOME"); only "${NAME}", with braces, is replaced by the
// base's value of NAME, as in pyship's own "PATH=/opt/venv/bin:${PATH}".
func mergeEnv(base, add []string) []string {
	vals := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range base {
		set(kv)
	}
	for _, kv := range add {
		set(bracedVar.ReplaceAllStringFunc(kv, func(ref string) string { return vals[ref[2:len(ref)-1]] }))
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out
}

// bracedVar is a "${NAME}" reference.
var bracedVar = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

func envOf(img v1.Image) []string {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil
	}
	return cf.Config.Env
}
