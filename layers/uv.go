package layers

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/flate"

	"github.com/pyship/pyship/plan"
	"github.com/pyship/pyship/pyindex"
)

// uvWheel is the wheel on the package index that carries the uv binary for one
// architecture, with the sha256 of the wheel and of the binary in it.
type uvWheel struct {
	file, sha256, binary string
}

// uvWheels are plan.UVVersion's wheels by GOARCH, with PyPI's hashes. Their binaries are
// static (musl), so they run in any base image.
var uvWheels = map[string]uvWheel{
	"amd64": {"uv-" + plan.UVVersion + "-py3-none-musllinux_1_1_x86_64.whl",
		"2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25", "edbfb9a3d00dc84148e6691cd8740781fdc32db6505d7ef88ba6c3e569d5bec9"},
	"arm64": {"uv-" + plan.UVVersion + "-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
		"5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe", "bbecb5ac518030bb5e84f1999c577228460192832ac24a92bd772735682979f4"},
}

// maxUVWheel bounds the download of a uv wheel (about 19 MB).
const maxUVWheel = 128 << 20

// UVError reports that uv could not be had.
type UVError struct {
	Err error
}

func (e *UVError) Error() string {
	return fmt.Sprintf("getting uv %s, which installs the dependencies: %v\nhint: pyship fetches it once from the package index pip on this machine uses (PIP_INDEX_URL or pip.conf); put uv %s (a static build) on PATH, or set installer = \"pip\" in pyship.toml or PYSHIP_INSTALLER=pip",
		plan.UVVersion, e.Err, plan.UVVersion)
}

func (e *UVError) Unwrap() error { return e.Err }

// uvBinary returns the host path of uv at plan.UVVersion: the one on PATH when it is that
// version and static (it runs in the base image, which may have no libc that suits it),
// else the one in the cache, else one fetched from the package index as its wheel into the
// cache; the wheel and the binary are checked against the hashes pinned here.
func uvBinary(ctx context.Context, cacheDir string, log hclog.Logger) (string, error) {
	if p, err := exec.LookPath("uv"); err == nil {
		ok, why := usableUV(ctx, p)
		if ok {
			log.Debug("using uv from PATH", "path", p)
			return p, nil
		}
		log.Debug("not using uv from PATH", "path", p, "because", why)
	}
	wheel, ok := uvWheels[runtime.GOARCH]
	if !ok {
		return "", &UVError{Err: fmt.Errorf("no uv build for %s is pinned", runtime.GOARCH)}
	}
	dir := filepath.Join(cacheDir, "tools", "uv-"+plan.UVVersion+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "uv")
	pinned := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: wheel.binary}, Size: -1}
	ok, err := blobMatches(bin, pinned)
	if ok {
		return bin, nil
	}
	if err == nil {
		log.Warn("the cached uv does not match its pinned hash; fetching it again", "path", bin)
	}
	start := time.Now()
	if err := fetchUV(ctx, wheel, dir, cacheDir, log); err != nil {
		return "", &UVError{Err: err}
	}
	log.Info("fetched uv", "version", plan.UVVersion, "took", since(start))
	return bin, nil
}

// usableUV reports whether the uv at p is plan.UVVersion and statically linked.
func usableUV(ctx context.Context, p string) (bool, string) {
	f, err := elf.Open(p)
	if err != nil {
		return false, "not an ELF file: " + err.Error()
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, "dynamically linked"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--version").Output()
	if err != nil {
		return false, "uv --version: " + err.Error()
	}
	if fields := strings.Fields(string(out)); len(fields) < 2 || fields[1] != plan.UVVersion {
		return false, "its version is " + strings.TrimSpace(string(out))
	}
	return true, ""
}

// fetchUV downloads the wheel, checks its hash, and writes its uv binary, checked too, to
// dir/uv.
func fetchUV(ctx context.Context, wheel uvWheel, dir, cacheDir string, log hclog.Logger) error {
	client := pyindex.NewClient("", log)
	client.HTTP.Timeout = 5 * time.Minute
	var buf bytes.Buffer
	if err := client.Download(ctx, "uv", wheel.file, wheel.sha256, maxUVWheel, &buf); err != nil {
		return err
	}
	fetched := time.Now()
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return fmt.Errorf("reading %s: %w", wheel.file, err)
	}
	// klauspost's inflate takes half the time of the standard library's, on the 50 MB
	// binary.
	zr.RegisterDecompressor(zip.Deflate, flate.NewReader)
	defer func() { log.Debug("uv's binary taken out of its wheel", "took", since(fetched)) }()
	member := "uv-" + plan.UVVersion + ".data/scripts/uv"
	zf, err := zr.Open(member)
	if err != nil {
		return fmt.Errorf("%s has no %s: %w", wheel.file, member, err)
	}
	defer zf.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(zf, maxUVWheel)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wheel.binary {
		return fmt.Errorf("the uv in %s has sha256 %s, not %s", wheel.file, got, wheel.binary)
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, "uv"))
}
