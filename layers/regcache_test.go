package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/hashicorp/go-hclog"
)

// TestRegistryCacheEntry: an entry pushed for a key comes back, into another local cache,
// as the same layer with its runtime packages; an entry for another key, or a missing
// one, is a miss.
func TestRegistryCacheEntry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/app")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"lib/python3.13/site-packages/flask/__init__.py": "x = 1\n"})
	l, err := writeLayerFile(t.TempDir(), "deps-a", DefaultEpoch, nil, func(w *normalisingWriter) error {
		return writeTree(w, src, treeOptions{Prefix: "/opt/venv"})
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{CacheRepo: &repo, Keychain: authn.DefaultKeychain, Logger: hclog.NewNullLogger()}
	ctx := context.Background()
	platform := v1.Platform{OS: "linux", Architecture: "amd64"}

	entry, err := cacheEntry("deps-a", l, []string{"libpq5"}, "", platform)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(entry); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	again, _ := cacheEntry("deps-a", l, []string{"libpq5"}, "", platform)
	d1, _ := entry.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same entry made twice has digests %s and %s", d1, d2)
	}
	toRegistryCache(ctx, "deps-a", "dependencies", l, []string{"libpq5"}, "", platform, opts)
	pushed, err := remote.Image(CacheTag(repo, "deps-a"))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := pushed.Manifest(); m.Config.MediaType != CacheConfigType {
		t.Errorf("the entry's config is of type %s", m.Config.MediaType)
	}

	local := t.TempDir()
	got, runtime, ok := fromRegistryCache(ctx, "deps-a", "dependencies", below("/opt/venv"), local, false, opts)
	if !ok {
		t.Fatal("the pushed entry was not found")
	}
	for _, pair := range [][2]func(v1.Layer) (v1.Hash, error){{v1.Layer.Digest, v1.Layer.Digest}, {v1.Layer.DiffID, v1.Layer.DiffID}} {
		a, _ := pair[0](l)
		b, _ := pair[1](got)
		if a != b {
			t.Errorf("the layer came back as %s, was %s", b, a)
		}
	}
	if !slices.Equal(runtime, []string{"libpq5"}) {
		t.Errorf("runtime packages %v", runtime)
	}
	if hit, err := cachedLayer(local, "deps-a", hclog.NewNullLogger()); err != nil || hit == nil {
		t.Errorf("the pulled layer is not in the local cache: %v", err)
	}
	// Pulled for a build that runs over it: its tree is made from the same bytes, as
	// extraction makes it, and the tap has the tar.
	treeOpts := opts
	treeOpts.CacheDir = t.TempDir()
	tap := &tarCopy{}
	treeOpts.Tap = func() TarTap { return tap }
	pulled, _, ok := fromRegistryCache(ctx, "deps-a", "dependencies", below("/opt/venv"), filepath.Join(treeOpts.CacheDir, "layers"), true, treeOpts)
	if !ok {
		t.Fatal("the pushed entry was not found")
	}
	d, _ := pulled.Digest()
	tap.check(t, l, d)
	tree := filepath.Join(treeOpts.CacheDir, treesDir, d.Hex)
	extracted, err := layerTree(l, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeTree(t, tree), describeTree(t, extracted); got != want {
		t.Errorf("the tree made as the layer came:\n%s\nextracted:\n%s", got, want)
	}
	// A layer its check refuses leaves no tree, though extraction could take it.
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"etc/cron.d/job": "* * * * * root true\n"})
	bad, err := writeLayerFile(t.TempDir(), "", DefaultEpoch, nil, func(w *normalisingWriter) error {
		return writeTree(w, outside, treeOptions{Prefix: "/"})
	})
	if err != nil {
		t.Fatal(err)
	}
	badEntry, _ := cacheEntry("deps-bad", bad, nil, "", platform)
	if err := remote.Write(CacheTag(repo, "deps-bad"), badEntry); err != nil {
		t.Fatal(err)
	}
	refused := &tarCopy{}
	treeOpts.Tap = func() TarTap { return refused }
	if _, _, ok := fromRegistryCache(ctx, "deps-bad", "dependencies", below("/opt/venv"), filepath.Join(treeOpts.CacheDir, "layers"), true, treeOpts); ok {
		t.Errorf("a layer outside the venv was taken")
	}
	bd, _ := bad.Digest()
	if _, err := os.Stat(filepath.Join(treeOpts.CacheDir, treesDir, bd.Hex)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused layer left its tree (%v)", err)
	}
	if refused.kept != nil || !refused.dropped {
		t.Errorf("the tap of a refused layer was kept (%v) or not dropped", refused.kept)
	}
	if left, _ := filepath.Glob(filepath.Join(treeOpts.CacheDir, treesDir, ".extract-*")); len(left) > 0 {
		t.Errorf("temporary trees left: %v", left)
	}

	if _, _, ok := fromRegistryCache(ctx, "deps-b", "dependencies", below("/opt/venv"), t.TempDir(), false, opts); ok {
		t.Errorf("a key with no entry hit")
	}
	// An entry under one key that says it is another's is not taken.
	wrong, _ := cacheEntry("deps-other", l, nil, "", platform)
	if err := remote.Write(CacheTag(repo, "deps-c"), wrong); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := fromRegistryCache(ctx, "deps-c", "dependencies", below("/opt/venv"), t.TempDir(), false, opts); ok {
		t.Errorf("an entry labelled for another key was taken")
	}
}

// TestCheckVenvTar: a registry cache entry's layer may hold the venv and nothing else.
func TestCheckVenvTar(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		ok      bool
	}{
		{"the venv", []tar.Header{{Name: "opt/", Typeflag: tar.TypeDir}, {Name: "opt/venv/", Typeflag: tar.TypeDir},
			{Name: "opt/venv/bin/python", Typeflag: tar.TypeSymlink, Linkname: "/usr/local/bin/python3"}, {Name: "opt/venv/pyvenv.cfg", Typeflag: tar.TypeReg}}, true},
		{"a file outside", []tar.Header{{Name: "etc/passwd", Typeflag: tar.TypeReg}}, false},
		{"a climb out", []tar.Header{{Name: "opt/venv/../../etc/passwd", Typeflag: tar.TypeReg}}, false},
		{"a sibling of the venv", []tar.Header{{Name: "opt/venvx/a", Typeflag: tar.TypeReg}}, false},
		{"a hard link", []tar.Header{{Name: "opt/venv/x", Typeflag: tar.TypeLink, Linkname: "etc/shadow"}}, false},
		{"a device", []tar.Header{{Name: "opt/venv/null", Typeflag: tar.TypeChar}}, false},
		{"a set-uid file", []tar.Header{{Name: "opt/venv/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}}, false},
		{"a link above the venv", []tar.Header{{Name: "opt", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}, false},
		{"a file as the venv", []tar.Header{{Name: "opt/venv", Typeflag: tar.TypeReg}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tc.entries {
				if h.Mode == 0 {
					h.Mode = 0o644
				}
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			if err := checkLayerTar(&buf, "/opt/venv"); (err == nil) != tc.ok {
				t.Errorf("checkLayerTar = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
