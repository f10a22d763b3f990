//go:build linux && e2e

package main

import (
	"archive/tar"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/sandbox"
)

// TestForeignPlatform: on this amd64 machine, pyship builds a linux/arm64 image of the
// Flask fixture (MarkupSafe's compiled speedups among its wheels) from the test bed's
// multi-platform base, with no emulated build: the image says linux/arm64, its base layers
// are the arm64 base's, every ELF file in its venv is aarch64, its byte code checked-hash;
// two cold builds give one digest; it answers the smoke test under qemu-user. Published
// with linux/amd64 too, it is in an image index, each image with its evidence. A
// dependency that must compile C code fails the install, naming the platform and a native
// runner.
func TestForeignPlatform(t *testing.T) {
	reg := fixtures.Testbed(t)
	fixtures.Need(t, slices.Contains(strings.Fields(os.Getenv("PYSHIP_TEST_MULTIARCH")), "3.13"),
		"the test bed has no multi-platform python:3.13-multiarch base: see what fixtures/testbed/up said")
	base := reg + "/library/python:3.13-multiarch"
	src := copyFixture(t, "flask-hello")
	if err := os.WriteFile(filepath.Join(src, ".python-version"), []byte("3.13\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--platform", "linux/arm64", "--base", base}

	var digests []string
	layoutDir := filepath.Join(t.TempDir(), "oci")
	for i := 0; i < 2; i++ {
		cache := []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}
		d := builtDigest(t, pyship(t, cache, append([]string{"build", src, "--oci-layout", layoutDir}, args...)...))
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Fatalf("two cold builds gave %s and %s", digests[0], digests[1])
	}
	d := builtDigest(t, result{stdout: digests[0] + "\n"})
	img := layoutImage(t, layoutDir, d)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" {
		t.Errorf("the image is for %s/%s, not linux/arm64", cf.OS, cf.Architecture)
	}
	if !slices.ContainsFunc(cf.Config.Env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=/opt/venv/bin") }) {
		t.Errorf("the image's PATH does not start with the venv: %q", cf.Config.Env)
	}

	// The arm64 base's layers, then pyship's.
	r0, err := name.ParseReference(base)
	if err != nil {
		t.Fatal(err)
	}
	armBase, err := remote.Image(r0, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, err := armBase.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, bl := range baseLayers {
		want, _ := bl.Digest()
		got, _ := ls[i].Digest()
		if got != want {
			t.Errorf("layer %d is %s, the arm64 base's is %s", i, got, want)
		}
	}
	deps := ls[len(baseLayers)]
	checkDependencyLayer(t, deps)
	if n := elfMachines(t, deps, elf.EM_AARCH64); n == 0 {
		t.Error("the venv holds no aarch64 extension module: MarkupSafe's speedups are missing")
	}

	// The smoke test runs the arm64 python under qemu-user.
	fixtures.Need(t, sandbox.CanRun("arm64") == nil, "this machine cannot run arm64 programs (qemu-user-static with binfmt_misc): fixtures/testbed/up registers it")
	cache := []string{"PYSHIP_CACHE_DIR=" + filepath.Join(t.TempDir(), "cache")}
	r := pyship(t, cache, append([]string{"test", src}, args...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "smoke test passed") {
		t.Fatalf("the arm64 image failed its smoke test (exit %d)", r.code)
	}

	// Both platforms at once: an index of the native image and the same arm64 image (one
	// digest from either command), each smoke-tested and pushed with its evidence, the tag on
	// the index.
	target := reg + "/foreign/app:" + uniqueTag()
	r = pyship(t, cache, "publish", src, "--platform", "linux/amd64,linux/arm64", "--base", base, "--image", target)
	indexRef := builtDigest(t, r)
	if n := strings.Count(r.stderr, "smoke test passed"); n != 2 {
		t.Errorf("%d smoke tests passed, want 2", n)
	}
	tr, err := name.ParseReference(target)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(tr)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := idx.Digest(); got != indexRef {
		t.Errorf("the tag points at %s, publish printed %s", got, indexRef)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, desc := range im.Manifests {
		platforms = append(platforms, desc.Platform.String())
		if desc.Platform.Architecture == "arm64" && desc.Digest != d {
			t.Errorf("the index's arm64 image is %s, pyship build made %s", desc.Digest, d)
		}
		refs, err := remote.Referrers(tr.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		rm, _ := refs.IndexManifest()
		var types []string
		for _, a := range rm.Manifests {
			types = append(types, a.ArtifactType)
		}
		for _, want := range []string{"application/spdx+json", "application/vnd.in-toto+json"} {
			if !slices.Contains(types, want) {
				t.Errorf("the %s image has no %s referrer (it has %q)", desc.Platform, want, types)
			}
		}
	}
	if strings.Join(platforms, " ") != "linux/amd64 linux/arm64/v8" {
		t.Errorf("the index holds %q, want linux/amd64 and linux/arm64/v8", platforms)
	}

	// A dependency that compiles C code has no wheel for arm64 and cannot be built here.
	native := filepath.Join(src, "native")
	writeFiles(t, native, map[string]string{
		"pyproject.toml": "[build-system]\nrequires = [\"setuptools>=70\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"native\"\nversion = \"1.0\"\n",
		"setup.py":       "from setuptools import Extension, setup\nsetup(ext_modules=[Extension(\"native\", [\"native.c\"])])\n",
		"native.c":       "#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT, \"native\"};\nPyMODINIT_FUNC PyInit_native(void) { return PyModule_Create(&m); }\n",
	})
	f, err := os.OpenFile(filepath.Join(src, "requirements.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("./native\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r = pyship(t, cache, append([]string{"build", src}, args...)...)
	if r.code != exitInstall {
		t.Fatalf("exit %d, want %d (install)", r.code, exitInstall)
	}
	for _, want := range []string{"Failed to build `native", "linux/arm64", "aarch64-manylinux_2_28", "build the image on a linux/arm64 machine"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not say %q", want)
		}
	}
}

// elfMachines counts the ELF files in layer l, failing the test for any not for machine.
func elfMachines(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
}, machine elf.Machine) int {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		var head [20]byte
		if _, err := io.ReadFull(tr, head[:]); err != nil || string(head[:4]) != elf.ELFMAG {
			continue
		}
		if m := elf.Machine(binary.LittleEndian.Uint16(head[18:])); m != machine {
			t.Errorf("%s is for %s, not %s", h.Name, m, machine)
		}
		n++
	}
}
