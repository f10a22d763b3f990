package layers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pyship/pyship/sandbox"
)

// systemDir is where the cache keeps what apt-get wrote on a base: the trees of system
// layers and of builders (an overlay's upper directory each), by key.
const systemDir = "system"

// AptError reports that apt-get could not install packages on the base.
type AptError struct {
	// Packages are the packages asked for; Purpose says why ("the image", "a builder").
	Packages []string
	Purpose  string
	Code     int
	Output   string
}

func (e *AptError) Error() string {
	if e.Code == 127 {
		return fmt.Sprintf("cannot install %s for %s: the base image has no apt-get\nhint: Debian packages come from the base's own apt; use a Debian-based base (the default python:X.Y-slim is one), or a base of your own that already has them", strings.Join(e.Packages, " "), e.Purpose)
	}
	hint := "check that each package exists in the base's Debian release (https://packages.debian.org), and fix apt in pyship.toml or the Aptfile"
	if e.Purpose != "the image" {
		hint = "pyship chose these packages for a source build; if one does not exist in the base's Debian release (https://packages.debian.org), pin a version of the failing requirement that has a wheel, or name the right -dev package in apt in pyship.toml"
	}
	return fmt.Sprintf("apt-get could not install %s for %s (exit code %d):\n%s\nhint: %s",
		strings.Join(e.Packages, " "), e.Purpose, e.Code, errorLines(e.Output), hint)
}

// aptInstall runs apt-get install pkgs in the build sandbox on root (with over stacked on
// it), writing into upper.
func aptInstall(ctx context.Context, root string, over []string, upper string, pkgs []string, purpose string, opts Options) error {
	if err := CheckPackages(pkgs); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StepTimeout)
	defer cancel()
	out := newTail(outputTail)
	w := io.MultiWriter(out, logWriter(opts.Logger))
	egress, _ := buildEgress(opts.Logger)
	// The package names follow the script as its arguments: never shell text.
	args := append([]string{"/bin/sh", "-c", aptInstallScript, "pyship-apt"}, pkgs...)
	err := sandbox.Exec(ctx, sandbox.ExecSpec{
		Root: root, Over: over, Upper: upper, Args: args, Dir: "/",
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8",
			"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
		},
		Hostname: "pyship-build", Egress: egress, Limits: opts.BuildLimits, Stdout: w, Stderr: w,
	})
	var exit *sandbox.ExitError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &TimeoutError{What: "installing " + strings.Join(pkgs, " ") + " with apt-get", Limit: opts.StepTimeout, Output: out.String()}
	case errors.As(err, &exit):
		return &AptError{Packages: pkgs, Purpose: purpose, Code: exit.Code, Output: out.String()}
	}
	return err
}

// aptInstallScript installs "$@" with the base's own apt, through pyship's proxy. apt runs
// as root in the sandbox (dropping to its _apt user needs nothing the sandbox grants), and
// honours the base's own apt configuration.
const aptInstallScript = `set -e
o="-o APT::Sandbox::User=root -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=false"
if [ -n "$HTTP_PROXY" ]; then o="$o -o Acquire::http::Proxy=$HTTP_PROXY -o Acquire::https::Proxy=$HTTPS_PROXY"; fi
apt-get -q $o update
apt-get -q -y $o install -- "$@"
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin`

// systemTree returns the cached tree of what installing pkgs on root (with over stacked)
// wrote, installing them first when the cache has no such tree. key names the inputs.
func systemTree(ctx context.Context, root string, over []string, key string, pkgs []string, purpose string, opts Options) (string, error) {
	dir := filepath.Join(opts.CacheDir, systemDir)
	final := filepath.Join(dir, key)
	if info, err := os.Lstat(final); err == nil && info.IsDir() {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".apt-")
	if err != nil {
		return "", err
	}
	upper := filepath.Join(tmp, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := aptInstall(ctx, root, over, upper, pkgs, purpose, opts); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(upper, final); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	os.RemoveAll(tmp)
	return final, nil
}

// systemKey names a set of packages installed on a base (and on trees below it).
func systemKey(kind string, baseDigest v1.Hash, below []string, pkgs []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "pyship %s v1\n%s\nbase %s\nscript %s\n", kind, layerFormat, baseDigest, aptInstallScript)
	for _, b := range below {
		fmt.Fprintf(h, "below %s\n", filepath.Base(b))
	}
	sorted := slices.Clone(pkgs)
	slices.Sort(sorted)
	for _, p := range slices.Compact(sorted) {
		fmt.Fprintf(h, "package %s\n", p)
	}
	return kind + "-" + hex.EncodeToString(h.Sum(nil))
}

// systemSkip leaves out of a system layer what apt and dpkg keep for themselves (package
// lists, caches, logs, locks, backups) and scratch directories: none of it is needed to run,
// and much of it changes from run to run.
func systemSkip(rel string, d fs.DirEntry) bool {
	switch rel {
	case "var/lib/apt/lists", "var/cache", "var/log", "tmp", "var/tmp", "run", "root", "dev", "proc", "sys",
		"var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend", "var/lib/dpkg/triggers/Lock", "var/lib/dpkg/triggers/Unincorp",
		"etc/ld.so.cache~", "var/lib/apt/extended_states":
		return true
	}
	switch rel {
	case "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/subuid-", "etc/subgid-":
		return true
	}
	return strings.HasSuffix(rel, "-old") || strings.HasSuffix(rel, "~")
}

// systemLayer packs a system tree as a layer, cached by key.
func systemLayer(tree, key string, opts Options) (v1.Layer, error) {
	layersDir := filepath.Join(opts.CacheDir, "layers")
	if l, err := cachedLayer(layersDir, key, opts.Logger); l != nil || err != nil {
		return l, err
	}
	return writeLayerFile(layersDir, key, DefaultEpoch, nil, func(w *normalisingWriter) error {
		return writeTree(w, tree, treeOptions{Skip: systemSkip, AllowOutsideLinks: true})
	})
}
