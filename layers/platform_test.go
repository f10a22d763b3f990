package layers

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// elfHeader is the start of a 64-bit little-endian ELF file for machine m.
func elfHeader(m elf.Machine) []byte {
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_DYN))
	binary.LittleEndian.PutUint16(h[18:], uint16(m))
	return h
}

// TestCheckMachine: a venv of aarch64 extensions passes for linux/arm64 (with a variant
// too) and fails for linux/amd64 naming the first file; files that are not ELF are left
// alone.
func TestCheckMachine(t *testing.T) {
	venv := t.TempDir()
	for name, data := range map[string][]byte{
		"lib/python3.13/site-packages/markupsafe/_speedups.cpython-313-aarch64-linux-gnu.so": elfHeader(elf.EM_AARCH64),
		"lib/python3.13/site-packages/pkg.libs/libz-1a2b.so.1":                               elfHeader(elf.EM_AARCH64),
		"lib/python3.13/site-packages/markupsafe/__init__.py":                                []byte("x = 1\n"),
		"bin/flask": []byte("#!/opt/venv/bin/python\n"),
		"short":     []byte("\x7fEL"),
	} {
		p := filepath.Join(venv, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, platform := range []string{"linux/arm64", "linux/arm64/v8"} {
		if err := checkMachine(venv, platform); err != nil {
			t.Errorf("%s: %v", platform, err)
		}
	}
	err := checkMachine(venv, "linux/amd64")
	var me *MachineError
	if !errors.As(err, &me) || me.Machine != elf.EM_AARCH64 || me.Path != "lib/python3.13/site-packages/markupsafe/_speedups.cpython-313-aarch64-linux-gnu.so" {
		t.Fatalf("linux/amd64: %v, want the aarch64 extension named", err)
	}
	if got := err.Error(); got != "lib/python3.13/site-packages/markupsafe/_speedups.cpython-313-aarch64-linux-gnu.so in the venv is for AARCH64, not for the image's linux/amd64: the package that installed it has no wheel for linux/amd64\nhint: build the image on a linux/amd64 machine" {
		t.Errorf("message %q", got)
	}
}
