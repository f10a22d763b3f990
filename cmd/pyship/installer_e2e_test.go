//go:build linux && e2e

package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pyship/pyship/fixtures"
)

// TestInstallersAgree builds one repository (Sanic: compiled extensions, entry points)
// with uv and with pip: the venvs hold the same packages, file for file and byte for byte,
// but for the record of which installer wrote them, and neither holds pip. Every other
// layer is the same. uv hard-links what it unpacked into the venv (its cache is on the
// venv's file system), rather than falling back to copies.
func TestInstallersAgree(t *testing.T) {
	fixtures.Testbed(t)
	src := copyFixture(t, "sanic")
	out := t.TempDir()
	env := []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}

	r := pyship(t, env, "build", src, "--oci-layout", out, "-v")
	if !strings.Contains(r.stderr, "Installed ") || strings.Contains(r.stderr, "Failed to hardlink") {
		t.Errorf("uv did not hard-link the packages it installed into the venv:\n%s", r.stderr)
	}
	byUV := layoutImage(t, out, builtDigest(t, r))
	byPip := layoutImage(t, out, builtDigest(t, pyship(t, env, "build", src, "--oci-layout", out, "--installer", "pip")))

	uvFiles, pipFiles := venvFiles(t, byUV), venvFiles(t, byPip)
	for name, sum := range uvFiles {
		if other, ok := pipFiles[name]; !ok {
			t.Errorf("only uv installed %s", name)
		} else if other != sum {
			t.Errorf("%s differs between uv and pip", name)
		}
	}
	for name := range pipFiles {
		if _, ok := uvFiles[name]; !ok {
			t.Errorf("only pip installed %s", name)
		}
	}
	if !slices.ContainsFunc(slices.Collect(maps.Keys(uvFiles)), func(n string) bool { return strings.Contains(n, "/httptools/") }) {
		t.Errorf("the venv has no httptools: the comparison compared nothing")
	}

	a, b := fixtures.LayerDigests(t, byUV), fixtures.LayerDigests(t, byPip)
	if len(a) != len(b) {
		t.Fatalf("uv's image has %d layers, pip's %d", len(a), len(b))
	}
	for i := range a {
		if i != len(a)-3 && a[i] != b[i] {
			t.Errorf("layer %d differs between the installers: %s and %s", i, a[i], b[i])
		}
	}
}

// installerRecords are the files that say which installer wrote a package, and how: they
// differ by installer by design (PEP 376, PEP 610).
var installerRecords = []string{"INSTALLER", "RECORD", "REQUESTED", "direct_url.json", "uv_cache.json", "uv_build.json"}

// venvFiles maps each file of the image's dependency layer (third from the top) to its
// sha256, but for the installer's records and the entry-point scripts in bin (their
// wrappers are each installer's own), which count by name only. It fails on an installer
// found in the venv.
func venvFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ls[len(ls)-3].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// setuptools stays when a dependency requires it (Sanic does); both installers then
		// install it alike.
		for _, tool := range []string{"/site-packages/pip/", "/site-packages/wheel/", "opt/venv/bin/pip"} {
			if strings.Contains(h.Name, tool) {
				t.Errorf("the venv holds an installer: %s", h.Name)
			}
		}
		if h.Typeflag != tar.TypeReg {
			files[h.Name] = string(h.Typeflag)
			continue
		}
		if strings.Contains(h.Name, ".dist-info/") && slices.Contains(installerRecords, path.Base(h.Name)) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if path.Dir(h.Name) == "opt/venv/bin" && !strings.HasPrefix(path.Base(h.Name), "activate") && !strings.HasPrefix(path.Base(h.Name), "python") {
			files[h.Name] = "script"
			continue
		}
		sum := sha256.Sum256(data)
		files[h.Name] = hex.EncodeToString(sum[:])
	}
	return files
}
