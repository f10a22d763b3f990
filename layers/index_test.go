package layers

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/hashicorp/go-hclog"
)

// TestLayerIndex: a layer comes back from the cache with the digests ggcr computes from
// its bytes, known from the index; a file written since is hashed again (and one damaged
// is made again); an indexed layer whose bytes changed fails as they are read.
func TestLayerIndex(t *testing.T) {
	dir := t.TempDir()
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"a.py": "print(1)\n", "pkg/b.py": strings.Repeat("x = 1\n", 5000)})
	written, err := writeLayerFile(dir, "deps-k", DefaultEpoch, nil, func(w *normalisingWriter) error {
		return writeTree(w, src, treeOptions{Prefix: "/opt/venv"})
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := written.Digest()
	file := filepath.Join(dir, layerFileName(d))
	truth, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	same := func(l v1.Layer) {
		t.Helper()
		for _, get := range []func(v1.Layer) (any, error){
			func(l v1.Layer) (any, error) { return l.Digest() },
			func(l v1.Layer) (any, error) { return l.DiffID() },
			func(l v1.Layer) (any, error) { return l.Size() },
		} {
			want, err1 := get(truth)
			got, err2 := get(l)
			if err1 != nil || err2 != nil || got != want {
				t.Errorf("layer says %v (%v), its bytes %v (%v)", got, err2, want, err1)
			}
		}
	}
	same(written)

	cached, err := cachedLayer(dir, "deps-k", hclog.NewNullLogger())
	if err != nil || cached == nil {
		t.Fatalf("cachedLayer = %v, %v", cached, err)
	}
	if _, ok := cached.(*fileLayer); !ok {
		t.Errorf("a cache hit gave a %T, not the indexed layer", cached)
	}
	same(cached)
	rc, err := cached.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Errorf("reading an intact indexed layer: %v", err)
	}
	rc.Close()

	// An old cache without the index: the layer is hashed once and indexed.
	if err := os.Remove(filepath.Join(dir, indexName(d))); err != nil {
		t.Fatal(err)
	}
	if again, err := cachedLayer(dir, "deps-k", hclog.NewNullLogger()); err != nil || again == nil {
		t.Fatalf("cachedLayer without an index = %v, %v", again, err)
	} else {
		same(again)
	}
	if readIndex(dir, d) == nil {
		t.Errorf("the layer was not indexed when it was hashed")
	}

	// The bytes change under an index that still matches: reading fails.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bad := &fileLayer{path: file, digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, diffID: d, size: int64(len(data))}
	rc, err = bad.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("bytes that do not hash to the digest read without an error: %v", err)
	}
	rc.Close()

	// A file written since it was indexed is hashed again, and a damaged one made again.
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := cachedLayer(dir, "deps-k", hclog.NewNullLogger()); l != nil || err != nil {
		t.Errorf("a damaged layer came from the cache: %v, %v", l, err)
	}
	for _, gone := range []string{file, filepath.Join(dir, indexName(d)), filepath.Join(dir, "deps-k"+keySuffix)} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s is still in the cache", gone)
		}
	}
}
