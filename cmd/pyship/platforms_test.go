package main

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestPlatformList: --platform takes one platform or several separated by commas, each
// once, in order; anything but linux/ARCH is a usage error.
func TestPlatformList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: nil},
		{in: "linux/arm64", want: []string{"linux/arm64"}},
		{in: "linux/amd64, linux/arm64/v8,linux/amd64,", want: []string{"linux/amd64", "linux/arm64/v8"}},
		{in: "windows/amd64", bad: true},
		{in: "linux/amd64,arm64", bad: true},
	} {
		c := common{platform: tc.in}
		got, err := c.platformList()
		if tc.bad {
			if code := exitCode(err); code != exitUsage {
				t.Errorf("%q: %v (exit %d), want a usage error", tc.in, err, code)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestImageInLayoutIndex: a layout whose one entry is an image index (a build for several
// platforms) gives its image for this machine; without one, a usage error names what it
// has.
func TestImageInLayoutIndex(t *testing.T) {
	host, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	foreign := "arm64"
	if runtime.GOARCH == "arm64" {
		foreign = "amd64"
	}
	write := func(adds ...mutate.IndexAddendum) string {
		dir := t.TempDir()
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendIndex(mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	on := func(img v1.Image, arch string) mutate.IndexAddendum {
		return mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}}
	}
	dir := write(on(other, foreign), on(host, runtime.GOARCH))
	got, err := imageInLayout(dir, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := host.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("the layout's index gave %s, want this machine's image %s", d, want)
	}
	dir = write(on(other, foreign))
	if _, err := imageInLayout(dir, "", dir); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "linux/"+foreign) {
		t.Errorf("an index without this machine's image: %v", err)
	}
}
