//go:build e2e

package layers

import (
	"archive/tar"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pyship/pyship/fixtures"
	"github.com/pyship/pyship/sandbox"
)

// TestExtractOwnsAsTheSandbox: extracted as root, owners are the sandbox's ids, never host
// accounts: root in the image is not root on the host.
func TestExtractOwnsAsTheSandbox(t *testing.T) {
	fixtures.Need(t, os.Geteuid() == 0, "extracting with an image's owners needs root")
	l := tarLayer(t, []tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/rootshell", Typeflag: tar.TypeReg, Mode: 0o4755},
		{Name: "home/app/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 65532, Gid: 65532},
	}, map[string]string{"bin/rootshell": "#!/bin/sh\n"})
	root := extractLayer(t, l)
	for f, want := range map[string]int{"bin/rootshell": sandbox.HostID(0), "home/app": sandbox.HostID(65532)} {
		st, err := os.Lstat(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if uid := int(st.Sys().(*syscall.Stat_t).Uid); uid != want || uid == 0 {
			t.Errorf("%s belongs to host uid %d, want %d", f, uid, want)
		}
	}
}
