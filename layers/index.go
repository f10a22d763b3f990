package layers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// The cache's layer index: beside each layer file sha256-HEX.tar.gz that pyship wrote or
// checked, sha256-HEX.json holds its diff ID and the file's identity when it was
// last known to hash to its name (device, inode, size, modification and change times). A
// layer whose file still has that identity is used without reading a byte of it: a cache
// hit costs a stat. A file written since (a damaged or replaced one) has another change
// time, so it is hashed again before use. Bytes that are read anyway (a push, an
// extraction) are checked against the digest as they stream.

// indexEntry is what the index knows of one layer file.
type indexEntry struct {
	DiffID v1.Hash `json:"diff_id"`
	File   fileID  `json:"file"`
}

// fileID identifies a file's current contents as far as the kernel tells: a write, a
// truncation or a replacement changes it.
type fileID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

// String is the identity as one line.
func (id fileID) String() string {
	return fmt.Sprintf("dev %d ino %d size %d mtime %d ctime %d\n", id.Dev, id.Ino, id.Size, id.Mtime, id.Ctime)
}

// identify returns the identity of the regular file at p.
func identify(p string) (fileID, error) {
	info, err := os.Lstat(p)
	if err != nil {
		return fileID{}, err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || !info.Mode().IsRegular() {
		return fileID{}, fmt.Errorf("%s is not a regular file", p)
	}
	return fileID{
		Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}, nil
}

// indexName is the index file of the layer file with digest d.
func indexName(d v1.Hash) string { return d.Algorithm + "-" + d.Hex + ".json" }

// writeIndex records that the layer file in dir with digest d has diffID and, as it is
// now, hashes to d.
func writeIndex(dir string, d, diffID v1.Hash) (*indexEntry, error) {
	id, err := identify(filepath.Join(dir, layerFileName(d)))
	if err != nil {
		return nil, err
	}
	e := &indexEntry{DiffID: diffID, File: id}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, indexName(d)), data); err != nil {
		return nil, err
	}
	return e, nil
}

// readIndex returns what the index knows of the layer file in dir with digest d, when
// the file is as it was when it last hashed to d; nil otherwise.
func readIndex(dir string, d v1.Hash) *indexEntry {
	data, err := readSmall(filepath.Join(dir, indexName(d)), 4096)
	if err != nil {
		return nil
	}
	var e indexEntry
	if json.Unmarshal(data, &e) != nil || e.DiffID.Algorithm != "sha256" {
		return nil
	}
	id, err := identify(filepath.Join(dir, layerFileName(d)))
	if err != nil || id != e.File {
		return nil
	}
	return &e
}

// indexedLayer returns the layer file in dir with digest d as a layer whose digests and
// size come from the index: nothing is read until its bytes are.
func indexedLayer(dir string, d v1.Hash, e *indexEntry) v1.Layer {
	return &fileLayer{path: filepath.Join(dir, layerFileName(d)), digest: d, diffID: e.DiffID, size: e.File.Size}
}

// fileLayer is a gzip-compressed layer file with known digests.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed implements v1.Layer: the file's bytes, checked against the digest as they
// are read; a mismatch is an error at the end of the stream.
func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	return &verifying{r: f, c: f, h: sha256.New(), want: l.digest, what: l.path}, nil
}

// Uncompressed implements v1.Layer.
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &verifying{r: zr, c: rc, h: sha256.New(), want: l.diffID, what: l.path + " (uncompressed)"}, nil
}

// verifying hashes what is read through it, and at the end fails unless it hashes to
// want; the failure is returned from then on. A reader of a tar stops at its end blocks:
// what reads one through this must read on to EOF for the check to happen.
type verifying struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	want v1.Hash
	what string
	err  error
}

func (v *verifying) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			err = fmt.Errorf("%s hashes to sha256:%s, not %s: the cached layer is damaged; delete it (or the cache) and build again", v.what, got, v.want)
		}
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifying) Close() error { return v.c.Close() }

// diffIDWriter hashes the uncompressed tar as a layer is written: its diff ID.
type diffIDWriter struct {
	w io.Writer
	h hash.Hash
}

func (d *diffIDWriter) Write(p []byte) (int, error) {
	d.h.Write(p)
	return d.w.Write(p)
}

func (d *diffIDWriter) sum() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(d.h.Sum(nil))}
}
