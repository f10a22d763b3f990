package layers

import (
	"archive/tar"
	"bytes"
	"errors"
	"maps"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestBaseAccounts: the account files read out of a base's layers as they stream are
// those an overlay of the layers shows: the topmost layer that has a file holds it, a
// whiteout or an opaque /etc hides the layers below, and a link makes the records unusable.
func TestBaseAccounts(t *testing.T) {
	reg := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg} }
	dir := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755} }
	bottom := tarLayer(t, []tar.Header{dir("etc/"), reg("etc/passwd"), reg("etc/group"), reg("etc/hosts")},
		map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/group": "root:x:0:\n"})
	for _, tc := range []struct {
		name  string
		upper []tar.Header
		data  map[string]string
		want  map[string]string
		err   error
	}{
		{"only the bottom layer has them", []tar.Header{dir("usr/"), reg("usr/x")}, nil,
			map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/group": "root:x:0:\n"}, nil},
		{"an upper passwd wins", []tar.Header{dir("./etc/"), reg("./etc/passwd")}, map[string]string{"./etc/passwd": "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/:/bin/false\n"},
			map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/:/bin/false\n", "etc/group": "root:x:0:\n"}, nil},
		{"a whiteout removes group", []tar.Header{dir("etc/"), reg("etc/.wh.group")}, nil,
			map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"}, nil},
		{"an opaque etc hides both, but not its own", []tar.Header{dir("etc/"), reg("etc/.wh..wh..opq"), reg("etc/group")}, map[string]string{"etc/group": "g\n"},
			map[string]string{"etc/group": "g\n"}, nil},
		{"a removed etc", []tar.Header{reg(".wh.etc")}, nil, map[string]string{}, nil},
		{"a linked passwd", []tar.Header{dir("etc/"), {Name: "etc/passwd", Typeflag: tar.TypeSymlink, Linkname: "/srv/passwd"}}, nil, nil, errNoAccounts},
		{"etc is a link", []tar.Header{{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "srv/etc"}}, nil, nil, errNoAccounts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			upper := tarLayer(t, tc.upper, tc.data)
			img, err := mutate.AppendLayers(empty.Image, bottom, upper)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range []v1.Layer{bottom, upper} {
				record(t, cacheDir, l)
			}
			got, err := baseAccounts(img, cacheDir)
			if !errors.Is(err, tc.err) || (tc.err == nil && !maps.Equal(got, tc.want)) {
				t.Errorf("baseAccounts = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}

	// A layer with no record (streamed before records were kept, or not streamed) sends
	// the build to the extracted file system.
	img, err := mutate.AppendLayers(empty.Image, bottom)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := baseAccounts(img, t.TempDir()); !errors.Is(err, errNoAccounts) {
		t.Errorf("with no records baseAccounts says %v, want errNoAccounts", err)
	}
}

// record writes l's account record into cacheDir, as streaming it does.
func record(t *testing.T, cacheDir string, l v1.Layer) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := recordAccounts(cacheDir, d)(rc, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestCheckUserTar: a user layer from the registry cache holds directories and the
// account files, nothing else.
func TestCheckUserTar(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		ok      bool
	}{
		{"pyship's own", []tar.Header{{Name: "etc/", Typeflag: tar.TypeDir}, {Name: "etc/group", Typeflag: tar.TypeReg}, {Name: "etc/passwd", Typeflag: tar.TypeReg}, {Name: "home/app/", Typeflag: tar.TypeDir}}, true},
		{"another file", []tar.Header{{Name: "etc/shadow", Typeflag: tar.TypeReg}}, false},
		{"a file in a directory", []tar.Header{{Name: "home/app/.bashrc", Typeflag: tar.TypeReg}}, false},
		{"a link as passwd", []tar.Header{{Name: "etc/passwd", Typeflag: tar.TypeSymlink, Linkname: "/x"}}, false},
		{"a set-id directory", []tar.Header{{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o4755}}, false},
		{"a path that climbs", []tar.Header{{Name: "../etc/passwd", Typeflag: tar.TypeReg}}, false},
	} {
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
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := checkUserTar(&buf); (err == nil) != tc.ok {
			t.Errorf("%s: checkUserTar = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
