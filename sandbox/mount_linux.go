package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// rootDir is a directory that paths from an image are resolved in. Every lookup goes
// through openat2 with RESOLVE_IN_ROOT, so a symbolic link in the image, absolute or with
// "..", resolves inside the directory as it would inside the image: an image whose /etc is a
// link to the host's /etc gets a mount on its own /etc, never on the host's. Mounts land on
// /proc/self/fd/N of the resolved directory or file, as runc does.
type rootDir struct {
	fd   int
	path string
	// shifted is true when pyship is root: directories the program writes to are given
	// to the sandbox's root.
	shifted bool
}

func openRoot(dir string) (rootDir, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return rootDir{}, fmt.Errorf("opening %s: %w", dir, err)
	}
	return rootDir{fd: fd, path: dir}, nil
}

func (r rootDir) close() { unix.Close(r.fd) }

// open resolves p inside the root.
func (r rootDir) open(p string, flags int) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// mkdirAll makes directory p and its parents inside the root and returns an O_PATH
// descriptor of it. A dangling link on the way is followed, inside the root, and its
// target made, as runc does.
func (r rootDir) mkdirAll(p string) (int, error) {
	return r.mkdirAllLinks(p, 0)
}

func (r rootDir) mkdirAllLinks(p string, links int) (int, error) {
	p = path.Clean("/" + p)
	fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		if err != nil {
			return -1, fmt.Errorf("%s in the image: %w", p, err)
		}
		return fd, nil
	}
	if p == "/" {
		return -1, fmt.Errorf("the root of the image is missing")
	}
	parent, err := r.mkdirAllLinks(path.Dir(p), links)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	// The parent is resolved; the new directory is made in it by name, never through a link.
	err = unix.Mkdirat(parent, path.Base(p), 0o755)
	if errors.Is(err, unix.EEXIST) {
		target, lerr := readlinkat(parent, path.Base(p))
		if lerr == nil {
			if links >= 40 {
				return -1, fmt.Errorf("%s in the image: too many levels of symbolic links", p)
			}
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			tfd, err := r.mkdirAllLinks(target, links+1)
			if err != nil {
				return -1, err
			}
			unix.Close(tfd)
		}
	} else if err != nil {
		return -1, fmt.Errorf("making %s in the image: %w", p, err)
	}
	fd, err = r.open(p, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, fmt.Errorf("%s in the image: %w", p, err)
	}
	return fd, nil
}

// mountPoint returns an O_PATH descriptor of p inside the root, made if missing: a
// directory, or an empty file when dir is false. A symbolic link where a file mount point
// belongs (/etc/resolv.conf often is one) is replaced by a file, so the mount lands inside
// the root.
func (r rootDir) mountPoint(p string, dir bool) (int, error) {
	if dir {
		fd, err := r.mountDir(p)
		if err != nil {
			return -1, err
		}
		// A link in the image (/app -> /) must not put a mount over the whole root.
		if path.Clean("/"+p) != "/" && r.isRoot(fd) {
			unix.Close(fd)
			return -1, fmt.Errorf("%s in the image leads to its root directory; a mount cannot go there", p)
		}
		return fd, nil
	}
	p = path.Clean("/" + p)
	parent, name, mode, err := r.lastComponent(p)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	switch mode {
	case unix.S_IFDIR:
		return -1, fmt.Errorf("%s in the image is a directory, where a file is mounted", p)
	case 0:
		fd, err := openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW)
		if err != nil {
			return -1, fmt.Errorf("making %s in the image: %w", p, err)
		}
		unix.Close(fd)
	}
	// An existing file, or the one just made: mount over it.
	return openat(parent, name, unix.O_PATH|unix.O_NOFOLLOW)
}

// lastComponent resolves the parent of p inside the root, making it if missing, and looks
// at p's last component there without following it: its type (0 when missing). A link
// there is removed, and reported missing, so that what is made in its place is where the
// program looks for it.
func (r rootDir) lastComponent(p string) (parent int, name string, mode uint32, err error) {
	parent, err = r.mkdirAll(path.Dir(p))
	if err != nil {
		return -1, "", 0, err
	}
	name = path.Base(p)
	var st unix.Stat_t
	err = unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return parent, name, 0, nil
	case err != nil:
		unix.Close(parent)
		return -1, "", 0, fmt.Errorf("%s in the image: %w", p, err)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		if err := unix.Unlinkat(parent, name, 0); err != nil {
			unix.Close(parent)
			return -1, "", 0, fmt.Errorf("replacing the link %s in the image: %w", p, err)
		}
		return parent, name, 0, nil
	}
	return parent, name, st.Mode & unix.S_IFMT, nil
}

// mountDir returns an O_PATH descriptor of the directory p inside the root, made if
// missing. The directories above it are found as the image's links lead; p itself, if the
// image has a link there, is replaced by a directory, so that what is mounted on it is
// where the program looks for it (an image whose /dev or /tmp is a link to somewhere under
// another mount point would hide it).
func (r rootDir) mountDir(p string) (int, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return r.open(p, unix.O_PATH|unix.O_DIRECTORY)
	}
	parent, name, mode, err := r.lastComponent(p)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	switch mode {
	case 0:
		if err := unix.Mkdirat(parent, name, 0o755); err != nil {
			return -1, fmt.Errorf("making %s in the image: %w", p, err)
		}
	case unix.S_IFDIR:
	default:
		return -1, fmt.Errorf("%s in the image is a file, where a directory is mounted", p)
	}
	return openat(parent, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// isRoot reports whether fd is the root directory itself.
func (r rootDir) isRoot(fd int) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstat(r.fd, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func openat(dir int, name string, flags int) (int, error) {
	return unix.Openat(dir, name, flags|unix.O_CLOEXEC, 0o644)
}

// fdPath names an open descriptor so that mount(2) acts on exactly what it refers to.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// mountAt mounts onto p inside the root, creating the mount point.
func (r rootDir) mountAt(p string, dir bool, source, fstype string, flags uintptr, data string) error {
	fd, err := r.mountPoint(p, dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mount(source, fdPath(fd), fstype, flags, data); err != nil {
		what := fstype
		if flags&unix.MS_BIND != 0 {
			what = source
		}
		return fmt.Errorf("mounting %s on %s: %w", what, p, err)
	}
	return nil
}

// remount changes the flags of the mount at p inside the root.
func (r rootDir) remount(p string, flags uintptr) error {
	fd, err := r.open(p, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount("", fdPath(fd), "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
		return fmt.Errorf("remounting %s: %w", p, err)
	}
	return nil
}

// tmpfs mounts a tmpfs at p inside the root; nothing on it can be a device or set-id.
func (r rootDir) tmpfs(p, data string, flags uintptr) error {
	return r.mountAt(p, true, "tmpfs", "tmpfs", flags|unix.MS_NODEV|unix.MS_NOSUID, data)
}

// mountOne mounts mt inside the root.
func (r rootDir) mountOne(mt Mount) error {
	switch mt.Type {
	case "tmpfs":
		return r.tmpfs(mt.Target, "mode=755", 0)
	case "overlay":
		upper, work := filepath.Join(mt.Scratch, "upper"), filepath.Join(mt.Scratch, "work")
		// The work directory holds nothing between mounts, but a volatile overlay's mark
		// (see mountOverlay), which would refuse the next sandbox's mount of the same
		// scratch: it starts empty.
		if err := os.RemoveAll(work); err != nil {
			return err
		}
		for _, d := range []string{upper, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if err := chownToSandbox(upper, r.shifted); err != nil {
			return err
		}
		fd, err := r.mountPoint(mt.Target, true)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return mountOverlay(fdPath(fd), mt.Source, upper, work)
	case "bind":
		info, err := os.Stat(mt.Source)
		if err != nil {
			return fmt.Errorf("bind mount source: %w", err)
		}
		fd, err := r.mountPoint(mt.Target, info.IsDir())
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Mount(mt.Source, fdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s to %s: %w", mt.Source, mt.Target, err)
		}
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
		if mt.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		return r.remount(mt.Target, flags)
	default:
		return fmt.Errorf("unknown mount type %q", mt.Type)
	}
}

// mountOverlay mounts an overlay on target; lower may stack directories with ":". Nothing
// in it is a device or set-id, whatever the layers hold.
func mountOverlay(target, lower, upper, work string) error {
	for _, p := range append(strings.Split(lower, ":"), upper, work) {
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("path %q contains a comma or colon, which overlayfs cannot take; set PYSHIP_CACHE_DIR to a plainer path", p)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	// volatile: no sync of the upper directory's file system when the overlay goes (its
	// last process's exit waited on one, about 0.2 s a sandbox), nor when a program in it
	// syncs. What a sandbox writes is scratch until pyship has read it, and the work
	// directory, where a crash leaves its mark, is new for each overlay. Kernels before
	// 5.10 do not know the option.
	err := unix.Mount("overlay", target, "overlay", unix.MS_NODEV|unix.MS_NOSUID, opts+",volatile")
	if errors.Is(err, unix.EINVAL) {
		// Without the mark the refused mount may have left.
		if err := os.RemoveAll(work); err != nil {
			return err
		}
		if err := os.Mkdir(work, 0o755); err != nil {
			return err
		}
		err = unix.Mount("overlay", target, "overlay", unix.MS_NODEV|unix.MS_NOSUID, opts)
	}
	if err != nil {
		return fmt.Errorf("mounting an overlay of %s: %w", lower, err)
	}
	return nil
}

// Paths of /proc that a sandbox only reads, and those it does not see at all: what runc
// and Docker do by default.
var (
	readOnlyProc = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}
	maskedProc   = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats", "/proc/acpi", "/proc/scsi", "/proc/asound"}
)

// mountProc mounts the sandbox's own /proc, with the kernel's knobs read-only and the
// files that describe the host masked.
func (r rootDir) mountProc() error {
	if err := r.mountAt("/proc", true, "proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	for _, p := range readOnlyProc {
		fd, err := r.open(p, unix.O_PATH|unix.O_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		err = unix.Mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("binding %s: %w", p, err)
		}
		if err := r.remount(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
			return err
		}
	}
	for _, p := range maskedProc {
		var st unix.Stat_t
		fd, err := r.open(p, unix.O_PATH|unix.O_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
		} else {
			err = unix.Mount("/dev/null", fdPath(fd), "", unix.MS_BIND, "")
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	return nil
}

// devices are the character devices a sandbox gets, bound from the host's /dev: the
// harmless ones every container runtime provides.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// mountDev gives the sandbox a minimal /dev: the harmless character devices, the usual
// links, and a tmpfs /dev/shm.
func (r rootDir) mountDev() error {
	if err := r.tmpfs("/dev", "mode=755", unix.MS_NOEXEC); err != nil {
		return err
	}
	for _, name := range devices {
		fd, err := r.mountPoint("/dev/"+name, false)
		if err != nil {
			return err
		}
		err = unix.Mount("/dev/"+name, fdPath(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("binding /dev/%s: %w", name, err)
		}
	}
	dev, err := r.open("/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	links := map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	}
	for name, target := range links {
		if err := unix.Symlinkat(target, dev, name); err != nil {
			return fmt.Errorf("making /dev/%s: %w", name, err)
		}
	}
	return r.tmpfs("/dev/shm", "mode=1777", 0)
}
