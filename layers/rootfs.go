package layers

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/pyship/pyship/sandbox"
)

// rootfs returns a directory holding img's file system (layers applied, whiteouts
// honoured), made once per image digest. As root it is made of the layers' extracted trees,
// which the smoke test stacks too: the one tree of a one-layer image, else their union,
// hard-linked; otherwise the image is extracted whole.
func rootfs(img v1.Image, cacheDir string) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, rootfsDir, d.Hex)
	if os.Geteuid() != 0 {
		return extractOnce(dir, func() (io.ReadCloser, error) { return mutate.Extract(img), nil })
	}
	ls, err := img.Layers()
	if err != nil {
		return "", err
	}
	var trees []string
	for _, l := range ls {
		tree, err := layerTree(l, cacheDir)
		if err != nil {
			return "", err
		}
		trees = append(trees, tree)
	}
	if len(trees) == 1 {
		return trees[0], nil
	}
	return makeOnce(dir, func(tmp string) error { return flatten(trees, tmp) })
}

// layerTree returns a directory holding one layer's files, extracting it once per digest.
func layerTree(l v1.Layer, cacheDir string) (string, error) {
	d, err := l.Digest()
	if err != nil {
		return "", err
	}
	return extractOnce(filepath.Join(cacheDir, treesDir, d.Hex), l.Uncompressed)
}

// Where extracted file systems are cached. Their files belong to the sandbox's ids on the
// host (sandbox.HostID), so the names carry a version: trees of older pythons had the
// image's ids.
const (
	rootfsDir = "rootfs.2"
	treesDir  = "trees.2"
)

// extractOnce extracts the tar stream open gives into dir, unless dir exists. The stream
// lands in a temporary directory first, so an interrupted extraction leaves nothing at dir.
func extractOnce(dir string, open func() (io.ReadCloser, error)) (string, error) {
	return makeOnce(dir, func(tmp string) error {
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		// The stream (a layer's decompression, mostly) is read beside the extraction.
		r := newReadAhead(rc)
		defer r.Close()
		if err := extract(r, tmp); err != nil {
			return fmt.Errorf("extracting into %s: %w", dir, err)
		}
		// To the end of the stream, which a checking reader needs to check it.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("extracting into %s: %w", dir, err)
		}
		return nil
	})
}

// makeOnce has fill make a file system in a temporary directory and moves it to dir,
// unless dir exists: dir is whole or absent. Its top belongs to the sandbox's root.
func makeOnce(dir string, fill func(tmp string) error) (string, error) {
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".extract-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := fill(tmp); err != nil {
		return "", err
	}
	return settleTree(tmp, dir)
}

// settleTree moves the file system made in tmp to dir, unless dir exists. Its top
// belongs to the sandbox's root.
func settleTree(tmp, dir string) (string, error) {
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(tmp, sandbox.HostID(0), sandbox.HostID(0)); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another pyship (a pyship test outside any build) made the same digest first.
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil
		}
		return "", err
	}
	return dir, nil
}

// extract unpacks a tar stream into root. No entry can write outside root: every path is
// resolved inside it, following the image's own symbolic links as the image would. As
// root, files belong to the sandbox's ids that stand for their owners in the image, never
// to host accounts; set-id bits and device nodes are dropped, so nothing extracted onto
// the host can raise anyone's privileges there.
func extract(r io.Reader, root string) error {
	tr := tar.NewReader(r)
	x := &extraction{root: root, asRoot: os.Geteuid() == 0}
	var dirs []dirMode
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		dir, err := x.entry(tr, h)
		if err != nil {
			return err
		}
		if dir != nil {
			dirs = append(dirs, *dir)
		}
	}
	return setDirModes(root, dirs, x.asRoot)
}

// extraction is one layer's extraction into root. Every entry's parent is resolved
// afresh: a directory an earlier entry resolved may since have become a link, reached by
// another name, and only resolving again keeps what follows inside root.
type extraction struct {
	root   string
	asRoot bool
}

// dirMode is a directory's mode and time, set once the whole layer is extracted.
type dirMode struct {
	// rel is the directory's resolved path inside root.
	rel     string
	mode    os.FileMode
	modTime time.Time
}

// entry writes one tar entry inside root, its parents resolved inside root. For a
// directory it returns the mode and time to set at the end.
func (x *extraction) entry(tr *tar.Reader, h *tar.Header) (*dirMode, error) {
	root, asRoot := x.root, x.asRoot
	rel := path.Clean("/" + h.Name)
	if rel == "/" {
		return nil, nil
	}
	parent, err := resolveIn(root, path.Dir(rel))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	target := filepath.Join(parent, path.Base(rel))
	// A layer's deletions (OCI whiteouts) become overlayfs whiteouts, so the layer
	// can sit in an overlay above the ones it deletes from.
	if base := path.Base(rel); strings.HasPrefix(base, whiteoutPrefix) {
		if err := overlayWhiteout(parent, strings.TrimPrefix(base, whiteoutPrefix)); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		return nil, nil
	}
	if h.Typeflag == tar.TypeReg {
		return nil, writeFile(tr, h, target, asRoot)
	}
	written, err := writeEntry(tr, h, root, target)
	if err != nil || !written {
		return nil, err
	}
	if asRoot {
		if err := os.Lchown(target, sandbox.HostID(h.Uid), sandbox.HostID(h.Gid)); err != nil {
			return nil, err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		mode := os.FileMode(h.Mode & 0o777)
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		return &dirMode{strings.TrimPrefix(target, root), mode, h.ModTime}, nil
	case tar.TypeSymlink:
		return nil, nil
	}
	if err := unix.Chmod(target, uint32(h.Mode&0o1777)); err != nil {
		return nil, err
	}
	// Modification times matter: Python checks timestamp-based .pyc files against their
	// source's mtime, and recompiles (every start, on a read-only root) when they differ.
	return nil, os.Chtimes(target, h.ModTime, h.ModTime)
}

// writeFile makes target from a regular file entry, with its owner (as root), mode and
// times set through the open file.
func writeFile(tr *tar.Reader, h *tar.Header, target string, asRoot bool) error {
	_ = os.Remove(target)
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	err = func() error {
		if _, err := io.Copy(f, tr); err != nil {
			return err
		}
		if asRoot {
			if err := f.Chown(sandbox.HostID(h.Uid), sandbox.HostID(h.Gid)); err != nil {
				return err
			}
		}
		if err := unix.Fchmod(int(f.Fd()), uint32(h.Mode&0o1777)); err != nil {
			return err
		}
		// Modification times matter: Python checks timestamp-based .pyc files against
		// their source's mtime, and recompiles (every start, on a read-only root) when
		// they differ.
		tv := unix.NsecToTimeval(h.ModTime.UnixNano())
		return unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeEntry makes target from a directory, regular file, symbolic or hard link entry. It
// reports false for what it leaves as it is: a hard link (it shares its source's owner,
// mode and time), devices, pipes and sockets (the sandbox provides its own /dev).
func writeEntry(tr *tar.Reader, h *tar.Header, root, target string) (bool, error) {
	switch h.Typeflag {
	case tar.TypeDir:
		if info, err := os.Lstat(target); err != nil || !info.IsDir() {
			_ = os.Remove(target)
			if err := os.Mkdir(target, 0o755); err != nil {
				return false, err
			}
		}
		return true, nil
	case tar.TypeReg:
		_ = os.Remove(target)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return false, err
		}
		return true, f.Close()
	case tar.TypeSymlink:
		_ = os.RemoveAll(target)
		return true, os.Symlink(h.Linkname, target)
	case tar.TypeLink:
		src, err := resolveIn(root, path.Clean("/"+h.Linkname))
		if err != nil {
			return false, fmt.Errorf("%s: %w", h.Name, err)
		}
		_ = os.RemoveAll(target)
		return false, os.Link(src, target)
	default:
		return false, nil
	}
}

// setDirModes sets the directories' modes and times last, so a read-only directory does
// not stop its own extraction. A later entry may have replaced a directory, or a
// directory above it, with a link: each is opened again inside root without following
// any link, and a directory that is no longer there is left alone.
func setDirModes(root string, dirs []dirMode, asRoot bool) error {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootFD)
	for i := len(dirs) - 1; i >= 0; i-- {
		mode := dirs[i].mode
		if !asRoot {
			// Without root the files stay ours; keep the directories ours to write too.
			mode |= 0o700
		}
		if err := setDirMode(rootFD, dirs[i].rel, mode, dirs[i].modTime); err != nil {
			return err
		}
	}
	return nil
}

// setDirMode sets the mode and times of the directory rel inside the directory rootFD,
// if it is still one, reached without following links.
func setDirMode(rootFD int, rel string, mode os.FileMode, mtime time.Time) error {
	rel = strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(rel)), "/")
	if rel == "" {
		return nil
	}
	fd, err := unix.Openat2(rootFD, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	perm := uint32(mode.Perm())
	if mode&os.ModeSticky != 0 {
		perm |= unix.S_ISVTX
	}
	if err := unix.Fchmod(fd, perm); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", rel, err)
	}
	tv := unix.NsecToTimeval(mtime.UnixNano())
	if err := unix.Futimes(fd, []unix.Timeval{tv, tv}); err != nil {
		return fmt.Errorf("setting the times of %s: %w", rel, err)
	}
	return nil
}

const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// overlayWhiteout records in dir that name is deleted ("" after the prefix of an opaque
// whiteout: the whole directory's lower contents are).
func overlayWhiteout(dir, name string) error {
	if name == strings.TrimPrefix(opaqueWhiteout, whiteoutPrefix) {
		return unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0)
	}
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("a whiteout for %q, which names no file: the layer is malformed", name)
	}
	target := filepath.Join(dir, name)
	_ = os.RemoveAll(target)
	return unix.Mknod(target, unix.S_IFCHR|0o000, 0)
}

// resolveIn resolves rel (an absolute path inside the image) to a host path inside root,
// following symbolic links the way they resolve inside the image: absolute targets start
// at root and ".." never climbs above it.
func resolveIn(root, rel string) (string, error) {
	const maxLinks = 255
	links := 0
	resolved := "/"
	rest := strings.Split(strings.Trim(path.Clean("/"+rel), "/"), "/")
	for len(rest) > 0 {
		part := rest[0]
		rest = rest[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, part)
		info, err := os.Lstat(filepath.Join(root, next))
		if err != nil || info.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("too many symbolic links resolving %q", rel)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return filepath.Join(root, resolved), nil
}
