package attest

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Inventory is what an image holds that a bill of materials lists.
type Inventory struct {
	OS     OSRelease
	Debian []DebPackage
	Python []PyDist
}

// OSRelease is the image's /etc/os-release.
type OSRelease struct {
	ID, VersionID, PrettyName string
}

// DebPackage is a Debian package dpkg lists as installed.
type DebPackage struct {
	Name, Version, Arch string
	// Source is the source package, when it is named otherwise.
	Source string
}

// PyDist is an installed Python distribution (a .dist-info or .egg-info directory).
type PyDist struct {
	Name, Version string
	// License is the licence its metadata declares: License-Expression, else License,
	// else the licence classifiers, joined by " OR ".
	License string
	// Dir is the directory it is installed into (site-packages), in the image.
	Dir string
	// Record is the sha256 and sha1 of its RECORD file, which lists the sha256 of every
	// file it installed; empty for an egg-info, which has none.
	RecordSHA256, RecordSHA1 string
}

// How big a file the inventory reads may be, and all it keeps of one layer.
const (
	maxFile   = 16 << 20
	maxRecord = 64 << 20
)

// wanted reports whether a tar entry's (clean, relative) name is one the inventory reads.
func wanted(name string) bool {
	switch name {
	case "etc/os-release", "usr/lib/os-release", "var/lib/dpkg/status":
		return true
	}
	if dir, base := path.Split(name); strings.HasSuffix(dir, ".dist-info/") {
		return base == "METADATA" || base == "RECORD"
	} else if strings.HasSuffix(dir, ".egg-info/") {
		return base == "PKG-INFO"
	}
	return strings.HasPrefix(name, "var/lib/dpkg/status.d/") || strings.HasSuffix(name, ".egg-info")
}

// mayHoldWanted reports whether name, as a directory, may hold files the inventory reads.
func mayHoldWanted(name string) bool {
	switch base := path.Base(name); {
	case strings.HasSuffix(base, ".dist-info"), strings.HasSuffix(base, ".egg-info"):
		return true
	case base == "site-packages", base == "dist-packages", base == "status.d":
		return true
	}
	switch name {
	case "etc", "usr", "usr/lib", "usr/local", "usr/local/lib", "var", "var/lib", "var/lib/dpkg", "opt", "opt/venv", "opt/venv/lib":
		return true
	}
	return strings.HasPrefix(name, "usr/lib/python") || strings.HasPrefix(name, "usr/local/lib/python") || strings.HasPrefix(name, "opt/venv/lib/python")
}

// layerRecord is what one layer holds of the wanted files: their content (a RECORD's as
// its digests only), the paths its whiteouts remove from the layers below, and the
// directories it makes opaque.
type layerRecord struct {
	Files   map[string]string `json:"files,omitempty"`
	Removed []string          `json:"removed,omitempty"`
	Opaque  []string          `json:"opaque,omitempty"`
}

// scanLayer reads a layer's tar for the wanted files.
func scanLayer(r io.Reader) (*layerRecord, error) {
	rec := &layerRecord{Files: map[string]string{}}
	kept := 0
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return rec, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == ".wh..wh..opq":
			rec.Opaque = append(rec.Opaque, dir)
		case strings.HasPrefix(base, ".wh."):
			rec.Removed = append(rec.Removed, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
		case h.Typeflag == tar.TypeSymlink && (name == "etc/os-release"):
			// Debian's /etc/os-release leads to /usr/lib/os-release, which is read itself.
			rec.Files[name] = "link:" + h.Linkname
		case h.Typeflag == tar.TypeReg && wanted(name) && h.Size <= maxFile:
			data, err := io.ReadAll(io.LimitReader(tr, maxFile))
			if err != nil {
				return nil, err
			}
			if kept += len(data); kept > maxRecord {
				return nil, fmt.Errorf("the layer holds more than %d MiB of package metadata", maxRecord>>20)
			}
			switch {
			case base == "RECORD":
				s256, s1 := sha256.Sum256(data), sha1.Sum(data)
				rec.Files[name] = "sha256:" + hex.EncodeToString(s256[:]) + " sha1:" + hex.EncodeToString(s1[:])
			case base == "METADATA" || base == "PKG-INFO" || strings.HasSuffix(base, ".egg-info"):
				// The headers; the long description after them is not read.
				rec.Files[name] = headers(string(data))
			default:
				rec.Files[name] = string(data)
			}
		default:
			// Something else (a link, a device; a directory merges) in place of a wanted
			// file, or of a directory that may hold one, hides what is below it.
			if h.Typeflag != tar.TypeDir && (wanted(name) || mayHoldWanted(name)) {
				rec.Removed = append(rec.Removed, name)
			}
		}
	}
}

// Scan reads img's layers for its inventory. With cacheDir, each layer's record is kept
// there by its digest and read back instead of the layer.
func Scan(img v1.Image, cacheDir string) (*Inventory, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, l := range ls {
		rec, err := recordOf(context.Background(), l, cacheDir)
		if err != nil {
			return nil, err
		}
		drop := func(p string) {
			for name := range files {
				if name == p || strings.HasPrefix(name, p+"/") || p == "" {
					delete(files, name)
				}
			}
		}
		for _, d := range rec.Opaque {
			drop(d)
		}
		for _, p := range rec.Removed {
			drop(p)
		}
		for name, content := range rec.Files {
			files[name] = content
		}
	}
	return inventoryOf(files)
}

// PrepareLayers reads, into cacheDir, the records of img's layers that it lacks. A build
// calls it while it does other work, so that Scan later reads no layer. It stops when ctx
// is done.
func PrepareLayers(ctx context.Context, img v1.Image, cacheDir string) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := recordOf(ctx, l, cacheDir); err != nil {
			return err
		}
	}
	return nil
}

// recordsDir is where layer records are kept in a cache directory.
const recordsDir = "inventory.2"

// recordFile is where the record of the layer with digest d is kept in cacheDir.
func recordFile(cacheDir string, d v1.Hash) string {
	return filepath.Join(cacheDir, recordsDir, d.Algorithm+"-"+d.Hex+".json")
}

// A TarRecorder reads the tar of a layer as it is written to it, in a goroutine of its
// own, for the record Scan would read the layer for: a build hands it the tar it streams
// or writes anyway, so that the bill of materials reads no layer again. Its writes never
// fail; a tar it cannot read is not recorded, and Scan reads that layer itself.
type TarRecorder struct {
	pw       *io.PipeWriter
	done     chan recorded
	cacheDir string
	ended    bool
}

type recorded struct {
	rec *layerRecord
	err error
}

var errRecordDropped = errors.New("the layer was not kept")

// NewTarRecorder returns a recorder that keeps its record in cacheDir.
func NewTarRecorder(cacheDir string) *TarRecorder {
	pr, pw := io.Pipe()
	r := &TarRecorder{pw: pw, done: make(chan recorded, 1), cacheDir: cacheDir}
	go func() {
		rec, err := scanLayer(bufio.NewReaderSize(pr, 1<<20))
		// To the end whatever happened: the writer goes on.
		if _, cerr := io.Copy(io.Discard, pr); err == nil && !errors.Is(cerr, errRecordDropped) {
			err = cerr
		}
		r.done <- recorded{rec, err}
	}()
	return r
}

func (r *TarRecorder) Write(p []byte) (int, error) {
	// The reader drains the pipe until it is closed: a write ends once read.
	if _, err := r.pw.Write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Keep ends the tar, which is the whole layer with digest d and checked, and keeps its
// record.
func (r *TarRecorder) Keep(d v1.Hash) error {
	if r.ended {
		return errors.New("the tar was ended already")
	}
	r.ended = true
	r.pw.Close()
	res := <-r.done
	if res.err != nil {
		return fmt.Errorf("reading layer %s for its record: %w", d, res.err)
	}
	return writeAtomic(recordFile(r.cacheDir, d), res.rec)
}

// Drop ends the tar without keeping anything: the layer was not made, or did not check
// out. It does nothing after Keep.
func (r *TarRecorder) Drop() {
	if r.ended {
		return
	}
	r.ended = true
	r.pw.CloseWithError(errRecordDropped)
	<-r.done
}

// recordOf returns the record of a layer, from the cache when it is there; reading the
// layer stops when ctx is done.
func recordOf(ctx context.Context, l v1.Layer, cacheDir string) (*layerRecord, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	var file string
	if cacheDir != "" {
		file = recordFile(cacheDir, d)
		if data, err := os.ReadFile(file); err == nil {
			var rec layerRecord
			if err := json.Unmarshal(data, &rec); err == nil {
				return &rec, nil
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	rc, err := uncompressed(l)
	if err != nil {
		return nil, err
	}
	rec, err := scanLayer(ctxReader{ctx, rc})
	if err == nil {
		// To the end: a layer that checks its bytes (pyship's own) checks there.
		_, err = io.Copy(io.Discard, rc)
	}
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", d, err)
	}
	if file != "" {
		if err := writeAtomic(file, rec); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// uncompressed reads a layer's tar. A gzip or zstd layer is decompressed here, with
// klauspost/compress, which reads gzip about twice as fast as the standard library that
// the layer's own Uncompressed uses.
func uncompressed(l v1.Layer) (io.ReadCloser, error) {
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	var open func(io.Reader) (io.ReadCloser, error)
	switch mt {
	case types.OCILayer, types.DockerLayer:
		open = func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }
	case types.OCILayerZStd:
		open = func(r io.Reader) (io.ReadCloser, error) {
			zr, err := zstd.NewReader(r)
			if err != nil {
				return nil, err
			}
			return zr.IOReadCloser(), nil
		}
	default:
		return l.Uncompressed()
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := open(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &both{ReadCloser: zr, under: rc}, nil
}

// ctxReader fails its reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// both closes a decompressing reader and the reader under it.
type both struct {
	io.ReadCloser
	under io.Closer
}

func (b *both) Close() error {
	err := b.ReadCloser.Close()
	if uerr := b.under.Close(); err == nil {
		err = uerr
	}
	return err
}

// writeAtomic writes v as JSON to file, whole or not at all.
func writeAtomic(file string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(file, data)
}

// writeFileAtomic writes data to file, whole or not at all.
func writeFileAtomic(file string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
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
	return os.Rename(tmp.Name(), file)
}

// inventoryOf reads the inventory out of the image's wanted files.
func inventoryOf(files map[string]string) (*Inventory, error) {
	inv := &Inventory{}
	osRelease := files["etc/os-release"]
	if strings.HasPrefix(osRelease, "link:") || osRelease == "" {
		osRelease = files["usr/lib/os-release"]
	}
	fields := keyValues(osRelease)
	inv.OS = OSRelease{ID: fields["ID"], VersionID: fields["VERSION_ID"], PrettyName: fields["PRETTY_NAME"]}

	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		content := files[name]
		switch dir, base := path.Split(name); {
		case name == "var/lib/dpkg/status" || strings.HasPrefix(name, "var/lib/dpkg/status.d/"):
			inv.Debian = append(inv.Debian, dpkgStatus(content)...)
		case base == "METADATA" || base == "PKG-INFO" || (strings.HasSuffix(base, ".egg-info") && dir != ""):
			info := strings.TrimSuffix(dir, "/")
			if base != "METADATA" && base != "PKG-INFO" {
				info = name
			}
			d := pyDist(content)
			if d.Name == "" {
				continue
			}
			d.Dir = "/" + path.Dir(info)
			if rec, ok := files[path.Join(info, "RECORD")]; ok {
				for _, f := range strings.Fields(rec) {
					if v, ok := strings.CutPrefix(f, "sha256:"); ok {
						d.RecordSHA256 = v
					} else if v, ok := strings.CutPrefix(f, "sha1:"); ok {
						d.RecordSHA1 = v
					}
				}
			}
			inv.Python = append(inv.Python, d)
		}
	}
	slices.SortFunc(inv.Debian, func(a, b DebPackage) int {
		return strings.Compare(a.Name+"\x00"+a.Arch+"\x00"+a.Version, b.Name+"\x00"+b.Arch+"\x00"+b.Version)
	})
	inv.Debian = slices.Compact(inv.Debian)
	slices.SortFunc(inv.Python, func(a, b PyDist) int {
		return strings.Compare(a.Dir+"\x00"+strings.ToLower(a.Name)+"\x00"+a.Version, b.Dir+"\x00"+strings.ToLower(b.Name)+"\x00"+b.Version)
	})
	return inv, nil
}

// headers is the header part of a distribution's metadata: up to its first empty line.
func headers(s string) string {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '\n')
		if j < 0 {
			return s
		}
		if strings.TrimSpace(s[i:i+j]) == "" {
			return s[:i]
		}
		i += j + 1
	}
}

// keyValues reads an os-release file.
func keyValues(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		out[k] = strings.Trim(v, `"'`)
	}
	return out
}

// paragraphs splits a file of RFC 822 style paragraphs (dpkg's status, a distribution's
// metadata) into their fields; a field seen twice keeps every value, in order.
func paragraphs(s string, one bool) []map[string][]string {
	var out []map[string][]string
	cur := map[string][]string{}
	last := ""
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), maxFile)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out = append(out, cur)
				cur, last = map[string][]string{}, ""
			}
			if one && len(out) == 1 {
				return out
			}
		case (line[0] == ' ' || line[0] == '\t') && last != "":
			vs := cur[last]
			vs[len(vs)-1] += "\n" + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = k
			cur[k] = append(cur[k], strings.TrimSpace(v))
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func first(p map[string][]string, k string) string {
	if vs := p[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// dpkgStatus reads the installed packages out of a dpkg status file.
func dpkgStatus(s string) []DebPackage {
	var out []DebPackage
	for _, p := range paragraphs(s, false) {
		if status := first(p, "Status"); status != "" && !strings.HasSuffix(status, " installed") {
			continue
		}
		d := DebPackage{Name: first(p, "Package"), Version: first(p, "Version"), Arch: first(p, "Architecture")}
		if src, _, _ := strings.Cut(first(p, "Source"), " "); src != d.Name {
			d.Source = src
		}
		if d.Name != "" && d.Version != "" {
			out = append(out, d)
		}
	}
	return out
}

// pyDist reads a distribution's name, version and licence out of its metadata.
func pyDist(s string) PyDist {
	ps := paragraphs(s, true)
	if len(ps) == 0 {
		return PyDist{}
	}
	p := ps[0]
	d := PyDist{Name: first(p, "Name"), Version: first(p, "Version")}
	switch {
	case first(p, "License-Expression") != "":
		d.License = first(p, "License-Expression")
	case first(p, "License") != "" && first(p, "License") != "UNKNOWN":
		d.License = first(p, "License")
	default:
		// One licence classifier is the licence; several say nothing of how they combine.
		var ls []string
		for _, c := range p["Classifier"] {
			if l, ok := strings.CutPrefix(c, "License :: "); ok {
				ls = append(ls, l)
			}
		}
		if len(ls) == 1 {
			d.License = ls[0]
		}
	}
	return d
}
