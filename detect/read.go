package detect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Every file detection reads goes through readFile, on a repoFS: the path is resolved inside
// the repository (a link that leads out is refused), only a regular file is read (a FIFO
// would block, a device never ends), and never more than a cap.

const (
	// MaxFileSize caps every file detection reads except lock files.
	MaxFileSize = 4 << 20
	// MaxLockSize caps a lock file: uv.lock and poetry.lock of large projects run to several MiB.
	MaxLockSize = 32 << 20
	// maxLinks bounds the symbolic links followed for one path, as Linux's MAXSYMLINKS does.
	maxLinks = 40
	// maxExcerpt bounds what an error quotes of a file's content.
	maxExcerpt = 60
)

// sizeLimit is the most readFile reads of a file.
func sizeLimit(name string) int64 {
	if slices.Contains(LockFiles, name) {
		return MaxLockSize
	}
	return MaxFileSize
}

// RootFS returns the repository opened as root, as the fs.FS to give Detect. Its paths
// resolve inside root only, and opening a file never blocks: a FIFO opens at once (and
// Detect then refuses it) instead of waiting for a writer.
func RootFS(root *os.Root) fs.FS { return rootFS{root} }

type rootFS struct{ root *os.Root }

var _ fs.ReadLinkFS = rootFS{}

func (r rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := r.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (r rootFS) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	return r.root.Lstat(name)
}

func (r rootFS) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return r.root.Readlink(name)
}

// repoFS is the repository as detection sees it, whatever fs.FS it was given: every path
// is resolved here, component by component, so that a link leading out of the repository
// is refused with the link named, whether or not the file system below would follow it;
// only regular files and directories open.
type repoFS struct{ fsys fs.FS }

var (
	_ fs.StatFS     = (*repoFS)(nil)
	_ fs.ReadDirFS  = (*repoFS)(nil)
	_ fs.ReadFileFS = (*repoFS)(nil)
)

// confine wraps fsys in a repoFS, once.
func confine(fsys fs.FS) *repoFS {
	if r, ok := fsys.(*repoFS); ok {
		return r
	}
	return &repoFS{fsys}
}

// link is a symbolic link met while resolving a path.
type link struct{ name, target string }

// describe names the link as the cause of a problem with the file name.
func (l *link) describe(name string) string {
	if l.name == name {
		return "a symbolic link to " + excerpt(l.target)
	}
	return fmt.Sprintf("reached through %s, a symbolic link to %s", excerpt(l.name), excerpt(l.target))
}

// resolve follows name inside the repository and returns the path, free of links, of what
// it names, and that file's information. A path that does not exist is fs.ErrNotExist; one
// that leads out of the repository, through a dangling link or a loop is an *Error.
func (r *repoFS) resolve(name string) (string, fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return "", nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	type part struct {
		name string
		via  *link // the link whose target this part comes from; nil for name's own
	}
	var pending []part
	split := func(p string, via *link) []part {
		var out []part
		for _, c := range strings.Split(p, "/") {
			if c != "" && c != "." {
				out = append(out, part{c, via})
			}
		}
		return out
	}
	pending = split(name, nil)
	lrfs, canLink := r.fsys.(fs.ReadLinkFS)
	var done []string
	var info fs.FileInfo
	links := 0
	notExist := &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		if c.name == ".." {
			if len(done) == 0 {
				// Only a link's target can hold "..": fs.ValidPath refuses it in name.
				return "", nil, &Error{File: name, Msg: c.via.describe(name) + ", outside the repository; pyship reads only files inside it",
					Hint: "replace the link with the file it points to"}
			}
			done = done[:len(done)-1]
			info = nil
			continue
		}
		p := strings.Join(append(done, c.name), "/")
		var fi fs.FileInfo
		var err error
		if canLink {
			fi, err = lrfs.Lstat(p)
		} else {
			fi, err = fs.Stat(r.fsys, p)
		}
		switch {
		case err != nil && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)):
			if c.via != nil {
				return "", nil, &Error{File: name, Msg: c.via.describe(name) + ", which does not exist",
					Hint: "fix the link, or replace it with the file"}
			}
			return "", nil, notExist
		case err != nil:
			return "", nil, &fs.PathError{Op: "open", Path: name, Err: cause(err)}
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return "", nil, &Error{File: name, Msg: fmt.Sprintf("more than %d symbolic links to follow (a loop of links?)", maxLinks),
					Hint: "replace the links with the file"}
			}
			target, err := lrfs.ReadLink(p)
			if err != nil {
				return "", nil, &fs.PathError{Op: "readlink", Path: name, Err: cause(err)}
			}
			l := &link{p, target}
			if strings.HasPrefix(target, "/") {
				return "", nil, &Error{File: name, Msg: l.describe(name) + ", outside the repository; pyship reads only files inside it",
					Hint: "replace the link with the file it points to"}
			}
			pending = append(split(target, l), pending...)
			continue
		}
		if len(pending) > 0 && !fi.IsDir() {
			return "", nil, notExist
		}
		done = append(done, c.name)
		info = fi
	}
	if len(done) == 0 {
		fi, err := fs.Stat(r.fsys, ".")
		return ".", fi, err
	}
	resolved := strings.Join(done, "/")
	if info == nil {
		var err error
		if info, err = fs.Stat(r.fsys, resolved); err != nil {
			return "", nil, err
		}
	}
	return resolved, info, nil
}

// cause is what a *fs.PathError says went wrong, without its path (the caller names the
// file as the repository knows it).
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// notRegular refuses a file that is neither regular nor a directory.
func notRegular(name string, mode fs.FileMode) error {
	if mode.IsRegular() || mode.IsDir() {
		return nil
	}
	return &Error{File: name, Msg: fileKind(mode) + ", not a regular file; pyship reads only regular files",
		Hint: "replace it with a regular file"}
}

func fileKind(mode fs.FileMode) string {
	switch {
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}

// Open opens a regular file or a directory.
func (r *repoFS) Open(name string) (fs.File, error) {
	resolved, fi, err := r.resolve(name)
	if err != nil {
		return nil, err
	}
	if err := notRegular(name, fi.Mode()); err != nil {
		return nil, err
	}
	f, err := r.fsys.Open(resolved)
	if err != nil {
		return nil, err
	}
	// What was opened may not be what was looked at (the file system below may follow
	// links, or the file may have been replaced since).
	st, err := f.Stat()
	if err == nil {
		err = notRegular(name, st.Mode())
	}
	if err == nil && st.IsDir() != fi.IsDir() {
		err = &Error{File: name, Msg: "changed while pyship read it", Hint: "run pyship again"}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Stat describes what name leads to, inside the repository.
func (r *repoFS) Stat(name string) (fs.FileInfo, error) {
	_, fi, err := r.resolve(name)
	return fi, err
}

// ReadDir lists a directory of the repository.
func (r *repoFS) ReadDir(name string) ([]fs.DirEntry, error) {
	resolved, fi, err := r.resolve(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENOTDIR}
	}
	return fs.ReadDir(r.fsys, resolved)
}

// ReadFile reads a regular file, up to its cap.
func (r *repoFS) ReadFile(name string) ([]byte, error) { return readFile(r, name) }

// ReadFile reads a regular file of the repository as detection does: inside it only, never
// a FIFO or device, up to its size cap. A problem with the file is an *Error that names it;
// a missing file is fs.ErrNotExist.
func ReadFile(fsys fs.FS, name string) ([]byte, error) { return readFile(fsys, name) }

// readFile reads a regular file of the repository, up to its size cap. Problems with the
// file itself (a link out of the repository, a FIFO, too large) are *Error; a missing file
// is fs.ErrNotExist.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	return readCapped(fsys, name, false)
}

// readSource reads a Python source file for detection: a file past the cap (generated
// code, say) is read up to it, since what detection looks for is near the top.
func readSource(fsys fs.FS, name string) ([]byte, error) {
	return readCapped(fsys, name, true)
}

func readCapped(fsys fs.FS, name string, truncate bool) ([]byte, error) {
	f, err := confine(fsys).Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, &Error{File: name, Msg: "a directory, not a regular file", Hint: "pyship reads " + name + " as a file; rename the directory"}
	}
	limit := sizeLimit(name)
	if st.Size() > limit && !truncate {
		return nil, tooLarge(name, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", name, err)
	}
	if int64(len(data)) > limit {
		if truncate {
			return data[:limit], nil
		}
		return nil, tooLarge(name, limit)
	}
	return data, nil
}

func tooLarge(name string, limit int64) error {
	return &Error{File: name, Msg: fmt.Sprintf("larger than %d MiB, the most pyship reads of such a file", limit>>20),
		Hint: fmt.Sprintf("pyship reads lock files up to %d MiB and other files up to %d MiB; is this the file you meant?", MaxLockSize>>20, MaxFileSize>>20)}
}

// readOptional reads a file that may be absent: nil then.
func readOptional(fsys fs.FS, name string) ([]byte, error) {
	data, err := readFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, readError(name, err)
}

// readError wraps an error from readFile: a problem of the repository stays as it is.
func readError(name string, err error) error {
	var de *Error
	if err == nil || errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("reading %q: %w", name, err)
}

// exists reports whether the repository has something called name, even something that
// cannot be read (a dangling link, a link out of it): reading it then says why.
func exists(fsys fs.FS, name string) bool {
	_, _, err := confine(fsys).resolve(name)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// insideRepository reports whether a path relative to the repository's top stays inside it.
func insideRepository(p string) bool {
	if strings.HasPrefix(p, "/") {
		return false
	}
	p = path.Clean(p)
	return p != ".." && !strings.HasPrefix(p, "../")
}

// excerpt quotes s for an error message, escaped and cut to a few dozen bytes: what a
// repository holds may be long, binary, secret or made to mislead a terminal.
func excerpt(s string) string {
	if len(s) <= maxExcerpt {
		return strconv.Quote(s)
	}
	cut := maxExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// WithoutCredentials drops the user and password from a URL, for a message or a cache key.
// A URL that does not parse loses everything up to its last "@" after the scheme.
func WithoutCredentials(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		scheme, rest, ok := strings.Cut(s, "://")
		if i := strings.LastIndex(rest, "@"); ok && i >= 0 {
			return scheme + "://" + rest[i+1:]
		}
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return s[i+1:]
		}
		return s
	}
	if u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

// clip makes a message from elsewhere (a decoder's) safe to print: control characters and
// invalid UTF-8 escaped, and at most n bytes.
func clip(s string, n int) string {
	var b strings.Builder
	for i, r := range s {
		if b.Len() >= n {
			b.WriteString("...")
			break
		}
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
