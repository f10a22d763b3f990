package layers

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// testBase describes a small Debian-like Python base.
type testBase struct {
	python    string // PYTHON_VERSION, empty for none
	link      string // what usr/bin/python3 links to
	versionID string // os-release VERSION_ID
	libc      string // libc6's Version in dpkg's status
	passwd    string
	// stopSignal is the config's StopSignal, a setting the image inherits.
	stopSignal string
	// extra are files of a layer of their own on top, as an update adds.
	extra map[string]string
}

func debianBase() testBase {
	return testBase{python: "3.12.1", link: "python3.12", versionID: "12", libc: "2.36-9+deb12u4", passwd: "root:x:0:0:root:/root:/bin/sh\n"}
}

// image makes the base: one layer like mmdebstrap's, and one more with b.extra.
func (b testBase) image(t *testing.T) v1.Image {
	t.Helper()
	l := tarLayer(t, []tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/group", Typeflag: tar.TypeReg},
		{Name: "etc/os-release", Typeflag: tar.TypeSymlink, Linkname: "../usr/lib/os-release"},
		{Name: "etc/passwd", Typeflag: tar.TypeReg},
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/" + b.link, Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "usr/bin/python3", Typeflag: tar.TypeSymlink, Linkname: b.link},
		{Name: "usr/lib/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/lib/os-release", Typeflag: tar.TypeReg},
		{Name: "var/lib/dpkg/status", Typeflag: tar.TypeReg},
	}, map[string]string{
		"etc/group":          "root:x:0:\n",
		"etc/passwd":         b.passwd,
		"usr/bin/" + b.link:  "#!/bin/false\n",
		"usr/lib/os-release": "PRETTY_NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"" + b.versionID + "\"\n",
		"var/lib/dpkg/status": "Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\n" +
			"Package: libc6\nStatus: install ok installed\nVersion: " + b.libc + "\n",
	})
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	adds := []mutate.Addendum{{Layer: l, MediaType: types.OCILayer, History: v1.History{CreatedBy: "mmdebstrap", Created: v1.Time{Time: time.Unix(0, 0)}}}}
	if len(b.extra) > 0 {
		var hs []tar.Header
		for _, p := range slices.Sorted(mapsKeys(b.extra)) {
			hs = append(hs, tar.Header{Name: p, Typeflag: tar.TypeReg})
		}
		adds = append(adds, mutate.Addendum{Layer: tarLayer(t, hs, b.extra), MediaType: types.OCILayer, History: v1.History{CreatedBy: "update", Created: v1.Time{Time: time.Unix(0, 0)}}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	if b.python != "" {
		cf.Config.Env = append(cf.Config.Env, "PYTHON_VERSION="+b.python)
	}
	cf.Config.Cmd = []string{"python3"}
	cf.Config.StopSignal = b.stopSignal
	cf.Config.Labels = map[string]string{"org.example.base": "v-" + b.python + b.versionID}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// testRegistry starts an in-memory registry and returns its host.
func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return imageDigest(t, img)
}

// builtOn builds the test app on the base at ref, with a cache of its own.
func builtOn(t *testing.T, ref string) *Result {
	t.Helper()
	src := t.TempDir()
	for f, data := range map[string]string{"requirements.txt": "-r base.txt\n", "base.txt": "flask==3.0.0\n", "app.py": "print('hi')\n"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return build(t, testPlan(t, ref), src, t.TempDir(), &recordingInstaller{})
}

func rebase(t *testing.T, img v1.Image) (*Rebased, error) {
	t.Helper()
	return Rebase(context.Background(), img, RebaseOptions{CacheDir: t.TempDir()})
}

func digests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ds, err := layerDigests(img)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestRebase builds an app, updates its base under the same tag, and rebases: the app's
// layers are kept byte for byte on the new base's, the config is moved, and the image is
// the one a build on the new base makes.
func TestRebase(t *testing.T) {
	ref := testRegistry(t) + "/library/python:3.12-slim"
	oldBase := debianBase()
	oldDigest := push(t, ref, oldBase.image(t))
	built := builtOn(t, ref)

	newBase := debianBase()
	newBase.python = "3.12.2"
	newBase.libc = "2.36-9+deb12u9"
	newBase.extra = map[string]string{"etc/pyship-rebase-marker": "updated\n"}
	newBase.stopSignal = "SIGINT"
	newDigest := push(t, ref, newBase.image(t))

	got, err := rebase(t, built.Image)
	if err != nil {
		t.Fatal(err)
	}
	if got.Unchanged {
		t.Fatal("the base changed, and the rebase says it did not")
	}
	if err := validate.Image(got.Image); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	if got.OldBase.DigestStr() != oldDigest.String() || got.Base.DigestStr() != newDigest.String() {
		t.Errorf("bases %s -> %s, want %s -> %s", got.OldBase, got.Base, oldDigest, newDigest)
	}
	before, after := digests(t, built.Image), digests(t, got.Image)
	own := before[len(built.BaseLayers):]
	if len(after) != 2+len(own) || !slices.Equal(after[2:], own) || !slices.Equal(got.Kept, own) {
		t.Errorf("layers %v, want the new base's 2 and then the image's own %v", after, own)
	}
	if !slices.Equal(after[:2], got.BaseLayers) || slices.Contains(after, before[0]) {
		t.Errorf("base layers %v, want the new base's %v, not the old one's %v", after[:2], got.BaseLayers, before[0])
	}

	cf, err := got.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	bcf, err := built.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if l := cf.Config.Labels; l[BaseDigestLabel] != newDigest.String() || l[BaseNameLabel] != bcf.Config.Labels[BaseNameLabel] ||
		l["org.opencontainers.image.revision"] != "abc123" || l["org.example.base"] != "v-3.12.212" {
		t.Errorf("labels %v", l)
	}
	if cf.Config.StopSignal != "SIGINT" || !slices.Equal(cf.Config.Cmd, bcf.Config.Cmd) || cf.Config.User != bcf.Config.User {
		t.Errorf("stop signal %q, cmd %q, user %q: want the new base's signal and the image's command and user", cf.Config.StopSignal, cf.Config.Cmd, cf.Config.User)
	}
	if !cf.Created.Equal(bcf.Created.Time) {
		t.Errorf("created %v, want the image's %v", cf.Created, bcf.Created)
	}
	if e := cf.Config.Env; !slices.Contains(e, "PYTHON_VERSION=3.12.2") || !slices.Contains(e, "PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin") || !slices.Contains(e, "PORT=8080") {
		t.Errorf("env %q: want the new base's PYTHON_VERSION, the venv on its PATH, the image's PORT", e)
	}
	var createdBy []string
	for _, h := range cf.History {
		createdBy = append(createdBy, h.CreatedBy)
	}
	if len(createdBy) != len(after) || createdBy[0] != "mmdebstrap" || createdBy[1] != "update" || createdBy[2] != bcf.History[1].CreatedBy {
		t.Errorf("history %q", createdBy)
	}
	m, err := got.Image.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s, %s; want OCI's", m.MediaType, m.Config.MediaType)
	}

	// The same rebase again, with another cache, gives the same image; and so does a
	// build of the same app on the new base.
	again, err := rebase(t, built.Image)
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := imageDigest(t, got.Image), imageDigest(t, again.Image); d1 != d2 {
		t.Errorf("two rebases gave %s and %s", d1, d2)
	}
	if d1, d2 := imageDigest(t, got.Image), imageDigest(t, builtOn(t, ref).Image); d1 != d2 {
		t.Errorf("the rebase gave %s, a build on the new base %s", d1, d2)
	}
}

// TestRebaseUnchanged rebases an image that is on the newest base: nothing changes.
func TestRebaseUnchanged(t *testing.T) {
	ref := testRegistry(t) + "/library/python:3.12-slim"
	push(t, ref, debianBase().image(t))
	built := builtOn(t, ref)
	got, err := rebase(t, built.Image)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Unchanged || imageDigest(t, got.Image) != imageDigest(t, built.Image) || got.OldBase != got.Base {
		t.Errorf("unchanged %v, %s -> %s; want the image as it is", got.Unchanged, got.OldBase, got.Base)
	}
}

// TestRebaseRefuses moves images onto bases their own layers would run differently on.
func TestRebaseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		// update changes the base; image, when set, changes the built image.
		update func(*testBase)
		image  func(t *testing.T, img v1.Image, ref string) v1.Image
		want   string
	}{{
		name:   "another Python",
		update: func(b *testBase) { b.python, b.link = "3.13.0", "python3.13" },
		want:   "the new base has Python 3.13, and the image's dependencies were installed for Python 3.12",
	}, {
		name: "another Python, by its link",
		update: func(b *testBase) {
			b.python, b.link = "", "python3.13"
		},
		want: "Python 3.13",
	}, {
		name:   "no venv interpreter",
		update: func(b *testBase) { b.extra = map[string]string{"usr/bin/.wh.python3": ""} },
		want:   "the venv's interpreter /usr/bin/python3 is not in the new base",
	}, {
		name:   "another Debian release",
		update: func(b *testBase) { b.versionID = "13" },
		want:   "the new base is debian 13, the image was built on debian 12",
	}, {
		name:   "an older glibc",
		update: func(b *testBase) { b.libc = "2.31-13" },
		want:   "glibc 2.31) is older than the one the image was built on (glibc 2.36)",
	}, {
		name:   "a file the image replaces",
		update: func(b *testBase) { b.passwd += "daemon:x:1:1::/:/bin/false\n" },
		want:   "replace files that the new base changed (/etc/passwd)",
	}, {
		name:   "not pyship's",
		update: func(b *testBase) { b.python = "3.12.9" },
		image: func(t *testing.T, img v1.Image, ref string) v1.Image {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			cf = cf.DeepCopy()
			delete(cf.Config.Labels, BaseNameLabel)
			delete(cf.Config.Labels, BaseDigestLabel)
			img, err = mutate.ConfigFile(img, cf)
			if err != nil {
				t.Fatal(err)
			}
			return img
		},
		want: "does not say what its base is",
	}, {
		name:   "not on the base its label names",
		update: func(b *testBase) { b.python = "3.12.9" },
		image: func(t *testing.T, img v1.Image, ref string) v1.Image {
			// Labelled with another digest of its base's repository: one with a layer
			// more.
			other := debianBase()
			other.extra = map[string]string{"etc/other": "x"}
			d := push(t, ref+"-other", other.image(t))
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			cf = cf.DeepCopy()
			cf.Config.Labels[BaseDigestLabel] = d.String()
			img, err = mutate.ConfigFile(img, cf)
			if err != nil {
				t.Fatal(err)
			}
			return img
		},
		want: "the image's first 2 layers are not those of the base its labels name",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ref := testRegistry(t) + "/library/python:3.12-slim"
			push(t, ref, debianBase().image(t))
			img := builtOn(t, ref).Image
			if tc.image != nil {
				img = tc.image(t, img, ref)
			}
			b := debianBase()
			tc.update(&b)
			push(t, ref, b.image(t))
			_, err := rebase(t, img)
			var re *RebaseError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hint: ") {
				t.Errorf("error %v; want a RebaseError that says %q, with a hint", err, tc.want)
			}
		})
	}
}

func TestRebaseEnv(t *testing.T) {
	for _, tc := range []struct {
		name          string
		env, old, new []string
		want          []string
	}{{
		name: "base values follow the base, the image's own stay",
		env:  []string{"PATH=/opt/venv/bin:/usr/bin", "LANG=C", "GONE=1", "PORT=8080"},
		old:  []string{"PATH=/usr/bin", "LANG=C", "GONE=1"},
		new:  []string{"LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin", "ADDED=2"},
		want: []string{"LANG=C.UTF-8", "PATH=/opt/venv/bin:/usr/local/bin:/usr/bin", "ADDED=2", "PORT=8080"},
	}, {
		name: "a value the image set over the base's stays",
		env:  []string{"LANG=de_DE.UTF-8", "X=/a:/b"},
		old:  []string{"LANG=C", "X=/b"},
		new:  []string{"LANG=C.UTF-8", "X=/c"},
		want: []string{"LANG=de_DE.UTF-8", "X=/a:/c"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rebaseEnv(tc.env, tc.old, tc.new); !slices.Equal(got, tc.want) {
				t.Errorf("rebaseEnv = %q, want %q", got, tc.want)
			}
		})
	}
}
