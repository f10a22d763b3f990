package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCanRun: this machine's architecture always runs; another runs when binfmt_misc,
// enabled, has its emulator enabled with the F flag, and each missing piece is named.
func TestCanRun(t *testing.T) {
	if err := CanRun(runtime.GOARCH); err != nil {
		t.Fatalf("this machine's own architecture: %v", err)
	}
	foreign := "arm64"
	if runtime.GOARCH == "arm64" {
		foreign = "amd64"
	}
	name := binfmtNames[foreign][0]
	for _, tc := range []struct {
		name   string
		status string
		entry  string
		why    string
	}{
		{name: "not mounted", why: "binfmt_misc is not mounted"},
		{name: "disabled", status: "disabled\n", why: "binfmt_misc is disabled"},
		{name: "no emulator", status: "enabled\n", why: "no emulator is registered"},
		{name: "emulator disabled", status: "enabled\n", entry: "disabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: F\n", why: "registered but disabled"},
		{name: "without F", status: "enabled\n", entry: "enabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: OC\noffset 0\n", why: "without the F flag"},
		{name: "ready", status: "enabled\n", entry: "enabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: OCF\noffset 0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.status != "" {
				if err := os.WriteFile(filepath.Join(dir, "status"), []byte(tc.status), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.entry != "" {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(tc.entry), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			old := binfmtDir
			binfmtDir = dir
			defer func() { binfmtDir = old }()
			err := CanRun(foreign)
			var fe *ForeignError
			switch {
			case tc.why == "" && err != nil:
				t.Errorf("CanRun: %v", err)
			case tc.why != "" && (!errors.As(err, &fe) || !strings.Contains(err.Error(), tc.why)):
				t.Errorf("CanRun: %v, want an error saying %q", err, tc.why)
			}
		})
	}
}
