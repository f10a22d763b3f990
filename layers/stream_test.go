package layers

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/pyship/pyship/fixtures"
)

// TestStreamLayer: one read of a layer stores its blob and extracts its tree; bytes that
// do not hash to the digest leave neither.
func TestStreamLayer(t *testing.T) {
	fixtures.Need(t, os.Geteuid() == 0, "extracting with an image's owners needs root")
	l := tarLayer(t, []tar.Header{
		{Name: "etc/os-release", Typeflag: tar.TypeReg},
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/python3", Typeflag: tar.TypeReg, Mode: 0o755},
	}, map[string]string{"usr/bin/python3": "#!python\n", "etc/os-release": "ID=debian\n"})
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	blob, tree, verified := filepath.Join(dir, "blobs", d.Hex), filepath.Join(dir, "trees", d.Hex), filepath.Join(dir, "verified")
	tap := &tarCopy{}
	if err := streamLayer(l, d, blob, unpackTo(tree), tap, verified, nil); err != nil {
		t.Fatal(err)
	}
	tap.check(t, l, d)
	if data, err := os.ReadFile(filepath.Join(tree, "usr", "bin", "python3")); err != nil || string(data) != "#!python\n" {
		t.Errorf("the tree holds %q (%v)", data, err)
	}
	ok, err := blobMatches(blob, v1.Descriptor{Digest: d, Size: -1})
	if err != nil || !ok {
		t.Errorf("the blob does not hash to %s: %v", d, err)
	}
	if _, err := os.Stat(filepath.Join(verified, "sha256-"+d.Hex)); err != nil {
		t.Errorf("the streamed blob is not recorded as checked: %v", err)
	}

	// A layer whose tar is not what its diff ID says leaves no tree.
	lying := lyingDiffID{l}
	tree3 := filepath.Join(dir, "trees", "lying")
	lyingTap := &tarCopy{}
	if err := streamLayer(lying, d, filepath.Join(dir, "blobs3", d.Hex), unpackTo(tree3), lyingTap, verified, nil); err == nil {
		t.Errorf("a layer whose tar does not hash to its diff ID was extracted")
	}
	if lyingTap.kept != nil || !lyingTap.dropped {
		t.Errorf("the tap of a layer that did not check out was kept (%v) or not dropped", lyingTap.kept)
	}
	if _, err := os.Stat(tree3); err == nil {
		t.Errorf("a tree of unchecked bytes is in place")
	}

	wrong := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
	blob2, tree2 := filepath.Join(dir, "blobs", wrong.Hex), filepath.Join(dir, "trees", wrong.Hex)
	if err := streamLayer(l, wrong, blob2, unpackTo(tree2), nil, verified, nil); err == nil {
		t.Errorf("bytes under another digest were stored")
	}
	for _, p := range []string{blob2, tree2} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after a failed stream", p)
		}
	}
}

// tarCopy is a TarTap that keeps what it is handed.
type tarCopy struct {
	bytes.Buffer
	kept    *v1.Hash
	dropped bool
}

func (c *tarCopy) Keep(d v1.Hash) error {
	if c.kept == nil && !c.dropped {
		c.kept = &d
	}
	return nil
}

func (c *tarCopy) Drop() {
	if c.kept == nil {
		c.dropped = true
	}
}

// check fails unless the tap was handed l's whole tar and kept as d.
func (c *tarCopy) check(t *testing.T, l v1.Layer, d v1.Hash) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Bytes(), want) {
		t.Errorf("the tap was handed %d bytes, not the layer's tar of %d", c.Len(), len(want))
	}
	if c.kept == nil || *c.kept != d {
		t.Errorf("the tap was kept as %v, want %s", c.kept, d)
	}
}

// lyingDiffID is a layer that gives a diff ID its tar does not have.
type lyingDiffID struct{ v1.Layer }

func (lyingDiffID) DiffID() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("2", 64)}, nil
}

// TestFlatten: the union of layer trees is what overlayfs shows of them.
func TestFlatten(t *testing.T) {
	fixtures.Need(t, os.Geteuid() == 0, "whiteouts are device nodes, which need root")
	lower, upper, dst := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "root")
	writeFiles(t, lower, map[string]string{
		"etc/passwd": "root\n", "etc/gone": "x", "opt/old/a": "a", "usr/lib/x.so": "lib", "keep/file": "k",
	})
	if err := os.Symlink("usr/lib", filepath.Join(lower, "lib")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, upper, map[string]string{"etc/passwd": "root\napp\n", "opt/old/b": "b", "lib/own.so": "own"})
	if err := unix.Mknod(filepath.Join(upper, "etc", "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(upper, "opt", "old"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(upper, "opt"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := flatten([]string{lower, upper}, dst); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"etc/passwd": "root\napp\n", "opt/old/b": "b", "lib/own.so": "own", "usr/lib/x.so": "lib", "keep/file": "k",
	} {
		if data, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(data) != want {
			t.Errorf("%s = %q (%v), want %q", name, data, err, want)
		}
	}
	for _, gone := range []string{"etc/gone", "opt/old/a", "lib/x.so"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("%s is in the union", gone)
		}
	}
	if info, err := os.Stat(filepath.Join(dst, "opt")); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("opt has mode %v (%v), want the upper tree's 0700", info.Mode().Perm(), err)
	}
	a, _ := os.Stat(filepath.Join(upper, "etc", "passwd"))
	b, _ := os.Stat(filepath.Join(dst, "etc", "passwd"))
	if !os.SameFile(a, b) {
		t.Errorf("etc/passwd was copied, not linked")
	}
}

// TestReadAhead: what a readAhead reads is r's bytes in order, then r's error (a checked
// stream's complaint at its end comes after its data), or EOF; closing it early stops
// its goroutine, which reads no more of r.
func TestReadAhead(t *testing.T) {
	data := make([]byte, 3*readAheadChunk+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got, err := io.ReadAll(newReadAhead(bytes.NewReader(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d given", len(got), err, len(data))
	}

	bad := errors.New("the stream hashes to something else")
	got, err = io.ReadAll(newReadAhead(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(bad))))
	if !errors.Is(err, bad) || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes then %v, want the %d given then %v", len(got), err, len(data), bad)
	}

	// A truncated stream (klauspost's gzip says io.ErrUnexpectedEOF) is a failure, not
	// an end: the reader after it would never check what it read.
	got, err = io.ReadAll(newReadAhead(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(io.ErrUnexpectedEOF))))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes then %v, want the %d given then %v", len(got), err, len(data), io.ErrUnexpectedEOF)
	}

	var reads atomic.Int64
	endless := readerFunc(func(p []byte) (int, error) { reads.Add(1); return len(p), nil })
	ra := newReadAhead(endless)
	if _, err := io.ReadFull(ra, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	ra.Close()
	after := reads.Load()
	time.Sleep(20 * time.Millisecond)
	if n := reads.Load(); n != after {
		t.Errorf("%d reads of r after Close", n-after)
	}
	if _, err := ra.Read(make([]byte, 1)); err == nil {
		t.Error("a read after Close succeeded")
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestTakersCheckATreeMadeMeanwhile: when another pyship makes the tree while a layer
// streams, the layer's bytes and tar are checked all the same, and the tap sees the tar.
func TestTakersCheckATreeMadeMeanwhile(t *testing.T) {
	l := tarLayer(t, []tar.Header{
		{Name: "opt/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opt/venv/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opt/venv/pyvenv.cfg", Typeflag: tar.TypeReg},
	}, map[string]string{"opt/venv/pyvenv.cfg": "home = /usr/bin\n"})
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		layer v1.Layer
		take  func(tree string) taker
		ok    bool
	}{
		{"unpackTo", l, unpackTo, true},
		{"unpackTo, a lying diff ID", lyingDiffID{l}, unpackTo, false},
		{"unpackChecking", l, func(tree string) taker { return unpackChecking(below("/opt/venv"), tree) }, true},
		{"unpackChecking, a refusing check", l, func(tree string) taker { return unpackChecking(below("/app"), tree) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tree := filepath.Join(dir, "trees", d.Hex)
			// Made by another pyship after the caller looked.
			if err := os.MkdirAll(tree, 0o755); err != nil {
				t.Fatal(err)
			}
			tap := &tarCopy{}
			err := streamLayer(tc.layer, d, filepath.Join(dir, "blob"), tc.take(tree), tap, "", nil)
			if (err == nil) != tc.ok {
				t.Fatalf("streamLayer = %v, want ok %v", err, tc.ok)
			}
			if tc.ok {
				tap.check(t, l, d)
			} else if tap.kept != nil {
				t.Errorf("the tap of a layer that failed its checks was kept")
			}
		})
	}
}
