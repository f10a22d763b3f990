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
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/plan"
)

// Options configure a build.
type Options struct {
	// Source is the repository directory on the host.
	Source string
	// CacheDir holds base blobs, extracted base file systems and layers.
	CacheDir string
	// Epoch is the time stamp of the application layer's files and of the image.
	Epoch time.Time
	// Keychain authenticates pulls of the base image; default authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport carries the base pulls; default remote.DefaultTransport.
	Transport http.RoundTripper
	// Installer makes the dependency layer; default the sandboxed pip installer.
	Installer Installer
	Logger    hclog.Logger
}

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
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Installer == nil {
		opts.Installer = &PipInstaller{Logger: log}
	}
	if opts.Epoch.IsZero() {
		opts.Epoch = DefaultEpoch
	}
	platform, err := v1.ParsePlatform(p.Platform)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", p.Platform, err)
	}

	start := time.Now()
	base, baseDigest, err := pullBase(ctx, p.Base.Ref, *platform, opts)
	if err != nil {
		return nil, err
	}
	root, err := rootfs(base, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	log.Info("base resolved", "ref", baseDigest.String(), "took", since(start))

	start = time.Now()
	deps, cached, err := dependencyLayer(ctx, p, base, root, opts)
	if err != nil {
		return nil, err
	}
	if cached {
		log.Info("dependencies cached", "took", since(start))
	} else {
		log.Info("dependencies installed", "took", since(start))
	}

	var steps v1.Layer
	if len(p.BuildSteps) > 0 {
		start = time.Now()
		if steps, err = stepsLayer(ctx, p, base, root, deps, opts, log); err != nil {
			return nil, err
		}
		log.Info("build steps run", "steps", len(p.BuildSteps), "took", since(start))
	}

	start = time.Now()
	user, err := userLayer(root, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	app, err := appLayer(opts.Source, p.App, opts.CacheDir, opts.Epoch, log)
	if err != nil {
		return nil, err
	}
	log.Info("application layer written", "took", since(start))

	depsStep := "python -m venv " + p.Dependencies.Venv
	for _, r := range p.Dependencies.Requirements {
		depsStep += " && pip install -r " + r
	}
	if p.Dependencies.Project {
		depsStep += " && pip install ."
	}
	if l := p.Dependencies.Lock; l != nil {
		depsStep += " && pip install --require-hashes --no-deps (" + l.File + ")"
	}
	adds := []addendum{
		{deps, depsStep},
		{user, fmt.Sprintf("user %s (%d:%d)", plan.UserName, plan.UserID, plan.GroupID)},
		{app, "application files to " + p.App.Dir},
	}
	if steps != nil {
		// One layer holds what all the steps wrote.
		var cmds []string
		for _, st := range p.BuildSteps {
			cmds = append(cmds, strings.Join(st.Command, " "))
		}
		adds = append(adds, addendum{steps, "build steps: " + strings.Join(cmds, " && ")})
	}
	img, err := assemble(base, baseDigest, p, opts.Epoch, adds)
	if err != nil {
		return nil, err
	}
	baseLayers, err := base.Layers()
	if err != nil {
		return nil, err
	}
	res := &Result{Image: img, Base: baseDigest, DependenciesCached: cached}
	for _, l := range baseLayers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		res.BaseLayers = append(res.BaseLayers, d)
	}
	return res, nil
}

func since(t time.Time) string {
	return time.Since(t).Round(time.Millisecond).String()
}

// pullBase resolves the base to a digest for the platform. Its layers are cached on disk,
// so later builds fetch only the manifest.
func pullBase(ctx context.Context, ref string, platform v1.Platform, opts Options) (v1.Image, name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, name.Digest{}, &BaseError{Ref: ref, Err: err}
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(platform), remote.WithAuthFromKeychain(opts.Keychain)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, name.Digest{}, &BaseError{Ref: ref, Err: err}
	}
	d, err := img.Digest()
	if err != nil {
		return nil, name.Digest{}, &BaseError{Ref: ref, Err: err}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, name.Digest{}, &BaseError{Ref: ref, Err: err}
	}
	if cf.Architecture != platform.Architecture || cf.OS != platform.OS {
		return nil, name.Digest{}, &BaseError{Ref: ref, Err: fmt.Errorf("the image is for %s/%s, not %s", cf.OS, cf.Architecture, platform)}
	}
	img, err = cachedBase(img, d, LayoutDir(opts.CacheDir))
	if err != nil {
		return nil, name.Digest{}, &BaseError{Ref: ref, Err: err}
	}
	return img, r.Context().Digest(d.String()), nil
}

// LayoutDir is the OCI layout in the cache that holds base images and, unless told
// otherwise, built ones: they share blobs.
func LayoutDir(cacheDir string) string { return filepath.Join(cacheDir, "oci") }

// cachedBase keeps base images in an OCI layout, so their layers are downloaded once.
func cachedBase(img v1.Image, d v1.Hash, dir string) (v1.Image, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if lp, err = layout.Write(dir, empty.Index); err != nil {
			return nil, err
		}
	}
	if cached, err := lp.Image(d); err == nil {
		return cached, nil
	}
	if err := lp.AppendImage(img); err != nil {
		return nil, err
	}
	return lp.Image(d)
}

// dependencyLayer returns the venv layer from the cache, or has the installer make it. The
// cache key covers everything the install depends on: the base digest, the platform, the
// installer and the bytes of every requirements file.
func dependencyLayer(ctx context.Context, p *plan.Plan, base v1.Image, root string, opts Options) (v1.Layer, bool, error) {
	d, err := base.Digest()
	if err != nil {
		return nil, false, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "pyship dependencies v1\nbase %s\nplatform %s\ninstaller %s\nvenv %s\nproject %v\n",
		d, p.Platform, opts.Installer.Name(), p.Dependencies.Venv, p.Dependencies.Project)
	for _, r := range p.Dependencies.Requirements {
		fmt.Fprintf(h, "requirements %s\n", r)
	}
	for _, f := range p.Dependencies.Files {
		data, err := os.ReadFile(filepath.Join(opts.Source, f))
		if err != nil {
			return nil, false, err
		}
		fmt.Fprintf(h, "file %s %d\n", f, len(data))
		h.Write(data)
	}
	if installsSource(p) {
		// The project's own code is copied into the venv, so the venv depends on it too.
		fmt.Fprintf(h, "source\n")
		if err := hashTree(h, opts.Source, p.App); err != nil {
			return nil, false, err
		}
	}
	key := hex.EncodeToString(h.Sum(nil))
	layersDir := filepath.Join(opts.CacheDir, "layers")
	dst := filepath.Join(layersDir, "deps-"+key+".tar.gz")
	if _, err := os.Stat(dst); err == nil {
		l, err := layerFromFile(dst)
		return l, true, err
	}
	if hostPlatform := "linux/" + runtime.GOARCH; p.Platform != hostPlatform {
		return nil, false, fmt.Errorf("installing dependencies for %s on a %s machine is not supported; build on a %s machine", p.Platform, hostPlatform, p.Platform)
	}
	if err := os.MkdirAll(layersDir, 0o755); err != nil {
		return nil, false, err
	}
	tmp, err := os.MkdirTemp(layersDir, ".install-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(tmp)
	venv, err := opts.Installer.Install(ctx, InstallRequest{
		Root: root, Scratch: tmp, Source: opts.Source, AppDir: p.App.Dir, Requirements: p.Dependencies.Requirements,
		Project: p.Dependencies.Project, Lock: p.Dependencies.Lock, Files: p.Dependencies.Files, Venv: p.Dependencies.Venv, Env: envOf(base),
	})
	if err != nil {
		return nil, false, err
	}
	l, err := writeLayerFile(layersDir, filepath.Base(dst), DefaultEpoch, 0, 0, func(w *normalisingWriter) error {
		return writeTree(w, venv, treeOptions{Prefix: p.Dependencies.Venv, AllowOutsideLinks: true})
	})
	return l, false, err
}

// installsSource reports whether the install copies repository code into the venv: the
// project itself, or local paths the requirements or the lock name.
func installsSource(p *plan.Plan) bool {
	d := p.Dependencies
	return d.Project || len(d.Local) > 0 || (d.Lock != nil && len(d.Lock.Local) > 0)
}

// hashTree writes the application tree, as the application layer would hold it, to h.
func hashTree(h io.Writer, source string, app plan.App) error {
	skip, err := appSkip(source, app)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(h)
	if err := writeTree(&normalisingWriter{tw: tw, modTime: DefaultEpoch}, source, treeOptions{Prefix: app.Dir, Skip: skip}); err != nil {
		return err
	}
	return tw.Close()
}

// userLayer adds the non-root user to the base's /etc/passwd and /etc/group, and gives it
// a home directory.
func userLayer(root, cacheDir string) (v1.Layer, error) {
	read := func(name string) (string, error) {
		p, err := resolveIn(root, name)
		if err != nil {
			return "", err
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "root:x:0:0:root:/root:/bin/sh\n", nil
		}
		return string(data), err
	}
	passwd, err := read("/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := read("/etc/group")
	if err != nil {
		return nil, err
	}
	home := "/home/" + plan.UserName
	passwd = addLine(passwd, fmt.Sprintf("%s:x:%d:%d::%s:/usr/sbin/nologin", plan.UserName, plan.UserID, plan.GroupID, home))
	group = addLine(group, fmt.Sprintf("%s:x:%d:", plan.UserName, plan.GroupID))
	sum := sha256.Sum256([]byte(passwd + "\x00" + group))
	name := "user-" + hex.EncodeToString(sum[:]) + ".tar.gz"
	dir := filepath.Join(cacheDir, "layers")
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return layerFromFile(filepath.Join(dir, name))
	}
	return writeLayerFile(dir, name, DefaultEpoch, 0, 0, func(w *normalisingWriter) error {
		for _, step := range []func() error{
			func() error { return w.dir("etc") },
			func() error { return w.file("etc/group", false, int64(len(group)), strings.NewReader(group)) },
			func() error { return w.file("etc/passwd", false, int64(len(passwd)), strings.NewReader(passwd)) },
			func() error { return w.dir("home") },
			func() error { return w.ownedDir(strings.TrimPrefix(home, "/"), plan.UserID, plan.GroupID) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
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
// built-in rules exclude.
func appLayer(source string, app plan.App, cacheDir string, epoch time.Time, log hclog.Logger) (v1.Layer, error) {
	skip, err := appSkip(source, app)
	if err != nil {
		return nil, err
	}
	return writeLayerFile(filepath.Join(cacheDir, "layers"), "", epoch, 0, 0, func(w *normalisingWriter) error {
		return writeTree(w, source, treeOptions{Prefix: app.Dir, Skip: skip, Warn: log.Warn})
	})
}

// appSkip decides which repository paths stay out of the application layer.
func appSkip(source string, app plan.App) (func(string, fs.DirEntry) bool, error) {
	ig, err := NewIgnorer(os.DirFS(source))
	if err != nil {
		return nil, err
	}
	if err := ig.Configure("configuration", app.Exclude, app.Include); err != nil {
		return nil, err
	}
	return func(rel string, d fs.DirEntry) bool {
		if ig.Ignored(rel, d.IsDir()) {
			return true
		}
		// A virtualenv by any name: it belongs to the host, not the image.
		if d.IsDir() {
			_, err := os.Stat(filepath.Join(source, rel, "pyvenv.cfg"))
			return err == nil
		}
		return false
	}, nil
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
			History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "pyship: " + a.createdBy},
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

// mergeEnv overrides base with add by variable name; "${NAME}" in a value of add expands to
// the base's value.
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
		set(os.Expand(kv, func(k string) string { return vals[k] }))
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out
}

func envOf(img v1.Image) []string {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil
	}
	return cf.Config.Env
}
