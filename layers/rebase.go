package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"

	"github.com/pyship/pyship/plan"
)

// The labels a build writes that name its base: the OCI image spec's.
const (
	BaseNameLabel   = "org.opencontainers.image.base.name"
	BaseDigestLabel = "org.opencontainers.image.base.digest"
)

// RebaseOptions configure a rebase.
type RebaseOptions struct {
	// Base, when set, is the base to move onto instead of the one the image's label
	// names; the label then names it.
	Base string
	// BaseMirror stands in for Docker Hub, as in the build (plan.Mirror): the label holds
	// the name the plan gave, not the mirror's.
	BaseMirror string
	// CacheDir keeps the images' blobs (and, as root, their extracted layers) in its OCI
	// layout, as a build keeps its base: the checks and the smoke test read them from there.
	CacheDir  string
	Keychain  authn.Keychain
	Transport http.RoundTripper
	Logger    hclog.Logger
}

// Rebased is an image moved onto the newest digest of its base.
type Rebased struct {
	// Image is the rebased image, or the image itself when Unchanged.
	Image v1.Image
	// Unchanged is true when the image is on the newest base already.
	Unchanged bool
	// OldBase is the base the image was on; Base the one it is on now.
	OldBase, Base name.Digest
	// BaseLayers are the new base's layer digests: a registry that has the base can mount
	// them instead of receiving them.
	BaseLayers []v1.Hash
	// Kept are the image's own layers (above the base), moved unchanged.
	Kept []v1.Hash
}

// RebaseError reports an image that a rebase cannot move onto the new base without
// changing what the image does: a rebuild can.
type RebaseError struct {
	Reason string
	Hint   string
}

func (e *RebaseError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "rebuild the image from its repository (pyship publish): the build makes its dependency layer on the new base"
	}
	return fmt.Sprintf("cannot rebase: %s\nhint: %s", e.Reason, hint)
}

// Rebase moves img onto the newest digest of its base: the base's layers are replaced
// and the image's own layers are kept, byte for byte, when the new base runs them as the
// old one did (the same Python minor version, OS release and C library, and no file the
// image's layers replace changed). The config is what a build on the new base writes:
// the base's settings from the new base, the image's own (command, user, environment,
// labels, created) kept. Rebasing the same image onto the same base gives the same digest.
func Rebase(ctx context.Context, img v1.Image, opts RebaseOptions) (*Rebased, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	log := opts.Logger
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	labelled, oldDigest, err := labelledBase(cf)
	if err != nil {
		return nil, err
	}
	platform := cf.Platform()
	if platform == nil || platform.OS == "" {
		return nil, &RebaseError{Reason: "the image's config names no platform (os and architecture)"}
	}
	baseName := labelled
	if opts.Base != "" {
		baseName = opts.Base
	}
	oldRef, err := mirrored(labelled, opts.BaseMirror)
	if err != nil {
		return nil, &RebaseError{Reason: fmt.Sprintf("the label %s %q: %v", BaseNameLabel, labelled, err)}
	}
	newRef, err := mirrored(baseName, opts.BaseMirror)
	if err != nil {
		return nil, &BaseError{Ref: baseName, Err: err}
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(*platform), remote.WithAuthFromKeychain(opts.Keychain)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}

	start := time.Now()
	oldAt := oldRef.Context().Digest(oldDigest.String())
	oldBase, err := remote.Image(oldAt, ropts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, &RebaseError{Reason: fmt.Sprintf("the image's base %s is no longer in its registry, so which of its layers are the base's cannot be checked", oldAt)}
		}
		return nil, &BaseError{Ref: oldAt.String(), Err: err}
	}
	newBase, err := remote.Image(newRef, ropts...)
	if err != nil {
		return nil, &BaseError{Ref: newRef.String(), Err: err}
	}
	newDigest, err := newBase.Digest()
	if err != nil {
		return nil, &BaseError{Ref: newRef.String(), Err: err}
	}
	res := &Rebased{OldBase: oldAt, Base: newRef.Context().Digest(newDigest.String())}
	log.Info("base resolved", "image_on", oldAt.String(), "newest", res.Base.String(), "took", since(start))
	if newDigest == oldDigest && baseName == labelled {
		res.Image, res.Unchanged = img, true
		return res, nil
	}

	// The layers are read, for the checks and the smoke test, from the cache, where each
	// is fetched once (and, as root, extracted as it arrives, for the smoke test).
	start = time.Now()
	if err := PrepareCache(opts.CacheDir, log); err != nil {
		return nil, err
	}
	unlock, err := LockCache(ctx, opts.CacheDir, log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cached := func(what string, i v1.Image) (v1.Image, error) {
		d, err := i.Digest()
		if err != nil {
			return nil, err
		}
		c, err := cachedBase(i, d, LayoutDir(opts.CacheDir), useRoot, nil, log)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", what, err)
		}
		return c, nil
	}
	if oldBase, err = cached("the old base", oldBase); err != nil {
		return nil, &BaseError{Ref: oldAt.String(), Err: err}
	}
	if newBase, err = cached("the new base", newBase); err != nil {
		return nil, &BaseError{Ref: res.Base.String(), Err: err}
	}
	if img, err = cached("the image", img); err != nil {
		return nil, err
	}
	log.Info("layers fetched", "took", since(start))

	start = time.Now()
	if err := checkRebase(img, oldBase, newBase, opts.CacheDir); err != nil {
		return nil, err
	}
	label := res.Base.DigestStr()
	if res.Image, err = rebaseImage(img, oldBase, newBase, baseName, label); err != nil {
		return nil, err
	}
	if res.BaseLayers, err = layerDigests(newBase); err != nil {
		return nil, err
	}
	n := len(res.BaseLayers)
	all, err := layerDigests(res.Image)
	if err != nil {
		return nil, err
	}
	res.Kept = all[n:]
	log.Info("rebased", "base_layers", n, "kept_layers", len(res.Kept), "took", since(start))
	return res, nil
}

// labelledBase reads the base a build wrote in the image's labels.
func labelledBase(cf *v1.ConfigFile) (string, v1.Hash, error) {
	n, d := cf.Config.Labels[BaseNameLabel], cf.Config.Labels[BaseDigestLabel]
	if n == "" || d == "" {
		return "", v1.Hash{}, &RebaseError{
			Reason: fmt.Sprintf("the image has no %s and %s labels, which pyship writes: it does not say what its base is", BaseNameLabel, BaseDigestLabel),
			Hint:   "rebase images that pyship built; for another image, rebuild it (or, if you know its base, crane rebase --old_base --new_base)",
		}
	}
	h, err := v1.NewHash(d)
	if err != nil {
		return "", v1.Hash{}, &RebaseError{Reason: fmt.Sprintf("the label %s %q is not a digest: %v", BaseDigestLabel, d, err)}
	}
	return n, h, nil
}

// mirrored is the reference a base name is pulled by, as a build pulls it.
func mirrored(base, mirror string) (name.Reference, error) {
	ref, err := plan.Mirror(base, mirror)
	if err != nil {
		return nil, err
	}
	return name.ParseReference(ref)
}

// layerDigests returns the digests of img's layers.
func layerDigests(img v1.Image) ([]v1.Hash, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	var out []v1.Hash
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out, nil
}

// baseSplit checks that img is on base (its first layers are the base's, by diff ID, and
// its history starts with the base's) and returns how many layers and history entries
// are the base's.
func baseSplit(img, base v1.Image) (layers, history int, err error) {
	icf, err := img.ConfigFile()
	if err != nil {
		return 0, 0, err
	}
	bcf, err := base.ConfigFile()
	if err != nil {
		return 0, 0, err
	}
	ids, baseIDs := icf.RootFS.DiffIDs, bcf.RootFS.DiffIDs
	if len(ids) < len(baseIDs) || !slices.Equal(ids[:len(baseIDs)], baseIDs) {
		return 0, 0, &RebaseError{Reason: fmt.Sprintf("the image's first %d layers are not those of the base its labels name: it was changed after the build, or the label is wrong", len(baseIDs))}
	}
	h, baseH := icf.History, bcf.History
	if len(h) < len(baseH) || !slices.EqualFunc(h[:len(baseH)], baseH, sameHistory) {
		return 0, 0, &RebaseError{Reason: "the image's history does not start with its base's: it was changed after the build"}
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	if len(m.Layers) != len(ids) {
		return 0, 0, fmt.Errorf("the image's manifest has %d layers and its config %d", len(m.Layers), len(ids))
	}
	return len(baseIDs), len(baseH), nil
}

func sameHistory(a, b v1.History) bool {
	return a.Created.Equal(b.Created.Time) && a.CreatedBy == b.CreatedBy && a.Author == b.Author &&
		a.Comment == b.Comment && a.EmptyLayer == b.EmptyLayer
}

// rebaseImage puts img's own layers (those above oldBase's) on newBase, unchanged, with
// the config a build on newBase would write; the labels name baseName and digest.
func rebaseImage(img, oldBase, newBase v1.Image, baseName, digest string) (v1.Image, error) {
	nLayers, nHistory, err := baseSplit(img, oldBase)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := mutate.MediaType(newBase, types.OCIManifestSchema1)
	out = mutate.ConfigMediaType(out, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for i, l := range ls[nLayers:] {
		desc := m.Layers[nLayers+i]
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: desc.MediaType, Annotations: desc.Annotations})
	}
	if out, err = mutate.Append(out, adds...); err != nil {
		return nil, err
	}
	cf, err := rebaseConfig(img, oldBase, newBase, nHistory)
	if err != nil {
		return nil, err
	}
	cf.Config.Labels[BaseNameLabel] = baseName
	cf.Config.Labels[BaseDigestLabel] = digest
	if out, err = mutate.ConfigFile(out, cf); err != nil {
		return nil, err
	}
	if len(m.Annotations) > 0 {
		out = mutate.Annotations(out, m.Annotations).(v1.Image)
	}
	return out, nil
}

// rebaseConfig is img's config moved from oldBase to newBase. What img has as oldBase
// had it came from the base, and becomes newBase's; what img changed stays: its
// command, user, ports, its own variables and labels, and created. A variable that
// extends the base's value (PATH=/opt/venv/bin:$PATH) extends newBase's.
func rebaseConfig(img, oldBase, newBase v1.Image, nHistory int) (*v1.ConfigFile, error) {
	icf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	ocf, err := oldBase.ConfigFile()
	if err != nil {
		return nil, err
	}
	ncf, err := newBase.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf := &v1.ConfigFile{}
	if err := merge3(cf, icf, ocf, ncf); err != nil {
		return nil, err
	}
	cf.Config = v1.Config{}
	if err := merge3(&cf.Config, icf.Config, ocf.Config, ncf.Config); err != nil {
		return nil, err
	}
	cf.Created = icf.Created
	cf.Config.Env = rebaseEnv(icf.Config.Env, ocf.Config.Env, ncf.Config.Env)
	cf.Config.Labels = map[string]string{}
	for k, v := range ncf.Config.Labels {
		cf.Config.Labels[k] = v
	}
	for k, v := range icf.Config.Labels {
		if old, ok := ocf.Config.Labels[k]; !ok || old != v {
			cf.Config.Labels[k] = v
		}
	}
	cf.RootFS = v1.RootFS{Type: "layers", DiffIDs: slices.Clone(ncf.RootFS.DiffIDs)}
	cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, icf.RootFS.DiffIDs[len(ocf.RootFS.DiffIDs):]...)
	cf.History = append(slices.Clone(ncf.History), icf.History[nHistory:]...)
	return cf, nil
}

// merge3 sets dst, field by JSON field, to mine's value where it differs from old's, and
// to new's where it does not: a three-way merge, as version control does.
func merge3(dst, mine, old, new any) error {
	fields := func(v any) (map[string]json.RawMessage, error) {
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		return m, json.Unmarshal(data, &m)
	}
	m, err := fields(mine)
	if err != nil {
		return err
	}
	o, err := fields(old)
	if err != nil {
		return err
	}
	n, err := fields(new)
	if err != nil {
		return err
	}
	out := map[string]json.RawMessage{}
	for k, v := range m {
		if ov, ok := o[k]; !ok || !bytes.Equal(ov, v) {
			out[k] = v
		}
	}
	for k, v := range n {
		if _, ok := out[k]; !ok {
			if _, mineHas := m[k]; mineHas || !hasKey(o, k) {
				out[k] = v
			}
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, dst)
}

func hasKey(m map[string]json.RawMessage, k string) bool {
	_, ok := m[k]
	return ok
}

// rebaseEnv moves env, made on the base environment old, onto new: a variable env has as
// old had it becomes new's (or goes, when new has none); one that extends old's value as
// a list (PATH=/opt/venv/bin:<old PATH>) extends new's; the rest are env's own. The order
// is new's, then env's own variables in their order, as a build's.
func rebaseEnv(env, old, new []string) []string {
	split := func(kvs []string) ([]string, map[string]string) {
		var order []string
		vals := map[string]string{}
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			if _, ok := vals[k]; !ok {
				order = append(order, k)
			}
			vals[k] = v
		}
		return order, vals
	}
	envOrder, envVals := split(env)
	_, oldVals := split(old)
	newOrder, newVals := split(new)
	value := func(k string) (string, bool) {
		v, ok := envVals[k]
		ov, fromBase := oldVals[k]
		switch {
		case !ok:
			return newVals[k], true
		case fromBase && v == ov:
			nv, keep := newVals[k]
			return nv, keep
		case fromBase && ov != "":
			if nv, has := newVals[k]; has {
				return extendList(v, ov, nv), true
			}
		}
		return v, true
	}
	var out []string
	done := map[string]bool{}
	for _, k := range newOrder {
		if v, keep := value(k); keep {
			out = append(out, k+"="+v)
		}
		done[k] = true
	}
	for _, k := range envOrder {
		if done[k] {
			continue
		}
		if v, keep := value(k); keep {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// extendList replaces old, as a whole ':'-separated part of v, with new.
func extendList(v, old, new string) string {
	switch {
	case strings.HasSuffix(v, ":"+old):
		return strings.TrimSuffix(v, old) + new
	case strings.HasPrefix(v, old+":"):
		return new + strings.TrimPrefix(v, old)
	}
	if i := strings.Index(v, ":"+old+":"); i >= 0 {
		return v[:i+1] + new + v[i+1+len(old):]
	}
	return v
}

// What a rebase reads of the bases, besides the paths the image's own layers hold.
const (
	osReleasePath    = "etc/os-release"
	osReleaseLibPath = "usr/lib/os-release"
	dpkgStatusPath   = "var/lib/dpkg/status"
	// maxRebaseFile bounds a file a rebase reads whole.
	maxRebaseFile = 16 << 20
)

// pythonLinks are where a base's python3 is, in the order PATH finds them.
var pythonLinks = []string{"usr/local/bin/python3", "usr/bin/python3"}

// checkRebase refuses to move img from oldBase to newBase when its own layers would run
// differently there: another Python minor version (the venv and its compiled extensions
// are made for one), the venv's interpreter missing, another OS release or an older C
// library (what the extensions and Debian packages link), or a file the image's layers
// replace (the dpkg status of its Debian packages, /etc/passwd) that the new base changed,
// whose change the image would hide.
func checkRebase(img, oldBase, newBase v1.Image, cacheDir string) error {
	nLayers, _, err := baseSplit(img, oldBase)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	venvCfg := ""
	if v := envValue(cf.Config.Env, "VIRTUAL_ENV"); v != "" {
		venvCfg = strings.TrimPrefix(path.Clean(v+"/pyvenv.cfg"), "/")
	}
	oldLayers, err := oldBase.Layers()
	if err != nil {
		return err
	}
	newLayers, err := newBase.Layers()
	if err != nil {
		return err
	}
	paths := &layerPaths{cacheDir: cacheDir, read: map[v1.Hash]*layerRecord{}}
	if err := paths.prefetch(slices.Concat(ls[nLayers:], oldLayers, newLayers)); err != nil {
		return err
	}
	own, err := paths.overlay(ls[nLayers:])
	if err != nil {
		return err
	}
	venv := keyValues(string(own.data[venvCfg]))
	interpreter := ""
	if home := venv["home"]; home != "" {
		interpreter = strings.TrimPrefix(path.Clean(home+"/python3"), "/")
	}
	oldFS, err := paths.overlay(oldLayers)
	if err != nil {
		return fmt.Errorf("reading the old base: %w", err)
	}
	newFS, err := paths.overlay(newLayers)
	if err != nil {
		return fmt.Errorf("reading the new base: %w", err)
	}
	ocf, err := oldBase.ConfigFile()
	if err != nil {
		return err
	}
	ncf, err := newBase.ConfigFile()
	if err != nil {
		return err
	}
	if err := checkPlatform(cf, ncf); err != nil {
		return err
	}

	// Python: the venv's own version, else the old base's.
	want3 := minorVersion(firstOf(venv["version"], venv["version_info"]))
	if want3 == "" {
		want3 = basePython(ocf, oldFS)
	}
	got := basePython(ncf, newFS)
	switch {
	case got == "":
		return &RebaseError{Reason: "the new base's Python version cannot be told: it sets no PYTHON_VERSION, and has no python3 link to a python3.X in /usr/local/bin or /usr/bin"}
	case want3 != "" && got != want3:
		return &RebaseError{
			Reason: fmt.Sprintf("the new base has Python %s, and the image's dependencies were installed for Python %s: the venv and its compiled extensions work with that version only", got, want3),
			Hint:   fmt.Sprintf("rebuild the image from its repository (pyship publish) to install them for Python %s, or rebase onto a base with Python %s (--base)", got, want3),
		}
	}
	if interpreter != "" && newFS.state[interpreter] == "" {
		return &RebaseError{Reason: fmt.Sprintf("the venv's interpreter /%s is not in the new base", interpreter)}
	}

	// The OS release and the C library: what compiled code links.
	oldOS, newOS := osRelease(oldFS), osRelease(newFS)
	if oldOS["ID"] != newOS["ID"] || oldOS["VERSION_ID"] != newOS["VERSION_ID"] {
		return &RebaseError{Reason: fmt.Sprintf("the new base is %s, the image was built on %s: compiled extensions and Debian packages may link libraries that differ there", osName(newOS), osName(oldOS))}
	}
	oldLibc, newLibc := libcVersion(oldFS), libcVersion(newFS)
	if oldLibc != "" && (newLibc == "" || versionLess(newLibc, oldLibc)) {
		return &RebaseError{Reason: fmt.Sprintf("the new base's C library (glibc %s) is older than the one the image was built on (glibc %s)", short(orNone(newLibc)), short(oldLibc))}
	}

	// Files the image's layers replace that the new base changed.
	var changed []string
	for p, st := range own.state {
		if st != "dir" && oldFS.state[p] != newFS.state[p] {
			changed = append(changed, "/"+p)
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		more := ""
		if len(changed) > 5 {
			more = fmt.Sprintf(" and %d more", len(changed)-5)
			changed = changed[:5]
		}
		return &RebaseError{Reason: fmt.Sprintf("the image's own layers replace files that the new base changed (%s%s): the image would hide the new base's versions, as it does the Debian packages it installed", strings.Join(changed, ", "), more)}
	}
	return nil
}

// checkPlatform refuses a new base for another platform than the image's.
func checkPlatform(img, base *v1.ConfigFile) error {
	if img.OS != base.OS || img.Architecture != base.Architecture || img.Variant != base.Variant {
		return &RebaseError{Reason: fmt.Sprintf("the new base is for %s/%s, the image for %s/%s", base.OS, base.Architecture, img.OS, img.Architecture)}
	}
	return nil
}

// fileSystem is what a stack of layers shows: each path's state (its type, mode, owner
// and content digest, or its link's target), and the bytes of the files a rebase reads.
type fileSystem struct {
	state map[string]string
	data  map[string][]byte
}

// layerRecord is what one layer holds, as a rebase reads it: every entry's state, the
// bytes of the files it reads whole (keepFile), and what its whiteouts hide below.
type layerRecord struct {
	State   map[string]string `json:"state"`
	Data    map[string][]byte `json:"data,omitempty"`
	Removed []string          `json:"removed,omitempty"`
	Opaque  []string          `json:"opaque,omitempty"`
}

// keepFile reports whether a rebase reads the file at p whole: the OS release, dpkg's
// status, a venv's configuration.
func keepFile(p string) bool {
	return p == osReleasePath || p == osReleaseLibPath || p == dpkgStatusPath || path.Base(p) == "pyvenv.cfg"
}

// layerPaths reads layers' records, each once: from the cache (by digest) when it has
// them, else from the layer, keeping them there.
type layerPaths struct {
	cacheDir string
	mu       sync.Mutex
	read     map[v1.Hash]*layerRecord
}

// prefetch reads the records of ls, as many at once as there are CPUs.
func (lp *layerPaths) prefetch(ls []v1.Layer) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		seen = map[v1.Hash]bool{}
	)
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			if _, err := lp.record(l); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("reading layer %s: %w", d, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rebaseRecordsDir is where the cache keeps layers' records.
const rebaseRecordsDir = "rebase.1"

// overlay reads layers, bottom first, as an overlay shows them.
func (lp *layerPaths) overlay(ls []v1.Layer) (*fileSystem, error) {
	fsys := &fileSystem{state: map[string]string{}, data: map[string][]byte{}}
	for _, l := range ls {
		rec, err := lp.record(l)
		if err != nil {
			d, _ := l.Digest()
			return nil, fmt.Errorf("reading layer %s: %w", d, err)
		}
		// Whiteouts hide what is below, in the layers under this one.
		remove := func(p string) {
			for k := range fsys.state {
				if p == "" || k == p || strings.HasPrefix(k, p+"/") {
					delete(fsys.state, k)
					delete(fsys.data, k)
				}
			}
		}
		for _, d := range rec.Opaque {
			remove(d)
		}
		for _, p := range rec.Removed {
			remove(p)
		}
		for p, st := range rec.State {
			fsys.state[p] = st
			delete(fsys.data, p)
			if d, ok := rec.Data[p]; ok {
				fsys.data[p] = d
			}
		}
	}
	return fsys, nil
}

// record returns l's record.
func (lp *layerPaths) record(l v1.Layer) (*layerRecord, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	lp.mu.Lock()
	rec, ok := lp.read[d]
	lp.mu.Unlock()
	if ok {
		return rec, nil
	}
	file := filepath.Join(lp.cacheDir, rebaseRecordsDir, d.Algorithm+"-"+d.Hex+".json")
	if data, err := os.ReadFile(file); err == nil {
		var cached layerRecord
		if json.Unmarshal(data, &cached) == nil && cached.State != nil {
			lp.keep(d, &cached)
			return &cached, nil
		}
	}
	rec, err = readRecord(l)
	if err != nil {
		return nil, err
	}
	lp.keep(d, rec)
	// A record that cannot be kept is read again next time.
	_ = writeJSONAtomic(file, rec)
	return rec, nil
}

func (lp *layerPaths) keep(d v1.Hash, rec *layerRecord) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.read[d] = rec
}

// readRecord reads a layer's tar for its record.
func readRecord(l v1.Layer) (*layerRecord, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr, err := decompressed(rc, mt, diffID)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	rec := &layerRecord{State: map[string]string{}, Data: map[string][]byte{}}
	r := tar.NewReader(tr)
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == ".wh..wh..opq":
			rec.Opaque = append(rec.Opaque, dir)
			continue
		case strings.HasPrefix(base, ".wh."):
			rec.Removed = append(rec.Removed, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			rec.State[p] = "dir"
		case tar.TypeSymlink:
			rec.State[p] = "link " + h.Linkname
		case tar.TypeLink:
			rec.State[p] = "hardlink " + h.Linkname
		case tar.TypeReg:
			sum := sha256.New()
			var buf bytes.Buffer
			w := io.Writer(sum)
			keep := keepFile(p) && h.Size <= maxRebaseFile
			if keep {
				w = io.MultiWriter(sum, &buf)
			}
			if _, err := io.Copy(w, r); err != nil {
				return nil, err
			}
			rec.State[p] = fmt.Sprintf("file %o %d:%d sha256:%x", h.Mode, h.Uid, h.Gid, sum.Sum(nil))
			if keep {
				rec.Data[p] = buf.Bytes()
			}
		default:
			rec.State[p] = fmt.Sprintf("type %c", h.Typeflag)
		}
	}
	// To the end of the stream, which checks the diff ID.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return nil, err
	}
	return rec, nil
}

// writeJSONAtomic writes v to file as JSON, whole or not at all.
func writeJSONAtomic(file string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(file, data)
}

// basePython is a base's Python minor version: its PYTHON_VERSION, else what its python3
// links to.
func basePython(cf *v1.ConfigFile, fsys *fileSystem) string {
	if v := minorVersion(envValue(cf.Config.Env, "PYTHON_VERSION")); v != "" {
		return v
	}
	for _, p := range pythonLinks {
		st, ok := fsys.state[p]
		if !ok {
			continue
		}
		target, isLink := strings.CutPrefix(st, "link ")
		if !isLink {
			return ""
		}
		return minorVersion(strings.TrimPrefix(path.Base(target), "python"))
	}
	return ""
}

// minorVersion is "3.13" of "3.13.1", "3.13.1.final.0" or "3.13"; empty for anything else.
func minorVersion(v string) string {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return ""
	}
	for _, p := range parts[:2] {
		if _, err := strconv.Atoi(p); err != nil || p == "" {
			return ""
		}
	}
	return parts[0] + "." + parts[1]
}

// osRelease reads the os-release file of fsys (etc/os-release, or the file it leads to).
func osRelease(fsys *fileSystem) map[string]string {
	data, ok := fsys.data[osReleasePath]
	if !ok {
		data = fsys.data[osReleaseLibPath]
	}
	kv := keyValues(string(data))
	for k, v := range kv {
		kv[k] = strings.Trim(v, `"'`)
	}
	return kv
}

func osName(kv map[string]string) string {
	if kv["ID"] == "" {
		return "an OS without /etc/os-release"
	}
	return short(strings.TrimSpace(kv["ID"] + " " + kv["VERSION_ID"]))
}

// short cuts what an image says, for a message, to a few dozen bytes (printError escapes
// what is left).
func short(s string) string {
	if len(s) > 48 {
		return s[:48] + "..."
	}
	return s
}

// libcVersion is the upstream version of the glibc that dpkg lists (libc6), or empty.
func libcVersion(fsys *fileSystem) string {
	for _, para := range strings.Split(string(fsys.data[dpkgStatusPath]), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(para, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields["Package"] != "libc6" || !strings.Contains(fields["Status"], "installed") {
			continue
		}
		v := fields["Version"]
		if _, after, ok := strings.Cut(v, ":"); ok {
			v = after
		}
		if i := strings.LastIndex(v, "-"); i > 0 {
			v = v[:i]
		}
		return v
	}
	return ""
}

// versionLess compares dotted numeric versions ("2.36" < "2.41"); a part that is not a
// number compares as zero.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(leadingDigits(as[i]))
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(leadingDigits(bs[i]))
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// keyValues reads "key = value" and "KEY=value" lines (pyvenv.cfg, os-release).
func keyValues(s string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

// envValue is the value of name in env, or empty.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
