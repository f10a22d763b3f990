package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// binfmtDir is where the kernel lists the interpreters it hands programs of other formats.
var binfmtDir = "/proc/sys/fs/binfmt_misc"

// binfmtNames are the names emulators of an architecture register under (Debian's and
// Ubuntu's qemu-user-static, and tonistiigi/binfmt's).
var binfmtNames = map[string][]string{
	"arm64": {"qemu-aarch64"},
	"amd64": {"qemu-x86_64"},
}

// ForeignError says why the sandbox cannot run the programs of an image for another
// architecture.
type ForeignError struct {
	Arch string
	Why  string
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("this %s machine cannot run linux/%s programs: %s\nhint: install an emulator the kernel hands them to, registered with the F flag so it also runs inside the sandbox (Debian and Ubuntu: apt-get install qemu-user-static; binfmt_misc mounted at %s), or test on a linux/%s machine",
		runtime.GOARCH, e.Arch, e.Why, binfmtDir, e.Arch)
}

// CanRun reports whether the sandbox can run programs for the architecture arch (Go's
// name): this machine's own, or one binfmt_misc hands to an emulator registered with the
// F flag, which the kernel opened at registration and so finds from inside any mount
// namespace.
func CanRun(arch string) error {
	if arch == runtime.GOARCH || arch == "" {
		// An image that names no architecture is run as this machine's, as before.
		return nil
	}
	names, ok := binfmtNames[arch]
	if !ok {
		return &ForeignError{Arch: arch, Why: "pyship knows no emulator for it"}
	}
	status, err := os.ReadFile(filepath.Join(binfmtDir, "status"))
	if err != nil {
		return &ForeignError{Arch: arch, Why: "binfmt_misc is not mounted"}
	}
	if strings.TrimSpace(string(status)) != "enabled" {
		return &ForeignError{Arch: arch, Why: "binfmt_misc is disabled"}
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(binfmtDir, n))
		if err != nil {
			continue
		}
		entry := string(data)
		if !strings.HasPrefix(entry, "enabled\n") {
			return &ForeignError{Arch: arch, Why: n + " is registered but disabled"}
		}
		for _, line := range strings.Split(entry, "\n") {
			if flags, ok := strings.CutPrefix(line, "flags: "); ok && strings.Contains(flags, "F") {
				return nil
			}
		}
		return &ForeignError{Arch: arch, Why: n + " is registered without the F flag, so its interpreter cannot be found inside the sandbox"}
	}
	return &ForeignError{Arch: arch, Why: "no emulator is registered with binfmt_misc (" + strings.Join(names, ", ") + ")"}
}
