package attest

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type entry struct {
	name, content string
	typ           byte
}

func layer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.content))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.content); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const status = `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.41-12
Description: GNU C Library
 continued description

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: python3.13-minimal
Status: install ok installed
Architecture: amd64
Source: python3.13 (3.13.5-2)
Version: 3.13.5-2
`

func metadata(name, version string, extra ...string) string {
	return "Metadata-Version: 2.4\nName: " + name + "\nVersion: " + version + "\n" + strings.Join(extra, "\n") + "\n\nlong description\nLicense: not a header\n"
}

// testImage is a base with dpkg's status and a system distribution, a venv layer, and an
// application layer that removes a distribution and replaces another's metadata.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	base := layer(t,
		entry{name: "etc/", typ: tar.TypeDir},
		entry{name: "etc/os-release", typ: tar.TypeSymlink},
		entry{name: "usr/lib/os-release", content: "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\n"},
		entry{name: "var/lib/dpkg/status", content: status},
		entry{name: "usr/lib/python3/dist-packages/six-1.16.0.egg-info", content: metadata("six", "1.16.0", "License: MIT")},
	)
	venv := layer(t,
		entry{name: "opt/venv/lib/python3.13/site-packages/flask-3.1.3.dist-info/", typ: tar.TypeDir},
		entry{name: "opt/venv/lib/python3.13/site-packages/flask-3.1.3.dist-info/METADATA", content: metadata("Flask", "3.1.3", "License-Expression: BSD-3-Clause")},
		entry{name: "opt/venv/lib/python3.13/site-packages/flask-3.1.3.dist-info/RECORD", content: "flask/__init__.py,sha256=abc,10\n"},
		entry{name: "opt/venv/lib/python3.13/site-packages/Jinja2-3.1.6.dist-info/METADATA", content: metadata("Jinja2", "3.1.6", "Classifier: License :: OSI Approved :: BSD License")},
		entry{name: "opt/venv/lib/python3.13/site-packages/zope.interface-7.0.dist-info/METADATA", content: metadata("zope.interface", "7.0", "License: ZPL 2.1")},
		entry{name: "opt/venv/lib/python3.13/site-packages/gone-1.0.dist-info/METADATA", content: metadata("gone", "1.0")},
	)
	app := layer(t,
		entry{name: "opt/venv/lib/python3.13/site-packages/.wh.gone-1.0.dist-info"},
		entry{name: "opt/venv/lib/python3.13/site-packages/zope.interface-7.0.dist-info/METADATA", content: metadata("zope.interface", "7.0", "Classifier: License :: OSI Approved :: Zope Public License")},
	)
	img, err := mutate.AppendLayers(empty.Image, base, venv, app)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	img := testImage(t)
	for _, cache := range []string{"", dir, dir} { // without a cache, filling it, reading it
		inv, err := Scan(img, cache)
		if err != nil {
			t.Fatal(err)
		}
		if inv.OS != (OSRelease{ID: "debian", VersionID: "13", PrettyName: "Debian GNU/Linux 13 (trixie)"}) {
			t.Errorf("os-release (through /etc/os-release's link) = %+v", inv.OS)
		}
		want := []DebPackage{{Name: "libc6", Version: "2.41-12", Arch: "amd64", Source: "glibc"}, {Name: "python3.13-minimal", Version: "3.13.5-2", Arch: "amd64", Source: "python3.13"}}
		if len(inv.Debian) != len(want) || inv.Debian[0] != want[0] || inv.Debian[1] != want[1] {
			t.Errorf("Debian packages = %+v, want %+v (a package that is not installed left out)", inv.Debian, want)
		}
		var got []string
		for _, d := range inv.Python {
			got = append(got, d.Dir+" "+d.Name+" "+d.Version+" "+d.License)
		}
		wantPy := []string{
			"/opt/venv/lib/python3.13/site-packages Flask 3.1.3 BSD-3-Clause",
			"/opt/venv/lib/python3.13/site-packages Jinja2 3.1.6 OSI Approved :: BSD License",
			"/opt/venv/lib/python3.13/site-packages zope.interface 7.0 OSI Approved :: Zope Public License",
			"/usr/lib/python3/dist-packages six 1.16.0 MIT",
		}
		if strings.Join(got, "\n") != strings.Join(wantPy, "\n") {
			t.Errorf("Python distributions:\n%s\nwant (the whited-out one gone, the upper metadata read):\n%s", strings.Join(got, "\n"), strings.Join(wantPy, "\n"))
		}
		if inv.Python[0].RecordSHA256 == "" || len(inv.Python[0].RecordSHA1) != 40 {
			t.Errorf("Flask's RECORD digests = %q, %q", inv.Python[0].RecordSHA256, inv.Python[0].RecordSHA1)
		}
	}
}

func TestSPDXLicense(t *testing.T) {
	for in, want := range map[string]string{
		"MIT":                                  "MIT",
		"mit":                                  "MIT",
		"MIT License":                          "MIT",
		"Apache 2.0":                           "Apache-2.0",
		"apache-2.0 OR mit":                    "Apache-2.0 OR MIT",
		"(MIT OR Apache-2.0) AND BSD-3-Clause": "(MIT OR Apache-2.0) AND BSD-3-Clause",
		"GPL-2.0-or-later WITH Classpath-exception-2.0":                     "GPL-2.0-or-later WITH Classpath-exception-2.0",
		"OSI Approved :: MIT License OR OSI Approved :: ISC License (ISCL)": "MIT OR ISC",
		"OSI Approved :: BSD License":                                       "",
		"BSD":                                                               "",
		"Copyright (c) 2020 me\nPermission is hereby granted":               "",
		"MIT OR (Apache-2.0":                                                "",
		"MIT AND":                                                           "",
		"OR MIT":                                                            "",
		"MIT Apache-2.0":                                                    "",
		"MIT OR OR Apache-2.0":                                              "",
		"()":                                                                "",
		"MIT WITH":                                                          "",
		"(MIT) WITH LLVM-exception":                                         "",
		"Apache-2.0 WITH LLVM-exception OR MIT":                             "Apache-2.0 WITH LLVM-exception OR MIT",
		"OSI Approved :: Apache Software License":                           "",
		"MIT WITH MIT":                                                      "",
		"":                                                                  "",
	} {
		if got := spdxLicense(in); got != want {
			t.Errorf("spdxLicense(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSBOMDocuments: both formats name every package with its purl, are the same bytes for
// the same image, and are attached as an artifact whose subject is the image.
func TestSBOMDocuments(t *testing.T) {
	img := testImage(t)
	inv, err := Scan(img, "")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	s := Subject{Repository: "127.0.0.1:5000/team/app", Digest: desc.Digest, Created: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Tool: "1.2.3"}
	for _, format := range []string{FormatSPDX, FormatCycloneDX} {
		a, err := SBOM(format, inv, s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := SBOM(format, inv, s)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two documents of one image differ", format)
		}
		doc := string(a)
		for _, want := range []string{
			"pkg:pypi/flask@3.1.3", "pkg:pypi/zope-interface@7.0", "pkg:pypi/six@1.16.0",
			"pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13",
			"pkg:oci/app@sha256%3A" + desc.Digest.Hex + "?repository_url=127.0.0.1%3A5000%2Fteam%2Fapp",
			"2024-05-06T07:08:09Z", "BSD-3-Clause", "OSI Approved :: Zope Public License",
		} {
			if !strings.Contains(doc, want) {
				t.Errorf("%s: the document lacks %q", format, want)
			}
		}
		if strings.Contains(doc, "gone") {
			t.Errorf("%s: the document lists the distribution a later layer removed", format)
		}
		var v map[string]any
		if err := json.Unmarshal(a, &v); err != nil {
			t.Fatal(err)
		}

		mt, _ := MediaType(format)
		art, err := Artifact(*desc, mt, a, s.Created, nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := art.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject == nil || m.Subject.Digest != desc.Digest || m.ArtifactType != string(mt) || m.Config.MediaType != types.OCIEmptyJSON {
			t.Errorf("%s: the artifact manifest is %+v", format, m)
		}
		got, err := ReadArtifact(art, mt)
		if err != nil || !bytes.Equal(got, a) {
			t.Errorf("%s: reading the artifact back gave %d bytes (%v)", format, len(got), err)
		}
		if _, err := ReadArtifact(art, "application/other"); err == nil {
			t.Errorf("%s: the artifact was read as another type", format)
		}
	}
}

// TestSBOMOf: a document is kept by what it is a function of, and read back without the
// layers' records; another pyship version makes it anew.
func TestSBOMOf(t *testing.T) {
	img := testImage(t)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := Subject{Digest: d, Created: time.Unix(0, 0), Tool: "1"}
	first, err := SBOMOf(FormatSPDX, img, s, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Records gone and the image's layers unreadable: only the kept document can answer.
	if err := os.RemoveAll(filepath.Join(dir, recordsDir)); err != nil {
		t.Fatal(err)
	}
	broken, err := mutate.AppendLayers(empty.Image, failingLayer{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := SBOMOf(FormatSPDX, broken, s, dir)
	if err != nil || !bytes.Equal(again, first) {
		t.Errorf("the kept document was not read back: %v", err)
	}
	s.Tool = "2"
	if _, err := SBOMOf(FormatSPDX, broken, s, dir); err == nil {
		t.Errorf("another pyship version read the document the first one kept")
	}
}

// failingLayer is a layer that cannot be read.
type failingLayer struct{ v1.Layer }

func (failingLayer) Digest() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("9", 64)}, nil
}
func (failingLayer) DiffID() (v1.Hash, error)            { return failingLayer{}.Digest() }
func (failingLayer) Size() (int64, error)                { return 1, nil }
func (failingLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (failingLayer) Compressed() (io.ReadCloser, error)  { return nil, errors.New("unreadable") }
func (failingLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("unreadable")
}

// TestScanReplacedDirectory: a link or file in place of a directory hides what the layers
// below held in it.
func TestScanReplacedDirectory(t *testing.T) {
	lower := layer(t,
		entry{name: "opt/venv/lib/python3.13/site-packages/a-1.dist-info/METADATA", content: metadata("a", "1")},
		entry{name: "opt/venv/lib/python3.13/site-packages/b-1.dist-info/METADATA", content: metadata("b", "1")},
		entry{name: "usr/lib/python3/dist-packages/c-1.dist-info/METADATA", content: metadata("c", "1")},
	)
	upper := layer(t,
		entry{name: "opt/venv/lib/python3.13/site-packages/a-1.dist-info", typ: tar.TypeSymlink},
		entry{name: "usr/lib/python3/dist-packages", content: "a file now"},
	)
	img, err := mutate.AppendLayers(empty.Image, lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Scan(img, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Python) != 1 || inv.Python[0].Name != "b" {
		t.Errorf("Python distributions %+v, want only b", inv.Python)
	}
}

// TestTarRecorder: a layer's tar handed to a recorder as it is written gives the record
// Scan makes reading the layer; a dropped tar, or one that is no tar, leaves none and
// fails no write.
func TestTarRecorder(t *testing.T) {
	img := testImage(t)
	scanned, recorded := t.TempDir(), t.TempDir()
	if _, err := Scan(img, scanned); err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		r := NewTarRecorder(recorded)
		// In small writes, as a tar writer makes them.
		if _, err := io.CopyBuffer(r, rc, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if err := r.Keep(d); err != nil {
			t.Fatal(err)
		}
		r.Drop()
		want, err := os.ReadFile(recordFile(scanned, d))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(recordFile(recorded, d)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("layer %s: recorded %s (%v), scanned %s", d, got, err, want)
		}
	}

	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("7", 64)}
	dropped := NewTarRecorder(recorded)
	if _, err := io.WriteString(dropped, "not yet the whole tar"); err != nil {
		t.Fatal(err)
	}
	dropped.Drop()
	noTar := NewTarRecorder(recorded)
	if _, err := noTar.Write(bytes.Repeat([]byte("not a tar header "), 10000)); err != nil {
		t.Errorf("a write after the tar turned out unreadable failed: %v", err)
	}
	if err := noTar.Keep(d); err == nil {
		t.Errorf("what is no tar was recorded")
	}
	if _, err := os.Stat(recordFile(recorded, d)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a record was kept for what is no tar (%v)", err)
	}
	if kept, _ := os.ReadDir(filepath.Join(recorded, recordsDir)); len(kept) != len(ls) {
		t.Errorf("%d records kept, want one per layer (%d): the dropped tar kept one", len(kept), len(ls))
	}
}
