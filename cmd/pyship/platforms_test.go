package main

import (
	"slices"
	"testing"
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
