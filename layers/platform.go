package layers

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// elfMachines are the ELF machines of the platforms pyship builds for.
var elfMachines = map[string]elf.Machine{
	"linux/amd64": elf.EM_X86_64,
	"linux/arm64": elf.EM_AARCH64,
}

// MachineError reports a program or library in the venv that is not for the image's
// platform.
type MachineError struct {
	// Path is the file's path in the venv, slash-separated.
	Path     string
	Machine  elf.Machine
	Platform string
}

func (e *MachineError) Error() string {
	return fmt.Sprintf("%s in the venv is for %s, not for the image's %s: the package that installed it has no wheel for %s\nhint: build the image on a %s machine",
		e.Path, strings.TrimPrefix(e.Machine.String(), "EM_"), e.Platform, e.Platform, e.Platform)
}

// NativeOnlyError reports a part of the plan that runs the image's own programs (Debian
// packages' scripts, build steps), which a build for another architecture does not run.
type NativeOnlyError struct {
	// What is the part, like "build step collectstatic (from manage.py:1)".
	What     string
	Platform string
}

func (e *NativeOnlyError) Error() string {
	return fmt.Sprintf("%s runs the %s image's own programs, which a build on this %s machine does not run\nhint: build the image on a %s machine (on GitHub, runs-on: ubuntu-24.04-arm for linux/arm64)",
		e.What, e.Platform, runtime.GOARCH, e.Platform)
}

// checkMachine checks that every ELF file in the venv at dir (programs, extension modules,
// the libraries wheels carry) is for platform ("linux/arm64"; a variant is ignored).
func checkMachine(dir, platform string) error {
	if parts := strings.Split(platform, "/"); len(parts) > 2 {
		platform = parts[0] + "/" + parts[1]
	}
	want, ok := elfMachines[platform]
	if !ok {
		return fmt.Errorf("no ELF machine is known for %s", platform)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		m, ok, err := elfMachine(p)
		if err != nil || !ok || m == want {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		return &MachineError{Path: filepath.ToSlash(rel), Machine: m, Platform: platform}
	})
}

// elfMachine reads the machine of the ELF file at p; ok is false for a file that is not
// one.
func elfMachine(p string) (elf.Machine, bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	// e_ident (16 bytes), e_type (2), e_machine (2), in the byte order e_ident says.
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, false, nil
	}
	if string(h[:4]) != elf.ELFMAG {
		return 0, false, nil
	}
	var order binary.ByteOrder = binary.LittleEndian
	if elf.Data(h[elf.EI_DATA]) == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	return elf.Machine(order.Uint16(h[18:20])), true, nil
}
