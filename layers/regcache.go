package layers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"
)

// The registry cache: the dependency, build steps' and user layers kept in a repository
// (Options.CacheRepo) under their cache keys, so that every runner whose key matches
// reuses them instead of making them. An entry is an OCI manifest tagged "pyship-KEY"
// (KEY says which layer: deps-..., steps-... or user-...): its one layer is the cached
// layer, its config (of CacheConfigType) labels the key and, for the dependencies, the
// Debian packages holding the runtime libraries the layer links. The layer's bytes are pulled once, into the local
// cache, checked against the manifest's digest and the config's diff ID; a push of the
// image to the same registry then finds the blob there.

// CacheConfigType is the media type of a registry cache entry's config.
const CacheConfigType types.MediaType = "application/vnd.pyship.cache.config.v1+json"

// Labels of a registry cache entry's config.
const (
	cacheKeyLabel     = "dev.pyship.cache.key"
	cacheRuntimeLabel = "dev.pyship.cache.runtime-packages"
	// cacheReadLabel holds, on an entry for the build steps' trace key, what the steps
	// read (a stepsRead, as JSON).
	cacheReadLabel = "dev.pyship.cache.steps-read"
)

// maxCacheConfig bounds a registry cache entry's config, which the steps' trace makes
// the largest (maxStepsRead).
const maxCacheConfig = 4 << 20

// maxCachedLayer bounds what a registry cache entry's layer may be.
const maxCachedLayer = 4 << 30

// CacheTag is the tag of the registry cache entry for key.
func CacheTag(repo name.Repository, key string) name.Tag {
	return repo.Tag("pyship-" + key)
}

// remoteOptions are how the build reaches registries.
func remoteOptions(ctx context.Context, opts Options) []remote.Option {
	ro := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(opts.Keychain)}
	if opts.Transport != nil {
		ro = append(ro, remote.WithTransport(opts.Transport))
	}
	return ro
}

// registryEntry is a registry cache entry found for a key, its manifest and config
// checked, its layer not pulled yet.
type registryEntry struct {
	key, what string
	tag       name.Tag
	layer     v1.Descriptor
	diffID    v1.Hash
	runtime   []string
	// read is the entry's cacheReadLabel.
	read string
	// alias and localRead are set on an entry for the steps' trace key (tracedEntry):
	// the pulled layer is kept locally under alias, the build's own key, and localRead
	// is the trace kept under key.
	alias     string
	localRead []byte
}

// lookupRegistryCache looks for key's entry (what names its layer in messages) in the
// cache repository. A missing entry is nil; so is one that cannot be read or does not
// check out, with a warning: the cache only saves time.
func lookupRegistryCache(ctx context.Context, key, what string, opts Options) *registryEntry {
	log := opts.Logger
	tag := CacheTag(*opts.CacheRepo, key)
	img, err := remote.Image(tag, remoteOptions(ctx, opts)...)
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == 404 || terr.StatusCode == 401 && isUnknown(terr)) {
		log.Debug("no registry cache entry", "tag", tag.String())
		return nil
	}
	if err == nil {
		var e *registryEntry
		if e, err = checkEntry(img, key); err == nil {
			e.what, e.tag = what, tag
			return e
		}
	}
	log.Warn("the registry cache entry cannot be used; making the layer", "layer", what, "tag", tag.String(), "error", err)
	return nil
}

// checkEntry checks that a registry cache entry's manifest and config are those pyship
// writes for key.
func checkEntry(img v1.Image, key string) (*registryEntry, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.Config.Size > maxCacheConfig {
		return nil, fmt.Errorf("the entry's config is %d bytes, more than pyship writes", m.Config.Size)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if got := cf.Config.Labels[cacheKeyLabel]; got != key {
		return nil, fmt.Errorf("the entry is labelled for key %q", got)
	}
	runtime := strings.Fields(cf.Config.Labels[cacheRuntimeLabel])
	if err := CheckPackages(runtime); err != nil {
		return nil, err
	}
	if len(m.Layers) != 1 || len(cf.RootFS.DiffIDs) != 1 {
		return nil, fmt.Errorf("the entry has %d layers, not one", len(m.Layers))
	}
	desc := m.Layers[0]
	if desc.Size > maxCachedLayer || desc.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("the entry's layer %s (%d bytes) is not one pyship takes", desc.Digest, desc.Size)
	}
	return &registryEntry{key: key, layer: desc, diffID: cf.RootFS.DiffIDs[0], runtime: runtime, read: cf.Config.Labels[cacheReadLabel]}, nil
}

// pull writes the entry's layer into layersDir as the local entry for its key, fetched
// under ctx (not the lookup's), checking its bytes against the manifest's digest and the
// config's diff ID, and its tar with check. A failure is a warning, and nil: the layer is
// made instead.
//
// With tree, the layer's tree (layerTree) is extracted from the same bytes as they arrive,
// for a build that goes on to run over it.
func (e *registryEntry) pull(ctx context.Context, layersDir string, check func(io.Reader) error, tree bool, opts Options) v1.Layer {
	start := time.Now()
	l, err := e.download(ctx, layersDir, check, tree, opts)
	if err != nil {
		opts.Logger.Warn("the registry cache entry cannot be used; making the layer", "layer", e.what, "tag", e.tag.String(), "error", err)
		return nil
	}
	opts.Logger.Info(e.what+" from the registry cache", "tag", e.tag.String(), "took", since(start))
	return l
}

func (e *registryEntry) download(ctx context.Context, layersDir string, check func(io.Reader) error, tree bool, opts Options) (v1.Layer, error) {
	l, err := remote.Layer(e.tag.Context().Digest(e.layer.Digest.String()), remoteOptions(ctx, opts)...)
	if err != nil {
		return nil, err
	}
	var dir string
	if tree {
		dir = filepath.Join(opts.CacheDir, treesDir, e.layer.Digest.Hex)
	}
	if err := downloadLayer(l, e.layer.Digest, e.diffID, check, layersDir, dir, tapped(opts.Tap), opts.Logger); err != nil {
		return nil, err
	}
	ie, err := writeIndex(layersDir, e.layer.Digest, e.diffID)
	if err != nil {
		return nil, err
	}
	if err := writeRuntimePackages(layersDir, e.key, e.runtime); err != nil {
		return nil, err
	}
	if e.localRead != nil {
		// A steps' layer found by what they read: kept under the build's own key, and
		// the trace under its key.
		if err := writeFileAtomic(filepath.Join(layersDir, e.alias+keySuffix), []byte(e.layer.Digest.String()+"\n")); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(stepsReadFile(layersDir, e.key), e.localRead); err != nil {
			return nil, err
		}
		return indexedLayer(layersDir, e.layer.Digest, ie), nil
	}
	if err := writeFileAtomic(filepath.Join(layersDir, e.key+keySuffix), []byte(e.layer.Digest.String()+"\n")); err != nil {
		return nil, err
	}
	return indexedLayer(layersDir, e.layer.Digest, ie), nil
}

// fromRegistryCache looks for key's entry in the cache repository and, when it is there,
// pulls its layer (what names it in messages; check reads its tar) into the local cache
// under key and returns it with the runtime packages.
func fromRegistryCache(ctx context.Context, key, what string, check func(io.Reader) error, layersDir string, tree bool, opts Options) (v1.Layer, []string, bool) {
	e := lookupRegistryCache(ctx, key, what, opts)
	if e == nil {
		return nil, nil, false
	}
	l := e.pull(ctx, layersDir, check, tree, opts)
	return l, e.runtime, l != nil
}

// isUnknown reports whether a registry's refusal says the repository does not exist, as
// some registries answer for a repository that was never pushed to.
func isUnknown(e *transport.Error) bool {
	for _, d := range e.Errors {
		if d.Code == transport.NameUnknownErrorCode || d.Code == transport.ManifestUnknownErrorCode {
			return true
		}
	}
	return false
}

// downloadLayer writes l's compressed bytes into layersDir under its digest, checking
// them against digest, and the tar they hold against diffID and with check, in one pass
// (streamLayer). When tree is not "", the tar is extracted there too (unless it is there
// already), as it arrives; the tree appears only once all the checks pass. tap, when not nil, is
// handed the tar.
func downloadLayer(l v1.Layer, digest, diffID v1.Hash, check func(io.Reader) error, layersDir, tree string, tap TarTap, log hclog.Logger) error {
	take := checkTaker(check)
	if tree != "" {
		take = unpackChecking(check, tree)
	}
	return streamLayer(cacheLayer{l, diffID}, digest, filepath.Join(layersDir, layerFileName(digest)), take, tap, "", log)
}

// cacheLayer is a registry cache entry's layer: a gzip tar of at most maxCachedLayer
// bytes whose diff ID the entry's config gives.
type cacheLayer struct {
	v1.Layer
	diffID v1.Hash
}

func (l cacheLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l cacheLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l cacheLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, maxCachedLayer), rc}, nil
}

// checkTaker is a taker that has check read the tar, then checks the bytes.
func checkTaker(check func(io.Reader) error) taker {
	return func(tr io.Reader, checked func() error) error {
		if err := check(tr); err != nil {
			return err
		}
		return checked()
	}
}

// unpackChecking is a taker that extracts the tar into tree and has check read it beside
// the extraction; the tree appears once both are done and the bytes check out. A tree
// that another pyship made meanwhile is kept, and the tar is checked all the same.
func unpackChecking(check func(io.Reader) error, tree string) taker {
	return func(tr io.Reader, checked func() error) error {
		filled := false
		if _, err := makeOnce(tree, func(tmp string) error {
			filled = true
			cr, cw := io.Pipe()
			checking := make(chan error, 1)
			go func() {
				err := check(cr)
				if err != nil {
					// The extraction's next write fails: it stops.
					cr.CloseWithError(err)
				} else {
					// To the end, so that the extraction never waits on it.
					_, _ = io.Copy(io.Discard, cr)
				}
				checking <- err
			}()
			err := extract(io.TeeReader(tr, cw), tmp)
			if err != nil {
				err = fmt.Errorf("extracting into %q: %w", tree, err)
			}
			cw.CloseWithError(err)
			if cerr := <-checking; cerr != nil {
				// The check's refusal, rather than the extraction it stopped.
				err = cerr
			}
			if err != nil {
				return err
			}
			return checked()
		}); err != nil || filled {
			return err
		}
		return checkTaker(check)(tr, checked)
	}
}

// below returns a check of a cached layer's tar (checkLayerTar) for dir.
func below(dir string) func(io.Reader) error {
	return func(r io.Reader) error { return checkLayerTar(r, dir) }
}

// checkLayerTar reads a cached layer's tar and refuses what pyship's own writer would not
// have put in it: an entry outside dir (the venv, or the application directory), a hard
// link, a device, a set-id bit.
func checkLayerTar(r io.Reader, dir string) error {
	prefix := strings.Trim(dir, "/") + "/"
	return checkTar(r, func(name string, h *tar.Header) error {
		ancestor := strings.HasPrefix(prefix, name+"/")
		switch {
		case !ancestor && !strings.HasPrefix(name+"/", prefix):
			return fmt.Errorf("the layer holds %q, outside %s", h.Name, dir)
		case ancestor && h.Typeflag != tar.TypeDir:
			return fmt.Errorf("the layer holds %q, a directory above %s, as type %q", h.Name, dir, h.Typeflag)
		case h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeSymlink:
			return fmt.Errorf("the layer holds %q of type %q, which pyship does not write", h.Name, h.Typeflag)
		}
		return nil
	})
}

// checkTar reads a cached layer's tar to its end, refusing an entry whose name is not
// plain (one that climbs, or names the root) or that has a set-id bit, and any entry
// check refuses; check gets the entry's clean name.
func checkTar(r io.Reader, check func(name string, h *tar.Header) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case name == "" || name != strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"):
			return fmt.Errorf("the layer holds %q, which pyship does not write", h.Name)
		case h.Mode&0o6000 != 0:
			return fmt.Errorf("the layer holds %q with a set-id bit", h.Name)
		}
		if err := check(name, h); err != nil {
			return err
		}
	}
}

// toRegistryCache pushes the layer l (what names it in messages) as key's entry in the
// cache repository, with read as its cacheReadLabel when not empty. A failure is a
// warning: the build does not need the cache.
func toRegistryCache(ctx context.Context, key, what string, l v1.Layer, runtime []string, read string, platform v1.Platform, opts Options) {
	log := opts.Logger
	tag := CacheTag(*opts.CacheRepo, key)
	start := time.Now()
	img, err := cacheEntry(key, l, runtime, read, platform)
	if err == nil {
		err = remote.Write(tag, img, remoteOptions(ctx, opts)...)
	}
	if err != nil {
		log.Warn("could not store a layer in the registry cache; the next runner makes it again", "layer", what, "tag", tag.String(), "error", err)
		return
	}
	log.Info(what+" stored in the registry cache", "tag", tag.String(), "took", since(start))
}

// cacheEntry makes key's registry cache entry for l: an OCI manifest whose bytes depend
// only on the layer, the key and the packages.
func cacheEntry(key string, l v1.Layer, runtime []string, read string, platform v1.Platform) (v1.Image, error) {
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: l, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: DefaultEpoch}, CreatedBy: "pyship: cache " + key}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: DefaultEpoch}
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Config.Labels = map[string]string{cacheKeyLabel: key, cacheRuntimeLabel: strings.Join(runtime, " ")}
	if read != "" {
		cf.Config.Labels[cacheReadLabel] = read
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	// Last: a config media type set before the config is replaced keeps the old config.
	return mutate.ConfigMediaType(img, CacheConfigType), nil
}
