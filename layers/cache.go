package layers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// The cache directory holds, besides the extracted file systems (rootfs/, trees/):
//
//	lock                         the lock one pyship at a time holds to change the cache
//	CACHEDIR.TAG                 marks the directory as a cache for backup tools, and as pyship's
//	oci/                         an OCI layout: base images, and built images unless told otherwise
//	layers/sha256-HEX.tar.gz     layers pyship wrote, named by digest
//	layers/sha256-HEX.json       the layer's diff ID and size, and its file's identity when it
//	                             last hashed to its name (index.go)
//	layers/deps-KEY.digest       which layer holds the dependencies for KEY
//	layers/user-KEY.digest       which layer holds the user for KEY
//	layers/steps-KEY.digest      which layer holds what the build steps wrote, for KEY
//	layers/stepsread-KEY.read.json  what the build steps read, for the KEY of all but
//	                             the application layer, and their layer's key (stepsread.go)
//	layers/nolinks-HEX           a tree holds no symbolic link into the application directory
//	tools/uv-VERSION-ARCH/uv     the uv that installs dependencies, checked against its pinned hash
//	verified/sha256-HEX          the identity a base blob's file had when it last hashed to HEX
//
// Every entry is verified when read: a layer must hash to its name, a base blob to the
// digest its manifest gives. What does not is removed with a warning and made again.

const (
	lockName = "lock"
	tagName  = "CACHEDIR.TAG"
	cacheTag = "Signature: 8a477f597d28d172789f06886806bc55\n" +
		"# This file is a cache directory tag created by pyship.\n" +
		"# For information about cache directory tags, see https://bford.info/cachedir/\n"
	// verifiedDir holds, for each base blob checked, the identity its file had then.
	verifiedDir = "verified"
	// keySuffix names the files that map a cache key to a layer's digest.
	keySuffix = ".digest"
	// staleAfter is the age past which scratch that a pyship outside a build may own (an
	// extraction for pyship test --image) is taken to be left over.
	staleAfter = time.Hour
)

// cacheEntries are the names pyship makes at the top of a cache: a directory holding only
// these is a pyship cache made before it had a CACHEDIR.TAG.
var cacheEntries = []string{lockName, "oci", "layers", "rootfs", "trees", rootfsDir, treesDir, "tools", verifiedDir}

// warnedCaches remembers the caches this process has warnedCaches about, so that is said once.
var warnedCaches sync.Map

// PrepareCache creates the cache directory dir, readable by its owner only, or makes an
// existing pyship cache so. A directory that holds other things (a home directory given as
// the cache by mistake) keeps its permissions, with a warning; what pyship creates in it is
// private all the same.
func PrepareCache(dir string, log hclog.Logger) error {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the cache %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading the cache %s: %w", dir, err)
	}
	// Ours: tagged, or holding nothing but what pyship puts in a cache (one made before the
	// tag, or a new one).
	ours := true
	for _, e := range entries {
		if e.Name() == tagName {
			ours = true
			break
		}
		if !contains(cacheEntries, e.Name()) && !strings.HasPrefix(e.Name(), ".tmp-") {
			ours = false
		}
	}
	if !ours {
		if _, said := warnedCaches.LoadOrStore(dir, true); !said {
			log.Warn("the cache directory holds files that are not pyship's; its permissions stay as they are", "dir", dir)
		}
		return nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("making the cache %s private: %w", dir, err)
		}
		log.Debug("made the cache private", "dir", dir, "was", info.Mode().Perm().String())
	}
	if _, err := os.Stat(filepath.Join(dir, tagName)); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(filepath.Join(dir, tagName), []byte(cacheTag)); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// LockCache waits until no other pyship changes the cache in dir, and returns the function
// that lets the next one go. The wait ends with ctx. The lock is an flock, so the kernel
// releases it when a process dies, however it dies.
func LockCache(ctx context.Context, dir string, log hclog.Logger) (func(), error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the cache lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	flock := func(how int) error {
		for {
			if err := unix.Flock(fd, how); !errors.Is(err, unix.EINTR) {
				return err
			}
		}
	}
	release := func() {
		_ = f.Truncate(0)
		_ = f.Close()
	}
	locked := func() (func(), error) {
		// Who holds the lock, for the log of the next pyship that waits for it.
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		return release, nil
	}
	err = flock(unix.LOCK_EX | unix.LOCK_NB)
	if err == nil {
		return locked()
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("locking the cache %s: %w", path, err)
	}
	args := []any{"cache", dir}
	if data, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			args = append(args, "pid", pid)
		}
	}
	log.Info("waiting for another pyship that is using the same cache", args...)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- flock(unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking the cache %s: %w", path, err)
		}
		log.Info("the cache is free", "waited", since(start))
		return locked()
	case <-ctx.Done():
		// The flock goes on until the other pyship lets go; then the lock is dropped.
		go func() {
			<-done
			f.Close()
		}()
		return nil, fmt.Errorf("waiting for the cache lock %s: %w", path, ctx.Err())
	}
}

// scratch is where temporary files and directories of interrupted work are found. Owned by
// a build, they live only while their pyship holds the cache lock, so one that holds it
// finds them left over; the others are left over when older than staleAfter.
var scratch = []struct {
	dir, prefix string
	build       bool
}{
	{"layers", ".install-", true},
	{"layers", ".steps-", true},
	{"layers", ".layer-", true},
	{"layers", ".tmp-", true},
	{"oci", ".tmp-", true},
	{"oci/blobs/sha256", ".tmp-", true},
	{"tools/*", ".tmp-", true},
	{verifiedDir, ".tmp-", true},
	{rootfsDir, ".extract-", false},
	{treesDir, ".extract-", false},
	{"rootfs", ".extract-", false},
	{"trees", ".extract-", false},
}

// legacyLayers are the layer files of caches before layers were named by digest.
var legacyLayers = []string{"deps-*.tar.gz", "user-*.tar.gz"}

// cleanScratch removes what interrupted work left in the cache. The caller holds the lock.
func cleanScratch(dir string, log hclog.Logger) {
	var removed []string
	remove := func(p string) {
		if err := os.RemoveAll(p); err != nil {
			log.Warn("could not remove scratch an interrupted build left in the cache", "path", p, "error", err)
			return
		}
		removed = append(removed, p)
	}
	for _, s := range scratch {
		matches, _ := filepath.Glob(filepath.Join(dir, s.dir, s.prefix+"*"))
		for _, m := range matches {
			if !s.build && !olderThan(m, staleAfter) {
				continue
			}
			remove(m)
		}
	}
	// ggcr writes a layer blob to the name of its digest followed by random digits, and renames it.
	blobs, _ := os.ReadDir(filepath.Join(LayoutDir(dir), "blobs", "sha256"))
	for _, b := range blobs {
		if n := b.Name(); len(n) > sha256.Size*2 && isHex(n[:sha256.Size*2]) {
			if p := filepath.Join(LayoutDir(dir), "blobs", "sha256", n); olderThan(p, staleAfter) {
				remove(p)
			}
		}
	}
	for _, pattern := range legacyLayers {
		matches, _ := filepath.Glob(filepath.Join(dir, "layers", pattern))
		for _, m := range matches {
			remove(m)
		}
	}
	if len(removed) > 0 {
		log.Info("removed what interrupted builds left in the cache", "entries", len(removed))
		for _, p := range removed {
			log.Debug("removed", "path", p)
		}
	}
}

func olderThan(p string, age time.Duration) bool {
	info, err := os.Lstat(p)
	return err == nil && time.Since(info.ModTime()) > age
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// writeFileAtomic writes data to path by renaming a complete file onto it, so a reader sees
// the old bytes or the new ones, never part of them; writers of the same bytes cannot
// collide.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// layerFileName is the name of the layer file with digest d.
func layerFileName(d v1.Hash) string { return d.Algorithm + "-" + d.Hex + ".tar.gz" }

// cachedLayer returns the layer the cache in dir holds for key, or nil when it holds none.
// An entry whose layer file is gone or no longer hashes to its digest is removed with a
// warning, and counts as none.
func cachedLayer(dir, key string, log hclog.Logger) (v1.Layer, error) {
	ref := filepath.Join(dir, key+keySuffix)
	data, err := readSmall(ref, 512)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var want v1.Hash
	if err == nil {
		want, err = v1.NewHash(strings.TrimSpace(string(data)))
	}
	if err != nil {
		log.Warn("a cache entry is unreadable; making it again", "path", ref, "error", err)
		return nil, removeAll(ref)
	}
	if e := readIndex(dir, want); e != nil {
		return indexedLayer(dir, want, e), nil
	}
	// Not indexed, or written since it was: read it whole, once.
	file := filepath.Join(dir, layerFileName(want))
	l, err := layerFromFile(file)
	var diffID v1.Hash
	if err == nil {
		var got v1.Hash
		if got, err = l.Digest(); err == nil && got != want {
			err = fmt.Errorf("its digest is %s, not %s", got, want)
		}
	}
	if err == nil {
		diffID, err = l.DiffID()
	}
	if err == nil {
		var e *indexEntry
		if e, err = writeIndex(dir, want, diffID); err == nil {
			return indexedLayer(dir, want, e), nil
		}
	}
	log.Warn("a cached layer is missing or damaged; making it again", "path", file, "error", err)
	return nil, removeAll(file, ref, filepath.Join(dir, indexName(want)))
}

func removeAll(paths ...string) error {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// readSmall reads a regular file of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// openLayout opens the cache's OCI layout in dir, creating it, or starting a new index
// (with a warning that names it) when the one there cannot be read. The blobs stay.
func openLayout(dir string, log hclog.Logger) (layout.Path, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	layoutFile := filepath.Join(dir, "oci-layout")
	if data, err := readSmall(layoutFile, 4096); err != nil || !json.Valid(data) {
		if err == nil {
			log.Warn("the cache's oci-layout file is damaged; writing it again", "path", layoutFile)
		}
		if err := writeFileAtomic(layoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return "", err
		}
	}
	index := filepath.Join(dir, "index.json")
	data, err := os.ReadFile(index)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	default:
		_, err := v1.ParseIndexManifest(bytes.NewReader(data))
		if err == nil {
			return layout.Path(dir), nil
		}
		log.Warn("the cache index is damaged; starting a new one (cached blobs stay, images written to the cache earlier lose their names)",
			"path", index, "error", err)
	}
	empty, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}})
	if err != nil {
		return "", err
	}
	return layout.Path(dir), writeFileAtomic(index, empty)
}

// addToIndex records desc in the layout's index, unless an entry has its digest already.
// The index is replaced whole, so no reader sees half of it.
func addToIndex(lp layout.Path, desc v1.Descriptor) error {
	index := filepath.Join(string(lp), "index.json")
	data, err := os.ReadFile(index)
	if err != nil {
		return err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("reading %s: %w", index, err)
	}
	for _, m := range im.Manifests {
		if m.Digest == desc.Digest {
			return nil
		}
	}
	im.Manifests = append(im.Manifests, desc)
	out, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	return writeFileAtomic(index, out)
}

// badBlobs checks the blobs of the image with manifest digest d and manifest m in the
// layout: it returns those present whose bytes do not hash to their digest, and whether
// any is missing. A blob checked before, and not written since (its identity recorded in
// verified is its identity now), is not read again.
func badBlobs(lp layout.Path, d v1.Hash, m *v1.Manifest, verified string) (bad []string, missing bool) {
	want := []v1.Descriptor{{Digest: d, Size: -1}, m.Config}
	want = append(want, m.Layers...)
	for _, desc := range want {
		p := filepath.Join(string(lp), "blobs", desc.Digest.Algorithm, desc.Digest.Hex)
		stamp := filepath.Join(verified, desc.Digest.Algorithm+"-"+desc.Digest.Hex)
		id, err := identify(p)
		if errors.Is(err, fs.ErrNotExist) {
			missing = true
			continue
		}
		if err == nil {
			if data, err := readSmall(stamp, 512); err == nil && string(data) == id.String() {
				continue
			}
		}
		ok, err := blobMatches(p, desc)
		if err != nil || !ok {
			bad = append(bad, p)
			continue
		}
		_ = stampVerified(verified, desc.Digest, p)
	}
	return bad, missing
}

// stampVerified records in verified the identity the blob file at p has now, having just
// hashed to d.
func stampVerified(verified string, d v1.Hash, p string) error {
	id, err := identify(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(verified, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(verified, d.Algorithm+"-"+d.Hex), []byte(id.String()))
}

// blobMatches reports whether the file at p has desc's size (unless -1) and digest.
func blobMatches(p string, desc v1.Descriptor) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if desc.Size >= 0 {
		info, err := f.Stat()
		if err != nil || info.Size() != desc.Size {
			return false, err
		}
	}
	if desc.Digest.Algorithm != "sha256" {
		return false, fmt.Errorf("unsupported digest algorithm %q", desc.Digest.Algorithm)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == desc.Digest.Hex, nil
}
