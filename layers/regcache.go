package layers

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
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
)

// The registry cache: the dependency layer kept in a repository (Options.CacheRepo) under
// its cache key, so that every runner whose key matches reuses it instead of installing.
// An entry is an OCI manifest tagged "pyship-KEY": its one layer is the dependency layer,
// its config (of CacheConfigType) labels the key and the Debian packages holding the
// runtime libraries the layer links. The layer's bytes are pulled once, into the local
// cache, checked against the manifest's digest and the config's diff ID; a push of the
// image to the same registry then finds the blob there.

// CacheConfigType is the media type of a registry cache entry's config.
const CacheConfigType types.MediaType = "application/vnd.pyship.cache.config.v1+json"

// Labels of a registry cache entry's config.
const (
	cacheKeyLabel     = "dev.pyship.cache.key"
	cacheRuntimeLabel = "dev.pyship.cache.runtime-packages"
)

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

// fromRegistryCache looks for key's entry in the cache repository and, when it is there,
// pulls its layer into the local cache under key and returns it with the runtime
// packages. A missing entry is a miss; one that cannot be read or does not check out is a
// miss with a warning: the cache only saves time.
func fromRegistryCache(ctx context.Context, key, venv, layersDir string, opts Options) (v1.Layer, []string, bool) {
	log := opts.Logger
	tag := CacheTag(*opts.CacheRepo, key)
	start := time.Now()
	img, err := remote.Image(tag, remoteOptions(ctx, opts)...)
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == 404 || terr.StatusCode == 401 && isUnknown(terr)) {
		log.Debug("no registry cache entry", "tag", tag.String())
		return nil, nil, false
	}
	if err == nil {
		var l v1.Layer
		var runtime []string
		if l, runtime, err = pullCacheEntry(img, key, venv, layersDir); err == nil {
			log.Info("dependencies from the registry cache", "tag", tag.String(), "took", since(start))
			return l, runtime, true
		}
	}
	log.Warn("the registry cache entry cannot be used; installing", "tag", tag.String(), "error", err)
	return nil, nil, false
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

// pullCacheEntry checks a registry cache entry and writes its layer into layersDir as the
// local entry for key.
func pullCacheEntry(img v1.Image, key, venv, layersDir string) (v1.Layer, []string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	if got := cf.Config.Labels[cacheKeyLabel]; got != key {
		return nil, nil, fmt.Errorf("the entry is labelled for key %q", got)
	}
	runtime := strings.Fields(cf.Config.Labels[cacheRuntimeLabel])
	if err := CheckPackages(runtime); err != nil {
		return nil, nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, nil, err
	}
	if len(m.Layers) != 1 || len(cf.RootFS.DiffIDs) != 1 {
		return nil, nil, fmt.Errorf("the entry has %d layers, not one", len(m.Layers))
	}
	desc := m.Layers[0]
	if desc.Size > maxCachedLayer || desc.Digest.Algorithm != "sha256" {
		return nil, nil, fmt.Errorf("the entry's layer %s (%d bytes) is not one pyship takes", desc.Digest, desc.Size)
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, nil, err
	}
	if err := downloadLayer(ls[0], desc.Digest, cf.RootFS.DiffIDs[0], venv, layersDir); err != nil {
		return nil, nil, err
	}
	e, err := writeIndex(layersDir, desc.Digest, cf.RootFS.DiffIDs[0])
	if err != nil {
		return nil, nil, err
	}
	if err := writeRuntimePackages(layersDir, key, runtime); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(filepath.Join(layersDir, key+keySuffix), []byte(desc.Digest.String()+"\n")); err != nil {
		return nil, nil, err
	}
	return indexedLayer(layersDir, desc.Digest, e), runtime, nil
}

// downloadLayer writes l's compressed bytes into layersDir under its digest, checking
// them against digest, and the tar they hold against diffID and checkVenvTar.
func downloadLayer(l v1.Layer, digest, diffID v1.Hash, venv, layersDir string) error {
	if err := os.MkdirAll(layersDir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(layersDir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	sum := sha256.New()
	pr, pw := io.Pipe()
	unpacked := make(chan error, 1)
	go func() {
		// What the tar holds, and its diff ID, from the same bytes as they arrive.
		tr, err := decompressed(pr, types.OCILayer, diffID)
		if err == nil {
			if err = checkVenvTar(tr, venv); err == nil {
				_, err = io.Copy(io.Discard, tr)
			}
			tr.Close()
		}
		_, _ = io.Copy(io.Discard, pr)
		unpacked <- err
	}()
	_, err = io.Copy(io.MultiWriter(tmp, sum, pw), io.LimitReader(rc, maxCachedLayer))
	pw.CloseWithError(err)
	if uerr := <-unpacked; err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != digest.Hex {
		return fmt.Errorf("the layer hashes to sha256:%s, not %s", got, digest)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(layersDir, layerFileName(digest)))
}

// checkVenvTar reads a dependency layer's tar and refuses what pyship's own writer would
// not have put in it: an entry outside the venv, a hard link, a device, a set-id bit.
func checkVenvTar(r io.Reader, venv string) error {
	prefix := strings.Trim(venv, "/") + "/"
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
		inside := strings.HasPrefix(name+"/", prefix) || strings.HasPrefix(prefix, name+"/")
		switch {
		case !inside || name != strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"):
			return fmt.Errorf("the layer holds %q, outside %s", h.Name, venv)
		case h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeSymlink:
			return fmt.Errorf("the layer holds %q of type %q, which pyship does not write", h.Name, h.Typeflag)
		case h.Mode&0o6000 != 0:
			return fmt.Errorf("the layer holds %q with a set-id bit", h.Name)
		}
	}
}

// toRegistryCache pushes the dependency layer l as key's entry in the cache repository.
// A failure is a warning: the build does not need the cache.
func toRegistryCache(ctx context.Context, key string, l v1.Layer, runtime []string, platform v1.Platform, opts Options) {
	log := opts.Logger
	tag := CacheTag(*opts.CacheRepo, key)
	start := time.Now()
	img, err := cacheEntry(key, l, runtime, platform)
	if err == nil {
		err = remote.Write(tag, img, remoteOptions(ctx, opts)...)
	}
	if err != nil {
		log.Warn("could not store the dependencies in the registry cache; the next runner installs them again", "tag", tag.String(), "error", err)
		return
	}
	log.Info("dependencies stored in the registry cache", "tag", tag.String(), "took", since(start))
}

// cacheEntry makes key's registry cache entry for l: an OCI manifest whose bytes depend
// only on the layer, the key and the packages.
func cacheEntry(key string, l v1.Layer, runtime []string, platform v1.Platform) (v1.Image, error) {
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: l, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: DefaultEpoch}, CreatedBy: "pyship: dependency cache " + key}})
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
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	// Last: a config media type set before the config is replaced keeps the old config.
	return mutate.ConfigMediaType(img, CacheConfigType), nil
}
